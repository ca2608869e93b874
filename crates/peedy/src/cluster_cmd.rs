//! `peedy cluster`: reads the cluster view from the shared database and
//! prints it — the live nodes, what each is running, the queues.

use anyhow::Context;
use peedy_cluster::ClusterView;
use peedy_store::Store;

use crate::cli::ClusterArgs;
use crate::stamp_cmd::Summary;

/// Prints the view once.
pub fn run(args: ClusterArgs) -> anyhow::Result<Summary> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    // Reading the view must not create a database (or ./peedy-data) where
    // no server ever ran.
    if args.db.database_url.is_none() {
        let file = args.db.data_dir.join(peedy_store::SQLITE_FILE);
        if !file.exists() {
            anyhow::bail!(
                "no Peedy database at {}: point --data-dir (PEEDY_DATA_DIR) at a server's data \
                 directory, or give --database-url",
                file.display()
            );
        }
    }
    let view = runtime.block_on(async {
        let store = Store::open(args.db.database_url.as_deref(), &args.db.data_dir)
            .await
            .context("opening the database")?;
        let view = peedy_cluster::view(&store)
            .await
            .context("reading the cluster view");
        store.db().close().await;
        view
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&view).context("writing JSON")?
        );
    } else {
        print!("{}", table(&view));
    }
    Ok(Summary {
        stamped: 0,
        failed: 0,
    })
}

/// The view as text for a terminal.
fn table(view: &ClusterView) -> String {
    let mut out = format!("{} node(s)\n", view.nodes.len());
    for n in &view.nodes {
        out.push_str(&format!(
            "  {}  {}  roles={}  listen={}  version={}  started={}  seen {:.1}s ago  running={}\n",
            n.id,
            n.host,
            n.roles.join(","),
            n.listen.as_deref().unwrap_or("-"),
            n.version,
            n.started_at,
            n.last_seen_ms_ago as f64 / 1000.0,
            n.running.len()
        ));
        for j in &n.running {
            out.push_str(&format!(
                "      {} job {} (document {}, attempt {}, {:.1}s)\n",
                j.queue,
                j.job_id,
                j.document_id.as_deref().unwrap_or("-"),
                j.attempt,
                j.running_ms as f64 / 1000.0
            ));
        }
    }
    out.push_str("queues\n");
    if view.queues.is_empty() {
        out.push_str("  (no jobs)\n");
    }
    for (name, q) in &view.queues {
        out.push_str(&format!(
            "  {name}: queued={} running={} (on dead nodes: {}) failed={} oldest={}\n",
            q.queued,
            q.running,
            q.running_on_dead_nodes,
            q.failed,
            q.oldest_queued_ms.map_or_else(
                || "-".to_owned(),
                |ms| format!("{:.1}s", ms as f64 / 1000.0)
            )
        ));
    }
    out
}
