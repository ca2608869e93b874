//! The two jobs: stamping a document, and delivering it to its callback.
//!
//! Both are idempotent, because the queue runs them at least once: a stamp
//! re-run produces byte-identical output (the engine is deterministic), and a
//! delivery re-run carries the same `webhook-id`.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Instant, UNIX_EPOCH};

use async_trait::async_trait;
use peedy_callbacks::{Delivery, Outcome, Part, PartStream};
use peedy_queue::{Handler, Job, JobError};
use peedy_stamp::Stamped;
use peedy_store::{
    BlobStore, DeliveryState, DirBlobs, DocStatus, Document, DocumentId, Done, ResumableSha256, Tx,
    now_ms, to_hex,
};
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::{CALLBACK_QUEUE, Error, Payload, Watermarker, webhook_id};

fn document_id(job: &Job) -> Result<DocumentId, JobError> {
    let p: Payload = serde_json::from_str(&job.payload)
        .map_err(|e| JobError::permanent(format!("unreadable job payload: {e}")))?;
    p.document_id
        .parse()
        .map_err(|_| JobError::permanent("job payload has an invalid document id"))
}

fn transient(e: impl std::fmt::Display) -> JobError {
    JobError::retry(e.to_string())
}

/// The span a document's job runs in: every line it logs (stamping,
/// callback) carries the document id and the id of the request that
/// uploaded it.
fn document_span(doc: &Document) -> tracing::Span {
    tracing::info_span!(
        "document",
        document_id = %doc.id,
        request_id = doc.request_id.as_deref().unwrap_or(""),
    )
}

/// Stamps documents: runs the engine off the async threads, stores the
/// update, marks the document done and queues its callback.
pub struct StampHandler(pub Arc<Watermarker>);

impl Watermarker {
    /// The handler for [`crate::STAMP_QUEUE`].
    pub fn stamp_handler(self: &Arc<Self>) -> Arc<dyn Handler> {
        Arc::new(StampHandler(Arc::clone(self)))
    }

    /// The handler for [`crate::CALLBACK_QUEUE`].
    pub fn callback_handler(self: &Arc<Self>) -> Arc<dyn Handler> {
        Arc::new(CallbackHandler(Arc::clone(self)))
    }

    /// Queues the callback of a stamped document inside `tx`, once: a
    /// re-run that finds the delivery already recorded does nothing. Returns
    /// whether it queued one (then notify the callback workers after the
    /// commit).
    async fn queue_callback_in(&self, tx: &mut Tx, doc: &Document) -> Result<bool, Error> {
        if doc.callback_url.is_none() || doc.delivery.is_some() {
            return Ok(false);
        }
        let payload = serde_json::to_string(&Payload {
            document_id: doc.id.to_string(),
        })
        .unwrap_or_default();
        // Deferred: on SQLite it goes with the commit, in one round trip.
        self.queue
            .enqueue_many(
                tx,
                CALLBACK_QUEUE,
                &[payload],
                self.config.callback_max_attempts,
            )
            .await?;
        let pending = DeliveryState {
            state: "pending".into(),
            attempts: 0,
            webhook_id: webhook_id(&doc.id),
            last_status: None,
            last_error: None,
            next_attempt_at_ms: Some(now_ms()),
            delivered_at_ms: None,
        };
        // In the job's transaction: once committed, a callback worker may
        // claim the job at once, and what it records ("delivering",
        // "delivered") must not be overwritten by a later "pending".
        self.store.set_delivery_in(tx, &doc.id, &pending).await?;
        Ok(true)
    }

