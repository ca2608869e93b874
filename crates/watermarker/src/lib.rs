//! Peedy's watermarking pipeline — the original's `watermarker` and
//! `stamper` apps: accepting documents, the stamping and callback jobs that
//! process them, and the watermark specs they use.
//!
//! Start with [`Watermarker::new`]; the web tier calls [`Watermarker::submit`]
//! (documents and their jobs are committed in one transaction, so nothing
//! accepted is lost), and workers run [`Watermarker::stamp_handler`] on the
//! [`STAMP_QUEUE`] and [`Watermarker::callback_handler`] on the
//! [`CALLBACK_QUEUE`] (see `peedy_queue::run_workers`).
#![deny(missing_docs)]

mod jobs;
pub mod spec;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peedy_callbacks::Deliverer;
use peedy_queue::Queue;
use peedy_stamp::{Limits, Options, StampError, Stamped, Stamper, Watermark};
use peedy_store::{DocumentId, NewDocument, Store, WatermarkId, now_ms};
use serde::{Deserialize, Serialize};

pub use jobs::{CallbackHandler, StampHandler};
pub use spec::WatermarkSpec;

/// The queue stamping jobs go to.
pub const STAMP_QUEUE: &str = "stamp";
/// The queue callback deliveries go to.
pub const CALLBACK_QUEUE: &str = "callback";

/// Errors of the pipeline.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] peedy_store::Error),
    /// The queue failed.
    #[error(transparent)]
    Queue(#[from] peedy_queue::Error),
    /// The engine refused the document or the spec.
    #[error(transparent)]
    Stamp(#[from] StampError),
    /// The engine panicked (a bug; the document is not lost).
    #[error("the stamping engine failed unexpectedly: {0}")]
    Panicked(String),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How the pipeline behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// Attempts per stamping job (a crash or panic counts as one).
    pub stamp_max_attempts: i32,
    /// Attempts per callback delivery (with exponential backoff capped by the
    /// queue's `backoff_max`, 25 attempts span many hours).
    pub callback_max_attempts: i32,
    /// How long documents are kept.
    pub retention: Duration,
    /// Engine limits for uploaded documents.
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            stamp_max_attempts: 3,
            callback_max_attempts: 25,
            retention: Duration::from_secs(7 * 24 * 3600),
            limits: Limits::default(),
        }
    }
}

/// One accepted upload whose bytes are already in the blob store.
#[derive(Debug, Clone)]
pub struct Upload {
    /// Sanitized filename (see [`sanitize_filename`]).
    pub filename: String,
    /// SHA-256 (hex) of its blob.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 state at its end, if known (`StoredBlob::hash_state`): the
    /// stamping job then hashes only the appended update for the output's
    /// SHA-256.
    pub hash_state: Option<String>,
}

/// The payload of a stamping or callback job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Payload {
    pub document_id: String,
}

/// The pipeline: shared by the web tier and the workers.
pub struct Watermarker {
    pub(crate) store: Store,
    pub(crate) queue: Queue,
    pub(crate) deliverer: Deliverer,
    pub(crate) config: Config,
    /// Prepared stampers by watermark row: shaping and font subsetting are
    /// done once per spec, not once per document.
    stampers: Mutex<HashMap<i64, Arc<Stamper>>>,
    /// Ids of the specs already in the `watermarks` table (rows are never
    /// deleted), so an upload with a known spec skips its upsert.
    watermark_ids: Mutex<HashMap<String, WatermarkId>>,
}

