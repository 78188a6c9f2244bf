//! `/v1/workloads` (s4t extension): apply, list, show, delete, logs.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use s4t_model::policy::Action;
use s4t_model::workloads::{Placement, WorkloadSpec};
use s4t_model::InputError;
use s4t_store::workloads::{Replica, Workload};
use s4t_store::Scope;

use super::boards::find as find_board;
use super::{json_body, ApiError, ApiResult, AppState, Ctx, Query};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/workloads", get(list).post(apply))
        .route("/v1/workloads/{workload}", get(show).delete(remove))
        .route("/v1/workloads/{workload}/logs", get(logs))
}

fn render_replica(r: &Replica) -> Value {
    json!({
        "uuid": r.uuid, "ordinal": r.ordinal, "board_uuid": r.board_uuid, "generation": r.generation,
        "state": r.state, "exit_code": r.exit_code, "restarts": r.restarts, "message": r.message,
        "placed_at": r.placed_at, "reported_at": r.reported_at,
    })
}

/// The services a workload's `expose` ports became, and where each is exposed.
async fn exposures(state: &AppState, w: &Workload) -> ApiResult<Value> {
    let mut out = Vec::new();
    for svc in state.store.workload_services(&w.uuid).await? {
        let exposed = state.store.exposures_of_service(&svc.uuid).await?;
        out.push(json!({
            "port": svc.port, "service": svc.uuid, "service_name": svc.name,
            "exposed": exposed.iter().map(|x| json!({"board_uuid": x.board_uuid, "public_port": x.public_port})).collect::<Vec<_>>(),
        }));
    }
    Ok(Value::Array(out))
}

async fn render_full(state: &AppState, w: &Workload, replicas: &[Replica]) -> ApiResult<Value> {
    let mut v = render(w, replicas);
    v["exposed"] = exposures(state, w).await?;
    Ok(v)
}

fn render(w: &Workload, replicas: &[Replica]) -> Value {
    let desired = WorkloadSpec::read(&w.spec)
        .map(|s| s.replicas())
        .unwrap_or(0);
    let running = replicas.iter().filter(|r| r.state == "running").count();
    json!({
        "uuid": w.uuid, "name": w.name, "project": w.project, "generation": w.generation,
        "spec": w.spec, "pinned_board": w.pinned_board,
        "status": {"desired": desired, "placed": replicas.iter().filter(|r| r.board_uuid.is_some()).count(), "running": running},
        "replicas": replicas.iter().map(render_replica).collect::<Vec<_>>(),
        "created_at": w.created_at, "updated_at": w.updated_at,
    })
}

async fn apply(
    State(state): State<AppState>,
    ctx: Ctx,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    ctx.allow(Action::BoardOperate, None)?;
    let mut spec = WorkloadSpec::read(&json_body(&body)?)?;
    // A pinned workload names its board by name or uuid; it is kept by uuid.
    let pinned = match &spec.placement {
        Placement::Board(b) => {
            let board = find_board(&state, &ctx, b).await.map_err(|e| {
                if e.status == StatusCode::NOT_FOUND {
                    ApiError::from(InputError::field(
                        "placement.board",
                        format!("placement.board: board {b} could not be found"),
                    ))
                } else {
                    e
                }
            })?;
            Some(board.uuid)
        }
        Placement::Select { .. } => None,
    };
    if let Some(uuid) = &pinned {
        spec.placement = Placement::Board(uuid.clone());
    }
    let project = ctx.0.project_id.clone();
    let (w, created) = state
        .store
        .apply_workload(
            &spec.name,
            project.as_deref(),
            &spec.to_json(),
            pinned.as_deref(),
        )
        .await?;
    if let Some(s) = &state.scheduler {
        s.kick();
    }
    let replicas = state.store.replicas(&w.uuid).await?;
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(render_full(&state, &w, &replicas).await?),
    ))
}

