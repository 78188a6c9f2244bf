//! API errors in IoTronic's wire format.
//!
//! Every non-2xx body is `{"error_message": "<JSON string>"}` where the string holds the WSME fault
//! `{"faultcode": "Client"|"Server", "faultstring": ..., "debuginfo": null}`. The only exception
//! is 401, which keystonemiddleware answers in its own format, and so do we.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use s4t_model::{Denied, InputError};
use s4t_store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    /// IoTronic's `BoardNotConnected`: a 400, not a 409 or 503, as clients expect.
    pub fn not_connected(board_uuid: &str) -> ApiError {
        ApiError::bad_request(format!("Board {board_uuid} is not connected."))
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "The request you have made requires authentication.",
        )
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> ApiError {
        ApiError::bad_request(e.message)
    }
}

impl From<Denied> for ApiError {
    fn from(e: Denied) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound { .. } => ApiError::not_found(e.to_string()),
            StoreError::Conflict(m) => ApiError::conflict(m),
            other => {
                tracing::error!(error = %other, "store failure");
                ApiError::internal(format!("The cloud could not complete the request: {other}"))
            }
        }
    }
}

/// The WSME fault body, spaced as Python's `json.dumps` writes it, so that even clients that
/// compare bytes see what IoTronic sends.
pub fn fault_body(status: StatusCode, message: &str) -> String {
    let code = if status.is_server_error() {
        "Server"
    } else {
        "Client"
    };
    let fault = format!(
        "{{\"faultcode\": \"{code}\", \"faultstring\": {}, \"debuginfo\": null}}",
        Value::String(message.to_string())
    );
    format!("{{\"error_message\": {}}}", Value::String(fault))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status == StatusCode::UNAUTHORIZED {
            let body =
                json!({"error": {"code": 401, "title": "Unauthorized", "message": self.message}})
                    .to_string();
            let mut resp = (self.status, body).into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Token realm=\"s4t\""),
            );
            return resp;
        }
        let mut resp = (self.status, fault_body(self.status, &self.message)).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }
}

impl From<s4t_store::services::ReserveError> for ApiError {
    /// A store failure keeps its status; a taken service or a full range is a 409 with the reason.
    fn from(e: s4t_store::services::ReserveError) -> ApiError {
        match e {
            s4t_store::services::ReserveError::Store(s) => ApiError::from(s),
            other => ApiError::conflict(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_body_is_byte_identical_to_iotronic() {
        let body = fault_body(
            StatusCode::NOT_FOUND,
            "Board nonexistent could not be found.",
        );
        assert_eq!(
            body,
            r#"{"error_message": "{\"faultcode\": \"Client\", \"faultstring\": \"Board nonexistent could not be found.\", \"debuginfo\": null}"}"#
        );
        assert!(fault_body(StatusCode::INTERNAL_SERVER_ERROR, "x").contains("Server"));
    }
}
