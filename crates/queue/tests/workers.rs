//! `run_workers` (concurrency limits, panics, wake-ups, exhaustion, graceful
//! shutdown) against a real SQLite database in a temp dir.
// Helpers outside #[test] fns unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

const BACKEND: common::Backend = common::Backend::Sqlite;

#[path = "cases/workers.rs"]
mod cases;
