//! Documents, their watermark specs and callback delivery state: the rows
//! behind `/api/v1/documents/:id` and `/status`.
//!
//! A document's life: [`Store::insert_document`] (status `queued`, in the
//! same transaction as its stamping job), [`Store::mark_running`],
//! [`Store::mark_done`] or [`Store::mark_failed`], then [`Store::set_delivery`]
//! as its callback is delivered, and finally [`Store::delete_document`] (by
//! the client, or by the sweeper once [`Store::expired_documents`] lists it).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::blob::to_hex;
use crate::{
    Bind, BlobBackend, DbRow, DocumentId, Error, Result, Store, Tx, WatermarkId, now_ms, on_db,
    on_tx,
};

/// Where a document is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DocStatus {
    /// Accepted, waiting for a stamping worker.
    Queued,
    /// A worker is stamping it.
    Running,
    /// Stamped; the output can be downloaded.
    Done,
    /// Stamping failed for good (see the error code and detail).
    Failed,
}

impl DocStatus {
    /// All statuses, in life order.
    pub const ALL: [DocStatus; 4] = [
        DocStatus::Queued,
        DocStatus::Running,
        DocStatus::Done,
        DocStatus::Failed,
    ];

    /// The status as stored and shown: "queued", "running", "done", "failed".
    pub fn as_str(self) -> &'static str {
        match self {
            DocStatus::Queued => "queued",
            DocStatus::Running => "running",
            DocStatus::Done => "done",
            DocStatus::Failed => "failed",
        }
    }
}

impl FromStr for DocStatus {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        DocStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| Error::InvalidStatus(s.to_owned()))
    }
}

impl fmt::Display for DocStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A document as accepted from an upload (its input blob already stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDocument {
    /// Its id, from [`DocumentId::random`].
    pub id: DocumentId,
    /// The upload's filename, already sanitized by the caller (never a path).
    pub filename: String,
    /// The watermark spec to stamp, from [`Store::upsert_watermark`].
    pub watermark_id: WatermarkId,
    /// SHA-256 (hex) of the input blob.
    pub input_sha256: String,
    /// Input size in bytes.
    pub input_size: i64,
    /// [`ResumableSha256::state`](crate::ResumableSha256::state) at the end
    /// of the input, if known (lets the output hash skip the input).
    pub input_hash_state: Option<String>,
    /// Where to deliver the result, if the client asked for a callback.
    pub callback_url: Option<String>,
    /// The id of the request that uploaded it, for log correlation.
    pub request_id: Option<String>,
    /// When the sweeper may delete it (unix ms).
    pub expires_at_ms: i64,
}

/// The result of stamping a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Done {
    /// Pages in the document.
    pub pages: i64,
    /// Pages that got the watermark.
    pub stamped_pages: i64,
    /// Blob of the incremental update appended to the input (output = input
    /// bytes followed by it); `None` when the output was rewritten.
    pub update_sha256: Option<String>,
    /// SHA-256 of the whole output file (as downloaded).
    pub output_sha256: String,
    /// Size of the whole output file in bytes.
    pub output_size: i64,
    /// True when the output is a full rewrite stored as its own blob
    /// (`output_sha256`) instead of input + update.
    pub output_is_rewrite: bool,
    /// Milliseconds the engine took.
    pub stamp_ms: i64,
}

/// Callback delivery state of a document, shown in `/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeliveryState {
    /// "pending", "delivering", "delivered", "failed", "gone" or
    /// "waiting_breaker".
    pub state: String,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// The `webhook-id` header value, the same on every attempt.
    pub webhook_id: String,
    /// HTTP status of the last attempt, if it got a response.
    pub last_status: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the next attempt is due (unix ms).
    pub next_attempt_at_ms: Option<i64>,
    /// When it was delivered (unix ms).
    pub delivered_at_ms: Option<i64>,
}

