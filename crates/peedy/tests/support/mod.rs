//! The harness of `tests/serve.rs`: the real `peedy serve` binary as a child
//! process on an ephemeral port, a real callback receiver (an axum server in
//! the test process), an HTTP client, and checks of what comes back (MuPDF
//! text, SHA-256, Standard Webhooks signatures).
//!
//! Nothing here sleeps for a fixed time to let something happen: waits poll
//! with a [`Deadline`] and fail with what they last saw.

#![allow(dead_code, unused_imports)] // Each test uses a different part of the harness.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use hmac::Mac as _;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// How long any one wait may take. Generous: the machine is small and shared.
pub const DEADLINE: Duration = Duration::from_secs(60);

// ------------------------------------------------------------------ waiting

/// An overall deadline for a polling loop: `tick` sleeps a little, or fails
/// the test with what the loop last saw once the deadline has passed.
pub struct Deadline {
    what: String,
    until: Instant,
}

impl Deadline {
    /// A deadline [`DEADLINE`] from now for `what`.
    pub fn new(what: impl Into<String>) -> Deadline {
        Deadline::within(what, DEADLINE)
    }

    /// A deadline `limit` from now.
    pub fn within(what: impl Into<String>, limit: Duration) -> Deadline {
        Deadline {
            what: what.into(),
            until: Instant::now() + limit,
        }
    }

    /// Sleeps briefly, or panics when the deadline has passed.
    #[track_caller]
    pub fn tick(&self, last: impl Debug) -> impl Future<Output = ()> {
        assert!(
            Instant::now() < self.until,
            "timed out waiting for {}; last seen: {last:#?}",
            self.what
        );
        tokio::time::sleep(Duration::from_millis(40))
    }
}

// ------------------------------------------------------------------ files

pub use crate::fixture::tiny_pdf;

pub use crate::fixture::corpus_file;

/// SHA-256 as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn tool(name: &str, package: &str) -> Command {
    if Command::new(name).arg("-v").output().is_err() {
        panic!("`{name}` is needed to check the output: apt-get install {package}");
    }
    Command::new(name)
}