    /// Ends a stamping job in one transaction: the result (`done`, unless an
    /// earlier run recorded it), the callback's job, and the stamping job's
    /// completion. If this claim lost the job meanwhile, nothing is written:
    /// whoever holds it now finishes it.
    async fn finish_stamping(
        &self,
        job: &Job,
        doc: &Document,
        done: Option<&Done>,
    ) -> Result<(), Error> {
        let mut tx = self.store.begin().await?;
        if let Some(done) = done {
            self.store.mark_done_in(&mut tx, &doc.id, done).await?;
        }
        let callback = self.queue_callback_in(&mut tx, doc).await?;
        if !self.queue.complete_in(&mut tx, job).await? {
            tx.rollback().await?;
            return Ok(());
        }
        tx.commit().await?;
        if callback {
            self.queue.notify(CALLBACK_QUEUE);
        }
        Ok(())
    }
}

/// Where the stamping job gets its input: already fetched (blobs in the
/// database), or from the blob directory on the blocking thread.
enum Input {
    Fetched(bytes::Bytes),
    InDir(DirBlobs),
}

/// What the stamping job stores: the appended update, or the rewritten file.
fn stamped_bytes(stamped: &Stamped) -> &[u8] {
    match stamped {
        Stamped::Appended { update, .. } => update,
        Stamped::Rewritten { bytes, .. } => bytes,
    }
}

/// SHA-256 of the output. For an appended update, resumed from the hash
/// state the upload kept at the end of the input when it has one (the input
/// is not read again); otherwise hashed in full.
fn output_sha256(input: &[u8], hash_state: Option<&str>, stamped: &Stamped) -> String {
    match stamped {
        Stamped::Appended { update, .. } => match hash_state.and_then(ResumableSha256::resume) {
            Some(mut hash) if hash.bytes_hashed() == input.len() as u64 => {
                hash.update(update);
                to_hex(&hash.finalize())
            }
            _ => {
                let mut hash = Sha256::new();
                hash.update(input);
                hash.update(update);
                to_hex(&hash.finalize())
            }
        },
        Stamped::Rewritten { bytes, .. } => to_hex(&Sha256::digest(bytes)),
    }
}

#[async_trait]
impl Handler for StampHandler {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let w = &self.0;
        let id = document_id(job)?;
        let Some(doc) = w.store.mark_running(&id).await.map_err(transient)? else {
            // Not queued or running: stamped by an earlier run (whose
            // callback may still need queueing), failed, or deleted.
            return match w.store.document(&id).await.map_err(transient)? {
                Some(doc) if doc.status == DocStatus::Done => {
                    w.finish_stamping(job, &doc, None).await.map_err(transient)
                }
                _ => Ok(()),
            };
        };
        let span = document_span(&doc);
        self.stamp(job, doc).instrument(span).await
    }

    async fn exhausted(&self, job: &Job, reason: &str) {
        if let Ok(id) = document_id(job) {
            let detail = format!(
                "stamping did not complete after {} attempts: {reason}",
                job.attempts
            );
            if let Err(e) = self.0.store.mark_failed(&id, "internal", &detail).await {
                tracing::error!(document_id = %id, "could not record the failure: {e}");
            }
        }
    }
}

