//! Fleet-wide plugin operations (an s4t extension): what to run, on which boards, in which
//! batches, and when to stop. No I/O: the conductor runs what this decides.

use serde_json::Value;

use crate::input::BodyReader;
use crate::resources::{JsonObject, PLUGIN_ACTIONS};
use crate::InputError;

/// What a rollout does on each board.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// `PluginInject` of a plugin (uuid or name, resolved by the API).
    Inject { plugin: String, onboot: bool },
    /// A plugin action (`PluginCall`, `PluginStart`, ...).
    Action {
        plugin: String,
        action: String,
        parameters: JsonObject,
    },
}

impl Operation {
    /// The action recorded on the parent request.
    pub fn parent_action(&self) -> String {
        match self {
            Operation::Inject { .. } => "FleetPluginInject".into(),
            Operation::Action { action, .. } => format!("Fleet{action}"),
        }
    }

    /// The board method each board is called with.
    pub fn board_method(&self) -> &str {
        match self {
            Operation::Inject { .. } => "PluginInject",
            Operation::Action { action, .. } => action,
        }
    }
}

/// How a rollout proceeds.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutOptions {
    /// Boards called at once; the next batch starts when this one has finished.
    pub batch_size: usize,
    /// Stop when more boards than this have failed (none: never stop).
    pub max_failures: Option<usize>,
    /// How long one board may take.
    pub board_timeout_secs: u64,
    /// Only boards whose `extra` has all these key/value pairs.
    pub selector: JsonObject,
    /// What happens on boards that are offline when the rollout reaches them.
    pub offline: OfflinePolicy,
}

/// `offline`: `report` (default) records them as not called; `defer` runs their call when the
/// board is online again (kept across restarts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OfflinePolicy {
    #[default]
    Report,
    Defer,
}

pub const DEFAULT_BATCH_SIZE: usize = 50;
pub const DEFAULT_BOARD_TIMEOUT_SECS: u64 = 60;

const OPTION_FIELDS: [&str; 5] = [
    "batch_size",
    "max_failures",
    "board_timeout",
    "selector",
    "offline",
];

fn read_options(r: &mut BodyReader) -> Result<RolloutOptions, InputError> {
    let selector = r.object("selector")?.unwrap_or_default();
    if let Some((k, _)) = selector
        .iter()
        .find(|(_, v)| !matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)))
    {
        return Err(InputError::field(
            "selector",
            format!("selector.{k} must be a string, number or boolean to compare with the board's extra.{k}."),
        ));
    }
    let offline = match r.text("offline", 16)?.as_deref() {
        None | Some("report") => OfflinePolicy::Report,
        Some("defer") => OfflinePolicy::Defer,
        Some(other) => {
            return Err(InputError::field(
                "offline",
                format!("offline {other:?}: use \"report\" (record them as not called) or \"defer\" (run when they are back)."),
            ))
        }
    };
    Ok(RolloutOptions {
        offline,
        batch_size: r
            .integer("batch_size", 1..=1000)?
            .map_or(DEFAULT_BATCH_SIZE, |n| n as usize),
        max_failures: r
            .integer("max_failures", 0..=1_000_000)?
            .map(|n| n as usize),
        board_timeout_secs: r
            .integer("board_timeout", 1..=3600)?
            .map_or(DEFAULT_BOARD_TIMEOUT_SECS, |n| n as u64),
        selector,
    })
}

/// `POST /v1/fleets/{F}/plugins`: `{"plugin", "onboot"?}` plus the rollout options.
pub fn read_inject(body: Value) -> Result<(Operation, RolloutOptions), InputError> {
    let mut accepted = vec!["plugin", "onboot"];
    accepted.extend(OPTION_FIELDS);
    let mut r = BodyReader::new("FleetPluginInject", body, &accepted)?;
    let plugin = r.required_text("plugin", 255)?;
    let onboot = r.boolean("onboot")?.unwrap_or(false);
    let options = read_options(&mut r)?;
    Ok((Operation::Inject { plugin, onboot }, options))
}

/// `POST /v1/fleets/{F}/plugins/{P}/action`: `{"action", "parameters"?}` plus the options.
pub fn read_action(plugin: &str, body: Value) -> Result<(Operation, RolloutOptions), InputError> {
    let mut accepted = vec!["action", "parameters"];
    accepted.extend(OPTION_FIELDS);
    let mut r = BodyReader::new("FleetPluginAction", body, &accepted)?;
    let action = r.required_text("action", 64)?;
    if !PLUGIN_ACTIONS.contains(&action.as_str()) {
        return Err(InputError::field(
            "action",
            format!(
                "Invalid Action {action} for a plugin. Valid actions: {}.",
                PLUGIN_ACTIONS.join(", ")
            ),
        ));
    }
    let parameters = r.object("parameters")?.unwrap_or_default();
    let options = read_options(&mut r)?;
    Ok((
        Operation::Action {
            plugin: plugin.to_string(),
            action,
            parameters,
        },
        options,
    ))
}

