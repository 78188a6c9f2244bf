//! Service and ServiceExposure.

use super::*;
use crate::refs::{Reference, Selector};
use serde_json::{Map, Value};

/// What a Service is in S4T (`POST /v1/services`, `PATCH /v1/services/{uuid}`): a board-local
/// port that boards can expose through the cloud's tunnels.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceParameters {
    /// The service's name in S4T (default: the resource's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The port on the board.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// `TCP` or `UDP`.
    #[schemars(regex(pattern = "^(TCP|UDP)$"))]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_object")]
    pub extra: Option<Map<String, Value>>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceObservation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

managed_resource! {
    /// A service (a board-local port) of an S4T cloud.
    kind: "Service",
    doc: "A service of an S4T cloud: a board-local TCP or UDP port that boards can expose.",
    spec: ServiceSpec, status: ServiceStatus = "ServiceStatus",
    for_provider: ServiceParameters, at_provider: ServiceObservation,
    columns: [
        printcolumn(name = "PORT", type_ = "integer", json_path = ".spec.forProvider.port"),
        printcolumn(name = "PROTOCOL", type_ = "string", json_path = ".spec.forProvider.protocol"),
    ]
}

/// A service exposed on a board: the cloud opens a public port that reaches the service's
/// port on the board through the board's tunnel (`ServiceEnable`).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.service) || has(self.serviceRef) || has(self.serviceSelector)",
     "message": "give the service: service (uuid), serviceRef or serviceSelector"},
    {"rule": "has(self.board) || has(self.boardRef) || has(self.boardSelector)",
     "message": "give the board: board (uuid), boardRef or boardSelector"}
]))]
pub struct ServiceExposureParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "service is immutable: make another ServiceExposure"}]))]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_ref: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_selector: Option<Selector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "board is immutable: make another ServiceExposure"}]))]
    pub board: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board_ref: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board_selector: Option<Selector>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceExposureObservation {
    /// The cloud's public port for the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_port: Option<u16>,
    /// The cloud's public host, where `publicPort` is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

managed_resource! {
    /// A service exposed on a board through the cloud.
    kind: "ServiceExposure",
    doc: "A service exposed on a board: a public port of the cloud tunnelled to the board. Its connection Secret has host and port.",
    spec: ServiceExposureSpec, status: ServiceExposureStatus = "ServiceExposureStatus",
    for_provider: ServiceExposureParameters, at_provider: ServiceExposureObservation,
    columns: [
        printcolumn(name = "HOST", type_ = "string", json_path = ".status.atProvider.host"),
        printcolumn(name = "PUBLIC-PORT", type_ = "integer", json_path = ".status.atProvider.publicPort"),
    ]
}
