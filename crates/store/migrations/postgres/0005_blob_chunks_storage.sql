-- Blob chunks are PDF bytes, already compressed: PostgreSQL's attempt to
-- compress each ~1 MiB chunk (pglz) gains nothing and made the chunk INSERT
-- the most expensive statement of an upload (6–8 ms; BENCHMARKS.md, Cluster).
-- EXTERNAL keeps them out of line, uncompressed: measured ~3× faster for the
-- same size on disk.
ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
