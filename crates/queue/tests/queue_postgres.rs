//! The queue's operations (claim, leases, retries, fencing) against
//! a real PostgreSQL server started by the harness (initdb + pg_ctl; fails with the install hint without the binaries).
// Helpers outside #[test] fns unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

const BACKEND: common::Backend = common::Backend::Postgres;

#[path = "cases/queue.rs"]
mod cases;
