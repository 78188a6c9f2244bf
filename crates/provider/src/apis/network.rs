//! Network and Port (the overlay of docs/networks.md).

use super::*;
use crate::refs::{Reference, Selector};

/// What a Network is in S4T (`POST /v1/networks`). S4T cannot change a network, so neither
/// can the spec.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "a network cannot change: make another Network"}]))]
pub struct NetworkParameters {
    /// The network's name in S4T (default: the resource's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The IPv4 range, such as `10.10.0.0/24`.
    #[schemars(regex(pattern = "^[0-9]{1,3}(\\.[0-9]{1,3}){3}/[0-9]{1,2}$"))]
    pub cidr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 576, max = 9000))]
    pub mtu: Option<u16>,
    /// The address the cloud takes on the network (`--bridge-networks`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkObservation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u16>,
    /// Addresses given to ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free: Option<i64>,
}

managed_resource! {
    /// An overlay network of an S4T cloud.
    kind: "Network",
    doc: "An overlay network of an S4T cloud: boards join it through Ports.",
    spec: NetworkSpec, status: NetworkStatus = "NetworkStatus",
    for_provider: NetworkParameters, at_provider: NetworkObservation,
    columns: [
        printcolumn(name = "CIDR", type_ = "string", json_path = ".spec.forProvider.cidr"),
    ]
}

/// A board's port on a network (`PUT /v1/boards/{board}/ports`): a TAP interface on the board
/// with an address of the network, tunnelled to the cloud.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.board) || has(self.boardRef) || has(self.boardSelector)",
     "message": "give the board: board (uuid), boardRef or boardSelector"},
    {"rule": "has(self.network) || has(self.networkRef) || has(self.networkSelector)",
     "message": "give the network: network (uuid), networkRef or networkSelector"}
]))]
pub struct PortParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "board is immutable: make another Port"}]))]
    pub board: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board_ref: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board_selector: Option<Selector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "network is immutable: make another Port"}]))]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_ref: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_selector: Option<Selector>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortObservation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// The TAP interface's name on the board.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// The tunnel: `up` or `down`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<String>,
}

managed_resource! {
    /// A board's port on an overlay network.
    kind: "Port",
    doc: "A board's port on an overlay network: a TAP interface with an address of the network.",
    spec: PortSpec, status: PortStatus = "PortStatus",
    for_provider: PortParameters, at_provider: PortObservation,
    columns: [
        printcolumn(name = "IP", type_ = "string", json_path = ".status.atProvider.ip"),
        printcolumn(name = "TUNNEL", type_ = "string", json_path = ".status.atProvider.tunnel"),
    ]
}
