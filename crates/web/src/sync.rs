//! `POST /api/v1/stamp`: one small PDF in, the stamped PDF out, no queue.
//! The PDF comes as a raw `application/pdf` body (spec in the query) or as
//! one multipart file part (spec in query or form fields).

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;
use peedy_watermarker::WatermarkSpec;

use crate::error::stamp_error;
use crate::openapi::{ErrorBody, Pdf, SpecParams, StampForm};
use crate::upload::{drain_refused, drain_refused_body};
use crate::{ApiError, AppState};

/// `POST /api/v1/stamp`.
#[utoipa::path(
    post,
    path = "/stamp",
    tag = "stamp",
    summary = "Stamp one small PDF now",
    description = "Synchronous, for small files (up to `--max-sync-bytes`): a raw `application/pdf` body with the spec in the query, or multipart with one file part (the first is used) and the spec in the query or form fields. Answers the stamped PDF; nothing is stored.",
    params(SpecParams),
    request_body(content(
        (Pdf = "application/pdf"),
        (StampForm = "multipart/form-data"),
    )),
    responses(
        (status = 200, description = "The stamped PDF", content_type = "application/pdf", body = Pdf,
            headers(("x-peedy-pages" = u32, description = "Pages in the PDF"))),
        (status = 400, description = "No watermark (`missing_params`), no PDF (`no_pdfs`), an invalid spec field, or a malformed body", body = ErrorBody),
        (status = 413, description = "The PDF is larger than `--max-sync-bytes` (`too_large`)", body = ErrorBody),
        (status = 422, description = "The PDF cannot be stamped (not a PDF, encrypted, damaged beyond repair, over a limit); `code` says which", body = ErrorBody),
    )
)]
pub async fn stamp_document(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    req: Request,
) -> Result<Response, ApiError> {
    let limit = state.config.max_sync_bytes;
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut fields = HashMap::new();
    let input = if ct.starts_with("multipart/form-data") {
        let mut mp =
            <axum::extract::Multipart as axum::extract::FromRequest<()>>::from_request(req, &())
                .await
                .map_err(|e| {
                    ApiError::bad_request("not_multipart", format!("The upload is malformed: {e}"))
                })?;
        let read = read_multipart(&mut mp, limit, &mut fields).await;
        if read.as_ref().is_err_and(ApiError::is_too_large) {
            drain_refused(&mut mp).await;
        }
        read?
    } else {
        let mut stream = req.into_body().into_data_stream();
        let read = read_body(&mut stream, limit).await;
        if read.as_ref().is_err_and(ApiError::is_too_large) {
            drain_refused_body(&mut stream).await;
        }
        read?
    };
    if input.is_empty() {
        return Err(ApiError::bad_request("no_pdfs", "No PDFs received"));
    }
    let get = |k: &str| fields.get(k).or_else(|| query.get(k)).cloned();
    let (_, watermark) = WatermarkSpec::from_params(get)
        .map_err(|e| stamp_error(&e.into()))?
        .ok_or_else(|| {
            ApiError::bad_request(
                "missing_params",
                "Watermark is missing: give the text as the `watermark` parameter",
            )
        })?;
    let (bytes, report) = state.watermarker.stamp_now(input, watermark).await?;
    let mut res = Response::new(Body::from(bytes));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"stamped.pdf\""),
    );
    if let Ok(v) = HeaderValue::from_str(&report.pages.to_string()) {
        h.insert("x-peedy-pages", v);
    }
    Ok(res)
}

/// The first file part's bytes (at most `limit`); the text fields go to
/// `fields`.
async fn read_multipart(
    mp: &mut axum::extract::Multipart,
    limit: u64,
    fields: &mut HashMap<String, String>,
) -> Result<Vec<u8>, ApiError> {
    let malformed = |e: axum::extract::multipart::MultipartError| {
        ApiError::bad_request(
            "malformed_multipart",
            format!("The upload is malformed: {e}"),
        )
    };
    let mut pdf = None;
    while let Some(mut field) = mp.next_field().await.map_err(malformed)? {
        let is_file = field.file_name().is_some() || field.content_type().is_some();
        let name = field.name().unwrap_or_default().to_owned();
        let mut buf = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(malformed)? {
            buf.extend_from_slice(&chunk);
            if buf.len() as u64 > limit {
                return Err(too_large(limit));
            }
        }
        if is_file {
            if pdf.is_none() {
                pdf = Some(buf);
            }
        } else {
            fields.insert(name, String::from_utf8_lossy(&buf).into_owned());
        }
    }
    pdf.ok_or_else(|| ApiError::bad_request("no_pdfs", "No PDFs received"))
}

/// A raw body (at most `limit` bytes).
async fn read_body(
    stream: &mut (impl futures_util::Stream<Item = Result<bytes::Bytes, axum::Error>> + Unpin),
    limit: u64,
) -> Result<Vec<u8>, ApiError> {
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request("malformed_body", format!("Reading the body failed: {e}"))
        })?;
        buf.extend_from_slice(&chunk);
        if buf.len() as u64 > limit {
            return Err(too_large(limit));
        }
    }
    Ok(buf)
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!(
            "The synchronous API takes PDFs up to {limit} bytes; use POST /api/v1/documents for larger ones"
        ),
    )
}
