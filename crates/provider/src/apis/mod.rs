//! The provider's Kubernetes API: Crossplane v2 namespaced managed resources in the group
//! [`GROUP`], and the ProviderConfig kinds that name an S4T cloud (a site).
//!
//! The group mirrors the upstream provider's `iot.s4t.crossplane.io` with Crossplane v2's
//! `.m.` infix for namespaced managed resources.

// Several `printcolumn(... type_ = "string" ...)` in one `#[kube]` read to clippy as the same
// attribute twice.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;

/// The API group of the managed resources and ProviderConfigs.
pub const GROUP: &str = "iot.s4t.m.crossplane.io";
pub const VERSION: &str = "v1alpha1";

/// Which ProviderConfig (site) a managed resource uses.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct ProviderConfigReference {
    /// `ClusterProviderConfig` (default) or `ProviderConfig` (in the resource's namespace).
    #[serde(default = "default_config_kind")]
    pub kind: String,
    #[serde(default = "default_config_name")]
    pub name: String,
}

fn default_config_kind() -> String {
    "ClusterProviderConfig".into()
}

fn default_config_name() -> String {
    "default".into()
}

impl Default for ProviderConfigReference {
    fn default() -> Self {
        ProviderConfigReference {
            kind: default_config_kind(),
            name: default_config_name(),
        }
    }
}

/// Where a managed resource's connection details are written (a Secret in its namespace).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct LocalSecretReference {
    pub name: String,
}

/// The status every managed resource has.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

/// A board's location.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct Location {
    pub latitude: String,
    pub longitude: String,
    #[serde(default = "zero")]
    pub altitude: String,
}

fn zero() -> String {
    "0".into()
}

/// What a Board is in S4T (`POST /v1/boards`, `PATCH /v1/boards/{uuid}`).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BoardParameters {
    /// The board's name in S4T (default: the resource's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The registration code the board presents on first boot.
    #[schemars(length(min = 1, max = 255))]
    pub code: String,
    /// `virtual`, `gateway`, `server`, ... (S4T's `type`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub board_type: Option<String>,
    pub location: Location,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<bool>,
    /// The fleet's uuid or name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<String>,
    /// Free attributes (S4T's `extra`; label selectors of fleets and workloads match them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

/// What S4T says about a Board.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BoardObservation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// `registered`, `offline` or `online`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr_version: Option<String>,
}

/// A Crossplane v2 managed resource kind: its spec (`forProvider`, `managementPolicies`,
/// `providerConfigRef`, `writeConnectionSecretToRef`), its status (the managed conditions and
/// `atProvider`), and the printer columns every managed kind has, with `columns` before AGE.
macro_rules! managed_resource {
    (
        #[doc = $spec_doc:literal]
        kind: $kind:literal, doc: $doc:literal,
        spec: $spec:ident, status: $status:ident = $status_name:literal,
        for_provider: $params:ty, at_provider: $observation:ty,
        columns: [$($columns:tt)*]
    ) => {
        #[doc = $spec_doc]
        #[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
        #[kube(
            group = "iot.s4t.m.crossplane.io",
            version = "v1alpha1",
            kind = $kind,
            namespaced,
            doc = $doc,
            status = $status_name,
            category = "crossplane",
            category = "managed",
            category = "s4t",
            printcolumn(
                name = "READY",
                type_ = "string",
                json_path = ".status.conditions[?(@.type=='Ready')].status"
            ),
            printcolumn(
                name = "SYNCED",
                type_ = "string",
                json_path = ".status.conditions[?(@.type=='Synced')].status"
            ),
            printcolumn(
                name = "EXTERNAL-NAME",
                type_ = "string",
                json_path = ".metadata.annotations.crossplane\\.io/external-name"
            ),
            $($columns)*
            printcolumn(
                name = "AGE",
                type_ = "date",
                json_path = ".metadata.creationTimestamp"
            )
        )]
        #[serde(rename_all = "camelCase")]
        pub struct $spec {
            pub for_provider: $params,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub management_policies: Option<Vec<String>>,
            #[serde(default)]
            pub provider_config_ref: ProviderConfigReference,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub write_connection_secret_to_ref: Option<LocalSecretReference>,
        }

        #[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct $status {
            #[serde(flatten)]
            pub managed: ManagedStatus,
            #[serde(default)]
            pub at_provider: $observation,
        }
    };
}

