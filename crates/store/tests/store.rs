//! The store against a real SQLite file in a temporary directory (or, with
//! `PEEDY_TEST_DATABASE_URL=postgres://…`, that PostgreSQL server). The blob
//! tests run on every blob backend, always: the directory (with SQLite, and
//! with PostgreSQL) and PostgreSQL itself, on a real server the harness
//! starts (`peedy_testkit`).
// Helpers outside #[test] fns unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use futures_util::TryStreamExt as _;
use peedy_store::{
    BlobBackend, DbRow, DeliveryState, DocStatus, DocumentId, Done, Error, NewDocument,
    ResumableSha256, Store, WatermarkId, now_ms, on_db, to_hex,
};
use peedy_testkit::PgServer;
use sha2::{Digest as _, Sha256};

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

/// A fresh database on the PostgreSQL server the harness starts for this
/// test binary (`peedy_testkit`; without PostgreSQL's binaries the test fails
/// with the install hint).
async fn harness_postgres() -> String {
    let pg = tokio::task::spawn_blocking(PgServer::shared)
        .await
        .expect("start PostgreSQL");
    pg.fresh_database().await
}

/// A store per blob backend, named for messages: SQLite with the blob
/// directory, and PostgreSQL with its blobs in the database and in the
/// directory.
async fn blob_backends() -> Vec<(String, tempfile::TempDir, Store)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(None, dir.path()).await.unwrap();
    let mut stores = vec![("sqlite+dir".to_owned(), dir, sqlite)];
    for backend in [BlobBackend::Database, BlobBackend::Dir] {
        let dir = tempfile::tempdir().unwrap();
        let db = harness_postgres().await;
        let store = Store::open_with(Some(&db), dir.path(), backend)
            .await
            .unwrap();
        assert_eq!(store.blobs().backend(), backend);
        stores.push((format!("postgres+{backend}"), dir, store));
    }
    stores
}

/// PostgreSQL with its blobs in the database (the default there).
async fn database_blobs() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(Some(&harness_postgres().await), dir.path())
        .await
        .unwrap();
    assert_eq!(store.blobs().backend(), BlobBackend::Database);
    (dir, store)
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

/// Makes a blob look stored an hour ago (its mtime, or `touched_at`).
async fn age_blob(store: &Store, sha: &str) {
    match store.blobs().path(sha).unwrap() {
        Some(path) => std::fs::File::open(path)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap(),
        None => {
            execute(
                store,
                "UPDATE blobs SET touched_at = touched_at - 3600000 WHERE sha256 = $1",
                sha,
            )
            .await
        }
    }
}

/// What uploads left behind: temporary files, or staging rows and chunks.
async fn leftovers(store: &Store) -> i64 {
    match store.blobs().root() {
        Some(root) => std::fs::read_dir(root.join("tmp")).unwrap().count() as i64,
        None => count(store, "SELECT COUNT(*) FROM blob_staging").await
            + count(
                store,
                "SELECT COUNT(*) FROM blob_chunks WHERE blob_key NOT IN (SELECT sha256 FROM blobs)",
            )
            .await,
    }
}

