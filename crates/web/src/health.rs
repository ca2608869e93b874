//! Health, readiness, the `dev/null` callback sink and JSON 404/405s.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use futures_util::StreamExt;

use crate::{ApiError, AppState};

/// `GET /healthcheck`: 200 `OK`, as the original.
pub async fn healthcheck() -> &'static str {
    "OK"
}

/// `GET /readyz`: 200 when the database answers, else 503.
pub async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    match state.watermarker.store().ping().await {
        Ok(()) => Ok(axum::Json(serde_json::json!({ "status": "ready" }))),
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
