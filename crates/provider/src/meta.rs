//! The Crossplane metadata a managed resource carries: annotation keys, the finalizer, and the
//! rule that tells an interrupted create from a finished one.

use chrono::{DateTime, SecondsFormat, Utc};

/// The external resource's identifier: for s4t kinds, the S4T uuid.
pub const EXTERNAL_NAME: &str = "crossplane.io/external-name";
/// Set (RFC 3339, seconds) just before Create is called.
pub const CREATE_PENDING: &str = "crossplane.io/external-create-pending";
/// Set after Create succeeded.
pub const CREATE_SUCCEEDED: &str = "crossplane.io/external-create-succeeded";
/// Set after Create failed.
pub const CREATE_FAILED: &str = "crossplane.io/external-create-failed";
/// Exactly `"true"` pauses reconciliation.
pub const PAUSED: &str = "crossplane.io/paused";
/// A per-resource poll interval (a Go duration such as `30s` or `5m`).
pub const POLL_INTERVAL: &str = "crossplane.io/poll-interval";
/// An opaque token; a new value asks for a reconcile, acknowledged in `status.lastHandledReconcileAt`.
pub const RECONCILE_REQUESTED_AT: &str = "crossplane.io/reconcile-requested-at";
/// Annotations whose changes do not trigger a reconcile (the create bookkeeping the
/// reconciler writes itself just before and after a failed create).
pub const IGNORED_BY_WATCH: [&str; 2] = [CREATE_PENDING, CREATE_FAILED];
/// The finalizer of managed resources.
pub const FINALIZER: &str = "finalizer.managedresource.crossplane.io";
/// The type of connection-details Secrets.
pub const CONNECTION_SECRET_TYPE: &str = "connection.crossplane.io/v1alpha1";

/// Annotation time format: RFC 3339 with second precision, UTC.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn parse(value: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Whether a create was started and never recorded as finished: the pending time is strictly
/// after both the succeeded and the failed times (second precision, so equal counts as done).
/// When it is, the external resource may exist without the resource knowing its name, and only
/// a person can tell whether creating again is safe.
pub fn create_incomplete(
    pending: Option<&str>,
    succeeded: Option<&str>,
    failed: Option<&str>,
) -> bool {
    let Some(pending) = parse(pending) else {
        return false;
    };
    let last = parse(succeeded).max(parse(failed));
    last.is_none_or(|done| pending > done)
}

/// Whether a create succeeded less than `grace` before `now` (the external API may not list
/// the new resource yet).
pub fn created_within(
    succeeded: Option<&str>,
    now: DateTime<Utc>,
    grace: chrono::Duration,
) -> bool {
    parse(succeeded).is_some_and(|t| now.signed_duration_since(t) < grace)
}

/// Parses the Go duration strings Crossplane uses for `poll-interval` (`90s`, `5m`, `1h30m`,
/// `250ms`); `None` for anything else.
pub fn parse_go_duration(text: &str) -> Option<std::time::Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = [
            ("ms", 0.001),
            ("us", 0.000_001),
            ("µs", 0.000_001),
            ("ns", 0.000_000_001),
            ("h", 3600.0),
            ("m", 60.0),
            ("s", 1.0),
        ]
        .into_iter()
        .find(|(u, _)| rest.starts_with(u))
        .map(|(u, f)| (f, u.len()))?;
        total += value * unit;
        rest = &rest[len..];
    }
    Some(std::time::Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_incomplete_table() {
        let t0 = "2026-12-04T10:00:00Z";
        let t1 = "2026-12-04T10:00:01Z";
        for (pending, succeeded, failed, incomplete) in [
            (None, None, None, false),
            (Some(t0), None, None, true),
            (Some(t1), Some(t0), None, true),
            (Some(t0), Some(t1), None, false),
            (Some(t0), Some(t0), None, false), // same second: done
            (Some(t1), None, Some(t0), true),
            (Some(t0), None, Some(t1), false),
            (Some(t1), Some(t0), Some(t1), false),
            (Some("garbage"), None, None, false),
            (Some(t0), Some("garbage"), None, true),
        ] {
            assert_eq!(
                create_incomplete(pending, succeeded, failed),
                incomplete,
                "{pending:?} {succeeded:?} {failed:?}"
            );
        }
    }

    #[test]
    fn durations_and_grace() {
        use std::time::Duration;
        for (text, secs) in [
            ("30s", Some(30.0)),
            ("5m", Some(300.0)),
            ("1h30m", Some(5400.0)),
            ("250ms", Some(0.25)),
            ("1.5s", Some(1.5)),
            ("", None),
            ("10", None),
            ("5x", None),
            ("m", None),
        ] {
            assert_eq!(
                parse_go_duration(text),
                secs.map(Duration::from_secs_f64),
                "{text}"
            );
        }
        let now = DateTime::parse_from_rfc3339("2026-12-04T10:00:30Z")
            .unwrap()
            .with_timezone(&Utc);
        let grace = chrono::Duration::seconds(30);
        assert!(created_within(Some("2026-12-04T10:00:01Z"), now, grace));
        assert!(!created_within(Some("2026-12-04T10:00:00Z"), now, grace));
        assert!(!created_within(None, now, grace));
        assert_eq!(timestamp(now), "2026-12-04T10:00:30Z");
    }
}
