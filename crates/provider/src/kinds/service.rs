//! The Service and ServiceExposure kinds against the S4T REST API, as pure functions.
//!
//! A ServiceExposure's external name is `{board}/{service}`. Observing it reads the board's
//! exposed services and the cloud's tunnel server (`GET /v1/tunnels`, for the public host);
//! its connection details are `host` and `port`.

use serde_json::{json, Map, Value};

use super::{
    found, read_item, s4t_name, spec_and_status_accessors, uuid_of, ManagedKind, Observed, Reply,
    Request, Target, Verb,
};
use crate::apis::{Service, ServiceExposure, ServiceExposureObservation, ServiceParameters};
use crate::conditions;
use crate::refs::{RefKind, Resolved, Slot};

/// The key of [`Resolved`] the executor fills with the site endpoint's host, for the
/// connection details when the tunnel server does not say its public host.
pub const ENDPOINT_HOST: &str = "@endpoint-host";

fn service_body(p: &ServiceParameters, name: &str) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("name".into(), json!(name));
    body.insert("port".into(), json!(p.port));
    body.insert("protocol".into(), json!(p.protocol));
    if let Some(e) = &p.extra {
        body.insert("extra".into(), Value::Object(e.clone()));
    }
    body
}

impl ManagedKind for Service {
    const COMPONENT: &'static str = "provider-s4t/managed/service";

    spec_and_status_accessors!();

    fn next_read(&self, at: Target<'_>, replies: &[Reply]) -> Option<Request> {
        read_item(format!("v1/services/{}", at.external), replies)
    }

    fn observe(&self, at: Target<'_>, replies: &[Reply]) -> Result<Observed, String> {
        let Some(remote) = found(replies)? else {
            return Ok(Observed::absent());
        };
        let name = s4t_name(self.spec.for_provider.name.as_deref(), self);
        let patch: Map<String, Value> = service_body(&self.spec.for_provider, &name)
            .into_iter()
            .filter(|(k, v)| remote.get(k) != Some(v))
            .collect();
        let updates = if patch.is_empty() {
            Vec::new()
        } else {
            vec![Request::with(
                Verb::Patch,
                format!("v1/services/{}", at.external),
                Value::Object(patch),
            )]
        };
        Ok(Observed::present(
            json!({"uuid": remote["uuid"]}),
            conditions::available(),
            updates,
        ))
    }

    fn create(&self, _: &Resolved) -> Result<Request, String> {
        let name = s4t_name(self.spec.for_provider.name.as_deref(), self);
        Ok(Request::with(
            Verb::Post,
            "v1/services",
            Value::Object(service_body(&self.spec.for_provider, &name)),
        ))
    }

    fn created(&self, _: &Resolved, reply: &Value) -> Result<String, String> {
        uuid_of(reply)
    }

    fn delete(&self, at: Target<'_>, _: &[Reply]) -> Vec<Request> {
        vec![Request::delete(format!("v1/services/{}", at.external))]
    }
}

fn board_and_service(external: &str) -> Result<(&str, &str), String> {
    match external.split_once('/') {
        Some((b, s)) if !b.is_empty() && !s.is_empty() && !s.contains('/') => Ok((b, s)),
        _ => Err(format!(
            "external name {external:?} is not BOARD/SERVICE: fix or remove the crossplane.io/external-name annotation"
        )),
    }
}

impl ManagedKind for ServiceExposure {
    const COMPONENT: &'static str = "provider-s4t/managed/serviceexposure";

    spec_and_status_accessors!();

    fn references(&self) -> Vec<Slot> {
        let p = &self.spec.for_provider;
        vec![
            Slot {
                field: "service",
                kind: RefKind::Service,
                value: p.service.clone(),
                reference: p.service_ref.clone(),
                selector: p.service_selector.clone(),
            },
            Slot {
                field: "board",
                kind: RefKind::Board,
                value: p.board.clone(),
                reference: p.board_ref.clone(),
                selector: p.board_selector.clone(),
            },
        ]
    }

    fn next_read(&self, at: Target<'_>, replies: &[Reply]) -> Option<Request> {
        let (board, _) = board_and_service(at.external).ok()?;
        match replies.len() {
            0 => Some(Request::get(format!("v1/boards/{board}/services"))),
            1 if matches!(replies[0], Reply::Ok(_)) => Some(Request::get("v1/tunnels")),
            _ => None,
        }
    }

    fn observe(&self, at: Target<'_>, replies: &[Reply]) -> Result<Observed, String> {
        let (_, service) = board_and_service(at.external)?;
        let Some(list) = found(replies)? else {
            return Ok(Observed::absent());
        };
        let Some(exposed) = list["exposed"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["service"].as_str() == Some(service))
        else {
            return Ok(Observed::absent());
        };
        let public_port = exposed["public_port"].as_u64().map(|p| p as u16);
        // The tunnel server's public host when it says one (it may be unspecified, or not
        // readable with this token), else the host of the site's endpoint.
        let tunnel_host = match replies.get(1) {
            Some(Reply::Ok(t)) => t["public_host"]
                .as_str()
                .filter(|h| !matches!(*h, "0.0.0.0" | "::"))
                .map(str::to_string),
            _ => None,
        };
        let host = tunnel_host.or_else(|| at.refs.get(ENDPOINT_HOST).cloned());
        let at_provider = ServiceExposureObservation {
            public_port,
            host: host.clone(),
        };
        let mut o = Observed::present(json!(at_provider), conditions::available(), Vec::new());
        if let (Some(h), Some(p)) = (host, public_port) {
            o.connection.insert("host".into(), h);
            o.connection.insert("port".into(), p.to_string());
        }
        Ok(o)
    }

