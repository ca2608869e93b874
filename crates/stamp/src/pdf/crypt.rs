//! The standard security handler (PDF 1.7 §7.6.3, ISO 32000-2 §7.6.4):
//! RC4 40–128 bit, AES-128 (`/AESV2`) and AES-256 (`/AESV3`, revisions 5
//! and 6).
//!
//! Peedy keeps encrypted documents encrypted: it opens them with the empty
//! user password or the password given, reads what it needs, and encrypts
//! the strings and streams of the objects it adds with the same key. The
//! `/Encrypt` dictionary and `/ID` are carried over unchanged.

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::NoPadding};
use md5::{Digest, Md5};
use sha2::{Sha256, Sha384, Sha512};

use super::object::{Dict, Object, Ref};
use crate::error::StampError;

const PAD: [u8; 32] = [
    0x28, 0xBF, 0x4E, 0x5E, 0x4E, 0x75, 0x8A, 0x41, 0x64, 0x00, 0x4E, 0x56, 0xFF, 0xFA, 0x01, 0x08,
    0x2E, 0x2E, 0x00, 0xB6, 0xD0, 0x68, 0x3E, 0x80, 0x2F, 0x0C, 0xA9, 0xFE, 0x64, 0x53, 0x69, 0x7A,
];

/// How one class of data (strings or streams) is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Identity,
    Rc4,
    Aes128,
    Aes256,
}

/// An opened security handler: the file key and the methods in use.
#[derive(Clone)]
pub(crate) struct Crypt {
    key: Vec<u8>,
    strings: Method,
    streams: Method,
}

impl std::fmt::Debug for Crypt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("Crypt")
            .field("strings", &self.strings)
            .field("streams", &self.streams)
            .finish()
    }
}

fn bytes_of(d: &Dict, key: &[u8]) -> Vec<u8> {
    match d.get(key) {
        Some(Object::String(s)) => s.clone(),
        _ => Vec::new(),
    }
}

fn method_of(encrypt: &Dict, which: &[u8], v: i64) -> Result<Method, StampError> {
    if v < 4 {
        return Ok(Method::Rc4);
    }
    let name = encrypt.name(which).unwrap_or(b"Identity");
    if name == b"Identity" {
        return Ok(Method::Identity);
    }
    let cfm = encrypt
        .get(b"CF")
        .and_then(Object::as_dict)
        .and_then(|cf| cf.get(name))
        .and_then(Object::as_dict)
        .and_then(|f| f.name(b"CFM"))
        .unwrap_or(b"None");
    match cfm {
        b"V2" => Ok(Method::Rc4),
        b"AESV2" => Ok(Method::Aes128),
        b"AESV3" => Ok(Method::Aes256),
        b"None" => Ok(Method::Identity),
        other => Err(StampError::UnsupportedEncryption(format!(
            "crypt filter method /{}",
            String::from_utf8_lossy(other)
        ))),
    }
}

