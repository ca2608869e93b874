//! Content-addressed blob directory: files named by their SHA-256.
//!
//! `blobs/ab/cdef…` holds the bytes whose hex SHA-256 is `abcdef…`; uploads
//! stream into `blobs/tmp/` while they are hashed, are flushed to disk, and
//! are then renamed into place, so a blob file is always complete. The same
//! bytes stored twice are one file.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::{Error, Result, ResumableSha256};

/// Name of the blob directory inside the data directory.
pub const BLOB_DIR: &str = "blobs";
const TMP_DIR: &str = "tmp";
const TMP_SUFFIX: &str = ".part";
/// Read size while streaming an upload to disk.
const CHUNK: usize = 64 * 1024;
/// Bytes gathered before one blocking write.
const BATCH: usize = 1 << 20;

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

/// The blob directory. Cheap to clone.
#[derive(Clone, Debug)]
pub struct BlobStore {
    root: Arc<PathBuf>,
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

fn system_time_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
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

impl BlobStore {
    /// Opens (creating if needed) the blob directory at `root`.
    pub async fn open(root: impl Into<PathBuf>) -> Result<BlobStore> {
        let root = root.into();
        tokio::fs::create_dir_all(root.join(TMP_DIR)).await?;
        Ok(BlobStore {
            root: Arc::new(root),
        })
    }

