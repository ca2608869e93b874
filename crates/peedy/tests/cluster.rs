//! Peedy as separate services on one PostgreSQL (issue 4): real `peedy
//! serve` processes with `--roles web` / `--roles worker` against a real
//! PostgreSQL that the harness starts (`peedy_testkit`; fails with the
//! install hint when PostgreSQL is not installed), a real callback receiver,
//! and faults: a worker killed with SIGKILL, the database restarted.

mod fixture;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use peedy_testkit::PgServer;
use serde_json::Value;
use support::{Deadline, Receiver, Server, assert_all_stamped_and_delivered, enc, upload_corpus};

/// Short timings: retries, lease expiry and node heartbeats within a test.
const FAST: &[&str] = &[
    "--retry-base-secs",
    "0.2",
    "--retry-max-secs",
    "1",
    "--breaker-open-secs",
    "1",
    "--heartbeat-secs",
    "0.5",
];

/// A Standard Webhooks secret, so callbacks carry `webhook-id`.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct Cluster {
    pg: PgServer,
    url: String,
    dir: tempfile::TempDir,
}

impl Cluster {
    async fn new() -> Cluster {
        let pg = PgServer::start();
        let url = pg.fresh_database().await;
        let dir = tempfile::tempdir().expect("temp dir");
        Cluster { pg, url, dir }
    }

    /// Starts a node with `roles` and `extra` flags, with a data directory
    /// of its own: blobs live in PostgreSQL, nothing is shared on disk.
    async fn node(&self, roles: &str, extra: &[&str]) -> Server {
        let mut args: Vec<&str> = vec!["--database-url", &self.url, "--roles", roles];
        args.extend_from_slice(FAST);
        args.extend_from_slice(extra);
        let dir = tempfile::tempdir_in(self.dir.path())
            .expect("node dir")
            .keep();
        Server::start(&dir, &args).await
    }
}

async fn cluster_view(web: &Server) -> Value {
    let res = web.get("/api/v1/cluster").await;
    assert_eq!(res.status, 200, "cluster view: {}", res.text());
    res.json()
}

/// The node ids in the view, by the address each listens on.
fn nodes_by_listen(view: &Value) -> BTreeMap<String, Value> {
    view["nodes"]
        .as_array()
        .expect("nodes array")
        .iter()
        .map(|n| {
            (
                n["listen"].as_str().unwrap_or_default().to_owned(),
                n.clone(),
            )
        })
        .collect()
}

/// Waits until exactly the nodes listening at `listening` are in the view.
async fn wait_for_nodes(web: &Server, listening: &[&Server]) -> Value {
    let want: BTreeSet<String> = listening.iter().map(|s| s.addr.to_string()).collect();
    let deadline = Deadline::new("the cluster view to show exactly the live nodes");
    loop {
        let view = cluster_view(web).await;
        let have: BTreeSet<String> = nodes_by_listen(&view).into_keys().collect();
        if have == want {
            return view;
        }
        deadline.tick(&view).await;
    }
}

fn stamped_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| {
            let rest = &l[l.find("Stamped ")? + "Stamped ".len()..];
            rest.split_whitespace().next().map(str::to_owned)
        })
        .collect()
}

/// One web node and two workers; a worker is killed with SIGKILL mid-load.
/// Its jobs finish on the other worker once their leases expire, every
/// document equals `peedy stamp` of its input, every callback arrives (with
/// one stable webhook-id per document), and the cluster view drops the dead
/// node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_and_two_workers_lose_nothing_when_a_worker_is_killed() {
    let cluster = Cluster::new().await;
    let receiver = Receiver::start().await;
    // Slow answers keep deliveries in flight when the kill comes.
    receiver.set_delay(Duration::from_millis(100));
    let web = cluster.node("web", &[]).await;
    let worker_args = [
        "--stamp-concurrency",
        "1",
        "--callback-concurrency",
        "2",
        "--lease-secs",
        "2",
        "--callback-secret",
        SECRET,
    ];
    let mut doomed = cluster.node("worker", &worker_args).await;
    let survivor = cluster.node("worker", &worker_args).await;
    let view = wait_for_nodes(&web, &[&web, &doomed, &survivor]).await;
    let nodes = nodes_by_listen(&view);
    assert_eq!(
        nodes[&web.addr.to_string()]["roles"],
        serde_json::json!(["web"])
    );
    assert_eq!(
        nodes[&doomed.addr.to_string()]["roles"],
        serde_json::json!(["worker"])
    );
    // A worker answers the probes on its own address, not the API.
    assert_eq!(doomed.get("/healthcheck").await.status, 200);
    assert_eq!(doomed.get("/readyz").await.status, 200);
    assert_eq!(doomed.get("/api/v1/cluster").await.status, 404);

    let wm = "Two workers, one dies";
    let query = format!(
        "watermark={}&callback_url={}",
        enc(wm),
        enc(&receiver.url())
    );
    let docs = upload_corpus(&web, &query, 40, 5).await;
    assert_eq!(docs.len(), 200);
    let deadline = Deadline::new("some callbacks before the kill");
    while receiver.delivered().len() < 20 {
        deadline.tick(receiver.delivered().len()).await;
    }
    doomed.kill();
    let delivered_at_kill = receiver.delivered().len();
    assert!(
        delivered_at_kill < docs.len(),
        "everything was delivered before the kill; nothing was tested"
    );

    // The dead node drops off the view (three missed heartbeats).
    wait_for_nodes(&web, &[&web, &survivor]).await;

    receiver.set_delay(Duration::ZERO);
    let ids: Vec<String> = docs.iter().map(|(id, _)| id.clone()).collect();
    let statuses = web
        .wait_delivered_within(&ids, Duration::from_secs(180))
        .await;
    assert_all_stamped_and_delivered(&web, &receiver, &docs, wm, &statuses).await;

    // The survivor stamped what the dead worker had not finished.
    let by_survivor = stamped_lines(&survivor.log()).len();
    let by_doomed = stamped_lines(&doomed.log()).len();
    assert!(by_doomed > 0, "the killed worker had stamped nothing");
    assert!(by_survivor + by_doomed >= docs.len());
    let view = cluster_view(&web).await;
    for q in ["stamp", "callback"] {
        let depth = &view["queues"][q];
        if !depth.is_null() {
            assert_eq!(depth["queued"], 0, "{view}");
            assert_eq!(depth["running"], 0, "{view}");
        }
    }
}