/// Free JSON objects (plugin parameters, extras, workload artifacts): kept as given.
pub fn free_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// Like [`free_object`], for an optional field.
pub fn free_objects(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
    })
}

mod compute;
pub mod legacy;
mod network;
mod plugin;
mod service;
pub use compute::*;
pub use network::*;
pub use plugin::*;
pub use service::*;

managed_resource! {
    /// A board of an S4T cloud.
    kind: "Board",
    doc: "A board of an S4T cloud: registered with its code, online once its agent connects.",
    spec: BoardSpec, status: BoardStatus = "BoardStatus",
    for_provider: BoardParameters, at_provider: BoardObservation,
    columns: [
        printcolumn(
            name = "STATUS",
            type_ = "string",
            json_path = ".status.atProvider.status"
        ),
    ]
}

/// What a Fleet is in S4T (`POST /v1/fleets`, `PATCH /v1/fleets/{uuid}`).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FleetParameters {
    /// The fleet's name in S4T (default: the resource's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FleetObservation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

managed_resource! {
    /// A fleet of boards of an S4T cloud.
    kind: "Fleet",
    doc: "A fleet of an S4T cloud: boards grouped for rollouts and placement.",
    spec: FleetSpec, status: FleetStatus = "FleetStatus",
    for_provider: FleetParameters, at_provider: FleetObservation,
    columns: []
}

/// Where a site's API token is.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeySelector {
    /// Only for ClusterProviderConfig; a ProviderConfig reads its own namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    pub key: String,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    /// `Secret` (an API token; Keystone and OIDC later).
    #[schemars(regex(pattern = "^Secret$"))]
    pub source: String,
    pub secret_ref: SecretKeySelector,
}

/// One S4T cloud (a site).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteSpec {
    /// The REST API root, without `/v1` (`https://s4t.site-a.example.org`).
    #[schemars(regex(pattern = "^https?://"))]
    pub endpoint: String,
    /// PEM certificates that sign the endpoint's certificate, when it is not publicly trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    pub credentials: Credentials,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderConfigStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<i64>,
}

/// A site for the managed resources of one namespace.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "iot.s4t.m.crossplane.io",
    version = "v1alpha1",
    kind = "ProviderConfig",
    namespaced,
    doc = "An S4T cloud (a site) for the managed resources of this namespace.",
    status = "ProviderConfigStatus",
    category = "crossplane",
    category = "provider",
    category = "s4t",
    printcolumn(name = "ENDPOINT", type_ = "string", json_path = ".spec.endpoint"),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ProviderConfigSpec {
    #[serde(flatten)]
    pub site: SiteSpec,
}

/// A site for managed resources of any namespace.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "iot.s4t.m.crossplane.io",
    version = "v1alpha1",
    kind = "ClusterProviderConfig",
    doc = "An S4T cloud (a site) for managed resources of any namespace.",
    status = "ProviderConfigStatus",
    category = "crossplane",
    category = "provider",
    category = "s4t",
    printcolumn(name = "ENDPOINT", type_ = "string", json_path = ".spec.endpoint"),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterProviderConfigSpec {
    #[serde(flatten)]
    pub site: SiteSpec,
}

/// Every CRD of the provider, with the file name it is written to (`package/crds/`).
pub fn crds() -> Vec<(
    String,
    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
)> {
    use kube::CustomResourceExt;
    [
        Board::crd(),
        Fleet::crd(),
        Plugin::crd(),
        PluginInjection::crd(),
        Service::crd(),
        ServiceExposure::crd(),
        Network::crd(),
        Port::crd(),
        Webservice::crd(),
        Workload::crd(),
        legacy::Device::crd(),
        legacy::Plugin::crd(),
        legacy::BoardPluginInjection::crd(),
        legacy::Service::crd(),
        legacy::BoardServiceInjection::crd(),
        legacy::Fleet::crd(),
        legacy::Port::crd(),
        legacy::Webservice::crd(),
        ProviderConfig::crd(),
        ClusterProviderConfig::crd(),
    ]
    .into_iter()
    .map(|crd| {
        (
            format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural),
            crd,
        )
    })
    .collect()
}

/// The CRDs as the YAML documents of `package/crds/`.
pub fn crd_files() -> Vec<(String, String)> {
    crds()
        .into_iter()
        .map(|(name, crd)| {
            let yaml = serde_norway::to_string(&crd).expect("a CRD serialises");
            (
                name,
                format!("# Generated by `s4t provider crds`: do not edit.\n{yaml}"),
            )
        })
        .collect()
}
