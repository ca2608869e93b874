//! Decoding the stream filters the engine has to read through: object
//! streams and cross-reference streams (PDF 1.7 §7.4). Content streams and
//! images are never decoded — they are copied by reference.
//!
//! Every decoder is bounded by a byte limit, so a decompression bomb is an
//! error, not an allocation.

use std::io::Read;

use super::object::{Dict, Object};

/// Why a stream could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The decoded data would exceed the limit.
    Limit,
    /// A filter the engine doesn't implement for these streams.
    Unsupported(String),
    /// Corrupt data.
    Corrupt(&'static str),
}

/// Decodes `data` through the filters named in `dict` (`/Filter`,
/// `/DecodeParms`), producing at most `limit` bytes.
pub(crate) fn decode(dict: &Dict, data: &[u8], limit: u64) -> Result<Vec<u8>, DecodeError> {
    let filters: Vec<&[u8]> = match dict.get(b"Filter") {
        None | Some(Object::Null) => Vec::new(),
        Some(Object::Name(n)) => vec![n.as_slice()],
        Some(Object::Array(a)) => a.iter().filter_map(Object::as_name).collect(),
        Some(_) => {
            return Err(DecodeError::Unsupported(
                "a /Filter that is not a name".into(),
            ));
        }
    };
    let params: Vec<Option<&Dict>> = match dict.get(b"DecodeParms") {
        Some(Object::Dict(d)) => vec![Some(d)],
        Some(Object::Array(a)) => a.iter().map(Object::as_dict).collect(),
        _ => Vec::new(),
    };
    let mut buf = data.to_vec();
    for (i, f) in filters.iter().enumerate() {
        let p = params.get(i).copied().flatten();
        buf = match *f {
            b"FlateDecode" | b"Fl" => predict(inflate(&buf, limit)?, p, limit)?,
            b"ASCIIHexDecode" | b"AHx" => ascii_hex(&buf),
            b"ASCII85Decode" | b"A85" => ascii85(&buf)?,
            b"Crypt" => buf,
            other => {
                return Err(DecodeError::Unsupported(format!(
                    "/{} on an object or xref stream",
                    String::from_utf8_lossy(other)
                )));
            }
        };
        if buf.len() as u64 > limit {
            return Err(DecodeError::Limit);
        }
    }
    Ok(buf)
}

/// zlib inflate (tolerating a missing or corrupt checksum and trailing junk,
/// as readers do), bounded by `limit`.
fn inflate(data: &[u8], limit: u64) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    let mut z = flate2::read::ZlibDecoder::new(data).take(limit + 1);
    match z.read_to_end(&mut out) {
        Ok(_) => {}
        // Keep what decoded before the damage: truncated streams are common.
        Err(_) if !out.is_empty() => {}
        Err(_) => {
            // Some writers emit raw deflate without the zlib header.
            out.clear();
            let mut d = flate2::read::DeflateDecoder::new(data).take(limit + 1);
            if d.read_to_end(&mut out).is_err() && out.is_empty() {
                return Err(DecodeError::Corrupt("corrupt Flate data"));
            }
        }
    }
    if out.len() as u64 > limit {
        return Err(DecodeError::Limit);
    }
    Ok(out)
}

