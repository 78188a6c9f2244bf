//! Rendered boards kept between requests: `GET /v1/boards` (and `/detail`) and
//! `GET /v1/boards/{board}` answer from memory while the boards' version
//! ([`s4t_store::Store::boards_version`]) has not moved since the body was rendered.
//!
//! The key holds everything a body depends on besides the data: the route, the caller's
//! scope, the base URL and the query. A body rendered at version v is served only at
//! version v, so a request that starts after a write has returned renders again. Errors are
//! never kept.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;

use s4t_store::Store;

use super::ApiResult;

/// At most this many bodies; when full, the cache starts again empty (a burst of distinct
/// queries costs renders, never memory).
const MAX_ENTRIES: usize = 1024;
/// Bodies larger than this are not kept.
const MAX_BODY: usize = 8 << 20;

#[derive(Default)]
pub struct RenderCache {
    /// key → (the boards' version it was rendered at, the body).
    entries: Mutex<HashMap<String, (i64, Bytes)>>,
}

impl RenderCache {
    /// The body for `key`: the kept one while the boards' version is the one it was rendered
    /// at, else what `render` makes (kept for the next request).
    pub async fn boards(
        &self,
        store: &Store,
        key: String,
        render: impl std::future::Future<Output = ApiResult<Bytes>>,
    ) -> ApiResult<Bytes> {
        // Read before rendering: a write during the render leaves the body under the older
        // version, which the next request no longer accepts.
        let Some(version) = store.boards_version().await? else {
            return render.await;
        };
        if let Some((at, body)) = self.entries.lock().unwrap().get(&key) {
            if *at == version {
                return Ok(body.clone());
            }
        }
        let body = render.await?;
        if body.len() <= MAX_BODY {
            let mut entries = self.entries.lock().unwrap();
            if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
                entries.clear();
            }
            entries.insert(key, (version, body.clone()));
        }
        Ok(body)
    }
}
