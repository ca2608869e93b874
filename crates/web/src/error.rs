//! Errors as the original's ErrorView renders them: `{ "title", "code",
//! "detail" }` with the matching status. Client mistakes say what was wrong;
//! anything else is a 500 that is logged once and never shows internals.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: String,
    detail: String,
    retry_after: Option<u64>,
}

/// The body of every error response, as the original's ErrorView.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The HTTP status's reason phrase, e.g. `Bad Request`.
    #[schema(example = "Bad Request")]
    pub title: String,
    /// Machine-readable, e.g. `missing_params`, `no_pdfs`, `not_found`,
    /// `too_large`, `queue_full`, or the engine's code (`encrypted`, …).
    #[schema(example = "missing_params")]
    pub code: String,
    /// A sentence saying what was wrong.
    #[schema(
        example = "Watermark is missing: give the text as the `watermark` query parameter or form field"
    )]
    pub detail: String,
}

impl ApiError {
    /// An error with `status`, a machine-readable `code` and a sentence.
    pub fn new(status: StatusCode, code: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// 400.
    pub fn bad_request(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 404 for a document.
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "No document with this id",
        )
    }

    /// 503 with `Retry-After`.
    pub fn unavailable(code: &str, detail: impl Into<String>, retry_after_secs: u64) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail).with_retry_after(retry_after_secs)
    }

    /// The same error with a `Retry-After` header.
    pub fn with_retry_after(self, secs: u64) -> Self {
        Self {
            retry_after: Some(secs),
            ..self
        }
    }

    /// A 500: logs `err` and answers without details.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {err}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "An internal error occurred; it has been logged",
        )
    }

    /// Whether it refuses a body as too large (413): the caller then
    /// drains what is left of it before answering.
    pub fn is_too_large(&self) -> bool {
        self.status == StatusCode::PAYLOAD_TOO_LARGE
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let mut res = (
            self.status,
            Json(ErrorBody {
                title: title.to_owned(),
                code: self.code,
                detail: self.detail,
            }),
        )
            .into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}

impl From<peedy_store::Error> for ApiError {
    fn from(e: peedy_store::Error) -> Self {
        match e {
            peedy_store::Error::TooLarge { limit } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("A file is larger than the limit of {limit} bytes"),
            ),
            peedy_store::Error::Database(_) => {
                tracing::error!("database error: {e}");
                ApiError::unavailable(
                    "database_unavailable",
                    "The database is unavailable; try again shortly",
                    5,
                )
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<peedy_watermarker::Error> for ApiError {
    fn from(e: peedy_watermarker::Error) -> Self {
        match e {
            peedy_watermarker::Error::Store(s) => s.into(),
            peedy_watermarker::Error::Queue(q) => q.into(),
            peedy_watermarker::Error::Stamp(s) => stamp_error(&s),
            other => ApiError::internal(other),
        }
    }
}

impl From<peedy_queue::Error> for ApiError {
    fn from(e: peedy_queue::Error) -> Self {
        match e {
            peedy_queue::Error::Store(s) => s.into(),
            other => {
                tracing::error!("queue error: {other}");
                ApiError::unavailable(
                    "database_unavailable",
                    "The database is unavailable; try again shortly",
                    5,
                )
            }
        }
    }
}

/// An engine error as a client error: the spec is a 400, the document a 422.
pub fn stamp_error(e: &peedy_stamp::StampError) -> ApiError {
    let status = match e {
        peedy_stamp::StampError::Spec(_) => StatusCode::BAD_REQUEST,
        peedy_stamp::StampError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    ApiError::new(status, e.code(), e.to_string())
}
