//! The provider's own writes, told apart from everybody else's in the watch: a reconcile
//! that patched the spec (late initialization, resolved references) or set the external name
//! has acted on what it wrote, so the watch event of that write must not start another
//! reconcile. Kubernetes gives every write a new `resourceVersion`, so an event carrying the
//! very version a write of ours returned is its echo.

use std::collections::HashMap;

/// The last writes of each resource that its reconciles acted on: resource key → the
/// `resourceVersion`s those writes produced. A watch event carrying one of those very
/// versions is the echo of the write (anybody else's write makes another version).
#[derive(Default)]
pub struct OwnWrites(HashMap<String, Vec<String>>);

/// Writes remembered per resource (a reconcile makes three at most; an echo the watch never
/// sends, after a relist, ages out).
const OWN_WRITES_KEPT: usize = 4;

impl OwnWrites {
    pub fn record(&mut self, key: String, resource_version: String) {
        let versions = self.0.entry(key).or_default();
        if versions.len() == OWN_WRITES_KEPT {
            versions.remove(0);
        }
        versions.push(resource_version);
    }

    /// Whether the watch event of `key` at `resource_version` is the echo of a recorded write
    /// (then forgotten: an echo comes once).
    pub fn is_echo(&mut self, key: &str, resource_version: Option<&str>) -> bool {
        let (Some(rv), Some(versions)) = (resource_version, self.0.get_mut(key)) else {
            return false;
        };
        let Some(at) = versions.iter().position(|v| v == rv) else {
            return false;
        };
        versions.remove(at);
        if versions.is_empty() {
            self.0.remove(key);
        }
        true
    }

    /// Forgets a resource that is gone.
    pub fn forget(&mut self, key: &str) {
        self.0.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_table() {
        // (writes recorded for "a", event of "a" at version, is it an echo)
        for (recorded, event, echo) in [
            (vec![], Some("5"), false),
            (vec!["5"], Some("5"), true),
            // Somebody else's write (or an older event) is no echo.
            (vec!["5"], Some("4"), false),
            (vec!["5"], Some("6"), false),
            (vec!["5"], None, false),
            // A run that wrote twice: either echo is recognised.
            (vec!["5", "7"], Some("5"), true),
            (vec!["5", "7"], Some("7"), true),
            // Only the last four writes are kept.
            (vec!["1", "2", "3", "4", "5"], Some("1"), false),
            (vec!["1", "2", "3", "4", "5"], Some("2"), true),
        ] {
            let mut own = OwnWrites::default();
            for rv in &recorded {
                own.record("a".into(), rv.to_string());
            }
            assert_eq!(own.is_echo("a", event), echo, "{recorded:?} then {event:?}");
            assert!(!own.is_echo("b", event), "another resource: {recorded:?}");
        }
    }

    #[test]
    fn an_echo_counts_once_and_a_gone_resource_is_forgotten() {
        let mut own = OwnWrites::default();
        own.record("a".into(), "5".into());
        assert!(own.is_echo("a", Some("5")));
        assert!(!own.is_echo("a", Some("5")), "an echo comes once");
        own.record("a".into(), "9".into());
        own.forget("a");
        assert!(!own.is_echo("a", Some("9")));
        assert!(own.0.is_empty());
    }
}
