//! The IoTronic resources, and the parsing of the bodies that create or change them.

use serde_json::{Map, Value};

use crate::input::BodyReader;
use crate::{BoardStatus, InputError};

pub type JsonObject = Map<String, Value>;

/// One position of a board. Coordinates are strings, as upstream stores them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub longitude: String,
    pub latitude: String,
    pub altitude: String,
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Board {
    pub id: i64,
    pub uuid: String,
    pub code: String,
    pub status: BoardStatus,
    pub name: String,
    pub board_type: Option<String>,
    /// The WAMP agent name the board was provisioned with (its procedure prefix).
    pub agent: Option<String>,
    pub owner: Option<String>,
    pub project: Option<String>,
    pub fleet: Option<String>,
    pub mobile: bool,
    pub lr_version: Option<String>,
    pub connectivity: JsonObject,
    /// The provisioning document, `{}` until the board registers.
    pub config: JsonObject,
    pub extra: JsonObject,
    pub created_at: String,
    pub updated_at: Option<String>,
    /// The id of the board's valid WAMP session, if any.
    pub session: Option<String>,
    pub location: Vec<Location>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plugin {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub owner: Option<String>,
    pub public: bool,
    /// The plugin source as the user sent it (never pickled at rest).
    pub code: String,
    /// sha256 of `code`, hex.
    pub digest: String,
    pub callable: Option<bool>,
    pub parameters: JsonObject,
    pub extra: JsonObject,
    pub created_at: String,
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Injection {
    pub board_uuid: String,
    pub plugin_uuid: String,
    pub onboot: bool,
    /// `injected`, or `updated` after a second injection.
    pub status: String,
    pub created_at: String,
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub project: Option<String>,
    pub port: i64,
    pub protocol: String,
    pub extra: JsonObject,
    pub created_at: String,
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExposedService {
    pub board_uuid: String,
    pub service_uuid: String,
    pub public_port: i64,
    pub created_at: String,
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub project: Option<String>,
    pub description: Option<String>,
    pub extra: JsonObject,
    pub created_at: String,
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Webservice {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub port: i64,
    pub board_uuid: String,
    pub secure: bool,
    pub extra: JsonObject,
    pub created_at: String,
    pub updated_at: Option<String>,
    /// The tunnel port the cloud's HTTPS front reaches the board's `port` through (s4t).
    pub tunnel_port: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnabledWebservice {
    pub id: i64,
    pub board_uuid: String,
    pub http_port: i64,
    pub https_port: i64,
    pub dns: String,
    pub zone: String,
    pub extra: JsonObject,
    pub created_at: String,
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    pub id: i64,
    pub uuid: String,
    pub board_uuid: String,
    pub vif_name: String,
    pub mac_add: String,
    pub ip: Option<String>,
    pub network: Option<String>,
    pub created_at: String,
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestStatus {
    Pending,
    Completed,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Pending => "PENDING",
            RequestStatus::Completed => "COMPLETED",
        }
    }

    pub fn parse(raw: &str) -> Option<RequestStatus> {
        match raw {
            "PENDING" => Some(RequestStatus::Pending),
            "COMPLETED" => Some(RequestStatus::Completed),
            _ => None,
        }
    }
}

/// The outcome a board reports (`WampMessage.result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Error,
    Warning,
    Running,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "SUCCESS",
            Outcome::Error => "ERROR",
            Outcome::Warning => "WARNING",
            Outcome::Running => "RUNNING",
        }
    }

    pub fn parse(raw: &str) -> Option<Outcome> {
        [
            Outcome::Success,
            Outcome::Error,
            Outcome::Warning,
            Outcome::Running,
        ]
        .into_iter()
        .find(|o| o.as_str() == raw)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: i64,
    pub uuid: String,
    pub destination_uuid: Option<String>,
    pub main_request_uuid: Option<String>,
    pub pending_requests: i64,
    pub status: RequestStatus,
    pub project: Option<String>,
    /// 0 = board, 1 = fleet.
    pub request_type: i64,
    pub action: Option<String>,
    pub created_at: String,
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RequestResult {
    pub id: i64,
    pub board_uuid: String,
    pub request_uuid: String,
    pub result: Outcome,
    pub message: String,
    pub created_at: String,
    pub updated_at: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Bodies

/// The board actions the API accepts for `POST /v1/boards/{B}/action`.
pub const BOARD_ACTIONS: [&str; 8] = [
    "DevicePing",
    "DeviceReboot",
    "DeviceRestartLR",
    "DeviceNetConfig",
    "DeviceEcho",
    "DeviceUpgradeLR",
    "DevicePkgOperation",
    "DeviceRestSubmit",
];

/// The plugin actions of `POST /v1/boards/{B}/plugins/{P}`.
pub const PLUGIN_ACTIONS: [&str; 5] = [
    "PluginStart",
    "PluginStop",
    "PluginCall",
    "PluginStatus",
    "PluginReboot",
];

/// The service actions of `POST /v1/boards/{B}/services/{S}/action`.
pub const SERVICE_ACTIONS: [&str; 3] = ["ServiceEnable", "ServiceDisable", "ServiceRestore"];

const BOARD_ATTRS: [&str; 17] = [
    "uuid",
    "code",
    "status",
    "name",
    "type",
    "agent",
    "wstun_ip",
    "owner",
    "session",
    "project",
    "fleet",
    "mobile",
    "lr_version",
    "connectivity",
    "location",
    "extra",
    "config",
];

pub const BOARD_CODE_MAX: usize = 36;
pub const NAME_MAX: usize = 255;

/// `POST /v1/boards`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBoard {
    pub uuid: Option<String>,
    pub code: String,
    pub name: String,
    pub board_type: Option<String>,
    /// A fleet uuid or name, resolved by the caller.
    pub fleet: Option<String>,
    pub mobile: bool,
    pub connectivity: JsonObject,
    pub location: Location,
    pub extra: JsonObject,
}

impl NewBoard {
    pub fn from_body(body: Value) -> Result<NewBoard, InputError> {
        let mut r = BodyReader::new("Board", body, &BOARD_ATTRS)?;
        let uuid = r.uuid("uuid")?;
        let code = r.required_text("code", BOARD_CODE_MAX)?;
        let name = r.name("name", NAME_MAX, true)?.unwrap_or_default();
        let board_type = r.text_or_zero("type", NAME_MAX)?;
        let fleet = r.text_or_zero("fleet", 64)?;
        let mobile = r.boolean("mobile")?.unwrap_or(false);
        let connectivity = r.object("connectivity")?.unwrap_or_default();
        let extra = r.object("extra")?.unwrap_or_default();
        let location = match r.take("location") {
            Some(v) => parse_locations(v)?,
            None => None,
        }
        .ok_or_else(|| {
            InputError::field(
                "location",
                "location is required: send a list with one {\"latitude\", \"longitude\", \"altitude\"} object.",
            )
        })?;
        r.cloud_owned(
            "status",
            "boards start as registered and follow their lifecycle",
        )?;
        r.cloud_owned("agent", "chosen when the board registers")?;
        r.cloud_owned("session", "the board's live WAMP session")?;
        r.cloud_owned("wstun_ip", "derived from the agent")?;
        r.cloud_owned("lr_version", "reported by the board when it connects")?;
        r.cloud_owned("config", "generated when the board registers")?;
        // Overwritten from the caller's token, as upstream.
        r.ignore("owner");
        r.ignore("project");
        Ok(NewBoard {
            uuid,
            code,
            name,
            board_type,
            fleet,
            mobile,
            connectivity,
            location,
            extra,
        })
    }
}

/// `PATCH /v1/boards/{B}`: every field optional. `Some(None)` clears a nullable field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BoardPatch {
    pub code: Option<String>,
    pub name: Option<String>,
    pub board_type: Option<Option<String>>,
    pub fleet: Option<Option<String>>,
    pub mobile: Option<bool>,
    pub location: Option<Location>,
    pub extra: Option<JsonObject>,
    pub connectivity: Option<JsonObject>,
}

impl BoardPatch {
    /// `current_status` and `current_agent` let a client send back what it read (the Go SDK
    /// round-trips whole objects) without being refused.
    pub fn from_body(body: Value, current: &Board) -> Result<BoardPatch, InputError> {
        let mut r = BodyReader::new("Board", body, &BOARD_ATTRS)?;
        if let Some(uuid) = r.uuid("uuid")? {
            if uuid != current.uuid {
                return Err(InputError::field(
                    "uuid",
                    "Cannot overwrite UUID for an existing Board.",
                ));
            }
        }
        let status = r.text_or_zero("status", 15)?;
        if status
            .as_deref()
            .is_some_and(|s| s != current.status.as_str())
        {
            return Err(InputError::field(
                "status",
                "status is set by the cloud (the board lifecycle): omit it from the patch.",
            ));
        }
        let agent = r.text_or_zero("agent", NAME_MAX)?;
        if agent.is_some() && agent != current.agent {
            return Err(InputError::field(
                "agent",
                "agent is chosen when the board registers: omit it.",
            ));
        }
        let mut patch = BoardPatch {
            code: match r.text("code", BOARD_CODE_MAX)? {
                Some(c) if c.trim().is_empty() => {
                    return Err(InputError::field("code", "code must not be empty."))
                }
                c => c,
            },
            name: r.name("name", NAME_MAX, false)?,
            ..BoardPatch::default()
        };
        if r.has("type") {
            patch.board_type = Some(r.text_or_zero("type", NAME_MAX)?);
        }
        if r.has("fleet") {
            patch.fleet = Some(r.text_or_zero("fleet", 64)?);
        }
        patch.mobile = r.boolean("mobile")?;
        patch.extra = r.object("extra")?;
        patch.connectivity = r.object("connectivity")?;
        if let Some(v) = r.take("location") {
            patch.location = parse_locations(v)?;
        }
        // Read-only or derived: accepted and ignored, as upstream.
        for ignored in [
            "session",
            "wstun_ip",
            "lr_version",
            "config",
            "owner",
            "project",
        ] {
            r.ignore(ignored);
        }
        Ok(patch)
    }
}

fn parse_locations(value: Value) -> Result<Option<Location>, InputError> {
    let items = match value {
        Value::Null => return Ok(None),
        Value::Array(items) => items,
        // A single object is accepted too.
        obj @ Value::Object(_) => vec![obj],
        _ => {
            return Err(InputError::field(
                "location",
                "location must be a list of location objects.",
            ))
        }
    };
    let Some(mut first) = items.into_iter().next() else {
        return Ok(None);
    };
    // The Go SDK echoes `updated_at` (null or base64); it is ours to set, so it is dropped.
    if let Value::Object(m) = &mut first {
        m.remove("updated_at");
    }
    let mut r = BodyReader::new("Location", first, &["longitude", "latitude", "altitude"])?;
    let mut coord = |field: &'static str| -> Result<String, InputError> {
        match r.take(field) {
            Some(Value::String(s)) if s.len() <= 18 => Ok(s),
            Some(Value::Number(n)) if n.to_string().len() <= 18 => Ok(n.to_string()),
            None | Some(Value::Null) => Err(InputError::field(
                &format!("location.{field}"),
                format!("location.{field} is required (a number or a numeric string)."),
            )),
            Some(_) => Err(InputError::field(
                &format!("location.{field}"),
                format!("location.{field} must be a number or a string of at most 18 characters."),
            )),
        }
    };
    let longitude = coord("longitude")?;
    let latitude = coord("latitude")?;
    let altitude = coord("altitude")?;
    Ok(Some(Location {
        longitude,
        latitude,
        altitude,
        updated_at: None,
    }))
}

/// `POST /v1/plugins` and `PATCH /v1/plugins/{P}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginFields {
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub code: Option<String>,
    pub public: Option<bool>,
    /// `Some(None)` stores NULL (the upstream default when unset).
    pub callable: Option<Option<bool>>,
    pub parameters: Option<JsonObject>,
    pub extra: Option<JsonObject>,
}

