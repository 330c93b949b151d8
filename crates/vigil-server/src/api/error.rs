//! The one error type every handler returns; it becomes `{"error": "..."}`
//! with a fitting status code.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// Authenticated, but refused: a cookie-authorised state change (or
    /// live view) from another origin.
    #[error("{0}")]
    Forbidden(String),
    /// A WebSocket route fetched without the handshake.
    #[error("{0}")]
    UpgradeRequired(String),
    /// `Range` outside the file; the total length goes in `Content-Range`.
    #[error("range not satisfiable (the file has {0} bytes)")]
    RangeNotSatisfiable(u64),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` did not match the current `ETag`.
    #[error("{0}")]
    PreconditionFailed(String),
    /// A body over its route's limit (the setting named, in MiB).
    #[error("{what} exceeds server.{setting} ({mib} MiB)")]
    TooLarge {
        what: &'static str,
        setting: &'static str,
        mib: u64,
    },
    /// The job queue is full; the client should retry after this many seconds.
    #[error("job queue is full ({queued} waiting); retry later")]
    QueueFull { queued: usize, retry_after_s: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// `Host` is not a name this server answers to (DNS rebinding) → 421.
    #[error("{0}")]
    MisdirectedHost(String),
    /// A JSON route got another body type → 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A per-client or per-route concurrency bound was hit → 429.
    #[error("{message}")]
    Busy { message: String, retry_after_s: u64 },
    /// The body arrived too slowly or stopped → 408.
    #[error("{0}")]
    Timeout(String),
    /// Free space under `storage.dir` is below `storage.min_free_mb` → 507.
    #[error("{0}")]
    InsufficientStorage(String),
    /// Details are logged, not sent: internal errors may name paths.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::UpgradeRequired(_) => StatusCode::UPGRADE_REQUIRED,
            ApiError::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::QueueFull { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::MisdirectedHost(_) => StatusCode::MISDIRECTED_REQUEST,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "request failed");
                "internal error (see the server log)".to_string()
            }
            other => other.to_string(),
        };
        let mut resp = (status, Json(ErrorBody { error: message })).into_response();
        match &self {
            ApiError::QueueFull { retry_after_s, .. } | ApiError::Busy { retry_after_s, .. } => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
            }
            ApiError::Unauthorized => {
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"vigil\""),
                );
            }
            ApiError::UpgradeRequired(_) => {
                resp.headers_mut()
                    .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            }
            ApiError::RangeNotSatisfiable(len) => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    resp.headers_mut().insert(header::CONTENT_RANGE, v);
                }
            }
            _ => {}
        }
        resp
    }
}

impl From<crate::streams::StreamError> for ApiError {
    fn from(e: crate::streams::StreamError) -> Self {
        use crate::streams::StreamError as S;
        match e {
            S::Invalid(m) => ApiError::BadRequest(m),
            e @ S::NotFound(_) => ApiError::NotFound(e.to_string()),
            e @ S::Exists(_) => ApiError::Conflict(e.to_string()),
            e @ S::Stale { .. } => ApiError::PreconditionFailed(e.to_string()),
            S::Conflict(m) => ApiError::Conflict(m),
            e @ S::Registry(_) => ApiError::Internal(e.to_string()),
            S::Internal(m) => ApiError::Internal(m),
        }
    }
}

/// A queue server away is 503 (logged: the client sees why, the operator
/// where); local storage failing is a 500 with the detail only in the log.
impl From<vigil_jobs::JobError> for ApiError {
    fn from(e: vigil_jobs::JobError) -> Self {
        use vigil_jobs::JobError as J;
        match e {
            J::Unavailable(m) => {
                tracing::error!(error = %m, "job queue error");
                ApiError::Unavailable(m)
            }
            J::Storage(m) => ApiError::Internal(m),
        }
    }
}
