//! A lazily read PDF document: the cross-reference data and trailer, and
//! objects parsed only when asked for (PDF 1.7 §7.5).
//!
//! Opening reads the xref chain from `startxref` (tables, xref streams and
//! hybrids, following `/Prev`). Objects are parsed on demand; object streams
//! are decoded once and cached. When the xref is missing or wrong — an
//! offset that does not point at `N G obj` — the whole file is scanned for
//! objects once ("repair") and the document is marked repaired, which makes
//! the update carry a complete cross-reference section of its own.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::rc::Rc;

use super::crypt::Crypt;
use super::filter::{self, DecodeError};
use super::object::{Dict, Object, Ref};
use super::parse::{self, Parser, SyntaxError};
use crate::error::StampError;
use crate::stamp::Limits;

/// Where the xref says an object lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    /// Free (deleted).
    Free,
    /// At a byte offset of the file.
    InFile {
        /// Offset of `N G obj`.
        offset: usize,
        /// Generation number.
        generation: u16,
    },
    /// Inside an object stream (§7.5.7).
    InStream {
        /// The object stream's number.
        stream: u32,
        /// Index within it.
        index: u32,
    },
}

/// Which kind of cross-reference section the newest update used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum XrefKind {
    /// A classic `xref` table (possibly hybrid with `/XRefStm`).
    Table,
    /// A cross-reference stream (PDF 1.5+).
    Stream,
}

/// The buffer an object was parsed from, for copying raw bytes.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// The file itself.
    File,
    /// The decoded data of object stream `num` (strings there are not
    /// encrypted individually).
    ObjStm(Rc<Vec<u8>>),
}

/// An object as loaded, with where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    /// The object (for a stream: its dictionary).
    pub obj: Object,
    /// For a stream: where its (encoded) data starts in the file. The end is
    /// found only when the data is needed ([`Document::stream_range`]): a
    /// wrong `/Length` means a search, which must not happen for every
    /// stream that is merely looked at.
    pub stream_start: Option<usize>,
    /// The buffer the object's spans refer to.
    pub source: Source,
}

struct ObjStm {
    data: Rc<Vec<u8>>,
    /// `(object number, offset in data)` per index.
    index: Vec<(u32, usize)>,
}

/// An open document.
pub(crate) struct Document<'a> {
    data: &'a [u8],
    entries: HashMap<u32, Entry>,
    /// Where each object read from the file really was: the xref's offset,
    /// or a scanned one when the xref was wrong. A repaired update's xref
    /// lists exactly these, so it points at what the engine read.
    located: RefCell<HashMap<u32, (usize, u16)>>,
    /// The highest object number any loaded object refers to: new objects
    /// are numbered above it, so a damaged file's dangling references never
    /// land on them.
    max_ref: Cell<u32>,
    /// The newest trailer, with missing keys filled from older ones.
    pub trailer: Dict,
    /// Kind of the newest xref section.
    pub kind: XrefKind,
    /// Offset of the newest xref section, for the update's `/Prev`.
    pub startxref: usize,
    repaired: Cell<bool>,
    scan: OnceCell<Scan>,
    objstms: RefCell<HashMap<u32, Rc<ObjStm>>>,
    crypt: Option<Crypt>,
    /// Bytes all decoded streams may still produce together (a chain of
    /// many xref streams must not add up to a bomb either).
    decode_budget: Cell<u64>,
    /// The `/Encrypt` dictionary's own reference (never encrypted).
    encrypt_ref: Option<Ref>,
    limits: Limits,
}

/// What a full scan of the file found.
#[derive(Default)]
struct Scan {
    /// Every `N G obj` found, in file order, per object number.
    objects: HashMap<u32, Vec<(usize, u16)>>,
    trailer: Option<Dict>,
}

/// The largest object number Peedy accepts (the PDF implementation limit
/// readers use); larger ones are damage.
pub(crate) const MAX_OBJECT_NUMBER: u32 = 8_388_607;

fn damaged(what: impl Into<String>) -> StampError {
    StampError::Damaged(what.into())
}

