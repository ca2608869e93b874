//! Delivery against a real HTTP receiver on 127.0.0.1: the body and its
//! signature, what each answer means, the breaker and the SSRF guard.

mod receiver;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac as _};
use peedy_callbacks::{
    BreakerConfig, BreakerState, CallbackConfig, Deliverer, Delivery, Outcome, Part, PartStream,
    UrlError,
};
use receiver::{Receiver, Reply};
use sha2::Sha256;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Loopback allowed (the receiver is on 127.0.0.1), short timeout.
fn config() -> CallbackConfig {
    CallbackConfig {
        allow_loopback: true,
        timeout: Duration::from_secs(5),
        ..CallbackConfig::default()
    }
}

fn deliverer(config: CallbackConfig) -> Deliverer {
    Deliverer::new(config).expect("valid config")
}

/// The stamped PDF as two files: an "input" large enough to take many read
/// chunks, and an "update". Returns the files and their concatenation.
fn pdf_parts(dir: &tempfile::TempDir) -> (Vec<Arc<dyn Part>>, Vec<u8>) {
    let mut input = b"%PDF-1.7\n".to_vec();
    // Not valid PDF, and deliberately full of CR LF and dashes, the bytes
    // multipart framing is made of.
    for i in 0..40_000u32 {
        input.extend_from_slice(format!("\r\n--{i}--\r\n").as_bytes());
    }
    let update = b"\n1 0 obj\n<< /Stamped true >>\nendobj\n%%EOF\n".to_vec();
    let a = dir.path().join("input.pdf");
    let b = dir.path().join("update.bin");
    std::fs::write(&a, &input).expect("write input");
    std::fs::write(&b, &update).expect("write update");
    let mut whole = input;
    whole.extend_from_slice(&update);
    (vec![file_part(a), file_part(b)], whole)
}

fn file_part(path: PathBuf) -> Arc<dyn Part> {
    Arc::new(path)
}

/// A part that is not a file (as a blob in a database is): bytes in uneven
/// pieces, counting how often it is opened.
#[derive(Debug)]
struct PiecesPart {
    pieces: Vec<bytes::Bytes>,
    opens: AtomicUsize,
}

#[async_trait::async_trait]
impl Part for PiecesPart {
    async fn size(&self) -> std::io::Result<u64> {
        Ok(self.pieces.iter().map(|p| p.len() as u64).sum())
    }

    async fn open(&self) -> std::io::Result<PartStream> {
        self.opens.fetch_add(1, Ordering::SeqCst);
        let pieces = self.pieces.clone().into_iter().map(Ok);
        Ok(Box::pin(futures_util::stream::iter(pieces)))
    }
}

fn delivery<'a>(url: &'a str, parts: &'a [Arc<dyn Part>]) -> Delivery<'a> {
    Delivery {
        url,
        webhook_id: "msg_2f7c9a",
        document_id: "doc_91ab44",
        filename: "licensed \"copy\".pdf",
        parts,
    }
}

