//! A document after upload: its status, its stamped PDF, deleting it.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use peedy_store::{DocStatus, Document, DocumentId};
use serde_json::json;

use crate::{ApiError, AppState};

pub(crate) async fn load(state: &AppState, id: &str) -> Result<Document, ApiError> {
    // Malformed ids are unknown ids: no query needed.
    let id: DocumentId = id.parse().map_err(|_| ApiError::not_found())?;
    state
        .watermarker
        .store()
        .document(&id)
        .await?
        .ok_or_else(ApiError::not_found)
}

/// The JSON shape of `/status` (and of the 202 while not done).
fn status_json(doc: &Document) -> serde_json::Value {
    let id = doc.id.to_string();
    json!({
        "id": id,
        "status": doc.status.as_str(),
        "filename": doc.filename,
        "pages": doc.pages,
        "stamped_pages": doc.stamped_pages,
        "input": { "size": doc.input_size, "sha256": doc.input_sha256 },
        "output": {
            "size": doc.output_size,
            "sha256": doc.output_sha256,
            "update_sha256": doc.update_sha256,
            "incremental": doc.status == DocStatus::Done && !doc.output_is_rewrite,
        },
        "timings": {
            "created_at_ms": doc.created_at_ms,
            "started_at_ms": doc.started_at_ms,
            "finished_at_ms": doc.finished_at_ms,
            "stamp_ms": doc.stamp_ms,
            "queued_ms": doc.started_at_ms.map(|s| s - doc.created_at_ms),
        },
        "error": doc.error_code.as_ref().map(|code| json!({ "code": code, "detail": doc.error_detail })),
        "callback": doc.callback_url.as_ref().map(|url| json!({
            "url": url,
            "delivery": doc.delivery,
        })),
        "expires_at_ms": doc.expires_at_ms,
        "status_url": format!("/api/v1/documents/{id}/status"),
        "download_url": format!("/api/v1/documents/{id}"),
    })
}

/// `GET /api/v1/documents/{id}/status`.
pub async fn document_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let doc = load(&state, &id).await?;
    Ok(Json(status_json(&doc)).into_response())
}

/// `GET /api/v1/documents/{id}`: the stamped PDF as an attachment once done;
/// 202 with the status and `Retry-After` before; 422 with the reason if it
/// failed.
pub async fn download_document(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let doc = load(&state, &id).await?;
    match doc.status {
        DocStatus::Queued | DocStatus::Running => {
            let mut res = (StatusCode::ACCEPTED, Json(status_json(&doc))).into_response();
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return Ok(res);
        }
        DocStatus::Failed => return Err(failed(&doc)),
        DocStatus::Done => {}
    }
    let blobs = state.watermarker.store().blobs();
    let shas = output_parts(&doc);
    // Open every part first, so a missing blob is an error, not a cut body.
    let mut parts = Vec::with_capacity(shas.len());
    for sha in &shas {
        parts.push(blobs.stream(sha).await?);
    }
    let body = futures_util::stream::iter(parts).flatten();
    let mut res = Response::new(Body::from_stream(body));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    if let Some(len) = doc
        .output_size
        .and_then(|n| HeaderValue::from_str(&n.to_string()).ok())
    {
        h.insert(header::CONTENT_LENGTH, len);
    }
    if let Ok(v) = HeaderValue::from_str(&content_disposition(&doc.filename)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some(etag) = doc
        .output_sha256
        .as_ref()
        .and_then(|s| HeaderValue::from_str(&format!("\"{s}\"")).ok())
    {
        h.insert(header::ETAG, etag);
    }
    Ok(res)
}

/// 422 with the reason a document failed.
pub(crate) fn failed(doc: &Document) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        doc.error_code.clone().unwrap_or_else(|| "failed".into()),
        doc.error_detail
            .clone()
            .unwrap_or_else(|| "Stamping failed".into()),
    )
}

/// The blobs whose concatenation is a done document's stamped PDF: the
/// rewritten file, or the input followed by the appended update.
pub(crate) fn output_parts(doc: &Document) -> Vec<String> {
    if doc.output_is_rewrite {
        doc.output_sha256.clone().into_iter().collect()
    } else {
        [Some(doc.input_sha256.clone()), doc.update_sha256.clone()]
            .into_iter()
            .flatten()
            .collect()
    }
}

/// `attachment` with the stored (sanitized) filename: an ASCII `filename`
/// for every client and, when the name is not plain ASCII, a UTF-8
/// `filename*` (RFC 6266) that modern clients prefer.
fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if ascii == name {
        return format!("attachment; filename=\"{ascii}\"");
    }
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// `DELETE /api/v1/documents/{id}`: removes the document and its blobs.
pub async fn delete_document(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: DocumentId = id.parse().map_err(|_| ApiError::not_found())?;
    if state.watermarker.delete(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

#[cfg(test)]
mod tests {
    use super::content_disposition;

    #[test]
    fn disposition_keeps_unicode_names() {
        assert_eq!(
            content_disposition("Book (1).pdf"),
            "attachment; filename=\"Book (1).pdf\""
        );
        assert_eq!(
            content_disposition("Straße.pdf"),
            "attachment; filename=\"Stra_e.pdf\"; filename*=UTF-8''Stra%C3%9Fe.pdf"
        );
    }
}
