//! SHA-256 that can be paused and resumed later, from a saved state.
//!
//! A stamped document's output is its input followed by a small update, and
//! its SHA-256 is shown in `/status`. Hashing the whole output again would read
//! the input a second time (the upload already hashed it): on a large book
//! that was a tenth of the server's CPU per document. So the upload keeps the
//! hash state it reached at the end of the input ([`ResumableSha256::state`],
//! stored with the document), and the stamping job resumes from it over the
//! update alone.
//!
//! The block function is `sha2`'s (`compress256`, which uses the CPU's SHA
//! instructions when present); only the buffering and the final padding
//! (FIPS 180-4 §5.1.1) are written here, because `sha2` does not expose its
//! state.

use sha2::digest::generic_array::GenericArray;

use crate::blob::to_hex;

const BLOCK: usize = 64;
/// FIPS 180-4 §5.3.3.
const INITIAL: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// A SHA-256 computation in progress.
#[derive(Clone, Debug)]
pub struct ResumableSha256 {
    state: [u32; 8],
    /// Bytes hashed so far (including `buf`).
    len: u64,
    buf: [u8; BLOCK],
    buf_len: usize,
}

/// Equal when they would give the same digest for the same further bytes
/// (the buffer beyond the unhashed tail is scratch).
impl PartialEq for ResumableSha256 {
    fn eq(&self, other: &Self) -> bool {
        self.state == other.state
            && self.len == other.len
            && self.buf[..self.buf_len] == other.buf[..other.buf_len]
    }
}

impl Eq for ResumableSha256 {}

impl Default for ResumableSha256 {
    fn default() -> Self {
        Self::new()
    }
}

impl ResumableSha256 {
    /// A fresh hash.
    pub fn new() -> Self {
        ResumableSha256 {
            state: INITIAL,
            len: 0,
            buf: [0; BLOCK],
            buf_len: 0,
        }
    }

    /// How many bytes were fed so far.
    pub fn bytes_hashed(&self) -> u64 {
        self.len
    }

    /// Feeds `data`.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len() as u64);
        if self.buf_len > 0 {
            let take = (BLOCK - self.buf_len).min(data.len());
            self.buf[self.buf_len..self.buf_len + take].copy_from_slice(&data[..take]);
            self.buf_len += take;
            data = &data[take..];
            if self.buf_len < BLOCK {
                return;
            }
            sha2::compress256(
                &mut self.state,
                &[GenericArray::clone_from_slice(&self.buf)],
            );
            self.buf_len = 0;
        }
        let mut blocks = data.chunks_exact(BLOCK);
        for block in &mut blocks {
            sha2::compress256(&mut self.state, &[GenericArray::clone_from_slice(block)]);
        }
        let rest = blocks.remainder();
        self.buf[..rest.len()].copy_from_slice(rest);
        self.buf_len = rest.len();
    }

    /// The digest of everything fed so far.
    pub fn finalize(mut self) -> [u8; 32] {
        let bits = self.len.wrapping_mul(8);
        let mut pad = [0u8; 2 * BLOCK];
        pad[0] = 0x80;
        // Room for 0x80 and the 8-byte length in this block, else the next.
        let zeros = if self.buf_len < BLOCK - 8 {
            BLOCK - 8 - self.buf_len
        } else {
            2 * BLOCK - 8 - self.buf_len
        };
        pad[zeros..zeros + 8].copy_from_slice(&bits.to_be_bytes());
        let len = self.len;
        self.update(&pad[..zeros + 8]);
        debug_assert_eq!(self.buf_len, 0);
        self.len = len;
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    /// The state as text (hex: 8 state words, the length, the unhashed
    /// tail), to store and later [`resume`](Self::resume) from.
    pub fn state(&self) -> String {
        let mut bytes = Vec::with_capacity(40 + self.buf_len);
        for word in self.state {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        bytes.extend_from_slice(&self.len.to_be_bytes());
        bytes.extend_from_slice(&self.buf[..self.buf_len]);
        to_hex(&bytes)
    }

    /// Resumes from a [`state`](Self::state); `None` if the text is not one.
    pub fn resume(text: &str) -> Option<Self> {
        if !text.len().is_multiple_of(2) || !text.is_ascii() {
            return None;
        }
        let bytes = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        if bytes.len() < 40 || bytes.len() >= 40 + BLOCK {
            return None;
        }
        let mut state = [0u32; 8];
        for (word, chunk) in state.iter_mut().zip(bytes[..32].chunks_exact(4)) {
            *word = u32::from_be_bytes(chunk.try_into().ok()?);
        }
        let len = u64::from_be_bytes(bytes[32..40].try_into().ok()?);
        let tail = &bytes[40..];
        if len % BLOCK as u64 != tail.len() as u64 {
            return None;
        }
        let mut buf = [0u8; BLOCK];
        buf[..tail.len()].copy_from_slice(tail);
        Some(ResumableSha256 {
            state,
            len,
            buf,
            buf_len: tail.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 + i / 7) as u8).collect()
    }

    #[test]
    fn matches_sha2_at_every_length_around_block_edges() {
        for n in (0..300).chain([1000, 4096, 65_537]) {
            let d = data(n);
            let mut h = ResumableSha256::new();
            h.update(&d);
            assert_eq!(
                h.finalize().as_slice(),
                Sha256::digest(&d).as_slice(),
                "{n}"
            );
        }
    }

    #[test]
    fn resumed_hash_equals_hash_of_the_concatenation() {
        let d = data(700);
        for split in [0, 1, 55, 56, 63, 64, 65, 127, 128, 500, 700] {
            let mut first = ResumableSha256::new();
            // Fed in uneven pieces, as an upload arrives.
            for piece in d[..split].chunks(37) {
                first.update(piece);
            }
            let saved = first.state();
            let mut resumed = ResumableSha256::resume(&saved).expect("valid state");
            assert_eq!(resumed, first);
            resumed.update(&d[split..]);
            assert_eq!(
                resumed.finalize().as_slice(),
                Sha256::digest(&d).as_slice(),
                "split at {split}"
            );
        }
    }

    #[test]
    fn bad_states_are_refused() {
        let mut h = ResumableSha256::new();
        h.update(b"abc");
        let good = h.state();
        assert!(ResumableSha256::resume(&good).is_some());
        assert!(ResumableSha256::resume("").is_none());
        assert!(ResumableSha256::resume(&good[..good.len() - 1]).is_none());
        assert!(ResumableSha256::resume(&good[..good.len() - 2]).is_none()); // tail ≠ len % 64
        assert!(ResumableSha256::resume(&format!("zz{}", &good[2..])).is_none());
        assert!(ResumableSha256::resume(&"0".repeat(2 * (40 + 64))).is_none());
    }
}
