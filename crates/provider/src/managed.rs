//! The managed reconciler's decisions, as pure functions: what a managed resource's reconcile
//! does at each step, given what was read and what the external calls answered. No I/O: the
//! executor (kube and S4T REST calls) runs the steps in order and applies each [`Outcome`].
//!
//! The order follows Crossplane's managed reconciler:
//! [`begin`] (paused? policy valid? deleted with Orphan? an interrupted create?) → resolve
//! references and connect (their failures: [`failed`]) → Observe → [`after_observe`] (delete,
//! create, late-initialise, update, or nothing) → [`after_delete`], [`before_create`] /
//! [`after_create`], [`after_update`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::conditions::{self, Cond};
use crate::meta;
use crate::policy::Policies;

/// How long after a successful create a missing external resource is waited for.
pub const CREATE_GRACE: chrono::Duration = chrono::Duration::seconds(30);

/// What a reconcile knows of the managed resource before any external call.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub annotations: BTreeMap<String, String>,
    pub finalizers: Vec<String>,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// The policies as read from the spec, or why they could not be.
    pub policies: Result<Policies, String>,
    pub last_handled_reconcile_at: Option<String>,
    pub now: DateTime<Utc>,
}

impl Snapshot {
    fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(String::as_str)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Normal,
    Warning,
}

/// A core/v1 Event about the managed resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub reason: &'static str,
    pub message: String,
}

fn warning(reason: &'static str, message: impl Into<String>) -> Event {
    Event {
        kind: EventKind::Warning,
        reason,
        message: message.into(),
    }
}

fn normal(reason: &'static str, message: impl Into<String>) -> Event {
    Event {
        kind: EventKind::Normal,
        reason,
        message: message.into(),
    }
}

/// When the resource is looked at again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// Only when it changes (paused, or waiting for a person).
    Never,
    /// Soon, through the per-resource backoff (1 s doubling to 60 s): after an error, or to
    /// observe the effect of a delete.
    RateLimited,
    /// At the poll interval (with jitter); the backoff is reset.
    Poll,
}

/// What a step decided: the writes to the managed resource, the events, and the requeue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub events: Vec<Event>,
    pub conditions: Vec<Cond>,
    /// Annotations to persist at once, with a retry on conflict (the create bookkeeping).
    pub critical_annotations: Vec<(&'static str, String)>,
    pub remove_finalizer: bool,
    /// Remove the connection-details Secret's keys (the resource goes).
    pub unpublish: bool,
    /// Publish the connection details the last external call returned.
    pub publish: bool,
    /// Write the status subresource.
    pub write_status: bool,
    pub requeue: Requeue,
}

impl Outcome {
    fn new(requeue: Requeue) -> Outcome {
        Outcome {
            events: Vec::new(),
            conditions: Vec::new(),
            critical_annotations: Vec::new(),
            remove_finalizer: false,
            unpublish: false,
            publish: false,
            write_status: true,
            requeue,
        }
    }

    fn event(mut self, e: Event) -> Outcome {
        self.events.push(e);
        self
    }

    fn condition(mut self, c: Cond) -> Outcome {
        self.conditions.push(c);
        self
    }
}

/// The first decision of a reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    Done(Outcome),
    /// Go on: resolve references, connect, observe. `handled` is a new reconcile-request
    /// token to acknowledge in `status.lastHandledReconcileAt` (with a
    /// `ReconcileRequestHandled` event).
    Proceed {
        handled: Option<String>,
    },
}

