//! `/v1/plugins` (the catalogue) and `/v1/boards/{B}/plugins` (injections and plugin actions).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use s4t_model::listing::{parse_fields, specs, ListQuery};
use s4t_model::plugin_runtime;
use s4t_model::policy::Action;
use s4t_model::resources::{ActionRequest, InjectRequest, Plugin, PluginFields, PLUGIN_ACTIONS};
use s4t_model::Ident;
use s4t_store::plugins::PluginVisibility;
use s4t_store::Page;

use super::boards::find as find_board;
use super::render::{self, select};
use super::{created, json_body, ApiError, ApiResult, AppState, BaseUrl, Ctx, Query};
use crate::auth::content_digest;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/plugins", get(list).post(create))
        .route("/v1/plugins/detail", get(list_detail))
        .route("/v1/plugins/public", get(list_public))
        .route(
            "/v1/plugins/{plugin}",
            get(show).patch(update).delete(remove),
        )
        .route("/v1/boards/{board}/plugins", get(injections).put(inject))
        .route(
            "/v1/boards/{board}/plugins/{plugin}",
            axum::routing::post(plugin_action).delete(uninject),
        )
        .route("/v1/boards/{board}/plugins/{plugin}/logs", get(plugin_logs))
}

/// The tail of a plugin's log on the board (s4t extension; `s4t agent` boards only).
async fn plugin_logs(
    State(state): State<AppState>,
    ctx: Ctx,
    q: Query,
    Path((board, plugin)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let b = find_board(&state, &ctx, &board).await?;
    ctx.allow(Action::BoardOperate, b.owner.as_deref())?;
    let lines = match q.get("lines") {
        None => 100,
        Some(raw) => match raw.parse::<u64>() {
            Ok(n) if (1..=10_000).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "lines: {raw:?} is not a number of lines between 1 and 10000."
                )))
            }
        },
    };
    let p = find(&state, &ctx, &plugin).await?;
    state.conductor.ensure_connected(&b)?;
    Ok(Json(
        state
            .conductor
            .execute(
                &b,
                "PluginLogs",
                vec![json!(p.uuid), json!({"lines": lines})],
            )
            .await?,
    ))
}

/// What a caller sees of the catalogue: admins everything, others their own and public plugins.
fn visible(ctx: &Ctx) -> PluginVisibility {
    if ctx.0.is_admin() || ctx.0.noauth && ctx.0.user_id.is_none() {
        PluginVisibility::All
    } else {
        PluginVisibility::Owner {
            owner: ctx.0.user_id.clone(),
            with_public: true,
        }
    }
}

pub async fn find(state: &AppState, ctx: &Ctx, raw: &str) -> ApiResult<Plugin> {
    Ok(state
        .store
        .plugin(&Ident::parse(raw), &visible(ctx))
        .await?)
}

async fn list_with(
    state: AppState,
    ctx: Ctx,
    base: BaseUrl,
    q: Query,
    detail: bool,
    public_only: bool,
) -> ApiResult<Json<Value>> {
    ctx.allow(Action::Read, None)?;
    let lq = ListQuery::parse(&specs::PLUGINS, &q.0, detail)?;
    let all = q.flag("all_plugins")?.unwrap_or(false);
    if all && !ctx.0.is_admin() && !ctx.0.noauth {
        return Err(ApiError::bad_request(
            "all_plugins parameter can be used only by the administrator.",
        ));
    }
    let vis = if public_only {
        PluginVisibility::PublicOnly
    } else if all {
        PluginVisibility::All
    } else {
        PluginVisibility::Owner {
            owner: ctx.0.user_id.clone(),
            with_public: q.flag("with_public")?.unwrap_or(false),
        }
    };
    let plugins = state.store.list_plugins(&vis, &Page::from(&lq)).await?;
    Ok(Json(render::page(
        &specs::PLUGINS,
        &base.0,
        &lq,
        &plugins,
        |p| render::plugin(p, &base.0),
        |p| p.uuid.clone(),
    )))
}

async fn list(
    State(s): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    q: Query,
) -> ApiResult<Json<Value>> {
    list_with(s, ctx, base, q, false, false).await
}

async fn list_detail(
    State(s): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    q: Query,
) -> ApiResult<Json<Value>> {
    list_with(s, ctx, base, q, true, false).await
}

async fn list_public(
    State(s): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    q: Query,
) -> ApiResult<Json<Value>> {
    list_with(s, ctx, base, q, false, true).await
}

