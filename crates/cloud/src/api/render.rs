//! Resource representations, field for field as IoTronic puts them on the wire.

use serde_json::{json, Map, Value};

use s4t_model::listing::{CollectionSpec, ListQuery};
use s4t_model::resources::*;

use crate::CloudConfig;

pub fn links(base: &str, collection: &str, id: &str) -> Value {
    json!([
        {"href": format!("{base}/v1/{collection}/{id}"), "rel": "self"},
        {"href": format!("{base}/{collection}/{id}"), "rel": "bookmark"},
    ])
}

/// Keeps `fields` (or everything when `None`) plus the always-present ones.
pub fn select(
    mut full: Map<String, Value>,
    fields: Option<&[String]>,
    spec: &CollectionSpec,
) -> Value {
    if let Some(fields) = fields {
        full.retain(|k, _| fields.iter().any(|f| f == k) || spec.always.contains(&k.as_str()));
    }
    Value::Object(full)
}

/// A list envelope with IoTronic's `next` link when the page is full.
pub fn collection(
    spec: &CollectionSpec,
    base: &str,
    items: Vec<Value>,
    query: &ListQuery,
    last_marker: Option<String>,
) -> Value {
    let mut out = Map::new();
    let full = items.len() as u32 == query.limit;
    out.insert(spec.envelope.to_string(), Value::Array(items));
    if full {
        if let Some(marker) = last_marker {
            let next = next_link(spec, base, query, &marker);
            out.insert("next".into(), Value::String(next));
        }
    }
    Value::Object(out)
}

/// A list page: each row rendered and cut to the requested fields, in the envelope, with the
/// `next` link keyed on the last row's marker.
pub fn page<T>(
    spec: &CollectionSpec,
    base: &str,
    query: &ListQuery,
    rows: &[T],
    render: impl Fn(&T) -> Map<String, Value>,
    marker: impl Fn(&T) -> String,
) -> Value {
    let fields = query.list_fields(spec);
    let items = rows
        .iter()
        .map(|r| select(render(r), Some(&fields), spec))
        .collect();
    collection(spec, base, items, query, rows.last().map(marker))
}

/// The same envelope around items the database already rendered (JSON texts joined by commas).
pub fn collection_raw(
    spec: &CollectionSpec,
    base: &str,
    items_json: &str,
    count: u32,
    query: &ListQuery,
    last_marker: Option<String>,
) -> String {
    let mut out = String::with_capacity(items_json.len() + 256);
    out.push_str("{\"");
    out.push_str(spec.envelope);
    out.push_str("\":[");
    out.push_str(items_json);
    out.push(']');
    if count == query.limit {
        if let Some(marker) = last_marker {
            let next = next_link(spec, base, query, &marker);
            out.push_str(",\"next\":");
            out.push_str(&Value::String(next).to_string());
        }
    }
    out.push('}');
    out
}

fn next_link(spec: &CollectionSpec, base: &str, query: &ListQuery, marker: &str) -> String {
    format!(
        "{base}/v1/{}?sort_key={}&sort_dir={}&limit={}&marker={}",
        spec.path,
        query.sort_key,
        query.sort_dir.as_str(),
        query.limit,
        url::form_urlencoded::byte_serialize(marker.as_bytes()).collect::<String>()
    )
}

pub fn location(l: &Location) -> Value {
    json!({"longitude": l.longitude, "latitude": l.latitude, "altitude": l.altitude, "updated_at": l.updated_at})
}

/// The board's config: the provisioning document once registered, else the synthetic one that
/// tells a board where to register.
fn board_config(b: &Board, cfg: &CloudConfig) -> Value {
    if b.config.is_empty() {
        json!({"iotronic": {"board": {"code": b.code},
               "wamp": {"registration-agent": {"url": cfg.board_url(), "realm": "s4t"}}}})
    } else {
        Value::Object(b.config.clone())
    }
}

