//! `POST /api/v1/documents`: the original's upload. Multipart with any part
//! names; parameters as query string or form fields; each part that is a PDF
//! by content type *and* by its `%PDF` magic streams to the blob store (never
//! whole into memory); other parts are skipped and reported.

use std::collections::HashMap;

use axum::Json;
use axum::extract::multipart::Field;
use axum::extract::{Multipart, Query, State};
use axum::http::HeaderMap;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use peedy_watermarker::{STAMP_QUEUE, Upload, WatermarkSpec, sanitize_filename};
use serde::Serialize;
use tokio_util::io::StreamReader;
use utoipa::ToSchema;

use crate::documents::Status;
use crate::error::stamp_error;
use crate::openapi::{ErrorBody, SpecParams, UploadForm, UploadParams};
use crate::{ApiError, AppState, request_id};

/// Longest accepted text form field.
const MAX_FIELD_BYTES: usize = 16 * 1024;
/// How far into a part the `%PDF` marker may be (junk before it is legal).
const MAGIC_WINDOW: usize = 1024;

/// One accepted document in the response.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// The document id (random, unguessable).
    id: String,
    /// The upload's sanitized filename.
    filename: String,
    /// Always `queued` at first.
    status: Status,
    /// Where to poll its status.
    status_url: String,
    /// Where to download the stamped PDF.
    download_url: String,
}

/// A part that was not accepted, and why.
#[derive(Serialize, ToSchema)]
pub struct Skipped {
    /// The part's filename, if it had one.
    filename: Option<String>,
    /// Why it was skipped (not `application/pdf`, or no `%PDF` marker).
    reason: String,
}

/// The upload response.
#[derive(Serialize, ToSchema)]
pub struct Created {
    /// The accepted documents, in upload order.
    documents: Vec<Accepted>,
    /// The parts that were not PDFs.
    skipped: Vec<Skipped>,
}

fn is_pdf_type(ct: Option<&str>) -> bool {
    ct.map(|c| {
        c.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    })
    .is_some_and(|c| c == "application/pdf" || c == "application/x-pdf")
}

/// Reads a part's first bytes (up to [`MAGIC_WINDOW`]) to check the magic.
async fn head_of(field: &mut Field<'_>) -> Result<(Vec<u8>, bool), ApiError> {
    let mut head = Vec::new();
    while head.len() < MAGIC_WINDOW {
        match field.chunk().await {
            Ok(Some(c)) => head.extend_from_slice(&c),
            Ok(None) => return Ok((head, true)),
            Err(e) => {
                return Err(ApiError::bad_request(
                    "malformed_multipart",
                    format!("The upload is malformed: {e}"),
                ));
            }
        }
    }
    Ok((head, false))
}

fn has_magic(head: &[u8]) -> bool {
    head[..head.len().min(MAGIC_WINDOW)]
        .windows(4)
        .any(|w| w == b"%PDF")
}

