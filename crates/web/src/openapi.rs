//! The OpenAPI 3.1 description of the API, generated from the handlers'
//! `#[utoipa::path]` attributes, and the routes built from the same
//! attributes: [`routes`] is the one table both the router and the served
//! spec come from (`utoipa_axum::routes!` registers each handler at the
//! path its attribute documents).
//!
//! Served at `GET /api/v1/openapi.json`, with a small self-contained page
//! that renders it at `GET /api/v1/docs` (no CDN, no downloaded assets).

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::OpenApi as Spec;
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{AppState, cluster, documents, health, metrics, preview, sync, upload};

pub use crate::error::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Peedy",
        description = "Peedy watermarks PDFs. Upload PDFs with a watermark text and get the stamped PDFs back by a callback to your URL, by polling and downloading, or synchronously for small files.\n\nErrors are JSON `{title, code, detail}`. Callbacks are `POST callback_url`, multipart with `file` (the stamped PDF) and `id`, plus Standard Webhooks headers when a signing secret is configured.",
        license(name = "MIT OR Apache-2.0"),
    ),
    tags(
        (name = "documents", description = "Uploading, polling, downloading and deleting documents"),
        (name = "stamp", description = "Synchronous stamping of small files"),
        (name = "operations", description = "Health, readiness, metrics and this description"),
    ),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

/// `/healthcheck`, `/readyz` and `/metrics`: what any node serves, also a
/// worker-only one (see [`crate::ops_router`]).
pub(crate) fn ops_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthcheck))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::metrics))
}

/// The API routes that need a token when tokens are set (under `/api/v1`).
pub(crate) fn guarded_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload::create_documents))
        .routes(routes!(
            documents::download_document,
            documents::delete_document
        ))
        .routes(routes!(documents::document_status))
        .routes(routes!(preview::document_preview))
        .routes(routes!(sync::stamp_document))
        .routes(routes!(cluster::cluster))
}

/// The API routes that stay open (under `/api/v1`): the callback sink and
/// this description.
pub(crate) fn open_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health::dev_null))
        .routes(routes!(openapi_json))
        .routes(routes!(docs_page))
}

/// Every route of the API with its documentation.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    ops_routes().nest("/api/v1", guarded_routes().merge(open_routes()))
}

static SPEC_JSON: LazyLock<String> = LazyLock::new(|| {
    spec()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"the OpenAPI description failed: {e}\"}}"))
});

/// The OpenAPI description of every route [`crate::router`] serves.
pub fn spec() -> Spec {
    let mut spec = routes().split_for_parts().1;
    let guarded: Vec<String> = guarded_routes()
        .split_for_parts()
        .1
        .paths
        .paths
        .into_keys()
        .map(|path| format!("/api/v1{path}"))
        .collect();
    declare_tokens(&mut spec, &guarded);
    spec
}

/// The bearer scheme of `--api-tokens`, on the routes the token layer guards
/// (from the same table as the router): optional in the description, since
/// a server without tokens does not ask for one, with the 401 it answers
/// when tokens are set.
fn declare_tokens(spec: &mut Spec, guarded: &[String]) {
    use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
    use utoipa::openapi::{Components, ContentBuilder, Ref, RefOr, ResponseBuilder};

    let mut bearer = Http::new(HttpAuthScheme::Bearer);
    bearer.description = Some(
        "One of the server's API tokens (`--api-tokens`, `--api-token-file`); \
         required only when the server has tokens."
            .into(),
    );
    spec.components
        .get_or_insert_with(Components::new)
        .add_security_scheme("bearer", SecurityScheme::Http(bearer));
    let unauthorized = ResponseBuilder::new()
        .description("The server has API tokens and the request carries none, or a wrong one")
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build();
    for (path, item) in spec.paths.paths.iter_mut() {
        if !guarded.contains(path) {
            continue;
        }
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            op.security = Some(vec![
                SecurityRequirement::new("bearer", Vec::<String>::new()),
                SecurityRequirement::default(),
            ]);
            op.responses
                .responses
                .insert("401".into(), RefOr::T(unauthorized.clone()));
        }
    }
}

