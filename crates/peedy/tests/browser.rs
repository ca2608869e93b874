//! The web page at `/` in a real browser: Debian's headless Chromium, driven
//! through chromedriver (W3C WebDriver, with `fantoccini`), against the real
//! `peedy serve` with an API token. A person's path through the page: choose
//! three files (a real PDF, a password-protected one, one that is not a PDF),
//! type the watermark, press Watermark, give the token the page asks for,
//! watch each file end (done, failed, refused — in words), see the preview,
//! download the result and compare it byte for byte with `peedy stamp`.
//! Screenshots at desktop and phone width go to `target/screenshots/`.
//!
//! Needs `chromium` and `chromedriver` (Debian `chromium chromium-driver`,
//! as `.ci/run` installs); without them the test fails with the hint.

mod fixture;
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use support::{Deadline, Server, assert_stamped, cli_stamp, corpus_file, unused_addr};

const TOKEN: &str = "browser-token-7f3a";
const WATERMARK: &str = "Licensed to Ricky Bobby";
const INSTALL: &str = "apt-get install -y --no-install-recommends chromium chromium-driver";

/// The Chromium binary (Debian's wrapper script execs this one).
fn chromium_binary() -> PathBuf {
    for p in ["/usr/lib/chromium/chromium", "/usr/bin/chromium"] {
        if Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    panic!("Chromium is needed for the browser test and is not installed: {INSTALL}");
}

/// A chromedriver process, and the Chromium it started, ended when dropped.
struct Driver {
    child: Child,
    url: String,
    profile: PathBuf,
}

impl Driver {
    async fn start(dir: &Path) -> Driver {
        let port = unused_addr().port();
        let log = dir.join("chromedriver.log");
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("chromedriver is needed for the browser test ({e}): {INSTALL}")
            });
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            profile: dir.join("chromium-profile"),
        };
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("HTTP client");
        let deadline = Deadline::new("chromedriver to be ready");
        loop {
            let ready = match http.get(format!("{}/status", driver.url)).send().await {
                Ok(res) => res
                    .bytes()
                    .await
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                    .is_some_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            };
            if ready {
                return driver;
            }
            deadline
                .tick(fs::read_to_string(&log).unwrap_or_default())
                .await;
        }
    }

    async fn browser(&self, downloads: &Path) -> Client {
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium_binary(),
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    "--hide-scrollbars",
                    format!("--user-data-dir={}", self.profile.display()),
                    "--window-size=1280,1800",
                ],
                "prefs": {
                    "download.default_directory": downloads,
                    "download.prompt_for_download": false,
                    "download.directory_upgrade": true,
                    "profile.default_content_setting_values.automatic_downloads": 1,
                },
            },
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!("capabilities are an object")
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot start Chromium through chromedriver: {e}"))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Chromium processes of this test's own profile (left behind when a
        // failure skips closing the session), then chromedriver.
        let marker = format!("--user-data-dir={}", self.profile.display());
        if let Ok(procs) = fs::read_dir("/proc") {
            for entry in procs.flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|s| s.parse::<u32>().ok())
                else {
                    continue;
                };
                let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmdline)
                    .split('\0')
                    .any(|a| a == marker)
                {
                    let _ = Command::new("kill").arg(pid.to_string()).status();
                }
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `script` in the page and returns its value.
async fn js(browser: &Client, script: &str) -> Value {
    browser
        .execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

/// Types `text` into the element with id `id` (for a file input: paths).
async fn type_into(browser: &Client, id: &str, text: &str) {
    browser
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no #{id}: {e}"))
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("cannot type into #{id}: {e}"));
}

/// Clicks the element `css` selects.
async fn click(browser: &Client, css: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
}

/// Every file row: name, status and the status text.
async fn rows(browser: &Client) -> Value {
    js(
        browser,
        "return [...document.querySelectorAll('#file-list .file')].map(r => ({
            name: r.querySelector('.file-name').textContent,
            status: r.dataset.status,
            text: r.querySelector('.file-status').textContent,
            preview: (() => { const i = r.querySelector('.preview img');
                return i && i.complete ? [i.naturalWidth, i.naturalHeight] : null; })(),
            previewShown: !r.querySelector('.preview').hidden,
        }));",
    )
    .await
}

fn row<'a>(rows: &'a Value, prefix: &str) -> &'a Value {
    rows.as_array()
        .expect("rows")
        .iter()
        .find(|r| r["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
        .unwrap_or_else(|| panic!("no row for {prefix}: {rows:#}"))
}

fn screenshots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("screenshots");
    fs::create_dir_all(&dir).expect("create target/screenshots");
    dir
}

