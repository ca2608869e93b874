//! A lexer and object parser for PDF syntax (PDF 1.7 §7.2–7.3).
//!
//! Lenient where real files are sloppy (missing whitespace, odd numbers,
//! unbalanced hex strings), strict where leniency could loop or blow up:
//! nesting depth is bounded, every step consumes input.

use std::ops::Range;

use super::object::{Dict, Object, Ref};

/// A syntax error at a byte offset of the buffer being parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    /// Where it happened.
    pub pos: usize,
    /// What was wrong.
    pub what: &'static str,
}

/// Nesting deeper than the parser's limit.
pub(crate) const TOO_DEEP: &str = "nesting too deep";

type PResult<T> = Result<T, SyntaxError>;

/// PDF whitespace (§7.2.2, table 1).
pub(crate) fn is_white(b: u8) -> bool {
    matches!(b, b'\0' | b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

/// PDF delimiters (§7.2.2, table 2).
pub(crate) fn is_delim(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

fn is_regular(b: u8) -> bool {
    !is_white(b) && !is_delim(b)
}

/// A cursor over a byte buffer that parses PDF objects.
pub(crate) struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    max_depth: u32,
}

impl<'a> Parser<'a> {
    /// A parser over `data` starting at `pos`.
    pub fn new(data: &'a [u8], pos: usize, max_depth: u32) -> Self {
        Self {
            data,
            pos: pos.min(data.len()),
            max_depth,
        }
    }

    /// The current position.
    pub fn pos(&self) -> usize {
        self.pos
    }

    fn err<T>(&self, what: &'static str) -> PResult<T> {
        Err(SyntaxError {
            pos: self.pos,
            what,
        })
    }

    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    /// Skips whitespace and comments.
    pub fn skip_ws(&mut self) {
        while let Some(b) = self.peek() {
            if is_white(b) {
                self.pos += 1;
            } else if b == b'%' {
                while let Some(c) = self.peek() {
                    if c == b'\r' || c == b'\n' {
                        break;
                    }
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    /// Reads a run of regular characters (a keyword or number) without
    /// skipping whitespace first.
    fn word(&mut self) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(is_regular) {
            self.pos += 1;
        }
        &self.data[start..self.pos]
    }

    /// Skips whitespace, then consumes `kw` if it comes next as a whole word.
    pub fn eat_keyword(&mut self, kw: &[u8]) -> bool {
        self.skip_ws();
        let rest = &self.data[self.pos..];
        if rest.starts_with(kw) && rest.get(kw.len()).is_none_or(|&b| !is_regular(b)) {
            self.pos += kw.len();
            true
        } else {
            false
        }
    }

    /// Parses an unsigned integer token, after whitespace.
    pub fn uint(&mut self) -> Option<u64> {
        self.skip_ws();
        let start = self.pos;
        let mut v: u64 = 0;
        while let Some(b @ b'0'..=b'9') = self.peek() {
            v = v.saturating_mul(10).saturating_add(u64::from(b - b'0'));
            self.pos += 1;
        }
        if self.pos == start || self.peek().is_some_and(|b| is_regular(b) && b != b'R') {
            self.pos = start;
            return None;
        }
        Some(v)
    }

    /// Parses `N G obj` and returns the reference.
    pub fn indirect_header(&mut self) -> Option<Ref> {
        let start = self.pos;
        let r = (|| {
            let num = u32::try_from(self.uint()?).ok()?;
            let generation = u16::try_from(self.uint()?).ok()?;
            self.eat_keyword(b"obj")
                .then_some(Ref::new(num, generation))
        })();
        if r.is_none() {
            self.pos = start;
        }
        r
    }

    /// Parses one object (after whitespace).
    pub fn object(&mut self) -> PResult<Object> {
        self.object_at_depth(0)
    }

    fn object_at_depth(&mut self, depth: u32) -> PResult<Object> {
        if depth > self.max_depth {
            return self.err(TOO_DEEP);
        }
        self.skip_ws();
        let Some(b) = self.peek() else {
            return self.err("unexpected end of data");
        };
        match b {
            b'/' => {
                self.pos += 1;
                Ok(Object::Name(self.name_body()))
            }
            b'<' if self.data.get(self.pos + 1) == Some(&b'<') => {
                Ok(Object::Dict(self.dict_at_depth(depth)?))
            }
            b'<' => self.hex_string().map(Object::String),
            b'(' => self.literal_string().map(Object::String),
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    match self.peek() {
                        None => return self.err("unterminated array"),
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Object::Array(items));
                        }
                        _ => items.push(self.object_at_depth(depth + 1)?),
                    }
                }
            }
            b'0'..=b'9' | b'+' | b'-' | b'.' => self.number_or_ref(),
            _ => {
                let start = self.pos;
                let w = self.word();
                match w {
                    b"true" => Ok(Object::Bool(true)),
                    b"false" => Ok(Object::Bool(false)),
                    b"null" => Ok(Object::Null),
                    _ => {
                        self.pos = start;
                        self.err("unexpected token")
                    }
                }
            }
        }
    }

    /// Parses a dictionary `<< … >>` (after whitespace).
    pub fn dict(&mut self) -> PResult<Dict> {
        self.dict_at_depth(0)
    }

    fn dict_at_depth(&mut self, depth: u32) -> PResult<Dict> {
        if depth > self.max_depth {
            return self.err(TOO_DEEP);
        }
        self.skip_ws();
        let start = self.pos;
        if !self.data[self.pos..].starts_with(b"<<") {
            return self.err("expected a dictionary");
        }
        self.pos += 2;
        let mut entries = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                None => return self.err("unterminated dictionary"),
                Some(b'>') => {
                    if self.data.get(self.pos + 1) == Some(&b'>') {
                        self.pos += 2;
                        return Ok(Dict {
                            entries,
                            span: start..self.pos,
                        });
                    }
                    return self.err("stray '>' in dictionary");
                }
                Some(b'/') => {
                    self.pos += 1;
                    let key = self.name_body();
                    self.skip_ws();
                    let vstart = self.pos;
                    // A key directly followed by '>>' or another key has no
                    // value; readers treat it as null.
                    if self.data[self.pos..].starts_with(b">>") {
                        entries.push((key, Object::Null, vstart..vstart));
                        continue;
                    }
                    let value = self.object_at_depth(depth + 1)?;
                    entries.push((key, value, vstart..self.pos));
                }
                Some(_) => {
                    // Junk where a key should be: skip one token so we make
                    // progress, as lenient readers do.
                    let before = self.pos;
                    if self.object_at_depth(depth + 1).is_err() || self.pos == before {
                        return self.err("expected a name key in dictionary");
                    }
                }
            }
        }
    }

    /// The body of a name after its `/`, with `#xx` escapes resolved.
    fn name_body(&mut self) -> Vec<u8> {
        let raw = self.word();
        if !raw.contains(&b'#') {
            return raw.to_vec();
        }
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            if raw[i] == b'#'
                && let (Some(h), Some(l)) = (
                    raw.get(i + 1).and_then(|&c| hex_val(c)),
                    raw.get(i + 2).and_then(|&c| hex_val(c)),
                )
            {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
            out.push(raw[i]);
            i += 1;
        }
        out
    }

    fn number_or_ref(&mut self) -> PResult<Object> {
        let start = self.pos;
        let tok = self.word();
        if tok.is_empty() {
            // A lone sign or dot followed by a delimiter.
            self.pos = start + 1;
            return Ok(Object::Int(0));
        }
        let Some(num) = parse_number(tok) else {
            self.pos = start;
            return self.err("malformed number");
        };
        // `N G R`?
        if let Object::Int(n) = num
            && tok.iter().all(u8::is_ascii_digit)
        {
            let save = self.pos;
            self.skip_ws();
            let g = self.word();
            if !g.is_empty() && g.iter().all(u8::is_ascii_digit) && self.eat_keyword(b"R") {
                let generation = parse_u64(g).and_then(|g| u16::try_from(g).ok());
                if let (Ok(num), Some(generation)) = (u32::try_from(n), generation) {
                    return Ok(Object::Ref(Ref::new(num, generation)));
                }
                return Ok(Object::Null);
            }
            self.pos = save;
        }
        Ok(num)
    }

    fn hex_string(&mut self) -> PResult<Vec<u8>> {
        self.pos += 1;
        let mut out = Vec::new();
        let mut hi: Option<u8> = None;
        loop {
            let Some(b) = self.peek() else {
                return self.err("unterminated hex string");
            };
            self.pos += 1;
            if b == b'>' {
                if let Some(h) = hi {
                    out.push(h << 4);
                }
                return Ok(out);
            }
            if let Some(v) = hex_val(b) {
                match hi.take() {
                    Some(h) => out.push(h << 4 | v),
                    None => hi = Some(v),
                }
            } else if !is_white(b) {
                return self.err("bad character in hex string");
            }
        }
    }

    fn literal_string(&mut self) -> PResult<Vec<u8>> {
        self.pos += 1;
        let mut out = Vec::new();
        let mut depth = 1u32;
        loop {
            let Some(b) = self.peek() else {
                return self.err("unterminated string");
            };
            self.pos += 1;
            match b {
                b'(' => {
                    depth += 1;
                    out.push(b);
                }
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(out);
                    }
                    out.push(b);
                }
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return self.err("unterminated string");
                    };
                    self.pos += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'\r' => {
                            if self.peek() == Some(b'\n') {
                                self.pos += 1;
                            }
                        }
                        b'\n' => {}
                        b'0'..=b'7' => {
                            let mut v = u32::from(e - b'0');
                            for _ in 0..2 {
                                match self.peek() {
                                    Some(d @ b'0'..=b'7') => {
                                        v = v * 8 + u32::from(d - b'0');
                                        self.pos += 1;
                                    }
                                    _ => break,
                                }
                            }
                            out.push((v & 0xff) as u8);
                        }
                        other => out.push(other),
                    }
                }
                b'\r' => {
                    // An end-of-line in a string is read as a single \n.
                    if self.peek() == Some(b'\n') {
                        self.pos += 1;
                    }
                    out.push(b'\n');
                }
                _ => out.push(b),
            }
        }
    }

    /// After a stream dictionary: consumes `stream` and its end-of-line and
    /// returns where the data starts, or `None` if no `stream` keyword.
    pub fn stream_start(&mut self) -> Option<usize> {
        let save = self.pos;
        if !self.eat_keyword(b"stream") {
            self.pos = save;
            return None;
        }
        // §7.3.8.1: CRLF or LF; tolerate a lone CR.
        match self.peek() {
            Some(b'\r') => {
                self.pos += 1;
                if self.peek() == Some(b'\n') {
                    self.pos += 1;
                }
            }
            Some(b'\n') => self.pos += 1,
            _ => {}
        }
        Some(self.pos)
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn parse_u64(tok: &[u8]) -> Option<u64> {
    if tok.is_empty() || tok.len() > 19 {
        return None;
    }
    tok.iter().try_fold(0u64, |v, &b| {
        b.is_ascii_digit().then(|| v * 10 + u64::from(b - b'0'))
    })
}

/// Parses an integer or real token leniently (`+5`, `-.5`, `4.`, `--3`).
pub(crate) fn parse_number(tok: &[u8]) -> Option<Object> {
    let mut t = tok;
    let mut neg = false;
    while let Some((&c, rest)) = t.split_first() {
        match c {
            b'-' => neg = !neg,
            b'+' => {}
            _ => break,
        }
        t = rest;
    }
    if t.is_empty() || !t.iter().all(|&b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    if !t.contains(&b'.') {
        let v = if t.len() > 18 {
            i64::MAX
        } else {
            t.iter().fold(0i64, |v, &b| v * 10 + i64::from(b - b'0'))
        };
        return Some(Object::Int(if neg { -v } else { v }));
    }
    // Only the first dot counts; ignore anything after a second one.
    let mut parts = t.split(|&b| b == b'.');
    let int = parts.next().unwrap_or_default();
    let frac = parts.next().unwrap_or_default();
    let mut v = 0f64;
    for &b in int.iter().take(40) {
        v = v * 10.0 + f64::from(b - b'0');
    }
    let mut scale = 0.1;
    for &b in frac.iter().take(20) {
        v += f64::from(b - b'0') * scale;
        scale /= 10.0;
    }
    Some(Object::Real(if neg { -v } else { v }))
}

/// Finds `needle` in `hay[range]`, returning an absolute position.
pub(crate) fn find(hay: &[u8], range: Range<usize>, needle: &[u8]) -> Option<usize> {
    let end = range.end.min(hay.len());
    let start = range.start.min(end);
    hay[start..end]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + start)
}

/// Finds the last `needle` in `hay[range]`.
pub(crate) fn rfind(hay: &[u8], range: Range<usize>, needle: &[u8]) -> Option<usize> {
    let end = range.end.min(hay.len());
    let start = range.start.min(end);
    hay[start..end]
        .windows(needle.len())
        .rposition(|w| w == needle)
        .map(|p| p + start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Object {
        Parser::new(s.as_bytes(), 0, 32).object().unwrap()
    }

    #[test]
    fn parses_scalars_and_refs() {
        assert_eq!(parse("42"), Object::Int(42));
        assert_eq!(parse("-.5"), Object::Real(-0.5));
        assert_eq!(parse("4."), Object::Real(4.0));
        assert_eq!(parse("12 0 R"), Object::Ref(Ref::new(12, 0)));
        assert_eq!(parse("/A#20B"), Object::Name(b"A B".to_vec()));
        assert_eq!(
            parse("(a\\(b\\)\\101\\\nc)"),
            Object::String(b"a(b)Ac".to_vec())
        );
        assert_eq!(parse("<41 4>"), Object::String(vec![0x41, 0x40]));
        assert_eq!(parse("null"), Object::Null);
    }

    #[test]
    fn dict_spans_point_at_values() {
        let src = b"<< /Type /Page /Kids [1 0 R 2 0 R] /X<</Y 1>>/Z>>";
        let d = Parser::new(src, 0, 32).dict().unwrap();
        assert_eq!(d.name(b"Type"), Some(&b"Page"[..]));
        let span = d.span_of(b"Kids").unwrap();
        assert_eq!(&src[span], b"[1 0 R 2 0 R]");
        assert_eq!(&src[d.span_of(b"X").unwrap()], b"<</Y 1>>");
        assert_eq!(d.get(b"Z"), Some(&Object::Null));
        assert_eq!(d.span, 0..src.len());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let src = "[".repeat(100_000);
        let err = Parser::new(src.as_bytes(), 0, 64).object().unwrap_err();
        assert_eq!(err.what, TOO_DEEP);
    }

    #[test]
    fn truncated_input_is_an_error() {
        for s in ["<< /A (abc", "[1 2", "<41", "<< /A"] {
            assert!(Parser::new(s.as_bytes(), 0, 32).object().is_err(), "{s}");
        }
    }

    #[test]
    fn indirect_header() {
        let mut p = Parser::new(b"  7 0 obj << >>", 0, 8);
        assert_eq!(p.indirect_header(), Some(Ref::new(7, 0)));
        let mut p = Parser::new(b"7 0 R", 0, 8);
        assert_eq!(p.indirect_header(), None);
        assert_eq!(p.pos(), 0);
    }
}