/// A document row with its delivery state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Document {
    /// Its id.
    pub id: DocumentId,
    /// Sanitized upload filename.
    pub filename: String,
    /// Where it is in its life.
    pub status: DocStatus,
    /// The watermark spec it is stamped with.
    pub watermark_id: WatermarkId,
    /// SHA-256 (hex) of the input blob.
    pub input_sha256: String,
    /// Input size in bytes.
    pub input_size: i64,
    /// SHA-256 state at the end of the input (see [`NewDocument`]).
    pub input_hash_state: Option<String>,
    /// Blob of the appended update, when done incrementally.
    pub update_sha256: Option<String>,
    /// SHA-256 of the whole output (a blob of its own only when
    /// `output_is_rewrite`).
    pub output_sha256: Option<String>,
    /// Output size in bytes.
    pub output_size: Option<i64>,
    /// The output was rewritten rather than appended to the input.
    pub output_is_rewrite: bool,
    /// Pages in the document.
    pub pages: Option<i64>,
    /// Pages that got the watermark.
    pub stamped_pages: Option<i64>,
    /// Machine-readable failure code (status `failed`).
    pub error_code: Option<String>,
    /// Human-readable failure reason.
    pub error_detail: Option<String>,
    /// Callback URL, if any.
    pub callback_url: Option<String>,
    /// Callback delivery state, once delivery started.
    pub delivery: Option<DeliveryState>,
    /// Id of the upload request.
    pub request_id: Option<String>,
    /// When it was accepted (unix ms).
    pub created_at_ms: i64,
    /// When stamping last started (unix ms).
    pub started_at_ms: Option<i64>,
    /// When stamping finished or failed (unix ms).
    pub finished_at_ms: Option<i64>,
    /// Milliseconds the engine took.
    pub stamp_ms: Option<i64>,
    /// When the sweeper may delete it (unix ms).
    pub expires_at_ms: i64,
}

// INSERT … SELECT … WHERE EXISTS: a delivery finishing after its document
// was deleted must not fail on the foreign key.
const UPSERT_DELIVERY: &str = "INSERT INTO deliveries (document_id, state, attempts, webhook_id,
         last_status, last_error, next_attempt_at, delivered_at, updated_at)
     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9
     WHERE EXISTS (SELECT 1 FROM documents WHERE id = $1)
     ON CONFLICT (document_id) DO UPDATE SET
         state = excluded.state, attempts = excluded.attempts,
         webhook_id = excluded.webhook_id, last_status = excluded.last_status,
         last_error = excluded.last_error,
         next_attempt_at = excluded.next_attempt_at,
         delivered_at = excluded.delivered_at, updated_at = excluded.updated_at";

/// The values of [`UPSERT_DELIVERY`] for document `id` and state `d`.
fn delivery_binds(id: &DocumentId, d: &DeliveryState) -> Vec<Bind> {
    vec![
        Bind::Text(id.as_str().to_owned()),
        Bind::Text(d.state.clone()),
        Bind::I64(d.attempts),
        Bind::Text(d.webhook_id.clone()),
        Bind::OptI64(d.last_status),
        Bind::OptText(d.last_error.clone()),
        Bind::OptI64(d.next_attempt_at_ms),
        Bind::OptI64(d.delivered_at_ms),
        Bind::I64(now_ms()),
    ]
}

/// The document columns [`decode_document`] reads, as `$prefix.column`.
macro_rules! document_columns {
    ($p:literal) => {
        concat!(
            $p,
            "id, ",
            $p,
            "filename, ",
            $p,
            "status, ",
            $p,
            "watermark_id, ",
            $p,
            "input_sha256, ",
            $p,
            "input_size, ",
            $p,
            "input_hash_state, ",
            $p,
            "update_sha256, ",
            $p,
            "output_sha256, ",
            $p,
            "output_size, ",
            $p,
            "output_is_rewrite, ",
            $p,
            "pages, ",
            $p,
            "stamped_pages, ",
            $p,
            "error_code, ",
            $p,
            "error_detail, ",
            $p,
            "callback_url, ",
            $p,
            "request_id, ",
            $p,
            "created_at, ",
            $p,
            "started_at, ",
            $p,
            "finished_at, ",
            $p,
            "stamp_ms, ",
            $p,
            "expires_at"
        )
    };
}

