//! `/v1/boards`: boards and board actions.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use s4t_model::listing::{parse_fields, specs, ListQuery};
use s4t_model::policy::Action;
use s4t_model::resources::{ActionRequest, Board, BoardPatch, NewBoard, BOARD_ACTIONS};
use s4t_model::{BoardStatus, Ident};
use s4t_store::boards::{BoardFilter, BoardOwnership, BoardRendering, BoardUpdate};
use s4t_store::{Page, Scope};

use super::cache::Cached;
use super::render::{self, select};
use super::{created, json_body, ApiError, ApiResult, AppState, BaseUrl, Ctx, Query, RawJson};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/boards", get(list).post(create))
        .route("/v1/boards/detail", get(list_detail))
        .route("/v1/boards/{board}", get(show).patch(update).delete(remove))
        .route("/v1/boards/{board}/action", post(action))
}

/// Finds a board by uuid or name among those the caller sees.
pub async fn find(state: &AppState, ctx: &Ctx, raw: &str) -> ApiResult<Board> {
    Ok(state.store.board(&Ident::parse(raw), &ctx.scope()).await?)
}

/// Resolves a fleet given by uuid or name (for `fleet` in board bodies).
async fn resolve_fleet(
    state: &AppState,
    ctx: &Ctx,
    raw: Option<&str>,
) -> ApiResult<Option<String>> {
    let Some(raw) = raw else { return Ok(None) };
    match state.store.fleet(&Ident::parse(raw), &ctx.scope()).await {
        Ok(f) => Ok(Some(f.uuid)),
        Err(s4t_store::StoreError::NotFound { .. }) => Err(ApiError::bad_request(format!(
            "fleet: Fleet {raw} could not be found; create it or send an existing fleet uuid."
        ))),
        Err(e) => Err(e.into()),
    }
}

/// A page of boards as a JSON body. The database renders the items (one statement whatever the
/// page size); only the envelope is written here.
pub async fn list_boards(
    state: &AppState,
    base: &str,
    spec_query: &ListQuery,
    filter: BoardFilter,
) -> ApiResult<RawJson> {
    let requested = spec_query.list_fields(&specs::BOARDS);
    let fields: Vec<&str> = specs::BOARDS
        .fields
        .iter()
        .copied()
        .filter(|f| requested.iter().any(|r| r == f) || specs::BOARDS.always.contains(f))
        .collect();
    let wstun = state.config.wstun_host();
    let page = state
        .store
        .list_boards_json(
            &filter,
            &Page::from(spec_query),
            &BoardRendering {
                fields: &fields,
                base_url: base,
                registration_url: &state.config.board_url(),
                wstun_host: wstun.as_deref(),
            },
        )
        .await?;
    Ok(RawJson(
        render::collection_raw(
            &specs::BOARDS,
            base,
            &page.items,
            page.count,
            spec_query,
            page.last_marker,
        )
        .into(),
    ))
}

async fn list_with(
    state: AppState,
    ctx: Ctx,
    base: BaseUrl,
    q: Query,
    uri: Uri,
    headers: &HeaderMap,
    detail: bool,
) -> ApiResult<Cached> {
    ctx.allow(Action::Read, None)?;
    let lq = ListQuery::parse(&specs::BOARDS, &q.0, detail)?;
    let status = match q.get("status") {
        None => None,
        Some(s) => {
            Some(BoardStatus::parse(s).map_err(|e| ApiError::bad_request(format!("status: {e}")))?)
        }
    };
    let filter = BoardFilter {
        scope: ctx.list_scope(&q)?,
        status,
        fleet: None,
    };
    let key = format!(
        "list|{detail}|{:?}|{}|{}",
        filter.scope,
        base.0,
        uri.query().unwrap_or("")
    );
    state
        .rendered
        .boards(&state.store, key, headers, async {
            Ok(list_boards(&state, &base.0, &lq, filter).await?.0)
        })
        .await
}

async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    q: Query,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Cached> {
    list_with(state, ctx, base, q, uri, &headers, false).await
}

async fn list_detail(
    State(state): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    q: Query,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Cached> {
    list_with(state, ctx, base, q, uri, &headers, true).await
}

async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    q: Query,
    Path(board): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Cached> {
    ctx.allow(Action::Read, None)?;
    let fields = q
        .get("fields")
        .map(|f| parse_fields(&specs::BOARDS, f))
        .transpose()?;
    let scope = ctx.scope();
    let key = format!("show|{scope:?}|{}|{board}|{fields:?}", base.0);
    state
        .rendered
        .boards(&state.store, key, &headers, async {
            let b = find(&state, &ctx, &board).await?;
            let value = select(
                render::board(&b, &base.0, &state.config),
                fields.as_deref(),
                &specs::BOARDS,
            );
            Ok(serde_json::to_vec(&value)
                .map_err(|e| ApiError::internal(e.to_string()))?
                .into())
        })
        .await
}

async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    ctx.allow(Action::BoardCreate, None)?;
    let new = NewBoard::from_body(json_body(&body)?)?;
    let fleet = resolve_fleet(&state, &ctx, new.fleet.as_deref()).await?;
    let own = BoardOwnership {
        owner: ctx.0.user_id.clone(),
        project: ctx.0.project_id.clone(),
        fleet,
    };
    let b = state.store.create_board(&new, &own).await?;
    Ok(created(Value::Object(render::board(
        &b,
        &base.0,
        &state.config,
    ))))
}

async fn update(
    State(state): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    Path(board): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    ctx.allow(Action::BoardUpdate, None)?;
    let current = find(&state, &ctx, &board).await?;
    let patch = BoardPatch::from_body(json_body(&body)?, &current)?;
    let fleet = match &patch.fleet {
        Some(f) => Some(resolve_fleet(&state, &ctx, f.as_deref()).await?),
        None => None,
    };
    let update = BoardUpdate {
        code: patch.code,
        name: patch.name,
        board_type: patch.board_type,
        fleet,
        mobile: patch.mobile,
        extra: patch.extra,
        connectivity: patch.connectivity,
        location: patch.location,
    };
    let b = state.store.update_board(&current.uuid, &update).await?;
    Ok(Json(Value::Object(render::board(
        &b,
        &base.0,
        &state.config,
    ))))
}

async fn remove(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(board): Path<String>,
) -> ApiResult<StatusCode> {
    ctx.allow(Action::BoardDelete, None)?;
    let b = find(&state, &ctx, &board).await?;
    state.conductor.delete_board(&b).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn action(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(board): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let b = find(&state, &ctx, &board).await?;
    ctx.allow(Action::BoardOperate, b.owner.as_deref())?;
    let req = ActionRequest::read("Board", json_body(&body)?, &BOARD_ACTIONS)?;
    let reply = state
        .conductor
        .execute(&b, &req.action, vec![Value::Object(req.parameters)])
        .await?;
    Ok(Json(reply))
}

/// Boards of a fleet (`/v1/fleets/{F}/boards`), by fleet uuid or name.
pub async fn fleet_boards(
    state: &AppState,
    ctx: &Ctx,
    base: &str,
    q: &Query,
    fleet_uuid: String,
) -> ApiResult<RawJson> {
    let lq = ListQuery::parse(&specs::BOARDS, &q.0, false)?;
    let scope = if ctx.0.is_admin() {
        Scope::All
    } else {
        ctx.scope()
    };
    list_boards(
        state,
        base,
        &lq,
        BoardFilter {
            scope,
            status: None,
            fleet: Some(fleet_uuid),
        },
    )
    .await
}
