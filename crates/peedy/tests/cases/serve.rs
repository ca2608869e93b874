use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::{
    Backend, Deadline, Part, Receiver, Server, assert_all_stamped_and_delivered, assert_signed,
    assert_stamped, cli_stamp, corpus_file, enc, multipart, postgres_url_for, sha256_hex, tiny_pdf,
    unused_addr, upload_corpus,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;

/// Starts `peedy serve` on this target's backend (`super::BACKEND`).
async fn start(dir: &std::path::Path, args: &[&str]) -> Server {
    Server::start_on(super::BACKEND, dir, args).await
}

/// What interrupted uploads left behind: temporary files in the blob
/// directory (SQLite), or staging rows and chunks in the database, where
/// blobs live by default on PostgreSQL (and then no blob directory exists).
async fn upload_leftovers(server: &Server, dir: &std::path::Path) -> Vec<String> {
    let blob_dir = server.data_dir().join("blobs");
    match super::BACKEND {
        Backend::Sqlite => std::fs::read_dir(blob_dir.join("tmp"))
            .expect("the blob directory's tmp/")
            .filter_map(Result::ok)
            .map(|e| e.path().display().to_string())
            .collect(),
        Backend::Postgres => {
            assert!(!blob_dir.exists(), "blobs went to {}", blob_dir.display());
            let pool = sqlx::PgPool::connect(&postgres_url_for(dir).await)
                .await
                .expect("connect to the test database");
            let left = sqlx::query_scalar(
                "SELECT key FROM blob_staging
                 UNION SELECT blob_key FROM blob_chunks
                 WHERE blob_key NOT IN (SELECT sha256 FROM blobs)",
            )
            .fetch_all(&pool)
            .await
            .expect("query the blob tables");
            pool.close().await;
            left
        }
    }
}

/// Short job timings, so retries and lease expiry happen within a test.
const FAST: &[&str] = &[
    "--lease-secs",
    "2",
    "--retry-base-secs",
    "0.2",
    "--retry-max-secs",
    "1",
    "--breaker-open-secs",
    "1",
];

fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(extra).copied().collect()
}

/// A Standard Webhooks secret (`whsec_` + base64 of 32 bytes) and its key.
fn webhook_secret() -> (String, Vec<u8>) {
    let key: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    (format!("whsec_{}", BASE64.encode(&key)), key)
}

fn ids_of(res: &Value) -> Vec<String> {
    res["documents"]
        .as_array()
        .expect("documents array")
        .iter()
        .map(|d| d["id"].as_str().expect("document id").to_owned())
        .collect()
}

fn delivery(status: &Value) -> &Value {
    &status["callback"]["delivery"]
}

