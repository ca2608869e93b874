//! The web page's server side against the real `peedy serve`: the page and
//! its assets, page-1 previews of stamped PDFs, and API tokens
//! (`--api-tokens`, `--api-token-file`). The page itself runs in headless
//! Chromium in `tests/browser.rs`.

mod fixture;
mod support;

use std::process::{Command, Stdio};

use support::{Part, Resp, Server, corpus_file, enc, multipart, tiny_pdf};

/// A decoded PNG: width, height and RGBA pixels.
struct Image {
    width: u32,
    height: u32,
    rgba: Vec<u8>,
}

impl Image {
    fn pixel(&self, x: u32, y: u32) -> [u8; 4] {
        let i = ((y * self.width + x) * 4) as usize;
        [
            self.rgba[i],
            self.rgba[i + 1],
            self.rgba[i + 2],
            self.rgba[i + 3],
        ]
    }

    /// Pixels in the rectangle (fractions of the size) for which `f` holds.
    fn count(&self, (x0, y0, x1, y1): (f32, f32, f32, f32), f: impl Fn([u8; 4]) -> bool) -> usize {
        let (w, h) = (self.width as f32, self.height as f32);
        let mut n = 0;
        for y in (y0 * h) as u32..(y1 * h) as u32 {
            for x in (x0 * w) as u32..(x1 * w) as u32 {
                if f(self.pixel(x, y)) {
                    n += 1;
                }
            }
        }
        n
    }
}

