//! The queue's operations on the `jobs` table: enqueue, claim under a lease,
//! heartbeat, complete, fail (retry with backoff, or for good), defer.
//!
//! Every operation on a claimed job is fenced by the claim's `lease_token`:
//! once a lease has expired and another worker claimed the job, the old
//! worker's heartbeat, completion or failure changes nothing.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use peedy_store::{Bind, DbRow, Store, Tx, now_ms, on_db, on_tx};
use tokio::sync::Notify;

use crate::Result;

/// PostgreSQL `NOTIFY` channel; the payload is the queue name.
pub(crate) const NOTIFY_CHANNEL: &str = "peedy_jobs";

/// A job's database id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub i64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A claimed job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// The queue it is in ("stamping", "callbacks").
    pub queue: String,
    /// What to do, as JSON text (the enqueuer's format).
    pub payload: String,
    /// Claims so far, including this one (1 on the first run). Greater than
    /// `max_attempts` only in [`Claimed::Exhausted`].
    pub attempts: i32,
    /// Claims allowed before the job fails for good.
    pub max_attempts: i32,
    /// When it was enqueued (unix ms).
    pub created_at_ms: i64,
    /// Identifies this claim: heartbeat, complete, fail and defer act only
    /// while the job is still held under this token (fencing against a
    /// worker whose lease expired meanwhile).
    pub lease_token: i64,
    /// Set once [`Queue::complete_in`] deleted the job inside the handler's
    /// transaction, so the worker does not complete it a second time.
    pub(crate) completed: CompletedFlag,
}

/// Whether a handler already completed its job (see [`Queue::complete_in`]).
/// Shared by the clones of one claimed job; ignored by `==` (it is
/// bookkeeping, not part of what the job is).
#[derive(Clone, Debug, Default)]
pub(crate) struct CompletedFlag(Arc<AtomicBool>);

impl CompletedFlag {
    pub(crate) fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
}

impl PartialEq for CompletedFlag {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for CompletedFlag {}

impl Job {
    /// True when this attempt is the last one allowed.
    pub fn is_last_attempt(&self) -> bool {
        self.attempts >= self.max_attempts
    }
}

/// What [`Queue::claim`] got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claimed {
    /// A job to run, leased to this node.
    Run(Job),
    /// A job whose workers died (lease expired) `max_attempts` times: do not
    /// run it; record the failure on whatever it was for (the document),
    /// then [`Queue::fail`] it without retry. (`run_workers` calls
    /// [`Handler::exhausted`](crate::Handler::exhausted) and does both.)
    Exhausted(Job),
}

impl Claimed {
    /// The job, either way.
    pub fn job(&self) -> &Job {
        match self {
            Claimed::Run(job) | Claimed::Exhausted(job) => job,
        }
    }
}

/// How [`Queue::fail`] left the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    /// Queued again; claimable from `at_ms` (unix ms).
    Retrying {
        /// When it becomes claimable again.
        at_ms: i64,
    },
    /// Failed for good (permanent error, or no attempts left).
    Failed,
    /// This claim no longer holds the job (its lease expired and it was
    /// claimed again, or it was deleted): nothing was changed.
    LeaseLost,
}

/// Jobs of one queue by state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct QueueDepth {
    /// Waiting (due now or later, e.g. in backoff).
    pub queued: i64,
    /// Leased to a worker (including leases that expired and await rescue).
    pub running: i64,
    /// Enqueue time of the oldest waiting job (unix ms).
    pub oldest_queued_at_ms: Option<i64>,
}

/// A job's row as it stands, for inspection (tests, admin views).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobInfo {
    /// Its id.
    pub id: JobId,
    /// Its queue.
    pub queue: String,
    /// "queued", "running" or "failed" (a completed job is deleted).
    pub state: String,
    /// Claims so far.
    pub attempts: i32,
    /// Claims allowed.
    pub max_attempts: i32,
    /// Not claimable before this time (unix ms).
    pub run_at_ms: i64,
    /// Node holding the lease.
    pub locked_by: Option<String>,
    /// Lease expiry (unix ms).
    pub locked_until_ms: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// The document it works for (from the payload's `document_id`).
    pub document_id: Option<String>,
}