/// `POST /api/v1/documents`.
#[utoipa::path(
    post,
    path = "/documents",
    tag = "documents",
    summary = "Upload PDFs to stamp",
    description = "Multipart with one or more PDFs under any part names: a part counts as a PDF when its content type is `application/pdf` **and** it starts with `%PDF`; other parts are skipped and listed. The watermark text is required, as the `watermark` query parameter or form field; the other spec fields and `callback_url` are optional. Each document is stamped by a worker; its stamped PDF is sent to `callback_url` (multipart `file` + `id`) and can be downloaded.",
    params(UploadParams, SpecParams),
    request_body(content = UploadForm, content_type = "multipart/form-data",
        encoding(("file" = (content_type = "application/pdf")))),
    responses(
        (status = 200, description = "Accepted: each document's id and URLs, and the skipped parts", body = Created),
        (status = 400, description = "No watermark (`missing_params`), no PDF (`no_pdfs`), an invalid spec field or callback URL, or a malformed body", body = ErrorBody),
        (status = 413, description = "A file is larger than `--max-upload-bytes` (`too_large`) or there are too many files (`too_many_files`)", body = ErrorBody),
        (status = 503, description = "Too many documents wait already (`queue_full`) or the database is unavailable (`database_unavailable`)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn create_documents(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Json<Created>, ApiError> {
    let wm = &state.watermarker;
    // Backpressure: refuse before reading the body when the queue is full.
    if let Some(queued) = wm
        .queue()
        .is_full(STAMP_QUEUE, state.config.max_queued)
        .await?
    {
        return Err(ApiError::unavailable(
            "queue_full",
            format!("{queued} documents are waiting to be stamped; try again shortly"),
            5,
        ));
    }
    let mut multipart = multipart.map_err(|e| {
        if query.contains_key("watermark") {
            ApiError::bad_request(
                "not_multipart",
                format!("Send the PDFs as multipart/form-data ({e})"),
            )
        } else {
            missing_watermark()
        }
    })?;

    let mut fields: HashMap<String, String> = HashMap::new();
    let mut uploads: Vec<Upload> = Vec::new();
    let mut skipped: Vec<Skipped> = Vec::new();
    let result = read_parts(
        &state,
        &mut multipart,
        &mut fields,
        &mut uploads,
        &mut skipped,
    )
    .await;
    if result.as_ref().is_err_and(ApiError::is_too_large) {
        drain_refused(&mut multipart).await;
    }
    // Blobs stored by a request that is then refused are left to the
    // orphan sweep: deleting them here could race with another upload of
    // the same bytes. Their holds in memory are let go at once.
    let answer = match result {
        Ok(()) => accept(&state, &query, &fields, &uploads, skipped, &headers).await,
        Err(e) => Err(e),
    };
    if answer.is_err() {
        let blobs = state.watermarker.store().blobs();
        for upload in &uploads {
            blobs.release(&upload.sha256);
        }
    }
    answer
}

async fn read_parts(
    state: &AppState,
    multipart: &mut Multipart,
    fields: &mut HashMap<String, String>,
    uploads: &mut Vec<Upload>,
    skipped: &mut Vec<Skipped>,
) -> Result<(), ApiError> {
    let blobs = state.watermarker.store().blobs();
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(()),
            Err(e) => {
                return Err(ApiError::bad_request(
                    "malformed_multipart",
                    format!("The upload is malformed: {e}"),
                ));
            }
        };
        let filename = field.file_name().map(str::to_owned);
        let name = field.name().unwrap_or_default().to_owned();
        let content_type = field.content_type().map(str::to_owned);
        if filename.is_none() && content_type.is_none() {
            // A plain form field.
            let mut value = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(|e| {
                ApiError::bad_request(
                    "malformed_multipart",
                    format!("The upload is malformed: {e}"),
                )
            })? {
                value.extend_from_slice(&chunk);
                if value.len() > MAX_FIELD_BYTES {
                    return Err(ApiError::bad_request(
                        "field_too_long",
                        format!("The form field {name:?} is too long"),
                    ));
                }
            }
            fields.insert(name, String::from_utf8_lossy(&value).into_owned());
            continue;
        }
        if !is_pdf_type(content_type.as_deref()) {
            drain(&mut field).await;
            skipped.push(Skipped {
                filename,
                reason: format!(
                    "not a PDF (content type {})",
                    content_type.as_deref().unwrap_or("missing")
                ),
            });
            continue;
        }
        let (head, ended) = head_of(&mut field).await?;
        if !has_magic(&head) {
            if !ended {
                drain(&mut field).await;
            }
            skipped.push(Skipped {
                filename,
                reason: "not a PDF (it does not start with %PDF)".into(),
            });
            continue;
        }
        if uploads.len() >= state.config.max_files {
            return Err(ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_files",
                format!("At most {} files per request", state.config.max_files),
            ));
        }
        let rest = field.map_err(|e| std::io::Error::other(BodyError(e.to_string())));
        let body = futures_util::stream::iter([Ok::<Bytes, std::io::Error>(Bytes::from(head))])
            .chain(rest);
        let reader = StreamReader::new(body);
        let stored = blobs
            .put_reader_resumable(reader, state.config.max_upload_bytes)
            .await
            .map_err(|e| match e {
                // The request body broke off or is not valid multipart: the
                // client's problem, not the blob store's.
                peedy_store::Error::Io(io)
                    if io.get_ref().is_some_and(|inner| inner.is::<BodyError>()) =>
                {
                    ApiError::bad_request(
                        "malformed_multipart",
                        format!("The upload is malformed: {io}"),
                    )
                }
                other => other.into(),
            })?;
        uploads.push(Upload {
            filename: sanitize_filename(filename.as_deref()),
            sha256: stored.sha256,
            size: stored.size,
            hash_state: Some(stored.hash_state),
        });
    }
}