/// How many blobs are stored.
async fn stored_blobs(store: &Store) -> i64 {
    match store.blobs().root() {
        Some(root) => walk_files(root)
            .into_iter()
            .filter(|p| !p.starts_with(root.join("tmp")))
            .count() as i64,
        None => count(store, "SELECT COUNT(*) FROM blobs").await,
    }
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk_files(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Leaves what an upload interrupted an hour ago would have left.
async fn plant_interrupted_upload(store: &Store) {
    match store.blobs().root() {
        Some(root) => {
            let tmp = root.join("tmp").join("0123.part");
            std::fs::write(&tmp, b"partial").unwrap();
            std::fs::File::open(&tmp)
                .unwrap()
                .set_modified(SystemTime::now() - Duration::from_secs(3600))
                .unwrap();
        }
        None => {
            let key = "staging-0123";
            execute(
                store,
                "INSERT INTO blob_staging (key, created_at, touched_at)
                 VALUES ($1, 0, (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT - 3600000)",
                key,
            )
            .await;
            execute(
                store,
                "INSERT INTO blob_chunks (blob_key, seq, data) VALUES ($1, 0, '\\x0102'::bytea)",
                key,
            )
            .await;
        }
    }
}

/// Bytes that are not all alike (so a chunk out of order would show).
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
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
    for (name, _dir, store) in blob_backends().await {
        let blobs = store.blobs();
        let (sha, size) = blobs.put_bytes(b"abc").await.unwrap();
        assert_eq!(
            sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "{name}"
        );
        assert_eq!(size, 3);
        if let Some(path) = blobs.path(&sha).unwrap() {
            assert!(
                path.ends_with("ba/7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
            );
        }
        assert_eq!(blobs.read(&sha).await.unwrap(), &b"abc"[..], "{name}");
        assert_eq!(blobs.size(&sha).await.unwrap(), Some(3), "{name}");

        // The same bytes again, through a reader this time: one blob.
        let (again, size) = blobs.put_reader(&b"abc"[..], 3).await.unwrap();
        assert_eq!((again.as_str(), size), (sha.as_str(), 3), "{name}");
        assert_eq!(stored_blobs(&store).await, 1, "{name}");

        // A large upload streams in chunks and hashes the same as in one
        // piece; it reads back whole, and streams back in pieces.
        let big = pattern(3_500_000);
        let (big_sha, big_size) = blobs.put_reader(&big[..], 3_500_000).await.unwrap();
        assert_eq!(big_sha, to_hex(&Sha256::digest(&big)), "{name}");
        assert_eq!(big_size, 3_500_000);
        assert_eq!(blobs.read(&big_sha).await.unwrap(), big, "{name}");
        let stream = blobs.stream(&big_sha).await.unwrap();
        assert_eq!(stream.size(), 3_500_000);
        let pieces: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
        assert!(pieces.len() >= 4, "{name}: {} pieces", pieces.len());
        assert!(
            pieces.iter().all(|p| p.len() <= (1 << 20) + (64 << 10)),
            "{name}"
        );
        assert_eq!(pieces.concat(), big, "{name}");
        assert_eq!(stored_blobs(&store).await, 2, "{name}");

        blobs.delete(&sha).await.unwrap();
        assert!(!blobs.exists(&sha).await.unwrap(), "{name}");
        assert_eq!(blobs.size(&sha).await.unwrap(), None);
        assert!(
            matches!(blobs.read(&sha).await, Err(Error::BlobNotFound(_))),
            "{name}"
        );
        assert!(
            matches!(blobs.stream(&sha).await, Err(Error::BlobNotFound(_))),
            "{name}"
        );
        // Deleting twice is fine.
        blobs.delete(&sha).await.unwrap();
        assert_eq!(stored_blobs(&store).await, 1, "{name}");
        // Nothing left of the uploads.
        assert_eq!(leftovers(&store).await, 0, "{name}");

        // The empty blob is a blob too.
        let (empty, size) = blobs.put_reader(&b""[..], 10).await.unwrap();
        assert_eq!(
            (empty.as_str(), size),
            (to_hex(&Sha256::digest(b"")).as_str(), 0)
        );
        assert_eq!(blobs.read(&empty).await.unwrap(), &b""[..], "{name}");
    }
}

#[tokio::test]
async fn blob_over_limit_is_too_large_and_leaves_nothing() {
    for (name, _dir, store) in blob_backends().await {
        let blobs = store.blobs();
        // Over the limit in the first batch, and after whole chunks were
        // stored.
        for (stored, len) in [(0, 200_000usize), (1, 2_500_000)] {
            let data = pattern(len);
            let limit = len as u64 - 1;
            let err = blobs.put_reader(&data[..], limit).await.unwrap_err();
            assert!(
                matches!(err, Error::TooLarge { limit: l } if l == limit),
                "{name}: {err}"
            );
            assert_eq!(leftovers(&store).await, 0, "{name}");
            assert_eq!(stored_blobs(&store).await, stored, "{name}");
            // Exactly at the limit is fine.
            let (_, size) = blobs.put_reader(&data[..], len as u64).await.unwrap();
            assert_eq!(size, len as u64, "{name}");
        }
        assert!(
            matches!(blobs.read("../../x").await, Err(Error::InvalidHash(_))),
            "{name}"
        );
        assert!(matches!(
            blobs.stream("staging-0123").await,
            Err(Error::InvalidHash(_))
        ));
    }
}

#[tokio::test]
async fn blob_put_keeps_a_resumable_hash_state() {
    let input = pattern(2_300_000);
    let more = b"appended update";
    let mut expected_state = ResumableSha256::new();
    expected_state.update(&input);
    let expected_state = expected_state.state();
    let mut whole = input.clone();
    whole.extend_from_slice(more);
    for (name, _dir, store) in blob_backends().await {
        let put = store
            .blobs()
            .put_reader_resumable(&input[..], u64::MAX)
            .await
            .unwrap();
        assert_eq!(put.size, input.len() as u64);
        assert_eq!(put.hash_state, expected_state, "{name}");
        let mut resumed = ResumableSha256::resume(&put.hash_state).unwrap();
        assert_eq!(resumed.bytes_hashed(), input.len() as u64);
        resumed.update(more);
        assert_eq!(
            to_hex(&resumed.finalize()),
            to_hex(&Sha256::digest(&whole)),
            "{name}"
        );
    }
}

/// A reader that yields `ready` bytes and then waits forever: a client that
/// stopped sending.
struct Stalled {
    ready: Vec<u8>,
    at: usize,
}

impl tokio::io::AsyncRead for Stalled {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let at = self.at;
        if at == self.ready.len() {
            return Poll::Pending;
        }
        let n = buf.remaining().min(self.ready.len() - at);
        buf.put_slice(&self.ready[at..at + n]);
        self.at += n;
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn a_cancelled_upload_leaves_nothing() {
    for (name, _dir, store) in blob_backends().await {
        let reader = Stalled {
            ready: pattern(2_500_000),
            at: 0,
        };
        let put = store.blobs().put_reader(reader, u64::MAX);
        // The client goes away half-way: the request's future is dropped.
        assert!(
            tokio::time::timeout(Duration::from_millis(500), put)
                .await
                .is_err(),
            "{name}"
        );
        // Cleaned up on drop (at once for a file, by a spawned task in the
        // database).
        let mut left = leftovers(&store).await;
        for _ in 0..50 {
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            left = leftovers(&store).await;
        }
        assert_eq!(left, 0, "{name}");
        assert_eq!(stored_blobs(&store).await, 0, "{name}");
    }
}

#[tokio::test]
async fn database_blobs_are_chunked_and_concurrent_stores_are_one_blob() {
    let (_dir, store) = database_blobs().await;
    let data = pattern(2_600_000);
    let puts = (0..4).map(|_| store.blobs().put_reader(&data[..], u64::MAX));
    let stored = futures_util::future::try_join_all(puts).await.unwrap();
    assert!(stored.iter().all(|(sha, _)| *sha == stored[0].0));
    let sha = &stored[0].0;
    assert_eq!(count(&store, "SELECT COUNT(*) FROM blobs").await, 1);
    // Chunks of 1 MiB and a bit: two full ones and the rest.
    assert_eq!(count(&store, "SELECT COUNT(*) FROM blob_chunks").await, 3);
    let biggest = count(&store, "SELECT MAX(LENGTH(data))::BIGINT FROM blob_chunks").await;
    assert!(
        (1 << 20..=(1 << 20) + (64 << 10)).contains(&biggest),
        "{biggest}"
    );
    assert_eq!(leftovers(&store).await, 0);
    assert_eq!(store.blobs().read(sha).await.unwrap(), data);

    // A blob deleted while it is being read ends the stream with an error,
    // not with fewer bytes.
    let mut stream = store.blobs().stream(sha).await.unwrap();
    assert!(stream.try_next().await.unwrap().is_some());
    store.blobs().delete(sha).await.unwrap();
    assert_eq!(count(&store, "SELECT COUNT(*) FROM blob_chunks").await, 0);
    let err = stream.try_next().await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
}

#[tokio::test]
async fn an_upload_swept_while_stalled_fails_and_stores_nothing() {
    let (_dir, store) = database_blobs().await;
    let (mut client, server) = tokio::io::duplex(64 << 10);
    let put = tokio::spawn({
        let store = store.clone();
        async move { store.blobs().put_reader(server, u64::MAX).await }
    });
    use tokio::io::AsyncWriteExt as _;
    let data = pattern(1_500_000);
    client.write_all(&data).await.unwrap();
    // The first chunk is stored; then the client stalls past the sweep's age.
    while count(&store, "SELECT COUNT(*) FROM blob_chunks").await == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(store.sweep_orphan_blobs(Duration::ZERO).await.unwrap(), 1);
    assert_eq!(leftovers(&store).await, 0);
    // The client carries on: the upload fails at its next chunk (so this
    // write may find the other end gone) instead of storing a blob with a
    // hole.
    let _ = client.write_all(&data).await;
    drop(client);
    let err = put.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::UploadSwept), "{err}");
    assert_eq!(leftovers(&store).await, 0);
    assert_eq!(stored_blobs(&store).await, 0);
}

#[tokio::test]
async fn database_blobs_need_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open_with(None, dir.path(), BlobBackend::Database)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DatabaseBlobsNeedPostgres), "{err}");
    assert!(err.to_string().contains("--blob-store dir"), "{err}");
    let url = format!("sqlite://{}", dir.path().join("x.db").display());
    let err = Store::open_with(Some(&url), dir.path(), BlobBackend::Database)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DatabaseBlobsNeedPostgres), "{err}");
    // Refused before anything was created.
    assert!(!dir.path().join("x.db").exists());
    // The directory with SQLite is the default.
    let store = Store::open(None, dir.path()).await.unwrap();
    assert_eq!(store.blobs().backend(), BlobBackend::Dir);
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
    for (name, _dir, store) in blob_backends().await {
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
        assert!(
            !store.blobs().exists(&other.input_sha256).await.unwrap(),
            "{name}"
        );
        assert_eq!(stored_blobs(&store).await, 0, "{name}");
    }
}

