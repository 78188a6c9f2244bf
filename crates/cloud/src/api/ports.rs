//! `/v1/ports` and `/v1/boards/{B}/ports`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use s4t_model::input::BodyReader;
use s4t_model::listing::{parse_fields, specs, ListQuery};
use s4t_model::policy::Action;
use s4t_model::InputError;
use s4t_store::Page;

use super::boards::find as find_board;
use super::render::{self, select};
use super::{json_body, ApiError, ApiResult, AppState, BaseUrl, Ctx, Query};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/ports", get(list))
        .route("/v1/ports/detail", get(list_detail))
        .route("/v1/ports/{port}", get(show).delete(remove))
        .route("/v1/boards/{board}/ports", get(board_list).put(create))
        .route(
            "/v1/boards/{board}/ports/{port}",
            get(board_show).delete(board_remove),
        )
}

async fn list_with(
    state: AppState,
    ctx: Ctx,
    base: BaseUrl,
    q: Query,
    detail: bool,
) -> ApiResult<Json<Value>> {
    ctx.allow(Action::Read, None)?;
    let lq = ListQuery::parse(&specs::PORTS, &q.0, detail)?;
    let list = state
        .store
        .list_ports(&ctx.list_scope(&q)?, None, &Page::from(&lq))
        .await?;
    Ok(Json(render::page(
        &specs::PORTS,
        &base.0,
        &lq,
        &list,
        |p| with_status(&state, render::port(p, &base.0), p),
        |p| p.uuid.clone(),
    )))
}

/// A port on an s4t network tells how its tunnel to the hub stands.
fn with_status(
    state: &AppState,
    mut v: serde_json::Map<String, Value>,
    p: &s4t_model::resources::Port,
) -> serde_json::Map<String, Value> {
    if p.network.is_some() {
        let status = match &state.hub {
            Some(hub) => hub.port_status(&p.uuid),
            None => {
                json!({"tunnel": "down", "reason": "this cloud runs no overlay hub (--overlay-addr)"})
            }
        };
        v.insert("status".into(), status);
    }
    v
}

fn board_port(state: &AppState, p: &s4t_model::resources::Port) -> Value {
    let mut v = render::board_port(p);
    if p.network.is_some() {
        if let Value::Object(m) = &mut v {
            *m = with_status(state, std::mem::take(m), p);
        }
    }
    v
}

/// Where boards send overlay packets: the operator's address, else the hub's own, with the
/// host of the board's WAMP URL when the hub listens on every interface.
fn hub_endpoint(state: &AppState, hub: &crate::hub::Hub) -> Option<String> {
    if let Some(a) = &state.config.overlay_public_addr {
        return Some(a.clone());
    }
    let bound = hub.local_addr().ok()?;
    if bound.ip().is_unspecified() {
        let host = state.config.wstun_host()?;
        Some(format!("{host}:{}", bound.port()))
    } else {
        Some(bound.to_string())
    }
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
    Path(port): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.allow(Action::Read, None)?;
    let fields = q
        .get("fields")
        .map(|f| parse_fields(&specs::PORTS, f))
        .transpose()?;
    let p = state
        .store
        .port(&port.to_ascii_lowercase(), &ctx.scope(), None)
        .await?;
    Ok(Json(select(
        with_status(&state, render::port(&p, &base.0), &p),
        fields.as_deref(),
        &specs::PORTS,
    )))
}

async fn remove(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(port): Path<String>,
) -> ApiResult<StatusCode> {
    let p = state
        .store
        .port(&port.to_ascii_lowercase(), &ctx.scope(), None)
        .await?;
    remove_port(&state, &ctx, &p.board_uuid, &p.uuid).await
}