/// The original's routes and Peedy's additions, one document through its
/// whole life: upload, 202 while waiting, the stamped PDF, `/status`, the
/// callback, delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_originals_contract_holds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::start().await;
    let server = start(dir.path(), FAST).await;

    let res = server.get("/healthcheck").await;
    assert_eq!((res.status, res.text().as_str()), (200, "OK"));
    let res = server
        .post(
            "/api/v1/dev/null",
            "text/plain",
            b"anything at all".to_vec(),
        )
        .await;
    assert_eq!((res.status, res.text().as_str()), (200, "OK"));
    let res = server.get("/readyz").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["status"], "ready");

    let original = "Hello from the contract test";
    let input = tiny_pdf(original);

    // No watermark: 400 with the original's error shape.
    let res = server
        .upload("", &[Part::pdf("file", "book.pdf", input.clone())])
        .await;
    let detail = res.assert_error(400, "missing_params");
    assert!(detail.contains("atermark"), "{detail}");
    let res = server
        .upload(
            &format!("callback_url={}", enc(&receiver.url())),
            &[Part::pdf("file", "book.pdf", input.clone())],
        )
        .await;
    res.assert_error(400, "missing_params");

    // Unknown ids: 404 JSON, whether or not they look like ids.
    for id in ["nosuchdocument", &"a".repeat(26), "abc%2F..%2Fetc"] {
        server
            .get(&format!("/api/v1/documents/{id}"))
            .await
            .assert_error(404, "not_found");
        server
            .get(&format!("/api/v1/documents/{id}/status"))
            .await
            .assert_error(404, "not_found");
    }

    // The upload.
    let wm = "Licensed to Ricky Bobby";
    let res = server
        .upload(
            &format!(
                "watermark={}&callback_url={}",
                enc(wm),
                enc(&receiver.url())
            ),
            &[Part::pdf("file", "book.pdf", input.clone())],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    let docs = v["documents"].as_array().expect("documents");
    assert_eq!(docs.len(), 1, "{v}");
    let id = docs[0]["id"].as_str().expect("id").to_owned();
    assert!(id.len() >= 20, "ids are long and random: {id}");
    assert_eq!(docs[0]["filename"], "book.pdf");
    assert_eq!(
        docs[0]["status_url"],
        format!("/api/v1/documents/{id}/status")
    );
    assert_eq!(docs[0]["download_url"], format!("/api/v1/documents/{id}"));
    assert_eq!(v["skipped"], serde_json::json!([]), "{v}");

    // The download: 202 + Retry-After + status JSON until done, then the PDF.
    let deadline = Deadline::new("the stamped PDF");
    let res = loop {
        let res = server.get(&format!("/api/v1/documents/{id}")).await;
        match res.status {
            200 => break res,
            202 => {
                let retry: u64 = res
                    .header("retry-after")
                    .expect("202 carries Retry-After")
                    .parse()
                    .expect("Retry-After in seconds");
                assert!((1..=60).contains(&retry), "Retry-After {retry}");
                let s = res.json();
                assert_eq!(s["id"], id.as_str());
                assert!(s["status"] == "queued" || s["status"] == "running", "{s}");
                deadline.tick(s).await;
            }
            other => panic!("download answered {other}: {}", res.text()),
        }
    };
    assert_eq!(
        res.header("content-type").as_deref(),
        Some("application/pdf")
    );
    let disposition = res.header("content-disposition").expect("disposition");
    assert_eq!(disposition, "attachment; filename=\"book.pdf\"");
    assert_eq!(
        res.header("content-length").as_deref(),
        Some(res.body.len().to_string().as_str())
    );
    let pdf = res.body;
    assert_stamped(&pdf, wm, Some(original));
    assert!(
        pdf.starts_with(&input),
        "the stamp is an incremental update appended to the upload"
    );
    assert_eq!(server.download(&id).await, pdf, "downloads are stable");

    // /status, once the callback is delivered.
    let s = server
        .wait_delivered(std::slice::from_ref(&id))
        .await
        .remove(0);
    assert_eq!(s["id"], id.as_str());
    assert_eq!(s["status"], "done");
    assert_eq!(s["filename"], "book.pdf");
    assert_eq!(s["pages"], 1);
    assert_eq!(s["stamped_pages"], 1);
    assert_eq!(s["input"]["size"], input.len());
    assert_eq!(s["input"]["sha256"], sha256_hex(&input));
    assert_eq!(s["output"]["size"], pdf.len());
    assert_eq!(s["output"]["sha256"], sha256_hex(&pdf));
    assert_eq!(s["error"], Value::Null);
    assert_eq!(s["callback"]["url"], receiver.url());
    let d = delivery(&s);
    assert_eq!(d["state"], "delivered", "{s}");
    assert_eq!(d["attempts"], 1, "{s}");
    assert_eq!(d["last_status"], 200, "{s}");
    assert!(d["delivered_at_ms"].as_i64().is_some(), "{s}");
    let t = &s["timings"];
    let created = t["created_at_ms"].as_i64().expect("created_at_ms");
    let finished = t["finished_at_ms"].as_i64().expect("finished_at_ms");
    assert!(finished >= created, "{t}");

    // The callback: the original's shape, `file` + `id`.
    let got = receiver.delivered();
    assert_eq!(got.len(), 1, "one delivery: {got:?}");
    assert_eq!(got[0].id.as_deref(), Some(id.as_str()));
    assert_eq!(got[0].filename.as_deref(), Some("book.pdf"));
    assert_eq!(got[0].file_type.as_deref(), Some("application/pdf"));
    assert_eq!(got[0].file.as_deref(), Some(pdf.as_slice()));
    assert_eq!(
        got[0].header("webhook-signature"),
        None,
        "unsigned without a secret"
    );

    // DELETE: 204, then it is gone.
    let res = server.delete(&format!("/api/v1/documents/{id}")).await;
    assert_eq!(res.status, 204, "{}", res.text());
    server
        .get(&format!("/api/v1/documents/{id}"))
        .await
        .assert_error(404, "not_found");
    server
        .get(&format!("/api/v1/documents/{id}/status"))
        .await
        .assert_error(404, "not_found");
    server
        .delete(&format!("/api/v1/documents/{id}"))
        .await
        .assert_error(404, "not_found");

    // Two documents of the same bytes share blobs; deleting one leaves the
    // other whole.
    let res = server
        .upload(
            &format!("watermark={}", enc(wm)),
            &[
                Part::pdf("a", "twin-a.pdf", input.clone()),
                Part::pdf("b", "twin-b.pdf", input.clone()),
            ],
        )
        .await;
    let twins = ids_of(&res.json());
    assert_eq!(twins.len(), 2);
    for id in &twins {
        assert_eq!(server.wait_finished(id).await["status"], "done");
    }
    let first = server.download(&twins[0]).await;
    assert_eq!(first, pdf, "same input, same spec: same output");
    let res = server
        .delete(&format!("/api/v1/documents/{}", twins[0]))
        .await;
    assert_eq!(res.status, 204);
    assert_eq!(server.download(&twins[1]).await, pdf);

    // Unknown routes and methods are JSON too.
    server
        .get("/api/v1/nope")
        .await
        .assert_error(404, "not_found");
    server
        .delete("/healthcheck")
        .await
        .assert_error(405, "method_not_allowed");
    let res = server.get("/readyz").await;
    assert_eq!(res.status, 200);
}