const SELECT_DOCUMENT: &str = concat!(
    "SELECT ",
    document_columns!("d."),
    ",
       v.state AS delivery_state, v.attempts AS delivery_attempts,
       v.webhook_id AS delivery_webhook_id, v.last_status AS delivery_last_status,
       v.last_error AS delivery_last_error,
       v.next_attempt_at AS delivery_next_attempt_at,
       v.delivered_at AS delivery_delivered_at
FROM documents d LEFT JOIN deliveries v ON v.document_id = d.id
WHERE d.id = $1"
);

/// Starts (or restarts) stamping a document that is queued or running, and
/// returns it — one statement instead of a read and a write per job.
const START_STAMPING: &str = concat!(
    "UPDATE documents SET status = 'running', started_at = $1
     WHERE id = $2 AND status IN ('queued', 'running')
     RETURNING ",
    document_columns!(""),
    ", NULL AS delivery_state"
);

fn decode_document(row: &impl DbRow) -> Result<Document> {
    let delivery = match row.opt_string("delivery_state")? {
        Some(state) => Some(DeliveryState {
            state,
            attempts: row.i64("delivery_attempts")?,
            webhook_id: row.string("delivery_webhook_id")?,
            last_status: row.opt_i64("delivery_last_status")?,
            last_error: row.opt_string("delivery_last_error")?,
            next_attempt_at_ms: row.opt_i64("delivery_next_attempt_at")?,
            delivered_at_ms: row.opt_i64("delivery_delivered_at")?,
        }),
        None => None,
    };
    Ok(Document {
        // Ids in the table were made by `DocumentId`; do not re-validate.
        id: DocumentId::from_db(row.string("id")?),
        filename: row.string("filename")?,
        status: row.string("status")?.parse()?,
        watermark_id: WatermarkId(row.i64("watermark_id")?),
        input_sha256: row.string("input_sha256")?,
        input_size: row.i64("input_size")?,
        input_hash_state: row.opt_string("input_hash_state")?,
        update_sha256: row.opt_string("update_sha256")?,
        output_sha256: row.opt_string("output_sha256")?,
        output_size: row.opt_i64("output_size")?,
        output_is_rewrite: row.i32("output_is_rewrite")? != 0,
        pages: row.opt_i64("pages")?,
        stamped_pages: row.opt_i64("stamped_pages")?,
        error_code: row.opt_string("error_code")?,
        error_detail: row.opt_string("error_detail")?,
        callback_url: row.opt_string("callback_url")?,
        delivery,
        request_id: row.opt_string("request_id")?,
        created_at_ms: row.i64("created_at")?,
        started_at_ms: row.opt_i64("started_at")?,
        finished_at_ms: row.opt_i64("finished_at")?,
        stamp_ms: row.opt_i64("stamp_ms")?,
        expires_at_ms: row.i64("expires_at")?,
    })
}

/// Is `sha256` still referenced as a blob by some document? (An output hash
/// is a blob only for rewritten outputs; otherwise the output is input +
/// update and its hash names no file.)
const BLOB_REFERENCED: &str = "\
SELECT 1 AS one FROM documents
WHERE input_sha256 = $1 OR update_sha256 = $1 OR (output_is_rewrite = 1 AND output_sha256 = $1)
LIMIT 1";

/// Blobs in the database not touched since `$1` that no document
/// references (the set [`BLOB_REFERENCED`] tests one by one).
const UNREFERENCED_BLOBS: &str = "\
SELECT b.sha256 FROM blobs b
WHERE b.touched_at <= $1
  AND NOT EXISTS (SELECT 1 FROM documents d WHERE d.input_sha256 = b.sha256)
  AND NOT EXISTS (SELECT 1 FROM documents d WHERE d.update_sha256 = b.sha256)
  AND NOT EXISTS (SELECT 1 FROM documents d
                  WHERE d.output_is_rewrite = 1 AND d.output_sha256 = b.sha256)";

