//! The one error type of the HTTP API. Every error answers
//! `{"error": {"code": "…", "message": "…"}}`: `code` is stable and
//! machine-readable, `message` is for humans. Internal errors are logged in
//! full and answered with a generic message.

use crate::app::AppError;
use crate::queue::QueueError;
use crate::runtime::CallError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    Unavailable(String),
    /// The caller should retry after a moment (429 with `Retry-After`).
    #[error("{message}")]
    Busy { code: &'static str, message: String },
    /// A plugin call failed in the sandbox (timeout, memory cap, trap).
    #[error("{message}")]
    Plugin { code: &'static str, message: String },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Busy { code, .. } => (StatusCode::TOO_MANY_REQUESTS, code),
            ApiError::Plugin { code: code @ ("plugin_timeout" | "plugin_memory_limit"), .. } => (StatusCode::SERVICE_UNAVAILABLE, code),
            ApiError::Plugin { code: code @ "rate_limited", .. } => (StatusCode::TOO_MANY_REQUESTS, code),
            ApiError::Plugin { code, .. } => (StatusCode::BAD_GATEWAY, code),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::Internal(error) => {
                tracing::error!(error = %format!("{error:#}"), "internal error while handling a request");
                "internal error; see the server log".to_string()
            }
            other => other.to_string(),
        };
        if status.is_client_error() {
            tracing::info!(%status, code, reason = %message, "request rejected");
        } else if status != StatusCode::INTERNAL_SERVER_ERROR {
            tracing::warn!(%status, code, reason = %message, "request not served");
        }
        let body = Json(serde_json::json!({ "error": { "code": code, "message": message } }));
        if status == StatusCode::TOO_MANY_REQUESTS {
            return (status, [(axum::http::header::RETRY_AFTER, "1")], body).into_response();
        }
        (status, body).into_response()
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        let message = error.to_string();
        match error {
            AppError::UnknownConnector(_) => ApiError::NotFound(message),
            AppError::TooManyJobs { .. } | AppError::Queue(QueueError::TooLarge(_)) => ApiError::PayloadTooLarge(message),
            AppError::Queue(_) => ApiError::Unavailable(message),
            AppError::TenantBusy { .. } => ApiError::Busy { code: "tenant_busy", message },
        }
    }
}

impl From<CallError> for ApiError {
    fn from(error: CallError) -> Self {
        let code = match &error {
            CallError::Timeout { .. } => "plugin_timeout",
            CallError::MemoryLimit { .. } => "plugin_memory_limit",
            CallError::Trap { .. } => "plugin_trap",
            CallError::StackOverflow { .. } => "plugin_stack_overflow",
            CallError::ResultTooLarge { .. } => "plugin_result_too_large",
            CallError::WrongKind { .. } => "plugin_wrong_kind",
            CallError::RateLimited { .. } => "rate_limited",
        };
        ApiError::Plugin { code, message: error.to_string() }
    }
}
