//! The one place where a failure becomes an HTTP answer: each kind of the
//! write side's [`Error`] maps to one status. Internal details are logged
//! once with a reference id; the caller gets the id and a reason it can act on.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sp_commands::{Error, ErrorKind};

/// A failed request: the use case's error, answered over HTTP.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ApiError(pub Error);

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError(Error::invalid(message))
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        ApiError(Error::unauthenticated(message))
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError(Error::forbidden(message))
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError(Error::not_found(message))
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        ApiError(Error::too_large(message))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError(Error::conflict(message))
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError(Error::unavailable(message))
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError(Error::internal(message))
    }
}

/// The HTTP status of each kind.
pub fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict | ErrorKind::Refused => StatusCode::CONFLICT,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// What a caller may read of an error: the message, or for an internal one
/// a reference to the log line that holds the cause.
pub fn public_message(e: &Error) -> String {
    match e.kind {
        ErrorKind::Internal => {
            let id = uuid::Uuid::new_v4();
            tracing::error!(error_id = %id, detail = %e.message, "internal error");
            format!("internal error; reference {id}")
        }
        ErrorKind::Unavailable => {
            tracing::warn!(detail = %e.message, "a dependency is unavailable");
            e.message.clone()
        }
        _ => e.message.clone(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status(self.0.kind);
        (status, Json(json!({ "error": public_message(&self.0) }))).into_response()
    }
}

impl<E: Into<Error>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}
