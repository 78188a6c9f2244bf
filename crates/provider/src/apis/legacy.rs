//! The migration API: the cluster-scoped kinds of the upstream Go provider, in its group
//! [`LEGACY_GROUP`], with its field names, so that its manifests keep working. Each is
//! reconciled by the code of the modern kind it maps to (`crate::kinds::legacy`).
//!
//! Differences from upstream, all deliberate: the S4T uuid is the external name (upstream
//! wrote it into `spec.forProvider.uuid` only; a resource with a uuid there and no external
//! name is adopted under that uuid, not made again); a deleted board is made again; Ready and
//! Synced tell the truth; `providerConfigRef.name` names a ClusterProviderConfig.

use super::*;
use serde_json::{Map, Value};

/// The upstream provider's API group.
pub const LEGACY_GROUP: &str = "iot.s4t.crossplane.io";

/// `providerConfigRef` of the legacy kinds: a ClusterProviderConfig by name.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct LegacyProviderConfigReference {
    #[serde(default = "default_name")]
    pub name: String,
}

fn default_name() -> String {
    "default".into()
}

impl Default for LegacyProviderConfigReference {
    fn default() -> Self {
        LegacyProviderConfigReference {
            name: default_name(),
        }
    }
}

/// `writeConnectionSecretToRef` of the legacy kinds: a Secret in any namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct SecretReference {
    pub name: String,
    pub namespace: String,
}

/// A legacy cluster-scoped managed resource kind: the v1 spec fields (`deletionPolicy`
/// included), the managed status, and `atProvider` as S4T reports it.
macro_rules! legacy_resource {
    (
        #[doc = $spec_doc:literal]
        kind: $kind:literal, doc: $doc:literal,
        spec: $spec:ident, status: $status:ident = $status_name:literal,
        for_provider: $params:ty
    ) => {
        #[doc = $spec_doc]
        #[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
        #[kube(
                            group = "iot.s4t.crossplane.io",
                            version = "v1alpha1",
                            kind = $kind,
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
            /// `Delete` (default) or `Orphan`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(regex(pattern = "^(Delete|Orphan)$"))]
            pub deletion_policy: Option<String>,
            #[serde(default)]
            pub provider_config_ref: LegacyProviderConfigReference,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub write_connection_secret_to_ref: Option<SecretReference>,
        }

        #[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct $status {
            #[serde(flatten)]
            pub managed: ManagedStatus,
            #[serde(default)]
            #[schemars(schema_with = "free_object")]
            pub at_provider: Map<String, Value>,
        }
    };
}

/// One of a Device's locations (upstream: strings or numbers).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct LegacyLocation {
    #[schemars(schema_with = "number_or_string")]
    pub latitude: Value,
    #[schemars(schema_with = "number_or_string")]
    pub longitude: Value,
    #[schemars(schema_with = "number_or_string")]
    pub altitude: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_objects")]
    pub updated_at: Option<Vec<Map<String, Value>>>,
}

fn number_or_string(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"x-kubernetes-int-or-string": true})
}

/// The upstream Device (a board).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct DeviceParameters {
    /// Written by upstream after create; adopted as the external name when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    pub code: String,
    pub name: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub board_type: Option<String>,
    #[schemars(length(min = 1))]
    pub location: Vec<LegacyLocation>,
    // Upstream copied these from S4T into the spec; kept so its manifests parse, not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wstun_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugins: Option<Vec<String>>,
}

legacy_resource! {
    /// The upstream provider's Device.
    kind: "Device", doc: "A board (the upstream provider's Device; migration API).",
    spec: DeviceSpec, status: DeviceStatus = "DeviceStatus",
    for_provider: DeviceParameters
}

/// The upstream Plugin.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct LegacyPluginParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    pub name: String,
    #[schemars(schema_with = "free_object")]
    pub parameters: Map<String, Value>,
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

legacy_resource! {
    /// The upstream provider's Plugin.
    kind: "Plugin", doc: "A plugin (the upstream provider's Plugin; migration API).",
    spec: LegacyPluginSpec, status: LegacyPluginStatus = "LegacyPluginStatus",
    for_provider: LegacyPluginParameters
}

/// The upstream BoardPluginInjection: inject only (upstream never started the plugin).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BoardPluginInjectionParameters {
    pub board_uuid: String,
    pub plugin_uuid: String,
}

legacy_resource! {
    /// The upstream provider's BoardPluginInjection.
    kind: "BoardPluginInjection", doc: "A plugin injected into a board (upstream; migration API).",
    spec: BoardPluginInjectionSpec, status: BoardPluginInjectionStatus = "BoardPluginInjectionStatus",
    for_provider: BoardPluginInjectionParameters
}

/// The upstream Service.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct LegacyServiceParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    pub protocol: String,
}

legacy_resource! {
    /// The upstream provider's Service.
    kind: "Service", doc: "A service (the upstream provider's Service; migration API).",
    spec: LegacyServiceSpec, status: LegacyServiceStatus = "LegacyServiceStatus",
    for_provider: LegacyServiceParameters
}

/// The upstream BoardServiceInjection (a service exposed on a board).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BoardServiceInjectionParameters {
    pub board_uuid: String,
    pub service_uuid: String,
}

legacy_resource! {
    /// The upstream provider's BoardServiceInjection.
    kind: "BoardServiceInjection", doc: "A service exposed on a board (upstream; migration API).",
    spec: BoardServiceInjectionSpec, status: BoardServiceInjectionStatus = "BoardServiceInjectionStatus",
    for_provider: BoardServiceInjectionParameters
}

/// The upstream Fleet.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct LegacyFleetParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_object")]
    pub extra: Option<Map<String, Value>>,
}

legacy_resource! {
    /// The upstream provider's Fleet.
    kind: "Fleet", doc: "A fleet (the upstream provider's Fleet; migration API).",
    spec: LegacyFleetSpec, status: LegacyFleetStatus = "LegacyFleetStatus",
    for_provider: LegacyFleetParameters
}

/// The upstream Port. S4T assigns the MAC, interface name and address: `macAdd`, `vifName`
/// and `ip` are accepted and not sent.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LegacyPortParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    pub board_uuid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_add: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vif_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

legacy_resource! {
    /// The upstream provider's Port.
    kind: "Port", doc: "A board's port on a network (upstream; migration API).",
    spec: LegacyPortSpec, status: LegacyPortStatus = "LegacyPortStatus",
    for_provider: LegacyPortParameters
}

/// The upstream Webservice.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LegacyWebserviceParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    pub name: String,
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board_uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_object")]
    pub extra: Option<Map<String, Value>>,
}

legacy_resource! {
    /// The upstream provider's Webservice.
    kind: "Webservice", doc: "A board's web service (upstream; migration API).",
    spec: LegacyWebserviceSpec, status: LegacyWebserviceStatus = "LegacyWebserviceStatus",
    for_provider: LegacyWebserviceParameters
}
