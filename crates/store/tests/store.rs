//! The store against a real SQLite file in a temporary directory.
// Helpers outside #[test] fns unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use peedy_store::{
    DeliveryState, DocStatus, DocumentId, Done, Error, NewDocument, Store, WatermarkId, now_ms,
    on_db,
};

/// SQLite in a temp dir; or, with `PEEDY_TEST_DATABASE_URL=postgres://…`,
/// a fresh database on that PostgreSQL server.
async fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let url = match std::env::var("PEEDY_TEST_DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => Some(fresh_postgres_database(&url).await),
        _ => None,
    };
    let store = Store::open(url.as_deref(), dir.path()).await.unwrap();
    (dir, store)
}

async fn fresh_postgres_database(server_url: &str) -> String {
    let name = format!("peedy_test_{}", DocumentId::random());
    let admin = sqlx::PgPool::connect(server_url).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (server, _) = server_url.rsplit_once('/').unwrap();
    format!("{server}/{name}")
}

/// Runs one statement with one text bind on either backend.
async fn execute(store: &Store, sql: &str, bind: &str) {
    on_db!(store.db(), pool => {
        sqlx::query(sql).bind(bind).execute(pool).await.unwrap();
    });
}

/// A `COUNT(*)`-like query on either backend.
async fn count(store: &Store, sql: &str) -> i64 {
    on_db!(store.db(), pool => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap())
}

fn new_doc(watermark_id: WatermarkId, input_sha256: &str) -> NewDocument {
    NewDocument {
        id: DocumentId::random(),
        filename: "book.pdf".into(),
        watermark_id,
        input_sha256: input_sha256.into(),
        input_size: 1234,
        input_hash_state: None,
        callback_url: Some("https://example.com/hook".into()),
        request_id: Some("req-1".into()),
        expires_at_ms: now_ms() + 3_600_000,
    }
}

async fn insert(store: &Store, spec: &str, input: &[u8]) -> NewDocument {
    let (sha, _) = store.blobs().put_bytes(input).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let wm = store.upsert_watermark(&mut tx, spec).await.unwrap();
    let doc = new_doc(wm, &sha);
    store.insert_document(&mut tx, &doc).await.unwrap();
    tx.commit().await.unwrap();
    doc
}

/// Sets a blob's mtime into the past, as if it was written long ago.
fn age_blob(store: &Store, sha: &str) {
    let path = store.blobs().path(sha).unwrap();
    std::fs::File::open(path)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
}

#[tokio::test]
async fn open_creates_data_dir_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested").join("peedy-data");
    let store = Store::open(None, &data).await.unwrap();
    store.ping().await.unwrap();
    assert!(data.join("peedy.db").is_file());
    assert!(data.join("blobs").is_dir());
    let doc = insert(&store, r#"{"text":"A"}"#, b"%PDF-1").await;
    store.db().close().await;

    // Migrations are idempotent; the data survives.
    let url = format!("sqlite://{}", data.join("peedy.db").display());
    let again = Store::open(Some(&url), &data).await.unwrap();
    assert!(again.document(&doc.id).await.unwrap().is_some());
}

#[tokio::test]
async fn unsupported_url_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open(Some("mysql://user:secret@host/db"), dir.path())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnsupportedUrl(_)), "{err}");
    assert!(!err.to_string().contains("secret"));
}

#[tokio::test]
async fn sqlite_pragmas_are_wal_normal_fk() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(None, dir.path()).await.unwrap();
    let peedy_store::Db::Sqlite(pool) = store.db() else {
        panic!("default store is SQLite");
    };
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    // 1 = NORMAL (0 would be OFF).
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(sync, 1);
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(fk, 1);
    let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(busy, 5000);
}

