//! What crosses the link between cloud and boards, decided without I/O: the reply envelope
//! (`WampMessage`), the provisioning document a board stores as its `settings.json`, what a
//! registration does, and the names of procedures on both sides.

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::resources::{Board, Outcome, Plugin, Request};
use crate::BoardStatus;

/// The realm written into every provisioning document (upstream hard-codes it).
pub const REALM: &str = "s4t";

/// The global registration procedure.
pub const REGISTER: &str = "stack4things.register";

/// The cloud procedures a board calls under its agent's prefix.
pub const AGENT_PROCEDURES: &[&str] =
    &["connection", "wamp_alive", "notify_result", "alive", "echo"];

/// `<agent>.stack4things.<function>`.
pub fn agent_procedure(agent: &str, function: &str) -> String {
    format!("{agent}.stack4things.{function}")
}

/// `iotronic.<session>.<board>.<method>`: a board procedure of one WAMP session.
pub fn board_procedure(session: &str, board_uuid: &str, method: &str) -> String {
    format!("iotronic.{session}.{board_uuid}.{method}")
}

/// The prefix of every procedure a board may register in its session.
pub fn board_prefix(session: &str, board_uuid: &str) -> String {
    format!("iotronic.{session}.{board_uuid}.")
}

/// The reply envelope of board RPCs and of `register`, `connection` and `notify_result`.
/// On the wire it is a JSON *string* (the first positional argument), never an object.
#[derive(Debug, Clone, PartialEq)]
pub struct WampMessage {
    pub message: Value,
    pub result: Outcome,
    pub req_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("the reply has no arguments; expected a WampMessage JSON string")]
    Empty,
    #[error("the reply is not a WampMessage: {0}")]
    Malformed(String),
}

impl WampMessage {
    pub fn success(message: impl Into<Value>) -> WampMessage {
        WampMessage {
            message: message.into(),
            result: Outcome::Success,
            req_id: None,
        }
    }

    pub fn error(message: impl Into<Value>) -> WampMessage {
        WampMessage {
            message: message.into(),
            result: Outcome::Error,
            req_id: None,
        }
    }

    pub fn with_req_id(mut self, req_id: Option<String>) -> WampMessage {
        self.req_id = req_id;
        self
    }

    /// The JSON text, spaced the way Python's `json.dumps` spaces it (what stock peers send).
    pub fn to_wire(&self) -> String {
        let mut m = Map::new();
        m.insert("message".into(), self.message.clone());
        m.insert("result".into(), Value::String(self.result.as_str().into()));
        if let Some(r) = &self.req_id {
            m.insert("req_id".into(), Value::String(r.clone()));
        }
        python_json(&Value::Object(m))
    }

    /// Reads a reply from a call's positional arguments. Stock peers send the envelope as a
    /// JSON string; an object is accepted too.
    pub fn from_args(args: &[Value]) -> Result<WampMessage, ReplyError> {
        let first = args.first().ok_or(ReplyError::Empty)?;
        let parsed;
        let obj = match first {
            Value::String(text) => {
                parsed = serde_json::from_str::<Value>(text)
                    .map_err(|e| ReplyError::Malformed(format!("{e}: {text:.120}")))?;
                &parsed
            }
            other => other,
        };
        WampMessage::from_value(obj)
    }

    pub fn from_value(v: &Value) -> Result<WampMessage, ReplyError> {
        let obj = v
            .as_object()
            .ok_or_else(|| ReplyError::Malformed(format!("expected an object, got {v:.120}")))?;
        let result = obj
            .get("result")
            .and_then(Value::as_str)
            .ok_or_else(|| ReplyError::Malformed("missing \"result\"".into()))?;
        let result = Outcome::parse(result)
            .ok_or_else(|| ReplyError::Malformed(format!("unknown result {result:?}")))?;
        Ok(WampMessage {
            message: obj.get("message").cloned().unwrap_or(Value::Null),
            result,
            req_id: obj
                .get("req_id")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }
}

/// JSON with Python's default separators (`", "` and `": "`).
pub fn python_json(v: &Value) -> String {
    struct PythonFormatter;
    impl serde_json::ser::Formatter for PythonFormatter {
        fn begin_array_value<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            if first {
                Ok(())
            } else {
                w.write_all(b", ")
            }
        }
        fn begin_object_key<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            if first {
                Ok(())
            } else {
                w.write_all(b", ")
            }
        }
        fn begin_object_value<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
        ) -> std::io::Result<()> {
            w.write_all(b": ")
        }
    }
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    // Serializing a Value into memory cannot fail.
    let _ = v.serialize(&mut ser);
    String::from_utf8(out).unwrap_or_default()
}

