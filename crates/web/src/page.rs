//! The web page at `/` (DESIGN §8): drop PDFs, set the watermark, watch
//! each file's progress, preview page 1 and download the results — what a
//! person uses instead of curl. Hand-written HTML, CSS and vanilla
//! JavaScript in `crates/web/assets/`, compiled into the binary: no build
//! step, no front-end server and nothing fetched from other hosts (the
//! Content-Security-Policy allows this origin only), so it works offline.
//!
//! The page uses the public API only (`POST /api/v1/documents`, `/status`,
//! `/preview.png`, the download); with API tokens on, it asks for one when
//! the API answers 401 and keeps it in `sessionStorage`.

use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_CSS: &str = include_str!("../assets/app.css");
const APP_JS: &str = include_str!("../assets/app.js");
const ICON_SVG: &str = include_str!("../assets/icon.svg");

/// Same origin only; previews and downloads are `blob:` URLs made by the
/// page from authenticated fetches.
const CSP: &str = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; \
                   script-src 'self'; connect-src 'self'; object-src 'none'; \
                   base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Small, and they change with the binary: revalidate every time.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    res
}

/// `GET /`: the page.
pub async fn index() -> Response {
    let mut res = asset("text/html; charset=utf-8", INDEX_HTML);
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// `GET /assets/app.css`.
pub async fn css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

/// `GET /assets/app.js`.
pub async fn js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// `GET /assets/icon.svg` (also the favicon).
pub async fn icon() -> Response {
    asset("image/svg+xml", ICON_SVG)
}
