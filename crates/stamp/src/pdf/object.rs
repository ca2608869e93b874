//! The PDF object model as far as the engine needs it (PDF 1.7 §7.3), with
//! the byte span of every dictionary value so unchanged values can be copied
//! verbatim into the update.

use std::ops::Range;

/// An indirect reference `N G R` (§7.3.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Ref {
    /// Object number.
    pub num: u32,
    /// Generation number.
    pub generation: u16,
}

impl Ref {
    /// A reference to object `num` generation `generation`.
    pub const fn new(num: u32, generation: u16) -> Self {
        Self { num, generation }
    }
}

/// A parsed PDF object. Strings are kept as they appear in the file (not
/// decrypted); names are decoded (`#xx` resolved).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Object {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A real number.
    Real(f64),
    /// A name, decoded, without the slash.
    Name(Vec<u8>),
    /// A string's decoded bytes (escapes resolved; still encrypted if the
    /// document is).
    String(Vec<u8>),
    /// An array.
    Array(Vec<Object>),
    /// A dictionary.
    Dict(Dict),
    /// An indirect reference.
    Ref(Ref),
}

impl Object {
    /// The number, for `Int` and `Real`.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Object::Int(i) => Some(i as f64),
            Object::Real(r) => Some(r),
            _ => None,
        }
    }

    /// The integer, for `Int` (and integral `Real`s, which some writers emit).
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Object::Int(i) => Some(i),
            Object::Real(r) if r.fract() == 0.0 && r.abs() < 9e15 => Some(r as i64),
            _ => None,
        }
    }

    /// The name's bytes, for `Name`.
    pub fn as_name(&self) -> Option<&[u8]> {
        match self {
            Object::Name(n) => Some(n),
            _ => None,
        }
    }

    /// The dictionary, for `Dict`.
    pub fn as_dict(&self) -> Option<&Dict> {
        match self {
            Object::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The array, for `Array`.
    pub fn as_array(&self) -> Option<&[Object]> {
        match self {
            Object::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The reference, for `Ref`.
    pub fn as_ref(&self) -> Option<Ref> {
        match self {
            Object::Ref(r) => Some(*r),
            _ => None,
        }
    }
}

/// A dictionary: entries in file order, each with the byte span of its
/// value in the buffer it was parsed from.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Dict {
    /// `(key, value, span of the value's bytes)`.
    pub entries: Vec<(Vec<u8>, Object, Range<usize>)>,
    /// Span of the whole `<< … >>`.
    pub span: Range<usize>,
}

impl Dict {
    /// The value for `key` (the last one, if a broken file repeats a key).
    pub fn get(&self, key: &[u8]) -> Option<&Object> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _, _)| k == key)
            .map(|(_, v, _)| v)
    }

    /// The value's byte span for `key`.
    #[cfg(test)]
    pub fn span_of(&self, key: &[u8]) -> Option<Range<usize>> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _, _)| k == key)
            .map(|(_, _, s)| s.clone())
    }

    /// The name value for `key`.
    pub fn name(&self, key: &[u8]) -> Option<&[u8]> {
        self.get(key).and_then(Object::as_name)
    }

    /// The integer value for `key`.
    pub fn int(&self, key: &[u8]) -> Option<i64> {
        self.get(key).and_then(Object::as_i64)
    }

    /// Whether `key` is present (and not `null`).
    pub fn has(&self, key: &[u8]) -> bool {
        matches!(self.get(key), Some(v) if *v != Object::Null)
    }
}
