//! Peedy's durable job queue, in the `jobs` table of the store's database
//! (SQLite or PostgreSQL).
//!
//! A job is enqueued inside the caller's transaction (with the document it
//! works for), claimed by one worker under a lease that a heartbeat renews,
//! and then completed (deleted), retried later (backoff kept in `run_at`),
//! deferred without spending an attempt, or failed for good. A job whose
//! worker died is claimable again once its lease expires; one that killed its
//! worker `max_attempts` times comes back as [`Claimed::Exhausted`] so its
//! owner can record the failure.
//!
//! Most code only needs [`Queue::enqueue`] + [`Queue::notify`] on the web side
//! and [`run_workers`] with a [`Handler`] on the worker side:
//!
//! ```no_run
//! # async fn demo(store: peedy_store::Store) -> peedy_queue::Result<()> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use peedy_queue::{Handler, Job, JobError, Queue, QueueConfig, async_trait, run_workers};
//! use tokio_util::sync::CancellationToken;
//!
//! struct Stamp;
//! #[async_trait]
//! impl Handler for Stamp {
//!     async fn run(&self, job: &Job) -> Result<(), JobError> {
//!         tracing::info!(payload = %job.payload, "stamping");
//!         Ok(())
//!     }
//! }
//!
//! let queue = Queue::new(store.clone(), "node-1".into(), QueueConfig::default());
//! let mut tx = store.begin().await?;
//! queue.enqueue(&mut tx, "stamping", r#"{"document_id":"…"}"#, 5, None).await?;
//! tx.commit().await?;
//! queue.notify("stamping");
//!
//! let shutdown = CancellationToken::new();
//! run_workers(queue, "stamping", 2, Arc::new(Stamp), shutdown, Duration::from_secs(30)).await;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod error;
mod queue;
mod worker;

pub use async_trait::async_trait;
pub use error::{Error, Result};
pub use queue::{Claimed, Job, JobId, JobInfo, JobOutcome, Queue, QueueConfig, QueueDepth};
pub use worker::{Handler, JobError, run_workers};