pub fn begin(s: &Snapshot) -> Begin {
    let paused_by_annotation = s.annotation(meta::PAUSED) == Some("true");
    if paused_by_annotation || s.policies.as_ref().is_ok_and(|p| p.paused()) {
        return Begin::Done(
            Outcome::new(Requeue::Never)
                .event(normal(
                    "ReconciliationPaused",
                    "reconciliation is paused (crossplane.io/paused: \"true\", or empty spec.managementPolicies)",
                ))
                .condition(conditions::reconcile_paused()),
        );
    }
    let policies = match &s.policies {
        Ok(p) => p,
        Err(e) => {
            return Begin::Done(
                Outcome::new(Requeue::Never)
                    .event(warning("CannotUseInvalidManagementPolicy", e.clone()))
                    .condition(conditions::reconcile_error(e.clone())),
            )
        }
    };
    if s.deleting && !policies.should_delete() {
        // Orphaned: the external resource stays; only the finalizer goes.
        return Begin::Done(Outcome {
            remove_finalizer: true,
            unpublish: true,
            write_status: false,
            ..Outcome::new(Requeue::Never)
        });
    }
    if meta::create_incomplete(
        s.annotation(meta::CREATE_PENDING),
        s.annotation(meta::CREATE_SUCCEEDED),
        s.annotation(meta::CREATE_FAILED),
    ) {
        // S4T names resources itself (uuids), so a create that was cut off may have made one
        // this resource does not know; creating again could make a second.
        let why = format!(
            "cannot determine the result of the last create: remove the {} annotation if it is safe to create again (check for a duplicate in S4T first)",
            meta::CREATE_PENDING
        );
        return Begin::Done(
            Outcome::new(Requeue::Never)
                .event(warning("CannotInitializeManagedResource", why.clone()))
                .condition(conditions::creating())
                .condition(conditions::reconcile_error(why)),
        );
    }
    let token = s.annotation(meta::RECONCILE_REQUESTED_AT);
    let handled = token
        .filter(|t| Some(*t) != s.last_handled_reconcile_at.as_deref())
        .map(str::to_string);
    Begin::Proceed { handled }
}

/// A step before or around Observe that failed: resolving references, connecting to the site,
/// publishing connection details, adding the finalizer, writing the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    ResolveReferences,
    Connect,
    PublishConnection,
    AddFinalizer,
    UpdateManaged,
}

pub fn failed(step: Step, error: &str) -> Outcome {
    let (reason, message) = match step {
        Step::ResolveReferences => (
            "CannotResolveResourceReferences",
            format!("cannot resolve references: {error}"),
        ),
        Step::Connect => (
            "CannotConnectToProvider",
            format!("connect failed: {error}"),
        ),
        Step::PublishConnection => (
            "CannotPublishConnectionDetails",
            format!("cannot publish connection details: {error}"),
        ),
        Step::AddFinalizer => (
            "CannotUpdateManagedResource",
            format!("cannot add finalizer: {error}"),
        ),
        Step::UpdateManaged => (
            "CannotUpdateManagedResource",
            format!("cannot update managed resource: {error}"),
        ),
    };
    Outcome::new(Requeue::RateLimited)
        .event(warning(reason, message.clone()))
        .condition(conditions::reconcile_error(message))
}

/// What Observe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub exists: bool,
    pub up_to_date: bool,
    /// Observe filled spec fields from the external resource (only when it really did).
    pub late_initialized: bool,
}

/// The external call to make after Observe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Create,
    Update,
    Delete,
}

