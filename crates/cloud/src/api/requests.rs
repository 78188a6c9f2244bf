//! `/v1/requests`: the record of board operations and their results.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use s4t_model::is_uuid_like;
use s4t_model::listing::{parse_fields, specs, ListQuery};
use s4t_model::policy::Action;
use s4t_store::Page;

use super::render::{self, select};
use super::{ApiError, ApiResult, AppState, BaseUrl, Ctx, Query};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/requests", get(list))
        .route("/v1/requests/detail", get(list_detail))
        .route("/v1/requests/{request}", get(show))
        .route("/v1/requests/{request}/results", get(results))
}

async fn list_with(
    state: AppState,
    ctx: Ctx,
    base: BaseUrl,
    q: Query,
    detail: bool,
) -> ApiResult<Json<Value>> {
    ctx.allow(Action::Read, None)?;
    let lq = ListQuery::parse(&specs::REQUESTS, &q.0, detail)?;
    let list = state
        .store
        .list_requests(&ctx.list_scope(&q)?, &Page::from(&lq))
        .await?;
    Ok(Json(render::page(
        &specs::REQUESTS,
        &base.0,
        &lq,
        &list,
        |r| render::request(r, &base.0),
        |r| r.uuid.clone(),
    )))
}

async fn list(
    State(s): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    q: Query,
) -> ApiResult<Json<Value>> {
    list_with(s, ctx, base, q, false).await
}

async fn list_detail(
    State(s): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    q: Query,
) -> ApiResult<Json<Value>> {
    list_with(s, ctx, base, q, true).await
}

fn check_uuid(raw: &str) -> ApiResult<String> {
    if is_uuid_like(raw) {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(ApiError::bad_request(format!(
            "Expected a uuid but received {raw}."
        )))
    }
}

async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    q: Query,
    Path(request): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.allow(Action::Read, None)?;
    let fields = q
        .get("fields")
        .map(|f| parse_fields(&specs::REQUESTS, f))
        .transpose()?;
    let r = state
        .store
        .request(&check_uuid(&request)?, &ctx.scope())
        .await?;
    Ok(Json(select(
        render::request(&r, &base.0),
        fields.as_deref(),
        &specs::REQUESTS,
    )))
}

async fn results(
    State(state): State<AppState>,
    ctx: Ctx,
    q: Query,
    Path(request): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.allow(Action::Read, None)?;
    let fields = match q.get("fields") {
        Some(f) => parse_fields(&specs::RESULTS, f)?,
        None => specs::RESULTS
            .default_fields
            .iter()
            .map(|f| f.to_string())
            .collect(),
    };
    let r = state
        .store
        .request(&check_uuid(&request)?, &ctx.scope())
        .await?;
    let list = state.store.results(&r.uuid).await?;
    let items: Vec<Value> = list
        .iter()
        .map(|x| select(render::result(x), Some(&fields), &specs::RESULTS))
        .collect();
    Ok(Json(json!({"results": items})))
}