/// The `webhook-signature` a receiver expects for delivery `msg_2f7c9a`
/// signed with [`SECRET`], computed independently of the crate.
fn expected_signature(timestamp: &str, body: &[u8]) -> String {
    let key = BASE64
        .decode(SECRET.trim_start_matches("whsec_"))
        .expect("base64 secret");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(format!("msg_2f7c9a.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

/// A received multipart body, parsed by an independent parser.
struct Form {
    file: Vec<u8>,
    file_name: Option<String>,
    file_type: Option<String>,
    id: String,
    field_names: Vec<String>,
}

async fn parse_form(headers: &axum::http::HeaderMap, body: bytes::Bytes) -> Form {
    let content_type = headers["content-type"].to_str().expect("ascii");
    let boundary = multer::parse_boundary(content_type).expect("multipart content type");
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut form = Form {
        file: Vec::new(),
        file_name: None,
        file_type: None,
        id: String::new(),
        field_names: Vec::new(),
    };
    while let Some(field) = multipart.next_field().await.expect("well-formed multipart") {
        let name = field.name().unwrap_or_default().to_owned();
        form.field_names.push(name.clone());
        match name.as_str() {
            "file" => {
                form.file_name = field.file_name().map(str::to_owned);
                form.file_type = field.content_type().map(|m| m.to_string());
                form.file = field.bytes().await.expect("file part").to_vec();
            }
            "id" => form.id = field.text().await.expect("id part"),
            other => panic!("unexpected field {other}"),
        }
    }
    form
}

// --- The body and its signature -------------------------------------------

#[tokio::test]
async fn delivers_the_concatenated_files_as_multipart_with_a_valid_signature() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (parts, whole) = pdf_parts(&dir);
    let deliverer = deliverer(CallbackConfig {
        secret: Some(SECRET.into()),
        user_agent: "Peedy-test/1".into(),
        ..config()
    });
    let url = receiver.url("/hooks/peedy?tenant=7");

    let outcome = deliverer.deliver(&delivery(&url, &parts)).await;

    assert_eq!(outcome, Outcome::Delivered { status: 200 });
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.path, "/hooks/peedy");
    let h = &request.headers;
    assert_eq!(h["user-agent"], "Peedy-test/1");
    // Sent with an exact length, not chunked.
    assert_eq!(h["content-length"], request.body.len().to_string().as_str());
    assert!(h.get("transfer-encoding").is_none());

    // The Standard Webhooks headers, verified as a receiver would.
    assert_eq!(h["webhook-id"], "msg_2f7c9a");
    let timestamp = h["webhook-timestamp"].to_str().expect("ascii");
    let ts: u64 = timestamp.parse().expect("unix seconds");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    assert!(ts.abs_diff(now) < 300, "timestamp {ts} vs now {now}");
    assert_eq!(
        h["webhook-signature"],
        expected_signature(timestamp, &request.body).as_str()
    );

    let form = parse_form(h, request.body.clone()).await;
    assert_eq!(form.field_names, ["file", "id"]);
    assert_eq!(form.file_name.as_deref(), Some("licensed %22copy%22.pdf"));
    assert_eq!(form.file_type.as_deref(), Some("application/pdf"));
    assert_eq!(form.file.len(), whole.len());
    assert!(
        form.file == whole,
        "file bytes differ from the concatenation"
    );
    assert_eq!(form.id, "doc_91ab44");
}

/// Parts that are streams rather than files (blobs in a database): the body
/// is their concatenation, read once to sign and once to send.
#[tokio::test]
async fn streamed_parts_are_signed_and_sent_whole() {
    let receiver = Receiver::start().await;
    let input: Vec<bytes::Bytes> = (0..7u8)
        .map(|i| bytes::Bytes::from(vec![b'0' + i; 1000 + 333 * usize::from(i)]))
        .collect();
    let update = vec![bytes::Bytes::from_static(b"\r\n--update--\r\n%%EOF\n")];
    let mut whole = Vec::new();
    for piece in input.iter().chain(&update) {
        whole.extend_from_slice(piece);
    }
    let first = Arc::new(PiecesPart {
        pieces: input,
        opens: AtomicUsize::new(0),
    });
    let second = Arc::new(PiecesPart {
        pieces: update,
        opens: AtomicUsize::new(0),
    });
    let parts: Vec<Arc<dyn Part>> = vec![first.clone(), second.clone()];
    let deliverer = deliverer(CallbackConfig {
        secret: Some(SECRET.into()),
        ..config()
    });
    let url = receiver.url("/hook");

    let outcome = deliverer.deliver(&delivery(&url, &parts)).await;

    assert_eq!(outcome, Outcome::Delivered { status: 200 });
    assert_eq!(first.opens.load(Ordering::SeqCst), 2);
    assert_eq!(second.opens.load(Ordering::SeqCst), 2);
    let request = &receiver.requests()[0];
    assert_eq!(
        request.headers["content-length"],
        request.body.len().to_string().as_str()
    );
    let timestamp = request.headers["webhook-timestamp"]
        .to_str()
        .expect("ascii");
    assert_eq!(
        request.headers["webhook-signature"],
        expected_signature(timestamp, &request.body).as_str()
    );
    let form = parse_form(&request.headers, request.body.clone()).await;
    assert!(
        form.file == whole,
        "file bytes differ from the concatenation"
    );
}

#[tokio::test]
async fn without_a_secret_no_webhook_headers_are_sent() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (parts, whole) = pdf_parts(&dir);
    let url = receiver.url("/");

    let outcome = deliverer(config()).deliver(&delivery(&url, &parts)).await;

    assert_eq!(outcome, Outcome::Delivered { status: 200 });
    let request = &receiver.requests()[0];
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        assert!(request.headers.get(name).is_none(), "{name} sent");
    }
    let form = parse_form(&request.headers, request.body.clone()).await;
    assert!(form.file == whole);
    assert_eq!(form.id, "doc_91ab44");
}

