//! The IoTronic v1 REST API.
//!
//! Routing lives here; each resource family has its module. Every handler follows the same
//! steps: authorise, parse (strictly), look up (scoped to the caller's project), act through the
//! store or the conductor, render.

pub mod boards;
pub mod cache;
pub mod error;
pub mod fleets;
pub mod middleware;
pub mod networks;
pub mod plugins;
pub mod ports;
pub mod render;
pub mod requests;
pub mod root;
pub mod services;
pub mod tokens;
pub mod webservices;
pub mod workloads;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use tokio::sync::RwLock;

use s4t_model::policy::{authorize, Action};
use s4t_model::Caller;
use s4t_store::{Scope, Store};

use crate::conductor::Conductor;
use crate::CloudConfig;
pub use error::{ApiError, ApiResult};

/// Shared by every handler. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<CloudConfig>,
    pub conductor: Conductor,
    pub tokens: Arc<TokenCache>,
    /// The workload scheduler, when boards can be reached.
    pub scheduler: Option<crate::scheduler::Scheduler>,
    /// The overlay network hub, when it runs.
    pub hub: Option<crate::hub::Hub>,
    /// Rendered boards, kept while they are current.
    pub rendered: Arc<cache::RenderCache>,
}

impl AppState {
    pub fn new(store: Store, config: Arc<CloudConfig>) -> AppState {
        let conductor = Conductor::new(store.clone());
        AppState::with_conductor(store, config, conductor)
    }

    pub fn with_conductor(
        store: Store,
        config: Arc<CloudConfig>,
        conductor: Conductor,
    ) -> AppState {
        AppState {
            store,
            config,
            conductor,
            tokens: Arc::new(TokenCache::default()),
            scheduler: None,
            hub: None,
            rendered: Arc::default(),
        }
    }
}

/// Token → caller, cached briefly so a busy client does not cost a query per request.
#[derive(Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<String, (Caller, Instant)>>,
}

const TOKEN_CACHE_TTL: Duration = Duration::from_secs(30);

impl TokenCache {
    pub async fn caller(&self, store: &Store, token: &str) -> Option<Caller> {
        let hash = crate::auth::hash_token(token);
        if let Some((caller, at)) = self.entries.read().await.get(&hash) {
            if at.elapsed() < TOKEN_CACHE_TTL {
                return Some(caller.clone());
            }
        }
        let record = store.token_by_hash(&hash).await.ok().flatten()?;
        let caller = Caller {
            user_id: Some(record.user_id),
            project_id: record.project_id,
            roles: record.roles,
            noauth: false,
        };
        let mut entries = self.entries.write().await;
        if entries.len() > 10_000 {
            entries.clear();
        }
        entries.insert(hash, (caller.clone(), Instant::now()));
        Some(caller)
    }

    /// Forgets every cached token (after a revocation).
    pub async fn clear(&self) {
        self.entries.write().await.clear();
    }
}

/// The most a request body may carry (plugin sources are the big ones).
pub const BODY_LIMIT: usize = 8 * 1024 * 1024;

/// The router with every route, without the outer path normalisation.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(root::root))
        .route("/v1", get(root::v1))
        .route("/v1/openapi.json", get(root::openapi))
        .merge(boards::routes())
        .merge(plugins::routes())
        .merge(services::routes())
        .merge(fleets::routes())
        .merge(webservices::routes())
        .merge(workloads::routes())
        .merge(ports::routes())
        .merge(networks::routes())
        .merge(requests::routes())
        .merge(tokens::routes())
        .fallback(|| async { ApiError::not_found("The resource could not be found.") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "The method is not allowed for the requested URL.",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::identify,
        ))
        .layer(axum::middleware::from_fn(middleware::protocol))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// The whole HTTP service: path normalisation in front of the router.
pub fn service(state: AppState) -> HttpService {
    let normalize: NormalizeFn = middleware::normalize_path;
    let app = tower::util::MapRequest::new(router(state), normalize);
    axum::ServiceExt::<axum::http::Request<axum::body::Body>>::into_make_service(app)
}

type NormalizeFn =
    fn(axum::http::Request<axum::body::Body>) -> axum::http::Request<axum::body::Body>;

/// What [`service`] returns: ready for `axum::serve`.
pub type HttpService = axum::routing::IntoMakeService<tower::util::MapRequest<Router, NormalizeFn>>;

/// The caller, as established by [`middleware::identify`].
pub struct Ctx(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Ctx, ApiError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .map(Ctx)
            .ok_or_else(ApiError::unauthorized)
    }
}

impl Ctx {
    pub fn allow(&self, action: Action, owner: Option<&str>) -> ApiResult<()> {
        Ok(authorize(&self.0, action, owner)?)
    }

    /// The rows this caller sees: admins every project, others their own.
    pub fn scope(&self) -> Scope {
        if self.0.is_admin() {
            Scope::All
        } else {
            Scope::Project(self.0.project_id.clone())
        }
    }

    /// The scope of a collection list: the caller's project; an admin may name another one
    /// (`project=`) or ask for every project (`all_projects=true`).
    pub fn list_scope(&self, q: &Query) -> ApiResult<Scope> {
        let wants_all = q.flag("all_projects")?.unwrap_or(false);
        match (q.get("project"), wants_all) {
            (Some(_), _) | (None, true) if !self.0.is_admin() => Err(ApiError::bad_request(
                "Project parameter can be used only by the administrator.",
            )),
            (Some(p), _) => Ok(Scope::Project(Some(p.to_string()))),
            (None, true) => Ok(Scope::All),
            (None, false) => Ok(Scope::Project(self.0.project_id.clone())),
        }
    }
}

/// The decoded query string.
#[derive(Debug, Default)]
pub struct Query(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Query, ApiError> {
        let raw = parts.uri.query().unwrap_or("");
        Ok(Query(
            url::form_urlencoded::parse(raw.as_bytes())
                .into_owned()
                .collect(),
        ))
    }
}

impl Query {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn flag(&self, key: &str) -> ApiResult<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => s4t_model::input::parse_bool(v).map(Some).ok_or_else(|| {
                ApiError::bad_request(format!("{key} must be true or false, got {v:?}."))
            }),
        }
    }
}

/// The base URL for links: `--public-url`, else the request's own scheme and host.
pub struct BaseUrl(pub String);

impl FromRequestParts<AppState> for BaseUrl {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<BaseUrl, ApiError> {
        if let Some(url) = &state.config.public_url {
            return Ok(BaseUrl(url.trim_end_matches('/').to_string()));
        }
        let host = parts
            .headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        Ok(BaseUrl(format!("http://{host}")))
    }
}

/// Parses a JSON request body, with an error that says what is wrong.
pub fn json_body(bytes: &Bytes) -> ApiResult<Value> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "The request body is empty: send a JSON object.",
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("The request body is not valid JSON: {e}.")))
}

/// A JSON body already serialized (lists the database rendered, bodies kept in the cache).
pub struct RawJson(pub Bytes);

impl axum::response::IntoResponse for RawJson {
    fn into_response(self) -> axum::response::Response {
        (
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            self.0,
        )
            .into_response()
    }
}

/// A `201 Created` JSON response.
pub fn created(v: Value) -> (StatusCode, axum::Json<Value>) {
    (StatusCode::CREATED, axum::Json(v))
}
