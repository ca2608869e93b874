//! The database handle: one enum over the SQLite and PostgreSQL pools, and
//! the macros that run one SQL text on either.
//!
//! Queries are runtime-checked (`sqlx::query` + `.bind`), written once in the
//! dialect both backends accept, and run with [`on_db!`] (on the pool) or
//! [`on_tx!`] (inside a [`Tx`]); rows are read through [`DbRow`], which has the
//! same methods for both row types.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{PgPool, Postgres, Row, Sqlite, SqlitePool};

use crate::{Error, Result};

/// SQLite allows one writer at a time; a few connections serve the readers
/// (status polls, downloads) while writes stay short.
const SQLITE_MAX_CONNECTIONS: u32 = 8;
const PG_MAX_CONNECTIONS: u32 = 16;
/// How long a PostgreSQL statement waits for a connection (or for the server
/// to come back) before failing.
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a SQLite statement waits for the write lock before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A connection pool to one of the supported databases.
#[derive(Clone, Debug)]
pub enum Db {
    /// The embedded default: a SQLite file in WAL mode.
    Sqlite(SqlitePool),
    /// A shared PostgreSQL server (cluster mode).
    Postgres(PgPool),
}

/// An open transaction on either backend; dropping it rolls back.
#[derive(Debug)]
pub enum Tx {
    /// A SQLite transaction (begun with `BEGIN IMMEDIATE`).
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    /// A PostgreSQL transaction.
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Tx {
    /// Commits the transaction.
    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    /// Rolls the transaction back (dropping it does the same, later).
    pub async fn rollback(self) -> Result<()> {
        match self {
            Tx::Sqlite(tx) => tx.rollback().await?,
            Tx::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }
}

/// Runs `$body` against the pool of whichever backend `$db` (a `&Db`) is,
/// with `$pool` bound to `&SqlitePool` or `&PgPool`. The body is expanded once
/// per backend, so the same SQL text and binds are type-checked for both.
///
/// ```no_run
/// # async fn demo(store: &peedy_store::Store, queue: &str) -> peedy_store::Result<i64> {
/// use peedy_store::{DbRow, on_db};
///
/// let n = on_db!(store.db(), pool => {
///     sqlx::query("SELECT COUNT(*) AS n FROM jobs WHERE queue = $1")
///         .bind(queue)
///         .fetch_one(pool)
///         .await?
///         .i64("n")?
/// });
/// # Ok(n) }
/// ```
#[macro_export]
macro_rules! on_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::Db::Sqlite($pool) => $body,
            $crate::Db::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` inside the transaction `$tx` (a `&mut Tx`), with `$conn`
/// bound to the backend's `&mut Connection`; reborrow it (`&mut *conn`) to run
/// several statements. Like [`on_db!`], the body is expanded per backend.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            $crate::Tx::Sqlite(tx) => {
                let $conn = &mut **tx;
                $body
            }
            $crate::Tx::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}

/// Typed column getters with the same names on SQLite and PostgreSQL rows,
/// so row decoding is written once. PostgreSQL decodes strictly: read
/// `BIGINT` columns with [`i64`](DbRow::i64) and `INTEGER` ones with
/// [`i32`](DbRow::i32).
pub trait DbRow {
    /// A non-null `BIGINT` (`INTEGER` on SQLite).
    fn i64(&self, column: &str) -> sqlx::Result<i64>;
    /// A nullable `BIGINT`.
    fn opt_i64(&self, column: &str) -> sqlx::Result<Option<i64>>;
    /// A non-null `INTEGER` (4 bytes on PostgreSQL).
    fn i32(&self, column: &str) -> sqlx::Result<i32>;
    /// A non-null `TEXT`.
    fn string(&self, column: &str) -> sqlx::Result<String>;
    /// A nullable `TEXT`.
    fn opt_string(&self, column: &str) -> sqlx::Result<Option<String>>;
}

macro_rules! impl_db_row {
    ($row:ty) => {
        impl DbRow for $row {
            fn i64(&self, column: &str) -> sqlx::Result<i64> {
                self.try_get(column)
            }
            fn opt_i64(&self, column: &str) -> sqlx::Result<Option<i64>> {
                self.try_get(column)
            }
            fn i32(&self, column: &str) -> sqlx::Result<i32> {
                self.try_get(column)
            }
            fn string(&self, column: &str) -> sqlx::Result<String> {
                self.try_get(column)
            }
            fn opt_string(&self, column: &str) -> sqlx::Result<Option<String>> {
                self.try_get(column)
            }
        }
    };
}
impl_db_row!(SqliteRow);
impl_db_row!(PgRow);

impl Db {
    /// Connects without migrating: `url` as in [`Store::open`](crate::Store::open).
    pub async fn connect(url: Option<&str>, data_dir: &Path) -> Result<Db> {
        match url {
            None => {
                Self::connect_sqlite(
                    SqliteConnectOptions::new().filename(data_dir.join("peedy.db")),
                )
                .await
            }
            Some(url) if url.starts_with("sqlite:") => {
                Self::connect_sqlite(SqliteConnectOptions::from_str(url)?).await
            }
            Some(url) if url.starts_with("postgres:") || url.starts_with("postgresql:") => {
                let pool = PgPoolOptions::new()
                    .max_connections(PG_MAX_CONNECTIONS)
                    // While the server is down (a restart), requests fail
                    // fast with 503 instead of hanging for sqlx's default 30 s.
                    .acquire_timeout(PG_ACQUIRE_TIMEOUT)
                    .connect(url)
                    .await?;
                Ok(Db::Postgres(pool))
            }
            Some(url) => Err(Error::UnsupportedUrl(redact(url))),
        }
    }

    async fn connect_sqlite(options: SqliteConnectOptions) -> Result<Db> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL, not OFF: in WAL mode a crash cannot corrupt the database
            // and loses at most the last commits on power failure.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(SQLITE_MAX_CONNECTIONS)
            .connect_with(options)
            .await?;
        Ok(Db::Sqlite(pool))
    }

    /// Applies the embedded migrations of this backend (idempotent; on
    /// PostgreSQL several nodes starting at once serialize on an advisory lock).
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Db::Sqlite(pool) => SQLITE_MIGRATOR.run(pool).await?,
            Db::Postgres(pool) => PG_MIGRATOR.run(pool).await?,
        }
        Ok(())
    }

    /// Begins a transaction (`BEGIN IMMEDIATE` on SQLite, so a transaction
    /// that reads before it writes cannot fail on a stale snapshot).
    pub async fn begin(&self) -> Result<Tx> {
        Ok(match self {
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// True for PostgreSQL (for the few statements that differ, such as
    /// `FOR UPDATE SKIP LOCKED` and `pg_notify`).
    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        match self {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

/// The URL without its password, for an error message.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://…@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_credentials() {
        assert_eq!(redact("mysql://u:secret@h/db"), "mysql://…@h/db");
        assert_eq!(redact("mysql://h/db"), "mysql://h/db");
    }
}
