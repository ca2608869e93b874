use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peedy_queue::{Handler, Job, JobError, JobId, Queue, QueueConfig, async_trait, run_workers};
use peedy_store::now_ms;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Generous bound for "eventually": only reached when a test fails.
const PATIENCE: Duration = Duration::from_secs(20);

pub(crate) fn fast() -> QueueConfig {
    QueueConfig {
        lease: Duration::from_secs(30),
        poll_interval: Duration::from_millis(20),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(20),
    }
}

/// A fresh store on the backend of this test target (`super::BACKEND`).
pub(crate) async fn setup(config: QueueConfig) -> (crate::common::TestDb, Queue) {
    let (db, store) = crate::common::open_store(super::BACKEND).await;
    (db, Queue::new(store, "test-node".into(), config))
}

async fn enqueue(queue: &Queue, name: &str, payload: &str, max_attempts: i32) -> JobId {
    let mut tx = queue.store().begin().await.unwrap();
    let id = queue
        .enqueue(&mut tx, name, payload, max_attempts, None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    queue.notify(name);
    id
}

pub(crate) struct Workers {
    shutdown: CancellationToken,
    handle: JoinHandle<()>,
}

impl Workers {
    pub(crate) fn start(
        queue: &Queue,
        name: &str,
        concurrency: usize,
        handler: Arc<dyn Handler>,
        grace: Duration,
    ) -> Workers {
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn({
            let (queue, name, shutdown) = (queue.clone(), name.to_owned(), shutdown.clone());
            async move { run_workers(queue, &name, concurrency, handler, shutdown, grace).await }
        });
        Workers { shutdown, handle }
    }

    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(PATIENCE, self.handle)
            .await
            .expect("run_workers returns after shutdown")
            .unwrap();
    }
}

/// Waits until the queue has nothing queued or running.
pub(crate) async fn drained(queue: &Queue, name: &str) {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let depth = queue.depth(name).await.unwrap();
            if depth.queued == 0 && depth.running == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("queue drained");
}

/// Counts jobs in flight and remembers the most seen at once. The first
/// `limit` jobs wait for each other, so the pool demonstrably fills up.
#[derive(Default)]
struct Counting {
    limit: usize,
    started: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    done: AtomicUsize,
}

