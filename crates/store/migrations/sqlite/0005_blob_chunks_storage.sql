-- Parallel to ../postgres/0005 (a PostgreSQL storage setting for blob chunks);
-- nothing to change on SQLite, which keeps blobs in the data directory.
SELECT 1;
