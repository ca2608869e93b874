//! A document after upload: its status, its stamped PDF, deleting it.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use peedy_store::{DocStatus, Document, DocumentId};
use serde::Serialize;
use utoipa::ToSchema;

use crate::openapi::{ErrorBody, Pdf};
use crate::{ApiError, AppState};

/// The `{id}` of the path as a document id. Malformed ids — also ones that
/// are not UTF-8, which axum would answer with a plain-text 400 — are
/// unknown ids: a JSON 404, no query needed.
fn document_id(id: Result<Path<String>, PathRejection>) -> Result<DocumentId, ApiError> {
    let Ok(Path(id)) = id else {
        return Err(ApiError::not_found());
    };
    id.parse().map_err(|_| ApiError::not_found())
}

pub(crate) async fn load(
    state: &AppState,
    id: Result<Path<String>, PathRejection>,
) -> Result<Document, ApiError> {
    let id = document_id(id)?;
    state
        .watermarker
        .store()
        .document(&id)
        .await?
        .ok_or_else(ApiError::not_found)
}

/// Where a document is in its life.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting for a stamping worker.
    Queued,
    /// Being stamped.
    Running,
    /// Stamped; the PDF can be downloaded.
    Done,
    /// Stamping failed; `error` says why.
    Failed,
}

impl From<DocStatus> for Status {
    fn from(s: DocStatus) -> Self {
        match s {
            DocStatus::Queued => Status::Queued,
            DocStatus::Running => Status::Running,
            DocStatus::Done => Status::Done,
            DocStatus::Failed => Status::Failed,
        }
    }
}

/// The uploaded PDF.
#[derive(Serialize, ToSchema)]
pub struct Input {
    /// Bytes.
    size: i64,
    /// SHA-256, lowercase hex.
    sha256: String,
}

/// The stamped PDF, once done.
#[derive(Serialize, ToSchema)]
pub struct Output {
    /// Bytes.
    size: Option<i64>,
    /// SHA-256 of the whole stamped PDF (also its `ETag`).
    sha256: Option<String>,
    /// SHA-256 of the update appended to the input (incremental output).
    update_sha256: Option<String>,
    /// True when the output is the input plus an appended update.
    incremental: bool,
}

/// When things happened (unix milliseconds) and how long they took.
#[derive(Serialize, ToSchema)]
pub struct Timings {
    /// Accepted.
    created_at_ms: i64,
    /// Stamping (last) started.
    started_at_ms: Option<i64>,
    /// Stamping finished or failed.
    finished_at_ms: Option<i64>,
    /// Time in the engine.
    stamp_ms: Option<i64>,
    /// Time waiting in the queue.
    queued_ms: Option<i64>,
}

/// Why stamping failed.
#[derive(Serialize, ToSchema)]
pub struct Failure {
    /// Machine-readable (`not_a_pdf`, `encrypted`, …).
    code: String,
    /// A sentence.
    detail: Option<String>,
}

/// A callback delivery's state.
#[derive(Serialize, ToSchema)]
pub struct Delivery {
    /// `pending`, `delivering` (an attempt running for more than 0.2 s),
    /// `delivered`, `failed`, `gone` or `waiting_breaker`.
    state: String,
    /// Attempts so far (deferrals by the breaker do not count).
    attempts: i64,
    /// The `webhook-id` header, the same on every attempt.
    webhook_id: String,
    /// HTTP status of the last attempt, if it got an answer.
    last_status: Option<i64>,
    /// Why the last attempt failed.
    last_error: Option<String>,
    /// When the next attempt is due (unix ms).
    next_attempt_at_ms: Option<i64>,
    /// When it was delivered (unix ms).
    delivered_at_ms: Option<i64>,
}

/// The document's callback.
#[derive(Serialize, ToSchema)]
pub struct Callback {
    /// The `callback_url` given at upload.
    url: String,
    /// Set once the document is stamped and its delivery queued.
    delivery: Option<Delivery>,
}

/// `GET /api/v1/documents/{id}/status` (and the 202 of a download before
/// the document is done).
#[derive(Serialize, ToSchema)]
pub struct DocumentStatus {
    /// The document id.
    id: String,
    /// Where it is.
    status: Status,
    /// The upload's sanitized filename.
    filename: String,
    /// Pages in the PDF, once stamped.
    pages: Option<i64>,
    /// Pages that got the watermark.
    stamped_pages: Option<i64>,
    /// The uploaded PDF.
    input: Input,
    /// The stamped PDF.
    output: Output,
    /// When and how long.
    timings: Timings,
    /// Set when stamping failed.
    error: Option<Failure>,
    /// Set when a `callback_url` was given.
    callback: Option<Callback>,
    /// When the document and its files are deleted (unix ms).
    expires_at_ms: i64,
    /// This status.
    status_url: String,
    /// The stamped PDF.
    download_url: String,
}

