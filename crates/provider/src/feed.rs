//! The board status feed: one task per site whose Boards (or legacy Devices) the provider
//! manages. Once a second it asks the site whether any board changed: a
//! `GET v1/boards?fields=uuid,status` that sends the last `ETag` back in `If-None-Match`, which
//! an s4t site answers with `304 Not Modified` from one version read. When a board did change,
//! it reads every board's status (page by page) and wakes the reconcile of each resource
//! whose board's status moved ([`moved`]). A board that connects is then Ready within about
//! a second, and a Board not yet Ready needs no fast polling of its own
//! ([`crate::managed::unready_poll`]).
//!
//! A site that sends no `ETag` (stock IoTronic) is not followed: listing all its boards every
//! second would cost it more than the polls it saves. Its Boards are polled as before, and so
//! are a followed site's while its feed fails.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Board uuid → status.
pub type Statuses = HashMap<String, String>;

/// How often a followed site is asked whether a board changed.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// A feed is trusted while its last answer is younger than this.
const LIVE_FOR: Duration = Duration::from_secs(5);
/// The first listing path; the site's `next` links give the others.
const LISTING: &str = "v1/boards?fields=uuid,status";

/// The boards whose resources must be observed again after `before` became `after`: those
/// that connected or disconnected (their Ready moves), those that are gone, and those that
/// appeared already online (a board appears `registered`, as the reconcile that made it saw;
/// one that is online by the time the feed first lists it would otherwise wait for the
/// poll). A move between `registered` and `offline` (provisioned, or to be provisioned
/// again) changes no readiness: the poll brings it to `status.atProvider`, and a board that
/// is provisioned and connects within a second costs one reconcile, not two.
pub fn moved(before: &Statuses, after: &Statuses) -> Vec<String> {
    let online = |status: &str| status == "online";
    let mut out: Vec<String> = after
        .iter()
        .filter(|(uuid, status)| match before.get(*uuid) {
            Some(was) => online(was) != online(status),
            None => online(status),
        })
        .map(|(uuid, _)| uuid.clone())
        .collect();
    out.extend(
        before
            .keys()
            .filter(|uuid| !after.contains_key(*uuid))
            .cloned(),
    );
    out.sort();
    out
}

/// The statuses of one listing page, and whether it was well formed.
pub fn page_statuses(page: &Value, into: &mut Statuses) -> Result<(), String> {
    let items = page
        .get("boards")
        .and_then(Value::as_array)
        .ok_or("the listing has no `boards` array")?;
    for item in items {
        let uuid = item
            .get("uuid")
            .and_then(Value::as_str)
            .ok_or("a listed board has no `uuid`")?;
        let status = item.get("status").and_then(Value::as_str).unwrap_or("");
        into.insert(uuid.to_string(), status.to_string());
    }
    Ok(())
}

/// What the provider knows of one site's feed.
#[derive(Default)]
pub struct FeedState {
    /// When the site last answered the feed.
    last_answer: std::sync::Mutex<Option<Instant>>,
    /// The site sends no `ETag`: not followed.
    unsupported: AtomicBool,
}

impl FeedState {
    fn answered(&self, at: Instant) {
        *self.last_answer.lock().unwrap() = Some(at);
    }

    /// Whether the feed answered recently, so its site's status changes reach the reconciles.
    pub fn live_at(&self, now: Instant) -> bool {
        matches!(*self.last_answer.lock().unwrap(), Some(t) if now.saturating_duration_since(t) < LIVE_FOR)
    }

    pub fn unsupported(&self) -> bool {
        self.unsupported.load(Ordering::Relaxed)
    }
}

/// One answer of the site.
enum Read {
    Unchanged,
    Changed {
        etag: String,
        statuses: Statuses,
    },
    /// The site tags no listing: it cannot be followed cheaply.
    Untagged,
}

async fn read(site: &s4t_client::Client, etag: Option<&str>) -> Result<Read, String> {
    use s4t_client::Conditional;
    crate::metrics::site_request("GET");
    let first = site
        .get_if_changed(LISTING, etag)
        .await
        .map_err(|e| e.to_string())?;
    let (etag, mut page) = match first {
        Conditional::NotModified => return Ok(Read::Unchanged),
        Conditional::Body { etag: None, .. } => return Ok(Read::Untagged),
        Conditional::Body {
            etag: Some(etag),
            value,
        } => (etag, value),
    };
    let mut statuses = Statuses::new();
    loop {
        page_statuses(&page, &mut statuses)?;
        let Some(next) = s4t_client::next_page(&page) else {
            break;
        };
        crate::metrics::site_request("GET");
        page = site.get(&next).await.map_err(|e| e.to_string())?;
    }
    Ok(Read::Changed { etag, statuses })
}

