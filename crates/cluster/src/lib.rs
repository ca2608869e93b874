//! Peedy's nodes — the original's `Node.list`, on the shared database
//! instead of Erlang distribution.
//!
//! Every `peedy serve` process is a node: [`Node::run`] registers it in the
//! `nodes` table (id, host, roles, version, listen address, start time) and
//! heartbeats until shutdown, then removes it. A node is alive while its last
//! heartbeat is younger than three heartbeat periods; a node that died
//! (SIGKILL, lost machine) drops off the view by itself, and the queue's
//! lease expiry hands its jobs to the others. [`view`] reads the whole
//! picture: live nodes with the jobs each holds, and the depth of every queue
//! — served at `GET /api/v1/cluster` and printed by `peedy cluster`.
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::time::Duration;

use peedy_store::{DbRow, Result, Store, now_ms, on_db};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// Missed heartbeats after which a node counts as gone.
const MISSED_BEATS: i64 = 3;
/// Rows of nodes dead for this many heartbeat periods are deleted.
const FORGET_AFTER_BEATS: i64 = 100;

/// What a node does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Serves the HTTP API: accepts uploads and queues their jobs.
    Web,
    /// Runs the stamping and callback jobs.
    Worker,
}

impl Role {
    /// "web" or "worker".
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Web => "web",
            Role::Worker => "worker",
        }
    }

    /// Parses "web" or "worker".
    pub fn parse(s: &str) -> Option<Role> {
        match s.trim() {
            "web" => Some(Role::Web),
            "worker" => Some(Role::Worker),
            _ => None,
        }
    }
}

/// This process, as it registers itself.
#[derive(Clone, Debug)]
pub struct Node {
    store: Store,
    id: String,
    host: String,
    roles: Vec<Role>,
    version: String,
    listen: Option<String>,
    started_at_ms: i64,
    heartbeat: Duration,
}

impl Node {
    /// A node on `store`'s database. Its id is `host-pid-random`: unique even
    /// when a restarted process gets the same pid.
    pub fn new(
        store: Store,
        host: &str,
        roles: &[Role],
        version: &str,
        listen: Option<String>,
        heartbeat: Duration,
    ) -> Node {
        let mut roles = roles.to_vec();
        roles.sort();
        roles.dedup();
        Node {
            store,
            id: format!(
                "{host}-{}-{:04x}",
                std::process::id(),
                rand::random::<u16>()
            ),
            host: host.to_owned(),
            roles,
            version: version.to_owned(),
            listen,
            started_at_ms: now_ms(),
            heartbeat: heartbeat.max(Duration::from_millis(100)),
        }
    }

    /// Its id (also what the queue records as `locked_by` of its jobs).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its roles.
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// Writes this node's row with `last_seen` now (insert or update: after a
    /// database restart or a forgotten row it comes back by itself), and
    /// forgets nodes that have been dead for long.
    pub async fn beat(&self) -> Result<()> {
        let now = now_ms();
        let heartbeat_ms = i64::try_from(self.heartbeat.as_millis()).unwrap_or(i64::MAX);
        let roles = self
            .roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",");
        on_db!(self.store.db(), pool => {
            sqlx::query(
                "INSERT INTO nodes (id, host, roles, version, listen, started_at, last_seen, heartbeat_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen",
            )
            .bind(&self.id)
            .bind(&self.host)
            .bind(&roles)
            .bind(&self.version)
            .bind(self.listen.as_deref())
            .bind(self.started_at_ms)
            .bind(now)
            .bind(heartbeat_ms)
            .execute(pool)
            .await?;
            sqlx::query("DELETE FROM nodes WHERE last_seen + heartbeat_ms * $1 < $2")
                .bind(FORGET_AFTER_BEATS)
                .bind(now)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Removes this node's row (on a clean shutdown: it leaves the view at
    /// once instead of after its heartbeat expires).
    pub async fn leave(&self) -> Result<()> {
        on_db!(self.store.db(), pool => {
            sqlx::query("DELETE FROM nodes WHERE id = $1")
                .bind(&self.id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Heartbeats every period until `shutdown`, then leaves. A failed beat
    /// (database down) is logged and tried again next period.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            match self.beat().await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!(node = %self.id, "node heartbeat works again");
                }
                Ok(()) => {}
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(node = %self.id, %error, "node heartbeat failed; retrying every period");
                }
                Err(_) => {}
            }
        }
        if let Err(error) = self.leave().await {
            tracing::warn!(node = %self.id, %error, "could not remove this node from the cluster view");
        }
    }
}

/// The cluster as the database sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterView {
    /// Live nodes, oldest first.
    pub nodes: Vec<NodeView>,
    /// Every queue that has jobs, by name.
    pub queues: BTreeMap<String, QueueView>,
}