async fn remove_port(
    state: &AppState,
    ctx: &Ctx,
    board_uuid: &str,
    port_uuid: &str,
) -> ApiResult<StatusCode> {
    let b = state
        .store
        .board(
            &s4t_model::Ident::Uuid(board_uuid.to_string()),
            &s4t_store::Scope::All,
        )
        .await?;
    ctx.allow(Action::BoardOperate, b.owner.as_deref())?;
    // An offline board drops the interface when told next time it comes (not built yet: it
    // keeps it until then); the address is freed now either way.
    if b.status.is_connected() {
        state
            .conductor
            .execute(&b, "OverlayPortRemove", vec![json!({"uuid": port_uuid})])
            .await?;
    }
    state.store.delete_port(port_uuid).await?;
    if let Some(hub) = &state.hub {
        hub.forget_port(port_uuid);
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn board_list(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(board): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.allow(Action::Read, None)?;
    let b = find_board(&state, &ctx, &board).await?;
    let list = state
        .store
        .list_ports(&s4t_store::Scope::All, Some(&b.uuid), &Page::default())
        .await?;
    Ok(Json(
        json!({"ports": list.iter().map(|p| board_port(&state, p)).collect::<Vec<_>>()}),
    ))
}

async fn board_show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((board, port)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    ctx.allow(Action::Read, None)?;
    let b = find_board(&state, &ctx, &board).await?;
    let p = state
        .store
        .port(
            &port.to_ascii_lowercase(),
            &s4t_store::Scope::All,
            Some(&b.uuid),
        )
        .await?;
    Ok(Json(board_port(&state, &p)))
}

async fn board_remove(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((board, port)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let b = find_board(&state, &ctx, &board).await?;
    let p = state
        .store
        .port(
            &port.to_ascii_lowercase(),
            &s4t_store::Scope::All,
            Some(&b.uuid),
        )
        .await?;
    remove_port(&state, &ctx, &b.uuid, &p.uuid).await
}

async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    base: BaseUrl,
    Path(board): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let b = find_board(&state, &ctx, &board).await?;
    ctx.allow(Action::BoardOperate, b.owner.as_deref())?;
    let mut r = BodyReader::new(
        "Port",
        json_body(&body)?,
        &["network", "subnet", "security_groups"],
    )?;
    let Some(network) = r.text_or_zero("network", 255)? else {
        return Err(InputError::field(
            "network",
            "network is required: the uuid or name of an s4t network (GET /v1/networks).",
        )
        .into());
    };
    state.conductor.ensure_connected(&b)?;
    let n = state
        .store
        .network(&network, &ctx.scope())
        .await
        .map_err(|e| match e {
            s4t_store::StoreError::NotFound { .. } => ApiError::from(InputError::field(
                "network",
                format!("network {network} could not be found: create it with POST /v1/networks"),
            )),
            other => other.into(),
        })?;
    let uuid = s4t_model::ident::new_uuid();
    let port = s4t_store::networks::NewPort {
        vif_name: s4t_model::net::vif_name(&uuid),
        mac: s4t_model::net::mac_from(rand::random()),
        board_uuid: b.uuid.clone(),
        uuid,
    };
    let p = state
        .store
        .create_network_port(&n, &port, rand::random)
        .await?;
    // The board makes the interface; a board that cannot gives the address back.
    let prefix = n.cidr().map(|c| c.prefix).unwrap_or(24);
    let mut doc = json!({
        "uuid": p.uuid, "vif": p.vif_name, "mac": p.mac_add, "ip": p.ip, "prefix": prefix,
        "mtu": n.mtu, "network": n.uuid,
    });
    // The hub's key and addresses travel over the board's authenticated link; its key comes
    // back the same way.
    if let Some(hub) = &state.hub {
        doc["hub"] = json!({
            "public_key": hub.public_key(),
            "endpoint": hub_endpoint(&state, hub),
            "fallback_url": state.conductor.tunnel_url().map(|u| format!("{}{}", u.trim_end_matches('/'), crate::hub::WS_PATH)),
        });
    }
    let reply = match state
        .conductor
        .execute(&b, "OverlayPortAdd", vec![doc])
        .await
    {
        Ok(r) => r,
        Err(e) => {
            let _ = state.store.delete_port(&p.uuid).await;
            return Err(e);
        }
    };
    match reply["public_key"].as_str() {
        Some(key) if valid_public_key(key) => {
            state.store.set_board_overlay_key(&b.uuid, key).await?;
        }
        Some(_) => {
            tracing::warn!(board = %b.uuid, "the board reported an overlay key that is not 32 bytes of base64: ignored")
        }
        None if state.hub.is_some() => {
            tracing::warn!(board = %b.uuid, "the board made the interface but reported no overlay key: its tunnel cannot be admitted")
        }
        None => {}
    }
    let v = Value::Object(with_status(&state, render::port(&p, &base.0), &p));
    Ok((StatusCode::CREATED, Json(v)))
}

fn valid_public_key(key: &str) -> bool {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(key)
        .is_ok_and(|k| k.len() == 32)
}
