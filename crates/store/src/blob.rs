//! Content-addressed blobs: bytes named by their SHA-256, in one of two
//! backends.
//!
//! - The blob directory ([`BlobStore::open`]): `blobs/ab/cdef…` holds the
//!   bytes whose hex SHA-256 is `abcdef…`; uploads stream into `blobs/tmp/`
//!   while they are hashed, are flushed to disk, and are then renamed into
//!   place, so a blob file is always complete.
//! - PostgreSQL ([`BlobStore::database`]): the bytes in chunks of about
//!   1 MiB in `blob_chunks`, one row per blob in `blobs`; uploads stream into
//!   chunks under a staging key while they are hashed and are adopted under
//!   their SHA-256 in one transaction (see `blob/pg.rs`).
//!
//! Both behave the same: the same bytes stored twice are one blob, storing
//! them again refreshes the blob's "touched" time (which protects it from a
//! concurrent delete, see [`Store::delete_document`](crate::Store::delete_document)),
//! an upload over its limit leaves nothing, and readers stream a blob in
//! pieces of about 1 MiB without holding it whole.

mod hot;
mod pg;

use std::fmt;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{Stream, TryStreamExt as _};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::{Db, Error, Result, ResumableSha256};
use hot::{Hot, Reservation};

/// Name of the blob directory inside the data directory.
pub const BLOB_DIR: &str = "blobs";
const TMP_DIR: &str = "tmp";
const TMP_SUFFIX: &str = ".part";
/// Read size while streaming an upload in.
const CHUNK: usize = 64 * 1024;
/// Bytes gathered before one blocking write (directory) or stored as one
/// chunk (database).
const BATCH: usize = 1 << 20;
/// Read size when streaming a blob file out. Each read of a
/// `tokio::fs::File` is a trip to the blocking pool and back; 1 MiB keeps
/// those trips a small share of the work.
const READ_CHUNK: usize = 1 << 20;

/// Runs file work on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => Ok(r?),
        Err(e) => Err(Error::Io(std::io::Error::other(e))),
    }
}

/// A blob just stored by [`BlobStore::put_reader_resumable`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBlob {
    /// Hex SHA-256 of the bytes (the blob's name).
    pub sha256: String,
    /// Their length.
    pub size: u64,
    /// [`ResumableSha256::state`] after the bytes.
    pub hash_state: String,
}

/// Where blobs are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlobBackend {
    /// The blob directory under the data directory.
    Dir,
    /// The database (PostgreSQL only).
    Database,
}

impl BlobBackend {
    /// The default for a database URL (as given to
    /// [`Store::open`](crate::Store::open)): the database on PostgreSQL, the
    /// directory otherwise.
    pub fn default_for(url: Option<&str>) -> BlobBackend {
        match url {
            Some(url) if url.starts_with("postgres:") || url.starts_with("postgresql:") => {
                BlobBackend::Database
            }
            _ => BlobBackend::Dir,
        }
    }

    /// `"dir"` or `"database"`.
    pub fn as_str(self) -> &'static str {
        match self {
            BlobBackend::Dir => "dir",
            BlobBackend::Database => "database",
        }
    }
}

impl fmt::Display for BlobBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The content-addressed blob store. Cheap to clone; clones share the
/// blobs kept in memory (see [`with_memory`](Self::with_memory)).
#[derive(Clone, Debug)]
pub struct BlobStore {
    backend: Backend,
    hot: Arc<Hot>,
}

#[derive(Clone, Debug)]
enum Backend {
    Dir(Arc<PathBuf>),
    Database(pg::PgBlobs),
}

/// A blob's bytes as a stream of pieces of about 1 MiB, with its size known
/// up front (for a `Content-Length`). From [`BlobStore::stream`].
pub struct BlobStream {
    size: u64,
    inner: Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>,
}

impl BlobStream {
    /// The blob's length in bytes: what the stream yields in all.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl fmt::Debug for BlobStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobStream")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Stream for BlobStream {
    type Item = std::io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().inner.as_mut().poll_next(cx)
    }
}

