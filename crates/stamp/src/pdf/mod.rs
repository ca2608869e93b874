//! Reading and writing PDF syntax (PDF 1.7 = ISO 32000-1, chapter 7).

pub(crate) mod crypt;
pub(crate) mod doc;
pub(crate) mod filter;
pub(crate) mod object;
pub(crate) mod pages;
pub(crate) mod parse;
pub(crate) mod update;
pub(crate) mod write;
