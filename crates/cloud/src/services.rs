//! Service tunnels as board operations: enable, disable and restore a board service on a public
//! port (IoTronic's ServiceEnable / ServiceDisable / ServiceRestore).
//!
//! The public port is reserved in the store *before* the board is called, so the board's
//! control socket finds it allowed when it arrives; a board that fails gives the port back.
//! Disabling revokes the port in the tunnel server whatever the board answers: the cloud side
//! is what keeps a disabled service closed.

use rand::Rng;
use serde_json::{json, Value};

use s4t_model::resources::{Board, ExposedService, Service};

use crate::api::ApiError;
use crate::conductor::Conductor;

/// What boards are told about a service: what Lightning-rod reads (uuid, name, port) and, for
/// s4t agents, where the tunnel server is (`tunnel_url`; Lightning-rod ignores it and uses
/// port 8080 on the host of its WAMP URL).
pub fn service_dict(s: &Service, tunnel_url: Option<&str>) -> Value {
    let mut d = json!({
        "uuid": s.uuid,
        "name": s.name,
        "port": s.port,
        "protocol": s.protocol,
        "project": s.project,
        "extra": s.extra,
    });
    if let Some(url) = tunnel_url {
        d["tunnel_url"] = json!(url);
    }
    d
}

impl Conductor {
    /// Exposes the service of a connected board on a free public port.
    pub async fn enable_service(
        &self,
        board: &Board,
        service: &Service,
    ) -> Result<Value, ApiError> {
        self.ensure_connected(board)?;
        let Some(tunnels) = self.tunnels() else {
            return Err(ApiError::conflict(
                "this cloud runs no tunnel server (start s4t cloud with --tunnel-addr)",
            ));
        };
        let range = tunnels.config().ports.clone();
        let exposed = self
            .store()
            .reserve_public_port(&board.uuid, &service.uuid, &range, || {
                rand::thread_rng().gen()
            })
            .await?;
        let args = vec![
            service_dict(service, self.tunnel_url()),
            json!(exposed.public_port),
        ];
        match self.execute(board, "ServiceEnable", args).await {
            Ok(reply) => Ok(reply),
            Err(e) => {
                self.give_back(&exposed).await;
                Err(e)
            }
        }
    }

    /// Ends the exposure of a service on a board and frees its port.
    pub async fn disable_service(
        &self,
        board: &Board,
        service: &Service,
    ) -> Result<Value, ApiError> {
        let exposed = self.exposure(board, service).await?;
        self.ensure_connected(board)?;
        let result = self
            .execute(
                board,
                "ServiceDisable",
                vec![service_dict(service, self.tunnel_url())],
            )
            .await;
        self.give_back(&exposed).await;
        result
    }

    /// Asks the board to bring the tunnel of an exposed service up again.
    pub async fn restore_service(
        &self,
        board: &Board,
        service: &Service,
    ) -> Result<Value, ApiError> {
        let exposed = self.exposure(board, service).await?;
        let reply = self
            .execute(
                board,
                "ServiceRestore",
                vec![
                    service_dict(service, self.tunnel_url()),
                    json!(exposed.public_port),
                ],
            )
            .await?;
        self.store()
            .touch_exposed_service(&board.uuid, &service.uuid)
            .await?;
        Ok(reply)
    }

    async fn exposure(&self, board: &Board, service: &Service) -> Result<ExposedService, ApiError> {
        self.store()
            .exposed_service(&board.uuid, &service.uuid)
            .await?
            .ok_or_else(|| {
                ApiError::conflict(format!(
                    "Service {} is not exposed on board {}: enable it first (action ServiceEnable).",
                    service.uuid, board.uuid
                ))
            })
    }

    /// Ends one exposure: through the board when it is online (ServiceDisable), else on the
    /// cloud side only.
    pub async fn end_exposure(&self, x: &ExposedService, service: &Service) {
        let board = self
            .store()
            .board(
                &s4t_model::Ident::Uuid(x.board_uuid.clone()),
                &s4t_store::Scope::All,
            )
            .await
            .ok();
        match board {
            Some(b) if b.status.is_connected() => {
                if let Err(e) = self.disable_service(&b, service).await {
                    tracing::warn!(board = %x.board_uuid, error = ?e, "ServiceDisable failed; the port is freed anyway");
                }
            }
            _ => self.give_back(x).await,
        }
    }

    /// Ends every exposure of a service and deletes it (a workload's port that goes).
    pub async fn close_service(&self, service: &Service) -> Result<(), ApiError> {
        for x in self.store().exposures_of_service(&service.uuid).await? {
            self.end_exposure(&x, service).await;
        }
        Ok(self.store().delete_service(&service.uuid).await?)
    }

    /// Frees the port of an exposure in the store and closes it in the tunnel server.
    async fn give_back(&self, exposed: &ExposedService) {
        if let Err(e) = self
            .store()
            .release_public_port(&exposed.board_uuid, &exposed.service_uuid)
            .await
        {
            tracing::error!(error = %e, port = exposed.public_port, "could not free a public port");
        }
        if let (Some(t), Ok(port)) = (self.tunnels(), u16::try_from(exposed.public_port)) {
            t.revoke_port(port);
        }
    }

    /// Every tunnel port a board holds: its exposed services' and its webservices'.
    pub(crate) async fn board_ports(&self, board: &Board) -> Vec<u16> {
        let mut ports = Vec::new();
        match self.store().exposed_services(&board.uuid).await {
            Ok(list) => ports.extend(
                list.iter()
                    .filter_map(|e| u16::try_from(e.public_port).ok()),
            ),
            Err(e) => {
                tracing::warn!(board = %board.uuid, error = %e, "could not list the ports of a board")
            }
        }
        match self
            .store()
            .list_webservices(
                &s4t_store::Scope::All,
                Some(&board.uuid),
                &s4t_store::Page::default(),
            )
            .await
        {
            Ok(list) => ports.extend(
                list.iter()
                    .filter_map(|w| w.tunnel_port.and_then(|p| u16::try_from(p).ok())),
            ),
            Err(e) => {
                tracing::warn!(board = %board.uuid, error = %e, "could not list the webservices of a board")
            }
        }
        ports
    }
}