/// The WebSocket URLs written into provisioning documents.
#[derive(Debug, Clone)]
pub struct AgentUrls<'a> {
    pub registration: &'a str,
    pub main: &'a str,
}

/// What `stack4things.register` does for a board found by its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationStep {
    /// Build a new provisioning document with this agent, store it, set the board offline.
    Provision { agent: String },
    /// Send the stored document again and set the board offline.
    Resend,
}

/// Upstream re-sends the stored document whenever the status is not exactly `registered`, which
/// sends `{}` to a board that was never provisioned and bricks it. Here a board without a stored
/// document is always provisioned.
pub fn registration_step(board: &Board, agent: &str) -> RegistrationStep {
    if board.status == BoardStatus::Registered || board.config.is_empty() {
        RegistrationStep::Provision {
            agent: agent.to_string(),
        }
    } else {
        RegistrationStep::Resend
    }
}

/// The document a board stores as its `settings.json` (upstream §4.3): the board as provisioned
/// (status `registered`, which the board's agent turns into `operative`), its location, and the
/// registration and main agent URLs.
pub fn provisioning_document(board: &Board, agent: &str, urls: &AgentUrls<'_>) -> Value {
    let location = match board.location.first() {
        Some(l) => json!({
            "longitude": l.longitude, "latitude": l.latitude, "altitude": l.altitude,
            "updated_at": l.updated_at.clone().unwrap_or_else(|| board.created_at.clone()),
        }),
        None => json!({}),
    };
    json!({"iotronic": {
        "extra": {},
        "board": {
            "id": board.id, "uuid": board.uuid, "code": board.code, "status": "registered",
            "name": board.name, "type": board.board_type, "agent": agent, "owner": board.owner,
            "project": board.project, "fleet": board.fleet, "lr_version": board.lr_version,
            "connectivity": board.connectivity, "mobile": board.mobile, "extra": board.extra,
            "created_at": board.created_at, "updated_at": board.updated_at,
            "location": location,
        },
        "wamp": {
            "registration-agent": {"url": urls.registration, "realm": REALM},
            "main-agent": {"url": urls.main, "realm": REALM},
        },
    }})
}

/// The `req` dict every board RPC receives first: the request row (upstream §5.5).
pub fn request_dict(r: &Request) -> Value {
    json!({
        "id": r.id, "uuid": r.uuid, "destination_uuid": r.destination_uuid,
        "main_request_uuid": r.main_request_uuid, "pending_requests": r.pending_requests,
        "status": r.status.as_str(), "project": r.project, "type": r.request_type,
        "action": r.action, "created_at": r.created_at, "updated_at": r.updated_at,
    })
}

/// The `plugin` argument of `PluginInject`: every plugin field, the code as protocol-0 pickle
/// text (Lightning-rod unpickles it) and a real boolean `callable` (its onboot restart tests
/// `callable is False`).
pub fn plugin_payload(p: &Plugin) -> Value {
    json!({"id": p.id, "uuid": p.uuid, "name": p.name,
           "code": crate::pickle::encode_str(&p.code),
           "callable": p.callable.unwrap_or(false), "parameters": p.parameters,
           "extra": p.extra, "public": p.public, "owner": p.owner,
           "created_at": p.created_at, "updated_at": p.updated_at})
}

/// The arguments after `req` of a plugin action (upstream §5.5).
pub fn plugin_action_args(
    action: &str,
    plugin_uuid: &str,
    parameters: &Map<String, Value>,
) -> Vec<Value> {
    if matches!(action, "PluginStatus" | "PluginRemove") {
        vec![json!(plugin_uuid)]
    } else {
        vec![json!(plugin_uuid), Value::Object(parameters.clone())]
    }
}

/// The board facts a `connection` call reports (`info` kwarg).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConnectionInfo {
    pub lr_version: Option<String>,
    pub connectivity: Option<Map<String, Value>>,
}

