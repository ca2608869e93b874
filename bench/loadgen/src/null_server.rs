//! `null-server`: the cheapest server that keeps Peedy's upload/callback
//! contract, on the stack `peedy serve` uses (axum 0.8 and multer for the
//! upload, reqwest 0.12 for the callbacks, tokio's multi-thread runtime with
//! the default worker count).
//!
//! `POST /api/v1/documents` (multipart; `watermark` and `callback_url` as
//! query parameters or form fields) reads every `application/pdf` part into
//! memory as the chunks multer hands out, answers
//! `{"documents":[{"id":…}],"skipped":[…]}`, and then sends each part back
//! to `callback_url` unchanged, as Peedy's callback does: multipart `file`
//! (the bytes, with the upload's filename, `application/pdf`) and `id`, with
//! an exact `Content-Length`, on one keep-alive client, at most
//! `--callback-concurrency` (Peedy's default 5) at a time. No disk, no
//! database, no stamping, no signature, no retries with backoff.
//!
//! What it costs per document is what any service with this contract must
//! spend on HTTP in and out on this machine; with the engine's cost on the
//! same cores it bounds the throughput such a service can reach (see
//! bench/service.py).

use std::collections::HashMap;
use std::convert::Infallible;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Longest accepted text form field (as Peedy).
const MAX_FIELD_BYTES: usize = 16 * 1024;
/// Peedy's default callback timeout per attempt.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(clap::Args, Debug)]
pub struct NullArgs {
    /// Address to listen on; port 0 picks a free one. The URL is printed on
    /// stdout's first line, as `peedy serve` does.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Callbacks in flight at once (Peedy's `--callback-concurrency`).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    callback_concurrency: u16,
}

