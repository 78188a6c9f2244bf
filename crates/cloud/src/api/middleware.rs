//! What happens to every request before and after its handler: path normalisation, the request
//! id, microversion negotiation, identity.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use s4t_model::Caller;

use super::error::ApiError;
use super::AppState;

pub const VERSION_HEADER: &str = "X-OpenStack-Iotronic-API-Version";
pub const MIN_VERSION_HEADER: &str = "X-OpenStack-Iotronic-API-Minimum-Version";
pub const MAX_VERSION_HEADER: &str = "X-OpenStack-Iotronic-API-Maximum-Version";
pub const REQUEST_ID_HEADER: &str = "Openstack-Request-Id";

/// The one microversion IoTronic 0.5.0 serves; python-iotronicclient negotiates down to it.
pub const API_VERSION: (u32, u32) = (1, 0);

/// `/boards/` → `/v1/boards`: trailing slashes are dropped and a path whose first segment is not
/// `v1` is served as if it were under `/v1`, as IoTronic's root controller does.
pub fn normalize_uri(uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    let mut p = path.trim_end_matches('/').to_string();
    if p.is_empty() {
        p = "/".into();
    }
    if p != "/" && p != "/v1" && !p.starts_with("/v1/") {
        p = format!("/v1{p}");
    }
    if p == path {
        return None;
    }
    let pq = match uri.query() {
        Some(q) => format!("{p}?{q}"),
        None => p,
    };
    pq.parse().ok()
}

pub fn normalize_path(mut req: Request<Body>) -> Request<Body> {
    if let Some(uri) = normalize_uri(req.uri()) {
        *req.uri_mut() = uri;
    }
    req
}

/// Parses the requested microversion: `None` for absent or `latest`, `Err` for malformed.
fn requested_version(headers: &HeaderMap) -> Result<Option<(u32, u32)>, ()> {
    let Some(raw) = headers.get(VERSION_HEADER) else {
        return Ok(None);
    };
    let raw = raw.to_str().map_err(|_| ())?.trim();
    if raw.eq_ignore_ascii_case("latest") {
        return Ok(None);
    }
    let (major, minor) = raw.split_once('.').ok_or(())?;
    Ok(Some((
        major.parse().map_err(|_| ())?,
        minor.parse().map_err(|_| ())?,
    )))
}

fn version_headers(headers: &mut HeaderMap) {
    let v = HeaderValue::from_static("1.0");
    headers.insert(MIN_VERSION_HEADER, v.clone());
    headers.insert(MAX_VERSION_HEADER, v.clone());
    headers.insert(VERSION_HEADER, v);
}

/// Request id, microversion negotiation and the version headers on every response.
pub async fn protocol(req: Request<Body>, next: Next) -> Response {
    let request_id = format!("req-{}", uuid::Uuid::new_v4());
    let mut resp = match requested_version(req.headers()) {
        Ok(None) => next.run(req).await,
        Ok(Some(v)) if v == API_VERSION => next.run(req).await,
        Ok(Some((major, minor))) => ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            format!(
                "Version {major}.{minor} was requested but the minor version is not supported by this service. \
                 The supported version range is: [1.0, 1.0]."
            ),
        )
        .into_response(),
        Err(()) => ApiError::new(StatusCode::NOT_ACCEPTABLE, format!("Invalid value for {VERSION_HEADER} header"))
            .into_response(),
    };
    version_headers(resp.headers_mut());
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    resp
}

/// Establishes the [`Caller`] of every request outside the public root documents.
pub async fn identify(
    State(state): State<AppState>,
    mut req: Request<Body>,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let public = path == "/" || path == "/v1" || path == "/v1/openapi.json";
    let caller = if state.config.noauth {
        Some(caller_from_headers(req.headers()))
    } else {
        // X-Auth-Token as IoTronic; `Authorization: Bearer` for scrapers that send only that.
        let token = req
            .headers()
            .get("X-Auth-Token")
            .and_then(|v| v.to_str().ok())
            .or_else(|| {
                req.headers()
                    .get(axum::http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
            });
        match token {
            Some(token) if !token.is_empty() => state.tokens.caller(&state.store, token).await,
            _ => None,
        }
    };
    match caller {
        Some(c) => {
            req.extensions_mut().insert(c);
        }
        None if public => {
            req.extensions_mut().insert(Caller::default());
        }
        None => return ApiError::unauthorized().into_response(),
    }
    next.run(req).await
}

/// Upstream noauth: identity from `X-User-Id`, `X-Project-Id` and `X-Roles`, every rule passes.
fn caller_from_headers(headers: &HeaderMap) -> Caller {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    Caller {
        user_id: get("X-User-Id"),
        project_id: get("X-Project-Id").or_else(|| get("X-Tenant-Id")),
        roles: get("X-Roles")
            .map(|r| {
                r.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        noauth: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_normalisation_table() {
        let table = [
            ("/", None),
            ("/v1", None),
            ("/v1/", Some("/v1")),
            ("/v1/boards/", Some("/v1/boards")),
            ("/boards", Some("/v1/boards")),
            ("/boards/?limit=2", Some("/v1/boards?limit=2")),
            ("/v1/boards/x", None),
            ("/v10/boards", Some("/v1/v10/boards")),
        ];
        for (input, expected) in table {
            let got = normalize_uri(&input.parse().unwrap()).map(|u| u.to_string());
            assert_eq!(got.as_deref(), expected, "{input}");
        }
    }

    #[test]
    fn version_parsing_table() {
        let parse = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(VERSION_HEADER, v.parse().unwrap());
            requested_version(&h)
        };
        assert_eq!(parse("1.0"), Ok(Some((1, 0))));
        assert_eq!(parse("1.9"), Ok(Some((1, 9))));
        assert_eq!(parse("latest"), Ok(None));
        assert_eq!(parse("one"), Err(()));
        assert_eq!(parse("1"), Err(()));
        assert_eq!(requested_version(&HeaderMap::new()), Ok(None));
    }
}
