//! The database handle: one enum over the SQLite and PostgreSQL pools, and
//! the macros that run one SQL text on either.
//!
//! Queries are runtime-checked (`sqlx::query` + `.bind`), written once in the
//! dialect both backends accept, and run with [`on_db!`] (on the pool) or
//! [`on_tx!`] (inside a [`Tx`]); rows are read through [`DbRow`], which has the
//! same methods for both row types.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt as _, TryStreamExt as _};
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqliteQueryResult, SqliteRow, SqliteStatement,
    SqliteSynchronous, SqliteTypeInfo,
};
use sqlx::{
    ConnectOptions as _, Connection as _, Either, Execute, Executor, PgPool, Postgres, Row, Sqlite,
    SqliteConnection,
};
use tokio::sync::{Mutex, MutexGuard, OwnedMutexGuard};

use crate::{Error, Result};

const PG_MAX_CONNECTIONS: u32 = 16;
/// How long a PostgreSQL statement waits for a connection (or for the server
/// to come back) before failing.
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a SQLite statement waits for the write lock before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A handle to one of the supported databases.
#[derive(Clone, Debug)]
pub enum Db {
    /// The embedded default: a SQLite file in WAL mode.
    Sqlite(SqliteDb),
    /// A shared PostgreSQL server (cluster mode).
    Postgres(PgPool),
}

/// The embedded default's database: **one** SQLite connection, shared by
/// every task of the process and taken in turn.
///
/// Why not sqlx's `SqlitePool`: SQLite runs one writer at a time anyway, and
/// each sqlx SQLite connection lives on its own thread, so every statement
/// is a hand-off to that thread and back. The pool adds two more round trips
/// per statement (a ping when a connection is taken, another when it is
/// returned, plus a spawned task) — measured on the service benchmark, that
/// was a third of the server's context switches per document. Statements
/// here take microseconds, so taking turns on one connection costs less than
/// the hand-offs did; a transaction holds the connection until it ends.
#[derive(Clone, Debug)]
pub struct SqliteDb(Arc<Mutex<SqliteSlot>>);

#[derive(Debug)]
struct SqliteSlot {
    /// `None` once [`Db::close`] ran.
    conn: Option<SqliteConnection>,
    /// A [`Tx`] was dropped without commit or rollback: its `ROLLBACK` is
    /// owed before the connection's next use.
    owes_rollback: bool,
}

impl SqliteSlot {
    /// The connection, after settling a dropped transaction.
    async fn ready(&mut self) -> std::result::Result<&mut SqliteConnection, sqlx::Error> {
        let conn = self.conn.as_mut().ok_or(sqlx::Error::PoolClosed)?;
        if self.owes_rollback {
            self.owes_rollback = false;
            // It fails only when no transaction is open any more (its COMMIT
            // went through after all, or SQLite already rolled back after an
            // error): nothing is owed then, and the connection is usable.
            let _ = conn.execute("ROLLBACK").await;
        }
        Ok(conn)
    }
}

impl SqliteDb {
    fn new(conn: SqliteConnection) -> SqliteDb {
        SqliteDb(Arc::new(Mutex::new(SqliteSlot {
            conn: Some(conn),
            owes_rollback: false,
        })))
    }

    async fn slot(&self) -> MutexGuard<'_, SqliteSlot> {
        self.0.lock().await
    }
}

/// Runs each statement on the shared connection, waiting for its turn; a
/// statement's rows are gathered before the connection is handed on.
impl<'c> Executor<'c> for &'c SqliteDb {
    type Database = Sqlite;

    fn execute<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, std::result::Result<SqliteQueryResult, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        Box::pin(async move { self.slot().await.ready().await?.execute(query).await })
    }

    fn fetch_all<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, std::result::Result<Vec<SqliteRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        Box::pin(async move { self.slot().await.ready().await?.fetch_all(query).await })
    }

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, std::result::Result<Either<SqliteQueryResult, SqliteRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        futures_util::stream::once(async move {
            let mut slot = self.slot().await;
            let steps: Vec<_> = slot.ready().await?.fetch_many(query).try_collect().await?;
            Ok::<_, sqlx::Error>(futures_util::stream::iter(steps.into_iter().map(Ok)))
        })
        .try_flatten()
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, std::result::Result<Option<SqliteRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        Box::pin(async move { self.slot().await.ready().await?.fetch_optional(query).await })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [SqliteTypeInfo],
    ) -> BoxFuture<'e, std::result::Result<SqliteStatement<'q>, sqlx::Error>>
    where
        'c: 'e,
    {
        Box::pin(async move {
            self.slot()
                .await
                .ready()
                .await?
                .prepare_with(sql, parameters)
                .await
        })
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> BoxFuture<'e, std::result::Result<sqlx::Describe<Sqlite>, sqlx::Error>>
    where
        'c: 'e,
    {
        Box::pin(async move { self.slot().await.ready().await?.describe(sql).await })
    }
}