#[async_trait]
impl Handler for Counting {
    async fn run(&self, _job: &Job) -> Result<(), JobError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if self.started.fetch_add(1, Ordering::SeqCst) < self.limit {
            let _ = tokio::time::timeout(PATIENCE, async {
                while self.in_flight.load(Ordering::SeqCst) < self.limit {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
            .await;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.done.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_limit_is_respected() {
    let (_dir, queue) = setup(fast()).await;
    let mut tx = queue.store().begin().await.unwrap();
    for _ in 0..30 {
        queue
            .enqueue(&mut tx, "stamping", "{}", 3, None)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let handler = Arc::new(Counting {
        limit: 3,
        ..Counting::default()
    });
    let workers = Workers::start(
        &queue,
        "stamping",
        3,
        handler.clone(),
        Duration::from_secs(5),
    );
    drained(&queue, "stamping").await;
    workers.stop().await;
    assert_eq!(handler.done.load(Ordering::SeqCst), 30);
    // Never more than the limit; and the limit is reached (the first three
    // jobs wait for each other), so the pool is not accidentally serial.
    assert_eq!(handler.max_in_flight.load(Ordering::SeqCst), 3);
}

/// Panics on the first attempt of every job whose payload says so.
#[derive(Default)]
struct Panicky {
    runs: Mutex<Vec<(String, i32)>>,
    exhausted: Mutex<Vec<(JobId, String)>>,
}

#[async_trait]
impl Handler for Panicky {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        self.runs
            .lock()
            .unwrap()
            .push((job.payload.clone(), job.attempts));
        match job.payload.as_str() {
            "panic-once" if job.attempts == 1 => panic!("engine bug on attempt {}", job.attempts),
            "panic-always" => panic!("engine bug, always"),
            "bad-pdf" => Err(JobError::permanent("not a PDF")),
            _ => Ok(()),
        }
    }

    async fn exhausted(&self, job: &Job, reason: &str) {
        self.exhausted
            .lock()
            .unwrap()
            .push((job.id, reason.to_owned()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_handler_fails_only_its_job_which_is_retried() {
    let (_dir, queue) = setup(fast()).await;
    let once = enqueue(&queue, "stamping", "panic-once", 3).await;
    let always = enqueue(&queue, "stamping", "panic-always", 2).await;
    let fine = enqueue(&queue, "stamping", "fine", 3).await;
    let bad = enqueue(&queue, "stamping", "bad-pdf", 3).await;
    let handler = Arc::new(Panicky::default());
    let workers = Workers::start(
        &queue,
        "stamping",
        2,
        handler.clone(),
        Duration::from_secs(5),
    );
    drained(&queue, "stamping").await;
    // The pool survived the panics: a job enqueued now still runs.
    let after = enqueue(&queue, "stamping", "fine-after", 3).await;
    drained(&queue, "stamping").await;
    workers.stop().await;

    let runs = handler.runs.lock().unwrap().clone();
    let attempts_of = |p: &str| {
        runs.iter()
            .filter(|(q, _)| q == p)
            .map(|(_, a)| *a)
            .collect::<Vec<_>>()
    };
    assert_eq!(attempts_of("panic-once"), vec![1, 2]);
    assert_eq!(attempts_of("panic-always"), vec![1, 2]);
    assert_eq!(attempts_of("fine"), vec![1]);
    assert_eq!(attempts_of("fine-after"), vec![1]);
    assert_eq!(
        attempts_of("bad-pdf"),
        vec![1],
        "permanent failures are not retried"
    );

    // Retried to success: deleted. Panicked on its last attempt: failed,
    // with the panic as the reason, and the handler was told once.
    assert!(queue.job_info(once).await.unwrap().is_none());
    assert!(queue.job_info(fine).await.unwrap().is_none());
    assert!(queue.job_info(after).await.unwrap().is_none());
    let failed = queue.job_info(always).await.unwrap().unwrap();
    assert_eq!(failed.state, "failed");
    assert_eq!(
        failed.last_error.as_deref(),
        Some("panicked: engine bug, always")
    );
    let bad = queue.job_info(bad).await.unwrap().unwrap();
    assert_eq!(
        (bad.state.as_str(), bad.last_error.as_deref()),
        ("failed", Some("not a PDF"))
    );
    let exhausted = handler.exhausted.lock().unwrap().clone();
    assert_eq!(
        exhausted,
        vec![(always, "panicked: engine bug, always".to_owned())]
    );
}

/// Signals each run.
pub(crate) struct Signal(pub(crate) Arc<Notify>);

#[async_trait]
impl Handler for Signal {
    async fn run(&self, _job: &Job) -> Result<(), JobError> {
        self.0.notify_one();
        Ok(())
    }
}

#[tokio::test]
async fn notify_wakes_an_idle_worker_at_once() {
    // Polling once a minute: only the wake-up can make the job run in time.
    let config = QueueConfig {
        poll_interval: Duration::from_secs(60),
        ..fast()
    };
    let (_dir, queue) = setup(config).await;
    let ran = Arc::new(Notify::new());
    let workers = Workers::start(
        &queue,
        "callbacks",
        5,
        Arc::new(Signal(ran.clone())),
        Duration::from_secs(5),
    );
    // Let the workers find the queue empty and go to sleep.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let id = enqueue(&queue, "callbacks", "{}", 3).await;
    tokio::time::timeout(Duration::from_secs(10), ran.notified())
        .await
        .expect("the notified worker ran the job");
    drained(&queue, "callbacks").await;
    assert!(queue.job_info(id).await.unwrap().is_none());
    workers.stop().await;
}

/// Starts, then runs for an hour (or until aborted).
struct Slow {
    started: Arc<Notify>,
    runs: AtomicUsize,
}

#[async_trait]
impl Handler for Slow {
    async fn run(&self, _job: &Job) -> Result<(), JobError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        self.started.notify_one();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(())
    }
}

#[tokio::test]
async fn shutdown_hands_back_a_long_running_job() {
    let (_dir, queue) = setup(fast()).await;
    let id = enqueue(&queue, "stamping", "{}", 3).await;
    let started = Arc::new(Notify::new());
    let handler = Arc::new(Slow {
        started: started.clone(),
        runs: AtomicUsize::new(0),
    });
    let workers = Workers::start(
        &queue,
        "stamping",
        2,
        handler.clone(),
        Duration::from_millis(50),
    );
    tokio::time::timeout(PATIENCE, started.notified())
        .await
        .expect("job started");
    assert_eq!(queue.job_info(id).await.unwrap().unwrap().state, "running");

    workers.stop().await;
    let info = queue.job_info(id).await.unwrap().unwrap();
    assert_eq!(info.state, "queued", "handed back");
    assert_eq!(info.attempts, 0, "the interrupted attempt is not counted");
    assert_eq!((info.locked_by, info.locked_until_ms), (None, None));
    assert!(info.run_at_ms <= now_ms());
    assert_eq!(handler.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn shutdown_lets_in_flight_jobs_finish_within_the_grace() {
    let (_dir, queue) = setup(fast()).await;
    let id = enqueue(&queue, "stamping", "{}", 3).await;
    let started = Arc::new(Notify::new());

    struct Finishing(Arc<Notify>);
    #[async_trait]
    impl Handler for Finishing {
        async fn run(&self, _job: &Job) -> Result<(), JobError> {
            self.0.notify_one();
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(())
        }
    }

    let workers = Workers::start(
        &queue,
        "stamping",
        2,
        Arc::new(Finishing(started.clone())),
        PATIENCE,
    );
    tokio::time::timeout(PATIENCE, started.notified())
        .await
        .expect("job started");
    // Shutdown stops claiming at once: a job enqueued now is left queued.
    workers.shutdown.cancel();
    let late = enqueue(&queue, "stamping", "{}", 3).await;
    tokio::time::timeout(PATIENCE, workers.handle)
        .await
        .unwrap()
        .unwrap();
    assert!(
        queue.job_info(id).await.unwrap().is_none(),
        "finished and completed"
    );
    let late = queue.job_info(late).await.unwrap().unwrap();
    assert_eq!((late.state.as_str(), late.attempts), ("queued", 0));
}

#[tokio::test]
async fn exhausted_job_is_reported_to_the_handler_and_failed() {
    let config = QueueConfig {
        lease: Duration::from_millis(50),
        ..fast()
    };
    let (_dir, queue) = setup(config).await;
    let id = enqueue(&queue, "stamping", "poison", 2).await;
    // Two workers died running it (claimed, never heard from again).
    for _ in 0..2 {
        assert!(queue.claim("stamping").await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    let handler = Arc::new(Panicky::default());
    let workers = Workers::start(
        &queue,
        "stamping",
        2,
        handler.clone(),
        Duration::from_secs(5),
    );
    drained(&queue, "stamping").await;
    workers.stop().await;

    assert!(
        handler.runs.lock().unwrap().is_empty(),
        "not run a third time"
    );
    let reason = "worker died 2 times (lease expired each time)".to_owned();
    assert_eq!(
        handler.exhausted.lock().unwrap().clone(),
        vec![(id, reason.clone())]
    );
    let info = queue.job_info(id).await.unwrap().unwrap();
    assert_eq!(
        (info.state, info.last_error),
        ("failed".to_owned(), Some(reason))
    );
}

#[tokio::test]
async fn deferred_job_waits_without_spending_attempts() {
    let (_dir, queue) = setup(fast()).await;
    let id = enqueue(&queue, "callbacks", "{}", 1).await;

    struct BreakerOpen(AtomicUsize);
    #[async_trait]
    impl Handler for BreakerOpen {
        async fn run(&self, _job: &Job) -> Result<(), JobError> {
            // Open for the first two runs, then closed.
            if self.0.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(JobError::Defer {
                    until_ms: now_ms() + 20,
                })
            } else {
                Ok(())
            }
        }
    }

    let handler = Arc::new(BreakerOpen(AtomicUsize::new(0)));
    let workers = Workers::start(
        &queue,
        "callbacks",
        5,
        handler.clone(),
        Duration::from_secs(5),
    );
    drained(&queue, "callbacks").await;
    workers.stop().await;
    // Three runs of a job allowed one attempt: deferrals did not count.
    assert_eq!(handler.0.load(Ordering::SeqCst), 3);
    assert!(queue.job_info(id).await.unwrap().is_none());
}

#[tokio::test]
async fn heartbeat_keeps_a_long_job_from_being_rescued() {
    // Lease 240 ms, heartbeat every 80 ms, job runs 500 ms: without the
    // heartbeat a second claimer would take it over.
    let config = QueueConfig {
        lease: Duration::from_millis(240),
        ..fast()
    };
    let (_dir, queue) = setup(config).await;
    let id = enqueue(&queue, "stamping", "{}", 3).await;

    struct Sleeps(AtomicUsize, Arc<Notify>);
    #[async_trait]
    impl Handler for Sleeps {
        async fn run(&self, _job: &Job) -> Result<(), JobError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            self.1.notify_one();
            tokio::time::sleep(Duration::from_millis(500)).await;
            Ok(())
        }
    }

    let started = Arc::new(Notify::new());
    let handler = Arc::new(Sleeps(AtomicUsize::new(0), started.clone()));
    let workers = Workers::start(
        &queue,
        "stamping",
        1,
        handler.clone(),
        Duration::from_secs(5),
    );
    tokio::time::timeout(PATIENCE, started.notified())
        .await
        .expect("job started");
    let other = queue.clone();
    let rival = tokio::spawn(async move {
        let mut stolen = 0;
        for _ in 0..8 {
            if other.claim("stamping").await.unwrap().is_some() {
                stolen += 1;
            }
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
        stolen
    });
    assert_eq!(
        rival.await.unwrap(),
        0,
        "nobody took over a job with a live heartbeat"
    );
    drained(&queue, "stamping").await;
    workers.stop().await;
    assert_eq!(handler.0.load(Ordering::SeqCst), 1);
    assert!(queue.job_info(id).await.unwrap().is_none());
}
