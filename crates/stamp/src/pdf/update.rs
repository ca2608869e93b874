//! Writing the incremental update (PDF 1.7 §7.5.6): the new and replaced
//! objects, packed into an object stream when the file already uses
//! cross-reference streams, then a cross-reference section and trailer that
//! chain to the original with `/Prev`.
//!
//! A file whose xref had to be repaired gets a complete cross-reference
//! section instead (every object, no `/Prev`), so readers never touch the
//! broken one.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;

use md5::{Digest, Md5};

use super::doc::{Document, Entry, XrefKind};
use super::object::{Object, Ref};
use super::parse::Parser;
use super::write::{Body, Buf, NewObject, push_hex_string, push_object};

/// Most objects per object stream we write.
const OBJSTM_CHUNK: usize = 4000;

/// Serializes `objects` as an update to `doc`. Bodies carry plaintext
/// strings; this encrypts them (and stream data) when the document is
/// encrypted.
pub(crate) fn write_update(doc: &Document<'_>, objects: Vec<NewObject>) -> Vec<u8> {
    let data = doc.data();
    let base = data.len();
    let mut out = Vec::with_capacity(64 * 1024);
    if !matches!(data.last(), Some(b'\n' | b'\r')) {
        out.push(b'\n');
    }
    let existing = if doc.repaired() {
        doc.all_entries()
    } else {
        Vec::new()
    };
    let use_stream = doc.kind == XrefKind::Stream
        || existing
            .iter()
            .any(|(_, e)| matches!(e, Entry::InStream { .. }));
    let crypt = doc.crypt();

    let mut next_id = objects
        .iter()
        .map(|o| o.id.saturating_add(1))
        .max()
        .unwrap_or(0)
        .max(doc.size());
    let mut xref: BTreeMap<u32, Entry> = BTreeMap::new();
    let mut packed: Vec<(u32, Vec<u8>)> = Vec::new();

    let emit_standalone = |out: &mut Vec<u8>, xref: &mut BTreeMap<u32, Entry>, o: &NewObject| {
        let r = Ref::new(o.id, o.generation);
        xref.insert(
            o.id,
            Entry::InFile {
                offset: base + out.len(),
                generation: o.generation,
            },
        );
        let _ = writeln!(Buf(out), "{} {} obj", o.id, o.generation);
        match &o.body {
            Body::Direct(bytes) => match crypt {
                Some(c) if !doc.is_encrypt_dict(r) => {
                    out.extend_from_slice(&reencode(bytes, &mut |s| c.encrypt_string(r, s)))
                }
                _ => out.extend_from_slice(bytes),
            },
            Body::Stream {
                dict,
                data,
                compress,
            } => {
                let encoded = if *compress {
                    deflate(data)
                } else {
                    data.clone()
                };
                let encoded = match crypt {
                    Some(c) => c.encrypt_stream(r, &encoded),
                    None => encoded,
                };
                let dict = match crypt {
                    Some(c) => reencode(dict, &mut |s| c.encrypt_string(r, s)),
                    None => dict.clone(),
                };
                push_stream(out, &dict, &encoded, *compress);
            }
        }
        out.extend_from_slice(b"\nendobj\n");
    };

    for o in &objects {
        match &o.body {
            Body::Direct(bytes)
                if use_stream && o.generation == 0 && !doc.is_encrypt_dict(Ref::new(o.id, 0)) =>
            {
                packed.push((o.id, bytes.clone()));
            }
            _ => emit_standalone(&mut out, &mut xref, o),
        }
    }
    for chunk in packed.chunks(OBJSTM_CHUNK) {
        let stm_id = next_id;
        next_id += 1;
        let mut header = Vec::new();
        let mut body = Vec::new();
        for (i, (id, bytes)) in chunk.iter().enumerate() {
            let _ = write!(Buf(&mut header), "{} {} ", id, body.len());
            body.extend_from_slice(bytes);
            body.push(b'\n');
            xref.insert(
                *id,
                Entry::InStream {
                    stream: stm_id,
                    index: u32::try_from(i).unwrap_or(0),
                },
            );
        }
        let mut dict = Vec::new();
        let _ = write!(
            Buf(&mut dict),
            "<</Type/ObjStm/N {}/First {}>>",
            chunk.len(),
            header.len()
        );
        header.extend_from_slice(&body);
        emit_standalone(
            &mut out,
            &mut xref,
            &NewObject::stream(stm_id, dict, header, true),
        );
    }

    // Second /ID element: a digest of this update, so it is deterministic.
    let id = match doc.trailer.get(b"ID").and_then(Object::as_array) {
        Some([Object::String(first), ..]) => {
            let mut ids = Vec::new();
            ids.push(b'[');
            push_hex_string(&mut ids, first);
            push_hex_string(&mut ids, &Md5::digest(&out));
            ids.push(b']');
            Some(ids)
        }
        _ => None,
    };
    let mut trailer_entries = Vec::new();
    for key in [&b"Root"[..], b"Info", b"Encrypt"] {
        if let Some(v) = doc.trailer.get(key)
            && *v != Object::Null
        {
            trailer_entries.push(b'/');
            trailer_entries.extend_from_slice(key);
            trailer_entries.push(b' ');
            push_object(&mut trailer_entries, v, &mut |s| s.to_vec());
        }
    }
    if let Some(ids) = id {
        trailer_entries.extend_from_slice(b"/ID");
        trailer_entries.extend_from_slice(&ids);
    }
    if !doc.repaired() {
        let _ = write!(Buf(&mut trailer_entries), "/Prev {}", doc.startxref);
    }
    let mut all: BTreeMap<u32, Entry> = existing.into_iter().collect();
    all.extend(xref);

    let xref_offset = base + out.len();
    if use_stream {
        let xref_id = next_id;
        next_id += 1;
        all.insert(
            xref_id,
            Entry::InFile {
                offset: xref_offset,
                generation: 0,
            },
        );
        let size = next_id.max(doc.size());
        // The middle field holds offsets and object stream numbers alike.
        let widest = all
            .values()
            .map(|e| match *e {
                Entry::InFile { offset, .. } => offset as u64,
                Entry::InStream { stream, .. } => u64::from(stream),
                Entry::Free => 0,
            })
            .max()
            .unwrap_or(0)
            .max(xref_offset as u64);
        let w2 = bytes_needed(widest).max(1);
        let mut rows = Vec::new();
        let mut index = Vec::new();
        if doc.repaired() {
            // A complete section starts with the free head of the list.
            rows.extend(std::iter::repeat_n(0u8, 1 + w2 + 2));
            rows[1 + w2] = 0xff;
            rows[2 + w2] = 0xff;
            index.push((0u32, 1u32));
        }
        for (&num, e) in &all {
            if num == 0 {
                continue;
            }
            let (t, f2, f3): (u8, u64, u16) = match *e {
                Entry::InFile { offset, generation } => (1, offset as u64, generation),
                Entry::InStream { stream, index } => {
                    (2, u64::from(stream), u16::try_from(index).unwrap_or(0))
                }
                Entry::Free => (0, 0, 0),
            };
            rows.push(t);
            rows.extend_from_slice(&f2.to_be_bytes()[8 - w2..]);
            rows.extend_from_slice(&f3.to_be_bytes());
            match index.last_mut() {
                Some((start, count)) if *start + *count == num => *count += 1,
                _ => index.push((num, 1)),
            }
        }
        let mut dict = Vec::new();
        let row_len = 1 + w2 + 2;
        let _ = write!(
            Buf(&mut dict),
            "<</Type/XRef/Size {size}/W[1 {w2} 2]/DecodeParms<</Columns {row_len}/Predictor 12>>/Index["
        );
        for (i, (s, c)) in index.iter().enumerate() {
            let _ = write!(Buf(&mut dict), "{}{s} {c}", if i > 0 { " " } else { "" });
        }
        dict.extend_from_slice(b"]");
        dict.extend_from_slice(&trailer_entries);
        dict.extend_from_slice(b">>");
        let _ = writeln!(Buf(&mut out), "{xref_id} 0 obj");
        // Cross-reference streams are never encrypted (§7.6.1). The PNG "Up"
        // predictor turns the slowly growing offsets into mostly zeros.
        push_stream(&mut out, &dict, &deflate(&png_up(&rows, row_len)), true);
        out.extend_from_slice(b"\nendobj\n");
    } else {
        let size = next_id.max(doc.size());
        out.extend_from_slice(b"xref\n");
        let mut runs: Vec<(u32, Vec<Entry>)> = Vec::new();
        if doc.repaired() {
            runs.push((0, vec![Entry::Free]));
        }
        for (&num, e) in &all {
            if num == 0 {
                continue;
            }
            match runs.last_mut() {
                Some((start, v)) if *start + v.len() as u32 == num => v.push(*e),
                _ => runs.push((num, vec![*e])),
            }
        }
        for (start, entries) in runs {
            let _ = writeln!(Buf(&mut out), "{start} {}", entries.len());
            for e in entries {
                match e {
                    Entry::InFile { offset, generation } => {
                        let _ = write!(Buf(&mut out), "{offset:010} {generation:05} n\r\n");
                    }
                    _ => out.extend_from_slice(b"0000000000 65535 f\r\n"),
                }
            }
        }
        let _ = write!(Buf(&mut out), "trailer\n<</Size {size}");
        out.extend_from_slice(&trailer_entries);
        out.extend_from_slice(b">>\n");
    }
    let _ = write!(Buf(&mut out), "startxref\n{xref_offset}\n%%EOF\n");
    out
}

