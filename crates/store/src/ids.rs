//! Identifier newtypes: random, unguessable document ids and database ids of
//! watermark specs.

use std::fmt;
use std::str::FromStr;

use rand::rngs::OsRng;
use rand::{RngCore, TryRngCore};
use serde::{Deserialize, Serialize};

use crate::Error;

/// RFC 4648 base32 alphabet, lowercase: no `0`/`1`/`8`/`9`, so ids are easy to
/// read aloud and copy.
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// 128 bits in 5-bit characters: 25 full characters and one carrying 3 bits.
const LEN: usize = 26;

/// A document's id: 128 random bits from the operating system's RNG, written
/// as 26 lowercase base32 characters. Unguessable, so it doubles as the
/// capability to read the document. [`FromStr`] accepts exactly the canonical
/// form, so junk in a URL is rejected without a database query.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub struct DocumentId(String);

impl DocumentId {
    /// A new random id (128 bits from the OS RNG).
    pub fn random() -> DocumentId {
        let mut bytes = [0u8; 16];
        if OsRng.try_fill_bytes(&mut bytes).is_err() {
            // The OS RNG does not fail on supported systems; should it, the
            // thread RNG is a CSPRNG seeded from it earlier.
            rand::rng().fill_bytes(&mut bytes);
        }
        DocumentId(encode(u128::from_be_bytes(bytes)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An id read back from the database (written there from a valid id).
    pub(crate) fn from_db(s: String) -> DocumentId {
        DocumentId(s)
    }
}

fn encode(mut value: u128) -> String {
    // 130 bits of characters for 128 bits of value: the last character holds
    // the 3 lowest bits shifted left by 2, as RFC 4648 pads.
    let mut out = [0u8; LEN];
    out[LEN - 1] = ALPHABET[((value & 0b111) << 2) as usize];
    value >>= 3;
    for slot in out[..LEN - 1].iter_mut().rev() {
        *slot = ALPHABET[(value & 0b1_1111) as usize];
        value >>= 5;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

fn is_canonical(s: &str) -> bool {
    let bytes = s.as_bytes();
    if bytes.len() != LEN {
        return false;
    }
    let digit = |b: u8| ALPHABET.iter().position(|&a| a == b);
    bytes[..LEN - 1].iter().all(|&b| digit(b).is_some())
        // The last character carries 3 bits: its 2 padding bits must be zero.
        && digit(bytes[LEN - 1]).is_some_and(|d| d & 0b11 == 0)
}

impl FromStr for DocumentId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if is_canonical(s) {
            Ok(DocumentId(s.to_owned()))
        } else {
            Err(Error::InvalidDocumentId)
        }
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<DocumentId> for String {
    fn from(id: DocumentId) -> String {
        id.0
    }
}

impl<'de> Deserialize<'de> for DocumentId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The database id of a distinct watermark spec (row of `watermarks`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WatermarkId(pub i64);

impl fmt::Display for WatermarkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_round_trips_extremes() {
        assert_eq!(encode(0), "a".repeat(26));
        let max = encode(u128::MAX);
        assert_eq!(max, format!("{}4", "7".repeat(25)));
        assert!(is_canonical(&max));
        assert!(is_canonical(&encode(0)));
        // The last character must keep its padding bits zero.
        assert!(!is_canonical(&format!("{}7", "7".repeat(25))));
    }
}