fn decode_png(bytes: &[u8]) -> Image {
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG: {:?}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
    );
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("PNG header");
    let mut buf = vec![0; reader.output_buffer_size().expect("PNG size")];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    buf.truncate(info.buffer_size());
    let rgba = match info.color_type {
        png::ColorType::Rgba => buf,
        png::ColorType::Rgb => buf
            .chunks(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    Image {
        width: info.width,
        height: info.height,
        rgba,
    }
}

fn is_red(p: [u8; 4]) -> bool {
    p[0] > 180 && p[1] < 110 && p[2] < 110
}

/// Uploads `pdf` with `query` and waits for the document to finish; returns
/// its id and final status.
async fn stamp(
    server: &Server,
    query: &str,
    name: &str,
    pdf: Vec<u8>,
) -> (String, serde_json::Value) {
    let ids = server
        .upload_ok(query, &[Part::pdf("file", name, pdf)])
        .await;
    assert_eq!(ids.len(), 1);
    let status = server.wait_finished(&ids[0]).await;
    (ids[0].clone(), status)
}

async fn preview(server: &Server, id: &str) -> Resp {
    server
        .get(&format!("/api/v1/documents/{id}/preview.png"))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_assets_are_served_self_contained() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &[]).await;

    let res = server.get("/").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    let csp = res.header("content-security-policy").expect("a CSP");
    assert!(csp.contains("default-src 'self'"), "{csp}");
    let html = res.text();
    for needle in [
        r#"<input type="file" id="files""#,
        r#"<label class="drop" id="drop" for="files">"#,
        r#"<textarea id="watermark""#,
        r#"<button type="submit" id="submit""#,
        r#"<script src="/assets/app.js" defer></script>"#,
        r#"name="viewport""#,
    ] {
        assert!(html.contains(needle), "the page lacks {needle}");
    }
    // Every spec field the upload route reads has a control on the page.
    for field in [
        "size", "rotation", "opacity", "color", "position", "pages", "layer", "header",
    ] {
        assert!(
            html.contains(&format!(r#"id="{field}" name="{field}""#)),
            "no control for {field}"
        );
    }

    for (path, kind) in [
        ("/assets/app.js", "text/javascript; charset=utf-8"),
        ("/assets/app.css", "text/css; charset=utf-8"),
        ("/assets/icon.svg", "image/svg+xml"),
    ] {
        let res = server.get(path).await;
        assert_eq!(res.status, 200, "{path}: {}", res.text());
        assert_eq!(res.header("content-type").as_deref(), Some(kind), "{path}");
        assert!(res.body.len() > 200, "{path} is suspiciously small");
        // Nothing from other hosts: the page works offline.
        let text = res.text();
        for external in ["https://", "http://", "//cdn", "@import"] {
            assert!(
                !text.contains(external) || (path.ends_with(".svg") && external == "http://"),
                "{path} refers to {external}"
            );
        }
    }
    let js = server.get("/assets/app.js").await.text();
    assert!(js.contains("/api/v1/documents"), "the page uses the API");
    assert!(js.contains("preview.png"), "the page shows previews");
    assert!(js.contains("sessionStorage"), "the page keeps a token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_shows_page_one_with_the_watermark() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &["--stamp-concurrency", "1"]).await;

    // Red and opaque, so the watermark is easy to find in the pixels; the
    // tiny PDF's own text is black, top left.
    let query = format!(
        "watermark={}&color=%23ff0000&opacity=1&rotation=0",
        enc("PREVIEW")
    );
    let (id, status) = stamp(&server, &query, "page.pdf", tiny_pdf("Hello preview")).await;
    assert_eq!(status["status"], "done", "{status}");
    let res = preview(&server, &id).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("content-type").as_deref(), Some("image/png"));
    let img = decode_png(&res.body);
    // 612×792 points: the longest side is scaled to 800 pixels.
    assert!(
        (795..=800).contains(&img.height) && (615..=620).contains(&img.width),
        "{}×{}",
        img.width,
        img.height
    );
    let centre = img.count((0.3, 0.4, 0.7, 0.6), is_red);
    assert!(
        centre > 500,
        "the centre shows the red watermark ({centre} red pixels)"
    );
    let corner = img.count((0.0, 0.8, 0.2, 1.0), is_red);
    assert_eq!(corner, 0, "nothing red in the bottom-left corner");
    let dark = img.count((0.0, 0.0, 0.5, 0.2), |p| {
        p[0] < 80 && p[1] < 80 && p[2] < 80
    });
    assert!(
        dark > 50,
        "the page's own black text is still there ({dark})"
    );

    // The same spec on the same file previews identically (deterministic);
    // another watermark does not.
    let (again, _) = stamp(&server, &query, "page.pdf", tiny_pdf("Hello preview")).await;
    assert_eq!(preview(&server, &again).await.body, res.body);
    let (other, _) = stamp(
        &server,
        "watermark=Something%20else&color=%23ff0000&opacity=1",
        "page.pdf",
        tiny_pdf("Hello preview"),
    )
    .await;
    assert_ne!(preview(&server, &other).await.body, res.body);

    // A real multi-page file: page 1 only, within the size bound.
    let real = std::fs::read(corpus_file("004-")).expect("corpus file");
    let (id, status) = stamp(&server, "watermark=Ricky%20Bobby", "four.pdf", real).await;
    assert_eq!(status["pages"], 4, "{status}");
    let img = decode_png(&preview(&server, &id).await.body);
    assert!(img.width.max(img.height) <= 800 && img.width.min(img.height) > 100);

    // Failed, unknown, not ready: JSON errors.
    let locked = std::fs::read(corpus_file("005-")).expect("corpus file");
    let (id, status) = stamp(&server, "watermark=x", "locked.pdf", locked).await;
    assert_eq!(status["status"], "failed", "{status}");
    preview(&server, &id)
        .await
        .assert_error(422, "password_protected");
    preview(&server, "nosuchdocument")
        .await
        .assert_error(404, "not_found");

    // With one stamping worker and twenty multi-page files ahead of it, the
    // last upload is still waiting when its preview is asked for.
    let big = std::fs::read(corpus_file("009-")).expect("corpus file");
    let parts: Vec<Part> = (0..20)
        .map(|i| Part::pdf("file", &format!("big-{i}.pdf"), big.clone()))
        .collect();
    let ids = server.upload_ok("watermark=busy", &parts).await;
    let last = ids.last().expect("ids");
    let res = preview(&server, last).await;
    res.assert_error(409, "not_ready");
    assert_eq!(res.header("retry-after").as_deref(), Some("1"));
}

const TOKENS: &str = "alpha-token-1,beta-token-2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_tokens_guard_the_api_but_not_health_or_the_page() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &["--api-tokens", TOKENS]).await;
    let pdf = tiny_pdf("Token test");
    let (ct, body) = multipart(&[Part::pdf("file", "t.pdf", pdf.clone())]);
    let upload = |server: &Server| {
        server
            .request(reqwest::Method::POST, "/api/v1/documents?watermark=Secret")
            .header("content-type", ct.clone())
            .body(body.clone())
    };

    // No token: 401 with a Bearer challenge, on every /api route.
    let res = server.send(upload(&server)).await;
    res.assert_error(401, "unauthorized");
    assert_eq!(
        res.header("www-authenticate").as_deref(),
        Some(r#"Bearer realm="peedy""#)
    );
    for path in [
        "/api/v1/documents/nosuchdocument",
        "/api/v1/documents/nosuchdocument/status",
        "/api/v1/documents/nosuchdocument/preview.png",
    ] {
        server.get(path).await.assert_error(401, "unauthorized");
    }
    server
        .delete("/api/v1/documents/nosuchdocument")
        .await
        .assert_error(401, "unauthorized");
    server
        .post("/api/v1/stamp?watermark=x", "application/pdf", pdf.clone())
        .await
        .assert_error(401, "unauthorized");

    // Open: health, readiness, the page, and the dev/null callback sink.
    assert_eq!(server.get("/healthcheck").await.text(), "OK");
    assert_eq!(server.get("/readyz").await.status, 200);
    assert_eq!(server.get("/").await.status, 200);
    assert_eq!(server.get("/assets/app.js").await.status, 200);
    let res = server
        .post("/api/v1/dev/null", "text/plain", b"hi".to_vec())
        .await;
    assert_eq!((res.status, res.text().as_str()), (200, "OK"));

    // Wrong tokens, and the right token under another scheme: 401.
    for wrong in ["alpha-token", "alpha-token-12", "beta-token-2 ", "x"] {
        server.set_token(Some(wrong));
        let res = server.send(upload(&server)).await;
        if wrong == "beta-token-2 " {
            // Surrounding blanks are not part of a token.
            assert_eq!(res.status, 200, "{}", res.text());
            continue;
        }
        res.assert_error(401, "invalid_token");
        assert_eq!(
            res.header("www-authenticate").as_deref(),
            Some(r#"Bearer realm="peedy", error="invalid_token""#)
        );
    }
    server.set_token(None);
    let res = server
        .send(upload(&server).header("authorization", "Basic YWxwaGEtdG9rZW4tMTo="))
        .await;
    res.assert_error(401, "unauthorized");

    // Either token works, with the scheme in any case, on every route.
    let res = server
        .send(upload(&server).header("authorization", "bearer alpha-token-1"))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    server.set_token(Some("beta-token-2"));
    let ids = server
        .upload_ok(
            "watermark=Secret",
            &[Part::pdf("file", "t.pdf", pdf.clone())],
        )
        .await;
    let status = server.wait_finished(&ids[0]).await;
    assert_eq!(status["status"], "done", "{status}");
    let stamped = server.download(&ids[0]).await;
    support::assert_stamped(&stamped, "Secret", Some("Token test"));
    assert_eq!(preview(&server, &ids[0]).await.status, 200);
    let res = server
        .post(
            "/api/v1/stamp?watermark=Sync",
            "application/pdf",
            pdf.clone(),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        server
            .delete(&format!("/api/v1/documents/{}", ids[0]))
            .await
            .status,
        204
    );
    // An unknown id with a good token is a 404 again, not a 401.
    server
        .get("/api/v1/documents/nosuchdocument/status")
        .await
        .assert_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_tokens_from_a_file_and_the_environment() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("tokens.txt");
    std::fs::write(&file, "# deploy tokens\n\n  from-file-1  \nfrom-file-2\n").expect("write");
    let file_arg = file.to_str().expect("utf-8 path");
    let server = Server::start(dir.path(), &["--api-token-file", file_arg]).await;
    server
        .get("/api/v1/documents/x/status")
        .await
        .assert_error(401, "unauthorized");
    for token in ["from-file-1", "from-file-2"] {
        server.set_token(Some(token));
        server
            .get("/api/v1/documents/x/status")
            .await
            .assert_error(404, "not_found");
    }
    server.set_token(Some("# deploy tokens"));
    server
        .get("/api/v1/documents/x/status")
        .await
        .assert_error(401, "invalid_token");

    // Asking for tokens and getting none fails closed, before listening.
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "# nothing yet\n\n").expect("write");
    for (args, env) in [
        (
            vec!["--api-token-file", empty.to_str().expect("path")],
            None,
        ),
        (vec!["--api-token-file", "/nonexistent/peedy-tokens"], None),
        (vec!["--api-tokens", "good,has space"], None),
        (vec![], Some("one,,two")),
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_peedy"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("refused"))
            .args(&args)
            .env_remove("PEEDY_API_TOKENS")
            .env_remove("PEEDY_API_TOKEN_FILE")
            .stdin(Stdio::null());
        if let Some(v) = env {
            cmd.env("PEEDY_API_TOKENS", v);
        }
        let out = cmd.output().expect("run peedy serve");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("token"),
            "{args:?} {env:?}: {:?}\n{stderr}",
            out.status
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("listening"),
            "{args:?}: it must not start"
        );
    }
}
