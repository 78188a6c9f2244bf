//! `GET /` and `GET /v1`: the version documents, public as upstream.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::{AppState, BaseUrl};

fn version(base: &str) -> Value {
    json!({"id": "v1", "links": [{"href": format!("{base}/v1/"), "rel": "self"}],
           "status": "CURRENT", "version": "1.0", "min_version": "1.0"})
}

pub async fn root(base: BaseUrl) -> Json<Value> {
    Json(json!({
        "name": "OpenStack Iotronic API",
        "description": "Iotronic is an OpenStack project which aims to provision baremetal machines. Served by s4t.",
        "versions": [version(&base.0)],
        "default_version": version(&base.0),
    }))
}

pub async fn v1(base: BaseUrl) -> Json<Value> {
    let l = |c: &str| json!([{"href": format!("{}/v1/{c}/", base.0), "rel": "self"}, {"href": format!("{}/{c}/", base.0), "rel": "bookmark"}]);
    Json(json!({
        "id": "v1",
        "links": [{"href": format!("{}/v1/", base.0), "rel": "self"}],
        "boards": l("boards"), "plugins": l("plugins"), "services": l("services"), "ports": l("ports"),
        "webservices": l("webservices"), "fleets": l("fleets"), "requests": l("requests"),
        "enabledwebservices": l("enabledwebservices"),
    }))
}

pub async fn openapi(State(_): State<AppState>) -> Json<Value> {
    Json(crate::openapi::document())
}
