//! What an operator sees of a running `peedy serve`: the OpenAPI description
//! and its docs page, Prometheus metrics, JSON logs. The real binary on an
//! ephemeral port, a real callback receiver (see `support/`).

mod fixture;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;
use support::{Deadline, Part, Receiver, Server, corpus_file, enc, tiny_pdf};

/// Short job timings, so lease expiry happens within a test.
const FAST: &[&str] = &[
    "--lease-secs",
    "2",
    "--retry-base-secs",
    "0.2",
    "--retry-max-secs",
    "1",
];

/// Every route the router serves, as (method, path template). The served
/// OpenAPI description must list exactly these.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthcheck"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("post", "/api/v1/documents"),
    ("get", "/api/v1/documents/{id}"),
    ("delete", "/api/v1/documents/{id}"),
    ("get", "/api/v1/documents/{id}/status"),
    ("get", "/api/v1/documents/{id}/preview.png"),
    ("post", "/api/v1/stamp"),
    ("get", "/api/v1/cluster"),
    ("post", "/api/v1/dev/null"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/docs"),
];

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// True when `res` is the router's own 404 or 405 (no route, or no such
/// method on it), not an answer of a handler.
fn is_router_fallback(res: &support::Resp) -> bool {
    match res.status {
        405 => true,
        404 => {
            serde_json::from_slice::<Value>(&res.body).is_ok_and(|v| v["detail"] == "No such route")
        }
        _ => false,
    }
}

async fn request(server: &Server, method: &str, path: &str) -> support::Resp {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("HTTP client");
    let method: reqwest::Method = method.to_uppercase().parse().expect("method");
    let res = http
        .request(method, server.url(path))
        .send()
        .await
        .expect("request to peedy");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.bytes().await.expect("body").to_vec();
    support::Resp {
        status,
        headers,
        body,
    }
}

/// The served OpenAPI 3.1 description lists exactly the router's routes, and
/// every path and method in it reaches a handler; the docs page renders it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_description_matches_the_routes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), FAST).await;

    let res = server.get("/api/v1/openapi.json").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(
        res.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{:?}",
        res.headers
    );
    let spec = res.json();
    assert!(
        spec["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "OpenAPI 3.1 expected: {}",
        spec["openapi"]
    );
    let mut served = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                served.insert((method.to_owned(), path.clone()));
            }
        }
    }
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(served, expected, "the spec's operations are the routes");

    // The detector below tells the router's fallbacks from handlers.
    assert!(is_router_fallback(
        &request(&server, "get", "/api/v1/nope").await
    ));
    assert!(is_router_fallback(
        &request(&server, "put", "/api/v1/stamp").await
    ));
    assert!(!is_router_fallback(
        &request(&server, "get", "/api/v1/documents/unknown").await
    ));
    for (method, path) in &served {
        let concrete = path.replace("{id}", "doesnotexist");
        let res = request(&server, method, &concrete).await;
        assert!(
            !is_router_fallback(&res),
            "{method} {path} is documented but not routed: HTTP {} {}",
            res.status,
            res.text()
        );
        assert!(res.status < 500, "{method} {path}: HTTP {}", res.status);
    }

    // Found by schemathesis: an id that is not UTF-8 was a plain-text 400.
    for (method, path) in [
        ("get", "/api/v1/documents/%FF/status"),
        ("get", "/api/v1/documents/%FF"),
        ("delete", "/api/v1/documents/%C3%28"),
    ] {
        request(&server, method, path)
            .await
            .assert_error(404, "not_found");
    }

    // What the description says about the shapes.
    let schemas = spec["components"]["schemas"]
        .as_object()
        .expect("components.schemas");
    for name in ["ErrorBody", "Created", "DocumentStatus", "Delivery"] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    let error = &schemas["ErrorBody"];
    let mut fields: Vec<&str> = error["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["code", "detail", "title"]);
    let upload = &spec["paths"]["/api/v1/documents"]["post"];
    let statuses: BTreeSet<&str> = upload["responses"]
        .as_object()
        .expect("responses")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        statuses,
        BTreeSet::from(["200", "400", "401", "413", "503"])
    );
    // Token-guarded routes declare the (optional) bearer scheme and their
    // 401; the callback sink and the probes stay open.
    assert_eq!(
        upload["security"],
        serde_json::json!([{ "bearer": [] }, {}])
    );
    assert_eq!(
        spec["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let dev_null = &spec["paths"]["/api/v1/dev/null"]["post"];
    assert!(dev_null.get("security").is_none(), "{dev_null}");
    assert!(dev_null["responses"].get("401").is_none(), "{dev_null}");
    assert!(
        spec["paths"]["/healthcheck"]["get"]
            .get("security")
            .is_none()
    );
    assert!(
        upload["responses"]["503"]["headers"]
            .get("Retry-After")
            .is_some()
    );
    assert!(
        upload["requestBody"]["content"]
            .get("multipart/form-data")
            .is_some()
    );
    let params: BTreeSet<&str> = upload["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for p in ["watermark", "callback_url", "opacity", "pages"] {
        assert!(params.contains(p), "upload parameter {p} undocumented");
    }
    let download = &spec["paths"]["/api/v1/documents/{id}"]["get"]["responses"];
    assert!(download["200"]["content"].get("application/pdf").is_some());
    assert!(download["202"]["headers"].get("Retry-After").is_some());

    let page = server.get("/api/v1/docs").await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .is_some_and(|c| c.starts_with("text/html")),
        "{:?}",
        page.headers
    );
    let html = page.text();
    assert!(html.contains("fetch(\"openapi.json\")"), "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains("//cdn"),
        "the docs page must load nothing from elsewhere"
    );
}