#[tokio::test]
async fn document_round_trip() {
    let (_dir, store) = open().await;
    let before = now_ms();
    let doc = insert(
        &store,
        r#"{"text":"licensed to Ricky Bobby"}"#,
        b"%PDF-1.7 input",
    )
    .await;

    let got = store.document(&doc.id).await.unwrap().unwrap();
    assert_eq!(got.id, doc.id);
    assert_eq!(got.filename, "book.pdf");
    assert_eq!(got.status, DocStatus::Queued);
    assert_eq!(got.watermark_id, doc.watermark_id);
    assert_eq!(got.input_sha256, doc.input_sha256);
    assert_eq!(got.input_size, 1234);
    assert_eq!(
        got.callback_url.as_deref(),
        Some("https://example.com/hook")
    );
    assert_eq!(got.request_id.as_deref(), Some("req-1"));
    assert_eq!(got.expires_at_ms, doc.expires_at_ms);
    assert!(got.created_at_ms >= before && got.created_at_ms <= now_ms());
    assert_eq!((got.started_at_ms, got.finished_at_ms), (None, None));
    assert_eq!(
        (got.pages, got.output_sha256.clone(), got.delivery.clone()),
        (None, None, None)
    );
    assert!(!got.output_is_rewrite);
    assert_eq!(
        store.watermark(got.watermark_id).await.unwrap().as_deref(),
        Some(r#"{"text":"licensed to Ricky Bobby"}"#)
    );

    store.mark_running(&doc.id).await.unwrap();
    let running = store.document(&doc.id).await.unwrap().unwrap();
    assert_eq!(running.status, DocStatus::Running);
    assert!(running.started_at_ms.is_some());

    let done = Done {
        pages: 12,
        stamped_pages: 11,
        update_sha256: Some("ab".repeat(32)),
        output_sha256: "cd".repeat(32),
        output_size: 2000,
        output_is_rewrite: false,
        stamp_ms: 7,
    };
    store.mark_done(&doc.id, &done).await.unwrap();
    let got = store.document(&doc.id).await.unwrap().unwrap();
    assert_eq!(got.status, DocStatus::Done);
    assert_eq!(got.pages, Some(12));
    assert_eq!(got.stamped_pages, Some(11));
    assert_eq!(got.update_sha256, done.update_sha256);
    assert_eq!(
        got.output_sha256.as_deref(),
        Some(done.output_sha256.as_str())
    );
    assert_eq!(got.output_size, Some(2000));
    assert_eq!(got.stamp_ms, Some(7));
    assert!(got.finished_at_ms.is_some());

    // A done document stays done: a re-run after a dead worker, or a late
    // failure, does not undo it.
    store.mark_running(&doc.id).await.unwrap();
    store.mark_failed(&doc.id, "panic", "late").await.unwrap();
    let got = store.document(&doc.id).await.unwrap().unwrap();
    assert_eq!(got.status, DocStatus::Done);
    assert_eq!(got.error_code, None);

    let delivery = DeliveryState {
        state: "delivering".into(),
        attempts: 1,
        webhook_id: "msg_1".into(),
        last_status: Some(503),
        last_error: Some("HTTP 503".into()),
        next_attempt_at_ms: Some(now_ms() + 2000),
        delivered_at_ms: None,
    };
    store.set_delivery(&doc.id, &delivery).await.unwrap();
    assert_eq!(
        store.document(&doc.id).await.unwrap().unwrap().delivery,
        Some(delivery)
    );
    let delivered = DeliveryState {
        state: "delivered".into(),
        attempts: 2,
        webhook_id: "msg_1".into(),
        last_status: Some(200),
        last_error: None,
        next_attempt_at_ms: None,
        delivered_at_ms: Some(now_ms()),
    };
    store.set_delivery(&doc.id, &delivered).await.unwrap();
    assert_eq!(
        store.document(&doc.id).await.unwrap().unwrap().delivery,
        Some(delivered.clone())
    );

    // Unknown documents: nothing, and no error.
    let unknown = DocumentId::random();
    assert!(store.document(&unknown).await.unwrap().is_none());
    store.set_delivery(&unknown, &delivered).await.unwrap();
    assert!(!store.delete_document(&unknown).await.unwrap());
}

#[tokio::test]
async fn failed_document_keeps_reason_and_rewrite_flag_round_trips() {
    let (_dir, store) = open().await;
    let failed = insert(&store, r#"{"text":"A"}"#, b"not a pdf").await;
    store.mark_running(&failed.id).await.unwrap();
    store
        .mark_failed(&failed.id, "not_a_pdf", "no %PDF header")
        .await
        .unwrap();
    let got = store.document(&failed.id).await.unwrap().unwrap();
    assert_eq!(got.status, DocStatus::Failed);
    assert_eq!(got.error_code.as_deref(), Some("not_a_pdf"));
    assert_eq!(got.error_detail.as_deref(), Some("no %PDF header"));
    assert!(got.finished_at_ms.is_some());

    let rewritten = insert(&store, r#"{"text":"A"}"#, b"%PDF broken").await;
    let done = Done {
        pages: 1,
        stamped_pages: 1,
        update_sha256: None,
        output_sha256: "ef".repeat(32),
        output_size: 10,
        output_is_rewrite: true,
        stamp_ms: 1,
    };
    store.mark_done(&rewritten.id, &done).await.unwrap();
    let got = store.document(&rewritten.id).await.unwrap().unwrap();
    assert!(got.output_is_rewrite);
    assert_eq!(got.update_sha256, None);
}

#[tokio::test]
async fn watermark_upsert_dedupes() {
    let (_dir, store) = open().await;
    let mut tx = store.begin().await.unwrap();
    let a = store
        .upsert_watermark(&mut tx, r#"{"text":"A"}"#)
        .await
        .unwrap();
    let a2 = store
        .upsert_watermark(&mut tx, r#"{"text":"A"}"#)
        .await
        .unwrap();
    let b = store
        .upsert_watermark(&mut tx, r#"{"text":"B"}"#)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(a, a2);
    assert_ne!(a, b);

    // Across transactions too.
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        store
            .upsert_watermark(&mut tx, r#"{"text":"B"}"#)
            .await
            .unwrap(),
        b
    );
    tx.commit().await.unwrap();
    assert_eq!(
        store.watermark(b).await.unwrap().as_deref(),
        Some(r#"{"text":"B"}"#)
    );
    assert_eq!(store.watermark(WatermarkId(9999)).await.unwrap(), None);

    assert_eq!(count(&store, "SELECT COUNT(*) FROM watermarks").await, 2);
}

#[tokio::test]
async fn rolled_back_transaction_leaves_nothing() {
    let (_dir, store) = open().await;
    let (sha, _) = store.blobs().put_bytes(b"%PDF").await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let wm = store
        .upsert_watermark(&mut tx, r#"{"text":"A"}"#)
        .await
        .unwrap();
    let doc = new_doc(wm, &sha);
    store.insert_document(&mut tx, &doc).await.unwrap();
    drop(tx);
    assert!(store.document(&doc.id).await.unwrap().is_none());
    assert_eq!(store.watermark(wm).await.unwrap(), None);
}

#[tokio::test]
async fn blob_put_dedupe_read_delete() {
    let (_dir, store) = open().await;
    let blobs = store.blobs();
    let (sha, size) = blobs.put_bytes(b"abc").await.unwrap();
    assert_eq!(
        sha,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(size, 3);
    let path = blobs.path(&sha).unwrap();
    assert!(path.ends_with("ba/7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    assert_eq!(blobs.read(&sha).await.unwrap(), b"abc");

    // The same bytes again, through a reader this time: one file.
    let (again, size) = blobs.put_reader(&b"abc"[..], 3).await.unwrap();
    assert_eq!((again.as_str(), size), (sha.as_str(), 3));
    assert_eq!(
        std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
        1
    );

    // A large upload streams in chunks and hashes the same as in one piece.
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let (big_sha, big_size) = blobs.put_reader(&big[..], 1_000_000).await.unwrap();
    assert_eq!(big_size, 1_000_000);
    assert_eq!(blobs.read(&big_sha).await.unwrap(), big);

    blobs.delete(&sha).await.unwrap();
    assert!(!blobs.exists(&sha).await.unwrap());
    assert!(matches!(
        blobs.read(&sha).await,
        Err(Error::BlobNotFound(_))
    ));
    // Deleting twice is fine.
    blobs.delete(&sha).await.unwrap();
    // Nothing left in the temp directory.
    assert_eq!(
        std::fs::read_dir(blobs.root().join("tmp")).unwrap().count(),
        0
    );
}

#[tokio::test]
async fn blob_over_limit_is_too_large_and_leaves_nothing() {
    let (_dir, store) = open().await;
    let blobs = store.blobs();
    let data = vec![7u8; 200_000];
    let err = blobs.put_reader(&data[..], 199_999).await.unwrap_err();
    assert!(matches!(err, Error::TooLarge { limit: 199_999 }), "{err}");
    assert_eq!(
        std::fs::read_dir(blobs.root().join("tmp")).unwrap().count(),
        0
    );
    // Exactly at the limit is fine.
    let (_, size) = blobs.put_reader(&data[..], 200_000).await.unwrap();
    assert_eq!(size, 200_000);
    assert!(matches!(
        blobs.read("../../x").await,
        Err(Error::InvalidHash(_))
    ));
}

#[tokio::test]
async fn ids_are_unique_and_validated() {
    let ids: HashSet<String> = (0..10_000)
        .map(|_| DocumentId::random().to_string())
        .collect();
    assert_eq!(ids.len(), 10_000);
    for id in &ids {
        assert_eq!(id.len(), 26);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
        );
        let parsed: DocumentId = id.parse().unwrap();
        assert_eq!(parsed.as_str(), id);
    }
    let valid = DocumentId::random().to_string();
    for junk in [
        "",
        "1",
        "../../etc/passwd",
        &valid.to_uppercase(),
        &valid[..25],
        &format!("{valid}a"),
        "aaaaaaaaaaaaaaaaaaaaaaaaa1",
        "aaaaaaaaaaaaaaaaaaaaaaaaab",
    ] {
        assert!(
            matches!(junk.parse::<DocumentId>(), Err(Error::InvalidDocumentId)),
            "{junk}"
        );
    }
}

#[tokio::test]
async fn delete_removes_unshared_blobs_and_jobs() {
    let (_dir, store) = open().await;
    let shared = insert(&store, r#"{"text":"A"}"#, b"%PDF shared").await;
    let other = insert(&store, r#"{"text":"B"}"#, b"%PDF shared").await;
    let lonely = insert(&store, r#"{"text":"A"}"#, b"%PDF lonely").await;
    assert_eq!(shared.input_sha256, other.input_sha256);
    let (update, _) = store.blobs().put_bytes(b"update of lonely").await.unwrap();
    store
        .mark_done(
            &lonely.id,
            &Done {
                pages: 1,
                stamped_pages: 1,
                update_sha256: Some(update.clone()),
                output_sha256: "00".repeat(32),
                output_size: 40,
                output_is_rewrite: false,
                stamp_ms: 1,
            },
        )
        .await
        .unwrap();
    for doc in [&shared, &lonely] {
        execute(
            &store,
            "INSERT INTO jobs (queue, payload, document_id, state, max_attempts, run_at, created_at, updated_at)
             VALUES ('stamping', '{}', $1, 'queued', 3, 0, 0, 0)",
            doc.id.as_str(),
        )
        .await;
    }
    store
        .set_delivery(
            &lonely.id,
            &DeliveryState {
                state: "pending".into(),
                attempts: 0,
                webhook_id: "msg".into(),
                last_status: None,
                last_error: None,
                next_attempt_at_ms: None,
                delivered_at_ms: None,
            },
        )
        .await
        .unwrap();

    // Shared input: the document goes, the blob stays for the other one.
    assert!(store.delete_document(&shared.id).await.unwrap());
    assert!(store.document(&shared.id).await.unwrap().is_none());
    assert!(store.blobs().exists(&shared.input_sha256).await.unwrap());
    assert!(!store.delete_document(&shared.id).await.unwrap());

    // Unshared: input and update blobs go too, with jobs and delivery.
    assert!(store.delete_document(&lonely.id).await.unwrap());
    assert!(!store.blobs().exists(&lonely.input_sha256).await.unwrap());
    assert!(!store.blobs().exists(&update).await.unwrap());
    assert_eq!(count(&store, "SELECT COUNT(*) FROM jobs").await, 0);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM deliveries").await, 0);

    // The last reference of the shared blob.
    assert!(store.delete_document(&other.id).await.unwrap());
    assert!(!store.blobs().exists(&other.input_sha256).await.unwrap());
}

#[tokio::test]
async fn delete_keeps_blob_touched_by_an_upload_in_flight() {
    let (_dir, store) = open().await;
    let doc = insert(&store, r#"{"text":"A"}"#, b"%PDF popular book").await;
    age_blob(&store, &doc.input_sha256);
    // Backdate the document too, as if it was uploaded an hour ago.
    execute(
        &store,
        "UPDATE documents SET created_at = created_at - 3600000 WHERE id = $1",
        doc.id.as_str(),
    )
    .await;
    // Another upload of the same book has stored its bytes (refreshing the
    // blob) but has not committed its document yet.
    let (sha, _) = store.blobs().put_bytes(b"%PDF popular book").await.unwrap();
    assert_eq!(sha, doc.input_sha256);

    assert!(store.delete_document(&doc.id).await.unwrap());
    assert!(
        store.blobs().exists(&sha).await.unwrap(),
        "the in-flight upload's blob survives"
    );

    // Had the upload died instead, the orphan sweep removes the blob later.
    assert_eq!(
        store
            .sweep_orphan_blobs(Duration::from_secs(600))
            .await
            .unwrap(),
        0
    );
    age_blob(&store, &sha);
    assert_eq!(
        store
            .sweep_orphan_blobs(Duration::from_secs(600))
            .await
            .unwrap(),
        1
    );
    assert!(!store.blobs().exists(&sha).await.unwrap());
}

#[tokio::test]
async fn orphan_sweep_keeps_referenced_blobs() {
    let (_dir, store) = open().await;
    let doc = insert(&store, r#"{"text":"A"}"#, b"%PDF kept").await;
    let (orphan, _) = store.blobs().put_bytes(b"orphan").await.unwrap();
    age_blob(&store, &doc.input_sha256);
    age_blob(&store, &orphan);
    // A leftover temp file of an interrupted upload.
    let tmp = store.blobs().root().join("tmp").join("0123.part");
    std::fs::write(&tmp, b"partial").unwrap();
    std::fs::File::open(&tmp)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();

    assert_eq!(
        store
            .sweep_orphan_blobs(Duration::from_secs(60))
            .await
            .unwrap(),
        2
    );
    assert!(store.blobs().exists(&doc.input_sha256).await.unwrap());
    assert!(!store.blobs().exists(&orphan).await.unwrap());
    assert!(!tmp.exists());
}

#[tokio::test]
async fn expiry_and_status_counts() {
    let (_dir, store) = open().await;
    let mut docs = Vec::new();
    for i in 0..4 {
        let (sha, _) = store
            .blobs()
            .put_bytes(format!("%PDF {i}").as_bytes())
            .await
            .unwrap();
        let mut tx = store.begin().await.unwrap();
        let wm = store
            .upsert_watermark(&mut tx, r#"{"text":"A"}"#)
            .await
            .unwrap();
        let mut doc = new_doc(wm, &sha);
        doc.expires_at_ms = 1000 * (i + 1);
        store.insert_document(&mut tx, &doc).await.unwrap();
        tx.commit().await.unwrap();
        docs.push(doc);
    }
    let expired = store.expired_documents(2500, 10).await.unwrap();
    assert_eq!(expired, vec![docs[0].id.clone(), docs[1].id.clone()]);
    assert_eq!(store.expired_documents(10_000, 3).await.unwrap().len(), 3);
    assert!(store.expired_documents(999, 10).await.unwrap().is_empty());

    store.mark_running(&docs[0].id).await.unwrap();
    store.mark_failed(&docs[1].id, "x", "y").await.unwrap();
    let counts = store.count_by_status().await.unwrap();
    let count = |s: DocStatus| {
        counts
            .iter()
            .find(|(st, _)| *st == s)
            .map_or(0, |(_, n)| *n)
    };
    assert_eq!(count(DocStatus::Queued), 2);
    assert_eq!(count(DocStatus::Running), 1);
    assert_eq!(count(DocStatus::Failed), 1);
    assert_eq!(count(DocStatus::Done), 0);
}

#[test]
fn status_strings() {
    for s in DocStatus::ALL {
        assert_eq!(s.as_str().parse::<DocStatus>().unwrap(), s);
        assert_eq!(s.to_string(), s.as_str());
    }
    assert!(matches!(
        "paused".parse::<DocStatus>(),
        Err(Error::InvalidStatus(_))
    ));
}