/// Parameters as form fields instead of the query string; part names that
/// mean nothing; three PDFs and a text file in one request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_fields_and_several_files_in_one_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::start().await;
    let server = start(dir.path(), FAST).await;
    let wm = "Form Field Mark";
    let originals = ["First document", "Second document", "Third document"];
    let parts = [
        Part::pdf("a", "one.pdf", tiny_pdf(originals[0])),
        Part::field("watermark", wm),
        Part::pdf("files[]", "two.pdf", tiny_pdf(originals[1])),
        Part::file(
            "notes",
            "notes.txt",
            "text/plain",
            b"%PDF but not really".to_vec(),
        ),
        Part::field("color", "#cc0000"),
        Part::field("callback_url", &receiver.url()),
        Part::pdf("", "three.pdf", tiny_pdf(originals[2])),
    ];
    let res = server.upload("", &parts).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    let ids = ids_of(&v);
    assert_eq!(ids.len(), 3, "{v}");
    let names: Vec<&str> = v["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .map(|d| d["filename"].as_str().expect("filename"))
        .collect();
    assert_eq!(names, ["one.pdf", "two.pdf", "three.pdf"]);
    let skipped = v["skipped"].as_array().expect("skipped");
    assert_eq!(skipped.len(), 1, "{v}");
    assert_eq!(skipped[0]["filename"], "notes.txt");
    let reason = skipped[0]["reason"].as_str().expect("reason");
    assert!(
        reason.contains("not a PDF") && reason.contains("text/plain"),
        "{reason}"
    );
    assert_eq!(
        BTreeSet::from_iter(ids.iter()).len(),
        3,
        "distinct ids: {ids:?}"
    );

    let statuses = server.wait_delivered(&ids).await;
    for ((id, original), s) in ids.iter().zip(originals).zip(&statuses) {
        assert_eq!(s["pages"], 1, "{s}");
        let pdf = server.download(id).await;
        assert_stamped(&pdf, wm, Some(original));
        let got: Vec<_> = receiver
            .delivered()
            .into_iter()
            .filter(|r| r.id.as_deref() == Some(id.as_str()))
            .collect();
        assert_eq!(got.len(), 1, "one callback for {id}");
        assert_eq!(got[0].file.as_deref(), Some(pdf.as_slice()));
    }

    // The query string works as well, and a form field wins over it.
    let res = server
        .upload(
            &format!("watermark={}", enc("Query Mark")),
            &[Part::pdf("q", "q.pdf", tiny_pdf("Query input"))],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let id = ids_of(&res.json()).remove(0);
    assert_eq!(server.wait_finished(&id).await["status"], "done");
    assert_stamped(&server.download(&id).await, "Query Mark", None);
    let res = server
        .upload(
            &format!("watermark={}", enc("Query Loses")),
            &[
                Part::field("watermark", "Field Wins"),
                Part::pdf("q", "q.pdf", tiny_pdf("Precedence input")),
            ],
        )
        .await;
    let id = ids_of(&res.json()).remove(0);
    assert_eq!(server.wait_finished(&id).await["status"], "done");
    let text = crate::support::pdf_text(&server.download(&id).await);
    assert!(
        text.contains("Field Wins") && !text.contains("Query Loses"),
        "{text}"
    );
}

/// Non-PDFs, malformed uploads, damaged and encrypted PDFs, oversized files
/// and bad specs: each a clear 4xx or a failed status with the reason, and
/// the service stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_clear_answers_and_the_service_stays_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = start(
        dir.path(),
        &with(FAST, &["--max-upload-bytes", "100K", "--max-files", "3"]),
    )
    .await;
    let wm = "Bad Input Mark";
    let q = format!("watermark={}", enc(wm));
    let good = tiny_pdf("A good document");

    // Says application/pdf, is not one: skipped; alone, 400 "No PDFs received".
    let fake = Part::pdf("file", "fake.pdf", b"GIF89a not a pdf at all".to_vec());
    let res = server.upload(&q, std::slice::from_ref(&fake)).await;
    let detail = res.assert_error(400, "no_pdfs");
    assert!(detail.starts_with("No PDFs received"), "{detail}");
    assert!(
        detail.contains("fake.pdf") && detail.contains("%PDF"),
        "{detail}"
    );
    let res = server
        .upload(
            &q,
            &[fake.clone(), Part::pdf("file", "good.pdf", good.clone())],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    assert_eq!(ids_of(&v).len(), 1, "{v}");
    assert_eq!(v["skipped"][0]["filename"], "fake.pdf");
    assert!(
        v["skipped"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("%PDF")),
        "{v}"
    );
    // Only text parts, or nothing at all.
    let res = server
        .upload(
            &q,
            &[Part::file("f", "a.txt", "text/plain", b"hello".to_vec())],
        )
        .await;
    let detail = res.assert_error(400, "no_pdfs");
    assert!(detail.contains("text/plain"), "{detail}");
    let res = server.upload(&q, &[]).await;
    assert_eq!(res.assert_error(400, "no_pdfs"), "No PDFs received");

    // %PDF and then garbage: accepted, then failed with the reason.
    let mut garbage = b"%PDF-1.7\n".to_vec();
    garbage.extend((0..4000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let ids = server
        .upload_ok(&q, &[Part::pdf("f", "garbage.pdf", garbage)])
        .await;
    let s = server.wait_finished(&ids[0]).await;
    assert_eq!(s["status"], "failed", "{s}");
    let code = s["error"]["code"].as_str().expect("error code").to_owned();
    assert!(
        code == "damaged_pdf" || code == "not_a_pdf",
        "a damaged PDF's code: {s}"
    );
    assert!(
        s["error"]["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{s}"
    );
    server
        .get(&format!("/api/v1/documents/{}", ids[0]))
        .await
        .assert_error(422, &code);

    // The password-protected corpus file: failed, password_protected.
    let locked = std::fs::read(corpus_file("005-")).expect("read 005");
    let ids = server
        .upload_ok(&q, &[Part::pdf("f", "locked.pdf", locked)])
        .await;
    let s = server.wait_finished(&ids[0]).await;
    assert_eq!(s["status"], "failed", "{s}");
    assert_eq!(s["error"]["code"], "password_protected", "{s}");
    let detail = server
        .get(&format!("/api/v1/documents/{}", ids[0]))
        .await
        .assert_error(422, "password_protected");
    assert!(detail.to_lowercase().contains("password"), "{detail}");

    // Over --max-upload-bytes: 413.
    let mut big = b"%PDF-1.4\n".to_vec();
    big.resize(8 << 20, b'x');
    let (ct, body) = multipart(&[Part::pdf("f", "big.pdf", big)]);
    let res = server
        .try_post(&format!("/api/v1/documents?{q}"), &ct, body)
        .await
        .unwrap_or_else(|e| {
            panic!("an upload over the limit should get a 413, not a broken connection: {e:?}")
        });
    let detail = res.assert_error(413, "too_large");
    assert!(detail.contains(&(100 * 1024).to_string()), "{detail}");

    // Bad specs: 400 naming the field's problem.
    for bad in ["color=nope", "opacity=2", "rotation=sideways", "pages=0-x"] {
        let res = server
            .upload(
                &format!("{q}&{bad}"),
                &[Part::pdf("f", "good.pdf", good.clone())],
            )
            .await;
        res.assert_error(400, "invalid_watermark");
    }
    let res = server
        .upload(
            &format!("{q}&callback_url={}", enc("ftp://example.com/x")),
            &[Part::pdf("f", "good.pdf", good.clone())],
        )
        .await;
    res.assert_error(400, "invalid_callback_url");
    // Private and link-local callback targets are refused up front (a
    // server on loopback may call loopback, nothing else private).
    for target in [
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
    ] {
        let res = server
            .upload(
                &format!("{q}&callback_url={}", enc(target)),
                &[Part::pdf("f", "good.pdf", good.clone())],
            )
            .await;
        res.assert_error(400, "invalid_callback_url");
    }

    // More files than --max-files: 413.
    let many: Vec<Part> = (0..4)
        .map(|i| Part::pdf("f", &format!("m{i}.pdf"), tiny_pdf(&format!("Many {i}"))))
        .collect();
    let res = server.upload(&q, &many).await;
    let detail = res.assert_error(413, "too_many_files");
    assert!(detail.contains('3'), "{detail}");

    // Not multipart at all, and multipart cut short.
    let res = server
        .post(
            &format!("/api/v1/documents?{q}"),
            "application/pdf",
            good.clone(),
        )
        .await;
    res.assert_error(400, "not_multipart");
    let (ct, mut body) = multipart(&[Part::pdf("f", "cut.pdf", good.clone())]);
    body.truncate(body.len() - 40);
    let res = server
        .post(&format!("/api/v1/documents?{q}"), &ct, body)
        .await;
    res.assert_error(400, "malformed_multipart");
    // Cut short in the middle of a file too large to be read in one go: the
    // client's mistake, not a server error (regression: this was a 500
    // "internal" and an error in the log).
    let mut long = tiny_pdf("Long document");
    long.resize(90 * 1024, b' ');
    let (ct, mut body) = multipart(&[Part::pdf("f", "cut-long.pdf", long)]);
    body.truncate(body.len() - 40);
    let res = server
        .post(&format!("/api/v1/documents?{q}"), &ct, body)
        .await;
    res.assert_error(400, "malformed_multipart");
    // Refused uploads leave nothing half-written behind.
    let leftovers = upload_leftovers(&server, dir.path()).await;
    assert!(leftovers.is_empty(), "uploads left: {leftovers:?}");

    // Still up, and still stamping.
    assert!(server.is_running(), "the server exited:\n{}", server.log());
    let res = server.get("/healthcheck").await;
    assert_eq!((res.status, res.text().as_str()), (200, "OK"));
    let ids = server
        .upload_ok(&q, &[Part::pdf("f", "good.pdf", good)])
        .await;
    assert_eq!(server.wait_finished(&ids[0]).await["status"], "done");
    assert_stamped(&server.download(&ids[0]).await, wm, Some("A good document"));
}

/// `POST /api/v1/stamp`: a PDF in, the stamped PDF out, the same bytes as
/// `peedy stamp` makes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synchronous_stamping() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), &with(FAST, &["--max-sync-bytes", "64K"])).await;
    let wm = "Sync Mark";
    let input_path = dir.path().join("sync.pdf");
    let input = tiny_pdf("Synchronous input");
    std::fs::write(&input_path, &input).expect("write input");

    let res = server
        .post(
            &format!("/api/v1/stamp?watermark={}", enc(wm)),
            "application/pdf",
            input.clone(),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.header("content-type").as_deref(),
        Some("application/pdf")
    );
    assert!(
        res.header("content-disposition")
            .is_some_and(|d| d.starts_with("attachment")),
        "{:?}",
        res.headers
    );
    assert_eq!(res.header("x-peedy-pages").as_deref(), Some("1"));
    assert_stamped(&res.body, wm, Some("Synchronous input"));
    assert_eq!(
        res.body,
        cli_stamp(&input_path, wm),
        "the service and the CLI stamp alike"
    );

    // As a multipart form, spec in a field.
    let (ct, body) = multipart(&[
        Part::field("watermark", wm),
        Part::pdf("whatever", "sync.pdf", input.clone()),
    ]);
    let res = server.post("/api/v1/stamp", &ct, body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_stamped(&res.body, wm, None);

    let res = server
        .post(
            &format!("/api/v1/stamp?watermark={}", enc(wm)),
            "application/pdf",
            b"this is not a PDF".to_vec(),
        )
        .await;
    res.assert_error(422, "not_a_pdf");
    let res = server
        .post("/api/v1/stamp", "application/pdf", input.clone())
        .await;
    res.assert_error(400, "missing_params");
    let res = server
        .post(
            &format!("/api/v1/stamp?watermark={}&color=nope", enc(wm)),
            "application/pdf",
            input,
        )
        .await;
    res.assert_error(400, "invalid_watermark");

    // Over --max-sync-bytes, raw or multipart: the client gets the 413
    // (the server reads the rest of the body before closing), not a broken
    // pipe while it is still sending.
    let mut big = b"%PDF-1.4\n".to_vec();
    big.resize(64 << 20, b'x');
    let (ct, body) = multipart(&[Part::pdf("f", "big.pdf", big.clone())]);
    for (ct, body) in [("application/pdf".to_owned(), big), (ct, body)] {
        let res = server
            .try_post(&format!("/api/v1/stamp?watermark={}", enc(wm)), &ct, body)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "a {ct} body over the limit should get a 413, not a broken connection: {e:?}"
                )
            });
        let detail = res.assert_error(413, "too_large");
        assert!(detail.contains(&(64 * 1024).to_string()), "{detail}");
    }
}