fn push_stream(out: &mut Vec<u8>, dict: &[u8], data: &[u8], compressed: bool) {
    // Insert /Length (and /Filter) before the dictionary's closing `>>`.
    let body = dict.strip_suffix(b">>").unwrap_or(dict);
    out.extend_from_slice(body);
    if compressed {
        out.extend_from_slice(b"/Filter/FlateDecode");
    }
    let _ = write!(Buf(out), "/Length {}>>\nstream\n", data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\nendstream");
}

/// Applies the PNG "Up" predictor (filter type 2) to rows of `row_len` bytes.
fn png_up(data: &[u8], row_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / row_len + 1);
    let mut prev = vec![0u8; row_len];
    for row in data.chunks(row_len) {
        out.push(2);
        for (i, &b) in row.iter().enumerate() {
            out.push(b.wrapping_sub(prev[i]));
        }
        prev[..row.len()].copy_from_slice(row);
    }
    out
}

fn bytes_needed(v: u64) -> usize {
    (8 - v.leading_zeros() as usize / 8).max(1)
}

/// Zlib-compresses `data` (deterministic: fixed level, no timestamps).
pub(crate) fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(data.len() / 2 + 64),
        flate2::Compression::new(6),
    );
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

/// Re-serializes a body with every string passed through `f`. Bodies that
/// don't parse are returned unchanged.
fn reencode(body: &[u8], f: &mut dyn FnMut(&[u8]) -> Vec<u8>) -> Vec<u8> {
    if !body.contains(&b'(') && !body.contains(&b'<') {
        return body.to_vec();
    }
    match Parser::new(body, 0, 256).object() {
        Ok(obj) => {
            let mut out = Vec::with_capacity(body.len());
            push_object(&mut out, &obj, f);
            out
        }
        Err(_) => body.to_vec(),
    }
}
