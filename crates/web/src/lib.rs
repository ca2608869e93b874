//! Peedy's HTTP API (DESIGN §4): the original's routes — upload, download,
//! `dev/null`, healthcheck — plus status, delete, synchronous stamping and
//! readiness; the web page at `/` and page previews; optional API tokens.
//!
//! [`router`] builds the axum app from an [`AppState`]; [`serve`] runs it on
//! a listener until a shutdown future resolves (tests pass `127.0.0.1:0`).
#![deny(missing_docs)]

mod auth;
mod cluster;
mod documents;
mod error;
mod health;
mod page;
mod preview;
mod sync;
mod upload;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use peedy_watermarker::Watermarker;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

pub use auth::{ApiTokens, require_token};
pub use error::ApiError;
pub use preview::render_first_page;

/// Limits and behaviour of the web tier.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Largest accepted PDF per file, in bytes (413 past it).
    pub max_upload_bytes: u64,
    /// Most files per upload request.
    pub max_files: usize,
    /// Stamping jobs waiting before uploads are refused with 503.
    pub max_queued: i64,
    /// Largest PDF for the synchronous `POST /api/v1/stamp`.
    pub max_sync_bytes: u64,
    /// When set, the `/api` routes (except `POST /api/v1/dev/null`) want
    /// `Authorization: Bearer` with one of these tokens.
    pub api_tokens: Option<ApiTokens>,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            max_upload_bytes: 256 << 20,
            max_files: 100,
            max_queued: 10_000,
            max_sync_bytes: 32 << 20,
            api_tokens: None,
        }
    }
}

/// What every handler gets.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The pipeline (store, queue, deliverer).
    pub watermarker: Arc<Watermarker>,
    /// Limits.
    pub config: Arc<WebConfig>,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Request ids: a process prefix and a counter, unique and cheap.
#[derive(Clone)]
struct Ids {
    prefix: u64,
    next: Arc<AtomicU64>,
}

impl MakeRequestId for Ids {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}-{n:06}", self.prefix & 0xffff_ffff)
            .parse()
            .ok()
            .map(RequestId::new)
    }
}

/// The whole API as an axum router.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/documents", post(upload::create_documents))
        .route(
            "/documents/{id}",
            get(documents::download_document).delete(documents::delete_document),
        )
        .route("/documents/{id}/status", get(documents::document_status))
        .route(
            "/documents/{id}/preview.png",
            get(preview::document_preview),
        )
        .route("/stamp", post(sync::stamp_document))
        .route("/cluster", get(cluster::cluster))
        // Tokens guard the routes above; see `auth` for why dev/null is open.
        .route_layer(from_fn_with_state(
            state.config.api_tokens.clone(),
            auth::require_token,
        ))
        .route("/dev/null", post(health::dev_null));
    let pages = Router::new()
        .route("/", get(page::index))
        .route("/assets/app.css", get(page::css))
        .route("/assets/app.js", get(page::js))
        .route("/assets/icon.svg", get(page::icon))
        .route("/favicon.ico", get(page::icon));
    with_layers(ops_routes().merge(pages).nest("/api/v1", api), state)
}

/// What every node serves, a worker-only one included (for orchestrators'
/// probes): `/healthcheck` and `/readyz`.
fn ops_routes() -> Router<AppState> {
    Router::new()
        .route("/healthcheck", get(health::healthcheck))
        .route("/readyz", get(health::readyz))
}

/// The router of a node without the web role: the probes only.
pub fn ops_router(state: AppState) -> Router {
    with_layers(ops_routes(), state)
}

/// Fallbacks, request ids, tracing and the state, around `routes`.
fn with_layers(routes: Router<AppState>, state: AppState) -> Router {
    let prefix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 ^ u64::from(std::process::id()))
        .unwrap_or(0);
    let ids = Ids {
        prefix,
        next: Arc::new(AtomicU64::new(1)),
    };
    routes
        .fallback(health::not_found)
        .method_not_allowed_fallback(health::method_not_allowed)
        // Uploads are limited per file while they stream to disk.
        .layer(DefaultBodyLimit::disable())
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, ids))
        .with_state(state)
}

/// Serves `router(state)` on `listener` until `shutdown` resolves, then
/// lets requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router(listener, router(state), shutdown).await
}

/// Serves `app` (from [`router`] or [`ops_router`]) on `listener` until
/// `shutdown` resolves, then lets requests in flight finish.
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The request id header of a request, for logs and stored documents.
pub(crate) fn request_id(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