impl Store {
    /// Returns the id of the watermark spec `spec_json` (canonical JSON text
    /// made by the caller), inserting it if it is new: one row per distinct
    /// spec, found by the SHA-256 of the text.
    pub async fn upsert_watermark(&self, tx: &mut Tx, spec_json: &str) -> Result<WatermarkId> {
        let hash = to_hex(&Sha256::digest(spec_json.as_bytes()));
        let now = now_ms();
        let id = on_tx!(tx, conn => {
            // Insert first (not select first): on SQLite the transaction then
            // holds the write lock from its first statement.
            sqlx::query(
                "INSERT INTO watermarks (spec_sha256, spec_json, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (spec_sha256) DO NOTHING",
            )
            .bind(&hash)
            .bind(spec_json)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            sqlx::query("SELECT id FROM watermarks WHERE spec_sha256 = $1")
                .bind(&hash)
                .fetch_one(&mut *conn)
                .await?
                .i64("id")?
        });
        Ok(WatermarkId(id))
    }

    /// The spec JSON of a watermark, if it exists.
    pub async fn watermark(&self, id: WatermarkId) -> Result<Option<String>> {
        let spec = on_db!(self.db(), pool => {
            match sqlx::query("SELECT spec_json FROM watermarks WHERE id = $1")
                .bind(id.0)
                .fetch_optional(pool)
                .await?
            {
                Some(row) => Some(row.string("spec_json")?),
                None => None,
            }
        });
        Ok(spec)
    }

