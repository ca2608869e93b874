//! Health, readiness, the `dev/null` callback sink and JSON 404/405s.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use futures_util::StreamExt;

use crate::openapi::{ErrorBody, Pdf, Ready};
use crate::{ApiError, AppState};

/// `GET /healthcheck`: 200 `OK`, as the original.
#[utoipa::path(
    get,
    path = "/healthcheck",
    tag = "operations",
    summary = "Liveness",
    responses((status = 200, description = "`OK`", content_type = "text/plain", body = String, example = "OK"))
)]
pub async fn healthcheck() -> &'static str {
    "OK"
}

/// `GET /readyz`: 200 when the database answers, else 503.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    summary = "Readiness: the database answers",
    responses(
        (status = 200, description = "Ready", body = Ready),
        (status = 503, description = "The database does not answer (`database_unavailable`)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    match state.watermarker.store().ping().await {
        Ok(()) => Ok(axum::Json(Ready { status: "ready" })),
        Err(e) => {
            tracing::warn!("readiness check failed: {e}");
            Err(ApiError::unavailable(
                "database_unavailable",
                "The database does not answer",
                5,
            ))
        }
    }
}

/// `POST /api/v1/dev/null`: accepts anything, logs its size, answers `OK` —
/// a callback sink for trying Peedy out, as the original's.
#[utoipa::path(
    post,
    path = "/dev/null",
    tag = "operations",
    summary = "A callback sink for trying Peedy out",
    description = "Accepts any body, logs its size and content type, answers `OK`. Point `callback_url` here to try the API without a receiver of your own.",
    request_body(content = Option<Pdf>, content_type = "application/octet-stream", description = "Anything, or nothing (any content type)"),
    responses((status = 200, description = "`OK`", content_type = "text/plain", body = String, example = "OK"))
)]
pub async fn dev_null(headers: HeaderMap, body: Body) -> &'static str {
    let mut size = 0usize;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => size += c.len(),
            Err(_) => break,
        }
    }
    let kind = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let webhook = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info!(
        bytes = size,
        content_type = kind,
        webhook_id = webhook,
        "dev/null received a callback"
    );
    "OK"
}

/// JSON 404 for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such route")
}

/// JSON 405.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Method not allowed on this route",
    )
}
