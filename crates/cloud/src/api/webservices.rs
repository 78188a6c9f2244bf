//! `/v1/webservices`, `/v1/enabledwebservices` and `/v1/boards/{B}/webservices`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::Value;

use s4t_model::input::BodyReader;
use s4t_model::listing::{parse_fields, specs, ListQuery};
use s4t_model::policy::Action;
use s4t_model::{is_uuid_like, InputError};
use s4t_store::Page;

use super::boards::find as find_board;
use super::render::{self, select};
use super::{json_body, ApiError, ApiResult, AppState, BaseUrl, Ctx, Query};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/webservices", get(list))
        .route("/v1/webservices/detail", get(list_detail))
        .route("/v1/webservices/{webservice}", get(show).delete(remove))
        .route("/v1/enabledwebservices", get(enabled))
        .route(
            "/v1/boards/{board}/webservices",
            get(board_list).put(expose),
        )
        .route("/v1/boards/{board}/webservices/enable", post(enable))
        .route("/v1/boards/{board}/webservices/disable", delete(disable))
        .route("/v1/boards/{board}/webservices/renew", get(renew))
}

fn check_uuid(raw: &str) -> ApiResult<()> {
    if is_uuid_like(raw) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Expected a uuid but received {raw}."
        )))
    }
}

async fn list_with(
    state: AppState,
    ctx: Ctx,
    base: BaseUrl,
    q: Query,
    detail: bool,
    board: Option<String>,
) -> ApiResult<Json<Value>> {
    ctx.allow(Action::Read, None)?;
    let lq = ListQuery::parse(&specs::WEBSERVICES, &q.0, detail)?;
    let scope = ctx.list_scope(&q)?;
    let list = state
        .store
        .list_webservices(&scope, board.as_deref(), &Page::from(&lq))
        .await?;
    Ok(Json(render::page(
        &specs::WEBSERVICES,
        &base.0,
        &lq,
        &list,
        |w| render::webservice(w, &base.0),
        |w| w.uuid.clone(),
    )))
}

async fn list(
    State(s): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    q: Query,
) -> ApiResult<Json<Value>> {
    list_with(s, ctx, base, q, false, None).await
}

async fn list_detail(
    State(s): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    q: Query,
) -> ApiResult<Json<Value>> {
    list_with(s, ctx, base, q, true, None).await
}

async fn board_list(
    State(state): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    q: Query,
    Path(board): Path<String>,
) -> ApiResult<Json<Value>> {
    let b = find_board(&state, &ctx, &board).await?;
    list_with(state, ctx, base, q, false, Some(b.uuid)).await
}

async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    q: Query,
    Path(ws): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.allow(Action::Read, None)?;
    check_uuid(&ws)?;
    let fields = q
        .get("fields")
        .map(|f| parse_fields(&specs::WEBSERVICES, f))
        .transpose()?;
    let w = state
        .store
        .webservice(&ws.to_ascii_lowercase(), &ctx.scope())
        .await?;
    Ok(Json(select(
        render::webservice(&w, &base.0),
        fields.as_deref(),
        &specs::WEBSERVICES,
    )))
}

async fn remove(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ws): Path<String>,
) -> ApiResult<StatusCode> {
    check_uuid(&ws)?;
    let w = state
        .store
        .webservice(&ws.to_ascii_lowercase(), &ctx.scope())
        .await?;
    let b = state
        .store
        .board(
            &s4t_model::Ident::Uuid(w.board_uuid.clone()),
            &s4t_store::Scope::All,
        )
        .await?;
    ctx.allow(Action::BoardOperate, b.owner.as_deref())?;
    state.store.enabled_webservice(&b.uuid).await?;
    state.conductor.delete_webservice(&b, &w).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn enabled(
    State(state): State<AppState>,
    ctx: Ctx,
    q: Query,
    base: BaseUrl,
) -> ApiResult<Json<Value>> {
    ctx.allow(Action::Read, None)?;
    let lq = ListQuery::parse(&specs::ENABLED_WEBSERVICES, &q.0, false)?;
    let list = state
        .store
        .list_enabled_webservices(&ctx.list_scope(&q)?, &Page::from(&lq))
        .await?;
    Ok(Json(render::page(
        &specs::ENABLED_WEBSERVICES,
        &base.0,
        &lq,
        &list,
        render::enabled_webservice,
        |e| e.id.to_string(),
    )))
}

async fn enable(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(board): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let b = find_board(&state, &ctx, &board).await?;
    ctx.allow(Action::BoardOperate, b.owner.as_deref())?;
    let mut r = BodyReader::new(
        "EnabledWebservice",
        json_body(&body)?,
        &["dns", "zone", "email"],
    )?;
    let mut read = |field: &str| -> ApiResult<String> {
        r.text_or_zero(field, 100)?
            .ok_or_else(|| InputError::field(field, format!("{field} is not specified.")).into())
    };
    let (dns, zone, email) = (read("dns")?, read("zone")?, read("email")?);
    let dns = s4t_model::dns::label("dns", &dns).map_err(|e| InputError::field("dns", e))?;
    let zone = s4t_model::dns::zone("zone", &zone).map_err(|e| InputError::field("zone", e))?;
    let e = state
        .conductor
        .enable_webservices(&b, &dns, &zone, &email)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Value::Object(render::enabled_webservice(&e))),
    ))
}

async fn disable(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(board): Path<String>,
) -> ApiResult<StatusCode> {
    let b = find_board(&state, &ctx, &board).await?;
    ctx.allow(Action::BoardOperate, b.owner.as_deref())?;
    state.conductor.disable_webservices(&b).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn renew(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(board): Path<String>,
) -> ApiResult<Json<Value>> {
    let b = find_board(&state, &ctx, &board).await?;
    ctx.allow(Action::BoardOperate, b.owner.as_deref())?;
    Ok(Json(state.conductor.renew_webservices(&b).await?))
}

async fn expose(
    State(state): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    Path(board): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let b = find_board(&state, &ctx, &board).await?;
    ctx.allow(Action::BoardOperate, b.owner.as_deref())?;
    let mut r = BodyReader::new(
        "Webservice",
        json_body(&body)?,
        &["name", "port", "secure", "extra"],
    )?;
    let name = r.name("name", 63, true)?.unwrap_or_default();
    let name = s4t_model::dns::label("name", &name).map_err(|e| InputError::field("name", e))?;
    let Some(port) = r.integer("port", 1..=65535)? else {
        return Err(InputError::field(
            "port",
            "port is required: the board-local port to publish.",
        )
        .into());
    };
    let secure = r.boolean("secure")?.unwrap_or(true);
    let extra = r.object("extra")?.unwrap_or_default();
    let w = state
        .conductor
        .expose_webservice(&b, &name, port as u16, secure, &extra)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Value::Object(render::webservice(&w, &base.0))),
    ))
}
