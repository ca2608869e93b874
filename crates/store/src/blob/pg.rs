//! Blobs in PostgreSQL: chunks of about 1 MiB in `blob_chunks`, one row per
//! blob in `blobs` (migration 0004).
//!
//! An upload registers a staging key in `blob_staging`, streams its bytes
//! into chunks under that key while hashing them (one batch in memory at a
//! time; every chunk refreshes the staging row, and is only written while
//! that row exists), then in one transaction removes the staging row and
//! either adopts the chunks under the final SHA-256 (inserting the `blobs`
//! row) or, when those bytes are already stored, drops them and refreshes
//! the existing blob's `touched_at`. A failed upload removes its chunks at
//! once, a cancelled one from a spawned task, and a crashed one leaves a
//! staging row that [`PgBlobs::sweep_staging`] removes once it is old.
//!
//! Deletes are conditional on `touched_at` in the same statement that takes
//! the row lock, so an upload that refreshed the blob is never undone.

use bytes::Bytes;
use futures_util::stream;
use sqlx::{PgPool, Row as _};

use super::{BatchSink, BlobStream, Reservation, StoredBlob, read_upload, to_hex};
use crate::{Error, Result, now_ms};

const STAGING_PREFIX: &str = "staging-";
/// Rounds of "insert, else refresh" before adopting gives up: each round
/// only repeats when a concurrent delete removed the blob in between.
const ADOPT_ROUNDS: usize = 8;

/// The PostgreSQL blob backend. Cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub(super) struct PgBlobs {
    pool: PgPool,
}

/// Chunks of one upload, written under its staging key.
struct ChunkSink {
    pool: PgPool,
    key: String,
    seq: i32,
}

impl BatchSink for ChunkSink {
    async fn write(&mut self, batch: Vec<u8>) -> Result<()> {
        // One round trip: refresh the staging row (so the sweep leaves a slow
        // upload alone) and insert the chunk only if that row still exists.
        let written = sqlx::query(
            "WITH staging AS (
                 UPDATE blob_staging SET touched_at = $4 WHERE key = $1 RETURNING key
             )
             INSERT INTO blob_chunks (blob_key, seq, data) SELECT key, $2, $3 FROM staging",
        )
        .bind(&self.key)
        .bind(self.seq)
        .bind(batch)
        .bind(now_ms())
        .execute(&self.pool)
        .await?
        .rows_affected();
        if written != 1 {
            return Err(Error::UploadSwept);
        }
        self.seq = self
            .seq
            .checked_add(1)
            .ok_or_else(|| Error::Io(std::io::Error::other("blob has too many chunks")))?;
        Ok(())
    }
}

/// Removes an upload's staging row and chunks when dropped while armed: a
/// cancelled upload (client gone) leaves nothing once the spawned cleanup
/// ran; if it cannot run, the sweep removes them later.
struct StagingGuard {
    pool: PgPool,
    key: Option<String>,
}

impl StagingGuard {
    /// Removes the staging row and chunks now (failed uploads), and disarms.
    async fn clean_now(&mut self) {
        if let Some(key) = self.key.take()
            && let Err(e) = remove_staging(&self.pool, &key).await
        {
            tracing::warn!(%key, "could not remove an upload's chunks (the sweep will): {e}");
        }
    }
}

impl Drop for StagingGuard {
    fn drop(&mut self) {
        if let Some(key) = self.key.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let pool = self.pool.clone();
            runtime.spawn(async move {
                if let Err(e) = remove_staging(&pool, &key).await {
                    tracing::warn!(%key, "could not remove a cancelled upload's chunks (the sweep will): {e}");
                }
            });
        }
    }
}

