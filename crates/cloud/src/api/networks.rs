//! `/v1/networks` (s4t extension): overlay networks that board ports join.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use s4t_model::net::NetworkFields;
use s4t_model::policy::Action;
use s4t_store::networks::Network;

use super::{json_body, ApiResult, AppState, Ctx, Query};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/networks", get(list).post(create))
        .route("/v1/networks/{network}", get(show).delete(remove))
        .route("/v1/overlay", get(overlay))
        // `/metrics` reaches it too: paths without `/v1` are normalised to it.
        .route("/v1/metrics", get(metrics))
}

/// The hub: its key and address, sessions, learnt addresses and counters.
async fn overlay(State(state): State<AppState>, ctx: Ctx) -> ApiResult<Json<Value>> {
    ctx.allow(Action::ServiceModify, None)?;
    Ok(Json(match &state.hub {
        Some(hub) => {
            let mut v = hub.status();
            v["running"] = json!(true);
            v
        }
        None => json!({"running": false}),
    }))
}

/// Prometheus text: the overlay hub's and the tunnel server's counters.
async fn metrics(
    State(state): State<AppState>,
    ctx: Ctx,
) -> ApiResult<([(axum::http::HeaderName, &'static str); 1], String)> {
    ctx.allow(Action::ServiceModify, None)?;
    let mut text = state.hub.as_ref().map(|h| h.metrics()).unwrap_or_default();
    if let Some(t) = state.conductor.tunnels() {
        if let Value::Object(counters) = t.counters_json() {
            for (name, v) in counters {
                text.push_str(&format!(
                    "# TYPE s4t_tunnel_{name} counter\ns4t_tunnel_{name} {v}\n"
                ));
            }
        }
    }
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}

async fn render(state: &AppState, n: &Network) -> ApiResult<Value> {
    let used = state.store.network_addresses_used(&n.uuid).await?;
    let capacity = n.cidr().map(|c| c.hosts()).unwrap_or(0) as i64 - n.gateway.is_some() as i64;
    Ok(json!({
        "uuid": n.uuid, "name": n.name, "project": n.project, "cidr": n.cidr, "mtu": n.mtu,
        "gateway": n.gateway, "addresses": {"used": used, "free": capacity - used},
        "created_at": n.created_at, "updated_at": n.updated_at,
    }))
}

async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    ctx.allow(Action::ServiceCreate, None)?;
    let f = NetworkFields::read(json_body(&body)?)?;
    let n = state
        .store
        .create_network(&f, ctx.0.project_id.as_deref())
        .await?;
    let mut v = render(&state, &n).await?;
    if let Some(bridge) = bridge(&state, &n) {
        v["bridge"] = bridge;
    }
    Ok((StatusCode::CREATED, Json(v)))
}

/// With `--bridge-networks`, the cloud's own TAP on the network; how that went.
fn bridge(state: &AppState, n: &Network) -> Option<Value> {
    if !state.config.bridge_networks {
        return None;
    }
    let hub = state.hub.as_ref()?;
    let gateway = n
        .gateway
        .as_deref()
        .and_then(|g| g.parse().ok())
        .zip(n.cidr().ok().map(|c| c.prefix));
    let interface = crate::hub::bridge_name(&n.uuid);
    Some(match hub.bridge_network(&n.uuid, n.mtu as u16, gateway) {
        Ok(()) => json!({"interface": interface, "ip": n.gateway}),
        Err(e) => {
            tracing::error!(network = %n.uuid, error = %e, "network not bridged");
            json!({"interface": interface, "error": e})
        }
    })
}

/// Bridges every network at start (`--bridge-networks`).
pub async fn bridge_all(state: &AppState) -> Result<(), s4t_store::StoreError> {
    for n in state.store.networks(&s4t_store::Scope::All).await? {
        bridge(state, &n);
    }
    Ok(())
}

async fn list(State(state): State<AppState>, ctx: Ctx, q: Query) -> ApiResult<Json<Value>> {
    ctx.allow(Action::Read, None)?;
    let mut out = Vec::new();
    for n in state.store.networks(&ctx.list_scope(&q)?).await? {
        out.push(render(&state, &n).await?);
    }
    Ok(Json(json!({"networks": out})))
}

async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(network): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.allow(Action::Read, None)?;
    let n = state.store.network(&network, &ctx.scope()).await?;
    Ok(Json(render(&state, &n).await?))
}

async fn remove(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(network): Path<String>,
) -> ApiResult<StatusCode> {
    ctx.allow(Action::ServiceModify, None)?;
    let n = state.store.network(&network, &ctx.scope()).await?;
    state.store.delete_network(&n.uuid).await?;
    if let Some(hub) = &state.hub {
        hub.unbridge_network(&n.uuid);
    }
    Ok(StatusCode::NO_CONTENT)
}
