//! Plugin and PluginInjection.

use super::*;
use crate::refs::{Reference, Selector};
use serde_json::{Map, Value};

/// What a Plugin is in S4T (`POST /v1/plugins`, `PATCH /v1/plugins/{uuid}`).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginParameters {
    /// The plugin's name in S4T (default: the resource's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The plugin's Python source, as Lightning-rod runs it (a class `Worker` with `run`).
    #[schemars(length(min = 1, max = 4194304))]
    pub code: String,
    /// Visible to every project of the site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
    /// Called (`PluginCall`, answers once) rather than started (`PluginStart`, runs on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callable: Option<bool>,
    /// The parameters every start or call must give (names and example values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_object")]
    pub parameters: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_object")]
    pub extra: Option<Map<String, Value>>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginObservation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// sha256 of the code S4T holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

managed_resource! {
    /// A plugin in an S4T cloud's catalogue.
    kind: "Plugin",
    doc: "A plugin in an S4T cloud's catalogue: Python code that boards run once injected.",
    spec: PluginSpec, status: PluginStatus = "PluginStatus",
    for_provider: PluginParameters, at_provider: PluginObservation,
    columns: [
        printcolumn(name = "DIGEST", type_ = "string", priority = 1, json_path = ".status.atProvider.digest"),
    ]
}

/// A plugin injected into a board, or into every board of a fleet, and (by default) started.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.plugin) || has(self.pluginRef) || has(self.pluginSelector)",
     "message": "give the plugin: plugin (uuid), pluginRef or pluginSelector"},
    {"rule": "[has(self.board) || has(self.boardRef) || has(self.boardSelector), has(self.fleet) || has(self.fleetRef) || has(self.fleetSelector)].filter(x, x).size() == 1",
     "message": "give one target: a board (board, boardRef, boardSelector) or a fleet (fleet, fleetRef, fleetSelector)"}
]))]
pub struct PluginInjectionParameters {
    /// The plugin's uuid (resolved from `pluginRef`/`pluginSelector` when given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "plugin is immutable: make another PluginInjection"}]))]
    pub plugin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_ref: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_selector: Option<Selector>,
    /// The board's uuid (resolved from `boardRef`/`boardSelector` when given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "board is immutable: make another PluginInjection"}]))]
    pub board: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board_ref: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board_selector: Option<Selector>,
    /// The fleet's uuid: the plugin goes to every board of the fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "fleet is immutable: make another PluginInjection"}]))]
    pub fleet: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet_ref: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet_selector: Option<Selector>,
    /// Started again when the board boots.
    #[serde(default)]
    pub onboot: bool,
    /// Keep the plugin running (`PluginStart`); false only injects it. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<bool>,
    /// The parameters of `PluginStart`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_object")]
    pub parameters: Option<Map<String, Value>>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginInjectionObservation {
    /// Boards targeted (one, or the fleet's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boards: Option<u32>,
    /// Boards that have the plugin injected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub injected: Option<u32>,
    /// Boards where the plugin runs (`PluginStatus` ALIVE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<u32>,
    /// On a single board: the plugin's state there (ALIVE, DEAD, or why it is unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

managed_resource! {
    /// A plugin injected into a board or a fleet's boards.
    kind: "PluginInjection",
    doc: "A plugin injected into a board (or into every board of a fleet) and kept running.",
    spec: PluginInjectionSpec, status: PluginInjectionStatus = "PluginInjectionStatus",
    for_provider: PluginInjectionParameters, at_provider: PluginInjectionObservation,
    columns: [
        printcolumn(name = "STATE", type_ = "string", json_path = ".status.atProvider.state"),
        printcolumn(name = "RUNNING", type_ = "integer", json_path = ".status.atProvider.running"),
    ]
}