    /// Records newly uploaded documents (status `queued`) inside `tx`, in
    /// as few statements as possible: one multi-row `INSERT` per 100
    /// documents (each statement is a round trip to the database).
    pub async fn insert_documents(&self, tx: &mut Tx, docs: &[NewDocument]) -> Result<()> {
        let now = now_ms();
        for chunk in docs.chunks(100) {
            let mut binds = Vec::with_capacity(chunk.len() * 10);
            let rows: Vec<String> = chunk
                .iter()
                .map(|doc| {
                    Bind::push_row(
                        &mut binds,
                        "($1, $2, 'queued', $3, $4, $5, $6, $7, $8, $9, $10)",
                        [
                            Bind::Text(doc.id.as_str().to_owned()),
                            Bind::Text(doc.filename.clone()),
                            Bind::I64(doc.watermark_id.0),
                            Bind::Text(doc.input_sha256.clone()),
                            Bind::I64(doc.input_size),
                            Bind::OptText(doc.callback_url.clone()),
                            Bind::OptText(doc.request_id.clone()),
                            Bind::I64(now),
                            Bind::I64(doc.expires_at_ms),
                            Bind::OptText(doc.input_hash_state.clone()),
                        ],
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO documents (id, filename, status, watermark_id, input_sha256,
                     input_size, callback_url, request_id, created_at, expires_at,
                     input_hash_state)
                 VALUES {}",
                rows.join(", ")
            );
            tx.defer(&sql, binds).await?;
        }
        Ok(())
    }

    /// Records one newly uploaded document (see
    /// [`insert_documents`](Self::insert_documents)).
    pub async fn insert_document(&self, tx: &mut Tx, doc: &NewDocument) -> Result<()> {
        self.insert_documents(tx, std::slice::from_ref(doc)).await
    }

    /// The document with its delivery state, if it exists.
    pub async fn document(&self, id: &DocumentId) -> Result<Option<Document>> {
        on_db!(self.db(), pool => {
            match sqlx::query(SELECT_DOCUMENT).bind(id.as_str()).fetch_optional(pool).await? {
                Some(row) => decode_document(&row).map(Some),
                None => Ok(None),
            }
        })
    }

    /// Records that stamping (re)started — status `running`, `started_at`
    /// now — and returns the document (without its delivery state, which a
    /// document not yet done does not have). `None` if it is not queued or
    /// running: a document already `done` stays done (a job re-run after its
    /// worker died produces the same output), a failed one stays failed, a
    /// deleted one is gone; read it with [`document`](Self::document) to
    /// tell which.
    pub async fn mark_running(&self, id: &DocumentId) -> Result<Option<Document>> {
        on_db!(self.db(), pool => {
            match sqlx::query(START_STAMPING)
                .bind(now_ms())
                .bind(id.as_str())
                .fetch_optional(pool)
                .await?
            {
                Some(row) => decode_document(&row).map(Some),
                None => Ok(None),
            }
        })
    }

    /// Records the stamped result: status `done`, `finished_at` now, clears
    /// any earlier error.
    pub async fn mark_done(&self, id: &DocumentId, done: &Done) -> Result<()> {
        let mut tx = self.begin().await?;
        self.mark_done_in(&mut tx, id, done).await?;
        tx.commit().await
    }

    /// [`mark_done`](Self::mark_done) inside the caller's transaction (the
    /// stamping job commits it with the callback's job and its own
    /// completion).
    pub async fn mark_done_in(&self, tx: &mut Tx, id: &DocumentId, done: &Done) -> Result<()> {
        tx.defer(
            "UPDATE documents SET status = 'done', pages = $1, stamped_pages = $2,
                 update_sha256 = $3, output_sha256 = $4, output_size = $5,
                 output_is_rewrite = $6, stamp_ms = $7, finished_at = $8,
                 error_code = NULL, error_detail = NULL
             WHERE id = $9",
            vec![
                Bind::I64(done.pages),
                Bind::I64(done.stamped_pages),
                Bind::OptText(done.update_sha256.clone()),
                Bind::Text(done.output_sha256.clone()),
                Bind::I64(done.output_size),
                Bind::I32(i32::from(done.output_is_rewrite)),
                Bind::I64(done.stamp_ms),
                Bind::I64(now_ms()),
                Bind::Text(id.as_str().to_owned()),
            ],
        )
        .await
    }

    /// Records a final failure: status `failed` with a code and a reason,
    /// `finished_at` now. A document already `done` stays done.
    pub async fn mark_failed(&self, id: &DocumentId, code: &str, detail: &str) -> Result<()> {
        on_db!(self.db(), pool => {
            sqlx::query(
                "UPDATE documents SET status = 'failed', error_code = $1, error_detail = $2,
                     finished_at = $3
                 WHERE id = $4 AND status <> 'done'",
            )
            .bind(code)
            .bind(detail)
            .bind(now_ms())
            .bind(id.as_str())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Sets the callback delivery state shown in `/status` (insert or
    /// replace). Does nothing if the document is gone.
    pub async fn set_delivery(&self, id: &DocumentId, d: &DeliveryState) -> Result<()> {
        self.db()
            .execute(UPSERT_DELIVERY, delivery_binds(id, d))
            .await?;
        Ok(())
    }

    /// [`set_delivery`](Self::set_delivery) inside the caller's transaction:
    /// commit it together with the callback job, so the job cannot run (and
    /// record its outcome) before this state is written.
    pub async fn set_delivery_in(
        &self,
        tx: &mut Tx,
        id: &DocumentId,
        d: &DeliveryState,
    ) -> Result<()> {
        tx.defer(UPSERT_DELIVERY, delivery_binds(id, d)).await
    }

    /// Deletes a document, its delivery state and its jobs; then deletes its
    /// blobs that no other document references. Returns false if there was no
    /// such document.
    ///
    /// A blob touched after the document last wrote it (an upload of the same
    /// bytes may be in flight: its `put_reader` found the blob but its
    /// document is not committed yet) is left for
    /// [`Store::sweep_orphan_blobs`] instead.
    pub async fn delete_document(&self, id: &DocumentId) -> Result<bool> {
        let mut tx = self.begin().await?;
        let unreferenced: Option<Vec<(String, i64)>> = on_tx!(&mut tx, conn => {
            // Write first so SQLite's lock is held from the start (it is
            // BEGIN IMMEDIATE anyway) and PostgreSQL locks the row.
            let row = sqlx::query(
                "DELETE FROM documents WHERE id = $1
                 RETURNING input_sha256, update_sha256, output_sha256, output_is_rewrite,
                           created_at, finished_at",
            )
            .bind(id.as_str())
            .fetch_optional(&mut *conn)
            .await?;
            match row {
                None => None,
                Some(row) => {
                    sqlx::query("DELETE FROM deliveries WHERE document_id = $1")
                        .bind(id.as_str())
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("DELETE FROM jobs WHERE document_id = $1")
                        .bind(id.as_str())
                        .execute(&mut *conn)
                        .await?;
                    let created = row.i64("created_at")?;
                    let finished = row.opt_i64("finished_at")?.unwrap_or(created);
                    // Each blob with the time the document last wrote it.
                    let mut blobs = vec![(row.string("input_sha256")?, created)];
                    if let Some(update) = row.opt_string("update_sha256")? {
                        blobs.push((update, finished));
                    }
                    if row.i32("output_is_rewrite")? != 0
                        && let Some(output) = row.opt_string("output_sha256")?
                    {
                        blobs.push((output, finished));
                    }
                    blobs.sort();
                    blobs.dedup_by(|a, b| a.0 == b.0);
                    let mut unreferenced = Vec::new();
                    for (sha, written_at) in blobs {
                        let referenced = sqlx::query(BLOB_REFERENCED)
                            .bind(&sha)
                            .fetch_optional(&mut *conn)
                            .await?
                            .is_some();
                        if !referenced {
                            unreferenced.push((sha, written_at));
                        }
                    }
                    Some(unreferenced)
                }
            }
        });
        let Some(unreferenced) = unreferenced else {
            tx.rollback().await?;
            return Ok(false);
        };
        tx.commit().await?;
        for (sha, written_at) in unreferenced {
            if !self
                .blobs()
                .delete_if_untouched_since(&sha, written_at)
                .await?
            {
                tracing::debug!(
                    blob = %sha,
                    "blob touched after its document wrote it (or gone); left for the orphan sweep"
                );
            }
        }
        Ok(true)
    }

    /// Ids of documents whose `expires_at` is at or before `now_ms`, oldest
    /// first, at most `limit`.
    pub async fn expired_documents(&self, now_ms: i64, limit: i64) -> Result<Vec<DocumentId>> {
        on_db!(self.db(), pool => {
            sqlx::query(
                "SELECT id FROM documents WHERE expires_at <= $1 ORDER BY expires_at, id LIMIT $2",
            )
            .bind(now_ms)
            .bind(limit)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| Ok(DocumentId::from_db(row.string("id")?)))
            .collect()
        })
    }

    /// How many documents are in each status (statuses with none are
    /// omitted).
    pub async fn count_by_status(&self) -> Result<Vec<(DocStatus, i64)>> {
        on_db!(self.db(), pool => {
            sqlx::query("SELECT status, COUNT(*) AS n FROM documents GROUP BY status ORDER BY status")
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| Ok((row.string("status")?.parse()?, row.i64("n")?)))
                .collect()
        })
    }

    /// Deletes blobs that no document references and that were not touched
    /// for `older_than` (uploads in flight touch theirs), and what
    /// interrupted uploads left (temporary files, staging chunks) untouched
    /// as long. Returns how many blobs and leftovers went.
    /// Run it from the retention sweeper now and then.
    pub async fn sweep_orphan_blobs(&self, older_than: std::time::Duration) -> Result<u64> {
        let cutoff =
            now_ms().saturating_sub(i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX));
        let mut removed = self.blobs().sweep_interrupted_uploads(cutoff).await?;
        let unreferenced = if self.blobs().backend() == BlobBackend::Database {
            // Blobs and documents share the database: one query, not one
            // per stored blob.
            on_db!(self.db(), pool => {
                sqlx::query(UNREFERENCED_BLOBS)
                    .bind(cutoff)
                    .fetch_all(pool)
                    .await?
                    .iter()
                    .map(|row| row.string("sha256"))
                    .collect::<sqlx::Result<Vec<_>>>()?
            })
        } else {
            let mut unreferenced = Vec::new();
            for sha in self.blobs().untouched_since(cutoff).await? {
                let referenced = on_db!(self.db(), pool => {
                    sqlx::query(BLOB_REFERENCED).bind(&sha).fetch_optional(pool).await?.is_some()
                });
                if !referenced {
                    unreferenced.push(sha);
                }
            }
            unreferenced
        };
        for sha in unreferenced {
            // Still untouched: an upload of the same bytes may have come
            // since the listing.
            if self.blobs().delete_if_untouched_since(&sha, cutoff).await? {
                removed += 1;
            }
        }
        Ok(removed)
    }
}
