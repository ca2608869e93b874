//! The database a test runs on: SQLite in a temp dir, or a fresh database on
//! a PostgreSQL server the harness starts (`peedy_testkit`).

use peedy_store::Store;
use peedy_testkit::PgServer;

/// Which backend a test target runs its cases on (each target uses one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(dead_code)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Keeps a test's database alive (temp dir, server).
pub struct TestDb {
    _dir: tempfile::TempDir,
    _pg: Option<PgServer>,
}

/// A migrated store on `backend`, its own server or file per test.
pub async fn open_store(backend: Backend) -> (TestDb, Store) {
    let dir = tempfile::tempdir().unwrap();
    let (pg, url) = match backend {
        Backend::Sqlite => (None, None),
        Backend::Postgres => {
            let pg = PgServer::start();
            let url = pg.url();
            (Some(pg), Some(url))
        }
    };
    let store = Store::open(url.as_deref(), dir.path()).await.unwrap();
    (TestDb { _dir: dir, _pg: pg }, store)
}
