//! Running jobs: the [`Handler`] a queue's jobs are given to, and
//! [`run_workers`], the loop that claims jobs as capacity frees up, keeps
//! their leases alive, records how they ended, and shuts down gracefully.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use peedy_store::{Db, now_ms};
use tokio::sync::{Notify, Semaphore};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::queue::NOTIFY_CHANNEL;
use crate::{Claimed, Job, JobOutcome, Queue};

/// How a job attempt failed, as its [`Handler`] reports it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// A transient failure (callback host down, database busy): retry after
    /// the backoff, or after `after` when the other side said (429/503
    /// `Retry-After`), while attempts remain.
    #[error("{reason}")]
    Retry {
        /// Why, stored as the job's `last_error`.
        reason: String,
        /// When to retry, if known (capped at `backoff_max`).
        after: Option<Duration>,
    },
    /// A failure that retrying cannot fix (not a PDF, callback answered 4xx):
    /// the job fails now. The handler records it on its document itself.
    #[error("{reason}")]
    Permanent {
        /// Why, stored as the job's `last_error`.
        reason: String,
    },
    /// Not now, and it is not the job's fault (callback host's breaker is
    /// open): re-queue for `until_ms` without spending an attempt.
    #[error("deferred until {until_ms}")]
    Defer {
        /// When to try again (unix ms).
        until_ms: i64,
    },
}

impl JobError {
    /// A retryable failure with the default backoff.
    pub fn retry(reason: impl Into<String>) -> JobError {
        JobError::Retry {
            reason: reason.into(),
            after: None,
        }
    }

    /// A permanent failure.
    pub fn permanent(reason: impl Into<String>) -> JobError {
        JobError::Permanent {
            reason: reason.into(),
        }
    }
}

/// Runs the jobs of one queue. Implement it with [`async_trait`](crate::async_trait).
///
/// A handler is called on a tokio task of its own: a panic inside it is
/// caught and counts as a retryable failure ("panicked: …") of that job
/// only. CPU-heavy work belongs in `tokio::task::spawn_blocking`.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Runs one attempt of `job`. `Ok` completes the job; see [`JobError`]
    /// for the rest. Runs may repeat (at-least-once): make them idempotent.
    async fn run(&self, job: &Job) -> Result<(), JobError>;

    /// Called once a job has failed for good without the handler choosing
    /// it: attempts used up by retryable failures or panics, or its worker
    /// died `max_attempts` times ([`Claimed::Exhausted`]). Record the failure
    /// on whatever the job was for (e.g. mark the document failed with
    /// `reason`). Not called for [`JobError::Permanent`], which the handler
    /// already knows about. May be called again if the process dies during
    /// it: keep it idempotent.
    async fn exhausted(&self, job: &Job, reason: &str) {
        let _ = (job, reason);
    }
}