async fn screenshot(browser: &Client, name: &str) -> PathBuf {
    let png = browser.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let path = screenshots_dir().join(name);
    fs::write(&path, png).expect("write the screenshot");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_stamps_previews_and_downloads_in_chromium() {
    let dir = tempfile::tempdir().expect("temp dir");
    let downloads = dir.path().join("downloads");
    fs::create_dir_all(&downloads).expect("downloads dir");
    let real = corpus_file("004-");
    let locked = corpus_file("005-");
    let fake = dir.path().join("notes.pdf");
    fs::write(&fake, "just some notes, not a PDF at all\n").expect("write the fake");

    let server = Server::start(dir.path(), &["--api-tokens", TOKEN]).await;
    let driver = Driver::start(dir.path()).await;
    let browser = driver.browser(&downloads).await;
    browser
        .set_window_size(1280, 1800)
        .await
        .expect("window size");
    browser.goto(&server.url("/")).await.expect("open the page");
    assert_eq!(
        browser.title().await.expect("title"),
        "Peedy — watermark PDFs"
    );

    // The file input is reachable from the keyboard and is the drop zone.
    let focused = js(
        &browser,
        "document.querySelector('#files').focus(); \
         return [document.activeElement.id, getComputedStyle(document.querySelector('#drop')).outlineStyle];",
    )
    .await;
    assert_eq!(
        focused,
        json!(["files", "solid"]),
        "focus shows on the drop zone"
    );

    // Choose three files at once (chromedriver takes newline-separated paths).
    let paths = [&real, &locked, &fake]
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    type_into(&browser, "files", &paths).await;
    type_into(&browser, "watermark", WATERMARK).await;
    let submit = browser.find(Locator::Id("submit")).await.expect("submit");
    assert_eq!(submit.text().await.expect("label"), "Watermark 3 files");
    submit.click().await.expect("press Watermark");

    // The API answers 401: the page asks for the token and focuses its field.
    let deadline = Deadline::new("the page to ask for the API token");
    loop {
        let asked = js(
            &browser,
            "return !document.querySelector('#token-card').hidden && document.activeElement.id;",
        )
        .await;
        if asked == json!("token") {
            break;
        }
        deadline.tick(asked).await;
    }
    screenshot(&browser, "page-token.png").await;
    type_into(&browser, "token", TOKEN).await;
    click(&browser, "#token-save").await;

    // Each file ends, in words, next to its name; the good one with a preview.
    let deadline = Deadline::new("every file to finish, with a preview");
    let all = loop {
        let all = rows(&browser).await;
        let finished = all
            .as_array()
            .expect("rows")
            .iter()
            .all(|r| matches!(r["status"].as_str(), Some("done" | "failed" | "refused")));
        let previewed = row(&all, "004-")["preview"][0].as_u64().unwrap_or(0) > 0;
        if finished && previewed {
            break all;
        }
        deadline.tick(&all).await;
    };
    let good = row(&all, "004-");
    assert_eq!(good["status"], "done", "{all:#}");
    assert!(
        good["text"]
            .as_str()
            .expect("text")
            .starts_with("Done: 4 pages stamped"),
        "{all:#}"
    );
    let (w, h) = (
        good["preview"][0].as_u64().expect("width"),
        good["preview"][1].as_u64().expect("height"),
    );
    assert!(w > 100 && h > 100 && w.max(h) <= 800, "preview {w}×{h}");
    let bad = row(&all, "005-");
    assert_eq!(bad["status"], "failed", "{all:#}");
    assert!(
        bad["text"]
            .as_str()
            .expect("text")
            .contains("password-protected"),
        "{all:#}"
    );
    let fake_row = row(&all, "notes.pdf");
    assert_eq!(fake_row["status"], "refused", "{all:#}");
    assert!(
        fake_row["text"]
            .as_str()
            .expect("text")
            .starts_with("Not a PDF"),
        "{all:#}"
    );
    assert_eq!(
        js(&browser, "return sessionStorage.getItem('peedy.apiToken');").await,
        json!(TOKEN),
        "the token is kept for the session"
    );
    // The options, opened from their summary, and the larger preview.
    click(&browser, "#options summary").await;
    let zoom = browser
        .find(Locator::Css("#file-list .file[data-status=done] .zoom"))
        .await
        .expect("the preview's zoom button");
    zoom.click().await.expect("enlarge the preview");
    assert_eq!(
        zoom.attr("aria-expanded").await.expect("attr").as_deref(),
        Some("true")
    );
    let desktop = screenshot(&browser, "page-desktop.png").await;

    // Download: the page fetches with the token and saves the file.
    let buttons = browser
        .find_all(Locator::Css(
            "#file-list .file[data-status=done] button.download",
        ))
        .await
        .expect("download buttons");
    assert_eq!(buttons.len(), 1);
    buttons[0].click().await.expect("press Download");
    let name = real
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .replace(".pdf", ".stamped.pdf");
    let target = downloads.join(&name);
    let deadline = Deadline::within("the download to land", Duration::from_secs(60));
    let bytes = loop {
        let listing: Vec<String> = fs::read_dir(&downloads)
            .expect("downloads")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if listing.contains(&name) {
            break fs::read(&target).expect("read the download");
        }
        deadline.tick(listing).await;
    };
    let input = fs::read(&real).expect("read the input");
    assert!(
        bytes.len() > input.len(),
        "the download is the stamped file"
    );
    assert_stamped(&bytes, "Ricky Bobby", None);
    assert!(
        bytes == cli_stamp(&real, WATERMARK),
        "the page's result is byte-identical to `peedy stamp` with the same text"
    );

    // Phone width: one column, nothing wider than the screen.
    browser
        .set_window_size(390, 1800)
        .await
        .expect("phone width");
    let widths = js(
        &browser,
        "return [document.documentElement.clientWidth, document.documentElement.scrollWidth];",
    )
    .await;
    let (client, scroll) = (
        widths[0].as_u64().expect("w"),
        widths[1].as_u64().expect("w"),
    );
    assert!(client <= 400, "the viewport is phone-sized: {widths}");
    assert!(
        scroll <= client,
        "nothing overflows sideways at phone width: {widths}"
    );
    let phone = screenshot(&browser, "page-phone.png").await;

    browser.close().await.expect("close the browser");
    drop(driver);
    eprintln!("screenshots: {} and {}", desktop.display(), phone.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_and_queue_full_are_refused_in_words() {
    let dir = tempfile::tempdir().expect("temp dir");
    let big = corpus_file("009-");
    let small = corpus_file("004-");
    assert!(fs::metadata(&big).expect("size").len() > 1 << 20);
    let server = Server::start(dir.path(), &["--max-upload-bytes", "64K"]).await;
    let driver = Driver::start(dir.path()).await;
    let browser = driver.browser(dir.path()).await;
    browser.goto(&server.url("/")).await.expect("open the page");
    let paths = format!("{}\n{}", big.display(), small.display());
    type_into(&browser, "files", &paths).await;
    type_into(&browser, "watermark", "Too big?").await;
    click(&browser, "#submit").await;
    let deadline = Deadline::new("both files to finish");
    let all = loop {
        let all = rows(&browser).await;
        let finished = all
            .as_array()
            .expect("rows")
            .iter()
            .all(|r| matches!(r["status"].as_str(), Some("done" | "failed" | "refused")));
        if finished {
            break all;
        }
        deadline.tick(&all).await;
    };
    let refused = row(&all, "009-");
    assert_eq!(refused["status"], "refused", "{all:#}");
    let text = refused["text"].as_str().expect("text");
    assert!(
        text.starts_with("Too large:") && text.contains("64 KB"),
        "{all:#}"
    );
    assert_eq!(row(&all, "004-")["status"], "done", "{all:#}");
    screenshot(&browser, "page-too-large.png").await;

    // A server whose queue is full (nothing may wait) answers 503: the page
    // says the server is busy and offers to try again.
    let busy_dir = dir.path().join("busy");
    fs::create_dir_all(&busy_dir).expect("dir");
    let busy = Server::start(&busy_dir, &["--max-queued", "0"]).await;
    browser.goto(&busy.url("/")).await.expect("open the page");
    // This time the file is dropped on the drop zone (a synthetic drop: the
    // page's handler sees the same event a real one makes).
    let dropped = js(
        &browser,
        "const dt = new DataTransfer();
         dt.items.add(new File(['%PDF-1.4 dropped'], 'dropped.pdf', { type: 'application/pdf' }));
         const zone = document.querySelector('#drop');
         zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
         const highlighted = zone.classList.contains('dragging');
         zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
         return [highlighted, zone.classList.contains('dragging'),
                 [...document.querySelectorAll('#file-list .file-name')].map(n => n.textContent)];",
    )
    .await;
    assert_eq!(
        dropped,
        json!([true, false, ["dropped.pdf"]]),
        "the drop adds the file"
    );
    type_into(&browser, "watermark", "Busy?").await;
    click(&browser, "#submit").await;
    let deadline = Deadline::new("the busy answer");
    let all = loop {
        let all = rows(&browser).await;
        if all[0]["status"] == "refused" {
            break all;
        }
        deadline.tick(&all).await;
    };
    let text = all[0]["text"].as_str().expect("text");
    assert!(
        text.starts_with("The server is busy") && text.contains("Try again in 5 s"),
        "{all:#}"
    );
    let retry = browser
        .find(Locator::Css("#file-list .file .retry"))
        .await
        .expect("the retry button");
    assert!(
        retry.is_displayed().await.expect("displayed"),
        "a Try again button"
    );
    browser.close().await.expect("close the browser");
}