/// The text MuPDF extracts from every page of `pdf`.
pub fn pdf_text(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("check.pdf");
    fs::write(&path, pdf).expect("write PDF to check");
    let out = tool("mutool", "mupdf-tools")
        .args(["draw", "-q", "-F", "txt", "-o", "-"])
        .arg(&path)
        .output()
        .expect("run mutool");
    assert!(
        out.status.success(),
        "mutool draw failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fails unless `pdf` is a PDF whose text shows `watermark` (and `original`,
/// text the input had).
#[track_caller]
pub fn assert_stamped(pdf: &[u8], watermark: &str, original: Option<&str>) {
    assert!(
        pdf.starts_with(b"%PDF"),
        "not a PDF: {:?}",
        String::from_utf8_lossy(&pdf[..pdf.len().min(200)])
    );
    let text = pdf_text(pdf);
    assert!(
        text.contains(watermark),
        "the PDF should show the watermark {watermark:?}; its text is:\n{text}"
    );
    if let Some(original) = original {
        assert!(
            text.contains(original),
            "the PDF should still show {original:?}; its text is:\n{text}"
        );
    }
}

/// `peedy stamp IN --text TEXT -o -`: the CLI's output for the same input,
/// for determinism checks.
pub fn cli_stamp(input: &Path, text: &str) -> Vec<u8> {
    let out = peedy_command()
        .args(["stamp"])
        .arg(input)
        .args(["--text", text, "-o", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run peedy stamp");
    assert!(
        out.status.success(),
        "peedy stamp {} failed: {}",
        input.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The binary, with no `PEEDY_*` settings inherited from the developer's
/// environment.
pub fn peedy_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_peedy"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PEEDY_") {
            cmd.env_remove(key);
        }
    }
    cmd.stdin(Stdio::null());
    cmd
}

// ------------------------------------------------------------------ multipart

/// One part of a multipart upload.
#[derive(Clone, Debug)]
pub struct Part {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    data: Vec<u8>,
}

impl Part {
    /// A plain form field.
    pub fn field(name: &str, value: &str) -> Part {
        Part {
            name: name.into(),
            filename: None,
            content_type: None,
            data: value.as_bytes().to_vec(),
        }
    }

    /// A file part.
    pub fn file(name: &str, filename: &str, content_type: &str, data: Vec<u8>) -> Part {
        Part {
            name: name.into(),
            filename: Some(filename.into()),
            content_type: Some(content_type.into()),
            data,
        }
    }

    /// A file part with content type `application/pdf`.
    pub fn pdf(name: &str, filename: &str, data: Vec<u8>) -> Part {
        Part::file(name, filename, "application/pdf", data)
    }
}

const BOUNDARY: &str = "peedy-test-7c1e0b9a4d2f";

/// The `Content-Type` and body of a `multipart/form-data` request.
pub fn multipart(parts: &[Part]) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{}\"", part.name);
        if let Some(f) = &part.filename {
            disposition.push_str(&format!("; filename=\"{f}\""));
        }
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(b"\r\n");
        if let Some(ct) = &part.content_type {
            body.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&part.data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

/// Percent-encodes a query parameter value.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ------------------------------------------------------------------ HTTP

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    /// The body as JSON, or a failure showing what it was.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "expected JSON ({e}), got HTTP {} {:?}",
                self.status,
                self.text()
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// Fails unless this is an error of the original's shape, `{title, code,
    /// detail}`, with `status` and `code`; returns the detail.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> String {
        assert_eq!(
            self.status,
            status,
            "expected HTTP {status}: {}",
            self.text()
        );
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "error bodies are JSON: {:?}",
            self.headers
        );
        let v = self.json();
        assert_eq!(v["code"], code, "error code in {v}");
        let title = v["title"].as_str().unwrap_or_default();
        assert!(!title.is_empty(), "error without a title: {v}");
        let detail = v["detail"].as_str().unwrap_or_default().to_owned();
        assert!(!detail.is_empty(), "error without a detail: {v}");
        detail
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("build the HTTP client")
}

// ------------------------------------------------------------------ the server

static SERVERS: AtomicUsize = AtomicUsize::new(0);

/// A running `peedy serve`, killed when dropped.
pub struct Server {
    child: Mutex<Child>,
    exited: Option<ExitStatus>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// `http://ADDR`.
    pub base: String,
    dir: PathBuf,
    log: PathBuf,
    http: reqwest::Client,
    /// Sent as `Authorization: Bearer` with every request when set.
    token: Mutex<Option<String>>,
}

/// The metadata database a test target runs `peedy serve` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: SQLite (and blobs) under `--data-dir`.
    Sqlite,
    /// A real PostgreSQL started by the harness (one server per test binary,
    /// one database per test directory): `--database-url postgres://…`.
    Postgres,
}

/// The PostgreSQL database of each test directory, so a server restarted in
/// the same directory finds its data again.
static DATABASES: Mutex<Vec<(PathBuf, String)>> = Mutex::new(Vec::new());

/// The database URL for `dir`, made on first use.
pub async fn postgres_url_for(dir: &Path) -> String {
    if let Some((_, url)) = DATABASES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|(d, _)| d == dir)
    {
        return url.clone();
    }
    let pg = tokio::task::spawn_blocking(peedy_testkit::PgServer::shared)
        .await
        .expect("start PostgreSQL");
    let url = pg.fresh_database().await;
    DATABASES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((dir.to_owned(), url.clone()));
    url
}