/// Two workers, both alive: every document is stamped exactly once and
/// delivered exactly once — the claim (`FOR UPDATE SKIP LOCKED`) never
/// hands one job to both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_live_workers_never_run_the_same_job() {
    let cluster = Cluster::new().await;
    let receiver = Receiver::start().await;
    let web = cluster.node("web", &[]).await;
    let args = [
        "--stamp-concurrency",
        "2",
        "--lease-secs",
        "10",
        "--callback-secret",
        SECRET,
    ];
    let a = cluster.node("worker", &args).await;
    let b = cluster.node("worker", &args).await;
    wait_for_nodes(&web, &[&web, &a, &b]).await;
    let query = format!(
        "watermark={}&callback_url={}",
        enc("Exactly once"),
        enc(&receiver.url())
    );
    let docs = upload_corpus(&web, &query, 30, 5).await;
    let ids: Vec<String> = docs.iter().map(|(id, _)| id.clone()).collect();
    web.wait_delivered_within(&ids, Duration::from_secs(120))
        .await;

    let (from_a, from_b) = (stamped_lines(&a.log()), stamped_lines(&b.log()));
    assert!(
        !from_a.is_empty() && !from_b.is_empty(),
        "both workers took work: {} / {}",
        from_a.len(),
        from_b.len()
    );
    let mut all = from_a;
    all.extend(from_b);
    all.sort();
    let unique: BTreeSet<&String> = all.iter().collect();
    assert_eq!(all.len(), unique.len(), "a document was stamped twice");
    assert_eq!(unique.len(), docs.len());
    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for r in receiver.delivered() {
        *per_id.entry(r.id.unwrap_or_default()).or_default() += 1;
    }
    assert_eq!(per_id.len(), docs.len());
    assert!(
        per_id.values().all(|n| *n == 1),
        "a callback was delivered twice: {per_id:?}"
    );
}

/// PostgreSQL restarted mid-load: while it is down the API answers 503 JSON
/// (not a hang, not a 500) and stays up; afterwards the nodes reconnect by
/// themselves and everything accepted before and after is stamped and
/// delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_restart_loses_nothing() {
    let cluster = Cluster::new().await;
    let receiver = Receiver::start().await;
    receiver.set_delay(Duration::from_millis(50));
    let web = cluster.node("web", &[]).await;
    let worker = cluster
        .node(
            "worker",
            &["--lease-secs", "3", "--callback-secret", SECRET],
        )
        .await;
    let wm = "Database restarted";
    let query = format!(
        "watermark={}&callback_url={}",
        enc(wm),
        enc(&receiver.url())
    );
    let mut docs = upload_corpus(&web, &query, 10, 5).await;

    // pg_ctl waits for the server to stop (a blocking call of a second or so).
    cluster.pg.stop();
    // While it is down: quick 503 JSON answers; the processes stay up.
    let started = Instant::now();
    let res = web
        .get(&format!("/api/v1/documents/{}/status", docs[0].0))
        .await;
    res.assert_error(503, "database_unavailable");
    assert!(res.header("retry-after").is_some());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the API hung for {:?}",
        started.elapsed()
    );
    let res = web
        .upload(
            &query,
            &[support::Part::pdf(
                "file",
                "x.pdf",
                support::tiny_pdf("down"),
            )],
        )
        .await;
    res.assert_error(503, "database_unavailable");
    assert_eq!(web.get("/readyz").await.status, 503);
    assert_eq!(web.get("/healthcheck").await.status, 200);
    assert_eq!(worker.get("/healthcheck").await.status, 200);
    tokio::time::sleep(Duration::from_secs(2)).await;

    cluster.pg.start_again();
    let more = upload_corpus(&web, &query, 10, 5).await;
    docs.extend(more);
    let ids: Vec<String> = docs.iter().map(|(id, _)| id.clone()).collect();
    let statuses = web
        .wait_delivered_within(&ids, Duration::from_secs(180))
        .await;
    assert_all_stamped_and_delivered(&web, &receiver, &docs, wm, &statuses).await;
    assert_eq!(web.get("/readyz").await.status, 200);
    // Both nodes are back in the view.
    wait_for_nodes(&web, &[&web, &worker]).await;
}
