//! Peedy's storage: document metadata in SQL and file contents as
//! content-addressed blobs, in a directory or in PostgreSQL.
//!
//! Start with [`Store::open`]: it connects to SQLite (the default, a file under
//! the data directory, WAL journal) or PostgreSQL (by URL), runs the embedded
//! migrations and opens the blob store: the directory `data_dir/blobs` with
//! SQLite, the database with PostgreSQL (see [`Store::open_with`] to choose).
//!
//! ```no_run
//! # async fn demo() -> peedy_store::Result<()> {
//! use peedy_store::{DocumentId, NewDocument, Store, now_ms};
//!
//! let store = Store::open(None, std::path::Path::new("peedy-data")).await?;
//! let (sha, size) = store.blobs().put_bytes(b"%PDF-1.7 ...").await?;
//! let mut tx = store.begin().await?;
//! let watermark_id = store.upsert_watermark(&mut tx, r#"{"text":"DRAFT"}"#).await?;
//! let id = DocumentId::random();
//! store
//!     .insert_document(&mut tx, &NewDocument {
//!         id: id.clone(),
//!         filename: "book.pdf".into(),
//!         watermark_id,
//!         input_sha256: sha,
//!         input_size: size as i64,
//!         input_hash_state: None,
//!         callback_url: None,
//!         request_id: None,
//!         expires_at_ms: now_ms() + 86_400_000,
//!     })
//!     .await?;
//! tx.commit().await?;
//! # Ok(()) }
//! ```
//!
//! SQL portability: every statement is written once and runs on both backends
//! (see [`on_db!`] and [`on_tx!`]): `$1, $2, …` placeholders, times as
//! integer unix milliseconds, ids as text, booleans as integer 0/1.
#![deny(missing_docs)]

mod blob;
mod db;
mod documents;
mod error;
mod ids;
mod sha;

pub use blob::{BLOB_DIR, BlobBackend, BlobStore, BlobStream, DirBlobs, StoredBlob, to_hex};
pub use db::{Bind, Db, DbRow, SqliteDb, SqliteTx, Tx};
pub use documents::{DeliveryState, DocStatus, Document, Done, NewDocument};
pub use error::{Error, Result};
pub use ids::{DocumentId, WatermarkId};
pub use sha::ResumableSha256;

/// The SQLite database's file name inside the data directory (the embedded
/// default, when no database URL is given).
pub const SQLITE_FILE: &str = "peedy.db";

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Metadata database plus blob store: the one handle the service passes
/// around. Cheap to clone (pools are reference counted).
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
    blobs: BlobStore,
}

impl Store {
    /// Opens the store: `url` is `"sqlite://PATH"` or `"postgres://…"`;
    /// `None` means SQLite at `data_dir/peedy.db`. Creates `data_dir` (and the
    /// database file) if missing and runs the embedded migrations. Blobs go
    /// where [`BlobBackend::default_for`] says: the database on PostgreSQL,
    /// the blob directory `data_dir/blobs` otherwise.
    pub async fn open(url: Option<&str>, data_dir: &Path) -> Result<Store> {
        Store::open_with(url, data_dir, BlobBackend::default_for(url)).await
    }

    /// [`open`](Self::open) with the blobs in `blobs`: the directory
    /// `data_dir/blobs`, or the database, which must then be PostgreSQL
    /// ([`Error::DatabaseBlobsNeedPostgres`] otherwise, before connecting).
    pub async fn open_with(
        url: Option<&str>,
        data_dir: &Path,
        blobs: BlobBackend,
    ) -> Result<Store> {
        if blobs == BlobBackend::Database && BlobBackend::default_for(url) != BlobBackend::Database
        {
            return Err(Error::DatabaseBlobsNeedPostgres);
        }
        tokio::fs::create_dir_all(data_dir).await?;
        let db = Db::connect(url, data_dir).await?;
        db.migrate().await?;
        let blobs = match blobs {
            BlobBackend::Dir => BlobStore::open(data_dir.join(BLOB_DIR)).await?,
            BlobBackend::Database => BlobStore::database(&db)?,
        };
        Ok(Store { db, blobs })
    }

    /// Builds a store from an already opened database and blob store (tests,
    /// or a caller that configures the pools itself). Does not migrate.
    pub fn from_parts(db: Db, blobs: BlobStore) -> Store {
        Store { db, blobs }
    }

    /// The metadata database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The content-addressed blob store.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// Keeps blobs in memory between a document's steps, in at most
    /// `budget` bytes: see [`BlobStore::with_memory`].
    pub fn with_blob_memory(mut self, budget: u64) -> Store {
        self.blobs = self.blobs.with_memory(budget);
        self
    }

    /// Begins a transaction; finish it with [`Tx::commit`] (dropping it rolls
    /// back). On SQLite it is `BEGIN IMMEDIATE`: it takes the single write
    /// lock at once (waiting up to the busy timeout), so keep it short.
    pub async fn begin(&self) -> Result<Tx> {
        self.db.begin().await
    }

    /// Checks that the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        on_db!(&self.db, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }
}

/// Now as unix milliseconds: the unit of every time column.
pub fn now_ms() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}