#[tokio::test]
async fn delete_keeps_blob_touched_by_an_upload_in_flight() {
    for (name, _dir, store) in blob_backends().await {
        let doc = insert(&store, r#"{"text":"A"}"#, b"%PDF popular book").await;
        age_blob(&store, &doc.input_sha256).await;
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
            "{name}: the in-flight upload's blob survives"
        );

        // Had the upload died instead, the orphan sweep removes the blob later.
        assert_eq!(
            store
                .sweep_orphan_blobs(Duration::from_secs(600))
                .await
                .unwrap(),
            0
        );
        age_blob(&store, &sha).await;
        assert_eq!(
            store
                .sweep_orphan_blobs(Duration::from_secs(600))
                .await
                .unwrap(),
            1,
            "{name}"
        );
        assert!(!store.blobs().exists(&sha).await.unwrap(), "{name}");
    }
}

#[tokio::test]
async fn orphan_sweep_keeps_referenced_blobs() {
    for (name, _dir, store) in blob_backends().await {
        let doc = insert(&store, r#"{"text":"A"}"#, b"%PDF kept").await;
        let (orphan, _) = store.blobs().put_bytes(b"orphan").await.unwrap();
        // Blobs kept as a document's update and as a rewritten output.
        let (update, _) = store.blobs().put_bytes(b"kept update").await.unwrap();
        let (output, _) = store.blobs().put_bytes(b"kept rewrite").await.unwrap();
        let rewritten = insert(&store, r#"{"text":"A"}"#, b"%PDF rewritten").await;
        for (id, update, output, rewrite) in [
            (&doc.id, Some(update.clone()), "00".repeat(32), false),
            (&rewritten.id, None, output.clone(), true),
        ] {
            let done = Done {
                pages: 1,
                stamped_pages: 1,
                update_sha256: update,
                output_sha256: output,
                output_size: 10,
                output_is_rewrite: rewrite,
                stamp_ms: 1,
            };
            store.mark_done(id, &done).await.unwrap();
        }
        for sha in [
            &doc.input_sha256,
            &orphan,
            &update,
            &output,
            &rewritten.input_sha256,
        ] {
            age_blob(&store, sha).await;
        }
        // What an upload interrupted an hour ago left.
        plant_interrupted_upload(&store).await;
        assert_eq!(
            leftovers(&store).await,
            2 - i64::from(store.blobs().root().is_some())
        );

        assert_eq!(
            store
                .sweep_orphan_blobs(Duration::from_secs(60))
                .await
                .unwrap(),
            2,
            "{name}"
        );
        assert!(
            store.blobs().exists(&doc.input_sha256).await.unwrap(),
            "{name}"
        );
        for kept in [&update, &output, &rewritten.input_sha256] {
            assert!(store.blobs().exists(kept).await.unwrap(), "{name}");
        }
        assert!(!store.blobs().exists(&orphan).await.unwrap(), "{name}");
        assert_eq!(leftovers(&store).await, 0, "{name}");
    }
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

#[tokio::test]
async fn deferred_statements_commit_together_or_not_at_all() {
    let (_dir, store) = open().await;
    let count = |store: Store| async move {
        on_db!(store.db(), pool => {
            sqlx::query("SELECT COUNT(*) AS n FROM watermarks WHERE spec_json LIKE 'deferred-%'")
                .fetch_one(pool)
                .await
                .unwrap()
                .i64("n")
                .unwrap()
        })
    };
    // `$1` twice: each use gets its value.
    let insert = "INSERT INTO watermarks (spec_sha256, spec_json, created_at) VALUES ($1, $1, $2)";
    let spec = |s: &str| peedy_store::Bind::Text(format!("deferred-{s}"));
    let now = peedy_store::Bind::I64(now_ms());

    // Committed: both rows.
    let mut tx = store.begin().await.unwrap();
    tx.defer(insert, vec![spec("a"), now.clone()])
        .await
        .unwrap();
    tx.defer(insert, vec![spec("b"), now.clone()])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(count(store.clone()).await, 2);

    // Rolled back: neither.
    let mut tx = store.begin().await.unwrap();
    tx.defer(insert, vec![spec("c"), now.clone()])
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(count(store.clone()).await, 2);

    // One fails (the spec is unique): the commit fails, nothing of the
    // transaction stays, and the database is usable at once.
    let mut tx = store.begin().await.unwrap();
    tx.defer(insert, vec![spec("d"), now.clone()])
        .await
        .unwrap();
    let deferred = tx.defer(insert, vec![spec("a"), now.clone()]).await;
    let failed = match deferred {
        // PostgreSQL runs a deferred statement at once.
        Err(_) => true,
        Ok(()) => tx.commit().await.is_err(),
    };
    assert!(failed, "a duplicate spec must fail the transaction");
    assert_eq!(count(store.clone()).await, 2);
    let mut tx = store.begin().await.unwrap();
    tx.defer(insert, vec![spec("e"), now]).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(count(store.clone()).await, 3);
}

#[tokio::test]
async fn small_blobs_are_read_whole_and_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(None, dir.path()).await.unwrap();
    let blobs = store.blobs();
    let (sha, size) = blobs.put_bytes(b"%PDF-small").await.unwrap();
    assert_eq!(size, 10);
    assert_eq!(
        blobs.read_small(&sha, 10).await.unwrap().as_deref(),
        Some(&b"%PDF-small"[..])
    );
    assert_eq!(blobs.read_small(&sha, 9).await.unwrap(), None);
    let missing = to_hex(&Sha256::digest(b"never stored"));
    assert!(matches!(
        blobs.read_small(&missing, 100).await,
        Err(Error::BlobNotFound(_))
    ));
    // The blocking handle stores the same bytes under the same name, once,
    // and leaves no temporary file behind (neither does a second put).
    let handle = blobs
        .dir()
        .expect("the default store keeps blobs in a directory");
    assert_eq!(handle.put(b"%PDF-small").unwrap(), sha);
    assert_eq!(handle.read(&sha).unwrap(), &b"%PDF-small"[..]);
    let other = handle.put(b"%PDF-other").unwrap();
    assert_eq!(blobs.read(&other).await.unwrap(), &b"%PDF-other"[..]);
    let tmp = dir.path().join("blobs").join("tmp");
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "temporary files left in {tmp:?}"
    );
}

#[tokio::test]
async fn a_dropped_transaction_leaves_nothing_and_the_database_usable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(None, dir.path()).await.unwrap();
    {
        let mut tx = store.begin().await.unwrap();
        store
            .upsert_watermark(&mut tx, r#"{"text":"dropped"}"#)
            .await
            .unwrap();
        tx.defer(
            "INSERT INTO watermarks (spec_sha256, spec_json, created_at) VALUES ($1, $1, 0)",
            vec![peedy_store::Bind::Text("dropped-too".into())],
        )
        .await
        .unwrap();
        // Dropped here without commit or rollback (a cancelled request).
    }
    // Many tasks at once, each its own transaction, on the one connection.
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut tx = store.begin().await.unwrap();
                store
                    .upsert_watermark(&mut tx, &format!(r#"{{"text":"t{i}"}}"#))
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let n = on_db!(store.db(), pool => {
        sqlx::query("SELECT COUNT(*) AS n FROM watermarks")
            .fetch_one(pool)
            .await
            .unwrap()
            .i64("n")
            .unwrap()
    });
    assert_eq!(n, 20, "the dropped transaction's rows must not be there");
}

/// Reads from `bytes` in pieces of at most `piece` bytes, as a network
/// upload arrives.
struct Trickle<'a> {
    bytes: &'a [u8],
    piece: usize,
}

impl tokio::io::AsyncRead for Trickle<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self.piece.min(self.bytes.len()).min(buf.remaining());
        buf.put_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn uploads_held_in_memory_are_stored_durably_and_let_go() {
    const MIB: usize = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    // 16 MiB: uploads of up to 4 MiB are gathered in memory.
    let store = Store::open(None, dir.path())
        .await
        .unwrap()
        .with_blob_memory(16 * MIB as u64);
    let blobs = store.blobs();
    let book = pattern(3 * MIB + 17);
    let put = async |bytes: &[u8]| {
        let reader = Trickle {
            bytes,
            piece: 64 * 1024,
        };
        blobs.put_reader_resumable(reader, u64::MAX).await.unwrap()
    };
    let stored = put(&book).await;
    assert_eq!(stored.sha256, to_hex(&Sha256::digest(&book)));
    assert_eq!(stored.size, book.len() as u64);
    // On disk, complete, before the upload returned.
    let file = blobs.path(&stored.sha256).unwrap().unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), book);
    // The same book uploaded again: one blob, held twice.
    assert_eq!(put(&book).await.sha256, stored.sha256);
    let tmp = dir.path().join("blobs").join("tmp");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);

    // Reads come from memory while it is held: the file can go (it is
    // removed behind the store's back here, to tell the two apart).
    std::fs::remove_file(&file).unwrap();
    assert_eq!(blobs.read(&stored.sha256).await.unwrap(), book);
    assert_eq!(
        blobs.size(&stored.sha256).await.unwrap(),
        Some(book.len() as u64)
    );
    let pieces: Vec<bytes::Bytes> = blobs
        .stream(&stored.sha256)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let streamed = pieces.concat();
    assert_eq!(streamed, book);
    assert_eq!(
        blobs.read_small(&stored.sha256, MIB as u64).await.unwrap(),
        None
    );
    let handle = blobs.dir().unwrap();
    assert_eq!(handle.read(&stored.sha256).unwrap(), book);
    blobs.release(&stored.sha256);
    assert_eq!(
        blobs.read(&stored.sha256).await.unwrap(),
        book,
        "one hold left"
    );
    blobs.release(&stored.sha256);
    assert!(matches!(
        blobs.read(&stored.sha256).await,
        Err(Error::BlobNotFound(_))
    ));

    // Larger than a quarter of the budget: streamed to its file, not held.
    let big = pattern(5 * MIB);
    let big_sha = put(&big).await.sha256;
    let big_file = blobs.path(&big_sha).unwrap().unwrap();
    assert_eq!(std::fs::read(&big_file).unwrap(), big);
    std::fs::remove_file(&big_file).unwrap();
    assert!(matches!(
        blobs.read(&big_sha).await,
        Err(Error::BlobNotFound(_))
    ));

    // An update stored and held by the stamping job; deleting the blob
    // drops it from memory too.
    let update = handle.put_held(b"%update").unwrap();
    assert_eq!(
        blobs.read_small(&update, 100).await.unwrap().as_deref(),
        Some(&b"%update"[..])
    );
    blobs.delete(&update).await.unwrap();
    assert!(matches!(
        blobs.read(&update).await,
        Err(Error::BlobNotFound(_))
    ));
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}