    /// The blob directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Streams `reader` into a temporary file while hashing it (SHA-256),
    /// flushes it to disk and renames it into place; returns the hex SHA-256
    /// and the size. Fails with [`Error::TooLarge`] as soon as more than
    /// `limit` bytes arrive, leaving no file behind. Storing bytes that are
    /// already there keeps the existing file (and refreshes its mtime, which
    /// protects it from a concurrent delete: see
    /// [`Store::delete_document`](crate::Store::delete_document)).
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
        mut reader: impl AsyncRead + Unpin,
        limit: u64,
    ) -> Result<StoredBlob> {
        let tmp_path = self.root.join(TMP_DIR).join(format!(
            "{}{TMP_SUFFIX}",
            to_hex(&rand::random::<[u8; 16]>())
        ));
        let guard = TempGuard(Some(tmp_path.clone()));
        let open_path = tmp_path.clone();
        let mut file = blocking(move || {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&open_path)
        })
        .await?;
        let mut hasher = ResumableSha256::new();
        let mut size: u64 = 0;
        // Bytes are gathered into large batches, each written by one trip
        // to the blocking pool: a trip per network chunk made context
        // switches the largest cost of an upload.
        // Network chunks are read straight into the batch (no copy through
        // a small buffer) and hashed there.
        let mut batch: Vec<u8> = Vec::with_capacity(BATCH + CHUNK);
        loop {
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
            if batch.len() >= BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH + CHUNK));
                file = blocking(move || {
                    use std::io::Write as _;
                    let mut file = file;
                    file.write_all(&full)?;
                    Ok(file)
                })
                .await?;
            }
        }
        let hash_state = hasher.state();
        let sha256 = to_hex(&hasher.finalize());
        self.finish(file, batch, guard, &sha256).await?;
        Ok(StoredBlob {
            sha256,
            size,
            hash_state,
        })
    }

    /// Writes the last bytes, makes the file durable and renames it into
    /// place as blob `sha` (or keeps an existing copy), in one trip to the
    /// blocking pool.
    async fn finish(
        &self,
        file: std::fs::File,
        rest: Vec<u8>,
        mut guard: TempGuard,
        sha: &str,
    ) -> Result<()> {
        let dest = self.path(sha)?;
        let tmp = guard.0.clone();
        let root = self.root.clone();
        let existed = blocking(move || {
            use std::io::Write as _;
            let mut file = file;
            file.write_all(&rest)?;
            // Durable before any database row can point at it.
            file.sync_all()?;
            drop(file);
            if dest.try_exists()? {
                // Refresh the mtime, which protects it from a concurrent delete.
                let _ = std::fs::File::open(&dest).and_then(|f| f.set_modified(SystemTime::now()));
                return Ok(true);
            }
            let dir = dest.parent().unwrap_or(&root).to_path_buf();
            std::fs::create_dir_all(&dir)?;
            if let Some(tmp) = &tmp {
                std::fs::rename(tmp, &dest)?;
            }
            // The rename itself must survive a power loss too.
            std::fs::File::open(&dir)?.sync_all()?;
            Ok(false)
        })
        .await?;
        if !existed {
            guard.0 = None;
        }
        Ok(())
    }

    /// Stores `bytes` (see [`put_reader`](Self::put_reader)); no size limit.
    /// Hashing and writing happen in one trip to the blocking pool.
    pub async fn put_bytes(&self, bytes: &[u8]) -> Result<(String, u64)> {
        let tmp_path = self.root.join(TMP_DIR).join(format!(
            "{}{TMP_SUFFIX}",
            to_hex(&rand::random::<[u8; 16]>())
        ));
        let guard = TempGuard(Some(tmp_path.clone()));
        let owned = bytes.to_vec();
        let (file, sha, owned) = blocking(move || {
            let sha = to_hex(&Sha256::digest(&owned));
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp_path)?;
            Ok((file, sha, owned))
        })
        .await?;
        let size = owned.len() as u64;
        self.finish(file, owned, guard, &sha).await?;
        Ok((sha, size))
    }

    /// Where the blob `sha256` lives (whether or not it exists). Rejects
    /// anything but 64 lowercase hex digits, so no name can escape the blob
    /// directory.
    pub fn path(&self, sha256: &str) -> Result<PathBuf> {
        if !is_sha256_hex(sha256) {
            return Err(Error::InvalidHash(sha256.chars().take(80).collect()));
        }
        Ok(self.root.join(&sha256[..2]).join(&sha256[2..]))
    }

    /// Whether the blob is stored.
    pub async fn exists(&self, sha256: &str) -> Result<bool> {
        Ok(tokio::fs::try_exists(self.path(sha256)?).await?)
    }

    /// Opens the blob for streaming (downloads, callbacks).
    pub async fn open_file(&self, sha256: &str) -> Result<tokio::fs::File> {
        tokio::fs::File::open(self.path(sha256)?)
            .await
            .map_err(|e| not_found_as(e, sha256))
    }

    /// Reads the whole blob into memory.
    pub async fn read(&self, sha256: &str) -> Result<Vec<u8>> {
        tokio::fs::read(self.path(sha256)?)
            .await
            .map_err(|e| not_found_as(e, sha256))
    }

    /// Deletes the blob; deleting a missing blob is not an error.
    pub async fn delete(&self, sha256: &str) -> Result<()> {
        match tokio::fs::remove_file(self.path(sha256)?).await {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// The blob's mtime in unix ms, or `None` if it does not exist.
    pub(crate) async fn modified_ms(&self, sha256: &str) -> Result<Option<i64>> {
        match tokio::fs::metadata(self.path(sha256)?).await {
            Ok(meta) => Ok(Some(system_time_ms(meta.modified()?))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Every stored blob with its mtime (unix ms).
    pub(crate) async fn list(&self) -> Result<Vec<(String, i64)>> {
        let mut blobs = Vec::new();
        let mut dirs = tokio::fs::read_dir(&*self.root).await?;
        while let Some(dir) = dirs.next_entry().await? {
            let prefix = dir.file_name().to_string_lossy().into_owned();
            if prefix.len() != 2 || !dir.file_type().await?.is_dir() {
                continue;
            }
            let mut files = tokio::fs::read_dir(dir.path()).await?;
            while let Some(file) = files.next_entry().await? {
                let sha = format!("{prefix}{}", file.file_name().to_string_lossy());
                if is_sha256_hex(&sha) {
                    let modified = system_time_ms(file.metadata().await?.modified()?);
                    blobs.push((sha, modified));
                }
            }
        }
        Ok(blobs)
    }

    /// Deletes temporary files of interrupted uploads last written before
    /// `cutoff_ms`.
    pub(crate) async fn sweep_temp_files(&self, cutoff_ms: i64) -> Result<u64> {
        let mut removed = 0;
        let mut files = tokio::fs::read_dir(self.root.join(TMP_DIR)).await?;
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
            root: Arc::new(PathBuf::from("/data/blobs")),
        };
        let sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(
            store.path(sha).unwrap(),
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
        ] {
            assert!(
                matches!(store.path(bad), Err(Error::InvalidHash(_))),
                "{bad}"
            );
        }
    }
}