/// Signed callbacks: Standard Webhooks headers whose HMAC verifies over the
/// raw body; `file` named after the sanitized upload filename; `id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_are_signed_and_carry_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (secret, key) = webhook_secret();
    let receiver = Receiver::start().await;
    let server = start(dir.path(), &with(FAST, &["--callback-secret", &secret])).await;
    let wm = "Signed Delivery";
    let four_pages = std::fs::read(corpus_file("004-")).expect("read 004");
    let parts = [
        Part::pdf(
            "f",
            "../../secret/My Report (final);v2.pdf",
            tiny_pdf("Report body"),
        ),
        Part::pdf("g", "four pages", four_pages),
    ];
    let res = server
        .upload(
            &format!(
                "watermark={}&callback_url={}",
                enc(wm),
                enc(&receiver.url())
            ),
            &parts,
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    let ids = ids_of(&v);
    let expected_names = ["My Report (final)_v2.pdf", "four pages.pdf"];
    for (doc, name) in v["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .zip(expected_names)
    {
        assert_eq!(doc["filename"], name, "{v}");
    }

    let statuses = server.wait_delivered(&ids).await;
    for ((id, name), s) in ids.iter().zip(expected_names).zip(&statuses) {
        let pdf = server.download(id).await;
        assert_stamped(&pdf, wm, None);
        let wid = delivery(s)["webhook_id"]
            .as_str()
            .expect("webhook_id in /status")
            .to_owned();
        let got: Vec<_> = receiver
            .received()
            .into_iter()
            .filter(|r| r.id.as_deref() == Some(id.as_str()))
            .collect();
        assert_eq!(got.len(), 1, "one request for {id}: {got:?}");
        let r = &got[0];
        assert_eq!(r.answered, 200);
        assert_eq!(r.header("webhook-id").as_deref(), Some(wid.as_str()));
        assert_signed(r, &key);
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.starts_with("multipart/form-data; boundary=")),
            "{:?}",
            r.headers
        );
        assert_eq!(r.filename.as_deref(), Some(name));
        assert_eq!(r.file_type.as_deref(), Some("application/pdf"));
        assert_eq!(r.file.as_deref(), Some(pdf.as_slice()));
        assert_eq!(
            s["output"]["sha256"],
            sha256_hex(r.file.as_deref().unwrap_or_default())
        );
    }
    assert_eq!(statuses[1]["pages"], 4);
    assert_eq!(statuses[1]["stamped_pages"], 4);

    // 4xx answers other than 408/429 are final: failed after one attempt;
    // 410 Gone stops deliveries without calling it a failure.
    for (status, state) in [(404, "failed"), (410, "gone")] {
        let ids = server
            .upload_ok(
                &format!(
                    "watermark={}&callback_url={}",
                    enc(wm),
                    enc(&receiver.url_answering(status))
                ),
                &[Part::pdf("f", "refused.pdf", tiny_pdf("Refused"))],
            )
            .await;
        let deadline = Deadline::new(format!("delivery state {state}"));
        let s = loop {
            let s = server.status(&ids[0]).await;
            if delivery(&s)["state"] == state {
                break s;
            }
            deadline.tick(&s).await;
        };
        assert_eq!(s["status"], "done", "{s}");
        assert_eq!(delivery(&s)["attempts"], 1, "not retried: {s}");
        assert_eq!(delivery(&s)["last_status"], status, "{s}");
        let asked = receiver
            .received()
            .iter()
            .filter(|r| r.id.as_deref() == Some(ids[0].as_str()))
            .count();
        assert_eq!(asked, 1, "one request for a final answer");
    }

    // A tampered body does not verify: the check above means something.
    let mut forged = receiver.received().remove(0);
    let mut body = forged.body.to_vec();
    let last = body.len() - 10;
    body[last] ^= 1;
    forged.body = body.into();
    let tampered = std::panic::catch_unwind(|| assert_signed(&forged, &key));
    assert!(tampered.is_err(), "a changed body must not verify");
}

