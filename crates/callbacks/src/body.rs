//! The callback's body: `multipart/form-data` framed by hand, streamed from
//! its [`Part`]s, and signed per Standard Webhooks.
//!
//! The body is `file` (the stamped PDF) then `id` (the document id), the
//! original Peedy's shape. The PDF is the concatenation of parts — typically
//! the upload as received followed by the appended update, as files or
//! database blobs — and may be large, so it is never held in memory. A
//! signature covers the exact bytes sent, which a multipart encoder with a
//! random boundary would hide from us; so the framing is built here, the
//! signature is computed by streaming over framing and parts once, and the
//! same bytes are then streamed to the receiver with an exact
//! `Content-Length`.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use futures_util::{StreamExt as _, TryStreamExt as _, stream};
use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};
use tokio_util::io::ReaderStream;

use crate::Error;

/// Read size for streaming file parts, for signing and for sending. Each
/// read of a `tokio::fs::File` is a trip to the blocking pool and back; at
/// 64 KiB those trips were a large share of the server's CPU time for a big
/// book, so reads are 1 MiB (at most five callbacks run at once by default).
const CHUNK: usize = 1 << 20;

/// The bytes of a [`Part`], piece by piece.
pub type PartStream = Pin<Box<dyn futures_util::Stream<Item = io::Result<Bytes>> + Send>>;

/// One piece of a stamped PDF to deliver: its length, and a way to read it
/// from the start as often as needed (a signed body is read twice: once to
/// sign it, once to send it).
///
/// A [`PathBuf`] is a part (the file, read 1 MiB at a time); the service
/// implements it for its blobs wherever they are stored.
#[async_trait::async_trait]
pub trait Part: Send + Sync + std::fmt::Debug {
    /// Its length in bytes, looked up without reading it.
    async fn size(&self) -> io::Result<u64>;
    /// A fresh stream of its bytes from the first. Errors should say which
    /// part failed.
    async fn open(&self) -> io::Result<PartStream>;
    /// All its bytes, if there are at most `max` of them: one read instead
    /// of a size lookup and a stream (each a trip to the blocking pool for a
    /// file), which is most of the I/O cost of a small document's callback.
    /// `None` means "stream it"; the default always says so.
    async fn read_small(&self, max: u64) -> io::Result<Option<Bytes>> {
        let _ = max;
        Ok(None)
    }
}

/// Parts of at most this many bytes are read whole, in one trip (see
/// [`Part::read_small`]).
pub(crate) const SMALL_PART: u64 = CHUNK as u64;

/// [`Part::read_small`] of a file, blocking: the open file's length decides.
fn read_small_file(path: &std::path::Path, max: u64) -> io::Result<Option<Bytes>> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > max {
        return Ok(None);
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    Ok(Some(Bytes::from(bytes)))
}

#[async_trait::async_trait]
impl Part for PathBuf {
    async fn size(&self) -> io::Result<u64> {
        Ok(tokio::fs::metadata(self)
            .await
            .map_err(|e| with_path(e, self))?
            .len())
    }

    async fn open(&self) -> io::Result<PartStream> {
        let file = tokio::fs::File::open(self)
            .await
            .map_err(|e| with_path(e, self))?;
        let path = self.clone();
        Ok(Box::pin(
            ReaderStream::with_capacity(file, CHUNK).map_err(move |e| with_path(e, &path)),
        ))
    }

    async fn read_small(&self, max: u64) -> io::Result<Option<Bytes>> {
        let path = self.clone();
        tokio::task::spawn_blocking(move || {
            read_small_file(&path, max).map_err(|e| with_path(e, &path))
        })
        .await
        .map_err(io::Error::other)?
    }
}

/// The Standard Webhooks signing key.
#[derive(Clone)]
pub(crate) struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    /// `whsec_<base64>` is decoded, as Standard Webhooks libraries do; any
    /// other string is used as the key bytes as it is.
    pub(crate) fn parse(secret: &str) -> Result<SigningKey, Error> {
        let key = match secret.strip_prefix("whsec_") {
            Some(b64) => BASE64.decode(b64.trim()).map_err(|e| {
                Error::Secret(format!("the part after `whsec_` is not valid base64 ({e})"))
            })?,
            None => secret.as_bytes().to_vec(),
        };
        if key.is_empty() {
            return Err(Error::Secret("it is empty".into()));
        }
        Ok(SigningKey(key))
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length; this cannot fail.
        <Hmac<Sha256> as hmac::Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
    }
}

/// The three Standard Webhooks headers of one attempt.
#[derive(Debug, Clone)]
pub(crate) struct Signature {
    pub(crate) timestamp: String,
    /// `v1,<base64>`.
    pub(crate) header: String,
}

