//! Overlay ports on the board (s4t extension): the TAP interface of each port the cloud creates,
//! with the port's MAC, address and MTU, up while the port exists and gone with it.
//!
//! Only the interface is built so far: no frame leaves it yet (the encrypted tunnel to the
//! cloud's hub comes next). Ports are kept in `overlay.json` and their interfaces made again
//! when the agent starts.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};
use tokio::sync::Mutex;

use s4t_model::board_link::WampMessage;

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
        Ok(PortSpec {
            uuid: text("uuid")?,
            vif,
            mac,
            ip,
            prefix,
            mtu,
        })
    }
}

struct Port {
    spec: PortSpec,
    doc: Value,
    /// The TAP: open while the port exists (closing it removes the interface).
    _device: tun_rs::AsyncDevice,
}

/// This board's overlay ports.
pub struct Overlay {
    file: PathBuf,
    ports: Mutex<HashMap<String, Port>>,
}

impl Overlay {
    /// Ports kept in `dir/overlay.json`; their interfaces are made again now.
    pub async fn open(dir: &Path) -> Overlay {
        let o = Overlay {
            file: dir.join("overlay.json"),
            ports: Mutex::new(HashMap::new()),
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
        o
    }

    /// Answers an overlay procedure.
    pub async fn perform(&self, method: &str, data: &[Value]) -> WampMessage {
        let arg = data.first().cloned().unwrap_or(Value::Null);
        match method {
            "OverlayPortAdd" => match self.add(arg).await {
                Ok(vif) => WampMessage::success(json!({"vif": vif})),
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
                    .map(|p| json!({"uuid": p.spec.uuid, "vif": p.spec.vif, "ip": p.spec.ip.to_string(), "tunnel": "down"}))
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
            .build_async()
            .map_err(|e| format!("cannot create TAP interface {}: {e}", spec.vif))?;
        let vif = spec.vif.clone();
        tracing::info!(port = %spec.uuid, %vif, ip = %spec.ip, "overlay interface up");
        ports.insert(
            spec.uuid.clone(),
            Port {
                spec,
                doc,
                _device: device,
            },
        );
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

    /// Removes every interface (the agent stops; `overlay.json` keeps the ports).
    pub async fn shutdown(&self) {
        self.ports.lock().await.clear();
    }
}