impl Server {
    /// [`start`](Self::start) on `backend`: for PostgreSQL with
    /// `--database-url` of `dir`'s own database.
    pub async fn start_on(backend: Backend, dir: &Path, args: &[&str]) -> Server {
        match backend {
            Backend::Sqlite => Server::start(dir, args).await,
            Backend::Postgres => {
                let url = postgres_url_for(dir).await;
                let mut all: Vec<&str> = vec!["--database-url", &url];
                all.extend_from_slice(args);
                Server::start(dir, &all).await
            }
        }
    }

    /// Starts `peedy serve --listen 127.0.0.1:0 --data-dir DIR/data ARGS…`
    /// with its log in `DIR/server-N.log`, and waits for its "listening"
    /// line.
    pub async fn start(dir: &Path, args: &[&str]) -> Server {
        let dir = dir.to_owned();
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        tokio::task::spawn_blocking(move || Server::start_blocking(&dir, &args))
            .await
            .expect("start the server")
    }

    fn start_blocking(dir: &Path, args: &[String]) -> Server {
        let n = SERVERS.fetch_add(1, Ordering::Relaxed);
        let log = dir.join(format!("server-{n}.log"));
        let log_file = fs::File::create(&log).expect("create the server log");
        let mut child = peedy_command()
            .env("NO_COLOR", "1")
            .env("PEEDY_LOG", "info")
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.join("data"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("spawn peedy serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Reads stdout to its end, so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    // Nobody listens any more; keep draining.
                }
            }
        });
        let line = match rx.recv_timeout(DEADLINE) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "peedy serve did not say where it listens ({e}); its log:\n{}",
                    fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        let addr: SocketAddr = line
            .strip_prefix("peedy listening on http://")
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line on stdout: {line:?}"));
        Server {
            child: Mutex::new(child),
            exited: None,
            addr,
            base: format!("http://{addr}"),
            dir: dir.to_owned(),
            log,
            http: client(),
            token: Mutex::new(None),
        }
    }

    /// The data directory (`--data-dir`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn child(&self) -> MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How the process is doing, for failure messages.
    fn process_state(&self) -> String {
        match self.child().try_wait() {
            Ok(None) => "still running".into(),
            Ok(Some(status)) => format!("exited: {status}"),
            Err(e) => format!("unknown ({e})"),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child().id()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.exited.is_none() && matches!(self.child().try_wait(), Ok(None))
    }

    /// SIGKILL, and reap it.
    pub fn kill(&mut self) {
        if self.exited.is_none() {
            let mut child = self.child();
            let _ = child.kill();
            let exited = child.wait().ok();
            drop(child);
            self.exited = exited;
        }
    }

    /// SIGTERM, then waits for the exit status.
    pub async fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
        let deadline = Deadline::new("peedy serve to exit after SIGTERM");
        loop {
            let exited = self.child().try_wait().expect("poll the child");
            match exited {
                Some(status) => {
                    self.exited = Some(status);
                    return status;
                }
                None => deadline.tick("still running").await,
            }
        }
    }

    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends every later request with `Authorization: Bearer TOKEN`, or
    /// with no `Authorization` header (`None`).
    pub fn set_token(&self, token: Option<&str>) {
        *self.token.lock().unwrap_or_else(|p| p.into_inner()) = token.map(str::to_owned);
    }

    /// Sends `req` (with the token of [`Server::set_token`], if any) and
    /// reads the whole response.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let token = self.token.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let req = match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let res = req.send().await.unwrap_or_else(|e| {
            panic!(
                "request to peedy failed: {e:?}\nthe server is {}; its log:\n{}",
                self.process_state(),
                self.log()
            )
        });
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.bytes().await.expect("read the response body").to_vec();
        Resp {
            status,
            headers,
            body,
        }
    }

    /// A request to `path` to add headers to; send it with [`Server::send`].
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path))
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.http.get(self.url(path))).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Resp {
        self.send(self.http.delete(self.url(path))).await
    }

    /// `POST path` with a body.
    pub async fn post(&self, path: &str, content_type: &str, body: Vec<u8>) -> Resp {
        self.send(
            self.http
                .post(self.url(path))
                .header("content-type", content_type)
                .body(body),
        )
        .await
    }

    /// `POST path` with a body, returning the transport error instead of
    /// failing (for uploads the server may cut short).
    pub async fn try_post(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Resp, reqwest::Error> {
        let res = self
            .http
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await?;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.bytes().await?.to_vec();
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    /// `POST /api/v1/documents?QUERY` with `parts`.
    pub async fn upload(&self, query: &str, parts: &[Part]) -> Resp {
        let (ct, body) = multipart(parts);
        let path = if query.is_empty() {
            "/api/v1/documents".to_owned()
        } else {
            format!("/api/v1/documents?{query}")
        };
        self.post(&path, &ct, body).await
    }

    /// Uploads and returns the new document ids, failing unless it was a 200.
    pub async fn upload_ok(&self, query: &str, parts: &[Part]) -> Vec<String> {
        let res = self.upload(query, parts).await;
        assert_eq!(res.status, 200, "upload refused: {}", res.text());
        res.json()["documents"]
            .as_array()
            .expect("documents array")
            .iter()
            .map(|d| d["id"].as_str().expect("document id").to_owned())
            .collect()
    }

    /// `GET /api/v1/documents/ID/status` as JSON (200 expected).
    pub async fn status(&self, id: &str) -> Value {
        let res = self.get(&format!("/api/v1/documents/{id}/status")).await;
        assert_eq!(res.status, 200, "status of {id}: {}", res.text());
        res.json()
    }

    /// Waits until the document is `done` or `failed`; returns its status.
    pub async fn wait_finished(&self, id: &str) -> Value {
        let deadline = Deadline::new(format!("document {id} to finish"));
        loop {
            let s = self.status(id).await;
            if s["status"] == "done" || s["status"] == "failed" {
                return s;
            }
            deadline.tick(&s).await;
        }
    }

    /// Waits until every document is done and its callback delivered;
    /// returns their statuses.
    pub async fn wait_delivered(&self, ids: &[String]) -> Vec<Value> {
        self.wait_delivered_within(ids, DEADLINE).await
    }

    /// [`Server::wait_delivered`] with a deadline of `limit`.
    pub async fn wait_delivered_within(&self, ids: &[String], limit: Duration) -> Vec<Value> {
        let deadline = Deadline::within("every document done and delivered", limit);
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            loop {
                let s = self.status(id).await;
                assert_ne!(s["status"], "failed", "document failed: {s}");
                assert_ne!(
                    s["callback"]["delivery"]["state"], "failed",
                    "delivery failed: {s}"
                );
                if s["status"] == "done" && s["callback"]["delivery"]["state"] == "delivered" {
                    out.push(s);
                    break;
                }
                deadline.tick(&s).await;
            }
        }
        out
    }

    /// The stamped PDF of a done document (200 expected).
    pub async fn download(&self, id: &str) -> Vec<u8> {
        let res = self.get(&format!("/api/v1/documents/{id}")).await;
        assert_eq!(res.status, 200, "download of {id}: {}", res.text());
        res.body
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!(
                "---- last lines of {} ----\n{}",
                self.log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}

// ------------------------------------------------------------------ the receiver

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub headers: HeaderMap,
    /// The raw body, as signed.
    pub body: Bytes,
    /// What the receiver answered.
    pub answered: u16,
    /// The `id` form field.
    pub id: Option<String>,
    /// The `file` part's filename.
    pub filename: Option<String>,
    /// The `file` part's content type.
    pub file_type: Option<String>,
    /// The `file` part's bytes.
    pub file: Option<Bytes>,
}

impl Received {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

#[derive(Debug, Default)]
struct Behaviour {
    /// Answer 500 to the next this many requests.
    fail_next: usize,
    /// Answer 500 to everything.
    failing: bool,
    /// Wait this long before answering (after recording the request).
    delay: Duration,
    received: Vec<Received>,
}

/// A callback receiver on `127.0.0.1`: records every request and answers 200,
/// or 500 while told to fail.
#[derive(Clone)]
pub struct Receiver {
    state: Arc<Mutex<Behaviour>>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Receiver {
    /// A receiver on a fresh ephemeral port.
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        Receiver::serve(listener)
    }

    /// A receiver on `addr` (a port reserved earlier and let go).
    pub async fn start_on(addr: SocketAddr) -> Receiver {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("bind the receiver on {addr}: {e}"));
        Receiver::serve(listener)
    }

    fn serve(listener: tokio::net::TcpListener) -> Receiver {
        let addr = listener.local_addr().expect("receiver address");
        let receiver = Receiver {
            state: Arc::new(Mutex::new(Behaviour::default())),
            addr,
        };
        let app = Router::new()
            .route("/hook", post(hook))
            .route("/answer/{status}", post(answer))
            .layer(DefaultBodyLimit::disable())
            .with_state(receiver.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        receiver
    }

    fn lock(&self) -> MutexGuard<'_, Behaviour> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The callback URL.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// A callback URL that always answers `status` (requests are recorded).
    pub fn url_answering(&self, status: u16) -> String {
        format!("http://{}/answer/{status}", self.addr)
    }

    /// Answer 500 to everything (`true`) or 200 (`false`).
    pub fn set_failing(&self, failing: bool) {
        self.lock().failing = failing;
    }

    /// Answer 500 to the next `n` requests.
    pub fn fail_next(&self, n: usize) {
        self.lock().fail_next = n;
    }

    /// Wait this long before each answer.
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// How many requests so far.
    pub fn count(&self) -> usize {
        self.lock().received.len()
    }

    /// The successful deliveries (answered 200) so far.
    pub fn delivered(&self) -> Vec<Received> {
        self.lock()
            .received
            .iter()
            .filter(|r| r.answered == 200)
            .cloned()
            .collect()
    }
}

async fn hook(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let (id, filename, file_type, file) = parse_callback(&headers, body.clone()).await;
    let (status, delay) = {
        let mut b = receiver.lock();
        let status = if b.failing {
            500
        } else if b.fail_next > 0 {
            b.fail_next -= 1;
            500
        } else {
            200
        };
        b.received.push(Received {
            at: Instant::now(),
            headers,
            body,
            answered: status,
            id,
            filename,
            file_type,
            file,
        });
        (status, b.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

async fn answer(
    State(receiver): State<Receiver>,
    axum::extract::Path(status): axum::extract::Path<u16>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let (id, filename, file_type, file) = parse_callback(&headers, body.clone()).await;
    receiver.lock().received.push(Received {
        at: Instant::now(),
        headers,
        body,
        answered: status,
        id,
        filename,
        file_type,
        file,
    });
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

type Parsed = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<Bytes>,
);

/// The `id` field and the `file` part of a callback body.
async fn parse_callback(headers: &HeaderMap, body: Bytes) -> Parsed {
    let mut out: Parsed = (None, None, None, None);
    let Some(boundary) = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| multer::parse_boundary(ct).ok())
    else {
        return out;
    };
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut mp = multer::Multipart::new(stream, boundary);
    while let Ok(Some(field)) = mp.next_field().await {
        let name = field.name().unwrap_or_default().to_owned();
        let filename = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(ToString::to_string);
        let Ok(bytes) = field.bytes().await else {
            break;
        };
        match name.as_str() {
            "id" => out.0 = Some(String::from_utf8_lossy(&bytes).into_owned()),
            "file" => {
                out.1 = filename;
                out.2 = content_type;
                out.3 = Some(bytes);
            }
            _ => {}
        }
    }
    out
}

/// Fails unless `r` carries a valid Standard Webhooks signature with `key`
/// over its raw body: `v1,base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))`.
#[track_caller]
pub fn assert_signed(r: &Received, key: &[u8]) {
    let id = r.header("webhook-id").expect("webhook-id header");
    let ts = r
        .header("webhook-timestamp")
        .expect("webhook-timestamp header");
    let sig = r
        .header("webhook-signature")
        .expect("webhook-signature header");
    let ts_secs: u64 = ts.parse().expect("webhook-timestamp is Unix seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    assert!(
        ts_secs.abs_diff(now) < 300,
        "webhook-timestamp {ts_secs} is not close to now ({now})"
    );
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC key");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(&r.body);
    let expected = format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()));
    assert!(
        sig.split(' ').any(|s| s == expected),
        "webhook-signature {sig:?} does not verify (expected {expected:?})"
    );
}

/// A loopback address nothing listens on (reserved, then let go), for a
/// receiver that is down and comes up later.
pub fn unused_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("address")
}

// ------------------------------------------------------------------ corpus loads

/// Real PDFs of different kinds from the shared corpus.
pub fn corpus_mix() -> Vec<PathBuf> {
    [
        "001-", "002-", "003-", "004-", "006-", "010-", "011-", "017-", "021-", "026-",
    ]
    .iter()
    .map(|p| corpus_file(p))
    .collect()
}

/// Uploads `requests` × `per_request` corpus files; returns (id, input path).
pub async fn upload_corpus(
    server: &Server,
    query: &str,
    requests: usize,
    per_request: usize,
) -> Vec<(String, PathBuf)> {
    let files = corpus_mix();
    let mut out = Vec::new();
    for r in 0..requests {
        let chosen: Vec<PathBuf> = (0..per_request)
            .map(|j| files[(r * per_request + j) % files.len()].clone())
            .collect();
        let parts: Vec<Part> = chosen
            .iter()
            .map(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("x.pdf");
                Part::pdf("file", name, std::fs::read(p).expect("read corpus file"))
            })
            .collect();
        let ids = server.upload_ok(query, &parts).await;
        assert_eq!(ids.len(), per_request);
        out.extend(ids.into_iter().zip(chosen));
    }
    out
}