/// A transaction on the shared SQLite connection: holds the connection from
/// `BEGIN IMMEDIATE` to `COMMIT`/`ROLLBACK`. Dropped while open, it leaves
/// its `ROLLBACK` owed, paid before the connection's next statement.
#[derive(Debug)]
pub struct SqliteTx {
    slot: OwnedMutexGuard<SqliteSlot>,
    open: bool,
    /// Statements [deferred](Tx::defer) to the commit, their placeholders
    /// made positional (`?`) with the values in `deferred_binds`.
    deferred_sql: String,
    deferred_binds: Vec<Bind>,
}

impl SqliteTx {
    /// The connection, to run the transaction's statements on (used by
    /// [`on_tx!`]).
    pub fn conn(&mut self) -> &mut SqliteConnection {
        // `begin` checked it is there, and nothing takes it while we hold
        // the lock.
        self.slot
            .conn
            .as_mut()
            .expect("a SQLite transaction holds an open connection")
    }

    /// `COMMIT` (with the deferred statements) or `ROLLBACK` (dropping them).
    async fn end(mut self, commit: bool) -> Result<()> {
        if commit && !self.deferred_sql.is_empty() {
            // The deferred statements and the COMMIT: one round trip. If a
            // statement fails, SQLite stops there and the transaction stays
            // open; dropping `self` owes its ROLLBACK.
            let mut batch = std::mem::take(&mut self.deferred_sql);
            batch.push_str("COMMIT");
            let args: sqlx::sqlite::SqliteArguments =
                Bind::arguments(std::mem::take(&mut self.deferred_binds))?;
            sqlx::query_with(&batch, args).execute(self.conn()).await?;
        } else {
            self.conn()
                .execute(if commit { "COMMIT" } else { "ROLLBACK" })
                .await?;
        }
        self.open = false;
        Ok(())
    }

    fn defer(&mut self, sql: &str, binds: Vec<Bind>) {
        positional_placeholders(
            sql,
            &binds,
            &mut self.deferred_sql,
            &mut self.deferred_binds,
        );
        self.deferred_sql.push_str(";\n");
    }
}

/// Appends `sql` to `out` with each `$N` placeholder written as a plain `?`
/// and `binds[N - 1]` appended to `values` in the same order, so statements
/// with their own `$1…` can share one argument list: sqlx binds plain `?`
/// in order across the statements of one query. (Numbered `?N` would not
/// do: sqlx counts the unused numbers below N as positional parameters and
/// stops binding past the end of the list.) A `$` not followed by a valid
/// number is kept as it is; our SQL has no `$` inside string literals.
fn positional_placeholders(sql: &str, binds: &[Bind], out: &mut String, values: &mut Vec<Bind>) {
    rewrite_placeholders(sql, out, |n, out| {
        let bind = binds.get(n.checked_sub(1)?)?;
        out.push('?');
        values.push(bind.clone());
        Some(())
    });
}