/// Runs the null server until it is killed.
pub fn main(args: &NullArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("peedy-loadgen null-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peedy-loadgen null-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

struct Null {
    client: reqwest::Client,
    callbacks: Arc<Semaphore>,
    next_id: AtomicU64,
    /// Random, for the callbacks' multipart boundaries.
    boundary_key: u64,
}

async fn serve(args: &NullArgs) -> Result<()> {
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    // As Peedy's callback client, minus its SSRF-guarding resolver.
    let client = reqwest::Client::builder()
        .timeout(CALLBACK_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent("peedy-null-server")
        .build()
        .context("building the callback client")?;
    let state = Arc::new(Null {
        client,
        callbacks: Arc::new(Semaphore::new(usize::from(args.callback_concurrency))),
        next_id: AtomicU64::new(1),
        // 64 random bits without another dependency: std seeds every
        // `RandomState` from the OS's random source.
        boundary_key: std::hash::BuildHasher::hash_one(
            &std::collections::hash_map::RandomState::new(),
            0u8,
        ),
    });
    let app = Router::new()
        .route("/api/v1/documents", post(upload))
        .with_state(state);
    // The first line of stdout, parsed by bench/service.py like Peedy's.
    println!("peedy-loadgen null-server listening on http://{addr}");
    axum::serve(listener, app).await.context("serving HTTP")
}

/// One PDF part of an upload, held as multer's chunks.
struct Document {
    id: String,
    filename: String,
    chunks: Vec<Bytes>,
    len: usize,
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        axum::Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

fn bad_request(code: &str, message: String) -> Response {
    error(StatusCode::BAD_REQUEST, code, message)
}

async fn upload(
    State(null): State<Arc<Null>>,
    Query(mut params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(boundary) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| multer::parse_boundary(ct).ok())
    else {
        return bad_request(
            "not_multipart",
            "The upload must be multipart/form-data.".into(),
        );
    };
    let mut multipart = multer::Multipart::new(body.into_data_stream(), boundary);
    let mut documents = Vec::new();
    let mut skipped = Vec::new();
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return malformed(&e),
        };
        let name = field.name().map(str::to_owned);
        let is_pdf = field.content_type().is_some_and(|m| {
            let t = m.essence_str();
            t.eq_ignore_ascii_case("application/pdf") || t.eq_ignore_ascii_case("application/x-pdf")
        });
        let filename = field.file_name().map(str::to_owned);
        if is_pdf {
            let mut chunks = Vec::new();
            let mut len = 0;
            loop {
                match field.chunk().await {
                    Ok(Some(chunk)) => {
                        len += chunk.len();
                        chunks.push(chunk);
                    }
                    Ok(None) => break,
                    Err(e) => return malformed(&e),
                }
            }
            let n = null.next_id.fetch_add(1, Ordering::Relaxed);
            documents.push(Document {
                id: format!("null{n:010}"),
                filename: filename.unwrap_or_else(|| "document.pdf".into()),
                chunks,
                len,
            });
        } else if filename.is_none()
            && let Some(key @ ("watermark" | "callback_url")) = name.as_deref()
        {
            let mut text = Vec::new();
            loop {
                match field.chunk().await {
                    Ok(Some(chunk)) => {
                        if text.len() + chunk.len() > MAX_FIELD_BYTES {
                            return bad_request(
                                "field_too_long",
                                format!(
                                    "The `{key}` field is longer than {MAX_FIELD_BYTES} bytes."
                                ),
                            );
                        }
                        text.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) => return malformed(&e),
                }
            }
            match String::from_utf8(text) {
                Ok(text) => {
                    params.insert(key.to_owned(), text);
                }
                Err(_) => {
                    return bad_request("bad_field", format!("The `{key}` field is not UTF-8."));
                }
            }
        } else {
            loop {
                match field.chunk().await {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => return malformed(&e),
                }
            }
            if filename.is_some() {
                skipped.push(json!({ "filename": filename, "reason": "not application/pdf" }));
            }
        }
    }
    if params.get("watermark").is_none_or(|w| w.trim().is_empty()) {
        return bad_request(
            "missing_params",
            "The watermark text is required (`watermark`).".into(),
        );
    }
    let Some(callback) = params.get("callback_url") else {
        return bad_request(
            "missing_params",
            "The null server needs a `callback_url`.".into(),
        );
    };
    let callback = match reqwest::Url::parse(callback) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => url,
        _ => {
            return bad_request(
                "invalid_callback_url",
                format!("Not an http(s) URL: {callback:?}"),
            );
        }
    };
    if documents.is_empty() {
        return bad_request(
            "no_pdfs",
            "The upload holds no application/pdf part.".into(),
        );
    }
    let answer = json!({
        "documents": documents.iter().map(|d| json!({ "id": d.id })).collect::<Vec<_>>(),
        "skipped": skipped,
    });
    for document in documents {
        tokio::spawn(deliver(Arc::clone(&null), callback.clone(), document));
    }
    axum::Json(answer).into_response()
}

fn malformed(e: &multer::Error) -> Response {
    bad_request(
        "malformed_multipart",
        format!("The upload is malformed: {e}"),
    )
}

/// Sends `document` to `url` once a callback slot is free: multipart `file`
/// then `id`, Peedy's shape, streamed from the upload's chunks. A connection
/// that fails before the request went out (a pooled keep-alive connection
/// the receiver has just closed) is retried once; other failures are
/// reported once, and the document is dropped.
async fn deliver(null: Arc<Null>, url: reqwest::Url, document: Document) {
    let Ok(_permit) = Arc::clone(&null.callbacks).acquire_owned().await else {
        return;
    };
    // Unguessable per process, as Peedy's (which keys a SHA-256 instead).
    let boundary = format!("peedy-null-{:016x}-{}", null.boundary_key, document.id);
    let head = Bytes::from(format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\n\
         Content-Type: application/pdf\r\n\r\n",
        crate::upload::quote(&document.filename)
    ));
    let tail = Bytes::from(format!(
        "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"id\"\r\n\r\n{}\r\n--{boundary}--\r\n",
        document.id
    ));
    let len = head.len() + document.len + tail.len();
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let mut retried = false;
    loop {
        // Reference-counted views of the upload's chunks: no copy.
        let mut chunks = Vec::with_capacity(document.chunks.len() + 2);
        chunks.push(head.clone());
        chunks.extend(document.chunks.iter().cloned());
        chunks.push(tail.clone());
        let chunks = chunks.into_iter().map(Ok::<_, Infallible>);
        let sent = null
            .client
            .post(url.clone())
            .header(header::CONTENT_TYPE, content_type.as_str())
            .header(header::CONTENT_LENGTH, len)
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            )))
            .send()
            .await;
        let failure = match sent {
            Ok(response) if response.status().is_success() => {
                // Read the answer to its end so the connection goes back to
                // the pool.
                match response.bytes().await {
                    Ok(_) => return,
                    Err(e) => format!("reading the callback's answer: {e}"),
                }
            }
            Ok(response) => format!("the callback answered {}", response.status()),
            Err(e) if !retried && (e.is_connect() || e.is_request()) && !e.is_timeout() => {
                retried = true;
                continue;
            }
            Err(e) => format!("the callback failed: {e}"),
        };
        static SAID: AtomicBool = AtomicBool::new(false);
        if !SAID.swap(true, Ordering::Relaxed) {
            eprintln!(
                "peedy-loadgen null-server: document {} dropped: {failure} (said once)",
                document.id
            );
        }
        return;
    }
}
