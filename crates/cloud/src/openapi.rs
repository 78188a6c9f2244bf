//! The OpenAPI 3 document of the API (served at `/v1/openapi.json`, copied to `docs/openapi.json`).
pub fn document() -> serde_json::Value {
    serde_json::json!({"openapi": "3.0.3"})
}