/// Runs jobs of `queue` until `shutdown` is cancelled, at most `concurrency`
/// at once.
///
/// It waits for a free slot *before* claiming, so it never holds a job it
/// cannot start; claims; and runs the handler on its own task while a
/// heartbeat renews the lease every `lease / 3`. Idle, it sleeps until
/// [`Queue::notify`] (or, on PostgreSQL, a `NOTIFY` from any node) or
/// `poll_interval` passes.
///
/// On shutdown it stops claiming, waits up to `grace` for the jobs in flight,
/// then hands back the ones still running (re-queued at once, the attempt
/// not counted) and returns.
pub async fn run_workers(
    queue: Queue,
    name: &str,
    concurrency: usize,
    handler: Arc<dyn Handler>,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let slots = Arc::new(Semaphore::new(concurrency.max(1)));
    let tracker = TaskTracker::new();
    let handback = CancellationToken::new();
    let waker = queue.waker(name);
    let listener = shutdown.child_token();
    spawn_pg_listener(&queue, name, Arc::clone(&waker), listener.clone());
    let poll = queue.config().poll_interval;
    tracing::info!(
        queue = name,
        concurrency,
        node = queue.node_id(),
        "workers started"
    );

    loop {
        let permit = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        // Register for wake-ups before looking, so a job enqueued between an
        // empty claim and the wait still wakes us.
        let notified = waker.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match queue.claim(name).await {
            Ok(Some(claimed)) if shutdown.is_cancelled() => {
                // The claim raced with shutdown: start nothing new.
                let job = claimed.job();
                match queue.defer(job, now_ms()).await {
                    Ok(_) => tracing::debug!(
                        job_id = job.id.0,
                        "job claimed during shutdown handed back"
                    ),
                    Err(error) => {
                        tracing::warn!(job_id = job.id.0, %error, "handing back a job failed; it runs again once its lease expires")
                    }
                }
                break;
            }
            Ok(Some(claimed)) => {
                let job = claimed.job();
                let span = tracing::info_span!(
                    "job",
                    queue = name,
                    job_id = job.id.0,
                    attempt = job.attempts,
                );
                let run = run_claimed(
                    queue.clone(),
                    Arc::clone(&handler),
                    claimed,
                    handback.clone(),
                );
                tracker.spawn(
                    async move {
                        run.await;
                        drop(permit);
                    }
                    .instrument(span),
                );
            }
            Ok(None) => {
                drop(permit);
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break,
                    () = &mut notified => {}
                    () = tokio::time::sleep(poll) => {}
                }
            }
            Err(error) => {
                drop(permit);
                tracing::warn!(queue = name, %error, "claiming a job failed; retrying after the poll interval");
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(poll) => {}
                }
            }
        }
    }

    listener.cancel();
    tracker.close();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!(
            queue = name,
            in_flight = tracker.len(),
            "shutdown grace over; handing back running jobs"
        );
        handback.cancel();
        tracker.wait().await;
    }
    tracing::info!(queue = name, "workers stopped");
}

async fn run_claimed(
    queue: Queue,
    handler: Arc<dyn Handler>,
    claimed: Claimed,
    handback: CancellationToken,
) {
    match claimed {
        Claimed::Run(job) => run_job(&queue, handler, job, &handback).await,
        Claimed::Exhausted(job) => {
            let reason = format!(
                "worker died {} times (lease expired each time)",
                job.max_attempts
            );
            tracing::error!(%reason, "job failed");
            call_exhausted(handler, &job, &reason).await;
            record(&job, queue.fail(&job, &reason, false, None).await);
        }
    }
}

/// Runs one attempt with a heartbeat, then records how it ended.
async fn run_job(queue: &Queue, handler: Arc<dyn Handler>, job: Job, handback: &CancellationToken) {
    let started = Instant::now();
    let mut task = {
        let job = job.clone();
        let handler = Arc::clone(&handler);
        tokio::spawn(async move { handler.run(&job).await }.in_current_span())
    };
    let period = (queue.config().lease / 3).max(Duration::from_millis(10));
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);

    let joined = loop {
        tokio::select! {
            biased;
            joined = &mut task => break joined,
            () = handback.cancelled() => {
                task.abort();
                match (&mut task).await {
                    // It finished just before the abort: keep the result.
                    Ok(result) => break Ok(result),
                    Err(error) if error.is_panic() => break Err(error),
                    Err(_) => {
                        match queue.defer(&job, now_ms()).await {
                            Ok(true) => tracing::info!("job handed back at shutdown"),
                            Ok(false) => tracing::warn!("job lost its lease before it could be handed back"),
                            Err(error) => tracing::warn!(%error, "handing back a job failed; it runs again once its lease expires"),
                        }
                        return;
                    }
                }
            }
            _ = heartbeat.tick() => match queue.heartbeat(&job).await {
                Ok(true) => {}
                Ok(false) => {
                    // Someone else holds it now (or it was deleted); whatever
                    // this run produces would be discarded.
                    tracing::warn!("job lease lost; abandoning this run");
                    task.abort();
                    return;
                }
                Err(error) => tracing::warn!(%error, "job heartbeat failed; will try again"),
            },
        }
    };

    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match joined {
        Ok(Ok(())) if job.completed.get() => tracing::info!(ms, "job done"),
        Ok(Ok(())) => match queue.complete(&job).await {
            Ok(true) => tracing::info!(ms, "job done"),
            Ok(false) => tracing::warn!(ms, "job finished after its lease was lost"),
            Err(error) => {
                tracing::error!(%error, "could not record a finished job; it runs again once its lease expires")
            }
        },
        Ok(Err(JobError::Retry { reason, after })) => {
            fail_retryable(queue, handler, &job, &reason, after).await;
        }
        Ok(Err(JobError::Permanent { reason })) => {
            tracing::error!(%reason, ms, "job failed permanently");
            record(&job, queue.fail(&job, &reason, false, None).await);
        }
        Ok(Err(JobError::Defer { until_ms })) => match queue.defer(&job, until_ms).await {
            Ok(true) => tracing::info!(until_ms, "job deferred"),
            Ok(false) => tracing::warn!("job lost its lease before it could be deferred"),
            Err(error) => {
                tracing::error!(%error, "could not defer a job; it runs again once its lease expires")
            }
        },
        Err(error) if error.is_panic() => {
            let reason = format!("panicked: {}", panic_message(&*error.into_panic()));
            fail_retryable(queue, handler, &job, &reason, None).await;
        }
        Err(_) => {
            // Cancelled by someone else (runtime shutting down): not its fault.
            let _ = queue.defer(&job, now_ms()).await;
        }
    }
}