impl ConnectionInfo {
    /// Reads `info`; upstream replaces connectivity with `{"mac_addr": ..}` when that key is sent.
    pub fn from_value(info: Option<&Value>) -> ConnectionInfo {
        let Some(info) = info.and_then(Value::as_object) else {
            return ConnectionInfo::default();
        };
        let mut connectivity = info.get("connectivity").and_then(Value::as_object).cloned();
        if let Some(mac) = info.get("mac_addr") {
            let mut m = Map::new();
            m.insert("mac_addr".into(), mac.clone());
            connectivity = Some(m);
        }
        ConnectionInfo {
            lr_version: info
                .get("lr_version")
                .and_then(Value::as_str)
                .map(str::to_string),
            connectivity,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Location;

    fn board(status: BoardStatus, config: Value) -> Board {
        Board {
            id: 7,
            uuid: "9b3f6f72-88a7-44c5-b6bd-5530782060c0".into(),
            code: "CODE-1".into(),
            status,
            name: "b1".into(),
            board_type: Some("server".into()),
            agent: None,
            owner: None,
            project: None,
            fleet: None,
            mobile: false,
            lr_version: None,
            connectivity: Map::new(),
            config: config.as_object().cloned().unwrap_or_default(),
            extra: Map::new(),
            created_at: "2026-12-03T16:11:52+00:00".into(),
            updated_at: None,
            session: None,
            location: vec![Location {
                longitude: "15.55".into(),
                latitude: "38.19".into(),
                altitude: "10".into(),
                updated_at: None,
            }],
        }
    }

    #[test]
    fn registration_table() {
        let doc = json!({"iotronic": {"board": {}}});
        let provision = RegistrationStep::Provision {
            agent: "s4t".into(),
        };
        let table = [
            (BoardStatus::Registered, json!({}), provision.clone()),
            (BoardStatus::Registered, doc.clone(), provision.clone()),
            // The upstream bug: an offline board never provisioned would get `{}`.
            (BoardStatus::Offline, json!({}), provision.clone()),
            (BoardStatus::Online, json!({}), provision.clone()),
            (BoardStatus::Offline, doc.clone(), RegistrationStep::Resend),
            (BoardStatus::Online, doc, RegistrationStep::Resend),
        ];
        for (status, config, want) in table {
            assert_eq!(
                registration_step(&board(status, config.clone()), "s4t"),
                want,
                "{status:?} {config}"
            );
        }
    }

    #[test]
    fn provisioning_document_has_every_key_lightning_rod_reads() {
        let doc = provisioning_document(
            &board(BoardStatus::Registered, json!({})),
            "s4t",
            &AgentUrls {
                registration: "ws://127.0.0.1:8181/",
                main: "ws://127.0.0.1:8181/",
            },
        );
        let b = &doc["iotronic"]["board"];
        for key in [
            "uuid",
            "code",
            "name",
            "status",
            "type",
            "mobile",
            "extra",
            "agent",
            "created_at",
            "updated_at",
            "location",
        ] {
            assert!(b.get(key).is_some(), "board.{key} missing");
        }
        assert_eq!(b["status"], "registered");
        assert_eq!(b["agent"], "s4t");
        assert!(b.get("config").is_none());
        assert_eq!(b["location"]["updated_at"], "2026-12-03T16:11:52+00:00");
        assert_eq!(doc["iotronic"]["extra"], json!({}));
        assert_eq!(doc["iotronic"]["wamp"]["main-agent"]["realm"], "s4t");
        assert_eq!(
            doc["iotronic"]["wamp"]["registration-agent"]["url"],
            "ws://127.0.0.1:8181/"
        );
    }

    #[test]
    fn replies_round_trip_in_the_stock_spelling() {
        assert_eq!(
            WampMessage::success("").to_wire(),
            r#"{"message": "", "result": "SUCCESS"}"#
        );
        let m = WampMessage::success("b1 @ 2026").with_req_id(Some("R1".into()));
        let wire = m.to_wire();
        assert_eq!(
            wire,
            r#"{"message": "b1 @ 2026", "result": "SUCCESS", "req_id": "R1"}"#
        );
        assert_eq!(WampMessage::from_args(&[Value::String(wire)]).unwrap(), m);
        assert_eq!(
            WampMessage::from_args(&[json!({"result": "RUNNING", "message": "x"})])
                .unwrap()
                .result,
            Outcome::Running
        );
    }

    #[test]
    fn bad_replies_say_what_is_wrong() {
        let table: [(Vec<Value>, &str); 5] = [
            (vec![], "no arguments"),
            (vec![json!("not json")], "not a WampMessage"),
            (vec![json!("[1]")], "expected an object"),
            (vec![json!({"message": 1})], "missing \"result\""),
            (vec![json!({"result": "MAYBE"})], "unknown result"),
        ];
        for (args, want) in table {
            let e = WampMessage::from_args(&args).unwrap_err().to_string();
            assert!(e.contains(want), "{args:?}: {e}");
        }
    }

    #[test]
    fn connection_info_follows_upstream() {
        let i = ConnectionInfo::from_value(Some(&json!({"lr_version": "0.5.0",
            "connectivity": {"iface": "eth0"}})));
        assert_eq!(i.lr_version.as_deref(), Some("0.5.0"));
        assert_eq!(i.connectivity.unwrap()["iface"], "eth0");
        let i = ConnectionInfo::from_value(Some(&json!({"connectivity": {"iface": "eth0"},
            "mac_addr": "aa"})));
        assert_eq!(
            Value::Object(i.connectivity.unwrap()),
            json!({"mac_addr": "aa"})
        );
        assert_eq!(ConnectionInfo::from_value(None), ConnectionInfo::default());
    }
}