/// One live node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeView {
    /// Its id (`host-pid-random`).
    pub id: String,
    /// Its host name.
    pub host: String,
    /// "web" and/or "worker".
    pub roles: Vec<String>,
    /// The Peedy version it runs.
    pub version: String,
    /// The address its HTTP server listens on.
    pub listen: Option<String>,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// Its last heartbeat (RFC 3339, UTC).
    pub last_seen: String,
    /// Milliseconds since its last heartbeat.
    pub last_seen_ms_ago: i64,
    /// The jobs it holds now.
    pub running: Vec<RunningJob>,
}

/// A job a node is running.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunningJob {
    /// The queue.
    pub queue: String,
    /// The job id.
    pub job_id: i64,
    /// The document it works for.
    pub document_id: Option<String>,
    /// Which attempt this is.
    pub attempt: i32,
    /// Milliseconds since it was claimed or last heartbeat-renewed.
    pub running_ms: i64,
}

/// One queue's depth.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct QueueView {
    /// Jobs waiting (due now, or later after a backoff).
    pub queued: i64,
    /// Jobs held by a worker.
    pub running: i64,
    /// Of those, jobs held by nodes that are gone: they run again elsewhere
    /// once their lease expires.
    pub running_on_dead_nodes: i64,
    /// Jobs that failed for good (kept until the retention sweep).
    pub failed: i64,
    /// Age of the oldest waiting job, in milliseconds.
    pub oldest_queued_ms: Option<i64>,
}

/// Reads the cluster: live nodes with their jobs, and the queues.
pub async fn view(store: &Store) -> Result<ClusterView> {
    let now = now_ms();
    let (mut nodes, jobs, depths) = on_db!(store.db(), pool => {
        let nodes = sqlx::query(
            "SELECT id, host, roles, version, listen, started_at, last_seen FROM nodes
             WHERE last_seen + heartbeat_ms * $1 >= $2 ORDER BY started_at, id",
        )
        .bind(MISSED_BEATS)
        .bind(now)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| {
            let started = row.i64("started_at")?;
            let seen = row.i64("last_seen")?;
            Ok(NodeView {
                id: row.string("id")?,
                host: row.string("host")?,
                roles: row.string("roles")?.split(',').filter(|r| !r.is_empty()).map(str::to_owned).collect(),
                version: row.string("version")?,
                listen: row.opt_string("listen")?,
                started_at: rfc3339(started),
                last_seen: rfc3339(seen),
                last_seen_ms_ago: (now - seen).max(0),
                running: Vec::new(),
            })
        })
        .collect::<sqlx::Result<Vec<NodeView>>>()?;
        let jobs = sqlx::query(
            "SELECT id, queue, locked_by, document_id, attempts, updated_at FROM jobs
             WHERE state = 'running' ORDER BY id LIMIT 10000",
        )
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| {
            Ok((
                row.opt_string("locked_by")?,
                RunningJob {
                    queue: row.string("queue")?,
                    job_id: row.i64("id")?,
                    document_id: row.opt_string("document_id")?,
                    attempt: row.i32("attempts")?,
                    running_ms: (now - row.i64("updated_at")?).max(0),
                },
            ))
        })
        .collect::<sqlx::Result<Vec<_>>>()?;
        let depths = sqlx::query(
            "SELECT queue, state, COUNT(*) AS n, MIN(created_at) AS oldest FROM jobs
             GROUP BY queue, state",
        )
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| Ok((row.string("queue")?, row.string("state")?, row.i64("n")?, row.opt_i64("oldest")?)))
        .collect::<sqlx::Result<Vec<_>>>()?;
        (nodes, jobs, depths)
    });
    let mut queues: BTreeMap<String, QueueView> = BTreeMap::new();
    for (queue, state, n, oldest) in depths {
        let q = queues.entry(queue).or_default();
        match state.as_str() {
            "queued" => {
                q.queued = n;
                q.oldest_queued_ms = oldest.map(|t| (now - t).max(0));
            }
            "running" => q.running = n,
            "failed" => q.failed = n,
            _ => {}
        }
    }
    for (locked_by, job) in jobs {
        match nodes.iter_mut().find(|n| Some(&n.id) == locked_by.as_ref()) {
            Some(node) => node.running.push(job),
            None => queues.entry(job.queue).or_default().running_on_dead_nodes += 1,
        }
    }
    Ok(ClusterView { nodes, queues })
}

/// Unix milliseconds as RFC 3339 UTC (`2026-11-29T16:05:00.123Z`).
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// How long to wait between heartbeats, for [`Node::new`] (default 5 s: a
/// dead node leaves the view after 15 s).
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_796_000_000_000), "2026-11-30T00:53:20.000Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }
}