/// Where the feed reads its site's client (the reconciles keep it fresh) and sends what moved.
pub trait Source: Send + 'static {
    /// The site's current client; `None` once nothing needs the feed.
    fn client(&self) -> Option<s4t_client::Client>;
    /// Wakes the reconciles of the resources of these boards.
    fn wake(&self, boards: Vec<String>);
}

/// Follows one site until its source no longer needs it (or the site turns out to send no
/// `ETag`). The first listing only sets the baseline: the reconciles that started the feed
/// observe their boards themselves.
pub async fn follow(source: impl Source, state: Arc<FeedState>, site: String) {
    let mut etag: Option<String> = None;
    let mut known: Option<Statuses> = None;
    let mut failures = 0u32;
    loop {
        let pause = if failures == 0 {
            INTERVAL
        } else {
            crate::managed::backoff(failures - 1).min(Duration::from_secs(30))
        };
        tokio::time::sleep(pause).await;
        let Some(client) = source.client() else {
            return;
        };
        match read(&client, etag.as_deref()).await {
            Ok(Read::Unchanged) => state.answered(Instant::now()),
            Ok(Read::Changed {
                etag: tag,
                statuses,
            }) => {
                state.answered(Instant::now());
                etag = Some(tag);
                if let Some(before) = &known {
                    let boards = moved(before, &statuses);
                    if !boards.is_empty() {
                        crate::metrics::feed_wakeups(boards.len());
                        source.wake(boards);
                    }
                }
                known = Some(statuses);
            }
            Ok(Read::Untagged) => {
                state.unsupported.store(true, Ordering::Relaxed);
                tracing::info!(%site, "the site sends no ETag with its board listings: its Boards not Ready are polled instead of followed");
                return;
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::debug!(%site, error = %e, "board status feed");
                continue;
            }
        }
        failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn statuses(pairs: &[(&str, &str)]) -> Statuses {
        pairs
            .iter()
            .map(|(u, s)| (u.to_string(), s.to_string()))
            .collect()
    }

    #[test]
    fn moved_table() {
        for (before, after, want) in [
            (vec![], vec![], vec![]),
            (vec![("a", "registered")], vec![("a", "registered")], vec![]),
            (vec![("a", "registered")], vec![("a", "online")], vec!["a"]),
            (vec![("a", "offline")], vec![("a", "online")], vec!["a"]),
            // Provisioned, or back to be provisioned: no readiness moved.
            (vec![("a", "registered")], vec![("a", "offline")], vec![]),
            (vec![("a", "offline")], vec![("a", "registered")], vec![]),
            (vec![("a", "online")], vec![("a", "offline")], vec!["a"]),
            // Gone: its resource learns it at once.
            (
                vec![("a", "online"), ("b", "online")],
                vec![("b", "online")],
                vec!["a"],
            ),
            // Appeared as made: its creator observes it anyway.
            (vec![], vec![("a", "registered")], vec![]),
            // Appeared and already connected.
            (
                vec![],
                vec![("a", "online"), ("b", "registered")],
                vec!["a"],
            ),
            (
                vec![("a", "online"), ("b", "registered"), ("c", "offline")],
                vec![("a", "online"), ("b", "online"), ("d", "online")],
                vec!["b", "c", "d"],
            ),
        ] {
            assert_eq!(
                moved(&statuses(&before), &statuses(&after)),
                want,
                "{before:?} -> {after:?}"
            );
        }
    }

    #[test]
    fn pages_are_read_or_refused_by_name() {
        let mut into = Statuses::new();
        page_statuses(
            &json!({"boards": [{"uuid": "a", "status": "online"}, {"uuid": "b"}]}),
            &mut into,
        )
        .unwrap();
        assert_eq!(into, statuses(&[("a", "online"), ("b", "")]));
        for (page, error) in [
            (json!({}), "`boards`"),
            (json!({"boards": {}}), "`boards`"),
            (json!({"boards": [{"status": "online"}]}), "`uuid`"),
            (json!({"boards": [{"uuid": 7}]}), "`uuid`"),
        ] {
            let e = page_statuses(&page, &mut Statuses::new()).unwrap_err();
            assert!(e.contains(error), "{page}: {e}");
        }
    }

    #[test]
    fn a_feed_is_live_only_while_it_answers() {
        let state = FeedState::default();
        let t = Instant::now();
        assert!(!state.live_at(t));
        state.answered(t);
        assert!(state.live_at(t));
        assert!(state.live_at(t + Duration::from_secs(4)));
        assert!(!state.live_at(t + LIVE_FOR));
        state.answered(t + LIVE_FOR);
        assert!(state.live_at(t + LIVE_FOR + Duration::from_secs(1)));
    }
}