impl<'a> Document<'a> {
    /// Opens `data`: reads the xref chain (or repairs), then the security
    /// handler if the file is encrypted.
    pub fn open(
        data: &'a [u8],
        password: Option<&str>,
        limits: &Limits,
    ) -> Result<Self, StampError> {
        if data.len() as u64 > limits.max_input_bytes {
            return Err(StampError::TooLarge {
                size: data.len() as u64,
                limit: limits.max_input_bytes,
            });
        }
        let head = &data[..data.len().min(1024)];
        if parse::find(head, 0..head.len(), b"%PDF-").is_none() {
            let what = if data.is_empty() {
                "the file is empty"
            } else {
                "it does not start with %PDF-"
            };
            return Err(StampError::NotAPdf(what.into()));
        }
        let mut doc = Document {
            data,
            entries: HashMap::new(),
            located: RefCell::new(HashMap::new()),
            max_ref: Cell::new(0),
            trailer: Dict::default(),
            kind: XrefKind::Table,
            startxref: 0,
            repaired: Cell::new(false),
            scan: OnceCell::new(),
            objstms: RefCell::new(HashMap::new()),
            crypt: None,
            decode_budget: Cell::new(limits.max_decoded_bytes.saturating_mul(4)),
            encrypt_ref: None,
            limits: limits.clone(),
        };
        if doc.read_xref_chain().is_err() || !doc.trailer.has(b"Root") || !doc.root_is_catalog() {
            doc.repair_from_scan()?;
        }
        doc.open_security(password)?;
        Ok(doc)
    }

    /// The whole input.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Whether the xref had to be rebuilt by scanning.
    pub fn repaired(&self) -> bool {
        self.repaired.get()
    }

    /// Switches to the scanned object index (used when the page tree turns
    /// out to be unusable, so every object of the file can be looked at).
    pub fn force_repair(&self) {
        let _ = self.scan();
        self.repaired.set(true);
    }