/// Parses the OpenMetrics text into `name{labels}` → value.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("series and value");
            (
                series.to_owned(),
                value
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in {l:?}")),
            )
        })
        .collect()
}

#[track_caller]
fn metric(m: &BTreeMap<String, f64>, series: &str) -> f64 {
    *m.get(series)
        .unwrap_or_else(|| panic!("{series} missing from\n{m:#?}"))
}

async fn scrape(server: &Server) -> BTreeMap<String, f64> {
    let res = server.get("/metrics").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(
        res.header("content-type")
            .is_some_and(|c| c.starts_with("application/openmetrics-text")),
        "{:?}",
        res.headers
    );
    parse_metrics(&res.text())
}

/// After a known load — three good uploads with callbacks, one PDF the
/// engine refuses, two unknown ids, one unknown route — every number adds up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_add_up_after_a_known_load() {
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::start().await;
    let server = Server::start(dir.path(), FAST).await;

    let before = scrape(&server).await;
    assert_eq!(
        metric(
            &before,
            "peedy_callback_attempts_total{outcome=\"delivered\"}"
        ),
        0.0
    );
    assert_eq!(metric(&before, "peedy_documents{state=\"done\"}"), 0.0);

    let query = format!(
        "watermark={}&callback_url={}",
        enc("Counted"),
        enc(&receiver.url())
    );
    let four = std::fs::read(corpus_file("004-")).expect("corpus file");
    let uploads = [
        Part::pdf("file", "a.pdf", tiny_pdf("one")),
        Part::pdf("file", "b.pdf", four),
        Part::pdf("file", "c.pdf", tiny_pdf("three")),
    ];
    let mut ids = Vec::new();
    for part in uploads {
        ids.extend(server.upload_ok(&query, &[part]).await);
    }
    // Starts with %PDF, so it is accepted; the engine refuses it.
    let bad = b"%PDF-1.7\nthis is not really a PDF\n".to_vec();
    let bad_id = server
        .upload_ok(&query, &[Part::pdf("file", "bad.pdf", bad)])
        .await;
    let mut status_requests = 0;
    let mut pages = 0.0;
    for id in ids.iter().chain(&bad_id) {
        let deadline = Deadline::new(format!("{id} finished and delivered"));
        loop {
            let s = server.status(id).await;
            status_requests += 1;
            let finished = s["status"] == "failed"
                || (s["status"] == "done" && s["callback"]["delivery"]["state"] == "delivered");
            if finished {
                pages += s["pages"].as_f64().unwrap_or(0.0);
                break;
            }
            deadline.tick(&s).await;
        }
    }
    assert_eq!(pages, 6.0, "1 + 4 + 1 pages");
    assert_eq!(server.status(&bad_id[0]).await["status"], "failed");
    status_requests += 1;
    for _ in 0..2 {
        let res = server.get("/api/v1/documents/doesnotexist/status").await;
        res.assert_error(404, "not_found");
    }
    assert_eq!(server.get("/no/such/route").await.status, 404);

    let m = scrape(&server).await;
    let req = |method: &str, route: &str, status: u16| {
        format!(
            "peedy_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}}"
        )
    };
    assert_eq!(metric(&m, &req("POST", "/api/v1/documents", 200)), 4.0);
    assert_eq!(
        metric(&m, &req("GET", "/api/v1/documents/{id}/status", 200)),
        f64::from(status_requests)
    );
    assert_eq!(
        metric(&m, &req("GET", "/api/v1/documents/{id}/status", 404)),
        2.0
    );
    assert_eq!(metric(&m, &req("GET", "unmatched", 404)), 1.0);
    assert_eq!(metric(&m, &req("GET", "/metrics", 200)), 1.0);
    assert_eq!(
        metric(
            &m,
            "peedy_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/documents\"}"
        ),
        4.0
    );
    assert!(
        m.keys()
            .all(|k| !k.contains("doesnotexist") && ids.iter().all(|id| !k.contains(id.as_str()))),
        "routes are templates, never raw paths"
    );

    assert_eq!(metric(&m, "peedy_documents{state=\"done\"}"), 3.0);
    assert_eq!(metric(&m, "peedy_documents{state=\"failed\"}"), 1.0);
    assert_eq!(metric(&m, "peedy_documents{state=\"queued\"}"), 0.0);
    assert_eq!(metric(&m, "peedy_stamp_pages_sum{via=\"job\"}"), 6.0);
    assert_eq!(metric(&m, "peedy_stamp_pages_count{via=\"job\"}"), 3.0);
    assert_eq!(
        metric(&m, "peedy_stamp_duration_seconds_count{via=\"job\"}"),
        3.0
    );
    assert_eq!(metric(&m, "peedy_stamp_failures_total{via=\"job\"}"), 1.0);
    let attempts = |outcome: &str| {
        metric(
            &m,
            &format!("peedy_callback_attempts_total{{outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(attempts("delivered"), 3.0);
    for outcome in ["retry", "permanent", "gone", "breaker_open"] {
        assert_eq!(attempts(outcome), 0.0, "{outcome}");
    }
    assert_eq!(receiver.delivered().len(), 3);
    for queue in ["stamp", "callback"] {
        for state in ["queued", "running"] {
            assert_eq!(
                metric(
                    &m,
                    &format!("peedy_queue_jobs{{queue=\"{queue}\",state=\"{state}\"}}")
                ),
                0.0
            );
        }
        assert_eq!(
            metric(
                &m,
                &format!("peedy_queue_oldest_available_job_age_seconds{{queue=\"{queue}\"}}")
            ),
            0.0
        );
    }
    // The refused PDF's job failed for good and stays for inspection.
    assert_eq!(
        metric(&m, "peedy_queue_jobs{queue=\"stamp\",state=\"failed\"}"),
        1.0
    );
    assert!(
        !m.keys().any(|k| k.starts_with("peedy_jobs_rescued_total")),
        "nothing was rescued: {m:#?}"
    );
}

/// A callback in flight when the process is SIGKILLed: the next process
/// rescues its job once the lease expires, delivers, and counts one rescue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rescued_job_is_counted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::start().await;
    receiver.set_delay(Duration::from_secs(30));
    let mut server = Server::start(dir.path(), FAST).await;
    let query = format!(
        "watermark={}&callback_url={}",
        enc("Rescued"),
        enc(&receiver.url())
    );
    let ids = server
        .upload_ok(&query, &[Part::pdf("file", "r.pdf", tiny_pdf("rescue me"))])
        .await;
    let deadline = Deadline::new("the callback to arrive");
    while receiver.count() == 0 {
        deadline.tick(receiver.count()).await;
    }
    server.kill();
    receiver.set_delay(Duration::ZERO);

    let server = Server::start(dir.path(), FAST).await;
    server.wait_delivered(&ids).await;
    let m = scrape(&server).await;
    assert_eq!(
        metric(&m, "peedy_jobs_rescued_total{queue=\"callback\"}"),
        1.0
    );
    assert!(!m.contains_key("peedy_jobs_rescued_total{queue=\"stamp\"}"));
    assert_eq!(
        metric(&m, "peedy_callback_attempts_total{outcome=\"delivered\"}"),
        1.0
    );
    assert_eq!(receiver.count(), 2, "delivered again after the rescue");
}

/// With `--log-format json`, the job's lines of a document carry the id of
/// the request that uploaded it: an incoming `x-request-id` is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_request_id_into_the_jobs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::start().await;
    let args: Vec<&str> = FAST
        .iter()
        .copied()
        .chain(["--log-format", "json"])
        .collect();
    let server = Server::start(dir.path(), &args).await;
    let request_id = "req-observability-4711";
    let (content_type, body) =
        support::multipart(&[Part::pdf("file", "log.pdf", tiny_pdf("logged"))]);
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("HTTP client");
    let url = server.url(&format!(
        "/api/v1/documents?watermark=Logged&callback_url={}",
        enc(&receiver.url())
    ));
    let res = http
        .post(url)
        .header("content-type", content_type)
        .header("x-request-id", request_id)
        .body(body)
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some(request_id),
        "the server keeps an incoming request id"
    );
    let json: Value = serde_json::from_slice(&res.bytes().await.expect("body")).expect("JSON");
    let id = json["documents"][0]["id"]
        .as_str()
        .expect("document id")
        .to_owned();
    server.wait_delivered(std::slice::from_ref(&id)).await;

    // The line is written after the delivery is recorded: wait for it.
    let deadline = Deadline::new("the callback's log line");
    let lines = loop {
        let lines: Vec<Value> = server
            .log()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if lines
            .iter()
            .any(|l| l["fields"]["message"] == "callback delivered")
        {
            break lines;
        }
        deadline.tick(server.log()).await;
    };
    // The document's span, wherever the formatter puts it.
    let document_span = |line: &Value| -> Option<Value> {
        line["spans"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == "document")
            .cloned()
    };
    let stamped: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(&format!("Stamped {id} (1 pages) in ")))
        })
        .collect();
    assert_eq!(stamped.len(), 1, "one Stamped line for {id}");
    for (what, line) in [
        ("Stamped", stamped[0]),
        (
            "callback delivered",
            lines
                .iter()
                .find(|l| l["fields"]["message"] == "callback delivered")
                .expect("callback line"),
        ),
    ] {
        let span = document_span(line)
            .unwrap_or_else(|| panic!("the {what} line has no document span: {line}"));
        assert_eq!(span["request_id"], request_id, "{what}: {line}");
        assert_eq!(span["document_id"], id.as_str(), "{what}: {line}");
    }
}
