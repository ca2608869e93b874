//! `peedy serve` end to end: the real binary on an ephemeral port, talked to
//! over HTTP, delivering callbacks to a real receiver in the test process
//! (see `support/`). Covers the original's contract (DESIGN §4), several files
//! per request, bad inputs, the synchronous API, signed callbacks, a receiver
//! that is down for a while, the circuit breaker, a SIGKILL with work queued
//! and running, graceful shutdown, and regressions found on the way.
//!
//! Needs `mutool` (Debian `mupdf-tools`) to read the stamped PDFs and the
//! shared corpus (`../shared/corpus` beside the repository); either missing is
//! a loud failure.
//!
//! This target runs the same cases with `--database-url` pointing at a real
//! PostgreSQL that the harness starts (`peedy_testkit`; metadata, queue and
//! blobs in the database), one database per test.

mod fixture;
mod support;

const BACKEND: support::Backend = support::Backend::Postgres;

#[path = "cases/serve.rs"]
mod cases;
