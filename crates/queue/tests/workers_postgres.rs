//! `run_workers` (concurrency limits, panics, wake-ups, exhaustion, graceful
//! shutdown) against a real PostgreSQL server started by the harness (initdb + pg_ctl; fails with the install hint without the binaries).
// Helpers outside #[test] fns unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

const BACKEND: common::Backend = common::Backend::Postgres;

#[path = "cases/workers.rs"]
mod cases;

use std::sync::Arc;
use std::time::Duration;

use cases::{Signal, Workers, drained, fast, setup};
use peedy_queue::{Queue, QueueConfig};
use tokio::sync::Notify;

#[tokio::test]
async fn postgres_notify_wakes_workers_of_another_node() {
    let config = QueueConfig {
        poll_interval: Duration::from_secs(60),
        ..fast()
    };
    let (_dir, web) = setup(config.clone()).await;
    // A second node on the same database: its own in-process wake-ups.
    let worker = Queue::new(web.store().clone(), "worker-node".into(), config);
    let ran = Arc::new(Notify::new());
    let workers = Workers::start(
        &worker,
        "stamping",
        2,
        Arc::new(Signal(ran.clone())),
        Duration::from_secs(5),
    );
    // Let the worker node find the queue empty, go to sleep and LISTEN.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Enqueue on the web node; only PostgreSQL's NOTIFY reaches the worker.
    let mut tx = web.store().begin().await.unwrap();
    let id = web
        .enqueue(&mut tx, "stamping", "{}", 3, None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), ran.notified())
        .await
        .expect("the other node's worker was woken by NOTIFY");
    drained(&web, "stamping").await;
    assert!(web.job_info(id).await.unwrap().is_none());
    workers.stop().await;
}
