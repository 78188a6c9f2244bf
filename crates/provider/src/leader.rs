//! Leader election between replicas of the provider, on a `coordination.k8s.io/v1` Lease, as
//! controller-runtime does it: one replica holds the Lease and runs the controllers, the
//! others wait; the holder renews it every retry period and gives up (the process exits) when
//! it could not renew within the renew deadline; a follower takes the Lease over once it has
//! seen the same record, unchanged, for a whole lease duration.
//!
//! Expiry is judged on the follower's own clock, from when it last saw the record change,
//! never from the `renewTime` written by another machine, so clock skew between replicas
//! cannot hand the Lease to two of them. [`decide`] is that rule with no I/O; [`Elector`]
//! reads and writes the Lease with merge patches that carry its `resourceVersion`, so two
//! candidates racing for it cannot both win.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::json;

/// What the Lease says, as far as the election is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub holder: Option<String>,
    pub lease_duration: Duration,
    /// Kept as written: a change of it is what tells a follower the holder is alive.
    pub renew_time: Option<String>,
    pub transitions: i32,
}

/// What a candidate does with the Lease it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// There is no Lease: make it, naming us.
    Create,
    /// We hold it: renew it.
    Renew,
    /// Nobody holds it, or its holder let it run out: take it over.
    TakeOver,
    /// Another replica holds it: wait, at most this long before it can run out.
    Wait {
        holder: String,
        expires_in: Duration,
    },
}

/// The rule: `unchanged_for` is how long this candidate has seen `record` without change.
pub fn decide(me: &str, record: Option<&Record>, unchanged_for: Duration) -> Decision {
    let Some(record) = record else {
        return Decision::Create;
    };
    match record.holder.as_deref() {
        Some(holder) if holder == me => Decision::Renew,
        None | Some("") => Decision::TakeOver,
        Some(_) if unchanged_for >= record.lease_duration => Decision::TakeOver,
        Some(holder) => Decision::Wait {
            holder: holder.to_string(),
            expires_in: record.lease_duration - unchanged_for,
        },
    }
}

/// The holder's rule: leadership is lost when no renewal succeeded within the deadline.
pub fn renewal_lost(since_last_renewal: Duration, renew_deadline: Duration) -> bool {
    since_last_renewal > renew_deadline
}

/// The election's timing, controller-runtime's defaults scaled from the lease duration
/// (15 s: renew deadline 10 s, retry period 2 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Timing {
    pub fn from_lease_duration(lease_duration: Duration) -> Timing {
        Timing {
            lease_duration,
            renew_deadline: lease_duration * 2 / 3,
            retry_period: lease_duration * 2 / 15,
        }
    }
}

/// Why a holder stopped holding.
#[derive(Debug, thiserror::Error)]
pub enum Lost {
    #[error("leader election lost: the Lease {0} is held by {1} now")]
    TakenBy(String, String),
    #[error("leader election lost: the Lease {0} could not be renewed within {1:?}: {2}")]
    NotRenewed(String, Duration, String),
}

/// One candidate for a Lease.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: Timing,
    /// The record last read and when it was first seen as it is.
    seen: Option<(Record, Instant)>,
}

impl Elector {
    /// A candidate for the Lease `namespace/name`, known to the others as `identity`.
    pub fn new(
        kube: kube::Client,
        namespace: &str,
        name: &str,
        identity: String,
        timing: Timing,
    ) -> Elector {
        Elector {
            api: Api::namespaced(kube, namespace),
            name: name.to_string(),
            identity,
            timing,
            seen: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Returns once this candidate holds the Lease.
    pub async fn acquire(&mut self) {
        let mut logged_holder = None;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Ok(())) => {
                    tracing::info!(lease = %self.name, identity = %self.identity, "leading");
                    return;
                }
                Ok(Err(holder)) => {
                    if logged_holder.as_ref() != Some(&holder) {
                        tracing::info!(lease = %self.name, %holder, "waiting for the leader's Lease to run out");
                        logged_holder = Some(holder);
                    }
                }
                Err(e) => tracing::warn!(lease = %self.name, error = %e, "reading the Lease"),
            }
            tokio::time::sleep(self.timing.retry_period).await;
        }
    }

    /// Renews the Lease every retry period; returns when leadership is lost.
    pub async fn hold(&mut self) -> Lost {
        let mut last_renewal = Instant::now();
        loop {
            tokio::time::sleep(self.timing.retry_period).await;
            match self.try_acquire_or_renew().await {
                Ok(Ok(())) => last_renewal = Instant::now(),
                Ok(Err(holder)) => return Lost::TakenBy(self.name.clone(), holder),
                Err(e) => {
                    tracing::warn!(lease = %self.name, error = %e, "renewing the Lease");
                    if renewal_lost(last_renewal.elapsed(), self.timing.renew_deadline) {
                        return Lost::NotRenewed(
                            self.name.clone(),
                            self.timing.renew_deadline,
                            e.to_string(),
                        );
                    }
                }
            }
        }
    }

    /// Gives the Lease up at shutdown, so another replica need not wait for it to run out.
    pub async fn release(&mut self) {
        let Ok(lease) = self.api.get(&self.name).await else {
            return;
        };
        let record = record_of(&lease);
        if record.holder.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        let patch = json!({
            "metadata": {"resourceVersion": lease.metadata.resource_version},
            "spec": {"holderIdentity": null, "leaseDurationSeconds": 1,
                     "renewTime": now_micro(), "acquireTime": now_micro()}
        });
        match self
            .api
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => tracing::info!(lease = %self.name, "Lease released"),
            Err(e) => tracing::warn!(lease = %self.name, error = %e, "releasing the Lease"),
        }
    }

    /// One round: `Ok(Ok(()))` when we hold the Lease after it, `Ok(Err(holder))` when
    /// another does.
    async fn try_acquire_or_renew(&mut self) -> Result<Result<(), String>, kube::Error> {
        let lease = match self.api.get(&self.name).await {
            Ok(lease) => Some(lease),
            Err(kube::Error::Api(e)) if e.code == 404 => None,
            Err(e) => return Err(e),
        };
        let record = lease.as_ref().map(record_of);
        let unchanged_for = match (&record, &self.seen) {
            (Some(r), Some((seen, since))) if r == seen => since.elapsed(),
            (Some(r), _) => {
                self.seen = Some((r.clone(), Instant::now()));
                Duration::ZERO
            }
            (None, _) => Duration::ZERO,
        };
        let now = now_micro();
        let seconds = self.timing.lease_duration.as_secs().max(1) as i32;
        let write = match decide(&self.identity, record.as_ref(), unchanged_for) {
            Decision::Wait { holder, .. } => return Ok(Err(holder)),
            Decision::Create => {
                let lease: Lease = serde_json::from_value(json!({
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name},
                    "spec": {"holderIdentity": self.identity, "leaseDurationSeconds": seconds,
                             "acquireTime": now, "renewTime": now, "leaseTransitions": 0}
                }))
                .expect("a Lease");
                self.api
                    .create(&PostParams::default(), &lease)
                    .await
                    .map(|_| ())
            }
            decision => {
                let lease = lease.expect("a decision other than Create has a Lease");
                let previous = record.expect("read with the Lease");
                let mut spec = json!({"holderIdentity": self.identity,
                                      "leaseDurationSeconds": seconds, "renewTime": now});
                if decision == Decision::TakeOver {
                    spec["acquireTime"] = json!(now);
                    spec["leaseTransitions"] = json!(previous.transitions + 1);
                }
                let patch = json!({
                    "metadata": {"resourceVersion": lease.metadata.resource_version},
                    "spec": spec,
                });
                self.api
                    .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ())
            }
        };
        match write {
            Ok(()) => {
                self.seen = None;
                Ok(Ok(()))
            }
            // Another candidate wrote first: it holds the Lease for now.
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Err("another candidate".into())),
            Err(e) => Err(e),
        }
    }
}

