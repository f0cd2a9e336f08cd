//! HTTP mapping of errors, in one place: 4xx with a clear message, 5xx logged and answered
//! without internals.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use shared::Error;
use shared::limits::{RESPONSE_ERROR, clip};

/// The error every handler returns.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError(Error::Invalid(message.into()))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match &self.0 {
            // A client's own value can be quoted whole in these (a parser's "invalid type:
            // string ..."): the answer carries its start.
            Error::Invalid(m) => (StatusCode::BAD_REQUEST, clip(m, RESPONSE_ERROR)),
            Error::NotFound(m) => (StatusCode::NOT_FOUND, clip(m, RESPONSE_ERROR)),
            Error::Conflict(m) => (StatusCode::CONFLICT, clip(m, RESPONSE_ERROR)),
            Error::Unauthorized(m) => (StatusCode::UNAUTHORIZED, clip(m, RESPONSE_ERROR)),
            Error::Forbidden(m) => (StatusCode::FORBIDDEN, clip(m, RESPONSE_ERROR)),
            Error::Limited {
                limit,
                message,
                retry_after,
            } => {
                let mut response = (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(json!({ "error": message, "limit": limit, "retry_after": retry_after })),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, (*retry_after).into());
                return response;
            }
            Error::Contention(_) => (StatusCode::SERVICE_UNAVAILABLE, self.0.to_string()),
            Error::Aws { .. } | Error::Corrupt(_) | Error::Internal(_) => {
                tracing::error!(error = %self.0, "request failed");
                let status = if matches!(self.0, Error::Aws { .. }) {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                };
                (
                    status,
                    "the service could not complete the request; try again later".to_string(),
                )
            }
        };
        error_response(status, message)
    }
}

pub fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}
