//! The `Ready` and `Synced` conditions of a managed resource, with Crossplane's merge rule: a
//! condition equal to the one present keeps the old transition time, so a status write that
//! changes nothing is not a change (and triggers no watch event).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    pub last_transition_time: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub observed_generation: i64,
}

fn is_zero(g: &i64) -> bool {
    *g == 0
}

/// A condition without its time and generation yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    pub kind: &'static str,
    pub status: &'static str,
    pub reason: &'static str,
    pub message: String,
}

pub const READY: &str = "Ready";
pub const SYNCED: &str = "Synced";

fn cond(kind: &'static str, status: &'static str, reason: &'static str, message: String) -> Cond {
    Cond {
        kind,
        status,
        reason,
        message,
    }
}

/// The external resource is ready for use (only an Observe says so).
pub fn available() -> Cond {
    cond(READY, "True", "Available", String::new())
}
pub fn unavailable(message: impl Into<String>) -> Cond {
    cond(READY, "False", "Unavailable", message.into())
}
pub fn creating() -> Cond {
    cond(READY, "False", "Creating", String::new())
}
pub fn deleting() -> Cond {
    cond(READY, "False", "Deleting", String::new())
}
pub fn reconcile_success() -> Cond {
    cond(SYNCED, "True", "ReconcileSuccess", String::new())
}
pub fn reconcile_error(message: impl Into<String>) -> Cond {
    cond(SYNCED, "False", "ReconcileError", message.into())
}
pub fn reconcile_paused() -> Cond {
    cond(SYNCED, "False", "ReconcilePaused", String::new())
}

/// Sets `new` in `list` (replacing the condition of the same type), stamped with `generation`
/// and, when it differs from the present one, `now`. Returns whether anything changed.
pub fn set(list: &mut Vec<Condition>, new: &Cond, generation: i64, now: &str) -> bool {
    let fresh = Condition {
        kind: new.kind.to_string(),
        status: new.status.to_string(),
        reason: new.reason.to_string(),
        message: new.message.clone(),
        last_transition_time: now.to_string(),
        observed_generation: generation,
    };
    match list.iter_mut().find(|c| c.kind == new.kind) {
        Some(old) if equal(old, &fresh) => false,
        Some(old) => {
            *old = fresh;
            true
        }
        None => {
            list.push(fresh);
            true
        }
    }
}

/// Crossplane's `Equal`: type, status, reason and message, and the generation only when both
/// carry one.
fn equal(a: &Condition, b: &Condition) -> bool {
    a.kind == b.kind
        && a.status == b.status
        && a.reason == b.reason
        && a.message == b.message
        && (a.observed_generation == 0
            || b.observed_generation == 0
            || a.observed_generation == b.observed_generation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_conditions_keep_their_transition_time() {
        let mut list = Vec::new();
        assert!(set(&mut list, &reconcile_success(), 1, "t1"));
        assert!(!set(&mut list, &reconcile_success(), 1, "t2"));
        assert_eq!(list[0].last_transition_time, "t1");
        // A new generation is a change; no generation on either side is not.
        assert!(set(&mut list, &reconcile_success(), 2, "t3"));
        assert!(!set(&mut list, &reconcile_success(), 0, "t4"));
        assert_eq!(list[0].last_transition_time, "t3");
        // Another message is a change; other types are separate.
        assert!(set(
            &mut list,
            &reconcile_error("observe failed: x"),
            2,
            "t5"
        ));
        assert!(set(&mut list, &available(), 2, "t5"));
        assert_eq!(list.len(), 2);
        assert_eq!(
            (list[0].reason.as_str(), list[0].message.as_str()),
            ("ReconcileError", "observe failed: x")
        );
        let json = serde_json::to_value(&list[1]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "Ready", "status": "True", "reason": "Available", "lastTransitionTime": "t5", "observedGeneration": 2})
        );
    }
}