/// The plan after Observe: the writes before the call, then the call (or the outcome).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterObserve {
    Done(Outcome),
    Act {
        /// Publish the connection details Observe returned (before anything else).
        publish: bool,
        add_finalizer: bool,
        /// Write the late-initialised spec (failure: [`failed`] with `UpdateManaged`).
        late_initialize: bool,
        then: Then,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Then {
    Call(Call),
    Done(Outcome),
}

pub fn after_observe(s: &Snapshot, observed: Result<&Observation, &str>) -> AfterObserve {
    let policies = match &s.policies {
        Ok(p) => p,
        // begin() stops on invalid policies; be safe all the same.
        Err(e) => return AfterObserve::Done(failed(Step::UpdateManaged, e)),
    };
    let o = match observed {
        Ok(o) => o,
        Err(e) => {
            let message = format!("observe failed: {e}");
            return AfterObserve::Done(
                Outcome::new(Requeue::RateLimited)
                    .event(warning("CannotObserveExternalResource", message.clone()))
                    .condition(conditions::reconcile_error(message)),
            );
        }
    };
    if !o.exists && policies.only_observe() {
        let message = "observe failed: the external resource does not exist (spec.managementPolicies is Observe only: nothing creates it)";
        return AfterObserve::Done(
            Outcome::new(Requeue::Poll)
                .event(warning("CannotObserveExternalResource", message))
                .condition(conditions::reconcile_error(message)),
        );
    }
    if !o.exists && meta::created_within(s.annotation(meta::CREATE_SUCCEEDED), s.now, CREATE_GRACE)
    {
        return AfterObserve::Done(Outcome {
            write_status: false,
            ..Outcome::new(Requeue::RateLimited).event(normal(
                "PendingExternalResource",
                "waiting for the new external resource to show up",
            ))
        });
    }
    if s.deleting {
        if s.finalizers.iter().any(|f| f != meta::FINALIZER) {
            // Other finalizers first: their controllers may still need the resource.
            return AfterObserve::Done(Outcome {
                write_status: false,
                ..Outcome::new(Requeue::RateLimited)
            });
        }
        if o.exists && policies.should_delete() {
            return AfterObserve::Act {
                publish: false,
                add_finalizer: false,
                late_initialize: false,
                then: Then::Call(Call::Delete),
            };
        }
        return AfterObserve::Done(Outcome {
            remove_finalizer: true,
            unpublish: true,
            write_status: false,
            ..Outcome::new(Requeue::Never)
        });
    }
    let then = if !o.exists && policies.should_create() {
        Then::Call(Call::Create)
    } else if o.up_to_date {
        Then::Done(Outcome::new(Requeue::Poll).condition(conditions::reconcile_success()))
    } else if !policies.should_update() {
        // Drift the policies forbid fixing: reported as synced, as Crossplane does.
        Then::Done(Outcome::new(Requeue::Poll).condition(conditions::reconcile_success()))
    } else {
        Then::Call(Call::Update)
    };
    AfterObserve::Act {
        publish: true,
        add_finalizer: !s.finalizers.iter().any(|f| f == meta::FINALIZER),
        late_initialize: o.exists && o.late_initialized && policies.should_late_initialize(),
        then,
    }
}

pub fn after_delete(result: Result<(), &str>) -> Outcome {
    match result {
        Err(e) => {
            let message = format!("delete failed: {e}");
            Outcome::new(Requeue::RateLimited)
                .event(warning("CannotDeleteExternalResource", message.clone()))
                .condition(conditions::deleting())
                .condition(conditions::reconcile_error(message))
        }
        // Observed again before the finalizer goes, to be sure it is gone.
        Ok(()) => Outcome::new(Requeue::RateLimited)
            .event(normal(
                "DeletedExternalResource",
                "the external resource was deleted",
            ))
            .condition(conditions::deleting())
            .condition(conditions::reconcile_success()),
    }
}

/// The annotation written, with the resource's resourceVersion (so that a stale copy fails
/// with a conflict and nothing is created from it), just before Create.
pub fn before_create(now: DateTime<Utc>) -> (&'static str, String) {
    (meta::CREATE_PENDING, meta::timestamp(now))
}

/// The writing of [`before_create`] failed. A conflict is requeued silently.
pub fn before_create_failed(conflict: bool, error: &str) -> Outcome {
    if conflict {
        return Outcome {
            write_status: false,
            ..Outcome::new(Requeue::RateLimited)
        };
    }
    let message = format!("cannot update managed resource: {error}");
    Outcome::new(Requeue::RateLimited)
        .event(warning("CannotUpdateManagedResource", message.clone()))
        .condition(conditions::creating())
        .condition(conditions::reconcile_error(message))
}

/// After Create: on success the external name is recorded with the succeeded time.
pub fn after_create(result: Result<&str, &str>, now: DateTime<Utc>) -> Outcome {
    match result {
        Err(e) => {
            let message = format!("create failed: {e}");
            Outcome {
                critical_annotations: vec![(meta::CREATE_FAILED, meta::timestamp(now))],
                ..Outcome::new(Requeue::RateLimited)
                    .event(warning("CannotCreateExternalResource", message.clone()))
                    .condition(conditions::creating())
                    .condition(conditions::reconcile_error(message))
            }
        }
        // The external name written back comes through the watch, which observes the new
        // resource at once; a requeue of its own would observe it a second time.
        Ok(external_name) => Outcome {
            critical_annotations: vec![
                (meta::EXTERNAL_NAME, external_name.to_string()),
                (meta::CREATE_SUCCEEDED, meta::timestamp(now)),
            ],
            publish: true,
            ..Outcome::new(Requeue::Poll)
                .event(normal(
                    "CreatedExternalResource",
                    format!("created {external_name}"),
                ))
                .condition(conditions::creating())
                .condition(conditions::reconcile_success())
        },
    }
}

pub fn after_update(result: Result<(), &str>) -> Outcome {
    match result {
        Err(e) => {
            let message = format!("update failed: {e}");
            Outcome::new(Requeue::RateLimited)
                .event(warning("CannotUpdateExternalResource", message.clone()))
                .condition(conditions::reconcile_error(message))
        }
        Ok(()) => Outcome {
            publish: true,
            ..Outcome::new(Requeue::Poll)
                .event(normal(
                    "UpdatedExternalResource",
                    "the external resource was updated",
                ))
                .condition(conditions::reconcile_success())
        },
    }
}

/// The delay before the next try of a resource that failed `failures` times in a row: 1 s
/// doubling to 60 s.
pub fn backoff(failures: u32) -> std::time::Duration {
    std::time::Duration::from_secs(1u64 << failures.min(6)).min(std::time::Duration::from_secs(60))
}

/// The poll of a resource that exists but is not Ready, after `times` such observations in a
/// row: 1 s doubling up to a quarter of the poll (never more than the poll itself), so a
/// board that comes online is seen Ready within seconds, and one that stays offline costs
/// four observations per poll. A resource whose readiness a live feed reports (`followed`,
/// [`crate::feed`]) is woken by it instead and keeps the normal poll.
pub fn unready_poll(times: u32, poll: std::time::Duration, followed: bool) -> std::time::Duration {
    if followed {
        return poll;
    }
    let second = std::time::Duration::from_secs(1);
    let cap = (poll / 4).max(poll.min(second));
    (second * (1u32 << times.min(16))).min(cap)
}

/// The poll interval with jitter: `poll` ± up to `jitter`, by `unit` in [0, 1).
pub fn jittered(
    poll: std::time::Duration,
    jitter: std::time::Duration,
    unit: f64,
) -> std::time::Duration {
    let offset = jitter.as_secs_f64() * (unit.clamp(0.0, 1.0) * 2.0 - 1.0);
    std::time::Duration::from_secs_f64((poll.as_secs_f64() + offset).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::DeletionPolicy;

    #[test]
    fn unready_poll_table() {
        let minute = std::time::Duration::from_secs(60);
        let ms = std::time::Duration::from_millis;
        // (observations not Ready in a row, poll, followed by a live feed) -> milliseconds
        for (times, poll, followed, want) in [
            (0, minute, false, 1000),
            (1, minute, false, 2000),
            (3, minute, false, 8000),
            (4, minute, false, 15_000),
            (40, minute, false, 15_000),
            (3, ms(5000), false, 1250),
            (0, ms(500), false, 500),
            (9, ms(500), false, 500),
            (0, minute, true, 60_000),
            (9, ms(500), true, 500),
        ] {
            assert_eq!(
                unready_poll(times, poll, followed),
                ms(want),
                "{times} {poll:?} {followed}"
            );
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn snapshot(policies: Option<&[&str]>, deletion: DeletionPolicy) -> Snapshot {
        let owned: Option<Vec<String>> =
            policies.map(|p| p.iter().map(|s| s.to_string()).collect());
        Snapshot {
            annotations: BTreeMap::new(),
            finalizers: Vec::new(),
            deleting: false,
            policies: Policies::read(owned.as_deref(), deletion),
            last_handled_reconcile_at: None,
            now: at("2026-12-04T10:00:00Z"),
        }
    }

    fn with(mut s: Snapshot, key: &str, value: &str) -> Snapshot {
        s.annotations.insert(key.into(), value.into());
        s
    }

    fn reasons(o: &Outcome) -> Vec<&'static str> {
        o.events
            .iter()
            .map(|e| e.reason)
            .chain(o.conditions.iter().map(|c| c.reason))
            .collect()
    }

    #[test]
    fn begin_table() {
        let all = || snapshot(None, DeletionPolicy::Delete);
        let deleting = |mut s: Snapshot| {
            s.deleting = true;
            s
        };
        // (snapshot, expected: None = proceed, Some(reasons, requeue, finalizer removed))
        type Stops = Option<(Vec<&'static str>, Requeue, bool)>;
        let cases: Vec<(&str, Snapshot, Stops)> = vec![
            ("default", all(), None),
            (
                "paused by annotation",
                with(all(), meta::PAUSED, "true"),
                Some((
                    vec!["ReconciliationPaused", "ReconcilePaused"],
                    Requeue::Never,
                    false,
                )),
            ),
            (
                "paused needs exactly true",
                with(all(), meta::PAUSED, "yes"),
                None,
            ),
            (
                "paused by empty policies",
                snapshot(Some(&[]), DeletionPolicy::Delete),
                Some((
                    vec!["ReconciliationPaused", "ReconcilePaused"],
                    Requeue::Never,
                    false,
                )),
            ),
            (
                "invalid policies",
                snapshot(Some(&["Update"]), DeletionPolicy::Delete),
                Some((
                    vec!["CannotUseInvalidManagementPolicy", "ReconcileError"],
                    Requeue::Never,
                    false,
                )),
            ),
            (
                "deleted, orphan",
                deleting(snapshot(None, DeletionPolicy::Orphan)),
                Some((vec![], Requeue::Never, true)),
            ),
            (
                "deleted, no Delete in policies",
                deleting(snapshot(
                    Some(&["Observe", "Create", "Update"]),
                    DeletionPolicy::Delete,
                )),
                Some((vec![], Requeue::Never, true)),
            ),
            ("deleted, delete", deleting(all()), None),
            (
                "interrupted create",
                with(all(), meta::CREATE_PENDING, "2026-12-04T09:59:00Z"),
                Some((
                    vec![
                        "CannotInitializeManagedResource",
                        "Creating",
                        "ReconcileError",
                    ],
                    Requeue::Never,
                    false,
                )),
            ),
            (
                "finished create",
                with(
                    with(all(), meta::CREATE_PENDING, "2026-12-04T09:59:00Z"),
                    meta::CREATE_SUCCEEDED,
                    "2026-12-04T09:59:01Z",
                ),
                None,
            ),
        ];
        for (name, s, expected) in cases {
            match (begin(&s), expected) {
                (Begin::Proceed { .. }, None) => {}
                (Begin::Done(o), Some((r, q, fin))) => {
                    assert_eq!(reasons(&o), r, "{name}");
                    assert_eq!((o.requeue, o.remove_finalizer), (q, fin), "{name}");
                }
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn a_new_reconcile_request_is_acknowledged_once() {
        let s = with(
            snapshot(None, DeletionPolicy::Delete),
            meta::RECONCILE_REQUESTED_AT,
            "tok-1",
        );
        assert_eq!(
            begin(&s),
            Begin::Proceed {
                handled: Some("tok-1".into())
            }
        );
        let mut seen = s.clone();
        seen.last_handled_reconcile_at = Some("tok-1".into());
        assert_eq!(begin(&seen), Begin::Proceed { handled: None });
    }

    #[test]
    fn after_observe_table() {
        let obs = |exists, up_to_date, late_initialized| Observation {
            exists,
            up_to_date,
            late_initialized,
        };
        let all = snapshot(None, DeletionPolicy::Delete);
        let mut finalized = all.clone();
        finalized.finalizers = vec![meta::FINALIZER.into()];
        let mut deleting = finalized.clone();
        deleting.deleting = true;
        let mut deleting_shared = deleting.clone();
        deleting_shared
            .finalizers
            .push("other.example.org/cleanup".into());
        let observe_only = snapshot(Some(&["Observe"]), DeletionPolicy::Delete);
        let no_update = snapshot(
            Some(&["Observe", "Create", "Delete"]),
            DeletionPolicy::Delete,
        );
        let no_late = snapshot(
            Some(&["Observe", "Create", "Update", "Delete"]),
            DeletionPolicy::Delete,
        );
        let just_created = with(all.clone(), meta::CREATE_SUCCEEDED, "2026-12-04T09:59:50Z");
        let created_long_ago = with(all.clone(), meta::CREATE_SUCCEEDED, "2026-12-04T09:50:00Z");

        let act = |add_finalizer, late_initialize, then| AfterObserve::Act {
            publish: true,
            add_finalizer,
            late_initialize,
            then,
        };
        let synced =
            Then::Done(Outcome::new(Requeue::Poll).condition(conditions::reconcile_success()));
        let cases: Vec<(&str, &Snapshot, Observation, AfterObserve)> = vec![
            (
                "missing: create",
                &all,
                obs(false, false, false),
                act(true, false, Then::Call(Call::Create)),
            ),
            (
                "missing, finalizer there: create",
                &finalized,
                obs(false, false, false),
                act(false, false, Then::Call(Call::Create)),
            ),
            (
                "up to date",
                &finalized,
                obs(true, true, false),
                act(false, false, synced.clone()),
            ),
            (
                "drifted: update",
                &finalized,
                obs(true, false, false),
                act(false, false, Then::Call(Call::Update)),
            ),
            (
                "drifted, no Update: synced",
                &no_update,
                obs(true, false, false),
                act(true, false, synced.clone()),
            ),
            (
                "late-initialised",
                &all,
                obs(true, true, true),
                act(true, true, synced.clone()),
            ),
            (
                "late-init not allowed",
                &no_late,
                obs(true, true, true),
                act(true, false, synced.clone()),
            ),
            (
                "deleting, exists: delete",
                &deleting,
                obs(true, true, false),
                AfterObserve::Act {
                    publish: false,
                    add_finalizer: false,
                    late_initialize: false,
                    then: Then::Call(Call::Delete),
                },
            ),
            (
                "deleting, gone: finalizer off",
                &deleting,
                obs(false, false, false),
                AfterObserve::Done(Outcome {
                    remove_finalizer: true,
                    unpublish: true,
                    write_status: false,
                    ..Outcome::new(Requeue::Never)
                }),
            ),
            (
                "deleting, other finalizers wait",
                &deleting_shared,
                obs(true, true, false),
                AfterObserve::Done(Outcome {
                    write_status: false,
                    ..Outcome::new(Requeue::RateLimited)
                }),
            ),
            (
                "created long ago, gone: create again",
                &created_long_ago,
                obs(false, false, false),
                act(true, false, Then::Call(Call::Create)),
            ),
        ];
        for (name, s, o, want) in cases {
            assert_eq!(after_observe(s, Ok(&o)), want, "{name}");
        }
        // The outcomes that end the reconcile with events.
        let AfterObserve::Done(o) = after_observe(&observe_only, Ok(&obs(false, false, false)))
        else {
            panic!("observe only")
        };
        assert_eq!(
            (reasons(&o), o.requeue),
            (
                vec!["CannotObserveExternalResource", "ReconcileError"],
                Requeue::Poll
            )
        );
        let AfterObserve::Done(o) = after_observe(&just_created, Ok(&obs(false, false, false)))
        else {
            panic!("grace")
        };
        assert_eq!(
            (reasons(&o), o.requeue, o.write_status),
            (vec!["PendingExternalResource"], Requeue::RateLimited, false)
        );
        let AfterObserve::Done(o) = after_observe(&all, Err("HTTP 500")) else {
            panic!("error")
        };
        assert_eq!(
            o.conditions,
            vec![conditions::reconcile_error("observe failed: HTTP 500")]
        );
        assert_eq!(o.requeue, Requeue::RateLimited);
    }

    #[test]
    fn call_outcomes() {
        let now = at("2026-12-04T10:00:00Z");
        let ok = after_create(Ok("3f1c"), now);
        assert_eq!(
            ok.critical_annotations,
            vec![
                (meta::EXTERNAL_NAME, "3f1c".to_string()),
                (meta::CREATE_SUCCEEDED, "2026-12-04T10:00:00Z".to_string())
            ]
        );
        assert_eq!(
            (reasons(&ok), ok.publish, ok.requeue),
            (
                vec!["CreatedExternalResource", "Creating", "ReconcileSuccess"],
                true,
                Requeue::Poll
            )
        );
        let bad = after_create(Err("409 name taken"), now);
        assert_eq!(
            bad.critical_annotations,
            vec![(meta::CREATE_FAILED, "2026-12-04T10:00:00Z".to_string())]
        );
        assert_eq!(
            bad.conditions[1],
            conditions::reconcile_error("create failed: 409 name taken")
        );
        assert_eq!(
            before_create(now),
            (meta::CREATE_PENDING, "2026-12-04T10:00:00Z".to_string())
        );
        let conflict = before_create_failed(true, "conflict");
        assert_eq!((conflict.events.len(), conflict.write_status), (0, false));
        assert_eq!(
            reasons(&before_create_failed(false, "500")),
            vec!["CannotUpdateManagedResource", "Creating", "ReconcileError"]
        );

        assert_eq!(
            reasons(&after_delete(Ok(()))),
            vec!["DeletedExternalResource", "Deleting", "ReconcileSuccess"]
        );
        assert_eq!(
            after_delete(Err("x")).conditions[1],
            conditions::reconcile_error("delete failed: x")
        );
        assert_eq!(
            (after_update(Ok(())).requeue, after_update(Ok(())).publish),
            (Requeue::Poll, true)
        );
        assert_eq!(
            after_update(Err("x")).conditions[0],
            conditions::reconcile_error("update failed: x")
        );
        assert_eq!(
            failed(Step::Connect, "no such ProviderConfig").conditions[0],
            conditions::reconcile_error("connect failed: no such ProviderConfig")
        );
    }

    #[test]
    fn backoff_and_jitter() {
        let secs: Vec<u64> = (0..9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
        let poll = std::time::Duration::from_secs(60);
        let j = std::time::Duration::from_secs(6);
        assert_eq!(jittered(poll, j, 0.0).as_secs(), 54);
        assert_eq!(jittered(poll, j, 0.5).as_secs(), 60);
        assert_eq!(jittered(poll, j, 1.0).as_secs(), 66);
    }
}
