//! `GET /api/v1/documents/{id}/preview.png`: page 1 of a done document's
//! stamped PDF, rendered with `hayro` (pure Rust, in process), so the web
//! page can show the watermark before anyone downloads the file.
//!
//! Bounded on every side: only documents up to [`MAX_PREVIEW_BYTES`] are
//! rendered, the longest side of the image is at most [`MAX_SIDE_PX`]
//! pixels whatever the page size, renders run on the blocking pool with at
//! most [`RENDERS_AT_ONCE`] at a time (so previews cannot starve stamping),
//! and a render that takes longer than [`RENDER_TIMEOUT`] is answered with
//! 503 (it still holds its permit until it ends, so the bound stays true).

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use peedy_store::DocStatus;
use tokio::sync::Semaphore;

use crate::documents::{failed, load, output_parts};
use crate::{ApiError, AppState};

/// Largest stamped PDF that is rendered (it is read whole into memory).
pub const MAX_PREVIEW_BYTES: u64 = 64 << 20;
/// Longest side of a preview, in pixels.
pub const MAX_SIDE_PX: f32 = 800.0;
/// Most pixels per point (so a tiny page is not blown up).
const MAX_SCALE: f32 = 2.0;
/// Renders at once, process-wide.
const RENDERS_AT_ONCE: usize = 2;
/// How long a request waits for its render.
const RENDER_TIMEOUT: Duration = Duration::from_secs(20);

static RENDERS: Semaphore = Semaphore::const_new(RENDERS_AT_ONCE);

/// `GET /api/v1/documents/{id}/preview.png`: 200 `image/png` once done;
/// 409 JSON + `Retry-After` while queued or running; 422 JSON when stamping
/// failed or the page cannot be rendered; 404 JSON for an unknown id.
pub async fn document_preview(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let doc = load(&state, &id).await?;
    match doc.status {
        DocStatus::Queued | DocStatus::Running => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "not_ready",
                format!(
                    "The document is {}; the preview is ready when it is done",
                    doc.status.as_str()
                ),
            )
            .with_retry_after(1));
        }
        DocStatus::Failed => return Err(failed(&doc)),
        DocStatus::Done => {}
    }
    let size = doc.output_size.unwrap_or(0).max(0) as u64;
    if size > MAX_PREVIEW_BYTES {
        return Err(unrenderable(format!(
            "The stamped PDF is {size} bytes; previews are made for PDFs up to {MAX_PREVIEW_BYTES} bytes"
        )));
    }
    let permit = RENDERS.acquire().await.map_err(ApiError::internal)?;
    let blobs = state.watermarker.store().blobs();
    let mut pdf = Vec::with_capacity(size as usize);
    for sha in output_parts(&doc) {
        pdf.extend_from_slice(&blobs.read(&sha).await?);
    }
    let render = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        render_first_page(pdf)
    });
    let png = match tokio::time::timeout(RENDER_TIMEOUT, render).await {
        Err(_) => {
            return Err(ApiError::unavailable(
                "preview_timeout",
                "Rendering the preview took too long",
                5,
            ));
        }
        Ok(Err(join)) => {
            tracing::error!(document = %id, "the preview renderer panicked: {join}");
            return Err(unrenderable("The first page cannot be rendered"));
        }
        Ok(Ok(Err(why))) => return Err(unrenderable(why)),
        Ok(Ok(Ok(png))) => png,
    };
    let mut res = Response::new(Body::from(png));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
    // The stamped PDF of a document never changes: cache it for the session.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    Ok(res)
}

fn unrenderable(detail: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "preview_unavailable",
        detail,
    )
}

/// Page 1 of `pdf` as a PNG on white, its longest side at most
/// [`MAX_SIDE_PX`] pixels.
pub fn render_first_page(pdf: Vec<u8>) -> Result<Vec<u8>, String> {
    use hayro::hayro_interpret::InterpreterSettings;
    use hayro::hayro_syntax::Pdf;
    use hayro::vello_cpu::color::palette::css::WHITE;
    use hayro::{PixmapSettings, RenderCache, RenderSettings};

    let doc =
        Pdf::new(pdf).map_err(|e| format!("The PDF cannot be opened for a preview ({e:?})"))?;
    let pages = doc.pages();
    let page = pages
        .first()
        .ok_or_else(|| "The PDF has no pages to preview".to_owned())?;
    let (width, height) = page.render_dimensions();
    let longest = width.max(height);
    if !(longest.is_finite() && width >= 1.0 && height >= 1.0) {
        return Err(format!(
            "The first page is {width}×{height} points; it cannot be previewed"
        ));
    }
    let scale = (MAX_SIDE_PX / longest).min(MAX_SCALE);
    if width * scale < 1.0 || height * scale < 1.0 {
        return Err(format!(
            "The first page is {width}×{height} points, too narrow to preview"
        ));
    }
    let cache = RenderCache::new();
    let pixmap = hayro::render(
        page,
        &cache,
        &InterpreterSettings::default(),
        &RenderSettings::default(),
        &PixmapSettings {
            x_scale: scale,
            y_scale: scale,
            bg_color: WHITE,
        },
    );
    pixmap
        .into_png()
        .map_err(|e| format!("The preview cannot be encoded ({e})"))
}

#[cfg(test)]
mod tests {
    use super::{MAX_SIDE_PX, render_first_page};

    /// A one-page PDF with this MediaBox and a filled rectangle over it,
    /// with a correct xref table.
    fn page_pdf(width: f32, height: f32) -> Vec<u8> {
        let content = format!("0 0 1 rg 0 0 {width} {height} re f");
        let objects = [
            "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width} {height}] /Contents 4 0 R >>"
            ),
            format!(
                "<< /Length {} >>\nstream\n{content}\nendstream",
                content.len()
            ),
        ];
        let mut out = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, body) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
        }
        let xref = out.len();
        out.extend_from_slice(b"xref\n0 5\n0000000000 65535 f \n");
        for offset in offsets {
            out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
        }
        out.extend_from_slice(
            format!("trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n").as_bytes(),
        );
        out
    }

    /// Width and height from a PNG's IHDR chunk.
    fn png_size(png: &[u8]) -> (u32, u32) {
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
        let be = |i: usize| u32::from_be_bytes([png[i], png[i + 1], png[i + 2], png[i + 3]]);
        (be(16), be(20))
    }

    #[test]
    fn huge_pages_are_scaled_down_to_the_cap() {
        let png = render_first_page(page_pdf(14_400.0, 7_200.0)).unwrap();
        assert_eq!(png_size(&png), (MAX_SIDE_PX as u32, MAX_SIDE_PX as u32 / 2));
        let png = render_first_page(page_pdf(200.0, 14_400.0)).unwrap();
        let (w, h) = png_size(&png);
        assert_eq!(h, MAX_SIDE_PX as u32);
        assert!((10..=12).contains(&w), "{w}");
    }

    #[test]
    fn small_pages_are_not_blown_up_past_two_pixels_a_point() {
        let png = render_first_page(page_pdf(100.0, 50.0)).unwrap();
        assert_eq!(png_size(&png), (200, 100));
    }

    #[test]
    fn unrenderable_input_is_an_error_not_a_panic() {
        assert!(render_first_page(b"not a PDF at all".to_vec()).is_err());
        assert!(render_first_page(Vec::new()).is_err());
        let err = render_first_page(page_pdf(14_400.0, 0.5)).unwrap_err();
        assert!(
            err.contains("cannot be previewed") || err.contains("too narrow"),
            "{err}"
        );
    }
}
