//! The queue's one error type.

/// What can go wrong in the queue: the database, in the end.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A store operation failed (connecting, transactions).
    #[error(transparent)]
    Store(#[from] peedy_store::Error),
    /// A queue statement failed.
    #[error("job queue database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// `Result` with the queue's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
