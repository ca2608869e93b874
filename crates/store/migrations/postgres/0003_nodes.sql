-- The processes of a Peedy cluster (peedy-cluster): each registers itself
-- and heartbeats; a node is alive while last_seen + 3 * heartbeat_ms is in the
-- future. What a node is running is read from the jobs it holds (jobs.locked_by).
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    -- Comma-separated: "web", "worker" or "web,worker".
    roles TEXT NOT NULL,
    version TEXT NOT NULL,
    -- The address its HTTP server listens on.
    listen TEXT,
    started_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    heartbeat_ms BIGINT NOT NULL
);
CREATE INDEX nodes_last_seen ON nodes (last_seen);