    /// The security handler, if the document is encrypted.
    pub fn crypt(&self) -> Option<&Crypt> {
        self.crypt.as_ref()
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// One past the highest object number in use or referred to, capped at
    /// the PDF implementation limit (new objects are numbered from here).
    pub fn size(&self) -> u32 {
        let trailer_size = self
            .trailer
            .int(b"Size")
            .and_then(|s| u32::try_from(s).ok())
            .unwrap_or(0)
            .min(MAX_OBJECT_NUMBER + 1);
        let scanned = self
            .scan
            .get()
            .and_then(|s| s.objects.keys().max().map(|m| m + 1))
            .unwrap_or(0);
        let table = self.entries.keys().max().map_or(0, |m| m + 1);
        trailer_size
            .max(scanned)
            .max(table)
            .max(self.max_ref.get() + 1)
    }

    fn root_is_catalog(&self) -> bool {
        let Some(root) = self.trailer.get(b"Root").and_then(Object::as_ref) else {
            return false;
        };
        matches!(self.get(root), Ok(Some(l)) if l.obj.as_dict().is_some())
    }

    // ---- cross-reference chain -------------------------------------------------

    fn read_xref_chain(&mut self) -> Result<(), SyntaxError> {
        let bad = |what| SyntaxError { pos: 0, what };
        let tail_start = self.data.len().saturating_sub(4096);
        let sx = parse::rfind(self.data, tail_start..self.data.len(), b"startxref")
            .ok_or(bad("no startxref"))?;
        let mut p = Parser::new(self.data, sx + 9, 8);
        let first = usize::try_from(p.uint().ok_or(bad("bad startxref"))?)
            .map_err(|_| bad("bad startxref"))?;
        self.startxref = first;
        let mut next = Some(first);
        let mut seen = HashSet::new();
        let mut newest = true;
        while let Some(off) = next.take() {
            if !seen.insert(off) || seen.len() > 4096 || off >= self.data.len() {
                if newest {
                    return Err(bad("startxref points nowhere"));
                }
                break;
            }
            let trailer = self.read_section(off, newest)?;
            for (k, v, s) in &trailer.entries {
                if !self.trailer.has(k) && *v != Object::Null {
                    self.trailer.entries.push((k.clone(), v.clone(), s.clone()));
                }
            }
            // A hybrid file's /XRefStm belongs to the same update: read it
            // right after the table, before /Prev (§7.5.8.4).
            if let Some(xs) = trailer
                .int(b"XRefStm")
                .and_then(|v| usize::try_from(v).ok())
                && seen.insert(xs)
                && xs < self.data.len()
            {
                let _ = self.read_section(xs, false);
            }
            next = trailer.int(b"Prev").and_then(|v| usize::try_from(v).ok());
            newest = false;
        }
        // The newest trailer's /Size wins; keep the larger if older is larger.
        Ok(())
    }

    fn set_entry(&mut self, num: u32, entry: Entry) {
        // An absurd object number is a damaged table (PDF readers stop at
        // 8,388,607 objects).
        if num > MAX_OBJECT_NUMBER {
            return;
        }
        // Newer sections are read first: the first entry seen wins.
        self.entries.entry(num).or_insert(entry);
    }

    /// Reads one xref section at `off`; returns its trailer dictionary.
    fn read_section(&mut self, off: usize, newest: bool) -> Result<Dict, SyntaxError> {
        let mut p = Parser::new(self.data, off, self.limits.max_depth);
        if p.eat_keyword(b"xref") {
            if newest {
                self.kind = XrefKind::Table;
            }
            loop {
                p.skip_ws();
                if p.eat_keyword(b"trailer") {
                    return p.dict();
                }
                let start = p.uint().ok_or(SyntaxError {
                    pos: p.pos(),
                    what: "bad xref subsection",
                })?;
                let count = p.uint().ok_or(SyntaxError {
                    pos: p.pos(),
                    what: "bad xref subsection",
                })?;
                for i in 0..count {
                    let (Some(a), Some(b)) = (p.uint(), p.uint()) else {
                        return Err(SyntaxError {
                            pos: p.pos(),
                            what: "bad xref entry",
                        });
                    };
                    p.skip_ws();
                    let kind = if p.eat_keyword(b"n") {
                        b'n'
                    } else if p.eat_keyword(b"f") {
                        b'f'
                    } else {
                        return Err(SyntaxError {
                            pos: p.pos(),
                            what: "bad xref entry type",
                        });
                    };
                    let Ok(num) = u32::try_from(start + i) else {
                        break;
                    };
                    let entry = match (kind, usize::try_from(a), u16::try_from(b)) {
                        (b'n', Ok(offset), Ok(generation)) if offset > 0 => {
                            Entry::InFile { offset, generation }
                        }
                        _ => Entry::Free,
                    };
                    self.set_entry(num, entry);
                }
            }
        }
        // An xref stream.
        p.indirect_header().ok_or(SyntaxError {
            pos: off,
            what: "no xref at startxref",
        })?;
        let dict = p.dict()?;
        if dict.name(b"Type") != Some(b"XRef") {
            return Err(SyntaxError {
                pos: off,
                what: "object at startxref is not an xref stream",
            });
        }
        if newest {
            self.kind = XrefKind::Stream;
        }
        let start = p.stream_start().ok_or(SyntaxError {
            pos: p.pos(),
            what: "xref stream without data",
        })?;
        let range = self.stream_range(&dict, start);
        let decoded = self
            .decode(&dict, &self.data[range])
            .map_err(|_| SyntaxError {
                pos: off,
                what: "xref stream cannot be decoded",
            })?;
        let w: Vec<usize> = dict
            .get(b"W")
            .and_then(Object::as_array)
            .map(|a| {
                a.iter()
                    .map(|v| {
                        v.as_i64()
                            .and_then(|x| usize::try_from(x).ok())
                            .unwrap_or(0)
                    })
                    .collect()
            })
            .unwrap_or_default();
        if w.len() != 3 || w.iter().any(|&x| x > 8) || w.iter().sum::<usize>() == 0 {
            return Err(SyntaxError {
                pos: off,
                what: "bad /W in xref stream",
            });
        }
        let size = dict.int(b"Size").unwrap_or(0).max(0) as u64;
        let index: Vec<u64> = match dict.get(b"Index").and_then(Object::as_array) {
            Some(a) => a
                .iter()
                .map(|v| v.as_i64().unwrap_or(0).max(0) as u64)
                .collect(),
            None => vec![0, size],
        };
        let row = w.iter().sum::<usize>();
        let mut rows = decoded.chunks_exact(row);
        let field = |bytes: &[u8]| bytes.iter().fold(0u64, |v, &b| v << 8 | u64::from(b));
        for pair in index.chunks_exact(2) {
            for i in 0..pair[1] {
                let Some(rowb) = rows.next() else { break };
                let (t, rest) = rowb.split_at(w[0]);
                let (f2, f3) = rest.split_at(w[1]);
                let ty = if w[0] == 0 { 1 } else { field(t) };
                let (f2, f3) = (field(f2), field(f3));
                let Ok(num) = u32::try_from(pair[0] + i) else {
                    break;
                };
                let entry = match ty {
                    0 => Entry::Free,
                    1 => match (usize::try_from(f2), u16::try_from(f3)) {
                        (Ok(offset), Ok(generation)) if offset > 0 => {
                            Entry::InFile { offset, generation }
                        }
                        _ => Entry::Free,
                    },
                    2 => match (u32::try_from(f2), u32::try_from(f3)) {
                        (Ok(stream), Ok(index)) => Entry::InStream { stream, index },
                        _ => Entry::Free,
                    },
                    _ => continue,
                };
                self.set_entry(num, entry);
            }
        }
        Ok(dict)
    }

    /// The data range of a stream whose data starts at `start`: `/Length`
    /// when it is direct and lands on `endstream`, else a search.
    pub fn stream_range(&self, dict: &Dict, start: usize) -> Range<usize> {
        let len = match dict.get(b"Length") {
            Some(Object::Int(n)) => usize::try_from(*n).ok(),
            Some(Object::Ref(r)) => self
                .get_shallow(*r)
                .and_then(|o| o.as_i64())
                .and_then(|n| usize::try_from(n).ok()),
            _ => None,
        };
        if let Some(len) = len
            && let Some(end) = start.checked_add(len)
            && end <= self.data.len()
        {
            let mut p = Parser::new(self.data, end, 1);
            if p.eat_keyword(b"endstream") {
                return start..end;
            }
        }
        // Search for endstream, trimming the EOL before it.
        let search_end = self.data.len();
        match parse::find(self.data, start..search_end, b"endstream") {
            Some(mut end) => {
                if end > start && self.data[end - 1] == b'\n' {
                    end -= 1;
                }
                if end > start && self.data[end - 1] == b'\r' {
                    end -= 1;
                }
                start..end
            }
            None => start..search_end,
        }
    }

    /// Loads an object that must not recurse into other lookups (used for
    /// indirect `/Length`).
    fn get_shallow(&self, r: Ref) -> Option<Object> {
        match self.entry(r.num)? {
            Entry::InFile { offset, .. } => {
                let mut p = Parser::new(self.data, offset, 4);
                p.indirect_header()?;
                p.object().ok()
            }
            _ => None,
        }
    }

    fn entry(&self, num: u32) -> Option<Entry> {
        self.entries.get(&num).copied()
    }

    // ---- repair -----------------------------------------------------------------

    fn scan(&self) -> &Scan {
        self.scan
            .get_or_init(|| scan_file(self.data, self.limits.max_depth))
    }

    /// Rebuilds the xref from a scan of the whole file.
    fn repair_from_scan(&mut self) -> Result<(), StampError> {
        self.repaired.set(true);
        let scan = self.scan();
        if scan.objects.is_empty() {
            return Err(damaged("no objects could be found in the file"));
        }
        let scanned_trailer = scan.trailer.clone();
        // Object streams found by the scan contribute their members.
        let mut nums: Vec<u32> = scan.objects.keys().copied().collect();
        nums.sort_unstable();
        self.entries.clear();
        for &num in &nums {
            if let Some(&(offset, generation)) =
                self.scan().objects.get(&num).and_then(|v| v.last())
            {
                self.set_entry(num, Entry::InFile { offset, generation });
            }
        }
        for &num in &nums {
            let r = Ref::new(num, 0);
            let Ok(Some(l)) = self.get(r) else { continue };
            if l.obj.as_dict().and_then(|d| d.name(b"Type")) == Some(b"ObjStm")
                && let Ok(stm) = self.objstm(num)
            {
                for (i, (member, _)) in stm.index.iter().enumerate() {
                    let i = u32::try_from(i).unwrap_or(u32::MAX);
                    if !self.scan().objects.contains_key(member) {
                        self.set_entry(
                            *member,
                            Entry::InStream {
                                stream: num,
                                index: i,
                            },
                        );
                    }
                }
            }
        }
        // Trailer: the scanned one; else find the catalog.
        let mut trailer = scanned_trailer.unwrap_or_default();
        if !trailer.has(b"Root") || !self.dict_is_type(trailer.get(b"Root"), b"Catalog") {
            let catalog = nums.iter().rev().copied().find(|&n| {
                let r = Ref::new(n, self.scanned_generation(n));
                self.dict_is_type(Some(&Object::Ref(r)), b"Catalog")
            });
            // Catalogs can also live in object streams.
            let catalog = catalog
                .map(|n| Ref::new(n, self.scanned_generation(n)))
                .or_else(|| {
                    let mut in_streams: Vec<u32> = self
                        .entries
                        .iter()
                        .filter(|(_, e)| matches!(e, Entry::InStream { .. }))
                        .map(|(n, _)| *n)
                        .collect();
                    in_streams.sort_unstable();
                    in_streams
                        .into_iter()
                        .rev()
                        .map(|n| Ref::new(n, 0))
                        .find(|r| self.dict_is_type(Some(&Object::Ref(*r)), b"Catalog"))
                });
            let Some(root) = catalog else {
                return Err(damaged("the document catalog (/Root) cannot be found"));
            };
            trailer.entries.retain(|(k, _, _)| k != b"Root");
            trailer
                .entries
                .push((b"Root".to_vec(), Object::Ref(root), 0..0));
        }
        self.trailer = trailer;
        Ok(())
    }

    fn scanned_generation(&self, num: u32) -> u16 {
        self.scan()
            .objects
            .get(&num)
            .and_then(|v| v.last())
            .map_or(0, |x| x.1)
    }

    fn dict_is_type(&self, obj: Option<&Object>, ty: &[u8]) -> bool {
        let Some(Object::Ref(r)) = obj else {
            return false;
        };
        matches!(self.get(*r), Ok(Some(l)) if l.obj.as_dict().and_then(|d| d.name(b"Type")) == Some(ty))
    }

    // ---- encryption ---------------------------------------------------------------

    fn open_security(&mut self, password: Option<&str>) -> Result<(), StampError> {
        let (dict, r) = match self.trailer.get(b"Encrypt") {
            None | Some(Object::Null) => return Ok(()),
            Some(Object::Dict(d)) => (d.clone(), None),
            Some(Object::Ref(r)) => match self.get(*r)? {
                Some(Loaded {
                    obj: Object::Dict(d),
                    ..
                }) => (d, Some(*r)),
                _ => return Err(damaged("the /Encrypt dictionary is missing")),
            },
            Some(_) => return Err(damaged("the /Encrypt entry is not a dictionary")),
        };
        let id0 = match self
            .trailer
            .get(b"ID")
            .and_then(Object::as_array)
            .and_then(|a| a.first())
        {
            Some(Object::String(s)) => s.clone(),
            _ => Vec::new(),
        };
        self.crypt = Some(Crypt::open(&dict, &id0, password)?);
        self.encrypt_ref = r;
        Ok(())
    }

    // ---- objects -------------------------------------------------------------------

    /// Loads object `r`; `None` when it is free or absent (a null reference).
    pub fn get(&self, r: Ref) -> Result<Option<Loaded>, StampError> {
        if r.num > MAX_OBJECT_NUMBER || r.num == 0 {
            return Ok(None);
        }
        let loaded = self.get_unchecked(r)?;
        if let Some(l) = &loaded {
            self.note_refs(&l.obj);
        }
        Ok(loaded)
    }

    /// Remembers the highest object number `obj` refers to.
    fn note_refs(&self, obj: &Object) {
        match obj {
            Object::Ref(r) if r.num <= MAX_OBJECT_NUMBER && r.num > self.max_ref.get() => {
                self.max_ref.set(r.num)
            }
            Object::Array(items) => items.iter().for_each(|o| self.note_refs(o)),
            Object::Dict(d) => d.entries.iter().for_each(|(_, o, _)| self.note_refs(o)),
            _ => {}
        }
    }

    /// Finds object `r` in the file: at the xref's offset, else (repairing)
    /// at the last scanned copy that parses.
    fn locate_in_file(&self, r: Ref, offset: Option<usize>) -> Result<Option<Loaded>, StampError> {
        if let Some(&(off, _)) = self.located.borrow().get(&r.num) {
            return self.load_in_file(r, off);
        }
        if let Some(off) = offset
            && let Some(l) = self.load_in_file(r, off)?
        {
            self.located.borrow_mut().insert(r.num, (off, r.generation));
            return Ok(Some(l));
        }
        let candidates: Vec<(usize, u16)> = match self.scan().objects.get(&r.num) {
            Some(v) => v
                .iter()
                .rev()
                .copied()
                .filter(|&(o, _)| Some(o) != offset)
                .collect(),
            None => return Ok(None),
        };
        for (off, generation) in candidates {
            if let Some(l) = self.load_in_file(r, off)? {
                // The xref was wrong about this object: the update carries a
                // complete, corrected cross-reference section.
                self.repaired.set(true);
                self.located.borrow_mut().insert(r.num, (off, generation));
                return Ok(Some(l));
            }
        }
        Ok(None)
    }

    fn get_unchecked(&self, r: Ref) -> Result<Option<Loaded>, StampError> {
        match self.entry(r.num) {
            None | Some(Entry::Free) => {
                // Maybe the xref is wrong and the object exists anyway.
                self.locate_in_file(r, None)
            }
            Some(Entry::InFile { offset, .. }) => self.locate_in_file(r, Some(offset)),
            Some(Entry::InStream { stream, index }) => {
                let stm = match self.objstm(stream) {
                    Ok(s) => s,
                    Err(
                        e @ (StampError::DecompressionLimit { .. } | StampError::TooDeep { .. }),
                    ) => return Err(e),
                    Err(_) => return Ok(None),
                };
                let Some(&(num, off)) = stm.index.get(index as usize) else {
                    return Ok(None);
                };
                let off = if num == r.num {
                    off
                } else {
                    // Index mismatch: look the object up by number.
                    match stm.index.iter().find(|(n, _)| *n == r.num) {
                        Some(&(_, o)) => o,
                        None => return Ok(None),
                    }
                };
                let mut p = Parser::new(&stm.data, off, self.limits.max_depth);
                match p.object() {
                    Ok(obj) => Ok(Some(Loaded {
                        obj,
                        stream_start: None,
                        source: Source::ObjStm(stm.data.clone()),
                    })),
                    Err(e) if e.what == parse::TOO_DEEP => Err(StampError::TooDeep {
                        limit: self.limits.max_depth,
                    }),
                    Err(_) => Ok(None),
                }
            }
        }
    }

    fn load_in_file(&self, r: Ref, offset: usize) -> Result<Option<Loaded>, StampError> {
        let mut p = Parser::new(self.data, offset, self.limits.max_depth);
        let Some(found) = p.indirect_header() else {
            return Ok(None);
        };
        if found.num != r.num {
            return Ok(None);
        }
        let obj = match p.object() {
            Ok(obj) => obj,
            Err(e) if e.what == parse::TOO_DEEP => {
                return Err(StampError::TooDeep {
                    limit: self.limits.max_depth,
                });
            }
            Err(_) => return Ok(None),
        };
        let stream_start = match &obj {
            Object::Dict(_) => p.stream_start(),
            _ => None,
        };
        Ok(Some(Loaded {
            obj,
            stream_start,
            source: Source::File,
        }))
    }

    /// Decodes stream data within the per-stream limit and what is left of
    /// the document's total decode budget.
    fn decode(&self, dict: &Dict, raw: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let limit = self.limits.max_decoded_bytes.min(self.decode_budget.get());
        let out = filter::decode(dict, raw, limit)?;
        self.decode_budget
            .set(self.decode_budget.get().saturating_sub(out.len() as u64));
        Ok(out)
    }

    /// Follows references until a direct object (bounded), or `Null`.
    pub fn resolve(&self, obj: &Object) -> Result<Object, StampError> {
        let mut cur = obj.clone();
        for _ in 0..32 {
            match cur {
                Object::Ref(r) => match self.get(r)? {
                    Some(l) => cur = l.obj,
                    None => return Ok(Object::Null),
                },
                other => return Ok(other),
            }
        }
        Ok(Object::Null)
    }

    /// Decodes and indexes object stream `num` (cached).
    fn objstm(&self, num: u32) -> Result<Rc<ObjStm>, StampError> {
        if let Some(s) = self.objstms.borrow().get(&num) {
            return Ok(s.clone());
        }
        let r = Ref::new(num, 0);
        let l = match self.entry(num) {
            Some(Entry::InFile { offset, .. }) => self.locate_in_file(r, Some(offset))?,
            _ => self.locate_in_file(r, None)?,
        }
        .ok_or_else(|| damaged(format!("object stream {num} is missing")))?;
        let (Object::Dict(dict), Some(start)) = (&l.obj, l.stream_start) else {
            return Err(damaged(format!("object {num} is not an object stream")));
        };
        let range = self.stream_range(dict, start);
        let raw = &self.data[range];
        let decrypted;
        let raw = match &self.crypt {
            Some(c) => {
                decrypted = c.decrypt_stream(r, raw);
                &decrypted[..]
            }
            None => raw,
        };
        let limit = self.limits.max_decoded_bytes;
        let data = self.decode(dict, raw).map_err(|e| match e {
            DecodeError::Limit => StampError::DecompressionLimit { limit },
            DecodeError::Unsupported(what) => {
                damaged(format!("object stream {num}: unsupported {what}"))
            }
            DecodeError::Corrupt(what) => damaged(format!("object stream {num}: {what}")),
        })?;
        let n = dict
            .int(b"N")
            .unwrap_or(0)
            .clamp(0, data.len() as i64 / 2 + 1) as usize;
        let first = usize::try_from(dict.int(b"First").unwrap_or(0)).unwrap_or(0);
        let mut p = Parser::new(&data, 0, 1);
        let mut index = Vec::with_capacity(n);
        for _ in 0..n {
            let (Some(obj), Some(off)) = (p.uint(), p.uint()) else {
                break;
            };
            let (Ok(obj), Ok(off)) = (u32::try_from(obj), usize::try_from(off)) else {
                break;
            };
            index.push((obj, first.saturating_add(off)));
        }
        let stm = Rc::new(ObjStm {
            data: Rc::new(data),
            index,
        });
        self.objstms.borrow_mut().insert(num, stm.clone());
        Ok(stm)
    }

    /// Every object of the file and where it is, for a complete xref of a
    /// repaired document: `(number, entry)` sorted by number.
    pub fn all_entries(&self) -> Vec<(u32, Entry)> {
        let mut nums: Vec<u32> = self.entries.keys().copied().collect();
        if self.repaired.get() {
            nums.extend(self.scan().objects.keys().copied());
        }
        nums.sort_unstable();
        nums.dedup();
        let mut out = Vec::with_capacity(nums.len());
        for num in nums {
            match self.entry(num) {
                Some(e @ Entry::InStream { .. }) => out.push((num, e)),
                e if self.repaired.get() => {
                    let (offset, generation) = match e {
                        Some(Entry::InFile { offset, generation }) => (Some(offset), generation),
                        _ => (None, self.scanned_generation(num)),
                    };
                    // Only objects that really load, where they were read.
                    if let Ok(Some(_)) = self.locate_in_file(Ref::new(num, generation), offset)
                        && let Some(&(off, g)) = self.located.borrow().get(&num)
                    {
                        out.push((
                            num,
                            Entry::InFile {
                                offset: off,
                                generation: g,
                            },
                        ));
                    }
                }
                Some(e @ Entry::InFile { .. }) => out.push((num, e)),
                _ => {}
            }
        }
        out
    }

    /// Whether `r` is the `/Encrypt` dictionary (whose strings are never
    /// encrypted).
    pub fn is_encrypt_dict(&self, r: Ref) -> bool {
        self.encrypt_ref == Some(r)
    }
}

/// Scans the whole file for `N G obj` and `trailer` dictionaries.
fn scan_file(data: &[u8], max_depth: u32) -> Scan {
    let mut scan = Scan::default();
    let mut i = 0;
    while let Some(pos) = parse::find(data, i..data.len(), b"obj") {
        i = pos + 3;
        // Must be a whole word: "obj" not followed by a regular character.
        if data
            .get(pos + 3)
            .is_some_and(|&b| !parse::is_white(b) && !parse::is_delim(b))
        {
            continue;
        }
        // Walk back: whitespace, generation digits, whitespace, number digits.
        let mut j = pos;
        let back_ws = |j: &mut usize| {
            while *j > 0 && parse::is_white(data[*j - 1]) {
                *j -= 1;
            }
        };
        let back_digits = |j: &mut usize| -> Option<usize> {
            let end = *j;
            while *j > 0 && data[*j - 1].is_ascii_digit() && end - *j < 10 {
                *j -= 1;
            }
            (end > *j).then_some(end)
        };
        back_ws(&mut j);
        let Some(gen_end) = back_digits(&mut j) else {
            continue;
        };
        let gen_start = j;
        if j == 0 || !parse::is_white(data[j - 1]) {
            continue;
        }
        back_ws(&mut j);
        let Some(num_end) = back_digits(&mut j) else {
            continue;
        };
        if j > 0 && !parse::is_white(data[j - 1]) && !parse::is_delim(data[j - 1]) {
            continue;
        }
        let num = std::str::from_utf8(&data[j..num_end])
            .ok()
            .and_then(|s| s.parse::<u32>().ok());
        let generation = std::str::from_utf8(&data[gen_start..gen_end])
            .ok()
            .and_then(|s| s.parse::<u16>().ok());
        if let (Some(num), Some(generation)) = (num, generation)
            && num > 0
        {
            // Later definitions override earlier ones (incremental updates);
            // earlier ones stay as fallbacks for broken later copies.
            if num <= MAX_OBJECT_NUMBER {
                let v = scan.objects.entry(num).or_default();
                if v.len() < 16 {
                    v.push((j, generation));
                } else if let Some(last) = v.last_mut() {
                    *last = (j, generation);
                }
            }
        }
    }
    // The last trailer dictionary that names a /Root; else an xref stream's.
    let mut i = 0;
    while let Some(pos) = parse::find(data, i..data.len(), b"trailer") {
        i = pos + 7;
        let mut p = Parser::new(data, pos + 7, max_depth);
        if let Ok(d) = p.dict()
            && d.has(b"Root")
        {
            merge_trailer(&mut scan.trailer, d);
        }
    }
    if scan.trailer.is_none() {
        let mut objs: Vec<_> = scan.objects.values().flatten().copied().collect();
        objs.sort_unstable();
        for (off, _) in objs {
            let mut p = Parser::new(data, off, max_depth);
            if p.indirect_header().is_some()
                && let Ok(d) = p.dict()
                && d.name(b"Type") == Some(b"XRef")
                && d.has(b"Root")
            {
                merge_trailer(&mut scan.trailer, d);
            }
        }
    }
    scan
}

fn merge_trailer(into: &mut Option<Dict>, newer: Dict) {
    match into {
        None => *into = Some(newer),
        Some(old) => {
            let mut merged = newer;
            for (k, v, s) in &old.entries {
                if !merged.has(k) {
                    merged.entries.push((k.clone(), v.clone(), s.clone()));
                }
            }
            *into = Some(merged);
        }
    }
}
