//! The store's one error type.

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database refused or failed a query (or could not be reached).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The embedded migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Reading or writing blobs failed (or the upload being stored broke
    /// off).
    #[error("blob storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// An upload went past its size limit; nothing was stored.
    #[error("upload is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit that was exceeded, in bytes.
        limit: u64,
    },
    /// A blob with this hash is not in the blob store.
    #[error("blob {0} not found")]
    BlobNotFound(String),
    /// Not a lowercase hex SHA-256 (64 characters).
    #[error("invalid blob hash {0:?}")]
    InvalidHash(String),
    /// Not a document id as [`DocumentId::random`](crate::DocumentId::random) makes them.
    #[error("invalid document id")]
    InvalidDocumentId,
    /// Not one of "queued", "running", "done", "failed".
    #[error("invalid document status {0:?}")]
    InvalidStatus(String),
    /// Blobs were asked to live in the database, but it is SQLite.
    #[error(
        "blobs can be kept in the database only with PostgreSQL; with SQLite use the blob directory (--blob-store dir)"
    )]
    DatabaseBlobsNeedPostgres,
    /// An upload into the database stalled for so long that the orphan sweep
    /// removed what it had stored so far; nothing was stored.
    #[error("the upload stalled and its partial data was swept; nothing was stored")]
    UploadSwept,
    /// The database URL is neither `sqlite:` nor `postgres:`/`postgresql:`.
    #[error("unsupported database URL (expected sqlite://PATH or postgres://…): {0}")]
    UnsupportedUrl(String),
}

/// `Result` with the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
