//! Rendered boards kept between requests: `GET /v1/boards` (and `/detail`) and
//! `GET /v1/boards/{board}` answer from memory while the boards' version
//! ([`s4t_store::Store::boards_version`]) has not moved since the body was rendered.
//!
//! The key holds everything a body depends on besides the data: the route, the caller's
//! scope, the base URL and the query. A body rendered at version v is served only at
//! version v, so a request that starts after a write has returned renders again. Errors are
//! never kept.
//!
//! Each body carries an `ETag` made of the version and the key, so a client that sends it
//! back in `If-None-Match` gets `304 Not Modified` (no body, no render) until the boards
//! change: the Crossplane provider follows board status this way at one cheap request a
//! second.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

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

/// A boards body, or `304 Not Modified` when the client's `If-None-Match` names it.
pub struct Cached {
    etag: Option<String>,
    body: Option<Bytes>,
}

impl IntoResponse for Cached {
    fn into_response(self) -> Response {
        let mut response = match self.body {
            Some(body) => super::RawJson(body).into_response(),
            None => StatusCode::NOT_MODIFIED.into_response(),
        };
        if let Some(tag) = self.etag.and_then(|t| HeaderValue::from_str(&t).ok()) {
            response.headers_mut().insert(header::ETAG, tag);
        }
        response
    }
}

/// The entity tag of the body under `key` at `version`. Bodies of one URL differ by caller
/// (the scope is in the key), so the key is in the tag as well as the version.
fn entity_tag(key: &str, version: i64) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    format!("\"{version:x}-{:016x}\"", h.finish())
}

/// Whether `If-None-Match` names `tag` (weakly, as RFC 9110 compares for GET), or is `*`.
fn none_match(headers: &HeaderMap, tag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == tag)
}

impl RenderCache {
    /// The body for `key`: the kept one while the boards' version is the one it was rendered
    /// at, else what `render` makes (kept for the next request); nothing (a 304) when the
    /// request's `If-None-Match` already names it.
    pub async fn boards(
        &self,
        store: &Store,
        key: String,
        request: &HeaderMap,
        render: impl std::future::Future<Output = ApiResult<Bytes>>,
    ) -> ApiResult<Cached> {
        // Read before rendering: a write during the render leaves the body under the older
        // version, which the next request no longer accepts.
        let Some(version) = store.boards_version().await? else {
            return Ok(Cached {
                etag: None,
                body: Some(render.await?),
            });
        };
        let etag = entity_tag(&key, version);
        if none_match(request, &etag) {
            return Ok(Cached {
                etag: Some(etag),
                body: None,
            });
        }
        if let Some((at, body)) = self.entries.lock().unwrap().get(&key) {
            if *at == version {
                return Ok(Cached {
                    etag: Some(etag),
                    body: Some(body.clone()),
                });
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
        Ok(Cached {
            etag: Some(etag),
            body: Some(body),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_table() {
        let tag = entity_tag("list|k", 7);
        for (header, matches) in [
            (tag.clone(), true),
            (format!("W/{tag}"), true),
            (format!("\"other\", {tag}"), true),
            ("*".to_string(), true),
            (entity_tag("list|k", 8), false),
            (entity_tag("list|other", 7), false),
            (tag.trim_matches('"').to_string(), false),
            (String::new(), false),
        ] {
            let mut h = HeaderMap::new();
            h.insert(
                header::IF_NONE_MATCH,
                HeaderValue::from_str(&header).unwrap(),
            );
            assert_eq!(none_match(&h, &tag), matches, "{header}");
        }
        assert!(!none_match(&HeaderMap::new(), &tag));
    }
}