#[tokio::test]
async fn a_raw_secret_is_used_as_the_key_bytes() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (parts, _) = pdf_parts(&dir);
    let deliverer = deliverer(CallbackConfig {
        secret: Some("correct horse battery staple".into()),
        ..config()
    });
    let url = receiver.url("/");

    deliverer.deliver(&delivery(&url, &parts)).await;

    let request = &receiver.requests()[0];
    let timestamp = request.headers["webhook-timestamp"]
        .to_str()
        .expect("ascii");
    let mut mac =
        Hmac::<Sha256>::new_from_slice(b"correct horse battery staple").expect("any key length");
    mac.update(format!("msg_2f7c9a.{timestamp}.").as_bytes());
    mac.update(&request.body);
    let expected = format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()));
    assert_eq!(request.headers["webhook-signature"], expected.as_str());
}

#[tokio::test]
async fn a_retry_carries_the_same_webhook_id_and_body() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (parts, _) = pdf_parts(&dir);
    let deliverer = deliverer(CallbackConfig {
        secret: Some(SECRET.into()),
        ..config()
    });
    let url = receiver.url("/");

    receiver.reply(Reply::status(503));
    let first = deliverer.deliver(&delivery(&url, &parts)).await;
    receiver.reply(Reply::status(204));
    let second = deliverer.deliver(&delivery(&url, &parts)).await;

    assert!(
        matches!(
            first,
            Outcome::Retry {
                status: Some(503),
                ..
            }
        ),
        "{first:?}"
    );
    assert_eq!(second, Outcome::Delivered { status: 204 });
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].headers["webhook-id"], "msg_2f7c9a");
    assert_eq!(requests[1].headers["webhook-id"], "msg_2f7c9a");
    assert_eq!(requests[0].body, requests[1].body);
}

#[tokio::test]
async fn a_missing_file_is_retried_without_contacting_the_receiver() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let parts = vec![file_part(dir.path().join("gone.pdf"))];
    let url = receiver.url("/");

    let outcome = deliverer(config()).deliver(&delivery(&url, &parts)).await;

    match outcome {
        Outcome::Retry {
            reason,
            status: None,
            ..
        } => assert!(reason.contains("gone.pdf"), "{reason}"),
        other => panic!("expected Retry, got {other:?}"),
    }
    assert_eq!(receiver.count(), 0);
}

// --- What answers mean ------------------------------------------------------

async fn outcome_for(reply: Reply) -> (Outcome, Receiver) {
    let receiver = Receiver::start().await;
    receiver.reply(reply);
    let dir = tempfile::tempdir().expect("tempdir");
    let (parts, _) = pdf_parts(&dir);
    let url = receiver.url("/hook");
    let outcome = deliverer(config()).deliver(&delivery(&url, &parts)).await;
    (outcome, receiver)
}

#[tokio::test]
async fn a_server_error_is_retried() {
    let (outcome, _) = outcome_for(Reply::status(500)).await;
    match outcome {
        Outcome::Retry {
            reason,
            status: Some(500),
            retry_after: None,
        } => assert!(reason.contains("500"), "{reason}"),
        other => panic!("expected Retry, got {other:?}"),
    }
}

