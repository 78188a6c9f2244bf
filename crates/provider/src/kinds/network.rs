//! The Network and Port kinds against the S4T REST API, as pure functions. S4T changes
//! neither once made (the CRDs say so with CEL), so both are up to date whenever they exist.

use serde_json::{json, Value};

use super::{
    found, read_item, s4t_name, spec_and_status_accessors, uuid_of, ManagedKind, Observed, Reply,
    Request, Target, Verb,
};
use crate::apis::{Network, NetworkObservation, Port, PortObservation};
use crate::conditions;
use crate::refs::{RefKind, Resolved, Slot};

impl ManagedKind for Network {
    const COMPONENT: &'static str = "provider-s4t/managed/network";

    spec_and_status_accessors!();

    fn next_read(&self, at: Target<'_>, replies: &[Reply]) -> Option<Request> {
        read_item(format!("v1/networks/{}", at.external), replies)
    }

    fn observe(&self, _: Target<'_>, replies: &[Reply]) -> Result<Observed, String> {
        let Some(n) = found(replies)? else {
            return Ok(Observed::absent());
        };
        let at_provider = NetworkObservation {
            uuid: n["uuid"].as_str().map(str::to_string),
            mtu: n["mtu"].as_u64().map(|m| m as u16),
            used: n["addresses"]["used"].as_i64(),
            free: n["addresses"]["free"].as_i64(),
        };
        // A network made with another range (out of band, under this external name) cannot
        // be corrected: S4T has no update. Say so instead of claiming success.
        let cidr = &self.spec.for_provider.cidr;
        if n["cidr"].as_str() != Some(cidr.as_str()) {
            return Err(format!(
                "the network has cidr {} in S4T, not {cidr}; S4T cannot change it: delete the network or fix spec.forProvider.cidr",
                n["cidr"]
            ));
        }
        Ok(Observed::present(
            json!(at_provider),
            conditions::available(),
            Vec::new(),
        ))
    }

    fn create(&self, _: &Resolved) -> Result<Request, String> {
        let p = &self.spec.for_provider;
        let mut body = json!({"name": s4t_name(p.name.as_deref(), self), "cidr": p.cidr});
        if let Some(m) = p.mtu {
            body["mtu"] = json!(m);
        }
        if let Some(g) = &p.gateway {
            body["gateway"] = json!(g);
        }
        Ok(Request::with(Verb::Post, "v1/networks", body))
    }

    fn created(&self, _: &Resolved, reply: &Value) -> Result<String, String> {
        uuid_of(reply)
    }

    fn delete(&self, at: Target<'_>, _: &[Reply]) -> Vec<Request> {
        vec![Request::delete(format!("v1/networks/{}", at.external))]
    }
}

impl ManagedKind for Port {
    const COMPONENT: &'static str = "provider-s4t/managed/port";

    spec_and_status_accessors!();

    fn references(&self) -> Vec<Slot> {
        let p = &self.spec.for_provider;
        vec![
            Slot {
                field: "board",
                kind: RefKind::Board,
                value: p.board.clone(),
                reference: p.board_ref.clone(),
                selector: p.board_selector.clone(),
            },
            Slot {
                field: "network",
                kind: RefKind::Network,
                value: p.network.clone(),
                reference: p.network_ref.clone(),
                selector: p.network_selector.clone(),
            },
        ]
    }

    fn next_read(&self, at: Target<'_>, replies: &[Reply]) -> Option<Request> {
        read_item(format!("v1/ports/{}", at.external), replies)
    }