/// The receiver is down (nothing listens), then answers 500 for a while,
/// then 200: every document is delivered, under one webhook-id per document
/// across all its attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_then_back_gets_everything() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (secret, key) = webhook_secret();
    let addr = unused_addr();
    let url = format!("http://{addr}/hook");
    let server = start(
        dir.path(),
        &with(
            FAST,
            &["--breaker-failures", "0", "--callback-secret", &secret],
        ),
    )
    .await;
    let wm = "Patience";
    let parts: Vec<Part> = (1..=3)
        .map(|i| Part::pdf("f", &format!("p{i}.pdf"), tiny_pdf(&format!("Patient {i}"))))
        .collect();
    let ids = server
        .upload_ok(
            &format!("watermark={}&callback_url={}", enc(wm), enc(&url)),
            &parts,
        )
        .await;
    assert_eq!(ids.len(), 3);

    // Down: attempts fail to connect and are retried.
    let deadline = Deadline::new("two failed connection attempts per document");
    loop {
        let mut statuses = Vec::new();
        for id in &ids {
            statuses.push(server.status(id).await);
        }
        let all = statuses.iter().all(|s| {
            delivery(s)["attempts"].as_i64().unwrap_or(0) >= 2
                && delivery(s)["state"] != "delivered"
        });
        if all {
            for s in &statuses {
                let err = delivery(s)["last_error"].as_str().unwrap_or_default();
                assert!(err.contains("connect"), "why it failed: {s}");
            }
            break;
        }
        deadline.tick(&statuses).await;
    }

    // Back, but failing the first three requests.
    let receiver = Receiver::start_on(addr).await;
    receiver.fail_next(3);
    let statuses = server.wait_delivered(&ids).await;

    let received = receiver.received();
    assert_eq!(
        received.iter().filter(|r| r.answered == 500).count(),
        3,
        "{received:?}"
    );
    assert_eq!(
        received.len(),
        6,
        "three failures and three deliveries: {received:?}"
    );
    for (id, s) in ids.iter().zip(&statuses) {
        let d = delivery(s);
        assert!(d["attempts"].as_i64().unwrap_or(0) >= 3, "{s}");
        assert_eq!(d["last_status"], 200, "{s}");
        let wid = d["webhook_id"].as_str().expect("webhook_id");
        let mine: Vec<_> = received
            .iter()
            .filter(|r| r.id.as_deref() == Some(id.as_str()))
            .collect();
        assert_eq!(mine.iter().filter(|r| r.answered == 200).count(), 1, "{id}");
        for r in &mine {
            assert_eq!(
                r.header("webhook-id").as_deref(),
                Some(wid),
                "same webhook-id on every attempt"
            );
            assert_signed(r, &key);
        }
        let pdf = server.download(id).await;
        let ok = mine.iter().find(|r| r.answered == 200).expect("delivery");
        assert_eq!(ok.file.as_deref(), Some(pdf.as_slice()));
    }
}

