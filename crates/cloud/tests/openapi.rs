//! The OpenAPI document: its copy in `docs/` is current, and every route it documents is served.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use serde_json::Value;
use tower::ServiceExt;

use s4t_cloud::api::{router, AppState};
use s4t_cloud::openapi::document;
use s4t_cloud::CloudConfig;
use s4t_store::Store;

const DOCS_COPY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");

/// The router's answer to a path it has no route for.
const FALLBACK: &str = "The resource could not be found.";

/// Stands for every `{param}`: a well-formed uuid that names nothing.
const DUMMY_ID: &str = "00000000-0000-4000-8000-000000000000";

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[test]
fn docs_copy_matches_generated_document() {
    let generated = serde_json::to_string_pretty(&document()).unwrap() + "\n";
    if std::env::var("S4T_UPDATE_OPENAPI").as_deref() == Ok("1") {
        let path = std::path::Path::new(DOCS_COPY);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, generated).unwrap();
        return;
    }
    let copy = std::fs::read_to_string(DOCS_COPY).unwrap_or_default();
    assert!(
        copy == generated,
        "docs/openapi.json is not the generated document: run \
         `S4T_UPDATE_OPENAPI=1 cargo test -p s4t-cloud --test openapi` and commit it"
    );
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let dir = std::env::temp_dir().join(format!("s4t-openapi-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open_sqlite_file(&dir.join("s4t.db")).await.unwrap();
    let mut cfg = CloudConfig::for_dir(&dir);
    cfg.noauth = true;
    let app = router(AppState::new(store.clone(), Arc::new(cfg)));

    let doc = document();
    let mut unserved = Vec::new();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let uri = path
            .split('/')
            .map(|s| if s.starts_with('{') { DUMMY_ID } else { s })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().unwrap().keys() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, fault) = send(&app, method.clone(), &uri).await;
            checked += 1;
            if status == StatusCode::METHOD_NOT_ALLOWED || fault == FALLBACK {
                unserved.push(format!("{method} {path}: {status} {fault}"));
            }
        }
    }

    // The checks above can fail: what is not routed does answer this way.
    for path in ["/v1/nothing", "/v1/boards/b1/nothing"] {
        let (status, fault) = send(&app, Method::GET, path).await;
        assert_eq!(
            (status, fault.as_str()),
            (StatusCode::NOT_FOUND, FALLBACK),
            "{path}"
        );
    }
    let (status, _) = send(&app, Method::PUT, "/v1/requests").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);

    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    assert!(checked > 60, "only {checked} operations documented");
    assert!(
        unserved.is_empty(),
        "documented but not served:\n{}",
        unserved.join("\n")
    );
}

/// Sends `method uri` as an admin; returns the status and the error's message, if any.
async fn send(app: &Router, method: Method, uri: &str) -> (StatusCode, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("X-Roles", "admin")
        .header("Content-Type", "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, fault_string(&bytes))
}

/// The `faultstring` of an IoTronic error body; empty for any other body.
fn fault_string(body: &[u8]) -> String {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["error_message"].as_str().map(str::to_string));
    message
        .and_then(|m| serde_json::from_str::<Value>(&m).ok())
        .and_then(|fault| fault["faultstring"].as_str().map(str::to_string))
        .unwrap_or_default()
}