const PLUGIN_ATTRS: [&str; 8] = [
    "uuid",
    "name",
    "code",
    "public",
    "owner",
    "callable",
    "parameters",
    "extra",
];
/// Plugin sources are bounded so one request cannot fill the store.
pub const PLUGIN_CODE_MAX: usize = 4 * 1024 * 1024;

impl PluginFields {
    pub fn for_create(body: Value) -> Result<PluginFields, InputError> {
        let mut f = PluginFields::read(body, true)?;
        if f.code.is_none() {
            return Err(InputError::field(
                "code",
                "code is required for Plugin: send the plugin source.",
            ));
        }
        f.callable.get_or_insert(None);
        Ok(f)
    }

    pub fn for_patch(body: Value, current_uuid: &str) -> Result<PluginFields, InputError> {
        let f = PluginFields::read(body, false)?;
        if f.uuid.as_deref().is_some_and(|u| u != current_uuid) {
            return Err(InputError::field(
                "uuid",
                "Cannot overwrite UUID for an existing Plugin.",
            ));
        }
        Ok(f)
    }

    fn read(body: Value, create: bool) -> Result<PluginFields, InputError> {
        let mut r = BodyReader::new("Plugin", body, &PLUGIN_ATTRS)?;
        r.ignore("owner");
        let callable = if r.has("callable") {
            Some(r.boolean("callable")?)
        } else {
            None
        };
        Ok(PluginFields {
            uuid: r.uuid("uuid")?,
            name: r.name("name", NAME_MAX, create)?,
            code: r.text("code", PLUGIN_CODE_MAX)?,
            public: r.boolean("public")?,
            callable,
            parameters: r.object("parameters")?,
            extra: r.object("extra")?,
        })
    }
}