impl StampHandler {
    /// Stamps a document that [`Store::mark_running`](peedy_store::Store::mark_running)
    /// just started.
    async fn stamp(&self, job: &Job, doc: Document) -> Result<(), JobError> {
        let w = &self.0;
        let id = doc.id.clone();
        let stamper = match w.stamper(doc.watermark_id).await {
            Ok(s) => s,
            Err(Error::Stamp(e)) => {
                w.store
                    .mark_failed(&id, e.code(), &e.to_string())
                    .await
                    .map_err(transient)?;
                return Err(JobError::permanent(e.to_string()));
            }
            Err(e) => return Err(transient(e)),
        };
        // With the blob directory, reading the input, stamping and storing
        // the output are one trip to the blocking pool; the database backend
        // reads and writes around it.
        let blobs = w.store.blobs().clone();
        let source = match blobs.dir() {
            Some(dir) => Input::InDir(dir),
            None => Input::Fetched(blobs.read(&doc.input_sha256).await.map_err(transient)?),
        };
        let input_sha256 = doc.input_sha256.clone();
        let hash_state = doc.input_hash_state.clone();
        // The callback will read what it sends from memory, if the upload
        // and the update are held there (see `BlobStore::with_memory`).
        // Only the first run holds the update: a retry's hold would have
        // nobody to release it.
        let callback = doc.callback_url.is_some();
        let hold_update = callback && job.attempts <= 1;
        let joined = tokio::task::spawn_blocking(move || {
            // The input as fetched, or read here from the directory that
            // will take the output too.
            let (input, dir) = match source {
                Input::Fetched(input) => (input, None),
                Input::InDir(dir) => (dir.read(&input_sha256)?, Some(dir)),
            };
            let started = Instant::now();
            // A panic in the engine is this document's problem only.
            let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
                let stamped = stamper.stamp(&input)?;
                let sha = output_sha256(&input, hash_state.as_deref(), &stamped);
                let len = stamped.output_len(&input);
                Ok::<_, peedy_stamp::StampError>((stamped, sha, len))
            }));
            let elapsed = started.elapsed();
            let stored = match (&dir, &ran) {
                (Some(dir), Ok(Ok((stamped, _, _)))) if hold_update => {
                    Some(dir.put_held(stamped_bytes(stamped))?)
                }
                (Some(dir), Ok(Ok((stamped, _, _)))) => Some(dir.put(stamped_bytes(stamped))?),
                _ => None,
            };
            Ok::<_, peedy_store::Error>((ran, elapsed, stored))
        })
        .await;
        let (ran, elapsed, stored) = match joined {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(transient(e)),
            Err(e) => return Err(JobError::retry(format!("the stamping task failed: {e}"))),
        };
        let stamp_ms = i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX);
        let (stamped, output_sha256, output_len) = match ran {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::warn!(code = e.code(), "stamping failed: {e}");
                blobs.release(&doc.input_sha256);
                peedy_metrics::stamp_failed(peedy_metrics::Via::Job);
                w.store
                    .mark_failed(&id, e.code(), &e.to_string())
                    .await
                    .map_err(transient)?;
                return Err(JobError::permanent(e.to_string()));
            }
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                return Err(JobError::retry(format!(
                    "the stamping engine panicked: {what}"
                )));
            }
        };
        let report = stamped.report().clone();
        let stored_sha256 = match stored {
            Some(sha) => sha,
            None => {
                blobs
                    .put_bytes(stamped_bytes(&stamped))
                    .await
                    .map_err(transient)?
                    .0
            }
        };
        let (update_sha256, output_is_rewrite) = match &stamped {
            Stamped::Appended { .. } => (Some(stored_sha256), false),
            Stamped::Rewritten { .. } => (None, true),
        };
        let done = Done {
            pages: i64::from(report.pages),
            stamped_pages: i64::from(report.stamped_pages),
            update_sha256,
            output_sha256,
            output_size: i64::try_from(output_len).unwrap_or(i64::MAX),
            output_is_rewrite,
            stamp_ms,
        };
        w.finish_stamping(job, &doc, Some(&done))
            .await
            .map_err(transient)?;
        if !callback || done.output_is_rewrite {
            // Nothing will send the input as it was uploaded.
            blobs.release(&doc.input_sha256);
        }
        peedy_metrics::document_stamped(peedy_metrics::Via::Job, elapsed, report.pages);
        tracing::info!(
            pages = report.pages,
            ms = stamp_ms,
            "Stamped {id} ({} pages) in {:.1}ms",
            report.pages,
            elapsed.as_secs_f64() * 1000.0
        );
        Ok(())
    }
}

/// How long a callback attempt runs before `/status` shows "delivering".
const SHOW_DELIVERING_AFTER: std::time::Duration = std::time::Duration::from_millis(200);

/// Delivers stamped documents to their `callback_url`.
pub struct CallbackHandler(pub Arc<Watermarker>);