/// The circuit breaker: after two failures in the window the host is left
/// alone (deliveries wait as "waiting_breaker", spending no attempts); once
/// the receiver recovers, everything is delivered.
///
/// Regression: deliveries turned away while the half-open trial was in
/// flight were deferred until the trial's budget ran out (twice the callback
/// timeout, 30 s) even when the trial succeeded a few milliseconds later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_opens_and_closes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::start().await;
    receiver.set_failing(true);
    let server = start(
        dir.path(),
        &[
            "--lease-secs",
            "2",
            "--retry-base-secs",
            "0.2",
            "--retry-max-secs",
            "1",
            "--breaker-failures",
            "2",
            "--breaker-window-secs",
            "10",
            "--breaker-open-secs",
            "2",
        ],
    )
    .await;
    let parts: Vec<Part> = (1..=4)
        .map(|i| Part::pdf("f", &format!("b{i}.pdf"), tiny_pdf(&format!("Breaker {i}"))))
        .collect();
    let ids = server
        .upload_ok(
            &format!(
                "watermark={}&callback_url={}",
                enc("Fuse"),
                enc(&receiver.url())
            ),
            &parts,
        )
        .await;

    // Open: some delivery waits on the breaker.
    let deadline = Deadline::new("a delivery waiting on the open breaker");
    let waiting = 'outer: loop {
        let mut states = Vec::new();
        for id in &ids {
            let s = server.status(id).await;
            if delivery(&s)["state"] == "waiting_breaker" {
                break 'outer s;
            }
            states.push(delivery(&s).clone());
        }
        deadline.tick(&states).await;
    };
    let d = delivery(&waiting);
    let next = d["next_attempt_at_ms"].as_i64().expect("next attempt time");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64;
    assert!(
        next > now_ms - 3000 && next < now_ms + 3000,
        "deferred until the breaker's open period ends (2 s): {waiting}"
    );
    assert!(receiver.count() >= 2, "the breaker opened after failures");

    // Recover: everything is delivered soon after the open period (2 s)
    // ends — not after the half-open trial's budget (twice the 15 s callback
    // timeout), which is only how long a trial that never answers may take.
    receiver.set_failing(false);
    let statuses = server
        .wait_delivered_within(&ids, Duration::from_secs(15))
        .await;

    let received = receiver.received();
    let attempts: i64 = statuses
        .iter()
        .map(|s| delivery(s)["attempts"].as_i64().expect("attempts"))
        .sum();
    assert_eq!(
        attempts,
        received.len() as i64,
        "attempts count requests made, never deferrals: {statuses:#?}"
    );
    for id in &ids {
        assert_eq!(
            received
                .iter()
                .filter(|r| r.id.as_deref() == Some(id.as_str()) && r.answered == 200)
                .count(),
            1,
            "{id} delivered once"
        );
    }
    // While open, the host heard nothing for about --breaker-open-secs.
    let failing: Vec<_> = received.iter().filter(|r| r.answered == 500).collect();
    let longest_gap = received
        .windows(2)
        .filter(|w| w[0].answered == 500)
        .map(|w| w[1].at.duration_since(w[0].at))
        .max()
        .unwrap_or_default();
    assert!(
        longest_gap >= Duration::from_millis(1500),
        "no pause while the breaker was open; {} failures, longest gap {longest_gap:?}",
        failing.len()
    );
}