/// Undoes a PNG or TIFF predictor (§7.4.4.4).
fn predict(data: Vec<u8>, params: Option<&Dict>, limit: u64) -> Result<Vec<u8>, DecodeError> {
    let Some(p) = params else { return Ok(data) };
    let predictor = p.int(b"Predictor").unwrap_or(1);
    if predictor <= 1 {
        return Ok(data);
    }
    let colors = p.int(b"Colors").unwrap_or(1).clamp(1, 32) as usize;
    let bpc = p.int(b"BitsPerComponent").unwrap_or(8).clamp(1, 16) as usize;
    let columns = p.int(b"Columns").unwrap_or(1).clamp(1, 1 << 20) as usize;
    let bpp = (colors * bpc).div_ceil(8).max(1);
    let row = (colors * bpc * columns).div_ceil(8);
    if row as u64 > limit {
        return Err(DecodeError::Limit);
    }
    if predictor == 2 {
        if bpc != 8 {
            return Err(DecodeError::Unsupported(
                "TIFF predictor with sub-byte samples".into(),
            ));
        }
        let mut out = data;
        for line in out.chunks_mut(row) {
            for i in bpp..line.len() {
                line[i] = line[i].wrapping_add(line[i - bpp]);
            }
        }
        return Ok(out);
    }
    // PNG: each row starts with a filter-type byte; rows are decoded in
    // place in the output, each against the one before it.
    let mut out = Vec::with_capacity(data.len());
    let mut prev_start: Option<usize> = None;
    for chunk in data.chunks(row + 1) {
        let Some((&ty, src)) = chunk.split_first() else {
            break;
        };
        let start = out.len();
        out.extend_from_slice(src);
        for i in 0..src.len() {
            let a = if i >= bpp { out[start + i - bpp] } else { 0 };
            let b = prev_start.map_or(0, |p| out[p + i]);
            let c = if i >= bpp {
                prev_start.map_or(0, |p| out[p + i - bpp])
            } else {
                0
            };
            let x = out[start + i];
            out[start + i] = match ty {
                0 => x,
                1 => x.wrapping_add(a),
                2 => x.wrapping_add(b),
                3 => x.wrapping_add(((u16::from(a) + u16::from(b)) / 2) as u8),
                4 => x.wrapping_add(paeth(a, b, c)),
                _ => return Err(DecodeError::Corrupt("bad PNG predictor row type")),
            };
        }
        // A short last row is padded with zeros for the next (there is none).
        prev_start = (src.len() == row).then_some(start);
    }
    Ok(out)
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = i16::from(a) + i16::from(b) - i16::from(c);
    let (pa, pb, pc) = (
        (p - i16::from(a)).abs(),
        (p - i16::from(b)).abs(),
        (p - i16::from(c)).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

fn ascii_hex(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 2);
    let mut hi: Option<u8> = None;
    for &b in data {
        if b == b'>' {
            break;
        }
        let v = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => continue,
        };
        match hi.take() {
            Some(h) => out.push(h << 4 | v),
            None => hi = Some(v),
        }
    }
    if let Some(h) = hi {
        out.push(h << 4);
    }
    out
}

fn ascii85(data: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity(data.len() * 4 / 5);
    let mut group = [0u8; 5];
    let mut n = 0;
    let body = data.strip_prefix(b"<~").unwrap_or(data);
    for &b in body {
        match b {
            b'~' => break,
            b'z' if n == 0 => out.extend_from_slice(&[0; 4]),
            b'!'..=b'u' => {
                group[n] = b - b'!';
                n += 1;
                if n == 5 {
                    let v = group.iter().fold(0u64, |v, &d| v * 85 + u64::from(d));
                    let v =
                        u32::try_from(v).map_err(|_| DecodeError::Corrupt("bad ASCII85 group"))?;
                    out.extend_from_slice(&v.to_be_bytes());
                    n = 0;
                }
            }
            _ if super::parse::is_white(b) => {}
            _ => return Err(DecodeError::Corrupt("bad ASCII85 character")),
        }
    }
    if n > 1 {
        for g in group.iter_mut().skip(n) {
            *g = 84;
        }
        let v = group.iter().fold(0u64, |v, &d| v * 85 + u64::from(d));
        let v = u32::try_from(v).unwrap_or(u32::MAX);
        out.extend_from_slice(&v.to_be_bytes()[..n - 1]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdf::parse::Parser;
    use std::io::Write;

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn flate_with_png_up_predictor() {
        // Two rows of 3 columns, PNG "Up" (type 2).
        let raw = [2u8, 1, 2, 3, 2, 1, 1, 1];
        let dict = Parser::new(
            b"<< /Filter /FlateDecode /DecodeParms << /Predictor 12 /Columns 3 >> >>",
            0,
            8,
        )
        .dict()
        .unwrap();
        assert_eq!(
            decode(&dict, &zlib(&raw), 1000).unwrap(),
            [1, 2, 3, 2, 3, 4]
        );
    }

    #[test]
    fn bombs_hit_the_limit() {
        let dict = Parser::new(b"<< /Filter /FlateDecode >>", 0, 8)
            .dict()
            .unwrap();
        let bomb = zlib(&vec![0u8; 10 << 20]);
        assert_eq!(decode(&dict, &bomb, 1 << 20), Err(DecodeError::Limit));
    }

    #[test]
    fn ascii85_decodes() {
        assert_eq!(ascii85(b"87cURD]j7BEbo7~>").unwrap(), b"Hello world");
        assert_eq!(ascii85(b"<~z~>").unwrap(), [0; 4]);
    }
}