/// Lowercase hex of `bytes` (how blob hashes are written).
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `Ok(())` for a blob name (64 lowercase hex digits), so no name can escape
/// the blob directory or address a staging key.
fn check_sha(sha256: &str) -> Result<()> {
    if is_sha256_hex(sha256) {
        Ok(())
    } else {
        Err(Error::InvalidHash(sha256.chars().take(80).collect()))
    }
}

fn system_time_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Where an upload's full batches go while it streams in.
trait BatchSink {
    /// Stores the next batch of bytes (about [`BATCH`] long).
    async fn write(&mut self, batch: Vec<u8>) -> Result<()>;
}

/// An upload read to its end: the last, partial batch (not yet written; all
/// of the bytes when the upload was gathered in memory) and what the bytes
/// hash to.
struct ReadUpload {
    rest: Vec<u8>,
    sha256: String,
    size: u64,
    hash_state: String,
}

/// Reads `reader` to its end, hashing it and handing every full batch of
/// about [`BATCH`] bytes to `sink`; fails with [`Error::TooLarge`] as soon as
/// more than `limit` bytes arrived. At most one batch is held in memory —
/// unless `keep` lets the upload be gathered whole (then nothing goes to
/// `sink` until it says no).
async fn read_upload(
    mut reader: impl AsyncRead + Unpin,
    limit: u64,
    sink: &mut impl BatchSink,
    keep: &mut Reservation,
) -> Result<ReadUpload> {
    let mut hasher = ResumableSha256::new();
    let mut size: u64 = 0;
    // Bytes are gathered into large batches, each written by one trip to
    // the blocking pool (or one query): a trip per network chunk made
    // context switches the largest cost of an upload. Network chunks are
    // read straight into the batch (no copy through a small buffer) and
    // hashed there.
    let mut batch: Vec<u8> = Vec::with_capacity(BATCH + CHUNK);
    loop {
        if batch.len() >= BATCH && batch.capacity() - batch.len() < CHUNK {
            // A full batch: gathered on in memory (the buffer doubles, up to
            // the largest blob kept, and its whole capacity counts against
            // the budget), or handed on.
            let grown = batch
                .capacity()
                .saturating_mul(2)
                .min(keep.max_capacity())
                .max(batch.len() + CHUNK);
            if keep.may_keep(grown as u64) {
                batch.reserve_exact(grown - batch.len());
            } else {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH + CHUNK));
                sink.write(full).await?;
            }
        }
        let before = batch.len();
        let n = (&mut reader)
            .take(CHUNK as u64)
            .read_buf(&mut batch)
            .await?;
        if n == 0 {
            break;
        }
        size += n as u64;
        if size > limit {
            return Err(Error::TooLarge { limit });
        }
        hasher.update(&batch[before..]);
    }
    let hash_state = hasher.state();
    Ok(ReadUpload {
        rest: batch,
        sha256: to_hex(&hasher.finalize()),
        size,
        hash_state,
    })
}