/// Good corpus files, cycled through by the crash and shutdown tests.
/// SIGKILL while documents are queued, being stamped and being delivered;
/// a new process on the same data directory finishes every one, and every
/// callback arrives (at least once), with the bytes `peedy stamp` makes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_work_in_flight_loses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (secret, key) = webhook_secret();
    let receiver = Receiver::start().await;
    // Slow answers keep deliveries in flight when the kill comes.
    receiver.set_delay(Duration::from_millis(300));
    let args = with(
        FAST,
        &[
            "--stamp-concurrency",
            "1",
            "--callback-concurrency",
            "2",
            "--callback-secret",
            &secret,
        ],
    );
    let mut server = start(dir.path(), &args).await;
    let wm = "Survives SIGKILL";
    let query = format!(
        "watermark={}&callback_url={}",
        enc(wm),
        enc(&receiver.url())
    );
    let docs = upload_corpus(&server, &query, 6, 5).await;
    assert_eq!(docs.len(), 30);
    server.kill();
    let before: BTreeSet<String> = receiver
        .delivered()
        .into_iter()
        .filter_map(|r| r.id)
        .collect();
    assert!(
        before.len() < docs.len(),
        "the kill came after everything was delivered; nothing was tested"
    );

    receiver.set_delay(Duration::ZERO);
    let server = start(dir.path(), &args).await;
    let ids: Vec<String> = docs.iter().map(|(id, _)| id.clone()).collect();
    let statuses = server.wait_delivered(&ids).await;
    assert_all_stamped_and_delivered(&server, &receiver, &docs, wm, &statuses).await;
    for r in receiver.received() {
        assert_signed(&r, &key);
    }
}

