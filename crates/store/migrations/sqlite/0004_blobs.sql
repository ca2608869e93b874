-- Blobs in the database: the same tables as ../postgres/0004_blobs.sql, kept
-- parallel. Unused on SQLite: `--blob-store database` needs PostgreSQL, and
-- with SQLite blobs live in the blob directory.

CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    touched_at INTEGER NOT NULL
);
CREATE INDEX blobs_touched_at ON blobs (touched_at);

CREATE TABLE blob_chunks (
    blob_key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (blob_key, seq)
);

CREATE TABLE blob_staging (
    key TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    touched_at INTEGER NOT NULL
);
CREATE INDEX blob_staging_touched_at ON blob_staging (touched_at);
