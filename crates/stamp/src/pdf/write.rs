//! Serializing new PDF objects for the appended update (PDF 1.7 §7.3, §7.5.6).
//!
//! New objects are collected as [`NewObject`]s: a body of raw PDF syntax (a
//! dictionary, array, …) or a stream. The update writer decides whether a
//! body goes into an object stream (PDF 1.5+, §7.5.7) or stands alone, and
//! encrypts strings and stream data when the document is encrypted.

use std::fmt::Write as _;

/// An object the update adds (or replaces, keeping its number).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewObject {
    /// Object number.
    pub id: u32,
    /// Generation number (0 for new objects; the old one for replaced ones).
    pub generation: u16,
    /// What the object is.
    pub body: Body,
}

/// The body of a [`NewObject`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Body {
    /// Any non-stream object, as PDF syntax (`<< … >>`, `[ … ]`, …).
    Direct(Vec<u8>),
    /// A stream: its dictionary without `/Length` and `/Filter` (the writer
    /// adds them), and its unencoded data, Flate-compressed by the writer when
    /// `compress` is set.
    Stream {
        /// The stream dictionary, `<< … >>`, without `/Length`/`/Filter`.
        dict: Vec<u8>,
        /// The decoded data.
        data: Vec<u8>,
        /// Compress with `/FlateDecode`.
        compress: bool,
    },
}

impl NewObject {
    /// A new non-stream object.
    pub fn direct(id: u32, body: impl Into<Vec<u8>>) -> Self {
        Self {
            id,
            generation: 0,
            body: Body::Direct(body.into()),
        }
    }

    /// A new stream object.
    pub fn stream(id: u32, dict: impl Into<Vec<u8>>, data: Vec<u8>, compress: bool) -> Self {
        Self {
            id,
            generation: 0,
            body: Body::Stream {
                dict: dict.into(),
                data,
                compress,
            },
        }
    }
}

/// Appends a real number in the short form PDF wants: no exponent, at most
/// four decimals, no trailing zeros (`12`, `0.2`, `-3.1416`).
pub(crate) fn push_num(out: &mut Vec<u8>, v: f32) {
    let v = if v.is_finite() { v } else { 0.0 };
    // Integer arithmetic on ten-thousandths: exact, and far cheaper than
    // float formatting (this runs several times per page).
    let scaled = (f64::from(v) * 10_000.0).round();
    if scaled.abs() >= 9e18 {
        let _ = write!(Buf(out), "{}", v as i64);
        return;
    }
    let scaled = scaled as i64;
    if scaled < 0 {
        out.push(b'-');
    }
    let abs = scaled.unsigned_abs();
    let _ = write!(Buf(out), "{}", abs / 10_000);
    let mut frac = abs % 10_000;
    if frac != 0 {
        out.push(b'.');
        let mut digits = 4;
        while frac.is_multiple_of(10) {
            frac /= 10;
            digits -= 1;
        }
        let _ = write!(Buf(out), "{frac:0digits$}");
    }
}

/// A real number as a string, see [`push_num`].
#[cfg(test)]
pub(crate) fn num(v: f32) -> String {
    let mut out = Vec::new();
    push_num(&mut out, v);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends a name object (`/Name`), escaping bytes outside the regular
/// characters as `#xx` (§7.3.5).
pub(crate) fn push_name(out: &mut Vec<u8>, name: &[u8]) {
    out.push(b'/');
    for &b in name {
        let regular = b.is_ascii_graphic() && !b"()<>[]{}/%#".contains(&b);
        if regular {
            out.push(b);
        } else {
            let _ = write!(Buf(out), "#{b:02X}");
        }
    }
}

/// Appends a byte string as a hexadecimal string (`<…>`, §7.3.4.3).
pub(crate) fn push_hex_string(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push(b'<');
    for &b in bytes {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 15) as usize]);
    }
    out.push(b'>');
}

/// Appends a literal string (`(…)`, §7.3.4.2), escaping what must be escaped.
pub(crate) fn push_literal_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'(');
    for &b in bytes {
        match b {
            b'(' | b')' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
    out.push(b')');
}

/// Lets `write!` append to a `Vec<u8>` without an allocation per call.
pub(crate) struct Buf<'a>(pub &'a mut Vec<u8>);

impl std::fmt::Write for Buf<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Serializes `obj` as PDF syntax, passing every string through `string`
/// (which encrypts or decrypts it, or returns it unchanged).
pub(crate) fn push_object(
    out: &mut Vec<u8>,
    obj: &super::object::Object,
    string: &mut dyn FnMut(&[u8]) -> Vec<u8>,
) {
    use super::object::Object;
    match obj {
        Object::Null => out.extend_from_slice(b"null"),
        Object::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Object::Int(i) => {
            let _ = write!(Buf(out), "{i}");
        }
        Object::Real(r) => {
            let r = if r.is_finite() { *r } else { 0.0 };
            let s = format!("{r:.6}");
            let s = s.trim_end_matches('0').trim_end_matches('.');
            out.extend_from_slice(if s == "-0" || s.is_empty() {
                b"0"
            } else {
                s.as_bytes()
            });
        }
        Object::Name(n) => push_name(out, n),
        Object::String(s) => push_hex_string(out, &string(s)),
        Object::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                push_object(out, item, string);
            }
            out.push(b']');
        }
        Object::Dict(d) => {
            out.extend_from_slice(b"<<");
            for (k, v, _) in &d.entries {
                push_name(out, k);
                out.push(b' ');
                push_object(out, v, string);
            }
            out.extend_from_slice(b">>");
        }
        Object::Ref(r) => {
            let _ = write!(Buf(out), "{} {} R", r.num, r.generation);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short() {
        assert_eq!(num(12.0), "12");
        assert_eq!(num(0.2), "0.2");
        assert_eq!(num(-1.23456), "-1.2346");
        assert_eq!(num(-0.00001), "0");
        assert_eq!(num(f32::NAN), "0");
    }

    #[test]
    fn names_and_strings_are_escaped() {
        let mut out = Vec::new();
        push_name(&mut out, b"A B#");
        assert_eq!(out, b"/A#20B#23");
        out.clear();
        push_literal_string(&mut out, b"a(b)\\");
        assert_eq!(out, b"(a\\(b\\)\\\\)");
        out.clear();
        push_hex_string(&mut out, &[0, 0xab]);
        assert_eq!(out, b"<00AB>");
    }
}
