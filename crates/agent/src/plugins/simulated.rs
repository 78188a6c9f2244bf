//! Plugins answered from memory, for simulated boards (`s4t swarm`): the same procedures and
//! reply texts, no Python. A `PluginCall` answers `echo: <parameters>`.

use std::collections::HashSet;
use std::sync::Mutex;

use serde_json::Value;

use s4t_model::board_link::WampMessage;

use super::decide;

#[derive(Default)]
pub struct SimulatedPlugins {
    injected: Mutex<HashSet<String>>,
    running: Mutex<HashSet<String>>,
}

fn uuid_arg(data: &[Value], index: usize) -> Option<String> {
    data.get(index)
        .and_then(|v| v.get("uuid").or(Some(v)))
        .and_then(Value::as_str)
        .map(str::to_string)
}

impl SimulatedPlugins {
    pub fn perform(&self, method: &str, data: &[Value]) -> WampMessage {
        let uuid = match method {
            "PluginInject" => uuid_arg(data, 0),
            _ => data.first().and_then(Value::as_str).map(str::to_string),
        };
        let Some(uuid) = uuid else {
            return decide::not_a_uuid(method, data.first().unwrap_or(&Value::Null));
        };
        let mut injected = self.injected.lock().unwrap_or_else(|e| e.into_inner());
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if method != "PluginInject" && !injected.contains(&uuid) {
            return WampMessage::error("Plugin paths or files do not exist!");
        }
        match method {
            "PluginInject" => decide::injected(injected.insert(uuid)),
            "PluginCall" => WampMessage::success(format!(
                "echo: {}",
                data.get(1).cloned().unwrap_or(Value::Null)
            )),
            "PluginStart" if running.contains(&uuid) => WampMessage::error("ALREADY STARTED!"),
            "PluginStart" | "PluginReboot" => {
                running.insert(uuid);
                WampMessage::success(if method == "PluginStart" {
                    "STARTED"
                } else {
                    "REBOOTED"
                })
            }
            "PluginStop" if running.remove(&uuid) => WampMessage::success("STOPPED"),
            "PluginStop" => WampMessage {
                message: Value::String(format!("PluginStop - WARNING {uuid}  is not running!")),
                result: s4t_model::resources::Outcome::Warning,
                req_id: None,
            },
            "PluginStatus" => WampMessage::success(if running.contains(&uuid) {
                "ALIVE"
            } else {
                "DEAD"
            }),
            "PluginLogs" => WampMessage::success(""),
            "PluginRemove" => {
                running.remove(&uuid);
                injected.remove(&uuid);
                WampMessage::success(format!("PluginRemove result: {uuid} removed!"))
            }
            other => WampMessage::error(format!("{other} is not a plugin procedure")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_like_a_board() {
        let p = SimulatedPlugins::default();
        let u = "9b3f6f72-88a7-44c5-b6bd-5530782060c0";
        let msg = |m: &str, d: &[Value]| p.perform(m, d).message;
        assert_eq!(
            msg("PluginCall", &[json!(u), json!({})]),
            json!("Plugin paths or files do not exist!")
        );
        assert_eq!(
            msg("PluginInject", &[json!({"uuid": u}), json!(false)]),
            json!("PluginInject result: INJECTED")
        );
        assert_eq!(
            msg("PluginInject", &[json!({"uuid": u}), json!(false)]),
            json!("PluginInject result: UPDATED")
        );
        assert_eq!(
            msg("PluginCall", &[json!(u), json!({"a": 1})]),
            json!("echo: {\"a\":1}")
        );
        assert_eq!(msg("PluginStart", &[json!(u), json!({})]), json!("STARTED"));
        assert_eq!(msg("PluginStatus", &[json!(u)]), json!("ALIVE"));
        assert_eq!(msg("PluginStop", &[json!(u), json!({})]), json!("STOPPED"));
        assert_eq!(msg("PluginStatus", &[json!(u)]), json!("DEAD"));
        assert_eq!(
            msg("PluginRemove", &[json!(u)]),
            json!(format!("PluginRemove result: {u} removed!"))
        );
    }
}