/// SIGTERM with work in flight: the process exits 0 after a short grace,
/// handing back what it could not finish; the next process finishes it all
/// without waiting for leases to expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_loses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (secret, _) = webhook_secret();
    let receiver = Receiver::start().await;
    // Answers slower than the grace period: deliveries in flight are handed
    // back, not finished.
    receiver.set_delay(Duration::from_millis(1500));
    // A long lease: only a hand-back lets the next process start at once.
    let args = [
        "--lease-secs",
        "30",
        "--retry-base-secs",
        "0.2",
        "--retry-max-secs",
        "1",
        "--stamp-concurrency",
        "1",
        "--callback-concurrency",
        "2",
        "--shutdown-grace-secs",
        "0.3",
        "--callback-secret",
        &secret,
    ];
    let mut server = start(dir.path(), &args).await;
    let wm = "Survives SIGTERM";
    let query = format!(
        "watermark={}&callback_url={}",
        enc(wm),
        enc(&receiver.url())
    );
    let docs = upload_corpus(&server, &query, 2, 5).await;
    let deadline = Deadline::new("a callback in flight");
    while receiver.count() == 0 {
        deadline.tick("no request yet").await;
    }
    let status = server.terminate().await;
    assert!(
        status.success(),
        "SIGTERM should end in exit 0, got {status:?}:\n{}",
        server.log()
    );
    let log = server.log();
    assert!(log.contains("peedy stopped"), "{log}");
    if super::BACKEND == crate::support::Backend::Sqlite {
        // The database was closed: its WAL went into the file.
        let data = dir.path().join("data");
        assert!(data.join("peedy.db").exists());
        for leftover in ["peedy.db-wal", "peedy.db-shm"] {
            assert!(
                !data.join(leftover).exists(),
                "{leftover} left after a clean stop"
            );
        }
        // `peedy cluster` reads the same file: the node left when it stopped,
        // the work it handed back waits in the queues.
        let out = crate::support::peedy_command()
            .args(["cluster", "--json", "--data-dir"])
            .arg(&data)
            .output()
            .expect("run peedy cluster");
        assert!(out.status.success(), "{out:?}");
        let view: Value = serde_json::from_slice(&out.stdout).expect("cluster JSON");
        assert_eq!(view["nodes"].as_array().map(Vec::len), Some(0), "{view}");
        let waiting = view["queues"]["stamp"]["queued"].as_i64().unwrap_or(0)
            + view["queues"]["callback"]["queued"].as_i64().unwrap_or(0);
        assert!(waiting > 0, "nothing handed back: {view}");
    }
    assert!(
        receiver.delivered().len() < docs.len(),
        "everything was delivered before the shutdown; nothing was tested"
    );

    receiver.set_delay(Duration::ZERO);
    let server = start(dir.path(), &args).await;
    let ids: Vec<String> = docs.iter().map(|(id, _)| id.clone()).collect();
    // Well under the 30 s lease: handed-back jobs run at once.
    let statuses = server
        .wait_delivered_within(&ids, Duration::from_secs(25))
        .await;
    assert_all_stamped_and_delivered(&server, &receiver, &docs, wm, &statuses).await;
}

/// Regression: the stamping job recorded the delivery as "pending" after
/// queueing the callback job, so a callback worker that delivered in
/// between had its "delivered" overwritten, and `/status` said "pending",
/// attempts 0, for good. Many small documents delivered at once make the
/// window likely.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_delivery_is_not_overwritten_by_pending() {
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::start().await;
    let server = start(dir.path(), &with(FAST, &["--callback-concurrency", "8"])).await;
    let parts: Vec<Part> = (0..24)
        .map(|i| Part::pdf("f", &format!("r{i}.pdf"), tiny_pdf(&format!("Race {i}"))))
        .collect();
    let ids = server
        .upload_ok(
            &format!(
                "watermark={}&callback_url={}",
                enc("Race"),
                enc(&receiver.url())
            ),
            &parts,
        )
        .await;
    let deadline = Deadline::new("a callback for every document");
    loop {
        let got: BTreeSet<String> = receiver
            .delivered()
            .into_iter()
            .filter_map(|r| r.id)
            .collect();
        if got.len() == ids.len() {
            break;
        }
        deadline.tick(got.len()).await;
    }
    // Delivered, so /status must say so — soon, not never.
    let statuses = server
        .wait_delivered_within(&ids, Duration::from_secs(10))
        .await;
    for s in &statuses {
        assert_eq!(delivery(s)["attempts"], 1, "{s}");
        assert_eq!(delivery(s)["last_status"], 200, "{s}");
    }
}
