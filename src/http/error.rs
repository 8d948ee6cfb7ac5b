//! The one error type every handler returns: a stable machine-readable code and a human
//! message for the client, the cause chain for the server log only.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The JSON body of every error answer: `{"error": "<code>", "message": "<text>"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable code, e.g. `unauthorized`, `not_found`, `invalid_body`.
    pub error: String,
    /// Human-readable explanation; never contains secrets or internal causes.
    pub message: String,
}

/// An error answer. Build with the constructors; the cause, if any, is logged when the
/// response is produced and never sent.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    cause: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            cause: None,
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid X-MONITORING-KEY header (or Authorization: Bearer <key>) is required",
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A dependency failed while serving the request: 503, cause logged, not sent.
    pub fn unavailable(what: &str, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            message: format!("{what} is unavailable, try again"),
            cause: Some(Box::new(cause)),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

/// A database error while serving a request: the database is unavailable (503, the
/// cause logged, never sent).
impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        Self::unavailable("the database", error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(cause) = &self.cause {
            tracing::warn!(
                code = self.code,
                error = cause.as_ref() as &(dyn std::error::Error + 'static),
                "request failed"
            );
        }
        let body = ErrorBody {
            error: self.code.to_owned(),
            message: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}
