//! Overlay ports on the board (s4t extension): the TAP interface of each port the cloud creates,
//! with the port's MAC, address and MTU, up while the port exists and gone with it, joined to
//! the port's network by an encrypted tunnel to the cloud's hub ([`crate::overlay_link`]).
//!
//! The board's overlay key pair is kept in `overlay.key`; its public half goes back to the
//! cloud in the reply to `OverlayPortAdd`, over the authenticated board link, and the hub's key
//! comes in the call. Ports are kept in `overlay.json` and their interfaces and tunnels made
//! again when the agent starts.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};
use tokio::sync::Mutex;

use s4t_model::board_link::WampMessage;

use crate::overlay_link::{HubSpec, Link, LinkStatus};
use crate::plugins::conf::write_atomically;

/// The overlay procedures a board registers.
pub const OVERLAY_METHODS: [&str; 3] = ["OverlayPortAdd", "OverlayPortRemove", "OverlayStatus"];

/// A port as the cloud describes it.
#[derive(Debug, Clone, PartialEq)]
struct PortSpec {
    uuid: String,
    vif: String,
    mac: [u8; 6],
    ip: Ipv4Addr,
    prefix: u8,
    mtu: u16,
    /// Where the tunnel goes; `None` from a cloud that runs no hub (the interface then carries
    /// nothing).
    hub: Option<HubSpec>,
}

impl PortSpec {
    fn read(v: &Value) -> Result<PortSpec, String> {
        let text = |k: &str| {
            v[k].as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("the port has no {k}"))
        };
        let vif = text("vif")?;
        if vif.is_empty()
            || vif.len() > s4t_model::net::IFNAME_MAX
            || !vif.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(format!(
                "vif {vif:?} is not an interface name of 1 to 15 letters and digits"
            ));
        }
        let mac_text = text("mac")?;
        let parts: Vec<u8> = mac_text
            .split(':')
            .filter_map(|p| u8::from_str_radix(p, 16).ok())
            .collect();
        let mac: [u8; 6] = parts
            .try_into()
            .map_err(|_| format!("mac {mac_text:?} is not a MAC address"))?;
        let ip: Ipv4Addr = text("ip")?
            .parse()
            .map_err(|_| "ip is not an IPv4 address".to_string())?;
        let prefix = v["prefix"]
            .as_u64()
            .filter(|p| (8..=30).contains(p))
            .ok_or("prefix must be from 8 to 30")? as u8;
        let mtu = v["mtu"]
            .as_u64()
            .filter(|m| (576..=9000).contains(m))
            .ok_or("mtu must be from 576 to 9000")? as u16;
        let hub = match v.get("hub") {
            None | Some(Value::Null) => None,
            Some(h) => Some(HubSpec::read(h)?),
        };
        let uuid = text("uuid")?;
        uuid::Uuid::parse_str(&uuid).map_err(|_| format!("uuid {uuid:?} is not a UUID"))?;
        Ok(PortSpec {
            uuid,
            vif,
            mac,
            ip,
            prefix,
            mtu,
            hub,
        })
    }
}

struct Port {
    spec: PortSpec,
    doc: Value,
    /// The tunnel, which holds the TAP open (closing it removes the interface).
    link: Link,
}

/// This board's overlay ports.
pub struct Overlay {
    file: PathBuf,
    ports: Mutex<HashMap<String, Port>>,
    key: std::sync::Arc<crate::overlay_link::Keypair>,
    dial: s4t_wamp::ClientConfig,
}