/// An error reading the request body while a part streams to the blob
/// store, told apart from the store's own I/O errors.
#[derive(Debug)]
struct BodyError(String);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BodyError {}

fn missing_watermark() -> ApiError {
    ApiError::bad_request(
        "missing_params",
        "Watermark is missing: give the text as the `watermark` query parameter or form field",
    )
}

/// How long the rest of a refused (too large) upload is read and dropped
/// before the connection is given up.
const DRAIN_REFUSED_FOR: std::time::Duration = std::time::Duration::from_secs(5);

async fn drain(field: &mut Field<'_>) {
    while let Ok(Some(_)) = field.chunk().await {}
}

/// Reads and drops what is left of a refused (too large) multipart body for
/// up to [`DRAIN_REFUSED_FOR`], so the client gets the 413 instead of a
/// broken pipe when the connection closes under a body it is still writing.
pub(crate) async fn drain_refused(multipart: &mut Multipart) {
    let rest = async {
        while let Ok(Some(mut field)) = multipart.next_field().await {
            drain(&mut field).await;
        }
    };
    let _ = tokio::time::timeout(DRAIN_REFUSED_FOR, rest).await;
}

/// [`drain_refused`] for a plain body.
pub(crate) async fn drain_refused_body(
    body: &mut (impl futures_util::Stream<Item = Result<Bytes, axum::Error>> + Unpin),
) {
    let rest = async { while let Some(Ok(_)) = body.next().await {} };
    let _ = tokio::time::timeout(DRAIN_REFUSED_FOR, rest).await;
}

async fn accept(
    state: &AppState,
    query: &HashMap<String, String>,
    fields: &HashMap<String, String>,
    uploads: &[Upload],
    skipped: Vec<Skipped>,
    headers: &HeaderMap,
) -> Result<Json<Created>, ApiError> {
    let get = |k: &str| fields.get(k).or_else(|| query.get(k)).cloned();
    let spec = WatermarkSpec::from_params(get).map_err(|e| stamp_error(&e.into()))?;
    let Some((spec, _)) = spec else {
        return Err(missing_watermark());
    };
    let callback_url = get("callback_url").filter(|u| !u.trim().is_empty());
    if let Some(url) = &callback_url {
        state
            .watermarker
            .deliverer()
            .check_url(url)
            .map_err(|e| ApiError::bad_request("invalid_callback_url", e.to_string()))?;
    }
    if uploads.is_empty() {
        let why: Vec<String> = skipped
            .iter()
            .map(|s| {
                format!(
                    "{}: {}",
                    s.filename.as_deref().unwrap_or("(unnamed part)"),
                    s.reason
                )
            })
            .collect();
        let detail = if why.is_empty() {
            "No PDFs received".to_owned()
        } else {
            format!("No PDFs received ({})", why.join("; "))
        };
        return Err(ApiError::bad_request("no_pdfs", detail));
    }
    let rid = request_id(headers);
    let ids = state
        .watermarker
        .submit(uploads, &spec, callback_url.as_deref(), rid.as_deref())
        .await?;
    let documents = ids
        .iter()
        .zip(uploads)
        .map(|(id, u)| Accepted {
            id: id.to_string(),
            filename: u.filename.clone(),
            status: Status::Queued,
            status_url: format!("/api/v1/documents/{id}/status"),
            download_url: format!("/api/v1/documents/{id}"),
        })
        .collect();
    Ok(Json(Created { documents, skipped }))
}