/// Removes a temporary file when dropped, unless disarmed: an upload that
/// fails, goes over its limit or is cancelled (client gone) leaves nothing.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The temporary file an upload streams into (directory backend), created
/// with the first full batch: an upload that fits in one batch is written
/// (or found already stored) in a single trip to the blocking pool.
struct FileSink {
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl BatchSink for FileSink {
    async fn write(&mut self, batch: Vec<u8>) -> Result<()> {
        let file = self.file.take();
        let path = self.path.clone();
        let file = blocking(move || {
            use std::io::Write as _;
            let mut file = match file {
                Some(file) => file,
                None => create_temp(&path)?,
            };
            file.write_all(&batch)?;
            Ok(file)
        })
        .await?;
        self.file = Some(file);
        Ok(())
    }
}

fn create_temp(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

impl BlobStore {
    /// Opens (creating if needed) the blob directory at `root`.
    pub async fn open(root: impl Into<PathBuf>) -> Result<BlobStore> {
        let root = root.into();
        tokio::fs::create_dir_all(root.join(TMP_DIR)).await?;
        Ok(BlobStore {
            backend: Backend::Dir(Arc::new(root)),
            hot: Arc::default(),
        })
    }

    /// Blobs in the database `db`, which must be PostgreSQL and migrated
    /// (tables `blobs`, `blob_chunks`, `blob_staging`); SQLite is refused
    /// with [`Error::DatabaseBlobsNeedPostgres`].
    pub fn database(db: &Db) -> Result<BlobStore> {
        match db {
            Db::Postgres(pool) => Ok(BlobStore {
                backend: Backend::Database(pg::PgBlobs::new(pool.clone())),
                hot: Arc::default(),
            }),
            Db::Sqlite(_) => Err(Error::DatabaseBlobsNeedPostgres),
        }
    }

    /// Which backend this is.
    pub fn backend(&self) -> BlobBackend {
        match &self.backend {
            Backend::Dir(_) => BlobBackend::Dir,
            Backend::Database(_) => BlobBackend::Database,
        }
    }

    /// The blob directory, for the directory backend.
    pub fn root(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Dir(root) => Some(root),
            Backend::Database(_) => None,
        }
    }

    /// Streams `reader` into the store while hashing it (SHA-256) and
    /// returns the hex SHA-256 and the size. Fails with [`Error::TooLarge`]
    /// as soon as more than `limit` bytes arrive, leaving nothing behind.
    /// Storing bytes that are already there keeps the existing blob (and
    /// refreshes its touched time, which protects it from a concurrent
    /// delete: see [`Store::delete_document`](crate::Store::delete_document)).
    /// The directory flushes the file to disk before renaming it into place;
    /// the database adopts the chunks in one transaction.
    pub async fn put_reader(
        &self,
        reader: impl AsyncRead + Unpin,
        limit: u64,
    ) -> Result<(String, u64)> {
        let put = self.put_reader_resumable(reader, limit).await?;
        Ok((put.sha256, put.size))
    }

    /// [`put_reader`](Self::put_reader), also returning the hash state at the
    /// end of the bytes, from which the hash of these bytes followed by more
    /// can be computed without reading them again (see
    /// [`ResumableSha256`](crate::ResumableSha256)).
    pub async fn put_reader_resumable(
        &self,
        reader: impl AsyncRead + Unpin,
        limit: u64,
    ) -> Result<StoredBlob> {
        let root = match &self.backend {
            Backend::Dir(root) => root,
            Backend::Database(db) => return db.put_reader_resumable(reader, limit).await,
        };
        let tmp_path = temp_path(root);
        let guard = TempGuard(Some(tmp_path.clone()));
        let mut sink = FileSink {
            path: tmp_path,
            file: None,
        };
        let mut keep = Reservation::new(Arc::clone(&self.hot));
        let upload = read_upload(reader, limit, &mut sink, &mut keep).await?;
        let kept = keep.kept() && sink.file.is_none();
        let forgets = self.hot.forgets();
        let rest = finish_file(root, sink.file, upload.rest, guard, &upload.sha256).await?;
        // Gathered whole: held for the document's next steps (its
        // stamping job releases it, or its callback).
        drop(keep);
        if kept {
            self.hot
                .hold_unless_forgotten(forgets, &upload.sha256, || Bytes::from(rest));
        }
        Ok(StoredBlob {
            sha256: upload.sha256,
            size: upload.size,
            hash_state: upload.hash_state,
        })
    }

    /// Stores `bytes` (see [`put_reader`](Self::put_reader)); no size limit.
    /// In the directory, hashing and writing happen in one trip to the
    /// blocking pool.
    pub async fn put_bytes(&self, bytes: &[u8]) -> Result<(String, u64)> {
        match &self.backend {
            Backend::Dir(root) => {
                let dir = self.dir_blobs(root);
                let owned = bytes.to_vec();
                let size = owned.len() as u64;
                let sha = blocking(move || dir.put(&owned).map_err(io_error)).await?;
                Ok((sha, size))
            }
            Backend::Database(_) => self.put_reader(bytes, u64::MAX).await,
        }
    }

    /// The blob directory as a blocking handle, for work that already runs
    /// on a blocking thread (the stamping job reads its input and writes its
    /// output there in the same trip); `None` for the database backend.
    pub fn dir(&self) -> Option<DirBlobs> {
        match &self.backend {
            Backend::Dir(root) => Some(self.dir_blobs(root)),
            Backend::Database(_) => None,
        }
    }

    fn dir_blobs(&self, root: &Arc<PathBuf>) -> DirBlobs {
        DirBlobs {
            root: Arc::clone(root),
            hot: Arc::clone(&self.hot),
        }
    }

    /// Keeps blobs in memory between a document's steps, in at most
    /// `budget` bytes (0: never); see `blob/hot.rs`. Uploads to the blob
    /// directory that fit in a quarter of the budget are gathered in memory,
    /// written only when new, and held until
    /// [`release`](Self::release)d; reads look in memory first. Call it
    /// before cloning the store: clones share the memory of the store they
    /// were cloned from.
    pub fn with_memory(mut self, budget: u64) -> BlobStore {
        self.hot = Arc::new(Hot::new(budget));
        self
    }

    /// One holder of blob `sha256` in memory (an upload, or
    /// [`DirBlobs::put_held`]) is done with it; it leaves memory with its
    /// last holder. Releasing a blob that is not held does nothing.
    pub fn release(&self, sha256: &str) {
        self.hot.release(sha256);
    }

    /// The file that holds blob `sha256` in the blob directory (whether or
    /// not it exists); `None` for the database backend. Rejects anything but
    /// 64 lowercase hex digits, so no name can escape the blob directory.
    pub fn path(&self, sha256: &str) -> Result<Option<PathBuf>> {
        check_sha(sha256)?;
        Ok(match &self.backend {
            Backend::Dir(root) => Some(blob_path(root, sha256)),
            Backend::Database(_) => None,
        })
    }

    /// Whether the blob is stored.
    pub async fn exists(&self, sha256: &str) -> Result<bool> {
        Ok(self.size(sha256).await?.is_some())
    }

    /// The blob's size in bytes, or `None` if it is not stored.
    pub async fn size(&self, sha256: &str) -> Result<Option<u64>> {
        check_sha(sha256)?;
        if let Some(bytes) = self.hot.get(sha256) {
            return Ok(Some(bytes.len() as u64));
        }
        match &self.backend {
            Backend::Dir(root) => match tokio::fs::metadata(blob_path(root, sha256)).await {
                Ok(meta) => Ok(Some(meta.len())),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            },
            Backend::Database(db) => db.size(sha256).await,
        }
    }

    /// Opens the blob for streaming (downloads, callbacks): its size and its
    /// bytes in pieces of about 1 MiB. A missing blob is
    /// [`Error::BlobNotFound`] here, not a stream error later.
    pub async fn stream(&self, sha256: &str) -> Result<BlobStream> {
        check_sha(sha256)?;
        if let Some(bytes) = self.hot.get(sha256) {
            return Ok(BlobStream {
                size: bytes.len() as u64,
                inner: Box::pin(futures_util::stream::iter([Ok(bytes)])),
            });
        }
        match &self.backend {
            Backend::Dir(root) => {
                let file = tokio::fs::File::open(blob_path(root, sha256))
                    .await
                    .map_err(|e| not_found_as(e, sha256))?;
                let size = file.metadata().await?.len();
                let stream =
                    tokio_util::io::ReaderStream::with_capacity(file.take(size), READ_CHUNK);
                Ok(BlobStream {
                    size,
                    inner: Box::pin(stream),
                })
            }
            Backend::Database(db) => db.stream(sha256).await,
        }
    }

    /// The whole blob, if it is at most `max` bytes long, read in one trip
    /// to the blocking pool (or from memory); `None` when it is longer, or
    /// kept in the database (stream those). A missing blob is
    /// [`Error::BlobNotFound`].
    pub async fn read_small(&self, sha256: &str, max: u64) -> Result<Option<Bytes>> {
        check_sha(sha256)?;
        if let Some(bytes) = self.hot.get(sha256) {
            return Ok((bytes.len() as u64 <= max).then_some(bytes));
        }
        let Backend::Dir(root) = &self.backend else {
            return Ok(None);
        };
        let path = blob_path(root, sha256);
        let read = blocking(move || {
            use std::io::Read as _;
            let mut file = std::fs::File::open(&path)?;
            let len = file.metadata()?.len();
            if len > max {
                return Ok(None);
            }
            let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            file.read_to_end(&mut bytes)?;
            Ok(Some(Bytes::from(bytes)))
        })
        .await;
        match read {
            Err(Error::Io(e)) => Err(not_found_as(e, sha256)),
            other => other,
        }
    }

    /// Reads the whole blob into memory (one allocation of its size), or
    /// shares the copy already there.
    pub async fn read(&self, sha256: &str) -> Result<Bytes> {
        check_sha(sha256)?;
        if let Some(bytes) = self.hot.get(sha256) {
            return Ok(bytes);
        }
        match &self.backend {
            // `fs::read` sizes its buffer from the file's metadata.
            Backend::Dir(root) => tokio::fs::read(blob_path(root, sha256))
                .await
                .map(Bytes::from)
                .map_err(|e| not_found_as(e, sha256)),
            Backend::Database(_) => {
                let mut stream = self.stream(sha256).await?;
                let size = usize::try_from(stream.size())
                    .map_err(|_| Error::Io(std::io::Error::other("blob too large for memory")))?;
                let mut out = Vec::with_capacity(size);
                while let Some(piece) = stream.try_next().await? {
                    out.extend_from_slice(&piece);
                }
                Ok(Bytes::from(out))
            }
        }
    }

    /// Deletes the blob; deleting a missing blob is not an error.
    pub async fn delete(&self, sha256: &str) -> Result<()> {
        self.delete_if_untouched_since(sha256, i64::MAX).await?;
        Ok(())
    }

    /// Deletes the blob unless it was touched (stored, or stored again)
    /// after `at_ms` (unix ms). Returns whether it deleted it. In the
    /// database the check and the delete are one statement, serialized with
    /// stores of the same bytes by the row lock; in the directory a store
    /// that refreshes the file between the check and the removal still loses
    /// it (a narrow window the database backend does not have).
    pub(crate) async fn delete_if_untouched_since(&self, sha256: &str, at_ms: i64) -> Result<bool> {
        let deleted = self.delete_stored_if_untouched_since(sha256, at_ms).await?;
        if deleted {
            self.hot.forget(sha256);
        }
        Ok(deleted)
    }

    async fn delete_stored_if_untouched_since(&self, sha256: &str, at_ms: i64) -> Result<bool> {
        check_sha(sha256)?;
        let root = match &self.backend {
            Backend::Dir(root) => root,
            Backend::Database(db) => return db.delete_if_untouched_since(sha256, at_ms).await,
        };
        let path = blob_path(root, sha256);
        if at_ms != i64::MAX {
            match tokio::fs::metadata(&path).await {
                Ok(meta) if system_time_ms(meta.modified()?) <= at_ms => {}
                Ok(_) => return Ok(false),
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        match tokio::fs::remove_file(path).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Every stored blob not touched after `cutoff_ms` (unix ms).
    pub(crate) async fn untouched_since(&self, cutoff_ms: i64) -> Result<Vec<String>> {
        let root = match &self.backend {
            Backend::Dir(root) => root,
            Backend::Database(db) => return db.untouched_since(cutoff_ms).await,
        };
        let mut blobs = Vec::new();
        let mut dirs = tokio::fs::read_dir(&**root).await?;
        while let Some(dir) = dirs.next_entry().await? {
            let prefix = dir.file_name().to_string_lossy().into_owned();
            if prefix.len() != 2 || !dir.file_type().await?.is_dir() {
                continue;
            }
            let mut files = tokio::fs::read_dir(dir.path()).await?;
            while let Some(file) = files.next_entry().await? {
                let sha = format!("{prefix}{}", file.file_name().to_string_lossy());
                if is_sha256_hex(&sha)
                    && system_time_ms(file.metadata().await?.modified()?) <= cutoff_ms
                {
                    blobs.push(sha);
                }
            }
        }
        Ok(blobs)
    }

    /// Deletes what interrupted uploads left (temporary files; staging
    /// chunks) last written at or before `cutoff_ms`. Returns how many
    /// uploads' leftovers went.
    pub(crate) async fn sweep_interrupted_uploads(&self, cutoff_ms: i64) -> Result<u64> {
        let root = match &self.backend {
            Backend::Dir(root) => root,
            Backend::Database(db) => return db.sweep_staging(cutoff_ms).await,
        };
        let mut removed = 0;
        let mut files = tokio::fs::read_dir(root.join(TMP_DIR)).await?;
        while let Some(file) = files.next_entry().await? {
            let is_part = file.file_name().to_string_lossy().ends_with(TMP_SUFFIX);
            if is_part && system_time_ms(file.metadata().await?.modified()?) <= cutoff_ms {
                match tokio::fs::remove_file(file.path()).await {
                    Err(e) if e.kind() != ErrorKind::NotFound => return Err(e.into()),
                    _ => removed += 1,
                }
            }
        }
        Ok(removed)
    }
}

fn blob_path(root: &Path, sha256: &str) -> PathBuf {
    root.join(&sha256[..2]).join(&sha256[2..])
}

fn temp_path(root: &Path) -> PathBuf {
    root.join(TMP_DIR).join(format!(
        "{}{TMP_SUFFIX}",
        to_hex(&rand::random::<[u8; 16]>())
    ))
}

/// The blob directory, with blocking calls: for code already on a
/// blocking thread (see [`BlobStore::dir`]). Cheap to clone.
#[derive(Clone, Debug)]
pub struct DirBlobs {
    root: Arc<PathBuf>,
    hot: Arc<Hot>,
}

impl DirBlobs {
    /// Reads the whole blob into memory (one allocation of its size), or
    /// shares the copy already there.
    pub fn read(&self, sha256: &str) -> Result<Bytes> {
        check_sha(sha256)?;
        if let Some(bytes) = self.hot.get(sha256) {
            return Ok(bytes);
        }
        std::fs::read(blob_path(&self.root, sha256))
            .map(Bytes::from)
            .map_err(|e| not_found_as(e, sha256))
    }

    /// Stores `bytes` under their SHA-256 (kept if already there), durable
    /// before this returns; returns the hex SHA-256.
    pub fn put(&self, bytes: &[u8]) -> Result<String> {
        let sha = to_hex(&Sha256::digest(bytes));
        let tmp = temp_path(&self.root);
        // Removes a half-written temporary file if storing fails.
        let mut guard = TempGuard(Some(tmp.clone()));
        store_file(&self.root, None, &tmp, bytes, &sha)?;
        guard.0 = None;
        Ok(sha)
    }

    /// [`put`](Self::put), and holds a copy in memory for the next step
    /// (when the store keeps blobs in memory and it fits; see
    /// [`BlobStore::with_memory`]) until [`BlobStore::release`]d.
    pub fn put_held(&self, bytes: &[u8]) -> Result<String> {
        let sha = self.put(bytes)?;
        if self.hot.enabled() && bytes.len() as u64 <= self.hot.max_entry() {
            // Copied before the lock is taken, not under it.
            let copy = Bytes::copy_from_slice(bytes);
            self.hot.hold(&sha, || copy);
        }
        Ok(sha)
    }
}

fn io_error(e: Error) -> std::io::Error {
    match e {
        Error::Io(e) => e,
        other => std::io::Error::other(other.to_string()),
    }
}

/// Puts blob `sha` in place: keeps an existing copy (refreshing its mtime,
/// which protects it from a concurrent delete) without writing anything;
/// otherwise writes `rest` after what `file` (the temporary file at `tmp`,
/// if any) already holds — creating it if there is none — makes it durable
/// and renames it into place. Returns whether the blob existed (then the
/// caller removes the temporary file, if one was made). Blocking.
fn store_file(
    root: &Path,
    file: Option<std::fs::File>,
    tmp: &Path,
    rest: &[u8],
    sha: &str,
) -> Result<bool> {
    use std::io::Write as _;
    check_sha(sha)?;
    let dest = blob_path(root, sha);
    if dest.try_exists()? {
        let _ = std::fs::File::open(&dest).and_then(|f| f.set_modified(SystemTime::now()));
        return Ok(true);
    }
    let mut file = match file {
        Some(file) => file,
        None => create_temp(tmp)?,
    };
    file.write_all(rest)?;
    // Durable before any database row can point at it.
    file.sync_all()?;
    drop(file);
    let dir = dest.parent().unwrap_or(root).to_path_buf();
    std::fs::create_dir_all(&dir)?;
    std::fs::rename(tmp, &dest)?;
    // The rename itself must survive a power loss too.
    std::fs::File::open(&dir)?.sync_all()?;
    Ok(false)
}

/// [`store_file`] in one trip to the blocking pool; the temporary file is
/// removed (by `guard`) unless it became the blob.
async fn finish_file(
    root: &Arc<PathBuf>,
    file: Option<std::fs::File>,
    rest: Vec<u8>,
    mut guard: TempGuard,
    sha: &str,
) -> Result<Vec<u8>> {
    let had_file = file.is_some();
    let root = Arc::clone(root);
    let tmp = guard.0.clone().unwrap_or_default();
    let sha = sha.to_owned();
    let (existed, rest) = blocking(move || {
        let existed = store_file(&root, file, &tmp, &rest, &sha).map_err(io_error)?;
        // Held as it is: no spare capacity kept with it.
        let mut rest = rest;
        rest.shrink_to_fit();
        Ok((existed, rest))
    })
    .await?;
    if !existed || !had_file {
        // Renamed into place, or never created.
        guard.0 = None;
    }
    Ok(rest)
}

fn not_found_as(e: std::io::Error, sha256: &str) -> Error {
    if e.kind() == ErrorKind::NotFound {
        Error::BlobNotFound(sha256.to_owned())
    } else {
        e.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_matches_known_digest() {
        assert_eq!(
            to_hex(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn path_rejects_tricks() {
        let store = BlobStore {
            backend: Backend::Dir(Arc::new(PathBuf::from("/data/blobs"))),
            hot: Arc::default(),
        };
        let sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(
            store.path(sha).unwrap().unwrap(),
            Path::new(
                "/data/blobs/ba/7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            )
        );
        for bad in [
            "",
            "../../etc/passwd",
            &sha.to_uppercase(),
            &sha[..63],
            &format!("{sha}0"),
            &format!("../{}", &sha[3..]),
            "staging-0123456789abcdef0123456789abcdef",
        ] {
            assert!(
                matches!(store.path(bad), Err(Error::InvalidHash(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn backend_names_and_defaults() {
        assert_eq!(BlobBackend::Dir.to_string(), "dir");
        assert_eq!(BlobBackend::Database.to_string(), "database");
        assert_eq!(BlobBackend::default_for(None), BlobBackend::Dir);
        assert_eq!(
            BlobBackend::default_for(Some("sqlite://x.db")),
            BlobBackend::Dir
        );
        assert_eq!(
            BlobBackend::default_for(Some("postgres://h/db")),
            BlobBackend::Database
        );
        assert_eq!(
            BlobBackend::default_for(Some("postgresql://h/db")),
            BlobBackend::Database
        );
    }
}