async fn list(State(state): State<AppState>, ctx: Ctx, q: Query) -> ApiResult<Json<Value>> {
    ctx.allow(Action::Read, None)?;
    let scope = ctx.list_scope(&q)?;
    let mut out = Vec::new();
    for w in state.store.workloads(&scope).await? {
        let replicas = state.store.replicas(&w.uuid).await?;
        out.push(render_full(&state, &w, &replicas).await?);
    }
    Ok(Json(json!({"workloads": out})))
}

async fn find(state: &AppState, ctx: &Ctx, ident: &str) -> ApiResult<Workload> {
    Ok(state.store.workload(ident, &ctx.scope()).await?)
}

async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(workload): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.allow(Action::Read, None)?;
    let w = find(&state, &ctx, &workload).await?;
    let replicas = state.store.replicas(&w.uuid).await?;
    Ok(Json(render_full(&state, &w, &replicas).await?))
}

async fn remove(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(workload): Path<String>,
) -> ApiResult<StatusCode> {
    ctx.allow(Action::BoardOperate, None)?;
    let w = find(&state, &ctx, &workload).await?;
    // Its exposed ports close and their catalogue services go first.
    for svc in state.store.workload_services(&w.uuid).await? {
        state.conductor.close_service(&svc).await?;
    }
    let replicas = state.store.delete_workload(&w.uuid).await?;
    // Online boards stop their replicas now; the others when they come back (the scheduler
    // removes what a board runs and the store does not know).
    let timeout = state
        .scheduler
        .as_ref()
        .map(|s| s.config().call_timeout)
        .unwrap_or(std::time::Duration::from_secs(10));
    for r in replicas {
        let Some(board) = r.board_uuid.as_deref() else {
            continue;
        };
        let Ok(b) = state
            .store
            .board(&s4t_model::Ident::Uuid(board.to_string()), &Scope::All)
            .await
        else {
            continue;
        };
        if b.status.is_connected() {
            if let Err(e) = state
                .conductor
                .call_quiet(&b, "WorkloadRemove", vec![json!({"uuid": r.uuid})], timeout)
                .await
            {
                tracing::warn!(board, replica = %r.uuid, error = %e, "WorkloadRemove failed");
            }
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn logs(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(workload): Path<String>,
    q: Query,
) -> ApiResult<Json<Value>> {
    ctx.allow(Action::Read, None)?;
    let w = find(&state, &ctx, &workload).await?;
    let replicas = state.store.replicas(&w.uuid).await?;
    let wanted = q.get("replica").unwrap_or("0");
    let r = replicas
        .iter()
        .find(|r| r.uuid == wanted || r.ordinal.to_string() == wanted)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Workload {} has no replica {wanted} (give its ordinal or uuid as ?replica=).",
                w.name
            ))
        })?;
    let lines = match q.get("lines") {
        None => 100,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| {
                ApiError::from(InputError::field(
                    "lines",
                    "lines must be an integer from 1 to 10000",
                ))
            })?,
    };
    let board = r.board_uuid.as_deref().ok_or_else(|| {
        ApiError::conflict(format!(
            "Replica {} of workload {} is not on a board yet.",
            r.ordinal, w.name
        ))
    })?;
    let b = state
        .store
        .board(&s4t_model::Ident::Uuid(board.to_string()), &Scope::All)
        .await?;
    state.conductor.ensure_connected(&b)?;
    let text = state
        .conductor
        .call_quiet(
            &b,
            "WorkloadLogs",
            vec![json!({"uuid": r.uuid, "lines": lines})],
            std::time::Duration::from_secs(30),
        )
        .await
        .map_err(|e| ApiError::internal(format!("WorkloadLogs on board {board}: {e}")))?;
    Ok(Json(json!({
        "workload": w.uuid, "replica": r.uuid, "ordinal": r.ordinal, "board_uuid": board,
        "lines": text,
    })))
}