/// `GET /api/v1/openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    summary = "This OpenAPI 3.1 description",
    responses((status = 200, description = "The OpenAPI description", content_type = "application/json", body = Object))
)]
pub async fn openapi_json() -> Response {
    let mut res = SPEC_JSON.as_str().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// `GET /api/v1/docs`.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "operations",
    summary = "The API documentation as a web page",
    description = "A self-contained page (no external assets) that renders `/api/v1/openapi.json`.",
    responses((status = 200, description = "HTML", content_type = "text/html", body = String))
)]
pub async fn docs_page() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}

// ------------------------------------------------------------------ shapes
// Types that exist only to describe requests the handlers read by hand
// (multipart with any part names, parameters as query or form fields).

/// The watermark spec, as query parameters (or the same names as form
/// fields of a multipart body; a form field wins).
#[derive(Debug, Serialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documentation only: the handlers read a map.
pub struct SpecParams {
    /// The watermark text, 1–500 characters (`\n` starts a line). Required,
    /// here or as a form field; `text` is accepted too.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(min_length = 1, max_length = 500)]
    #[schema(min_length = 1, max_length = 500)]
    watermark: Option<String>,
    /// `auto` (fits the page) or a font size in points.
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<String>,
    /// Degrees counter-clockwise (default 50), or `diagonal`.
    #[serde(skip_serializing_if = "Option::is_none")]
    rotation: Option<String>,
    /// Fill opacity from 0 to 1 (default 0.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(minimum = 0, maximum = 1)]
    #[schema(minimum = 0, maximum = 1)]
    opacity: Option<f32>,
    /// `#rrggbb`, `#rgb`, or black, white, red, green, blue, gray.
    #[serde(skip_serializing_if = "Option::is_none")]
    color: Option<String>,
    /// One of 9 anchors (`center`, `top-left`, … `bottom-right`), optionally
    /// moved by points: `bottom-right:-20,20`.
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<String>,
    /// `true`/`1`/`on`/`yes`: also a small line near the top of the page.
    #[serde(skip_serializing_if = "Option::is_none")]
    header: Option<String>,
    /// `over` (default) or `under` the page content.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(pattern = "^(over|under)$")]
    #[schema(pattern = "^(over|under)$")]
    layer: Option<String>,
    /// Pages to stamp: `all` (default) or e.g. `1-3,5,last`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pages: Option<String>,
}

/// `POST /api/v1/documents` query parameters.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documentation only.
pub struct UploadParams {
    /// Where to `POST` each stamped PDF (multipart `file` + `id`). Optional:
    /// poll `/status` instead. Private and loopback addresses are refused
    /// unless the server allows them.
    callback_url: Option<String>,
}

/// A PDF file.
#[derive(Serialize, ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // Documentation only.
pub struct Pdf(Vec<u8>);

/// The multipart body of an upload: one or more PDF parts under any names
/// (content type `application/pdf` and `%PDF` at the start; other parts are
/// skipped and reported), and optionally the parameters as form fields.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // Documentation only.
pub struct UploadForm {
    /// The PDFs (any part names work; `file` is the usual one).
    file: Vec<Pdf>,
    /// The callback URL (or the `callback_url` query parameter).
    #[serde(skip_serializing_if = "Option::is_none")]
    callback_url: Option<String>,
    /// The watermark spec as form fields.
    #[serde(flatten)]
    spec: SpecParams,
}

/// The multipart body of a synchronous stamp: one PDF file part (the first
/// file part is used) and optionally the spec as form fields.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // Documentation only.
pub struct StampForm {
    /// The PDF.
    file: Pdf,
    /// The watermark spec as form fields.
    #[serde(flatten)]
    spec: SpecParams,
}

/// `GET /readyz` when the database answers.
#[derive(Serialize, ToSchema)]
pub struct Ready {
    /// Always `ready`.
    #[schema(example = "ready")]
    pub status: &'static str,
}