/// Whether a board's `extra` matches a selector (every pair equal).
pub fn selects(selector: &JsonObject, extra: &JsonObject) -> bool {
    selector.iter().all(|(k, v)| extra.get(k) == Some(v))
}

/// The rollout's tally so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub succeeded: usize,
    pub failed: usize,
    /// Offline when the rollout reached them: reported, not called.
    pub offline: usize,
    /// Not called because the rollout stopped.
    pub not_run: usize,
    /// Offline, waiting for the board to come back.
    pub deferred: usize,
}

impl Tally {
    /// Stop before the next batch: failures went past the threshold.
    pub fn must_halt(&self, options: &RolloutOptions) -> bool {
        options.max_failures.is_some_and(|m| self.failed > m)
    }

    pub fn summary(&self, options: &RolloutOptions) -> String {
        let mut s = format!(
            "{} succeeded, {} failed, {} offline, {} deferred",
            self.succeeded, self.failed, self.offline, self.deferred
        );
        if self.not_run > 0 {
            s.push_str(&format!(
                ", {} not run: stopped after {} failures (max_failures {})",
                self.not_run,
                self.failed,
                options.max_failures.unwrap_or_default()
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_table() {
        let (op, o) = read_inject(json!({"plugin": "echo"})).unwrap();
        assert_eq!(
            op,
            Operation::Inject {
                plugin: "echo".into(),
                onboot: false
            }
        );
        assert_eq!(
            (o.batch_size, o.max_failures, o.board_timeout_secs),
            (50, None, 60)
        );
        let (op, o) = read_action(
            "echo",
            json!({"action": "PluginCall", "parameters": {"a": 1}, "batch_size": 5,
                   "max_failures": 0, "board_timeout": 2, "selector": {"site": "lab"}}),
        )
        .unwrap();
        assert_eq!(op.board_method(), "PluginCall");
        assert_eq!(op.parent_action(), "FleetPluginCall");
        assert_eq!(
            (o.batch_size, o.max_failures, o.board_timeout_secs),
            (5, Some(0), 2)
        );
        let (_, o) = read_inject(json!({"plugin": "p", "offline": "defer"})).unwrap();
        assert_eq!(o.offline, OfflinePolicy::Defer);
        let bad: [(Value, &str); 7] = [
            (json!({"plugin": "p", "offline": "later"}), "offline"),
            (json!({}), "plugin"),
            (json!({"plugin": "p", "batch_size": 0}), "batch_size"),
            (
                json!({"plugin": "p", "board_timeout": 99999}),
                "board_timeout",
            ),
            (json!({"plugin": "p", "selector": {"k": [1]}}), "selector"),
            (json!({"plugin": "p", "nope": 1}), "nope"),
            (json!({"plugin": "p", "max_failures": -1}), "max_failures"),
        ];
        for (body, field) in bad {
            let e = read_inject(body.clone()).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{body}: {e:?}");
        }
        let e = read_action("p", json!({"action": "PluginDance"})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("action"));
    }

    #[test]
    fn halting_table() {
        let opts = |m: Option<usize>| RolloutOptions {
            batch_size: 10,
            max_failures: m,
            board_timeout_secs: 1,
            selector: JsonObject::new(),
            offline: OfflinePolicy::Report,
        };
        let t = |failed| Tally {
            failed,
            ..Tally::default()
        };
        let table = [
            (None, 100, false),
            (Some(0), 0, false),
            (Some(0), 1, true),
            (Some(3), 3, false),
            (Some(3), 4, true),
        ];
        for (max, failed, halt) in table {
            assert_eq!(t(failed).must_halt(&opts(max)), halt, "{max:?} {failed}");
        }
    }

    #[test]
    fn selector_matches_every_pair() {
        let extra = json!({"site": "lab", "rack": 3})
            .as_object()
            .cloned()
            .unwrap();
        let sel = |v: Value| v.as_object().cloned().unwrap();
        assert!(selects(&sel(json!({})), &extra));
        assert!(selects(&sel(json!({"site": "lab"})), &extra));
        assert!(selects(&sel(json!({"site": "lab", "rack": 3})), &extra));
        assert!(!selects(&sel(json!({"rack": "3"})), &extra));
        assert!(!selects(&sel(json!({"zone": "a"})), &extra));
    }
}