/// `POST /v1/services` and `PATCH /v1/services/{S}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceFields {
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub port: Option<i64>,
    pub protocol: Option<String>,
    pub extra: Option<JsonObject>,
}

impl ServiceFields {
    pub fn read(body: Value, create: bool) -> Result<ServiceFields, InputError> {
        let mut r = BodyReader::new(
            "Service",
            body,
            &["uuid", "name", "project", "port", "protocol", "extra"],
        )?;
        r.ignore("project");
        let f = ServiceFields {
            uuid: r.uuid("uuid")?,
            name: r.name("name", NAME_MAX, create)?,
            port: r.integer("port", 1..=65535)?,
            protocol: match r.text("protocol", 3)? {
                None if create => {
                    return Err(InputError::field(
                        "protocol",
                        "protocol is required: TCP or UDP.",
                    ))
                }
                None => None,
                Some(p) => match p.to_ascii_uppercase().as_str() {
                    "TCP" | "UDP" => Some(p.to_ascii_uppercase()),
                    _ => {
                        return Err(InputError::field(
                            "protocol",
                            format!("protocol must be TCP or UDP, got {p:?}."),
                        ))
                    }
                },
            },
            extra: r.object("extra")?,
        };
        if create && f.port.is_none() {
            return Err(InputError::field(
                "port",
                "port is required: the board-local TCP/UDP port (1-65535).",
            ));
        }
        Ok(f)
    }
}