/// Copies `sql` to `out`, letting `placeholder` write each `$N` (given N);
/// where it declines (`None`), or no number follows, the `$` is kept as it
/// is.
fn rewrite_placeholders(
    sql: &str,
    out: &mut String,
    mut placeholder: impl FnMut(usize, &mut String) -> Option<()>,
) {
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let digits = rest[at + 1..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len() - at - 1);
        let written = rest[at + 1..at + 1 + digits]
            .parse::<usize>()
            .ok()
            .and_then(|n| placeholder(n, out));
        match written {
            Some(()) => rest = &rest[at + 1 + digits..],
            None => {
                out.push('$');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
}

/// A value for a placeholder of a statement built at run time
/// ([`Tx::defer`], [`Db::execute`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Bind {
    /// A `BIGINT`.
    I64(i64),
    /// A nullable `BIGINT`.
    OptI64(Option<i64>),
    /// An `INTEGER` (4 bytes on PostgreSQL).
    I32(i32),
    /// A `TEXT`.
    Text(String),
    /// A nullable `TEXT`.
    OptText(Option<String>),
}

impl Bind {
    /// One row of a multi-row `VALUES` list: `row_sql` numbers its
    /// placeholders from `$1` for `values`; they are renumbered to follow
    /// the `binds` already gathered for the statement, and `values` are
    /// appended to them.
    pub fn push_row(
        binds: &mut Vec<Bind>,
        row_sql: &str,
        values: impl IntoIterator<Item = Bind>,
    ) -> String {
        let offset = binds.len();
        binds.extend(values);
        let mut out = String::with_capacity(row_sql.len() + 16);
        rewrite_placeholders(row_sql, &mut out, |n, out| {
            out.push_str(&format!("${}", n + offset));
            Some(())
        });
        out
    }

    /// The argument list of a query with these values, in order.
    fn arguments<'q, A>(binds: Vec<Bind>) -> std::result::Result<A, sqlx::Error>
    where
        A: sqlx::Arguments<'q> + Default,
        i64: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
        Option<i64>: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
        i32: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
        String: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
        Option<String>: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
    {
        let mut args = A::default();
        for bind in binds {
            bind.add_to(&mut args)?;
        }
        Ok(args)
    }

    fn add_to<'q, A>(self, args: &mut A) -> std::result::Result<(), sqlx::Error>
    where
        A: sqlx::Arguments<'q>,
        i64: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
        Option<i64>: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
        i32: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
        String: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
        Option<String>: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
    {
        match self {
            Bind::I64(v) => args.add(v),
            Bind::OptI64(v) => args.add(v),
            Bind::I32(v) => args.add(v),
            Bind::Text(v) => args.add(v),
            Bind::OptText(v) => args.add(v),
        }
        .map_err(sqlx::Error::Encode)
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if self.open {
            self.slot.owes_rollback = true;
        }
    }
}

/// An open transaction on either backend; dropping it rolls back.
#[derive(Debug)]
pub enum Tx {
    /// A SQLite transaction (begun with `BEGIN IMMEDIATE`).
    Sqlite(SqliteTx),
    /// A PostgreSQL transaction.
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Tx {
    /// Runs a write whose result the caller does not need, as part of this
    /// transaction: `sql` with `$1…` placeholders for `binds`. On SQLite it
    /// is held back and sent with the `COMMIT`, together with every other
    /// deferred statement, in one round trip to the connection's thread
    /// (each round trip costs far more than the statement); PostgreSQL runs
    /// it at once. So on SQLite it runs after the statements the
    /// transaction runs directly, and its error, if any, comes from
    /// [`commit`](Self::commit).
    pub async fn defer(&mut self, sql: &str, binds: Vec<Bind>) -> Result<()> {
        match self {
            Tx::Sqlite(tx) => tx.defer(sql, binds),
            Tx::Postgres(tx) => {
                let args: sqlx::postgres::PgArguments = Bind::arguments(binds)?;
                sqlx::query_with(sql, args).execute(&mut **tx).await?;
            }
        }
        Ok(())
    }

    /// Commits the transaction.
    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(tx) => tx.end(true).await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    /// Rolls the transaction back (dropping it does the same, later).
    pub async fn rollback(self) -> Result<()> {
        match self {
            Tx::Sqlite(tx) => tx.end(false).await?,
            Tx::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }
}

/// Runs `$body` against whichever backend `$db` (a `&Db`) is, with `$pool`
/// bound to `&SqliteDb` or `&PgPool` (both sqlx executors). The body is expanded once
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
                let $conn = tx.conn();
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
                    SqliteConnectOptions::new().filename(data_dir.join(crate::SQLITE_FILE)),
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
        let conn = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL, not OFF: in WAL mode a crash cannot corrupt the database
            // and loses at most the last commits on power failure.
            .synchronous(SqliteSynchronous::Normal)
            // Other processes (`peedy cluster`, a second server by mistake)
            // may hold the write lock for a moment.
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true)
            .connect()
            .await?;
        Ok(Db::Sqlite(SqliteDb::new(conn)))
    }

    /// Applies the embedded migrations of this backend (idempotent; on
    /// PostgreSQL several nodes starting at once serialize on an advisory lock).
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Db::Sqlite(db) => SQLITE_MIGRATOR.run(db.slot().await.ready().await?).await?,
            Db::Postgres(pool) => PG_MIGRATOR.run(pool).await?,
        }
        Ok(())
    }

    /// Begins a transaction (`BEGIN IMMEDIATE` on SQLite, so a transaction
    /// that reads before it writes cannot fail on a stale snapshot).
    pub async fn begin(&self) -> Result<Tx> {
        Ok(match self {
            Db::Sqlite(db) => {
                let mut slot = Arc::clone(&db.0).lock_owned().await;
                slot.ready().await?.execute("BEGIN IMMEDIATE").await?;
                Tx::Sqlite(SqliteTx {
                    slot,
                    open: true,
                    deferred_sql: String::new(),
                    deferred_binds: Vec::new(),
                })
            }
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// Runs one statement outside any transaction: `sql` with `$1…`
    /// placeholders for `binds` (see [`Bind`]); returns the rows it changed.
    pub async fn execute(&self, sql: &str, binds: Vec<Bind>) -> Result<u64> {
        let changed = match self {
            Db::Sqlite(db) => {
                let args: sqlx::sqlite::SqliteArguments = Bind::arguments(binds)?;
                sqlx::query_with(sql, args)
                    .execute(db)
                    .await?
                    .rows_affected()
            }
            Db::Postgres(pool) => {
                let args: sqlx::postgres::PgArguments = Bind::arguments(binds)?;
                sqlx::query_with(sql, args)
                    .execute(pool)
                    .await?
                    .rows_affected()
            }
        };
        Ok(changed)
    }

    /// True for PostgreSQL (for the few statements that differ, such as
    /// `FOR UPDATE SKIP LOCKED` and `pg_notify`).
    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }

    /// Closes the pool, waiting for connections in use to be returned;
    /// later statements fail with `PoolClosed`.
    pub async fn close(&self) {
        match self {
            Db::Sqlite(db) => {
                let conn = db.slot().await.conn.take();
                if let Some(conn) = conn {
                    let _ = conn.close().await;
                }
            }
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
    use super::{Bind, positional_placeholders, redact};

    #[test]
    fn rows_number_their_placeholders_after_the_binds_so_far() {
        let mut binds = vec![Bind::I64(0)];
        let row = Bind::push_row(
            &mut binds,
            "($1, 'x', $2, $2)",
            [Bind::I64(1), Bind::I64(2)],
        );
        assert_eq!(row, "($2, 'x', $3, $3)");
        assert_eq!(binds, [Bind::I64(0), Bind::I64(1), Bind::I64(2)]);
    }

    #[test]
    fn placeholders_become_positional_with_their_values_in_order() {
        let mut out = String::new();
        let mut values = vec![Bind::I64(0)];
        positional_placeholders(
            "UPDATE t SET a = $2, b = $1, c = $2 WHERE x = $ AND y = $9",
            &[Bind::I64(1), Bind::Text("two".into())],
            &mut out,
            &mut values,
        );
        assert_eq!(
            out,
            "UPDATE t SET a = ?, b = ?, c = ? WHERE x = $ AND y = $9"
        );
        assert_eq!(
            values,
            [
                Bind::I64(0),
                Bind::Text("two".into()),
                Bind::I64(1),
                Bind::Text("two".into()),
            ]
        );
    }

    #[test]
    fn redact_hides_credentials() {
        assert_eq!(redact("mysql://u:secret@h/db"), "mysql://…@h/db");
        assert_eq!(redact("mysql://h/db"), "mysql://h/db");
    }
}
