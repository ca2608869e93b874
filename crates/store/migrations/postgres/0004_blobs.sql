-- Blobs in the database (`peedy serve --blob-store database`, the default on
-- PostgreSQL): content-addressed like the blob directory, split into chunks
-- of about 1 MiB so no blob is ever one huge value or one huge allocation.

-- One row per stored blob, named by the hex SHA-256 of its bytes.
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    -- Last time these bytes were stored (again): an upload of bytes already
    -- there refreshes it, which protects the blob from a concurrent delete,
    -- as the file's mtime does in the blob directory.
    touched_at BIGINT NOT NULL
);
CREATE INDEX blobs_touched_at ON blobs (touched_at);

-- The bytes, in order of `seq` (0, 1, …). `blob_key` is a blob's sha256, or
-- the key of an upload still streaming in (see blob_staging).
CREATE TABLE blob_chunks (
    blob_key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (blob_key, seq)
);

-- Uploads in flight: their chunks are stored under `key` while the bytes are
-- hashed, then adopted under the final sha256 in one transaction. A crash
-- leaves the row behind; the orphan sweep removes rows (and their chunks) not
-- touched for a while. Every chunk written refreshes `touched_at`.
CREATE TABLE blob_staging (
    key TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    touched_at BIGINT NOT NULL
);
CREATE INDEX blob_staging_touched_at ON blob_staging (touched_at);
