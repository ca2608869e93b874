use std::collections::HashMap;
use std::time::Duration;

use peedy_queue::{Claimed, Job, JobId, JobOutcome, Queue, QueueConfig, QueueDepth};
use peedy_store::{DocumentId, NewDocument, now_ms, on_db};

/// A fresh store on the backend of this test target (`super::BACKEND`).
async fn setup(config: QueueConfig) -> (crate::common::TestDb, Queue) {
    let (db, store) = crate::common::open_store(super::BACKEND).await;
    (db, Queue::new(store, "test-node".into(), config))
}

async fn enqueue(
    queue: &Queue,
    name: &str,
    payload: &str,
    max_attempts: i32,
    run_at: Option<i64>,
) -> JobId {
    let mut tx = queue.store().begin().await.unwrap();
    let id = queue
        .enqueue(&mut tx, name, payload, max_attempts, run_at)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

fn run(claimed: Option<Claimed>) -> Job {
    match claimed {
        Some(Claimed::Run(job)) => job,
        other => panic!("expected a job to run, got {other:?}"),
    }
}

/// Makes a queued job due now (instead of waiting out its backoff).
async fn make_due(queue: &Queue, id: JobId) {
    on_db!(queue.store().db(), pool => {
        sqlx::query("UPDATE jobs SET run_at = 0 WHERE id = $1")
            .bind(id.0)
            .execute(pool)
            .await
            .unwrap();
    });
}

fn short_lease() -> QueueConfig {
    QueueConfig {
        lease: Duration::from_millis(100),
        ..QueueConfig::default()
    }
}

/// Waits out a lease of [`short_lease`].
async fn lease_expires() {
    tokio::time::sleep(Duration::from_millis(110)).await;
}

#[tokio::test]
async fn enqueue_claim_complete() {
    let (_dir, queue) = setup(QueueConfig::default()).await;
    let before = now_ms();
    let id = enqueue(&queue, "stamping", r#"{"document_id":"d1"}"#, 3, None).await;
    assert_eq!(queue.depth("stamping").await.unwrap().queued, 1);

    let job = run(queue.claim("stamping").await.unwrap());
    assert_eq!(job.id, id);
    assert_eq!(job.queue, "stamping");
    assert_eq!(job.payload, r#"{"document_id":"d1"}"#);
    assert_eq!((job.attempts, job.max_attempts), (1, 3));
    assert!(job.created_at_ms >= before);
    let info = queue.job_info(id).await.unwrap().unwrap();
    assert_eq!(info.state, "running");
    assert_eq!(info.locked_by.as_deref(), Some("test-node"));
    assert_eq!(info.document_id.as_deref(), Some("d1"));
    let until = info.locked_until_ms.unwrap();
    assert!(
        until >= now_ms() + 29_000 && until <= now_ms() + 30_000,
        "{until}"
    );

    // Nothing else to claim, in this queue or another.
    assert!(queue.claim("stamping").await.unwrap().is_none());
    assert!(queue.claim("callbacks").await.unwrap().is_none());
    assert_eq!(
        queue.depth("stamping").await.unwrap(),
        QueueDepth {
            queued: 0,
            running: 1,
            oldest_queued_at_ms: None
        }
    );

    assert!(queue.heartbeat(&job).await.unwrap());
    assert!(queue.complete(&job).await.unwrap());
    assert!(queue.job_info(id).await.unwrap().is_none());
    assert_eq!(
        queue.depth("stamping").await.unwrap(),
        QueueDepth::default()
    );
    // A completed job's claim is gone.
    assert!(!queue.heartbeat(&job).await.unwrap());
    assert!(!queue.complete(&job).await.unwrap());
}

#[tokio::test]
async fn claim_order_is_run_at_then_id() {
    let (_dir, queue) = setup(QueueConfig::default()).await;
    let now = now_ms();
    let later = enqueue(&queue, "q", "{}", 3, Some(now - 1000)).await;
    let first = enqueue(&queue, "q", "{}", 3, Some(now - 3000)).await;
    let second = enqueue(&queue, "q", "{}", 3, Some(now - 3000)).await;
    let future = enqueue(&queue, "q", "{}", 3, Some(now + 60_000)).await;

    let order: Vec<JobId> = [
        queue.claim("q").await.unwrap(),
        queue.claim("q").await.unwrap(),
        queue.claim("q").await.unwrap(),
    ]
    .into_iter()
    .map(|c| run(c).id)
    .collect();
    assert_eq!(order, vec![first, second, later]);
    // Not due yet.
    assert!(queue.claim("q").await.unwrap().is_none());
    let depth = queue.depth("q").await.unwrap();
    assert_eq!((depth.queued, depth.running), (1, 3));
    assert!(depth.oldest_queued_at_ms.is_some());
    make_due(&queue, future).await;
    assert_eq!(run(queue.claim("q").await.unwrap()).id, future);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_never_get_the_same_job() {
    let (_dir, queue) = setup(QueueConfig::default()).await;
    let mut tx = queue.store().begin().await.unwrap();
    for i in 0..100 {
        queue
            .enqueue(&mut tx, "q", &format!("{{\"n\":{i}}}"), 3, None)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();

    let claimers: Vec<_> = (0..8)
        .map(|_| {
            let queue = queue.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(claimed) = queue.claim("q").await.unwrap() {
                    got.push(run(Some(claimed)).id);
                }
                got
            })
        })
        .collect();
    let mut times_claimed: HashMap<JobId, usize> = HashMap::new();
    for claimer in claimers {
        for id in claimer.await.unwrap() {
            *times_claimed.entry(id).or_default() += 1;
        }
    }
    assert_eq!(times_claimed.len(), 100);
    assert!(times_claimed.values().all(|&n| n == 1), "{times_claimed:?}");
}

#[tokio::test]
async fn retry_backoff_is_stored_and_respected() {
    let config = QueueConfig {
        backoff_base: Duration::from_secs(10),
        backoff_max: Duration::from_secs(60),
        ..QueueConfig::default()
    };
    let (_dir, queue) = setup(config).await;
    let id = enqueue(&queue, "q", "{}", 5, None).await;

    // Attempt 1 fails: retry in [5 s, 10 s].
    let job = run(queue.claim("q").await.unwrap());
    let before = now_ms();
    let outcome = queue.fail(&job, "HTTP 503", true, None).await.unwrap();
    let after = now_ms();
    let JobOutcome::Retrying { at_ms } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        at_ms >= before + 5_000 && at_ms <= after + 10_000,
        "{}",
        at_ms - before
    );
    let info = queue.job_info(id).await.unwrap().unwrap();
    assert_eq!(info.state, "queued");
    assert_eq!(info.run_at_ms, at_ms);
    assert_eq!(info.attempts, 1);
    assert_eq!(info.last_error.as_deref(), Some("HTTP 503"));
    assert_eq!((info.locked_by, info.locked_until_ms), (None, None));
    // Not claimable during the backoff; the old claim cannot touch it.
    assert!(queue.claim("q").await.unwrap().is_none());
    assert!(!queue.heartbeat(&job).await.unwrap());
    assert_eq!(
        queue.fail(&job, "again", true, None).await.unwrap(),
        JobOutcome::LeaseLost
    );

    // Attempt 2 fails: the ceiling doubles, [10 s, 20 s].
    make_due(&queue, id).await;
    let job = run(queue.claim("q").await.unwrap());
    assert_eq!(job.attempts, 2);
    let before = now_ms();
    let JobOutcome::Retrying { at_ms } = queue.fail(&job, "HTTP 503", true, None).await.unwrap()
    else {
        panic!()
    };
    assert!(
        at_ms >= before + 10_000 && at_ms <= now_ms() + 20_000,
        "{}",
        at_ms - before
    );

    // Retry-After from the other side wins, capped at backoff_max.
    make_due(&queue, id).await;
    let job = run(queue.claim("q").await.unwrap());
    let before = now_ms();
    let JobOutcome::Retrying { at_ms } = queue
        .fail(&job, "HTTP 429", true, Some(Duration::from_secs(3)))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(at_ms >= before + 3_000 && at_ms <= now_ms() + 3_000);
    make_due(&queue, id).await;
    let job = run(queue.claim("q").await.unwrap());
    let before = now_ms();
    let JobOutcome::Retrying { at_ms } = queue
        .fail(&job, "HTTP 429", true, Some(Duration::from_secs(86_400)))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(at_ms >= before + 60_000 && at_ms <= now_ms() + 60_000);
}

#[tokio::test]
async fn permanent_failure_is_not_retried() {
    let (_dir, queue) = setup(QueueConfig::default()).await;
    let id = enqueue(&queue, "q", "{}", 5, None).await;
    let job = run(queue.claim("q").await.unwrap());
    assert_eq!(
        queue.fail(&job, "not a PDF", false, None).await.unwrap(),
        JobOutcome::Failed
    );
    let info = queue.job_info(id).await.unwrap().unwrap();
    assert_eq!(info.state, "failed");
    assert_eq!(info.last_error.as_deref(), Some("not a PDF"));
    make_due(&queue, id).await;
    assert!(queue.claim("q").await.unwrap().is_none());
    assert_eq!(queue.depth("q").await.unwrap(), QueueDepth::default());

    // Kept for inspection until purged.
    assert_eq!(queue.purge_failed(now_ms() - 60_000).await.unwrap(), 0);
    assert_eq!(queue.purge_failed(now_ms() + 1).await.unwrap(), 1);
    assert!(queue.job_info(id).await.unwrap().is_none());
}

#[tokio::test]
async fn retries_end_after_max_attempts() {
    let (_dir, queue) = setup(QueueConfig::default()).await;
    let id = enqueue(&queue, "q", "{}", 3, None).await;
    for attempt in 1..=3 {
        let job = run(queue.claim("q").await.unwrap());
        assert_eq!(job.attempts, attempt);
        assert_eq!(job.is_last_attempt(), attempt == 3);
        let outcome = queue
            .fail(&job, &format!("boom {attempt}"), true, None)
            .await
            .unwrap();
        if attempt < 3 {
            assert!(
                matches!(outcome, JobOutcome::Retrying { .. }),
                "{outcome:?}"
            );
            make_due(&queue, id).await;
        } else {
            assert_eq!(outcome, JobOutcome::Failed);
        }
    }
    let info = queue.job_info(id).await.unwrap().unwrap();
    assert_eq!((info.state.as_str(), info.attempts), ("failed", 3));
    assert_eq!(info.last_error.as_deref(), Some("boom 3"));
    assert!(queue.claim("q").await.unwrap().is_none());
}

#[tokio::test]
async fn expired_lease_makes_a_running_job_claimable_again() {
    let (_dir, queue) = setup(short_lease()).await;
    let id = enqueue(&queue, "q", "{}", 3, None).await;
    let dead = run(queue.claim("q").await.unwrap());
    // Its lease is still valid: nobody else gets it.
    assert!(queue.claim("q").await.unwrap().is_none());

    // The worker dies (no heartbeat); the lease runs out.
    lease_expires().await;
    let rescued = run(queue.claim("q").await.unwrap());
    assert_eq!(rescued.id, id);
    assert_eq!(rescued.attempts, 2);
    assert_ne!(rescued.lease_token, dead.lease_token);

    // The old claim is fenced off: it cannot renew, finish, fail or defer.
    assert!(!queue.heartbeat(&dead).await.unwrap());
    assert!(!queue.complete(&dead).await.unwrap());
    assert_eq!(
        queue.fail(&dead, "late", false, None).await.unwrap(),
        JobOutcome::LeaseLost
    );
    assert!(!queue.defer(&dead, 0).await.unwrap());
    assert_eq!(queue.job_info(id).await.unwrap().unwrap().state, "running");

    // A heartbeat pushes the lease further out.
    let until = queue
        .job_info(id)
        .await
        .unwrap()
        .unwrap()
        .locked_until_ms
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(queue.heartbeat(&rescued).await.unwrap());
    let renewed = queue
        .job_info(id)
        .await
        .unwrap()
        .unwrap()
        .locked_until_ms
        .unwrap();
    assert!(renewed > until, "{renewed} > {until}");
    assert!(queue.complete(&rescued).await.unwrap());
}

#[tokio::test]
async fn job_whose_worker_died_max_attempts_times_comes_back_exhausted() {
    let (_dir, queue) = setup(short_lease()).await;
    let id = enqueue(&queue, "q", "{}", 2, None).await;
    for attempt in 1..=2 {
        assert_eq!(run(queue.claim("q").await.unwrap()).attempts, attempt);
        lease_expires().await;
    }
    let Some(Claimed::Exhausted(job)) = queue.claim("q").await.unwrap() else {
        panic!("expected an exhausted job")
    };
    assert_eq!((job.id, job.attempts, job.max_attempts), (id, 3, 2));
    // Leased to the claimer, which records the failure and fails the job.
    assert_eq!(queue.job_info(id).await.unwrap().unwrap().state, "running");
    assert_eq!(
        queue
            .fail(&job, "worker died 2 times", false, None)
            .await
            .unwrap(),
        JobOutcome::Failed
    );
    assert!(queue.claim("q").await.unwrap().is_none());
    assert_eq!(queue.job_info(id).await.unwrap().unwrap().state, "failed");
}

#[tokio::test]
async fn job_that_also_kills_its_exhausted_handler_fails_without_looping() {
    let (_dir, queue) = setup(short_lease()).await;
    let id = enqueue(&queue, "q", "{}", 1, None).await;
    run(queue.claim("q").await.unwrap());
    lease_expires().await;
    assert!(matches!(
        queue.claim("q").await.unwrap(),
        Some(Claimed::Exhausted(_))
    ));
    // The worker dies again, while recording the failure.
    lease_expires().await;
    let Some(Claimed::Exhausted(job)) = queue.claim("q").await.unwrap() else {
        panic!("expected the exhausted job once more")
    };
    // This time the claim itself failed the job: nothing loops.
    let info = queue.job_info(id).await.unwrap().unwrap();
    assert_eq!(info.state, "failed");
    assert_eq!(
        info.last_error.as_deref(),
        Some("worker died 1 times (lease expired)")
    );
    assert_eq!(
        queue.fail(&job, "x", false, None).await.unwrap(),
        JobOutcome::LeaseLost
    );
    lease_expires().await;
    assert!(queue.claim("q").await.unwrap().is_none());
}

#[tokio::test]
async fn defer_does_not_spend_an_attempt() {
    let (_dir, queue) = setup(QueueConfig::default()).await;
    let id = enqueue(&queue, "q", "{}", 1, None).await;
    for _ in 0..3 {
        let job = run(queue.claim("q").await.unwrap());
        assert_eq!(job.attempts, 1);
        assert!(queue.defer(&job, now_ms()).await.unwrap());
        let info = queue.job_info(id).await.unwrap().unwrap();
        assert_eq!((info.state.as_str(), info.attempts), ("queued", 0));
    }
    // Deferred into the future: not claimable until then.
    let job = run(queue.claim("q").await.unwrap());
    assert!(queue.defer(&job, now_ms() + 60_000).await.unwrap());
    assert!(queue.claim("q").await.unwrap().is_none());
    make_due(&queue, id).await;
    // Still its first (and only) attempt.
    let job = run(queue.claim("q").await.unwrap());
    assert_eq!(job.attempts, 1);
    assert_eq!(
        queue.fail(&job, "x", true, None).await.unwrap(),
        JobOutcome::Failed
    );
}

#[tokio::test]
async fn deleting_a_document_deletes_its_jobs() {
    let (_dir, queue) = setup(QueueConfig::default()).await;
    let store = queue.store().clone();
    let (sha, size) = store.blobs().put_bytes(b"%PDF-1.7").await.unwrap();
    let doc_id = DocumentId::random();
    let mut tx = store.begin().await.unwrap();
    let watermark_id = store
        .upsert_watermark(&mut tx, r#"{"text":"A"}"#)
        .await
        .unwrap();
    store
        .insert_document(
            &mut tx,
            &NewDocument {
                id: doc_id.clone(),
                filename: "a.pdf".into(),
                watermark_id,
                input_sha256: sha,
                input_size: size as i64,
                input_hash_state: None,
                callback_url: None,
                request_id: None,
                expires_at_ms: now_ms() + 60_000,
            },
        )
        .await
        .unwrap();
    let payload = format!(r#"{{"document_id":"{doc_id}"}}"#);
    let stamp = queue
        .enqueue(&mut tx, "stamping", &payload, 3, None)
        .await
        .unwrap();
    let callback = queue
        .enqueue(&mut tx, "callbacks", &payload, 3, None)
        .await
        .unwrap();
    let unrelated = queue
        .enqueue(&mut tx, "callbacks", r#"{"document_id":"other"}"#, 3, None)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    assert!(store.delete_document(&doc_id).await.unwrap());
    assert!(queue.job_info(stamp).await.unwrap().is_none());
    assert!(queue.job_info(callback).await.unwrap().is_none());
    assert!(queue.job_info(unrelated).await.unwrap().is_some());
}

#[tokio::test]
async fn enqueue_is_part_of_the_callers_transaction() {
    let (_dir, queue) = setup(QueueConfig::default()).await;
    let mut tx = queue.store().begin().await.unwrap();
    let id = queue.enqueue(&mut tx, "q", "{}", 3, None).await.unwrap();
    tx.rollback().await.unwrap();
    assert!(queue.job_info(id).await.unwrap().is_none());
    assert!(queue.claim("q").await.unwrap().is_none());
}

#[tokio::test]
async fn complete_in_is_part_of_the_callers_transaction() {
    let (_dir, queue) = setup(short_lease()).await;
    let id = enqueue(&queue, "q", "{}", 3, None).await;
    let job = run(queue.claim("q").await.unwrap());

    // Rolled back: the job is still running and can be completed later.
    let mut tx = queue.store().begin().await.unwrap();
    assert!(queue.complete_in(&mut tx, &job).await.unwrap());
    tx.rollback().await.unwrap();
    assert_eq!(queue.job_info(id).await.unwrap().unwrap().state, "running");

    // Committed: gone.
    let mut tx = queue.store().begin().await.unwrap();
    assert!(queue.complete_in(&mut tx, &job).await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(queue.job_info(id).await.unwrap(), None);

    // A claim whose lease expired and was taken over cannot complete it.
    let id = enqueue(&queue, "q", "{}", 3, None).await;
    let stale = run(queue.claim("q").await.unwrap());
    lease_expires().await;
    let current = run(queue.claim("q").await.unwrap());
    let mut tx = queue.store().begin().await.unwrap();
    assert!(!queue.complete_in(&mut tx, &stale).await.unwrap());
    assert!(queue.complete_in(&mut tx, &current).await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(queue.job_info(id).await.unwrap(), None);
}

#[tokio::test]
async fn is_full_is_exact_near_the_limit() {
    let (_dir, queue) = setup(QueueConfig::default()).await;
    // Nothing waits: a limit of 0 still refuses (0 >= 0), as `--max-queued 0`.
    assert_eq!(queue.is_full("q", 0).await.unwrap(), Some(0));
    for _ in 0..3 {
        enqueue(&queue, "q", "{}", 3, None).await;
    }
    assert_eq!(queue.is_full("q", 3).await.unwrap(), Some(3));
    assert_eq!(queue.is_full("q", 4).await.unwrap(), None);
    // Far below the limit, the last count plus what this process enqueued
    // since stands in; once that estimate reaches half the limit, it counts
    // again, so the answer is exact where it matters.
    assert_eq!(queue.is_full("q", 100).await.unwrap(), None);
    for _ in 0..60 {
        enqueue(&queue, "q", "{}", 3, None).await;
    }
    assert_eq!(queue.is_full("q", 63).await.unwrap(), Some(63));
    assert_eq!(queue.is_full("q", 100).await.unwrap(), None);
    for _ in 0..37 {
        enqueue(&queue, "q", "{}", 3, None).await;
    }
    assert_eq!(queue.is_full("q", 100).await.unwrap(), Some(100));
    // Jobs of another queue do not count.
    assert_eq!(queue.is_full("other", 1).await.unwrap(), None);
}

#[tokio::test]
async fn enqueue_many_adds_every_job_in_one_go() {
    let (_dir, queue) = setup(QueueConfig::default()).await;
    let payloads: Vec<String> = (0..250).map(|i| format!("{{\"n\":{i}}}")).collect();
    let mut tx = queue.store().begin().await.unwrap();
    assert_eq!(
        queue
            .enqueue_many(&mut tx, "q", &payloads, 4)
            .await
            .unwrap(),
        250
    );
    tx.commit().await.unwrap();
    assert_eq!(queue.depth("q").await.unwrap().queued, 250);
    let mut seen = Vec::new();
    while let Some(claimed) = queue.claim("q").await.unwrap() {
        let job = run(Some(claimed));
        assert_eq!(job.max_attempts, 4);
        seen.push(job.payload.clone());
    }
    seen.sort();
    let mut expected = payloads.clone();
    expected.sort();
    assert_eq!(seen, expected);
}