    fn observe(&self, _: Target<'_>, replies: &[Reply]) -> Result<Observed, String> {
        let Some(p) = found(replies)? else {
            return Ok(Observed::absent());
        };
        let text = |v: &Value| v.as_str().map(str::to_string);
        let tunnel = text(&p["status"]["tunnel"]);
        let at_provider = PortObservation {
            uuid: text(&p["uuid"]),
            ip: text(&p["ip"]),
            mac: text(&p["MAC_add"]),
            interface: text(&p["VIF_name"]),
            tunnel: tunnel.clone(),
        };
        let ready = match tunnel.as_deref() {
            Some("up") => conditions::available(),
            _ => conditions::unavailable(format!(
                "the port's tunnel is down: {}",
                p["status"]["reason"].as_str().unwrap_or("no handshake yet")
            )),
        };
        Ok(Observed::present(json!(at_provider), ready, Vec::new()))
    }

    fn create(&self, refs: &Resolved) -> Result<Request, String> {
        let board = refs
            .get("board")
            .ok_or("spec.forProvider: give the board (board, boardRef or boardSelector)")?;
        let network = refs
            .get("network")
            .ok_or("spec.forProvider: give the network (network, networkRef or networkSelector)")?;
        Ok(Request::with(
            Verb::Put,
            format!("v1/boards/{board}/ports"),
            json!({"network": network}),
        ))
    }

    fn created(&self, _: &Resolved, reply: &Value) -> Result<String, String> {
        uuid_of(reply)
    }

    fn delete(&self, at: Target<'_>, _: &[Reply]) -> Vec<Request> {
        vec![Request::delete(format!("v1/ports/{}", at.external))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apis::{NetworkParameters, NetworkSpec, PortParameters, PortSpec};

    #[test]
    fn network_and_port_table() {
        let refs = Resolved::new();
        let at = Target {
            external: "N",
            refs: &refs,
        };
        let net = Network::new(
            "lab",
            NetworkSpec {
                for_provider: NetworkParameters {
                    name: None,
                    cidr: "10.10.0.0/24".into(),
                    mtu: None,
                    gateway: None,
                },
                management_policies: None,
                provider_config_ref: Default::default(),
                write_connection_secret_to_ref: None,
            },
        );
        let remote = json!({"uuid": "N", "cidr": "10.10.0.0/24", "mtu": 1380,
                            "addresses": {"used": 2, "free": 251}});
        let o = net.observe(at, &[Reply::Ok(remote.clone())]).unwrap();
        assert!(o.observation.exists && o.observation.up_to_date);
        assert_eq!(o.at_provider["free"], 251);
        let mut other = remote;
        other["cidr"] = json!("10.20.0.0/24");
        assert!(net
            .observe(at, &[Reply::Ok(other)])
            .unwrap_err()
            .contains("cannot change"));
        assert_eq!(net.create(&refs).unwrap().body.unwrap()["name"], "lab");

        let port = Port::new(
            "rpi-lab",
            PortSpec {
                for_provider: PortParameters {
                    board: None,
                    board_ref: None,
                    board_selector: None,
                    network: None,
                    network_ref: None,
                    network_selector: None,
                },
                management_policies: None,
                provider_config_ref: Default::default(),
                write_connection_secret_to_ref: None,
            },
        );
        // (case, status, ready)
        for (case, status, ready) in [
            ("tunnel up", json!({"tunnel": "up"}), "True"),
            (
                "tunnel down",
                json!({"tunnel": "down", "reason": "no hub"}),
                "False",
            ),
            ("no status", json!(null), "False"),
        ] {
            let remote = json!({"uuid": "P", "ip": "10.10.0.5", "MAC_add": "02:00:00:00:00:01",
                                "VIF_name": "s4t-abc", "status": status});
            let o = port.observe(at, &[Reply::Ok(remote)]).unwrap();
            assert_eq!(o.ready.unwrap().status, ready, "{case}");
            assert_eq!(o.at_provider["ip"], "10.10.0.5", "{case}");
        }
        let mut refs = Resolved::new();
        refs.insert("board", "B".into());
        assert!(port.create(&refs).unwrap_err().contains("network"));
        refs.insert("network", "N".into());
        let c = port.create(&refs).unwrap();
        assert_eq!((c.verb, c.path.as_str()), (Verb::Put, "v1/boards/B/ports"));
    }
}