impl Crypt {
    /// Opens the handler described by `encrypt` for a file whose first `/ID`
    /// element is `id0`, trying the empty password, then `password` as user
    /// and as owner password.
    pub fn open(encrypt: &Dict, id0: &[u8], password: Option<&str>) -> Result<Self, StampError> {
        let filter = encrypt.name(b"Filter").unwrap_or(b"Standard");
        if filter != b"Standard" {
            return Err(StampError::UnsupportedEncryption(format!(
                "security handler /{} (only the standard password handler is supported)",
                String::from_utf8_lossy(filter)
            )));
        }
        let v = encrypt.int(b"V").unwrap_or(0);
        let r = encrypt.int(b"R").unwrap_or(2);
        if !(1..=5).contains(&v) || !(2..=6).contains(&r) {
            return Err(StampError::UnsupportedEncryption(format!("/V {v} /R {r}")));
        }
        let strings = method_of(encrypt, b"StrF", v)?;
        let streams = method_of(encrypt, b"StmF", v)?;
        let o = bytes_of(encrypt, b"O");
        let u = bytes_of(encrypt, b"U");
        let mut candidates: Vec<&[u8]> = vec![b""];
        if let Some(p) = password {
            candidates.push(p.as_bytes());
        }
        let key = if r >= 5 {
            let oe = bytes_of(encrypt, b"OE");
            let ue = bytes_of(encrypt, b"UE");
            if o.len() < 48 || u.len() < 48 || oe.len() < 32 || ue.len() < 32 {
                return Err(StampError::Damaged(
                    "the /Encrypt dictionary is malformed".into(),
                ));
            }
            candidates.iter().find_map(|pw| {
                let pw = &pw[..pw.len().min(127)];
                aes256_key(r, pw, &o, &u, &oe, &ue)
            })
        } else {
            let p = encrypt.int(b"P").unwrap_or(0) as i32;
            let bits = if v == 1 {
                40
            } else {
                encrypt.int(b"Length").unwrap_or(40)
            };
            let len = usize::try_from(bits / 8).unwrap_or(5).clamp(5, 16);
            let encrypt_metadata =
                !matches!(encrypt.get(b"EncryptMetadata"), Some(Object::Bool(false)));
            if o.len() < 32 || u.len() < 16 {
                return Err(StampError::Damaged(
                    "the /Encrypt dictionary is malformed".into(),
                ));
            }
            let params = LegacyParams {
                r,
                len,
                o: &o,
                u: &u,
                p,
                id0,
                encrypt_metadata,
            };
            candidates
                .iter()
                .find_map(|pw| params.user_key(pw).or_else(|| params.owner_key(pw)))
        };
        match key {
            Some(key) => Ok(Self {
                key,
                strings,
                streams,
            }),
            None if password.is_some() => Err(StampError::PasswordProtected(
                "the password given is not the document's user or owner password".into(),
            )),
            None => Err(StampError::PasswordProtected(
                "it needs a password to open (give one with --password)".into(),
            )),
        }
    }

    fn object_key(&self, r: Ref, aes: bool) -> Vec<u8> {
        let mut h = Md5::new();
        h.update(&self.key);
        h.update(&r.num.to_le_bytes()[..3]);
        h.update(r.generation.to_le_bytes());
        if aes {
            h.update(b"sAlT");
        }
        let digest = h.finalize();
        digest[..(self.key.len() + 5).min(16)].to_vec()
    }

    fn decrypt(&self, method: Method, r: Ref, data: &[u8]) -> Vec<u8> {
        match method {
            Method::Identity => data.to_vec(),
            Method::Rc4 => rc4(&self.object_key(r, false), data),
            Method::Aes128 => aes_cbc_decrypt(&self.object_key(r, true), data),
            Method::Aes256 => aes_cbc_decrypt(&self.key, data),
        }
    }

    fn encrypt(&self, method: Method, r: Ref, data: &[u8]) -> Vec<u8> {
        match method {
            Method::Identity => data.to_vec(),
            Method::Rc4 => rc4(&self.object_key(r, false), data),
            Method::Aes128 => aes_cbc_encrypt(&self.object_key(r, true), r, data),
            Method::Aes256 => aes_cbc_encrypt(&self.key, r, data),
        }
    }

    /// Decrypts a string of object `r`.
    pub fn decrypt_string(&self, r: Ref, data: &[u8]) -> Vec<u8> {
        self.decrypt(self.strings, r, data)
    }

    /// Encrypts a string for object `r`.
    pub fn encrypt_string(&self, r: Ref, data: &[u8]) -> Vec<u8> {
        self.encrypt(self.strings, r, data)
    }

    /// Decrypts the data of stream object `r`.
    pub fn decrypt_stream(&self, r: Ref, data: &[u8]) -> Vec<u8> {
        self.decrypt(self.streams, r, data)
    }

    /// Encrypts the data of stream object `r`.
    pub fn encrypt_stream(&self, r: Ref, data: &[u8]) -> Vec<u8> {
        self.encrypt(self.streams, r, data)
    }
}

struct LegacyParams<'a> {
    r: i64,
    len: usize,
    o: &'a [u8],
    u: &'a [u8],
    p: i32,
    id0: &'a [u8],
    encrypt_metadata: bool,
}

fn padded(pw: &[u8]) -> [u8; 32] {
    let mut out = PAD;
    let n = pw.len().min(32);
    out[..n].copy_from_slice(&pw[..n]);
    out[n..].copy_from_slice(&PAD[..32 - n]);
    out
}