/// An unguessable multipart boundary for `webhook_id`: the same for every
/// attempt of a delivery within this process, different across processes.
///
/// It must not occur in the PDF. Derived from `webhook_id` alone, a PDF made
/// by someone who can guess the id could contain it and cut the `file` part
/// short at the receiver; keyed with `process_key`, it cannot be guessed.
pub(crate) fn boundary(process_key: &[u8; 16], webhook_id: &str) -> String {
    let digest = Sha256::new()
        .chain_update(process_key)
        .chain_update(webhook_id.as_bytes())
        .finalize();
    let mut out = String::from("peedy-");
    for byte in &digest[..20] {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// 128 random bits without another dependency: std seeds every
/// `RandomState` from the OS's random source.
pub(crate) fn process_key() -> [u8; 16] {
    use std::hash::{BuildHasher as _, Hasher as _};
    let state = std::collections::hash_map::RandomState::new();
    let mut key = [0u8; 16];
    for (i, half) in key.chunks_exact_mut(8).enumerate() {
        let mut hasher = state.build_hasher();
        hasher.write_usize(i);
        half.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    key
}

/// Quotes a filename for `Content-Disposition` as browsers do (WHATWG HTML,
/// "multipart/form-data encoding algorithm"): `"`, CR and LF are
/// percent-encoded, everything else — UTF-8 included — is sent as it is.
fn quote_filename(name: &str) -> String {
    let name = if name.trim().is_empty() {
        "document.pdf"
    } else {
        name
    };
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '"' => out.push_str("%22"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => out.push(c),
        }
    }
    out
}

/// One multipart body, ready to be measured, signed and sent.
#[derive(Debug)]
pub(crate) struct MultipartBody {
    boundary: String,
    /// Everything before the PDF bytes.
    head: Bytes,
    /// Everything after them: the `id` part and the closing boundary.
    tail: Bytes,
    /// The parts whose concatenation is the PDF.
    parts: Vec<Piece>,
}

/// A part of the body, with its length once known and its bytes if it was
/// small enough to read whole.
#[derive(Debug)]
struct Piece {
    part: Arc<dyn Part>,
    len: u64,
    bytes: Option<Bytes>,
}

impl MultipartBody {
    pub(crate) fn new(
        boundary: String,
        filename: &str,
        document_id: &str,
        parts: &[Arc<dyn Part>],
    ) -> MultipartBody {
        let head = format!(
            "--{boundary}\r\n\
             Content-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\n\
             Content-Type: application/pdf\r\n\
             \r\n",
            quote_filename(filename)
        );
        let tail = format!(
            "\r\n--{boundary}\r\n\
             Content-Disposition: form-data; name=\"id\"\r\n\
             \r\n\
             {document_id}\r\n\
             --{boundary}--\r\n"
        );
        MultipartBody {
            boundary,
            head: Bytes::from(head),
            tail: Bytes::from(tail),
            parts: parts
                .iter()
                .map(|p| Piece {
                    part: Arc::clone(p),
                    len: 0,
                    bytes: None,
                })
                .collect(),
        }
    }

    /// The `Content-Type` header value.
    pub(crate) fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The exact body length. Valid after [`measure`](Self::measure) or
    /// [`sign`](Self::sign).
    pub(crate) fn len(&self) -> u64 {
        self.head.len() as u64
            + self.parts.iter().map(|p| p.len).sum::<u64>()
            + self.tail.len() as u64
    }

    /// Reads the small parts whole (see [`Part::read_small`]); call before
    /// [`measure`](Self::measure) or [`sign`](Self::sign).
    pub(crate) async fn read_small_parts(&mut self) -> io::Result<()> {
        for piece in &mut self.parts {
            if let Some(bytes) = piece.part.read_small(SMALL_PART).await? {
                piece.len = bytes.len() as u64;
                piece.bytes = Some(bytes);
            }
        }
        Ok(())
    }

    /// Learns the parts' lengths without reading them (when not signing).
    pub(crate) async fn measure(&mut self) -> io::Result<()> {
        for piece in &mut self.parts {
            if piece.bytes.is_none() {
                piece.len = piece.part.size().await?;
            }
        }
        Ok(())
    }

    /// Computes the Standard Webhooks signature over
    /// `{webhook_id}.{timestamp}.{body}`, reading the parts once and learning
    /// their lengths on the way.
    pub(crate) async fn sign(
        &mut self,
        key: &SigningKey,
        webhook_id: &str,
        now: SystemTime,
    ) -> io::Result<Signature> {
        let timestamp = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            .to_string();
        let mut mac = key.mac();
        mac.update(webhook_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(&self.head);
        for piece in &mut self.parts {
            if let Some(bytes) = &piece.bytes {
                mac.update(bytes);
                continue;
            }
            let mut bytes = piece.part.open().await?;
            piece.len = 0;
            while let Some(chunk) = bytes.try_next().await? {
                mac.update(&chunk);
                piece.len += chunk.len() as u64;
            }
        }
        mac.update(&self.tail);
        let sig = BASE64.encode(mac.finalize().into_bytes());
        Ok(Signature {
            timestamp,
            header: format!("v1,{sig}"),
        })
    }

    /// The body as a stream for the HTTP client: the same bytes that were
    /// measured or signed. Each part is read up to the length learnt before,
    /// so the body never runs past its `Content-Length`; a part that shrank
    /// meanwhile ends the body early and the client fails the request.
    pub(crate) fn into_body(self) -> reqwest::Body {
        if self.parts.iter().all(|p| p.bytes.is_some()) {
            // All in memory: one buffer, which the client writes at once.
            let mut body = Vec::with_capacity(usize::try_from(self.len()).unwrap_or(0));
            body.extend_from_slice(&self.head);
            for piece in &self.parts {
                body.extend_from_slice(piece.bytes.as_deref().unwrap_or_default());
            }
            body.extend_from_slice(&self.tail);
            return reqwest::Body::from(body);
        }
        let parts = stream::iter(self.parts).then(|piece| async move {
            let bytes: PartStream = match piece.bytes {
                Some(bytes) => Box::pin(stream::once(async move { Ok(bytes) })),
                None => piece.part.open().await.map_err(ReadError)?,
            };
            Ok::<_, ReadError>(take_bytes(bytes, piece.len).map_err(ReadError))
        });
        let body = stream::once(async move { Ok::<_, ReadError>(self.head) })
            .chain(parts.try_flatten())
            .chain(stream::once(async move { Ok(self.tail) }));
        reqwest::Body::wrap_stream(body)
    }
}

/// The first `len` bytes of `bytes`.
fn take_bytes(
    bytes: PartStream,
    len: u64,
) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send + 'static {
    bytes.scan(len, |left, piece| {
        let piece = match piece {
            Ok(_) if *left == 0 => None,
            Ok(mut piece) => {
                if piece.len() as u64 > *left {
                    piece.truncate(usize::try_from(*left).unwrap_or(usize::MAX));
                }
                *left -= piece.len() as u64;
                Some(Ok(piece))
            }
            Err(e) => Some(Err(e)),
        };
        std::future::ready(piece)
    })
}

fn with_path(e: io::Error, path: &std::path::Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Reading one of our own parts failed while sending. Kept as its own type so
/// the delivery code can tell it from a network error in the client's error
/// chain: it says nothing about the receiver's health.
#[derive(Debug, thiserror::Error)]
#[error("reading the stamped PDF failed: {0}")]
pub(crate) struct ReadError(#[source] pub(crate) io::Error);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whsec_secrets_are_base64_decoded() {
        let key = SigningKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("valid");
        assert_eq!(key.0.len(), 24);
        let raw = SigningKey::parse("not-base64!").expect("raw");
        assert_eq!(raw.0, b"not-base64!");
        assert!(SigningKey::parse("whsec_***").is_err());
        assert!(SigningKey::parse("whsec_").is_err());
        assert!(SigningKey::parse("").is_err());
    }

    #[test]
    fn boundaries_are_stable_per_id_and_keyed() {
        let key = process_key();
        assert_eq!(boundary(&key, "msg_1"), boundary(&key, "msg_1"));
        assert_ne!(boundary(&key, "msg_1"), boundary(&key, "msg_2"));
        assert_ne!(boundary(&key, "msg_1"), boundary(&[0; 16], "msg_1"));
        assert_eq!(boundary(&key, "msg_1").len(), "peedy-".len() + 40);
        assert_ne!(process_key(), process_key());
    }

    #[test]
    fn filenames_are_quoted_like_browsers_do() {
        assert_eq!(quote_filename("a \"b\".pdf"), "a %22b%22.pdf");
        assert_eq!(quote_filename("x\r\ny.pdf"), "x%0D%0Ay.pdf");
        assert_eq!(quote_filename("Ünïcödé.pdf"), "Ünïcödé.pdf");
        assert_eq!(quote_filename(""), "document.pdf");
    }

    /// The example from the Standard Webhooks specification's reference
    /// implementations, so our signature is the one receivers compute.
    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        let key = SigningKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("valid");
        let mut mac = key.mac();
        mac.update(b"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{\"test\": 2432232314}");
        assert_eq!(
            BASE64.encode(mac.finalize().into_bytes()),
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