impl std::fmt::Debug for Watermarker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watermarker")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Watermarker {
    /// A pipeline over `store` and `queue`, delivering with `deliverer`.
    pub fn new(store: Store, queue: Queue, deliverer: Deliverer, config: Config) -> Arc<Self> {
        Arc::new(Self {
            store,
            queue,
            deliverer,
            config,
            stampers: Mutex::new(HashMap::new()),
            watermark_ids: Mutex::new(HashMap::new()),
        })
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The queue.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The callback deliverer (for URL checks at upload time).
    pub fn deliverer(&self) -> &Deliverer {
        &self.deliverer
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Accepts uploaded documents: records the watermark spec, the documents
    /// and one stamping job each in a single transaction, then wakes the
    /// workers. Returns the new document ids in upload order.
    pub async fn submit(
        &self,
        uploads: &[Upload],
        spec: &WatermarkSpec,
        callback_url: Option<&str>,
        request_id: Option<&str>,
    ) -> Result<Vec<DocumentId>> {
        let mut tx = self.store.begin().await?;
        let spec_json = spec.to_json();
        let known = self
            .watermark_ids
            .lock()
            .ok()
            .and_then(|ids| ids.get(&spec_json).copied());
        let watermark_id = match known {
            Some(id) => id,
            // Remembered below, once committed.
            None => self.store.upsert_watermark(&mut tx, &spec_json).await?,
        };
        let expires_at_ms = now_ms()
            .saturating_add(i64::try_from(self.config.retention.as_millis()).unwrap_or(i64::MAX));
        let mut ids = Vec::with_capacity(uploads.len());
        let mut docs = Vec::with_capacity(uploads.len());
        let mut payloads = Vec::with_capacity(uploads.len());
        for upload in uploads {
            let id = DocumentId::random();
            payloads.push(
                serde_json::to_string(&Payload {
                    document_id: id.to_string(),
                })
                .unwrap_or_default(),
            );
            docs.push(NewDocument {
                id: id.clone(),
                filename: upload.filename.clone(),
                watermark_id,
                input_sha256: upload.sha256.clone(),
                input_size: i64::try_from(upload.size).unwrap_or(i64::MAX),
                input_hash_state: upload.hash_state.clone(),
                callback_url: callback_url.map(str::to_owned),
                request_id: request_id.map(str::to_owned),
                expires_at_ms,
            });
            ids.push(id);
        }
        // One statement for the documents and one for their jobs, whatever
        // their number (each statement is a round trip to the database).
        self.store.insert_documents(&mut tx, &docs).await?;
        self.queue
            .enqueue_many(
                &mut tx,
                STAMP_QUEUE,
                &payloads,
                self.config.stamp_max_attempts,
            )
            .await?;
        tx.commit().await?;
        if known.is_none()
            && let Ok(mut known) = self.watermark_ids.lock()
        {
            // Bounded like the stamper cache: specs are per buyer in the
            // e-book case.
            if known.len() >= 4096 {
                known.clear();
            }
            known.insert(spec_json, watermark_id);
        }
        self.queue.notify(STAMP_QUEUE);
        Ok(ids)
    }

    /// The prepared stamper for a stored watermark spec.
    pub(crate) async fn stamper(&self, id: WatermarkId) -> Result<Arc<Stamper>> {
        if let Some(s) = self
            .stampers
            .lock()
            .ok()
            .and_then(|m| m.get(&id.0).cloned())
        {
            return Ok(s);
        }
        let json = self
            .store
            .watermark(id)
            .await?
            .ok_or_else(|| Error::Stamp(StampError::Spec(peedy_stamp::SpecError::EmptyText)))?;
        let spec = WatermarkSpec::from_json(&json).map_err(|e| {
            Error::Panicked(format!("stored watermark spec {} is unreadable: {e}", id.0))
        })?;
        let wm = spec.watermark().map_err(StampError::from)?;
        let stamper = Arc::new(Stamper::new(wm, self.options())?);
        if let Ok(mut m) = self.stampers.lock() {
            // A bounded cache: specs are per buyer in the e-book case.
            if m.len() >= 1024 {
                m.clear();
            }
            m.insert(id.0, Arc::clone(&stamper));
        }
        Ok(stamper)
    }

    fn options(&self) -> Options {
        Options {
            limits: self.config.limits.clone(),
            ..Options::default()
        }
    }

    /// Stamps `input` now, off the async threads (the synchronous API).
    pub async fn stamp_now(
        &self,
        input: Vec<u8>,
        watermark: Watermark,
    ) -> Result<(Vec<u8>, peedy_stamp::Report)> {
        let options = self.options();
        let joined = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let stamper = Stamper::new(watermark, options)?;
            let stamped = stamper.stamp(&input).inspect_err(|_| {
                peedy_metrics::stamp_failed(peedy_metrics::Via::Sync);
            })?;
            let report = stamped.report().clone();
            peedy_metrics::document_stamped(
                peedy_metrics::Via::Sync,
                started.elapsed(),
                report.pages,
            );
            let bytes = match stamped {
                Stamped::Appended { update, .. } => {
                    let mut out = input;
                    out.extend_from_slice(&update);
                    out
                }
                Stamped::Rewritten { bytes, .. } => bytes,
            };
            Ok::<_, StampError>((bytes, report))
        })
        .await;
        match joined {
            Ok(r) => Ok(r?),
            Err(e) => Err(Error::Panicked(e.to_string())),
        }
    }

    /// Deletes a document, its jobs and the blobs nothing else uses.
    pub async fn delete(&self, id: &DocumentId) -> Result<bool> {
        Ok(self.store.delete_document(id).await?)
    }

    /// Deletes documents whose retention has passed; returns how many.
    pub async fn sweep_expired(&self) -> Result<u64> {
        let mut n = 0;
        loop {
            let ids = self.store.expired_documents(now_ms(), 100).await?;
            if ids.is_empty() {
                break;
            }
            for id in ids {
                if self.store.delete_document(&id).await? {
                    n += 1;
                }
            }
        }
        if n > 0 {
            tracing::info!(deleted = n, "retention sweep");
        }
        Ok(n)
    }
}

/// The webhook id of a document's callback: the same on every attempt, so a
/// receiver can de-duplicate at-least-once deliveries.
pub fn webhook_id(id: &DocumentId) -> String {
    format!("msg_{id}")
}

/// Makes an upload's filename safe to store, show and send: no directories,
/// no control or shell-special characters, at most 200 bytes, ending in
/// `.pdf`. Never used as a path.
pub fn sanitize_filename(name: Option<&str>) -> String {
    let base = name
        .unwrap_or_default()
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default();
    let mut out: String = base
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ' | '(' | ')') {
                c
            } else {
                '_'
            }
        })
        .collect();
    out = out.trim().trim_start_matches('.').to_owned();
    while out.len() > 196 {
        out.pop();
    }
    if out.is_empty() {
        out = "document".to_owned();
    }
    if !out.to_ascii_lowercase().ends_with(".pdf") {
        out.push_str(".pdf");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_are_sanitized() {
        assert_eq!(sanitize_filename(Some("../../etc/passwd")), "passwd.pdf");
        assert_eq!(
            sanitize_filename(Some("C:\\docs\\Book (1).PDF")),
            "Book (1).PDF"
        );
        assert_eq!(sanitize_filename(Some("a\"b;rm -rf.pdf")), "a_b_rm -rf.pdf");
        assert_eq!(sanitize_filename(None), "document.pdf");
        assert_eq!(sanitize_filename(Some("...")), "document.pdf");
        assert!(sanitize_filename(Some(&"é".repeat(300))).len() <= 200);
    }
}