impl Overlay {
    /// Ports kept in `dir/overlay.json`; their interfaces and tunnels are made again now.
    /// `dial` says how to reach the cloud (TLS roots, local address) for the WebSocket path.
    pub async fn open(dir: &Path, dial: s4t_wamp::ClientConfig) -> Result<Overlay, String> {
        let key = crate::overlay_link::Keypair::load_or_create(&dir.join("overlay.key"))?;
        let o = Overlay {
            file: dir.join("overlay.json"),
            ports: Mutex::new(HashMap::new()),
            key: std::sync::Arc::new(key),
            dial,
        };
        let kept = std::fs::read(&o.file)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v["ports"].as_object().cloned())
            .unwrap_or_default();
        for (uuid, doc) in kept {
            if let Err(e) = o.add(doc).await {
                tracing::error!(port = %uuid, error = %e, "overlay port not restored");
            }
        }
        Ok(o)
    }

    /// Answers an overlay procedure.
    pub async fn perform(&self, method: &str, data: &[Value]) -> WampMessage {
        let arg = data.first().cloned().unwrap_or(Value::Null);
        match method {
            "OverlayPortAdd" => match self.add(arg).await {
                Ok(vif) => WampMessage::success(
                    json!({"vif": vif, "public_key": self.key.public_base64()}),
                ),
                Err(e) => WampMessage::error(format!("OverlayPortAdd: {e}")),
            },
            "OverlayPortRemove" => {
                let Some(uuid) = arg["uuid"].as_str() else {
                    return WampMessage::error(
                        "OverlayPortRemove: the argument must be {\"uuid\": ...}",
                    );
                };
                let gone = self.ports.lock().await.remove(uuid);
                self.save().await;
                WampMessage::success(match gone {
                    Some(p) => format!("port {uuid} removed (interface {})", p.spec.vif),
                    None => format!("port {uuid} already removed"),
                })
            }
            "OverlayStatus" => {
                let ports = self.ports.lock().await;
                let mut list: Vec<Value> = ports
                    .values()
                    .map(|p| {
                        let mut v = json!({"uuid": p.spec.uuid, "vif": p.spec.vif, "ip": p.spec.ip.to_string()});
                        if let (Value::Object(m), Value::Object(link)) = (&mut v, p.link.status().to_json()) {
                            m.extend(link);
                        }
                        v
                    })
                    .collect();
                list.sort_by(|a, b| a["uuid"].as_str().cmp(&b["uuid"].as_str()));
                WampMessage::success(json!({"ports": list}))
            }
            other => WampMessage::error(format!("unknown overlay procedure {other}")),
        }
    }

    async fn add(&self, doc: Value) -> Result<String, String> {
        let spec = PortSpec::read(&doc)?;
        let mut ports = self.ports.lock().await;
        if let Some(p) = ports.get(&spec.uuid) {
            if p.spec == spec {
                return Ok(spec.vif.clone());
            }
        }
        // The old interface (a changed port) goes before the new one takes the name.
        ports.remove(&spec.uuid);
        let device = tun_rs::DeviceBuilder::new()
            .name(spec.vif.clone())
            .layer(tun_rs::Layer::L2)
            .mac_addr(spec.mac)
            .mtu(spec.mtu)
            .ipv4(spec.ip, spec.prefix, None)
            .build_sync()
            .and_then(|d| d.set_nonblocking(true).map(|_| d))
            .map_err(|e| format!("cannot create TAP interface {}: {e}", spec.vif))?;
        let vif = spec.vif.clone();
        tracing::info!(port = %spec.uuid, %vif, ip = %spec.ip, "overlay interface up");
        let port_id = uuid::Uuid::parse_str(&spec.uuid).expect("checked when read");
        let link = Link::start(
            device,
            port_id,
            spec.hub.clone(),
            self.key.clone(),
            self.dial.clone(),
        );
        ports.insert(spec.uuid.clone(), Port { spec, doc, link });
        drop(ports);
        self.save().await;
        Ok(vif)
    }

    async fn save(&self) {
        let ports: Map<String, Value> = self
            .ports
            .lock()
            .await
            .iter()
            .map(|(u, p)| (u.clone(), p.doc.clone()))
            .collect();
        let bytes =
            serde_json::to_vec_pretty(&json!({"ports": ports})).expect("a Value serialises");
        if let Some(dir) = self.file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = write_atomically(&self.file, &bytes) {
            tracing::error!(error = %e, "overlay.json not written");
        }
    }

    /// How a port's tunnel stands (for tests and status).
    pub async fn link_status(&self, port: &str) -> Option<LinkStatus> {
        self.ports.lock().await.get(port).map(|p| p.link.status())
    }

    /// Removes every interface (the agent stops; `overlay.json` keeps the ports).
    pub async fn shutdown(&self) {
        self.ports.lock().await.clear();
    }
}
