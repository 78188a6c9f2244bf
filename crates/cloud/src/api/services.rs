//! `/v1/services` (the catalogue) and `/v1/boards/{B}/services` (exposed services).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use s4t_model::listing::{parse_fields, specs, ListQuery};
use s4t_model::policy::Action;
use s4t_model::resources::{ActionRequest, Service, ServiceFields, SERVICE_ACTIONS};
use s4t_model::Ident;
use s4t_store::Page;

use super::boards::find as find_board;
use super::render::{self, select};
use super::{created, json_body, ApiResult, AppState, BaseUrl, Ctx, Query};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/services", get(list).post(create))
        .route("/v1/services/detail", get(list_detail))
        .route("/v1/services/public", get(list))
        .route(
            "/v1/services/{service}",
            get(show).patch(update).delete(remove),
        )
        .route("/v1/boards/{board}/services", get(exposed))
        .route("/v1/boards/{board}/services/restore", get(restore))
        .route("/v1/boards/{board}/services/status", get(status))
        .route("/v1/boards/{board}/services/{service}/action", post(action))
        .route("/v1/tunnels", get(tunnels))
}

pub async fn find(state: &AppState, ctx: &Ctx, raw: &str) -> ApiResult<Service> {
    Ok(state
        .store
        .service(&Ident::parse(raw), &ctx.scope())
        .await?)
}

async fn list_with(
    state: AppState,
    ctx: Ctx,
    base: BaseUrl,
    q: Query,
    detail: bool,
) -> ApiResult<Json<Value>> {
    ctx.allow(Action::Read, None)?;
    let lq = ListQuery::parse(&specs::SERVICES, &q.0, detail)?;
    let scope = if q.flag("all_services")?.unwrap_or(false) && ctx.0.is_admin() {
        s4t_store::Scope::All
    } else {
        ctx.list_scope(&q)?
    };
    let services = state.store.list_services(&scope, &Page::from(&lq)).await?;
    Ok(Json(render::page(
        &specs::SERVICES,
        &base.0,
        &lq,
        &services,
        |s| render::service(s, &base.0),
        |s| s.uuid.clone(),
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

async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    q: Query,
    Path(service): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.allow(Action::Read, None)?;
    let fields = q
        .get("fields")
        .map(|f| parse_fields(&specs::SERVICES, f))
        .transpose()?;
    let s = find(&state, &ctx, &service).await?;
    Ok(Json(select(
        render::service(&s, &base.0),
        fields.as_deref(),
        &specs::SERVICES,
    )))
}

async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    ctx.allow(Action::ServiceCreate, None)?;
    let f = ServiceFields::read(json_body(&body)?, true)?;
    let s = state
        .store
        .create_service(&f, ctx.0.project_id.as_deref())
        .await?;
    Ok(created(Value::Object(render::service(&s, &base.0))))
}

async fn update(
    State(state): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    Path(service): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    ctx.allow(Action::ServiceModify, None)?;
    let current = find(&state, &ctx, &service).await?;
    let f = ServiceFields::read(json_body(&body)?, false)?;
    if f.uuid.as_deref().is_some_and(|u| u != current.uuid) {
        return Err(super::ApiError::bad_request(
            "Cannot overwrite UUID for an existing Service.",
        ));
    }
    let s = state.store.update_service(&current.uuid, &f).await?;
    Ok(Json(Value::Object(render::service(&s, &base.0))))
}

async fn remove(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(service): Path<String>,
) -> ApiResult<StatusCode> {
    ctx.allow(Action::ServiceModify, None)?;
    let s = find(&state, &ctx, &service).await?;
    state.store.delete_service(&s.uuid).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn exposed(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(board): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.allow(Action::Read, None)?;
    let b = find_board(&state, &ctx, &board).await?;
    let list = state.store.exposed_services(&b.uuid).await?;
    Ok(Json(
        json!({"exposed": list.iter().map(render::exposed).collect::<Vec<_>>()}),
    ))
}

async fn action(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((board, service)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let b = find_board(&state, &ctx, &board).await?;
    ctx.allow(Action::BoardOperate, b.owner.as_deref())?;
    let req = ActionRequest::read("Service", json_body(&body)?, &SERVICE_ACTIONS)?;
    let s = find(&state, &ctx, &service).await?;
    state.conductor.ensure_connected(&b)?;
    let c = &state.conductor;
    let reply = match req.action.as_str() {
        "ServiceEnable" => c.enable_service(&b, &s).await?,
        "ServiceDisable" => c.disable_service(&b, &s).await?,
        _ => c.restore_service(&b, &s).await?,
    };
    Ok(Json(reply))
}

async fn restore(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(board): Path<String>,
) -> ApiResult<Json<Value>> {
    let b = find_board(&state, &ctx, &board).await?;
    ctx.allow(Action::BoardOperate, b.owner.as_deref())?;
    state.conductor.ensure_connected(&b)?;
    let list = state.store.exposed_services(&b.uuid).await?;
    for e in &list {
        let s = state
            .store
            .service(&Ident::Uuid(e.service_uuid.clone()), &s4t_store::Scope::All)
            .await?;
        state.conductor.restore_service(&b, &s).await?;
    }
    let list = state.store.exposed_services(&b.uuid).await?;
    Ok(Json(
        json!({"exposed": list.iter().map(render::exposed).collect::<Vec<_>>()}),
    ))
}

async fn status(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(board): Path<String>,
) -> ApiResult<Json<Value>> {
    let b = find_board(&state, &ctx, &board).await?;
    ctx.allow(Action::BoardOperate, b.owner.as_deref())?;
    Ok(Json(
        state
            .conductor
            .execute(&b, "ServicesStatus", vec![])
            .await?,
    ))
}

/// The tunnel server as it runs (an s4t extension): its URL, port range, the public ports held
/// open by a board's control socket, and its counters.
async fn tunnels(State(state): State<AppState>, ctx: Ctx) -> ApiResult<Json<Value>> {
    ctx.allow(Action::ServiceModify, None)?;
    let Some(t) = state.conductor.tunnels() else {
        return Ok(Json(json!({"running": false})));
    };
    let range = &t.config().ports;
    Ok(Json(json!({
        "running": true,
        "url": state.conductor.tunnel_url(),
        "public_ports": format!("{}-{}", range.start(), range.end()),
        "public_host": t.config().public_host.to_string(),
        "open": t.open_ports().into_iter().map(|(port, board)| json!({"public_port": port, "board_uuid": board})).collect::<Vec<_>>(),
        "counters": t.counters_json(),
    })))
}