/// Queue timing. `Default` gives the production values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// How long a claim holds a job without a heartbeat (default 30 s). The
    /// heartbeat renews it every `lease / 3`; once it expires the job is
    /// claimable again, so a dead worker's job reruns within
    /// `lease + poll_interval` (31 s by default, well under 60 s).
    pub lease: Duration,
    /// How often idle workers look for due jobs when no wake-up came
    /// (default 1 s); wake-ups are immediate, this is the fallback (and what
    /// picks up jobs whose backoff ended or whose lease expired).
    pub poll_interval: Duration,
    /// Delay before the first retry (default 2 s); doubles per attempt.
    pub backoff_base: Duration,
    /// Longest retry delay (default 1 h); also caps a `retry_after`.
    pub backoff_max: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(3600),
        }
    }
}

impl QueueConfig {
    /// The backoff ceiling after `attempts` failed attempts:
    /// `backoff_base * 2^(attempts-1)`, at most `backoff_max`.
    pub fn backoff(&self, attempts: i32) -> Duration {
        let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        self.backoff_base
            .saturating_mul(1u32 << doublings)
            .min(self.backoff_max)
    }

    /// The delay actually used: uniformly random in `[backoff/2, backoff]`
    /// ("equal jitter"). Spreads retries of jobs that failed together, yet
    /// never retries a failing job almost at once as full jitter
    /// (`[0, backoff]`) can.
    pub fn jittered_backoff(&self, attempts: i32) -> Duration {
        let cap = millis(self.backoff(attempts));
        let half = cap / 2;
        Duration::from_millis(u64::try_from(half + rand::random_range(0..=cap - half)).unwrap_or(0))
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The job queue: the store's database plus this node's identity and
/// in-process wake-ups. Cheap to clone.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    node_id: String,
    config: QueueConfig,
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
    /// Per queue: the last counted number of waiting jobs, when it was
    /// counted, and how many jobs this process enqueued since (see
    /// [`Queue::is_full`]).
    backlog: Mutex<HashMap<String, Backlog>>,
}

#[derive(Clone, Copy, Debug)]
struct Backlog {
    counted_at: std::time::Instant,
    queued: i64,
    enqueued_since: i64,
}

/// How long a backlog count far below the limit is trusted.
const BACKLOG_TRUSTED_FOR: std::time::Duration = std::time::Duration::from_millis(500);

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("node_id", &self.inner.node_id)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// One claim statement, two dialects: PostgreSQL adds `FOR UPDATE SKIP
/// LOCKED` so concurrent claimers pass over each other's rows; SQLite runs
/// the single statement under its one write lock, which makes it atomic.
///
/// A job whose lease expired (its worker died) is rescued before queued jobs.
/// The claimer's token is even; a rescue stores it plus one, so the returned
/// `lock_token` tells a rescue (counted in the metrics) from a fresh claim
/// without a second statement.
/// Old `attempts > max_attempts` in the CASEs means the claim before this one
/// was already the "exhausted" one and its worker died too: the job fails
/// right here, so a job that kills every worker cannot loop forever.
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE jobs SET
                state = CASE WHEN attempts > max_attempts THEN 'failed' ELSE 'running' END,
                attempts = attempts + 1,
                last_error = CASE WHEN attempts > max_attempts
                    THEN 'worker died ' || CAST(max_attempts AS TEXT) || ' times (lease expired)'
                    ELSE last_error END,
                locked_by = $1, locked_until = $3, updated_at = $4,
                lock_token = CASE WHEN state = 'running' THEN $2 + 1 ELSE $2 END,
                finished_at = CASE WHEN attempts > max_attempts THEN $4 ELSE NULL END
            WHERE id = COALESCE(
                (SELECT id FROM jobs
                 WHERE queue = $5 AND state = 'running' AND locked_until <= $4
                 ORDER BY locked_until, id LIMIT 1 ",
            $lock,
            "),
                (SELECT id FROM jobs
                 WHERE queue = $5 AND state = 'queued' AND run_at <= $4
                 ORDER BY run_at, id LIMIT 1 ",
            $lock,
            "))
            RETURNING id, queue, payload, state, attempts, max_attempts, created_at, lock_token"
        )
    };
}
const CLAIM_SQLITE: &str = claim_sql!("");
const CLAIM_POSTGRES: &str = claim_sql!("FOR UPDATE SKIP LOCKED");

/// Completing a job deletes it, fenced by its claim's token.
const COMPLETE_SQL: &str =
    "DELETE FROM jobs WHERE id = $1 AND lock_token = $2 AND state = 'running'";

/// The top-level `"document_id"` string of a JSON payload, if any.
fn document_id_of(payload: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(payload).ok()?;
    value.get("document_id")?.as_str().map(str::to_owned)
}

impl Queue {
    /// A queue on `store`'s database; `node_id` names this process in
    /// leases (`locked_by`).
    pub fn new(store: Store, node_id: String, config: QueueConfig) -> Queue {
        Queue {
            inner: Arc::new(Inner {
                store,
                node_id,
                config,
                wakers: Mutex::new(HashMap::new()),
                backlog: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The store it runs on.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// This node's name in leases.
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// Its timing.
    pub fn config(&self) -> &QueueConfig {
        &self.inner.config
    }

    /// The in-process wake-up of `queue`.
    pub(crate) fn waker(&self, queue: &str) -> Arc<Notify> {
        let mut wakers = self
            .inner
            .wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(wakers.entry(queue.to_owned()).or_default())
    }

    /// Adds one job per payload to `queue` inside the caller's transaction,
    /// in one multi-row `INSERT` per 100 jobs (and, on PostgreSQL, one
    /// `NOTIFY`), due now; returns how many. The inserts are
    /// [deferred](peedy_store::Tx::defer): on SQLite they run with the
    /// commit. Like [`enqueue`](Self::enqueue), call [`notify`](Self::notify)
    /// after the commit.
    pub async fn enqueue_many(
        &self,
        tx: &mut Tx,
        queue: &str,
        payloads: &[String],
        max_attempts: i32,
    ) -> Result<usize> {
        let now = now_ms();
        let is_postgres = self.store().db().is_postgres();
        for chunk in payloads.chunks(100) {
            let mut binds = Vec::with_capacity(chunk.len() * 5);
            let rows: Vec<String> = chunk
                .iter()
                .map(|payload| {
                    Bind::push_row(
                        &mut binds,
                        "($1, $2, $3, 'queued', 0, $4, $5, $5, $5)",
                        [
                            Bind::Text(queue.to_owned()),
                            Bind::Text(payload.clone()),
                            Bind::OptText(document_id_of(payload)),
                            Bind::I32(max_attempts.max(1)),
                            Bind::I64(now),
                        ],
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO jobs (queue, payload, document_id, state, attempts,
                     max_attempts, run_at, created_at, updated_at)
                 VALUES {}",
                rows.join(", ")
            );
            // Sent with the commit on SQLite (one round trip for the lot).
            tx.defer(&sql, binds).await?;
        }
        if is_postgres && !payloads.is_empty() {
            // Delivered to listeners when the transaction commits.
            tx.defer(
                "SELECT pg_notify($1, $2)",
                vec![
                    Bind::Text(NOTIFY_CHANNEL.to_owned()),
                    Bind::Text(queue.to_owned()),
                ],
            )
            .await?;
        }
        self.count_enqueued(queue, payloads.len());
        tracing::debug!(queue, jobs = payloads.len(), "jobs enqueued");
        Ok(payloads.len())
    }

    /// Enqueues a job inside the caller's transaction, so the job and what it
    /// works for (the document) are committed together: nothing accepted is
    /// lost. It becomes claimable at `run_at_ms` (default now) and may be
    /// claimed `max_attempts` times (at least 1).
    ///
    /// If `payload` is a JSON object with a string `"document_id"`, the job
    /// is linked to that document and
    /// [`Store::delete_document`](peedy_store::Store::delete_document)
    /// deletes it too.
    ///
    /// Call [`notify`](Self::notify) after `tx.commit()` to wake this
    /// process's workers at once (on PostgreSQL, other nodes are woken by a
    /// `NOTIFY` sent on commit).
    pub async fn enqueue(
        &self,
        tx: &mut Tx,
        queue: &str,
        payload: &str,
        max_attempts: i32,
        run_at_ms: Option<i64>,
    ) -> Result<JobId> {
        let now = now_ms();
        let document_id = document_id_of(payload);
        let is_postgres = self.store().db().is_postgres();
        let id = on_tx!(tx, conn => {
            let id = sqlx::query(
                "INSERT INTO jobs (queue, payload, document_id, state, attempts, max_attempts,
                     run_at, created_at, updated_at)
                 VALUES ($1, $2, $3, 'queued', 0, $4, $5, $6, $6)
                 RETURNING id",
            )
            .bind(queue)
            .bind(payload)
            .bind(document_id.as_deref())
            .bind(max_attempts.max(1))
            .bind(run_at_ms.unwrap_or(now))
            .bind(now)
            .fetch_one(&mut *conn)
            .await?
            .i64("id")?;
            if is_postgres {
                // Delivered to listeners when the transaction commits.
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(NOTIFY_CHANNEL)
                    .bind(queue)
                    .execute(&mut *conn)
                    .await?;
            }
            id
        });
        tracing::debug!(job_id = id, queue, "job enqueued");
        self.count_enqueued(queue, 1);
        Ok(JobId(id))
    }

    /// Wakes this process's workers of `queue` now (call after committing an
    /// [`enqueue`](Self::enqueue)).
    pub fn notify(&self, queue: &str) {
        self.waker(queue).notify_waiters();
    }

    /// Claims one due job of `queue`, if any: a `running` job whose lease
    /// expired (its worker died), else the `queued` job with the earliest
    /// `run_at` (then lowest id) that is due. The claim leases it to this
    /// node for [`QueueConfig::lease`] and counts an attempt.
    ///
    /// A job whose worker died `max_attempts` times comes back as
    /// [`Claimed::Exhausted`] instead of being run again.
    pub async fn claim(&self, queue: &str) -> Result<Option<Claimed>> {
        let now = now_ms();
        // Even, so that a rescue can mark it odd (see `claim_sql!`).
        let token: i64 = rand::random::<i64>() & !1;
        let locked_until = now.saturating_add(millis(self.config().lease));
        let row = on_db!(self.store().db(), pool => {
            let sql = if self.store().db().is_postgres() { CLAIM_POSTGRES } else { CLAIM_SQLITE };
            match sqlx::query(sql)
                .bind(self.node_id())
                .bind(token)
                .bind(locked_until)
                .bind(now)
                .bind(queue)
                .fetch_optional(pool)
                .await?
            {
                Some(row) => Some((
                    Job {
                        id: JobId(row.i64("id")?),
                        queue: row.string("queue")?,
                        payload: row.string("payload")?,
                        attempts: row.i32("attempts")?,
                        max_attempts: row.i32("max_attempts")?,
                        created_at_ms: row.i64("created_at")?,
                        lease_token: row.i64("lock_token")?,
                        completed: CompletedFlag::default(),
                    },
                    row.string("state")?,
                )),
                None => None,
            }
        });
        Ok(row.map(|(job, state)| {
            if job.lease_token != token {
                tracing::info!(
                    job_id = job.id.0,
                    queue,
                    "job rescued: its lease had expired"
                );
                peedy_metrics::job_rescued(queue);
            }
            if state == "failed" || job.attempts > job.max_attempts {
                tracing::warn!(
                    job_id = job.id.0,
                    queue,
                    attempts = job.attempts,
                    "job exhausted: its workers died"
                );
                Claimed::Exhausted(job)
            } else {
                tracing::debug!(
                    job_id = job.id.0,
                    queue,
                    attempt = job.attempts,
                    "job claimed"
                );
                Claimed::Run(job)
            }
        }))
    }

    /// Renews the job's lease for another [`QueueConfig::lease`]. Returns
    /// false if this claim lost the job (its lease expired and another
    /// worker took it, or it was deleted): stop working on it.
    pub async fn heartbeat(&self, job: &Job) -> Result<bool> {
        let now = now_ms();
        let done = on_db!(self.store().db(), pool => {
            sqlx::query(
                "UPDATE jobs SET locked_until = $1, updated_at = $2
                 WHERE id = $3 AND lock_token = $4 AND state = 'running'",
            )
            .bind(now.saturating_add(millis(self.config().lease)))
            .bind(now)
            .bind(job.id.0)
            .bind(job.lease_token)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// Marks the job done (deletes it). Returns false if this claim had lost
    /// the job (see [`heartbeat`](Self::heartbeat)).
    pub async fn complete(&self, job: &Job) -> Result<bool> {
        let done = on_db!(self.store().db(), pool => {
            sqlx::query(COMPLETE_SQL)
                .bind(job.id.0)
                .bind(job.lease_token)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    /// [`complete`](Self::complete) inside the caller's transaction, so a
    /// handler can record its result and finish its job atomically (one
    /// commit instead of two, and no window in which the result is saved but
    /// the job still runs). Returns false if this claim had lost the job;
    /// then roll back. Once it returned true, `run_workers` does not complete
    /// the job again when the handler returns `Ok` (if the caller's commit
    /// then fails, the handler must return an error: the job is retried).
    pub async fn complete_in(&self, tx: &mut Tx, job: &Job) -> Result<bool> {
        let done = on_tx!(tx, conn => {
            sqlx::query(COMPLETE_SQL)
                .bind(job.id.0)
                .bind(job.lease_token)
                .execute(conn)
                .await?
                .rows_affected()
        });
        if done == 1 {
            job.completed.set();
        }
        Ok(done == 1)
    }

    /// Records a failed attempt with `reason`. With `retry`, the job is
    /// queued again for `now + backoff` (exponential with jitter, see
    /// [`QueueConfig::jittered_backoff`]; or `retry_after`, capped at
    /// `backoff_max`, when the other side said when) — unless this was its
    /// last attempt, then it fails. Without `retry` it fails for good
    /// (permanent errors such as a bad PDF).
    pub async fn fail(
        &self,
        job: &Job,
        reason: &str,
        retry: bool,
        retry_after: Option<Duration>,
    ) -> Result<JobOutcome> {
        let now = now_ms();
        let config = self.config();
        let outcome = if retry && !job.is_last_attempt() {
            let delay = match retry_after {
                Some(after) => after.min(config.backoff_max),
                None => config.jittered_backoff(job.attempts),
            };
            JobOutcome::Retrying {
                at_ms: now.saturating_add(millis(delay)),
            }
        } else {
            JobOutcome::Failed
        };
        let (state, run_at, finished_at) = match outcome {
            JobOutcome::Retrying { at_ms } => ("queued", at_ms, None),
            _ => ("failed", now, Some(now)),
        };
        let changed = on_db!(self.store().db(), pool => {
            sqlx::query(
                "UPDATE jobs SET state = $1, run_at = $2, last_error = $3, updated_at = $4,
                     finished_at = $5, locked_by = NULL, lock_token = NULL, locked_until = NULL
                 WHERE id = $6 AND lock_token = $7 AND state = 'running'",
            )
            .bind(state)
            .bind(run_at)
            .bind(reason)
            .bind(now)
            .bind(finished_at)
            .bind(job.id.0)
            .bind(job.lease_token)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(if changed == 1 {
            outcome
        } else {
            JobOutcome::LeaseLost
        })
    }

    /// Puts the job back without spending an attempt: queued, claimable from
    /// `run_at_ms`. For a callback whose host's breaker is open, and for
    /// jobs handed back at shutdown. Returns false if this claim had lost the
    /// job.
    pub async fn defer(&self, job: &Job, run_at_ms: i64) -> Result<bool> {
        let changed = on_db!(self.store().db(), pool => {
            sqlx::query(
                "UPDATE jobs SET state = 'queued', run_at = $1,
                     attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,
                     updated_at = $2, locked_by = NULL, lock_token = NULL, locked_until = NULL
                 WHERE id = $3 AND lock_token = $4 AND state = 'running'",
            )
            .bind(run_at_ms)
            .bind(now_ms())
            .bind(job.id.0)
            .bind(job.lease_token)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(changed == 1)
    }

    /// How many jobs of `queue` wait and run (for load shedding: answer 503
    /// with `Retry-After` when too many wait; and for metrics).
    pub async fn depth(&self, queue: &str) -> Result<QueueDepth> {
        let depth = on_db!(self.store().db(), pool => {
            let row = sqlx::query(
                "SELECT COUNT(CASE WHEN state = 'queued' THEN 1 END) AS queued,
                        COUNT(CASE WHEN state = 'running' THEN 1 END) AS running,
                        MIN(CASE WHEN state = 'queued' THEN created_at END) AS oldest
                 FROM jobs WHERE queue = $1 AND state IN ('queued', 'running')",
            )
            .bind(queue)
            .fetch_one(pool)
            .await?;
            QueueDepth {
                queued: row.i64("queued")?,
                running: row.i64("running")?,
                oldest_queued_at_ms: row.opt_i64("oldest")?,
            }
        });
        Ok(depth)
    }

    /// Adds `n` to what this process enqueued on `queue` since its last
    /// backlog count (see [`is_full`](Self::is_full)).
    fn count_enqueued(&self, queue: &str, n: usize) {
        if let Ok(mut backlog) = self.inner.backlog.lock()
            && let Some(b) = backlog.get_mut(queue)
        {
            b.enqueued_since += i64::try_from(n).unwrap_or(i64::MAX);
        }
    }

    /// Load shedding: `Some(n)` when `n >= limit` jobs of `queue` wait, so
    /// the caller should refuse new work (503). Exact near the limit: it
    /// counts in the database whenever the answer could be yes. Far below
    /// it (under half), a count less than half a second old plus what this
    /// process enqueued since stands in — counting waiting jobs on every
    /// upload cost a scan of the backlog per request.
    pub async fn is_full(&self, queue: &str, limit: i64) -> Result<Option<i64>> {
        let estimate = self.inner.backlog.lock().ok().and_then(|b| {
            b.get(queue)
                .filter(|b| b.counted_at.elapsed() < BACKLOG_TRUSTED_FOR)
                .map(|b| b.queued + b.enqueued_since)
        });
        if let Some(estimate) = estimate
            && estimate < limit / 2
        {
            return Ok(None);
        }
        let counted_at = std::time::Instant::now();
        let queued = self.depth(queue).await?.queued;
        if let Ok(mut backlog) = self.inner.backlog.lock() {
            backlog.insert(
                queue.to_owned(),
                Backlog {
                    counted_at,
                    queued,
                    enqueued_since: 0,
                },
            );
        }
        Ok((queued >= limit).then_some(queued))
    }

    /// Deletes failed jobs that finished before `before_ms` (unix ms);
    /// returns how many. Failed jobs of a document also go when the document
    /// is deleted; this is for the retention sweeper, for the rest.
    pub async fn purge_failed(&self, before_ms: i64) -> Result<u64> {
        let purged = on_db!(self.store().db(), pool => {
            sqlx::query("DELETE FROM jobs WHERE state = 'failed' AND finished_at < $1")
                .bind(before_ms)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(purged)
    }

    /// The job's row as it stands, if it still exists (completed jobs are
    /// deleted).
    pub async fn job_info(&self, id: JobId) -> Result<Option<JobInfo>> {
        let info = on_db!(self.store().db(), pool => {
            match sqlx::query(
                "SELECT id, queue, state, attempts, max_attempts, run_at, locked_by,
                        locked_until, last_error, document_id
                 FROM jobs WHERE id = $1",
            )
            .bind(id.0)
            .fetch_optional(pool)
            .await?
            {
                Some(row) => Some(JobInfo {
                    id: JobId(row.i64("id")?),
                    queue: row.string("queue")?,
                    state: row.string("state")?,
                    attempts: row.i32("attempts")?,
                    max_attempts: row.i32("max_attempts")?,
                    run_at_ms: row.i64("run_at")?,
                    locked_by: row.opt_string("locked_by")?,
                    locked_until_ms: row.opt_i64("locked_until")?,
                    last_error: row.opt_string("last_error")?,
                    document_id: row.opt_string("document_id")?,
                }),
                None => None,
            }
        });
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let config = QueueConfig::default();
        assert_eq!(config.backoff(1), Duration::from_secs(2));
        assert_eq!(config.backoff(2), Duration::from_secs(4));
        assert_eq!(config.backoff(5), Duration::from_secs(32));
        assert_eq!(config.backoff(12), Duration::from_secs(3600));
        assert_eq!(config.backoff(i32::MAX), Duration::from_secs(3600));
        assert_eq!(config.backoff(0), Duration::from_secs(2));
        for attempts in 1..20 {
            let cap = config.backoff(attempts);
            let delay = config.jittered_backoff(attempts);
            assert!(
                delay >= cap / 2 && delay <= cap,
                "{attempts}: {delay:?} of {cap:?}"
            );
        }
    }

    #[test]
    fn document_id_comes_from_the_payload() {
        assert_eq!(
            document_id_of(r#"{"document_id":"abc","x":1}"#).as_deref(),
            Some("abc")
        );
        assert_eq!(document_id_of(r#"{"document_id":5}"#), None);
        assert_eq!(document_id_of("not json"), None);
        assert_eq!(document_id_of("[1]"), None);
    }
}