/// A blob as a part of a callback body, streamed from wherever the blob
/// store keeps it.
#[derive(Debug)]
struct BlobPart {
    blobs: BlobStore,
    sha256: String,
}

fn blob_io_error(e: peedy_store::Error) -> std::io::Error {
    match e {
        peedy_store::Error::Io(e) => e,
        peedy_store::Error::BlobNotFound(_) => {
            std::io::Error::new(std::io::ErrorKind::NotFound, e.to_string())
        }
        other => std::io::Error::other(other.to_string()),
    }
}

#[async_trait]
impl Part for BlobPart {
    async fn size(&self) -> std::io::Result<u64> {
        self.blobs
            .size(&self.sha256)
            .await
            .map_err(blob_io_error)?
            .ok_or_else(|| blob_io_error(peedy_store::Error::BlobNotFound(self.sha256.clone())))
    }

    async fn open(&self) -> std::io::Result<PartStream> {
        let stream = self
            .blobs
            .stream(&self.sha256)
            .await
            .map_err(blob_io_error)?;
        Ok(Box::pin(stream))
    }

    async fn read_small(&self, max: u64) -> std::io::Result<Option<bytes::Bytes>> {
        self.blobs
            .read_small(&self.sha256, max)
            .await
            .map_err(blob_io_error)
    }
}

impl CallbackHandler {
    /// The blobs a delivery sends, in order: the rewritten file, or the
    /// upload followed by its update.
    fn part_shas(doc: &Document) -> Result<Vec<&str>, JobError> {
        if doc.output_is_rewrite {
            let sha = doc
                .output_sha256
                .as_deref()
                .ok_or_else(|| JobError::permanent("output blob missing"))?;
            Ok(vec![sha])
        } else {
            let update = doc
                .update_sha256
                .as_deref()
                .ok_or_else(|| JobError::permanent("update blob missing"))?;
            Ok(vec![&doc.input_sha256, update])
        }
    }

    fn parts(&self, doc: &Document) -> Result<Vec<Arc<dyn Part>>, JobError> {
        let blobs = self.0.store.blobs();
        Ok(Self::part_shas(doc)?
            .into_iter()
            .map(|sha| -> Arc<dyn Part> {
                Arc::new(BlobPart {
                    blobs: blobs.clone(),
                    sha256: sha.to_owned(),
                })
            })
            .collect())
    }
}

#[async_trait]
impl Handler for CallbackHandler {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let w = &self.0;
        let id = document_id(job)?;
        let Some(doc) = w.store.document(&id).await.map_err(transient)? else {
            return Ok(());
        };
        let span = document_span(&doc);
        self.deliver(job, doc).instrument(span).await
    }

    async fn exhausted(&self, job: &Job, reason: &str) {
        let Ok(id) = document_id(job) else { return };
        let Ok(Some(doc)) = self.0.store.document(&id).await else {
            return;
        };
        let mut state = doc.delivery.unwrap_or(DeliveryState {
            state: "failed".into(),
            attempts: i64::from(job.attempts),
            webhook_id: webhook_id(&id),
            last_status: None,
            last_error: None,
            next_attempt_at_ms: None,
            delivered_at_ms: None,
        });
        state.state = "failed".into();
        state.last_error = Some(reason.to_owned());
        state.next_attempt_at_ms = None;
        if let Err(e) = self.0.store.set_delivery(&id, &state).await {
            tracing::error!(document_id = %id, "could not record the delivery failure: {e}");
        }
    }
}

