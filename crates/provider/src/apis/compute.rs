//! Webservice and Workload.

use super::*;
use crate::refs::{Reference, Selector};
use serde_json::{Map, Value};

/// A board's web service published by the cloud's HTTPS front
/// (`PUT /v1/boards/{board}/webservices`). The board's webservices must be enabled.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.board) || has(self.boardRef) || has(self.boardSelector)",
     "message": "give the board: board (uuid), boardRef or boardSelector"}
]))]
pub struct WebserviceParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "board is immutable: make another Webservice"}]))]
    pub board: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board_ref: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board_selector: Option<Selector>,
    /// A DNS label (default: the resource's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"))]
    pub name: Option<String>,
    /// The port on the board.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// Published over HTTPS (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_object")]
    pub extra: Option<Map<String, Value>>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebserviceObservation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

managed_resource! {
    /// A board's web service published by the cloud.
    kind: "Webservice",
    doc: "A board's web service, published by the cloud's HTTPS front.",
    spec: WebserviceSpec, status: WebserviceStatus = "WebserviceStatus",
    for_provider: WebserviceParameters, at_provider: WebserviceObservation,
    columns: [
        printcolumn(name = "PORT", type_ = "integer", json_path = ".spec.forProvider.port"),
    ]
}

/// A workload (docs/workloads.md): processes or WASM modules the cloud places on boards.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadParameters {
    /// The workload's name in S4T (default: the resource's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `process` or `wasm`.
    #[schemars(regex(pattern = "^(process|wasm)$"))]
    pub runtime: String,
    #[schemars(schema_with = "free_object")]
    pub artifact: Map<String, Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// `always`, `on-failure` or `never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_object")]
    pub limits: Option<Map<String, Value>>,
    /// `{"board": B}`, or `{"replicas": N, "fleet"?: F, "selector"?: {...}}`.
    #[schemars(schema_with = "free_object")]
    pub placement: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_objects")]
    pub expose: Option<Vec<Map<String, Value>>>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadObservation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<i64>,
}

managed_resource! {
    /// A workload placed on boards.
    kind: "Workload",
    doc: "A workload of an S4T cloud: processes or WASM modules placed on boards.",
    spec: WorkloadSpec, status: WorkloadStatus = "WorkloadStatus",
    for_provider: WorkloadParameters, at_provider: WorkloadObservation,
    columns: [
        printcolumn(name = "DESIRED", type_ = "integer", json_path = ".status.atProvider.desired"),
        printcolumn(name = "RUNNING", type_ = "integer", json_path = ".status.atProvider.running"),
    ]
}