/// Deletes, in one transaction, the row `key` of `table` (`blobs` keyed by
/// `sha256`, or `blob_staging` keyed by `key`) if it was not touched after
/// `at_ms`, and then the chunks stored under `key`. Returns whether the row
/// was deleted. The row lock serializes this with stores and uploads of the
/// same key.
async fn delete_with_chunks(pool: &PgPool, row: RowOf, key: &str, at_ms: i64) -> Result<bool> {
    let sql = match row {
        RowOf::Blob => "DELETE FROM blobs WHERE sha256 = $1 AND touched_at <= $2",
        RowOf::Staging => "DELETE FROM blob_staging WHERE key = $1 AND touched_at <= $2",
    };
    let mut tx = pool.begin().await?;
    let removed = sqlx::query(sql)
        .bind(key)
        .bind(at_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if removed == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query("DELETE FROM blob_chunks WHERE blob_key = $1")
        .bind(key)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Which row owns a set of chunks.
#[derive(Clone, Copy)]
enum RowOf {
    Blob,
    Staging,
}

async fn remove_staging(pool: &PgPool, key: &str) -> Result<bool> {
    delete_with_chunks(pool, RowOf::Staging, key, i64::MAX).await
}

impl PgBlobs {
    pub(super) fn new(pool: PgPool) -> PgBlobs {
        PgBlobs { pool }
    }

    pub(super) async fn put_reader_resumable(
        &self,
        reader: impl tokio::io::AsyncRead + Unpin,
        limit: u64,
    ) -> Result<StoredBlob> {
        let key = format!("{STAGING_PREFIX}{}", to_hex(&rand::random::<[u8; 16]>()));
        let now = now_ms();
        sqlx::query("INSERT INTO blob_staging (key, created_at, touched_at) VALUES ($1, $2, $2)")
            .bind(&key)
            .bind(now)
            .execute(&self.pool)
            .await?;
        let mut guard = StagingGuard {
            pool: self.pool.clone(),
            key: Some(key.clone()),
        };
        match self.fill_and_adopt(key, reader, limit).await {
            Ok(stored) => {
                // The staging row and any leftover chunks went with the
                // adopting transaction.
                guard.key = None;
                Ok(stored)
            }
            Err(e) => {
                guard.clean_now().await;
                Err(e)
            }
        }
    }

    async fn fill_and_adopt(
        &self,
        key: String,
        reader: impl tokio::io::AsyncRead + Unpin,
        limit: u64,
    ) -> Result<StoredBlob> {
        let mut sink = ChunkSink {
            pool: self.pool.clone(),
            key,
            seq: 0,
        };
        // Chunks are written as they come: nothing is gathered in memory.
        let upload = read_upload(reader, limit, &mut sink, &mut Reservation::none()).await?;
        if !upload.rest.is_empty() {
            sink.write(upload.rest).await?;
        }
        self.adopt(&sink.key, &upload.sha256, upload.size).await?;
        Ok(StoredBlob {
            sha256: upload.sha256,
            size: upload.size,
            hash_state: upload.hash_state,
        })
    }

    /// Makes the chunks under `key` blob `sha256`, or drops them if that blob
    /// exists (refreshing its `touched_at`), in one transaction.
    async fn adopt(&self, key: &str, sha256: &str, size: u64) -> Result<()> {
        let size = i64::try_from(size)
            .map_err(|_| Error::Io(std::io::Error::other("blob size out of range")))?;
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        // Taking the staging row first serializes with the sweep: if it went,
        // so did (some of) the chunks, and nothing must be adopted.
        let staged = sqlx::query("DELETE FROM blob_staging WHERE key = $1")
            .bind(key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if staged != 1 {
            return Err(Error::UploadSwept);
        }
        for _ in 0..ADOPT_ROUNDS {
            // Waits for a concurrent insert or delete of the same blob to
            // finish, then inserts or finds it.
            let inserted = sqlx::query(
                "INSERT INTO blobs (sha256, size, created_at, touched_at) VALUES ($1, $2, $3, $3)
                 ON CONFLICT (sha256) DO NOTHING",
            )
            .bind(sha256)
            .bind(size)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 1 {
                sqlx::query("UPDATE blob_chunks SET blob_key = $1 WHERE blob_key = $2")
                    .bind(sha256)
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok(());
            }
            // Already stored: refresh it (this locks the row, so a delete
            // that has not run yet now sees it as touched) and drop ours.
            let touched = sqlx::query("UPDATE blobs SET touched_at = $2 WHERE sha256 = $1")
                .bind(sha256)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if touched == 1 {
                sqlx::query("DELETE FROM blob_chunks WHERE blob_key = $1")
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok(());
            }
            // Deleted between the two statements: insert it after all.
        }
        Err(Error::Io(std::io::Error::other(format!(
            "blob {sha256} kept being deleted while it was stored"
        ))))
    }

    pub(super) async fn size(&self, sha256: &str) -> Result<Option<u64>> {
        let row = sqlx::query("SELECT size FROM blobs WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => Ok(None),
            Some(row) => {
                let size: i64 = row.try_get("size")?;
                Ok(Some(u64::try_from(size).map_err(|_| {
                    Error::Io(std::io::Error::other(format!(
                        "blob {sha256} has a negative size"
                    )))
                })?))
            }
        }
    }

    /// The blob chunk by chunk, one small query per chunk: no connection is
    /// held between pieces, and at most one chunk is in memory.
    pub(super) async fn stream(&self, sha256: &str) -> Result<BlobStream> {
        let size = self
            .size(sha256)
            .await?
            .ok_or_else(|| Error::BlobNotFound(sha256.to_owned()))?;
        let state = ChunkCursor {
            pool: self.pool.clone(),
            sha256: sha256.to_owned(),
            seq: 0,
            left: size,
        };
        let inner = stream::try_unfold(state, |mut cursor| async move {
            if cursor.left == 0 {
                return Ok(None);
            }
            let piece = cursor.next_chunk().await?;
            Ok(Some((piece, cursor)))
        });
        Ok(BlobStream {
            size,
            inner: Box::pin(inner),
        })
    }

    pub(super) async fn delete_if_untouched_since(&self, sha256: &str, at_ms: i64) -> Result<bool> {
        delete_with_chunks(&self.pool, RowOf::Blob, sha256, at_ms).await
    }

    pub(super) async fn untouched_since(&self, cutoff_ms: i64) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT sha256 FROM blobs WHERE touched_at <= $1")
            .bind(cutoff_ms)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|row| row.try_get("sha256"))
            .collect::<sqlx::Result<_>>()?)
    }

    /// Removes staging rows (and their chunks) not touched after
    /// `cutoff_ms`: uploads that crashed, or stalled that long.
    pub(super) async fn sweep_staging(&self, cutoff_ms: i64) -> Result<u64> {
        let rows = sqlx::query("SELECT key FROM blob_staging WHERE touched_at <= $1")
            .bind(cutoff_ms)
            .fetch_all(&self.pool)
            .await?;
        let mut removed = 0;
        for row in rows {
            let key: String = row.try_get("key")?;
            if delete_with_chunks(&self.pool, RowOf::Staging, &key, cutoff_ms).await? {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Where a [`BlobStream`] of the database backend is.
struct ChunkCursor {
    pool: PgPool,
    sha256: String,
    seq: i32,
    left: u64,
}

impl ChunkCursor {
    async fn next_chunk(&mut self) -> std::io::Result<Bytes> {
        let row = sqlx::query("SELECT data FROM blob_chunks WHERE blob_key = $1 AND seq = $2")
            .bind(&self.sha256)
            .bind(self.seq)
            .fetch_optional(&self.pool)
            .await
            .map_err(std::io::Error::other)?;
        let Some(row) = row else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "blob {} has no chunk {} (deleted while being read?)",
                    self.sha256, self.seq
                ),
            ));
        };
        let data: Vec<u8> = row.try_get("data").map_err(std::io::Error::other)?;
        let len = data.len() as u64;
        if len == 0 || len > self.left {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "blob {} chunk {} does not fit the blob's size",
                    self.sha256, self.seq
                ),
            ));
        }
        self.left -= len;
        self.seq += 1;
        Ok(Bytes::from(data))
    }
}