/// `POST /v1/fleets` and `PATCH /v1/fleets/{F}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetFields {
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub extra: Option<JsonObject>,
}

impl FleetFields {
    pub fn read(body: Value, create: bool) -> Result<FleetFields, InputError> {
        let mut r = BodyReader::new(
            "Fleet",
            body,
            &["uuid", "name", "project", "description", "extra"],
        )?;
        r.ignore("project");
        Ok(FleetFields {
            uuid: r.uuid("uuid")?,
            name: r.name("name", NAME_MAX, create)?,
            description: r.text("description", 300)?,
            extra: r.object("extra")?,
        })
    }
}

/// `{"action": ..., "parameters": {...}}` bodies of board, plugin and service actions.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRequest {
    pub action: String,
    pub parameters: JsonObject,
}

impl ActionRequest {
    pub fn read(
        type_name: &'static str,
        body: Value,
        valid: &[&str],
    ) -> Result<ActionRequest, InputError> {
        let mut r = BodyReader::new(type_name, body, &["action", "parameters"])?;
        let action = r
            .text("action", 64)?
            .filter(|a| !a.is_empty())
            .ok_or_else(|| InputError::field("action", "Action is not specified."))?;
        if !valid.contains(&action.as_str()) {
            return Err(InputError::field(
                "action",
                format!(
                    "Invalid Action {action} for the {}. Valid actions: {}.",
                    type_name.to_lowercase(),
                    valid.join(", ")
                ),
            ));
        }
        let parameters = r.object("parameters")?.unwrap_or_default();
        Ok(ActionRequest { action, parameters })
    }
}

/// `PUT /v1/boards/{B}/plugins`.
#[derive(Debug, Clone, PartialEq)]
pub struct InjectRequest {
    pub plugin: String,
    pub onboot: bool,
}