impl LegacyParams<'_> {
    /// Algorithm 2: the file key from a user password.
    fn file_key(&self, pw: &[u8]) -> Vec<u8> {
        let mut h = Md5::new();
        h.update(padded(pw));
        h.update(&self.o[..32]);
        h.update(self.p.to_le_bytes());
        h.update(self.id0);
        if self.r >= 4 && !self.encrypt_metadata {
            h.update([0xff; 4]);
        }
        let mut key = h.finalize().to_vec();
        if self.r >= 3 {
            for _ in 0..50 {
                key = Md5::digest(&key[..self.len]).to_vec();
            }
        }
        key.truncate(if self.r == 2 { 5 } else { self.len });
        key
    }

    /// Algorithms 4/5/6: the key if `pw` is the user password.
    fn user_key(&self, pw: &[u8]) -> Option<Vec<u8>> {
        let key = self.file_key(pw);
        let ok = if self.r == 2 {
            rc4(&key, &PAD) == self.u[..32.min(self.u.len())]
        } else {
            let mut h = Md5::new();
            h.update(PAD);
            h.update(self.id0);
            let mut x = h.finalize().to_vec();
            for i in 0..20u8 {
                let k: Vec<u8> = key.iter().map(|b| b ^ i).collect();
                x = rc4(&k, &x);
            }
            x[..16] == self.u[..16]
        };
        ok.then_some(key)
    }

    /// Algorithm 7: the key if `pw` is the owner password.
    fn owner_key(&self, pw: &[u8]) -> Option<Vec<u8>> {
        let mut k = Md5::digest(padded(pw)).to_vec();
        if self.r >= 3 {
            for _ in 0..50 {
                k = Md5::digest(&k).to_vec();
            }
        }
        k.truncate(if self.r == 2 { 5 } else { self.len });
        let mut user = self.o[..32].to_vec();
        if self.r == 2 {
            user = rc4(&k, &user);
        } else {
            for i in (0..20u8).rev() {
                let ki: Vec<u8> = k.iter().map(|b| b ^ i).collect();
                user = rc4(&ki, &user);
            }
        }
        self.user_key(&user)
    }
}

/// Revision 5/6 (AES-256): validates `pw` as user then owner password and
/// unwraps the file key.
fn aes256_key(r: i64, pw: &[u8], o: &[u8], u: &[u8], oe: &[u8], ue: &[u8]) -> Option<Vec<u8>> {
    let hash = |input: &[u8], salt: &[u8], udata: &[u8]| -> Vec<u8> {
        if r == 5 {
            let mut h = Sha256::new();
            h.update(input);
            h.update(salt);
            h.update(udata);
            h.finalize().to_vec()
        } else {
            hash_2b(input, salt, udata)
        }
    };
    let unwrap = |k: &[u8], wrapped: &[u8]| -> Option<Vec<u8>> {
        let mut buf = wrapped[..32].to_vec();
        let dec = cbc::Decryptor::<aes::Aes256>::new_from_slices(k, &[0u8; 16]).ok()?;
        dec.decrypt_padded_mut::<NoPadding>(&mut buf).ok()?;
        Some(buf)
    };
    if hash(pw, &u[32..40], &[])[..32] == u[..32] {
        let k = hash(pw, &u[40..48], &[]);
        return unwrap(&k, ue);
    }
    if hash(pw, &o[32..40], &u[..48])[..32] == o[..32] {
        let k = hash(pw, &o[40..48], &u[..48]);
        return unwrap(&k, oe);
    }
    None
}

/// Algorithm 2.B of ISO 32000-2 (revision 6 password hash).
fn hash_2b(pw: &[u8], salt: &[u8], udata: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(pw);
    h.update(salt);
    h.update(udata);
    let mut k = h.finalize().to_vec();
    let mut round = 0u32;
    loop {
        let mut k1 = Vec::with_capacity(64 * (pw.len() + k.len() + udata.len()));
        for _ in 0..64 {
            k1.extend_from_slice(pw);
            k1.extend_from_slice(&k);
            k1.extend_from_slice(udata);
        }
        let Ok(enc) = cbc::Encryptor::<aes::Aes128>::new_from_slices(&k[..16], &k[16..32]) else {
            return k;
        };
        let len = k1.len();
        let Ok(e) = enc.encrypt_padded_mut::<NoPadding>(&mut k1, len) else {
            return k;
        };
        let e = e.to_vec();
        let sum: u32 = e[..16].iter().map(|&b| u32::from(b)).sum();
        k = match sum % 3 {
            0 => Sha256::digest(&e).to_vec(),
            1 => Sha384::digest(&e).to_vec(),
            _ => Sha512::digest(&e).to_vec(),
        };
        round += 1;
        if round >= 64 && u32::from(*e.last().unwrap_or(&0)) <= round - 32 {
            break;
        }
    }
    k.truncate(32);
    k
}

