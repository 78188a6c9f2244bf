//! Webservices as board operations, served by the cloud's front ([`crate::front`]) instead of
//! Designate, the wamp agent's nginx and the board's nginx and certbot.
//!
//! A webservice is a tunnel like a service's (the board gets `ServiceEnable` with the
//! webservice as the service, so any board that can expose a service can publish a
//! webservice), on a tunnel port the tunnel server binds on loopback only; the front routes
//! `<name>.<dns>.<zone>` to it.

use rand::Rng;
use serde_json::{json, Value};

use s4t_model::resources::{Board, EnabledWebservice, JsonObject, Webservice};

use crate::api::ApiError;
use crate::conductor::Conductor;

/// The service dict a board is given for a webservice's tunnel.
fn tunnel_dict(w: &Webservice, tunnel_url: Option<&str>) -> Value {
    let mut d = json!({
        "uuid": w.uuid,
        "name": w.name,
        "port": w.port,
        "protocol": "TCP",
        "extra": {},
    });
    if let Some(url) = tunnel_url {
        d["tunnel_url"] = json!(url);
    }
    d
}

impl Conductor {
    fn front_ports(&self) -> Result<(u16, u16), ApiError> {
        self.front().map(|(_, ports)| *ports).ok_or_else(|| {
            ApiError::conflict(
                "this cloud runs no webservice front: start s4t cloud with --https-addr (and --http-addr)",
            )
        })
    }

    /// Enables webservices on a board under `<dns>.<zone>` (IoTronic: Designate record, nginx
    /// maps, board nginx and certbot). Here: the name is recorded; certificates come at the
    /// first handshake.
    pub async fn enable_webservices(
        &self,
        board: &Board,
        dns: &str,
        zone: &str,
        email: &str,
    ) -> Result<EnabledWebservice, ApiError> {
        self.ensure_connected(board)?;
        let ports = self.front_ports()?;
        let mut extra = JsonObject::new();
        extra.insert("email".into(), json!(email));
        Ok(self
            .store()
            .enable_webservices(&board.uuid, dns, zone, ports, &extra)
            .await?)
    }

    /// Publishes a board's port as `<name>.<dns>.<zone>`: a tunnel port, then the board's tunnel.
    /// A board that fails gives the port back. A name the board already has is given back as it
    /// is (IoTronic's behaviour).
    pub async fn expose_webservice(
        &self,
        board: &Board,
        name: &str,
        port: u16,
        secure: bool,
        extra: &JsonObject,
    ) -> Result<Webservice, ApiError> {
        self.ensure_connected(board)?;
        self.front_ports()?;
        let Some(tunnels) = self.tunnels() else {
            return Err(ApiError::conflict(
                "this cloud runs no tunnel server (start s4t cloud with --tunnel-addr)",
            ));
        };
        self.store().enabled_webservice(&board.uuid).await?;
        let range = tunnels.config().ports.clone();
        let (w, new) = self
            .store()
            .create_webservice(&board.uuid, name, port, secure, extra, &range, || {
                rand::thread_rng().gen()
            })
            .await?;
        if !new {
            return Ok(w);
        }
        let tunnel_port = w.tunnel_port.unwrap_or_default();
        let args = vec![tunnel_dict(&w, self.tunnel_url()), json!(tunnel_port)];
        if let Err(e) = self.execute(board, "ServiceEnable", args).await {
            self.forget_webservice(&w).await;
            return Err(e);
        }
        Ok(w)
    }

    /// Unpublishes one webservice: the board's tunnel (if it is connected), the port, the row.
    pub async fn delete_webservice(&self, board: &Board, w: &Webservice) -> Result<(), ApiError> {
        self.close_tunnel(board, w).await;
        self.store().delete_webservice(&w.uuid).await?;
        self.revoke(w);
        Ok(())
    }

    /// Disables webservices on a board: every webservice goes, then the enabled row. Works with
    /// the board offline (its tunnels are closed on the cloud side anyway).
    pub async fn disable_webservices(&self, board: &Board) -> Result<(), ApiError> {
        let removed = self.store().disable_webservices(&board.uuid).await?;
        for w in &removed {
            self.close_tunnel(board, w).await;
            self.revoke(w);
        }
        Ok(())
    }

    /// New certificates for the board's names at their next handshake.
    pub async fn renew_webservices(&self, board: &Board) -> Result<Value, ApiError> {
        let e = self.store().enabled_webservice(&board.uuid).await?;
        let Some((front, _)) = self.front() else {
            return Err(ApiError::conflict(
                "this cloud runs no webservice front: start s4t cloud with --https-addr",
            ));
        };
        front.renew(&e.dns, &e.zone).map_err(ApiError::internal)?;
        Ok(json!(format!(
            "Certificates of {}.{} renewed: new ones are served from the next connection.",
            e.dns, e.zone
        )))
    }

    async fn close_tunnel(&self, board: &Board, w: &Webservice) {
        if !board.status.is_connected() {
            return;
        }
        let args = vec![tunnel_dict(w, self.tunnel_url())];
        if let Err(e) = self.execute(board, "ServiceDisable", args).await {
            tracing::warn!(webservice = %w.uuid, error = ?e, "the board did not close the webservice tunnel");
        }
    }

    async fn forget_webservice(&self, w: &Webservice) {
        if let Err(e) = self.store().delete_webservice(&w.uuid).await {
            tracing::error!(webservice = %w.uuid, error = %e, "could not remove a failed webservice");
        }
        self.revoke(w);
    }

    fn revoke(&self, w: &Webservice) {
        if let (Some(t), Some(port)) = (
            self.tunnels(),
            w.tunnel_port.and_then(|p| u16::try_from(p).ok()),
        ) {
            t.revoke_port(port);
        }
    }
}