async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    q: Query,
    Path(plugin): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.allow(Action::Read, None)?;
    let fields = q
        .get("fields")
        .map(|f| parse_fields(&specs::PLUGINS, f))
        .transpose()?;
    let p = find(&state, &ctx, &plugin).await?;
    Ok(Json(select(
        render::plugin(&p, &base.0),
        fields.as_deref(),
        &specs::PLUGINS,
    )))
}

async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    ctx.allow(Action::PluginCreate, None)?;
    let f = PluginFields::for_create(json_body(&body)?)?;
    let extra = f.extra.clone().map(Value::Object);
    plugin_runtime::check_plugin(extra.as_ref(), f.code.as_deref().unwrap_or_default())?;
    let digest = content_digest(f.code.as_deref().unwrap_or_default());
    let p = state
        .store
        .create_plugin(&f, ctx.0.user_id.as_deref(), &digest)
        .await?;
    Ok(created(Value::Object(render::plugin(&p, &base.0))))
}

async fn update(
    State(state): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    Path(plugin): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let current = find(&state, &ctx, &plugin).await?;
    ctx.allow(Action::PluginModify, current.owner.as_deref())?;
    let f = PluginFields::for_patch(json_body(&body)?, &current.uuid)?;
    // The plugin as it will be: a new runtime must fit the kept code, new code the kept runtime.
    let extra = Value::Object(f.extra.clone().unwrap_or_else(|| current.extra.clone()));
    plugin_runtime::check_plugin(Some(&extra), f.code.as_deref().unwrap_or(&current.code))?;
    let digest = f.code.as_deref().map(content_digest);
    let p = state
        .store
        .update_plugin(&current.uuid, &f, digest.as_deref())
        .await?;
    Ok(Json(Value::Object(render::plugin(&p, &base.0))))
}

async fn remove(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(plugin): Path<String>,
) -> ApiResult<StatusCode> {
    let p = find(&state, &ctx, &plugin).await?;
    ctx.allow(Action::PluginModify, p.owner.as_deref())?;
    state.store.delete_plugin(&p.uuid).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn injections(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(board): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.allow(Action::Read, None)?;
    let b = find_board(&state, &ctx, &board).await?;
    let list = state.store.injections(&b.uuid).await?;
    Ok(Json(
        json!({"injections": list.iter().map(render::injection).collect::<Vec<_>>()}),
    ))
}

async fn inject(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(board): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let b = find_board(&state, &ctx, &board).await?;
    ctx.allow(Action::BoardOperate, b.owner.as_deref())?;
    let req = InjectRequest::read(json_body(&body)?)?;
    let p = find(&state, &ctx, &req.plugin).await?;
    state.conductor.ensure_connected(&b)?;
    let plugin = s4t_model::board_link::plugin_payload(&p);
    let reply = state
        .conductor
        .execute(&b, "PluginInject", vec![plugin, json!(req.onboot)])
        .await?;
    state
        .store
        .upsert_injection(&b.uuid, &p.uuid, req.onboot)
        .await?;
    Ok(Json(reply))
}

async fn plugin_action(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((board, plugin)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let b = find_board(&state, &ctx, &board).await?;
    ctx.allow(Action::BoardOperate, b.owner.as_deref())?;
    let req = ActionRequest::read("Plugin", json_body(&body)?, &PLUGIN_ACTIONS)?;
    let p = find(&state, &ctx, &plugin).await?;
    if matches!(
        req.action.as_str(),
        "PluginCall" | "PluginStart" | "PluginReboot"
    ) {
        let missing: Vec<&String> = p
            .parameters
            .keys()
            .filter(|k| !req.parameters.contains_key(*k))
            .collect();
        if !missing.is_empty() {
            return Err(ApiError::bad_request(format!(
                "Parameters are different from the valid ones: missing {}.",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    state.conductor.ensure_connected(&b)?;
    let args = s4t_model::board_link::plugin_action_args(&req.action, &p.uuid, &req.parameters);
    Ok(Json(state.conductor.execute(&b, &req.action, args).await?))
}

async fn uninject(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((board, plugin)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let b = find_board(&state, &ctx, &board).await?;
    ctx.allow(Action::BoardOperate, b.owner.as_deref())?;
    let p = find(&state, &ctx, &plugin).await?;
    state.store.injection(&b.uuid, &p.uuid).await?;
    state
        .conductor
        .execute(&b, "PluginRemove", vec![json!(p.uuid)])
        .await?;
    state.store.delete_injection(&b.uuid, &p.uuid).await?;
    Ok(StatusCode::NO_CONTENT)
}
