//! Reading and writing PDF syntax (PDF 1.7 = ISO 32000-1, chapter 7).

pub(crate) mod write;