    fn create(&self, refs: &Resolved) -> Result<Request, String> {
        let service = refs
            .get("service")
            .ok_or("spec.forProvider: give the service (service, serviceRef or serviceSelector)")?;
        let board = refs
            .get("board")
            .ok_or("spec.forProvider: give the board (board, boardRef or boardSelector)")?;
        Ok(Request::with(
            Verb::Post,
            format!("v1/boards/{board}/services/{service}/action"),
            json!({"action": "ServiceEnable"}),
        ))
    }

    fn created(&self, refs: &Resolved, _: &Value) -> Result<String, String> {
        match (refs.get("board"), refs.get("service")) {
            (Some(b), Some(s)) => Ok(format!("{b}/{s}")),
            _ => Err("the board and the service are not resolved".into()),
        }
    }

    fn delete(&self, at: Target<'_>, _: &[Reply]) -> Vec<Request> {
        match board_and_service(at.external) {
            Ok((board, service)) => vec![Request::with(
                Verb::Post,
                format!("v1/boards/{board}/services/{service}/action"),
                json!({"action": "ServiceDisable"}),
            )],
            Err(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apis::{ServiceExposureParameters, ServiceExposureSpec};

    fn exposure() -> ServiceExposure {
        ServiceExposure::new(
            "ssh-on-rpi",
            ServiceExposureSpec {
                for_provider: ServiceExposureParameters {
                    service: None,
                    service_ref: None,
                    service_selector: None,
                    board: None,
                    board_ref: None,
                    board_selector: None,
                },
                management_policies: None,
                provider_config_ref: Default::default(),
                write_connection_secret_to_ref: None,
            },
        )
    }

    #[test]
    fn exposure_table() {
        let mut refs = Resolved::new();
        refs.insert(ENDPOINT_HOST, "s4t.site-a.example.org".into());
        let at = Target {
            external: "B/S",
            refs: &refs,
        };
        let e = exposure();
        let listed = Reply::Ok(json!({"exposed": [{"service": "S", "public_port": 50123}]}));
        let empty = Reply::Ok(json!({"exposed": []}));
        let tunnels = |host: &str| Reply::Ok(json!({"running": true, "public_host": host}));
        let forbidden = Reply::Failed {
            status: 403,
            message: "admin only".into(),
        };
        // (case, replies, exists, connection host)
        let rows: Vec<(&str, Vec<Reply>, bool, Option<&str>)> = vec![
            (
                "not exposed",
                vec![empty.clone(), tunnels("10.0.0.1")],
                false,
                None,
            ),
            (
                "exposed, tunnel host",
                vec![listed.clone(), tunnels("10.0.0.1")],
                true,
                Some("10.0.0.1"),
            ),
            (
                "tunnel host unspecified: the endpoint's",
                vec![listed.clone(), tunnels("0.0.0.0")],
                true,
                Some("s4t.site-a.example.org"),
            ),
            (
                "tunnels not readable: the endpoint's",
                vec![listed.clone(), forbidden],
                true,
                Some("s4t.site-a.example.org"),
            ),
            (
                "board gone",
                vec![Reply::Failed {
                    status: 404,
                    message: "gone".into(),
                }],
                false,
                None,
            ),
        ];
        for (case, replies, exists, host) in rows {
            let o = e.observe(at, &replies).unwrap();
            assert_eq!(o.observation.exists, exists, "{case}");
            assert_eq!(o.connection.get("host").map(String::as_str), host, "{case}");
            if exists {
                assert_eq!(o.connection["port"], "50123", "{case}");
                assert!(o.observation.up_to_date, "{case}");
            }
        }
        assert_eq!(e.next_read(at, &[]).unwrap().path, "v1/boards/B/services");
        assert_eq!(
            e.next_read(at, std::slice::from_ref(&listed)).unwrap().path,
            "v1/tunnels"
        );
        assert_eq!(e.next_read(at, &[listed.clone(), tunnels("h")]), None);
        assert!(e
            .observe(
                Target {
                    external: "B",
                    refs: &refs
                },
                &[listed]
            )
            .unwrap_err()
            .contains("BOARD/SERVICE"));
        refs.insert("board", "B".into());
        assert!(e.create(&refs).unwrap_err().contains("service"));
        refs.insert("service", "S".into());
        let c = e.create(&refs).unwrap();
        assert_eq!(c.path, "v1/boards/B/services/S/action");
        assert_eq!(e.created(&refs, &json!({})).unwrap(), "B/S");
        let d = e.delete(
            Target {
                external: "B/S",
                refs: &refs,
            },
            &[],
        );
        assert_eq!(d[0].body.as_ref().unwrap()["action"], "ServiceDisable");
    }
}