impl DocumentStatus {
    fn of(doc: &Document) -> Self {
        let id = doc.id.to_string();
        DocumentStatus {
            status: doc.status.into(),
            filename: doc.filename.clone(),
            pages: doc.pages,
            stamped_pages: doc.stamped_pages,
            input: Input {
                size: doc.input_size,
                sha256: doc.input_sha256.clone(),
            },
            output: Output {
                size: doc.output_size,
                sha256: doc.output_sha256.clone(),
                update_sha256: doc.update_sha256.clone(),
                incremental: doc.status == DocStatus::Done && !doc.output_is_rewrite,
            },
            timings: Timings {
                created_at_ms: doc.created_at_ms,
                started_at_ms: doc.started_at_ms,
                finished_at_ms: doc.finished_at_ms,
                stamp_ms: doc.stamp_ms,
                queued_ms: doc.started_at_ms.map(|s| s - doc.created_at_ms),
            },
            error: doc.error_code.as_ref().map(|code| Failure {
                code: code.clone(),
                detail: doc.error_detail.clone(),
            }),
            callback: doc.callback_url.as_ref().map(|url| Callback {
                url: url.clone(),
                delivery: doc.delivery.as_ref().map(|d| Delivery {
                    state: d.state.clone(),
                    attempts: d.attempts,
                    webhook_id: d.webhook_id.clone(),
                    last_status: d.last_status,
                    last_error: d.last_error.clone(),
                    next_attempt_at_ms: d.next_attempt_at_ms,
                    delivered_at_ms: d.delivered_at_ms,
                }),
            }),
            expires_at_ms: doc.expires_at_ms,
            status_url: format!("/api/v1/documents/{id}/status"),
            download_url: format!("/api/v1/documents/{id}"),
            id,
        }
    }
}

/// `GET /api/v1/documents/{id}/status`.
#[utoipa::path(
    get,
    path = "/documents/{id}/status",
    tag = "documents",
    summary = "A document's status",
    description = "Status, pages, sizes, hashes, timings, the error if stamping failed, and the callback's delivery state.",
    params(("id" = String, Path, description = "The document id from the upload")),
    responses(
        (status = 200, description = "The status", body = DocumentStatus),
        (status = 404, description = "No document with this id (`not_found`)", body = ErrorBody),
        (status = 503, description = "The database is unavailable (`database_unavailable`)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn document_status(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let doc = load(&state, id).await?;
    Ok(Json(DocumentStatus::of(&doc)).into_response())
}

/// `GET /api/v1/documents/{id}`: the stamped PDF as an attachment once done;
/// 202 with the status and `Retry-After` before; 422 with the reason if it
/// failed.
#[utoipa::path(
    get,
    path = "/documents/{id}",
    tag = "documents",
    summary = "Download the stamped PDF",
    description = "The stamped PDF as an attachment once done; while queued or running, 202 with the status and `Retry-After`; 422 with the reason if stamping failed.",
    params(("id" = String, Path, description = "The document id from the upload")),
    responses(
        (status = 200, description = "The stamped PDF", content_type = "application/pdf", body = Pdf,
            headers(
                ("Content-Disposition" = String, description = "`attachment` with the upload's sanitized filename"),
                ("ETag" = String, description = "The output's SHA-256, quoted"),
            )),
        (status = 202, description = "Not stamped yet: the status", body = DocumentStatus,
            headers(("Retry-After" = u64, description = "Seconds until it is worth asking again"))),
        (status = 404, description = "No document with this id (`not_found`)", body = ErrorBody),
        (status = 422, description = "Stamping failed; `code` and `detail` say why", body = ErrorBody),
        (status = 503, description = "The database is unavailable (`database_unavailable`)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn download_document(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let doc = load(&state, id).await?;
    match doc.status {
        DocStatus::Queued | DocStatus::Running => {
            let mut res = (StatusCode::ACCEPTED, Json(DocumentStatus::of(&doc))).into_response();
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
#[utoipa::path(
    delete,
    path = "/documents/{id}",
    tag = "documents",
    summary = "Delete a document",
    description = "Removes the document, its jobs and the files nothing else uses.",
    params(("id" = String, Path, description = "The document id from the upload")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No document with this id (`not_found`)", body = ErrorBody),
        (status = 503, description = "The database is unavailable (`database_unavailable`)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn delete_document(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = document_id(id)?;
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
