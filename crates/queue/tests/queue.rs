//! The queue's operations (claim, leases, retries, fencing) against
//! a real SQLite database in a temp dir.
// Helpers outside #[test] fns unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

const BACKEND: common::Backend = common::Backend::Sqlite;

#[path = "cases/queue.rs"]
mod cases;