impl CallbackHandler {
    async fn deliver(&self, job: &Job, doc: Document) -> Result<(), JobError> {
        let w = &self.0;
        let id = doc.id.clone();
        let Some(url) = doc.callback_url.clone() else {
            return Ok(());
        };
        if doc.status != DocStatus::Done {
            return Err(JobError::permanent("the document is not stamped"));
        }
        let parts = self.parts(&doc)?;
        let wid = webhook_id(&id);
        let mut state = doc.delivery.clone().unwrap_or(DeliveryState {
            state: "pending".into(),
            attempts: 0,
            webhook_id: wid.clone(),
            last_status: None,
            last_error: None,
            next_attempt_at_ms: None,
            delivered_at_ms: None,
        });
        if state.state == "delivered" || state.state == "gone" {
            return Ok(());
        }
        let delivery = Delivery {
            url: &url,
            webhook_id: &wid,
            document_id: id.as_str(),
            filename: &doc.filename,
            parts: &parts,
        };
        let attempt = w.deliverer.deliver(&delivery);
        tokio::pin!(attempt);
        // `/status` says "delivering" while an attempt takes a while; most
        // end sooner, and the write would only be overwritten at once.
        let outcome = tokio::select! {
            outcome = &mut attempt => outcome,
            () = tokio::time::sleep(SHOW_DELIVERING_AFTER) => {
                state.state = "delivering".into();
                w.store.set_delivery(&id, &state).await.map_err(transient)?;
                attempt.await
            }
        };
        // Whatever came of it, the first attempt lets go of the bytes held
        // in memory for this delivery (later ones would release holds of
        // other documents with the same upload): a retry, maybe much
        // later, reads them from the store.
        if job.attempts <= 1 {
            for sha in Self::part_shas(&doc).unwrap_or_default() {
                w.store.blobs().release(sha);
            }
        }
        if !matches!(outcome, Outcome::BreakerOpen { .. }) {
            state.attempts += 1;
        }
        peedy_metrics::callback_attempt(match &outcome {
            Outcome::Delivered { .. } => "delivered",
            Outcome::Gone => "gone",
            Outcome::Permanent { .. } => "permanent",
            Outcome::Retry { .. } => "retry",
            Outcome::BreakerOpen { .. } => "breaker_open",
        });
        let result = match &outcome {
            Outcome::Delivered { status } => {
                state.state = "delivered".into();
                state.last_status = Some(i64::from(*status));
                state.last_error = None;
                state.next_attempt_at_ms = None;
                state.delivered_at_ms = Some(now_ms());
                tracing::info!(status, "callback delivered");
                Ok(())
            }
            Outcome::Gone => {
                state.state = "gone".into();
                state.last_status = Some(410);
                state.next_attempt_at_ms = None;
                Ok(())
            }
            Outcome::Permanent { reason, status } => {
                state.state = "failed".into();
                state.last_status = status.map(i64::from);
                state.last_error = Some(reason.clone());
                state.next_attempt_at_ms = None;
                tracing::warn!("callback failed for good: {reason}");
                Err(JobError::permanent(reason.clone()))
            }
            Outcome::Retry {
                reason,
                status,
                retry_after,
            } => {
                state.state = "pending".into();
                state.last_status = status.map(i64::from);
                state.last_error = Some(reason.clone());
                tracing::info!(attempt = job.attempts, "callback will be retried: {reason}");
                Err(JobError::Retry {
                    reason: reason.clone(),
                    after: *retry_after,
                })
            }
            Outcome::BreakerOpen { until } => {
                state.state = "waiting_breaker".into();
                let until_ms = until
                    .duration_since(UNIX_EPOCH)
                    .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                    .unwrap_or_else(|_| now_ms());
                state.next_attempt_at_ms = Some(until_ms);
                Err(JobError::Defer {
                    until_ms: until_ms.max(now_ms()),
                })
            }
        };
        if let Err(JobError::Retry { after, .. }) = &result {
            let backoff = after.unwrap_or_else(|| w.queue.config().backoff(job.attempts));
            state.next_attempt_at_ms =
                Some(now_ms() + i64::try_from(backoff.as_millis()).unwrap_or(0));
            if job.attempts >= job.max_attempts {
                state.state = "failed".into();
                state.next_attempt_at_ms = None;
            }
        }
        w.store.set_delivery(&id, &state).await.map_err(transient)?;
        result
    }
}