/// This replica's name in the Lease: the host (the pod's name in a cluster) and a random
/// part, so a restarted replica is a new candidate.
pub fn candidate_identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "s4t-provider".into());
    format!("{host}_{:016x}", rand::random::<u64>())
}

fn record_of(lease: &Lease) -> Record {
    let spec = lease.spec.clone().unwrap_or_default();
    Record {
        holder: spec.holder_identity,
        lease_duration: Duration::from_secs(spec.lease_duration_seconds.unwrap_or(0).max(0) as u64),
        renew_time: spec.renew_time.map(|t| t.0.to_string()),
        transitions: spec.lease_transitions.unwrap_or(0),
    }
}

fn now_micro() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(holder: Option<&str>, secs: u64) -> Record {
        Record {
            holder: holder.map(str::to_string),
            lease_duration: Duration::from_secs(secs),
            renew_time: Some("2026-12-04T10:00:00.000000Z".into()),
            transitions: 3,
        }
    }

    #[test]
    fn decisions() {
        let s = Duration::from_secs;
        let rows: Vec<(&str, Option<Record>, Duration, Decision)> = vec![
            ("no Lease", None, s(0), Decision::Create),
            (
                "ours, fresh",
                Some(held_by(Some("me"), 15)),
                s(0),
                Decision::Renew,
            ),
            (
                "ours, even if long unchanged",
                Some(held_by(Some("me"), 15)),
                s(60),
                Decision::Renew,
            ),
            (
                "released (no holder)",
                Some(held_by(None, 1)),
                s(0),
                Decision::TakeOver,
            ),
            (
                "released (empty holder)",
                Some(held_by(Some(""), 15)),
                s(0),
                Decision::TakeOver,
            ),
            (
                "another's, just seen",
                Some(held_by(Some("other"), 15)),
                s(0),
                Decision::Wait {
                    holder: "other".into(),
                    expires_in: s(15),
                },
            ),
            (
                "another's, unchanged for part of its duration",
                Some(held_by(Some("other"), 15)),
                s(10),
                Decision::Wait {
                    holder: "other".into(),
                    expires_in: s(5),
                },
            ),
            (
                "another's, unchanged for exactly its duration",
                Some(held_by(Some("other"), 15)),
                s(15),
                Decision::TakeOver,
            ),
            (
                "another's, run out",
                Some(held_by(Some("other"), 15)),
                s(40),
                Decision::TakeOver,
            ),
            (
                "another's with a zero duration",
                Some(held_by(Some("other"), 0)),
                s(0),
                Decision::TakeOver,
            ),
        ];
        for (what, record, unchanged_for, want) in rows {
            assert_eq!(decide("me", record.as_ref(), unchanged_for), want, "{what}");
        }
    }

    #[test]
    fn renewal_deadline() {
        let s = Duration::from_secs;
        for (since, deadline, lost) in [
            (s(0), s(10), false),
            (s(10), s(10), false),
            (s(11), s(10), true),
        ] {
            assert_eq!(
                renewal_lost(since, deadline),
                lost,
                "{since:?} of {deadline:?}"
            );
        }
    }

    #[test]
    fn timing_scales_controller_runtime_defaults() {
        let t = Timing::from_lease_duration(Duration::from_secs(15));
        assert_eq!(t.renew_deadline, Duration::from_secs(10));
        assert_eq!(t.retry_period, Duration::from_secs(2));
        let t = Timing::from_lease_duration(Duration::from_secs(3));
        assert!(t.retry_period < t.renew_deadline && t.renew_deadline < t.lease_duration);
    }
}