/// Every document's download equals `peedy stamp` of its input, and its
/// callback delivered those bytes (deduplicated by webhook-id).
pub async fn assert_all_stamped_and_delivered(
    server: &Server,
    receiver: &Receiver,
    docs: &[(String, PathBuf)],
    wm: &str,
    statuses: &[Value],
) {
    let mut expected: HashMap<PathBuf, Vec<u8>> = HashMap::new();
    let delivered = receiver.delivered();
    let mut by_webhook: BTreeMap<String, Vec<&Received>> = BTreeMap::new();
    for r in &delivered {
        let wid = r
            .header("webhook-id")
            .expect("signed callbacks carry webhook-id");
        by_webhook.entry(wid).or_default().push(r);
    }
    assert_eq!(
        by_webhook.len(),
        docs.len(),
        "one webhook-id per document delivered"
    );
    for ((id, input), s) in docs.iter().zip(statuses) {
        assert_eq!(s["status"], "done", "{s}");
        let want = expected
            .entry(input.clone())
            .or_insert_with(|| cli_stamp(input, wm));
        let got = server.download(id).await;
        assert!(
            got == *want,
            "{id} ({}) differs from `peedy stamp` of the same input",
            input.display()
        );
        assert_eq!(server.download(id).await, got, "downloads are stable");
        let wid = s["callback"]["delivery"]["webhook_id"]
            .as_str()
            .expect("webhook_id");
        let copies = by_webhook
            .get(wid)
            .unwrap_or_else(|| panic!("no callback delivered for {id}"));
        for r in copies {
            assert_eq!(r.id.as_deref(), Some(id.as_str()));
            assert!(
                r.file.as_deref() == Some(got.as_slice()),
                "the callback for {id} carried other bytes"
            );
        }
    }
}
