//! Nodes and the cluster view against real databases: SQLite in a temp dir
//! and a PostgreSQL server started by the harness.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use peedy_cluster::{Node, Role, view};
use peedy_store::{Store, on_db};
use peedy_testkit::PgServer;

async fn nodes_register_hold_jobs_and_drop_off(store: Store) {
    let beat = Duration::from_millis(200);
    let web = Node::new(
        store.clone(),
        "host-a",
        &[Role::Web],
        "1.2.3",
        Some("127.0.0.1:4000".into()),
        beat,
    );
    let worker = Node::new(
        store.clone(),
        "host-b",
        &[Role::Worker, Role::Web, Role::Worker],
        "1.2.3",
        None,
        beat,
    );
    web.beat().await.unwrap();
    worker.beat().await.unwrap();

    // A job held by the worker, one waiting, one held by a node that is gone.
    on_db!(store.db(), pool => {
        for (state, locked_by) in [("running", Some(worker.id())), ("queued", None), ("running", Some("ghost-1-0000"))] {
            sqlx::query(
                "INSERT INTO jobs (queue, payload, document_id, state, attempts, max_attempts, run_at,
                     created_at, updated_at, locked_by)
                 VALUES ('stamp', '{}', 'doc1', $1, 1, 3, 0, 0, 0, $2)",
            )
            .bind(state)
            .bind(locked_by)
            .execute(pool)
            .await
            .unwrap();
        }
    });

    let v = view(&store).await.unwrap();
    assert_eq!(v.nodes.len(), 2, "{v:?}");
    let w = v.nodes.iter().find(|n| n.id == worker.id()).unwrap();
    assert_eq!(w.roles, ["web", "worker"]);
    assert_eq!(w.host, "host-b");
    assert_eq!(w.running.len(), 1);
    assert_eq!(w.running[0].queue, "stamp");
    assert_eq!(w.running[0].document_id.as_deref(), Some("doc1"));
    let a = v.nodes.iter().find(|n| n.id == web.id()).unwrap();
    assert_eq!(a.listen.as_deref(), Some("127.0.0.1:4000"));
    assert!(a.running.is_empty());
    let q = &v.queues["stamp"];
    assert_eq!(
        (q.queued, q.running, q.running_on_dead_nodes, q.failed),
        (1, 2, 1, 0)
    );
    assert!(q.oldest_queued_ms.unwrap() > 0);

    // The web node stops beating: gone after three periods; the worker,
    // still beating, stays.
    tokio::time::sleep(beat * 2).await;
    worker.beat().await.unwrap();
    tokio::time::sleep(beat * 2).await;
    worker.beat().await.unwrap();
    let v = view(&store).await.unwrap();
    assert_eq!(
        v.nodes.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
        [worker.id()]
    );

    // Leaving removes it at once.
    worker.leave().await.unwrap();
    assert!(view(&store).await.unwrap().nodes.is_empty());
}

#[tokio::test]
async fn on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(None, dir.path()).await.unwrap();
    nodes_register_hold_jobs_and_drop_off(store).await;
}

#[tokio::test]
async fn on_postgres() {
    let pg = PgServer::start();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(Some(&pg.url()), dir.path()).await.unwrap();
    nodes_register_hold_jobs_and_drop_off(store).await;
}