/// RC4 (ARCFOUR), symmetric.
fn rc4(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut s: [u8; 256] = std::array::from_fn(|i| i as u8);
    let mut j: u8 = 0;
    if !key.is_empty() {
        for i in 0..256 {
            j = j.wrapping_add(s[i]).wrapping_add(key[i % key.len()]);
            s.swap(i, j as usize);
        }
    }
    let (mut i, mut j) = (0u8, 0u8);
    data.iter()
        .map(|&b| {
            i = i.wrapping_add(1);
            j = j.wrapping_add(s[i as usize]);
            s.swap(i as usize, j as usize);
            b ^ s[s[i as usize].wrapping_add(s[j as usize]) as usize]
        })
        .collect()
}

/// AES-CBC with the IV in the first 16 bytes and PKCS#7 padding (§7.6.2).
/// Malformed data (not block-aligned, bad padding) decrypts leniently.
fn aes_cbc_decrypt(key: &[u8], data: &[u8]) -> Vec<u8> {
    if data.len() < 32 {
        return Vec::new();
    }
    let (iv, body) = data.split_at(16);
    let mut buf = body[..body.len() / 16 * 16].to_vec();
    let ok = match key.len() {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .ok()
            .and_then(|d| d.decrypt_padded_mut::<NoPadding>(&mut buf).ok().map(|_| ())),
        _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .ok()
            .and_then(|d| d.decrypt_padded_mut::<NoPadding>(&mut buf).ok().map(|_| ())),
    };
    if ok.is_none() {
        return Vec::new();
    }
    if let Some(&pad) = buf.last()
        && (1..=16).contains(&pad)
        && buf.len() >= pad as usize
    {
        buf.truncate(buf.len() - pad as usize);
    }
    buf
}

/// AES-CBC encryption with a deterministic IV derived from the key, the
/// object and the data, so the same input always gives the same output.
fn aes_cbc_encrypt(key: &[u8], r: Ref, data: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(key);
    h.update(r.num.to_le_bytes());
    h.update(r.generation.to_le_bytes());
    h.update(data);
    let iv: [u8; 16] = h.finalize()[..16].try_into().unwrap_or([0; 16]);
    let pad = 16 - data.len() % 16;
    let mut buf = Vec::with_capacity(16 + data.len() + pad);
    buf.extend_from_slice(data);
    buf.extend(std::iter::repeat_n(pad as u8, pad));
    let len = buf.len();
    let ok = match key.len() {
        16 => cbc::Encryptor::<aes::Aes128>::new_from_slices(key, &iv)
            .ok()
            .and_then(|e| {
                e.encrypt_padded_mut::<NoPadding>(&mut buf, len)
                    .ok()
                    .map(|_| ())
            }),
        _ => cbc::Encryptor::<aes::Aes256>::new_from_slices(key, &iv)
            .ok()
            .and_then(|e| {
                e.encrypt_padded_mut::<NoPadding>(&mut buf, len)
                    .ok()
                    .map(|_| ())
            }),
    };
    if ok.is_none() {
        return Vec::new();
    }
    let mut out = iv.to_vec();
    out.extend_from_slice(&buf);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rc4_known_vector() {
        // RFC 6229-style classic vector: key "Key", plaintext "Plaintext".
        assert_eq!(
            rc4(b"Key", b"Plaintext"),
            [0xBB, 0xF3, 0x16, 0xE8, 0xD9, 0x40, 0xAF, 0x0A, 0xD3]
        );
    }

    #[test]
    fn aes_round_trips_deterministically() {
        let key = [7u8; 16];
        let r = Ref::new(12, 0);
        let a = aes_cbc_encrypt(&key, r, b"hello watermark");
        assert_eq!(a, aes_cbc_encrypt(&key, r, b"hello watermark"));
        assert_eq!(aes_cbc_decrypt(&key, &a), b"hello watermark");
        let key = [9u8; 32];
        let b = aes_cbc_encrypt(&key, r, &[1u8; 32]);
        assert_eq!(b.len(), 16 + 48);
        assert_eq!(aes_cbc_decrypt(&key, &b), [1u8; 32]);
    }
}
