//! The JSON error every failing route answers with: `{"error":{"code","message"}}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lode_proto::api::{ErrorBody, ErrorDetail};

use crate::auth::AuthError;
use crate::db::IndexError;
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, "{}", self.message);
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"lode-server\", charset=\"UTF-8\""),
            );
        }
        resp
    }
}

impl From<IndexError> for ApiError {
    fn from(e: IndexError) -> ApiError {
        if e.is_unavailable() {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            );
        }
        match e {
            IndexError::NotFound(_) => ApiError::not_found(e.to_string()),
            IndexError::Conflict(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            IndexError::Invalid(_) => ApiError::bad_request(e.to_string()),
            IndexError::Engine(_)
            | IndexError::Unreachable { .. }
            | IndexError::Migrate(_)
            | IndexError::Occupied { .. }
            | IndexError::Batch { .. }
            | IndexError::Stopped(_) => ApiError::internal(e.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        let (status, code) = match &e {
            StoreError::HashMismatch { .. } => (StatusCode::BAD_REQUEST, "hash_mismatch"),
            StoreError::TooLarge(..) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            StoreError::Body(_) => (StatusCode::BAD_REQUEST, "incomplete_body"),
            StoreError::NoSpace(_) => (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage"),
            StoreError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            StoreError::Io { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "storage_error"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        match e {
            AuthError::Index(e) => e.into(),
            AuthError::Internal(_) | AuthError::Signing(_) => ApiError::internal(e.to_string()),
            _ => ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