/// A retryable failure: retried while attempts remain; on the last one the
/// handler hears about it first (so a crash in between leaves the job to be
/// rescued, not a document stuck "running").
async fn fail_retryable(
    queue: &Queue,
    handler: Arc<dyn Handler>,
    job: &Job,
    reason: &str,
    after: Option<Duration>,
) {
    if job.is_last_attempt() {
        tracing::error!(%reason, "job failed; no attempts left");
        call_exhausted(handler, job, reason).await;
    }
    record(job, queue.fail(job, reason, true, after).await);
}

/// Logs what `fail` did (the failure itself was logged by the caller).
fn record(job: &Job, outcome: crate::Result<JobOutcome>) {
    match outcome {
        Ok(JobOutcome::Retrying { at_ms }) => tracing::warn!(
            retry_in_ms = at_ms - now_ms(),
            attempts = job.attempts,
            max_attempts = job.max_attempts,
            "job failed; will retry"
        ),
        Ok(JobOutcome::Failed) => {}
        Ok(JobOutcome::LeaseLost) => {
            tracing::warn!("job lost its lease before its failure was recorded")
        }
        Err(error) => {
            tracing::error!(%error, "could not record a job failure; it runs again once its lease expires")
        }
    }
}

/// Calls [`Handler::exhausted`] on its own task, so a panic there is caught.
async fn call_exhausted(handler: Arc<dyn Handler>, job: &Job, reason: &str) {
    let job = job.clone();
    let reason = reason.to_owned();
    let hook =
        tokio::spawn(async move { handler.exhausted(&job, &reason).await }.in_current_span());
    if let Err(error) = hook.await {
        tracing::error!(%error, "the handler's `exhausted` hook failed");
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}

/// On PostgreSQL, forwards `NOTIFY peedy_jobs, '<queue>'` from any node to
/// this process's workers of `name`, until `stop`.
fn spawn_pg_listener(queue: &Queue, name: &str, waker: Arc<Notify>, stop: CancellationToken) {
    let Db::Postgres(pool) = queue.store().db() else {
        return;
    };
    let pool = pool.clone();
    let name = name.to_owned();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                result = listen(&pool, &name, &waker) => {
                    if let Err(error) = result {
                        tracing::warn!(queue = %name, %error, "LISTEN failed; polling until it reconnects");
                    }
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    });
}

async fn listen(pool: &sqlx::PgPool, name: &str, waker: &Notify) -> sqlx::Result<()> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(NOTIFY_CHANNEL).await?;
    loop {
        match listener.try_recv().await? {
            Some(notification) if notification.payload() != name => {}
            // A wake-up for us, or the connection dropped (notifications may
            // have been missed while it reconnects): look now.
            _ => waker.notify_waiters(),
        }
    }
}
