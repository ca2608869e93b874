-- Peedy's metadata and job queue (SQLite).
--
-- Portable conventions shared with ../postgres: times are INTEGER unix
-- milliseconds, ids TEXT (documents) or INTEGER (watermarks, jobs), booleans
-- INTEGER 0/1. Every statement the code runs works on both backends.

-- One row per distinct watermark spec (canonical JSON made by the caller),
-- found again by the SHA-256 of that text.
CREATE TABLE watermarks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    spec_sha256 TEXT NOT NULL UNIQUE,
    spec_json TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE documents (
    id TEXT PRIMARY KEY,
    filename TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    watermark_id INTEGER NOT NULL REFERENCES watermarks (id),
    input_sha256 TEXT NOT NULL,
    input_size INTEGER NOT NULL,
    update_sha256 TEXT,
    output_sha256 TEXT,
    output_size INTEGER,
    output_is_rewrite INTEGER NOT NULL DEFAULT 0,
    pages INTEGER,
    stamped_pages INTEGER,
    error_code TEXT,
    error_detail TEXT,
    callback_url TEXT,
    request_id TEXT,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    stamp_ms INTEGER,
    expires_at INTEGER NOT NULL
);
CREATE INDEX documents_expires_at ON documents (expires_at);
CREATE INDEX documents_status ON documents (status);
-- Blob reference checks when a document is deleted.
CREATE INDEX documents_input_sha256 ON documents (input_sha256);
CREATE INDEX documents_update_sha256 ON documents (update_sha256);
CREATE INDEX documents_output_sha256 ON documents (output_sha256);

-- Callback delivery state of a document (at most one row per document).
CREATE TABLE deliveries (
    document_id TEXT PRIMARY KEY REFERENCES documents (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    webhook_id TEXT NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    next_attempt_at INTEGER,
    delivered_at INTEGER,
    updated_at INTEGER NOT NULL
);

-- The durable job queue (crate peedy-queue). A finished job is deleted; a
-- failed one stays (with last_error) until its document is deleted.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    payload TEXT NOT NULL,
    -- The document the job works for, if any: deleted with it.
    document_id TEXT,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'failed')),
    -- Claims so far, including the running one.
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    -- Not claimable before this time: backoff lives here.
    run_at INTEGER NOT NULL,
    -- The lease: who runs it, which claim (fencing token), until when.
    locked_by TEXT,
    lock_token INTEGER,
    locked_until INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX jobs_due ON jobs (queue, state, run_at, id);
CREATE INDEX jobs_lease ON jobs (queue, state, locked_until);
CREATE INDEX jobs_document_id ON jobs (document_id);
