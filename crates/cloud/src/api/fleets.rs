//! `/v1/fleets`: groups of boards.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use s4t_model::listing::{parse_fields, specs, ListQuery};
use s4t_model::policy::Action;
use s4t_model::resources::{Fleet, FleetFields};
use s4t_model::Ident;
use s4t_store::boards::BoardFilter;
use s4t_store::Page;

use super::render::{self, select};
use super::{created, json_body, ApiError, ApiResult, AppState, BaseUrl, Ctx, Query};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/fleets", get(list).post(create))
        .route("/v1/fleets/detail", get(list_detail))
        .route("/v1/fleets/{fleet}", get(show).patch(update).delete(remove))
        .route("/v1/fleets/{fleet}/boards", get(boards))
        .route("/v1/fleets/{fleet}/plugins", post(rollout_inject))
        .route(
            "/v1/fleets/{fleet}/plugins/{plugin}/action",
            post(rollout_action),
        )
}

/// Every board of the fleet the caller may operate, matching the selector.
async fn rollout_boards(
    state: &AppState,
    ctx: &Ctx,
    fleet: &Fleet,
    selector: &s4t_model::resources::JsonObject,
) -> ApiResult<Vec<s4t_model::resources::Board>> {
    let filter = BoardFilter {
        scope: ctx.scope(),
        status: None,
        fleet: Some(fleet.uuid.clone()),
    };
    let mut out = Vec::new();
    let mut page = Page::default();
    loop {
        let boards = state.store.list_boards(&filter, &page).await?;
        let full = boards.len() as u32 == page.limit;
        page.marker = boards.last().map(|b| b.uuid.clone());
        out.extend(
            boards
                .into_iter()
                .filter(|b| s4t_model::rollout::selects(selector, &b.extra)),
        );
        if !full {
            return Ok(out);
        }
    }
}

async fn rollout(
    state: AppState,
    ctx: Ctx,
    base: BaseUrl,
    fleet: String,
    operation: s4t_model::rollout::Operation,
    options: s4t_model::rollout::RolloutOptions,
) -> ApiResult<(StatusCode, Json<Value>)> {
    ctx.allow(Action::BoardOperate, None)?;
    let f = find(&state, &ctx, &fleet).await?;
    let plugin_ref = match &operation {
        s4t_model::rollout::Operation::Inject { plugin, .. }
        | s4t_model::rollout::Operation::Action { plugin, .. } => plugin.clone(),
    };
    let plugin = super::plugins::find(&state, &ctx, &plugin_ref).await?;
    let boards = rollout_boards(&state, &ctx, &f, &options.selector).await?;
    let parent = crate::rollout::start(
        state.conductor.clone(),
        &f.uuid,
        f.project.clone(),
        boards,
        plugin,
        operation,
        options,
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Value::Object(render::request(&parent, &base.0))),
    ))
}

async fn rollout_inject(
    State(state): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    Path(fleet): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (operation, options) = s4t_model::rollout::read_inject(json_body(&body)?)?;
    rollout(state, ctx, base, fleet, operation, options).await
}

async fn rollout_action(
    State(state): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    Path((fleet, plugin)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (operation, options) = s4t_model::rollout::read_action(&plugin, json_body(&body)?)?;
    rollout(state, ctx, base, fleet, operation, options).await
}

async fn find(state: &AppState, ctx: &Ctx, raw: &str) -> ApiResult<Fleet> {
    Ok(state.store.fleet(&Ident::parse(raw), &ctx.scope()).await?)
}

async fn list_with(
    state: AppState,
    ctx: Ctx,
    base: BaseUrl,
    q: Query,
    detail: bool,
) -> ApiResult<Json<Value>> {
    ctx.allow(Action::Read, None)?;
    let lq = ListQuery::parse(&specs::FLEETS, &q.0, detail)?;
    let fleets = state
        .store
        .list_fleets(&ctx.list_scope(&q)?, &Page::from(&lq))
        .await?;
    Ok(Json(render::page(
        &specs::FLEETS,
        &base.0,
        &lq,
        &fleets,
        |f| render::fleet(f, &base.0),
        |f| f.uuid.clone(),
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
    Path(fleet): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.allow(Action::Read, None)?;
    let fields = q
        .get("fields")
        .map(|f| parse_fields(&specs::FLEETS, f))
        .transpose()?;
    let f = find(&state, &ctx, &fleet).await?;
    Ok(Json(select(
        render::fleet(&f, &base.0),
        fields.as_deref(),
        &specs::FLEETS,
    )))
}

async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    ctx.allow(Action::FleetCreate, None)?;
    let f = FleetFields::read(json_body(&body)?, true)?;
    let fleet = state
        .store
        .create_fleet(&f, ctx.0.project_id.as_deref())
        .await?;
    Ok(created(Value::Object(render::fleet(&fleet, &base.0))))
}

async fn update(
    State(state): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    Path(fleet): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    ctx.allow(Action::FleetModify, None)?;
    let current = find(&state, &ctx, &fleet).await?;
    let f = FleetFields::read(json_body(&body)?, false)?;
    if f.uuid.as_deref().is_some_and(|u| u != current.uuid) {
        return Err(ApiError::bad_request(
            "Cannot overwrite UUID for an existing Fleet.",
        ));
    }
    if let Some(name) = &f.name {
        if name != &current.name {
            let scope = s4t_store::Scope::Project(current.project.clone());
            if state
                .store
                .fleet(&Ident::Name(name.clone()), &scope)
                .await
                .is_ok()
            {
                return Err(ApiError::conflict(format!(
                    "A fleet named {name} already exists in this project."
                )));
            }
        }
    }
    let updated = state.store.update_fleet(&current.uuid, &f).await?;
    Ok(Json(Value::Object(render::fleet(&updated, &base.0))))
}

async fn remove(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(fleet): Path<String>,
) -> ApiResult<StatusCode> {
    ctx.allow(Action::FleetModify, None)?;
    let f = find(&state, &ctx, &fleet).await?;
    state.store.delete_fleet(&f.uuid).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn boards(
    State(state): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    q: Query,
    Path(fleet): Path<String>,
) -> ApiResult<super::RawJson> {
    ctx.allow(Action::Read, None)?;
    let f = find(&state, &ctx, &fleet).await?;
    super::boards::fleet_boards(&state, &ctx, &base.0, &q, f.uuid).await
}
