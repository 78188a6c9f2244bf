//! `/v1/tokens` (s4t extension): API tokens for users and projects. Admin only.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::{json, Value};

use s4t_model::input::BodyReader;
use s4t_model::policy::{Action, KNOWN_ROLES};
use s4t_model::InputError;
use s4t_store::tokens::TokenRecord;

use super::{created, json_body, ApiError, ApiResult, AppState, Ctx};
use crate::auth::{hash_token, new_token};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tokens", get(list).post(create))
        .route("/v1/tokens/{id}", delete(remove))
}

fn render(t: &TokenRecord) -> Value {
    json!({"id": t.id, "user_id": t.user_id, "project_id": t.project_id, "roles": t.roles,
           "description": t.description, "created_at": t.created_at})
}

async fn list(State(state): State<AppState>, ctx: Ctx) -> ApiResult<Json<Value>> {
    ctx.allow(Action::ManageTokens, None)?;
    let tokens = state.store.list_tokens().await?;
    Ok(Json(
        json!({"tokens": tokens.iter().map(render).collect::<Vec<_>>()}),
    ))
}

async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    ctx.allow(Action::ManageTokens, None)?;
    let mut r = BodyReader::new(
        "Token",
        json_body(&body)?,
        &["user_id", "project_id", "roles", "description"],
    )?;
    let user = r.required_text("user_id", 64)?;
    let project = r.text_or_zero("project_id", 64)?;
    let description = r.text("description", 255)?;
    let roles: Vec<String> = match r.take("roles") {
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) if KNOWN_ROLES.contains(&s.as_str()) => Ok(s),
                other => Err(InputError::field(
                    "roles",
                    format!("unknown role {other}: use {}.", KNOWN_ROLES.join(", ")),
                )),
            })
            .collect::<Result<_, _>>()?,
        None => vec!["user_iot".to_string()],
        Some(_) => {
            return Err(InputError::field("roles", "roles must be a list of role names.").into())
        }
    };
    let token = new_token();
    let record = state
        .store
        .insert_token(
            &hash_token(&token),
            &user,
            project.as_deref(),
            &roles,
            description.as_deref(),
        )
        .await?;
    let mut body = render(&record);
    body["token"] = json!(token);
    Ok(created(body))
}

async fn remove(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    ctx.allow(Action::ManageTokens, None)?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("Expected a token id but received {id}.")))?;
    state.store.delete_token(id).await?;
    state.tokens.clear().await;
    Ok(StatusCode::NO_CONTENT)
}