#[tokio::test]
async fn too_many_requests_honours_retry_after_seconds() {
    let (outcome, _) = outcome_for(Reply::status(429).header("retry-after", "7")).await;
    assert!(
        matches!(
            outcome,
            Outcome::Retry { status: Some(429), retry_after: Some(d), .. } if d == Duration::from_secs(7)
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn unavailable_honours_retry_after_as_a_date() {
    let at = SystemTime::now() + Duration::from_secs(3600);
    let (outcome, _) =
        outcome_for(Reply::status(503).header("retry-after", httpdate::fmt_http_date(at))).await;
    match outcome {
        Outcome::Retry {
            status: Some(503),
            retry_after: Some(d),
            ..
        } => assert!(
            d > Duration::from_secs(3500) && d <= Duration::from_secs(3600),
            "{d:?}"
        ),
        other => panic!("expected Retry with retry_after, got {other:?}"),
    }
}

#[tokio::test]
async fn request_timeout_408_is_retried() {
    let (outcome, _) = outcome_for(Reply::status(408)).await;
    assert!(
        matches!(
            outcome,
            Outcome::Retry {
                status: Some(408),
                ..
            }
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn gone_stops() {
    let (outcome, _) = outcome_for(Reply::status(410)).await;
    assert_eq!(outcome, Outcome::Gone);
}

#[tokio::test]
async fn not_found_is_permanent() {
    let (outcome, _) = outcome_for(Reply::status(404)).await;
    match outcome {
        Outcome::Permanent {
            reason,
            status: Some(404),
        } => assert!(reason.contains("404"), "{reason}"),
        other => panic!("expected Permanent, got {other:?}"),
    }
}

#[tokio::test]
async fn a_redirect_is_retried_and_not_followed() {
    let (outcome, receiver) =
        outcome_for(Reply::status(302).header("location", "/elsewhere")).await;
    match outcome {
        Outcome::Retry {
            reason,
            status: Some(302),
            ..
        } => {
            assert!(reason.contains("not followed"), "{reason}");
            assert!(reason.contains("/elsewhere"), "{reason}");
        }
        other => panic!("expected Retry, got {other:?}"),
    }
    let paths: Vec<_> = receiver.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/hook"]);
}

#[tokio::test]
async fn no_answer_within_the_timeout_is_retried() {
    let receiver = Receiver::start().await;
    receiver.reply(Reply::status(200).delay(Duration::from_secs(3)));
    let dir = tempfile::tempdir().expect("tempdir");
    let (parts, _) = pdf_parts(&dir);
    let url = receiver.url("/");
    let deliverer = deliverer(CallbackConfig {
        timeout: Duration::from_millis(300),
        ..config()
    });

    let outcome = deliverer.deliver(&delivery(&url, &parts)).await;

    match outcome {
        Outcome::Retry {
            reason,
            status: None,
            ..
        } => assert!(reason.contains("no answer within 0.3 s"), "{reason}"),
        other => panic!("expected Retry, got {other:?}"),
    }
}

#[tokio::test]
async fn a_closed_port_is_retried() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let dir = tempfile::tempdir().expect("tempdir");
    let (parts, _) = pdf_parts(&dir);
    let url = format!("http://127.0.0.1:{port}/");

    let outcome = deliverer(config()).deliver(&delivery(&url, &parts)).await;

    match outcome {
        Outcome::Retry {
            reason,
            status: None,
            ..
        } => {
            assert!(reason.starts_with("could not connect"), "{reason}");
            assert!(reason.contains("refused"), "{reason}");
        }
        other => panic!("expected Retry, got {other:?}"),
    }
}

// --- The breaker ------------------------------------------------------------

fn fast_breaker() -> CallbackConfig {
    CallbackConfig {
        breaker: BreakerConfig {
            failures: 3,
            window: Duration::from_secs(10),
            open_for: Duration::from_millis(300),
        },
        ..config()
    }
}

#[tokio::test]
async fn the_breaker_opens_after_repeated_failures_and_closes_after_a_good_trial() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (parts, _) = pdf_parts(&dir);
    let url = receiver.url("/");
    let deliverer = deliverer(fast_breaker());
    let host = format!("127.0.0.1:{}", receiver.port);

    receiver.reply(Reply::status(500));
    for _ in 0..3 {
        let outcome = deliverer.deliver(&delivery(&url, &parts)).await;
        assert!(matches!(outcome, Outcome::Retry { .. }), "{outcome:?}");
    }
    let before = SystemTime::now();
    let outcome = deliverer.deliver(&delivery(&url, &parts)).await;
    match outcome {
        Outcome::BreakerOpen { until } => {
            assert!(until > before, "until {until:?} is not ahead");
            assert!(until <= before + Duration::from_millis(300));
        }
        other => panic!("expected BreakerOpen, got {other:?}"),
    }
    assert_eq!(
        receiver.count(),
        3,
        "an open breaker must not contact the host"
    );
    let states = deliverer.breaker_states();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].0, host);
    assert!(
        matches!(states[0].1, BreakerState::Open { .. }),
        "{states:?}"
    );

    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(deliverer.breaker_states(), [(host, BreakerState::HalfOpen)]);
    receiver.reply(Reply::status(200));
    let outcome = deliverer.deliver(&delivery(&url, &parts)).await;
    assert_eq!(outcome, Outcome::Delivered { status: 200 });
    assert_eq!(receiver.count(), 4);
    assert_eq!(deliverer.breaker_states(), []);
    let outcome = deliverer.deliver(&delivery(&url, &parts)).await;
    assert_eq!(outcome, Outcome::Delivered { status: 200 });
}

#[tokio::test]
async fn a_failed_trial_opens_the_breaker_again() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (parts, _) = pdf_parts(&dir);
    let url = receiver.url("/");
    let deliverer = deliverer(fast_breaker());

    receiver.reply(Reply::status(502));
    for _ in 0..3 {
        deliverer.deliver(&delivery(&url, &parts)).await;
    }
    tokio::time::sleep(Duration::from_millis(350)).await;
    let trial = deliverer.deliver(&delivery(&url, &parts)).await;
    assert!(
        matches!(
            trial,
            Outcome::Retry {
                status: Some(502),
                ..
            }
        ),
        "{trial:?}"
    );
    let next = deliverer.deliver(&delivery(&url, &parts)).await;
    assert!(matches!(next, Outcome::BreakerOpen { .. }), "{next:?}");
    assert_eq!(receiver.count(), 4);
}

#[tokio::test]
async fn client_errors_do_not_open_the_breaker() {
    let receiver = Receiver::start().await;
    receiver.reply(Reply::status(404));
    let dir = tempfile::tempdir().expect("tempdir");
    let (parts, _) = pdf_parts(&dir);
    let url = receiver.url("/");
    let deliverer = deliverer(fast_breaker());

    for _ in 0..5 {
        let outcome = deliverer.deliver(&delivery(&url, &parts)).await;
        assert!(matches!(
            outcome,
            Outcome::Permanent {
                status: Some(404),
                ..
            }
        ));
    }
    assert_eq!(receiver.count(), 5);
    assert_eq!(deliverer.breaker_states(), []);
}

#[tokio::test]
async fn breakers_are_per_host() {
    let down = Receiver::start().await;
    let up = Receiver::start().await;
    down.reply(Reply::status(500));
    let dir = tempfile::tempdir().expect("tempdir");
    let (parts, _) = pdf_parts(&dir);
    let deliverer = deliverer(fast_breaker());
    let (down_url, up_url) = (down.url("/"), up.url("/"));

    for _ in 0..4 {
        deliverer.deliver(&delivery(&down_url, &parts)).await;
    }
    let outcome = deliverer.deliver(&delivery(&up_url, &parts)).await;

    assert_eq!(down.count(), 3);
    assert_eq!(outcome, Outcome::Delivered { status: 200 });
}

// --- The SSRF guard -----------------------------------------------------------

fn strict() -> Deliverer {
    deliverer(CallbackConfig {
        allow_loopback: false,
        allow_private: false,
        ..config()
    })
}

async fn refused(deliverer: &Deliverer, url: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let (parts, _) = pdf_parts(&dir);
    match deliverer.deliver(&delivery(url, &parts)).await {
        Outcome::Permanent {
            reason,
            status: None,
        } => reason,
        other => panic!("{url}: expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn loopback_is_refused_unless_allowed() {
    let receiver = Receiver::start().await;
    let url = receiver.url("/");

    let reason = refused(&strict(), &url).await;

    assert!(reason.contains("127.0.0.1"), "{reason}");
    assert!(reason.contains("loopback"), "{reason}");
    assert_eq!(receiver.count(), 0);
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_at_connect_time() {
    let receiver = Receiver::start().await;
    let url = format!("http://localhost:{}/", receiver.port);
    let deliverer = strict();
    // A name passes the upload-time check; what it resolves to is checked
    // when connecting.
    assert_eq!(deliverer.check_url(&url), Ok(()));

    let reason = refused(&deliverer, &url).await;

    assert!(reason.contains("localhost"), "{reason}");
    assert!(reason.contains("loopback"), "{reason}");
    assert_eq!(receiver.count(), 0);
    // A refusal says nothing about the host's health.
    assert_eq!(deliverer.breaker_states(), []);
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_reached_when_loopback_is_allowed() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (parts, _) = pdf_parts(&dir);
    let url = format!("http://localhost:{}/", receiver.port);

    let outcome = deliverer(config()).deliver(&delivery(&url, &parts)).await;

    assert_eq!(outcome, Outcome::Delivered { status: 200 });
    assert_eq!(receiver.count(), 1);
}

#[tokio::test]
async fn ipv4_mapped_loopback_is_refused() {
    let receiver = Receiver::start().await;
    let url = format!("http://[::ffff:127.0.0.1]:{}/", receiver.port);

    let reason = refused(&strict(), &url).await;

    assert!(reason.contains("loopback"), "{reason}");
    assert_eq!(receiver.count(), 0);
}

#[tokio::test]
async fn the_metadata_address_is_refused_even_with_loopback_allowed() {
    for deliverer in [strict(), deliverer(config())] {
        let reason = refused(&deliverer, "http://169.254.169.254/latest/meta-data/").await;
        assert!(reason.contains("169.254.169.254"), "{reason}");
        assert!(reason.contains("metadata"), "{reason}");
    }
    let private = deliverer(CallbackConfig {
        allow_private: true,
        ..config()
    });
    assert_eq!(private.check_url("http://169.254.169.254/"), Ok(()));
}

#[tokio::test]
async fn check_url_rejects_what_can_never_be_a_callback() {
    let d = strict();
    assert_eq!(
        d.check_url("ftp://example.com/file"),
        Err(UrlError::Scheme("ftp".into()))
    );
    assert_eq!(d.check_url("http://"), Err(UrlError::NoHost));
    assert_eq!(
        d.check_url("https://user:secret@example.com/"),
        Err(UrlError::UserInfo)
    );
    assert!(matches!(
        d.check_url("example.com/hook"),
        Err(UrlError::Invalid(_))
    ));
    assert!(matches!(
        d.check_url("http://10.0.0.8/hook"),
        Err(UrlError::RefusedAddress { .. })
    ));
    assert!(matches!(
        d.check_url("http://0.0.0.0:4000/"),
        Err(UrlError::RefusedAddress { .. })
    ));
    assert_eq!(d.check_url("https://shop.example/hooks/peedy"), Ok(()));
    // The message is a sentence for a 400.
    let text = d
        .check_url("ftp://example.com/")
        .expect_err("refused")
        .to_string();
    assert_eq!(text, "callback_url must be an http or https URL, not ftp:");
}

#[tokio::test]
async fn the_unspecified_address_is_refused_even_with_private_allowed() {
    let private = deliverer(CallbackConfig {
        allow_private: true,
        ..config()
    });
    let reason = refused(&private, "http://0.0.0.0:9/").await;
    assert!(reason.contains("unspecified"), "{reason}");
}

#[test]
fn bad_secrets_are_rejected_at_startup() {
    let err = Deliverer::new(CallbackConfig {
        secret: Some("whsec_not*base64".into()),
        ..CallbackConfig::default()
    })
    .expect_err("invalid secret");
    assert!(err.to_string().contains("whsec_"), "{err}");
}

#[tokio::test]
async fn a_read_error_while_sending_is_retried_and_leaves_the_breaker_alone() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // A directory has a length, so measuring passes; reading it fails once
    // the request is under way.
    let parts = vec![file_part(dir.path().to_path_buf())];
    let url = receiver.url("/");
    let deliverer = deliverer(CallbackConfig {
        breaker: BreakerConfig {
            failures: 1,
            ..BreakerConfig::default()
        },
        ..config()
    });

    let outcome = deliverer.deliver(&delivery(&url, &parts)).await;

    match outcome {
        Outcome::Retry {
            reason,
            status: None,
            ..
        } => assert!(
            reason.starts_with("reading the stamped PDF failed"),
            "{reason}"
        ),
        other => panic!("expected Retry, got {other:?}"),
    }
    assert_eq!(deliverer.breaker_states(), []);
}

/// The queue spawns deliveries on a multi-threaded runtime and shares one
/// deliverer between workers.
#[test]
fn deliverers_and_deliveries_can_cross_threads() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>(_: &T) {}
    fn assert_send<T: Send>(_: &T) {}
    let deliverer = deliverer(config());
    assert_send_sync(&deliverer);
    let parts = [file_part(PathBuf::from("x.pdf"))];
    let d = delivery("http://example.invalid/", &parts);
    let future = deliverer.deliver(&d);
    assert_send(&future);
}