impl InjectRequest {
    pub fn read(body: Value) -> Result<InjectRequest, InputError> {
        let mut r = BodyReader::new("PluginInject", body, &["plugin", "onboot"])?;
        let plugin = r.text_or_zero("plugin", 255)?.ok_or_else(|| {
            InputError::field("plugin", "plugin is required: a plugin uuid or name.")
        })?;
        Ok(InjectRequest {
            plugin,
            onboot: r.boolean("onboot")?.unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn board_body() -> Value {
        json!({"name": "b1", "code": "C1", "type": "server",
               "location": [{"latitude": "38.1", "longitude": 15.5, "altitude": "1"}]})
    }

    #[test]
    fn new_board_reads_the_stock_client_body() {
        let b = NewBoard::from_body(board_body()).unwrap();
        assert_eq!(b.name, "b1");
        assert_eq!(b.location.longitude, "15.5");
        assert!(!b.mobile);
    }

    #[test]
    fn new_board_accepts_go_sdk_zero_values() {
        let mut body = board_body();
        for (k, v) in [
            ("uuid", json!("")),
            ("status", json!("")),
            ("agent", json!("")),
            ("session", json!("")),
            ("lr_version", json!("")),
            ("wstun_ip", json!("")),
            ("fleet", json!(null)),
            ("connectivity", json!({})),
            ("owner", json!("")),
            ("project", json!("")),
        ] {
            body[k] = v;
        }
        body["location"][0]["updated_at"] = json!("AAAA");
        let b = NewBoard::from_body(body).unwrap();
        assert_eq!(b.uuid, None);
        assert_eq!(b.fleet, None);
    }

    #[test]
    fn new_board_error_table() {
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({"code": "C", "location": [{"latitude": 1, "longitude": 1, "altitude": 1}]}),
                "name",
            ),
            (
                json!({"name": "b", "location": [{"latitude": 1, "longitude": 1, "altitude": 1}]}),
                "code",
            ),
            (json!({"name": "b", "code": "C"}), "location"),
            (
                json!({"name": "b", "code": "C", "location": []}),
                "location",
            ),
            (
                json!({"name": "b", "code": "C", "location": [{"latitude": 1, "longitude": 1}]}),
                "location.altitude",
            ),
            (
                json!({"name": "b", "code": "C", "location": [{"latitude": 1, "longitude": 1, "altitude": 1, "x": 1}]}),
                "x",
            ),
            (
                json!({"name": "b", "code": "C", "status": "online", "location": [{"latitude": 1, "longitude": 1, "altitude": 1}]}),
                "status",
            ),
            (
                json!({"name": "b", "code": "C", "uuid": "nope", "location": [{"latitude": 1, "longitude": 1, "altitude": 1}]}),
                "uuid",
            ),
            (
                json!({"name": "b", "code": "C".repeat(37), "location": [{"latitude": 1, "longitude": 1, "altitude": 1}]}),
                "code",
            ),
            (
                json!({"name": "1aa98d40-e54c-4a3d-87cd-a031bb9b8410", "code": "C", "location": [{"latitude": 1, "longitude": 1, "altitude": 1}]}),
                "name",
            ),
            (
                json!({"name": "b", "code": "C", "mobile": "perhaps", "location": [{"latitude": 1, "longitude": 1, "altitude": 1}]}),
                "mobile",
            ),
            (
                json!({"name": "b", "code": "C", "created_at": "x", "location": [{"latitude": 1, "longitude": 1, "altitude": 1}]}),
                "created_at",
            ),
        ];
        for (body, field) in cases {
            let err = NewBoard::from_body(body.clone()).unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field), "{body}: {}", err.message);
        }
    }

    #[test]
    fn action_requests_are_checked() {
        let err = ActionRequest::read("Board", json!({}), &BOARD_ACTIONS).unwrap_err();
        assert_eq!(err.message, "Action is not specified.");
        let err =
            ActionRequest::read("Board", json!({"action": "Explode"}), &BOARD_ACTIONS).unwrap_err();
        assert!(err
            .message
            .starts_with("Invalid Action Explode for the board."));
        let ok = ActionRequest::read(
            "Board",
            json!({"action": "DeviceEcho", "parameters": {"say": "hi"}}),
            &BOARD_ACTIONS,
        )
        .unwrap();
        assert_eq!(ok.parameters["say"], "hi");
    }

    #[test]
    fn service_protocol_is_normalised() {
        let s = ServiceFields::read(json!({"name": "ssh", "port": 22, "protocol": "tcp"}), true)
            .unwrap();
        assert_eq!(s.protocol.as_deref(), Some("TCP"));
        let err = ServiceFields::read(
            json!({"name": "ssh", "port": 70000, "protocol": "TCP"}),
            true,
        )
        .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("port"));
    }
}