pub fn board(b: &Board, base: &str, cfg: &CloudConfig) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("uuid".into(), json!(b.uuid));
    m.insert("code".into(), json!(b.code));
    m.insert("status".into(), json!(b.status.as_str()));
    m.insert("name".into(), json!(b.name));
    m.insert("type".into(), json!(b.board_type));
    m.insert("agent".into(), json!(b.agent));
    if b.agent.is_some() {
        m.insert("wstun_ip".into(), json!(cfg.wstun_host()));
    }
    m.insert("owner".into(), json!(b.owner));
    m.insert("session".into(), json!(b.session));
    m.insert("project".into(), json!(b.project));
    m.insert("fleet".into(), json!(b.fleet));
    m.insert("mobile".into(), json!(b.mobile));
    m.insert("lr_version".into(), json!(b.lr_version));
    m.insert("connectivity".into(), Value::Object(b.connectivity.clone()));
    m.insert("links".into(), links(base, "boards", &b.uuid));
    m.insert(
        "location".into(),
        Value::Array(b.location.iter().map(location).collect()),
    );
    m.insert("extra".into(), Value::Object(b.extra.clone()));
    m.insert("config".into(), board_config(b, cfg));
    m.insert("created_at".into(), json!(b.created_at));
    m.insert("updated_at".into(), json!(b.updated_at));
    m
}

pub fn plugin(p: &Plugin, base: &str) -> Map<String, Value> {
    obj(json!({
        "uuid": p.uuid, "name": p.name, "code": p.code, "public": p.public, "owner": p.owner,
        "callable": p.callable, "parameters": p.parameters, "extra": p.extra, "digest": p.digest,
        "links": links(base, "plugins", &p.uuid), "created_at": p.created_at, "updated_at": p.updated_at,
    }))
}

pub fn injection(i: &Injection) -> Value {
    json!({"plugin": i.plugin_uuid, "status": i.status, "onboot": i.onboot,
           "created_at": i.created_at, "updated_at": i.updated_at})
}

pub fn service(s: &Service, base: &str) -> Map<String, Value> {
    obj(json!({
        "uuid": s.uuid, "name": s.name, "project": s.project, "port": s.port, "protocol": s.protocol,
        "extra": s.extra, "links": links(base, "services", &s.uuid),
        "created_at": s.created_at, "updated_at": s.updated_at,
    }))
}

pub fn exposed(e: &ExposedService) -> Value {
    json!({"service": e.service_uuid, "public_port": e.public_port,
           "created_at": e.created_at, "updated_at": e.updated_at})
}

pub fn fleet(f: &Fleet, base: &str) -> Map<String, Value> {
    obj(json!({
        "uuid": f.uuid, "name": f.name, "project": f.project, "description": f.description,
        "extra": f.extra, "links": links(base, "fleets", &f.uuid),
        "created_at": f.created_at, "updated_at": f.updated_at,
    }))
}

pub fn webservice(w: &Webservice, base: &str) -> Map<String, Value> {
    obj(json!({
        "uuid": w.uuid, "name": w.name, "port": w.port, "board_uuid": w.board_uuid, "secure": w.secure,
        "extra": w.extra, "links": links(base, "webservices", &w.uuid),
        "created_at": w.created_at, "updated_at": w.updated_at,
    }))
}

pub fn enabled_webservice(e: &EnabledWebservice) -> Map<String, Value> {
    obj(json!({
        "board_uuid": e.board_uuid, "http_port": e.http_port, "https_port": e.https_port,
        "dns": e.dns, "zone": e.zone, "extra": e.extra,
        "created_at": e.created_at, "updated_at": e.updated_at,
    }))
}

/// A port at `/v1/ports`.
pub fn port(p: &Port, base: &str) -> Map<String, Value> {
    obj(json!({
        "uuid": p.uuid, "board_uuid": p.board_uuid, "MAC_add": p.mac_add, "VIF_name": p.vif_name,
        "network": p.network, "ip": p.ip, "links": links(base, "ports", &p.uuid),
        "created_at": p.created_at, "updated_at": p.updated_at,
    }))
}

/// A port in a board's list: no `board_uuid`, no links.
pub fn board_port(p: &Port) -> Value {
    json!({"uuid": p.uuid, "VIF_name": p.vif_name, "MAC_add": p.mac_add, "ip": p.ip,
           "network": p.network, "created_at": p.created_at, "updated_at": p.updated_at})
}

pub fn request(r: &Request, base: &str) -> Map<String, Value> {
    obj(json!({
        "uuid": r.uuid, "destination_uuid": r.destination_uuid, "main_request_uuid": r.main_request_uuid,
        "pending_requests": r.pending_requests, "status": r.status.as_str(), "project": r.project,
        "type": r.request_type, "action": r.action, "links": links(base, "requests", &r.uuid),
        "created_at": r.created_at, "updated_at": r.updated_at,
    }))
}

pub fn result(r: &RequestResult) -> Map<String, Value> {
    obj(json!({
        "board_uuid": r.board_uuid, "request_uuid": r.request_uuid, "result": r.result.as_str(),
        "message": r.message, "created_at": r.created_at, "updated_at": r.updated_at,
    }))
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
