//! The stamping pipeline: read the page tree, lay out the watermark for each
//! page's visible area, and write the incremental update.

use std::io::{self, Write};
use std::time::Duration;

use crate::error::{Result, StampError};
use crate::text::FontData;
use crate::watermark::Watermark;

/// Safety limits for untrusted input. Every one is a typed error when hit.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest input accepted, in bytes.
    pub max_input_bytes: u64,
    /// Most pages accepted.
    pub max_pages: u32,
    /// Most bytes any single decoded stream (object stream, xref stream) may
    /// expand to; guards against decompression bombs.
    pub max_decoded_bytes: u64,
    /// Deepest nesting of arrays/dictionaries and of the page tree.
    pub max_depth: u32,
    /// Wall-clock budget for one document, checked between pages.
    pub time_limit: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input_bytes: 4 << 30,
            max_pages: 100_000,
            max_decoded_bytes: 256 << 20,
            max_depth: 64,
            time_limit: None,
        }
    }
}

/// How to open and stamp documents, besides the watermark itself.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Password for encrypted files (user or owner password).
    pub password: Option<String>,
    /// A TrueType/OpenType font to draw the text with instead of the defaults.
    pub font: Option<FontData>,
    /// Safety limits.
    pub limits: Limits,
}

/// What happened to one document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// Pages in the document.
    pub pages: u32,
    /// Pages that got the watermark.
    pub stamped_pages: u32,
    /// The input had to be repaired (so the output is a full rewrite).
    pub repaired: bool,
    /// The input was encrypted (and the output stays encrypted).
    pub encrypted: bool,
    /// The text is drawn with an embedded font subset (not Helvetica).
    pub embedded_font: bool,
}

/// A stamped document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stamped {
    /// The output is the input's bytes followed by `update`.
    Appended {
        /// The incremental update to append to the original bytes.
        update: Vec<u8>,
        /// What was done.
        report: Report,
    },
    /// The output is `bytes` alone (the input had to be rewritten).
    Rewritten {
        /// The whole output file.
        bytes: Vec<u8>,
        /// What was done.
        report: Report,
    },
}

impl Stamped {
    /// What was done.
    pub fn report(&self) -> &Report {
        match self {
            Stamped::Appended { report, .. } | Stamped::Rewritten { report, .. } => report,
        }
    }

    /// Length of the whole output for this input.
    pub fn output_len(&self, input: &[u8]) -> usize {
        match self {
            Stamped::Appended { update, .. } => input.len() + update.len(),
            Stamped::Rewritten { bytes, .. } => bytes.len(),
        }
    }

    /// Writes the whole output: the input then the update, or the rewrite.
    pub fn write_to(&self, input: &[u8], mut w: impl Write) -> io::Result<()> {
        match self {
            Stamped::Appended { update, .. } => {
                w.write_all(input)?;
                w.write_all(update)
            }
            Stamped::Rewritten { bytes, .. } => w.write_all(bytes),
        }
    }

    /// The whole output in one buffer.
    pub fn to_vec(&self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.output_len(input));
        match self {
            Stamped::Appended { update, .. } => {
                out.extend_from_slice(input);
                out.extend_from_slice(update);
            }
            Stamped::Rewritten { bytes, .. } => out.extend_from_slice(bytes),
        }
        out
    }
}

/// A watermark prepared once (text shaped, font chosen) and applied to any
/// number of documents. Cheap to share between threads.
#[derive(Debug)]
pub struct Stamper {
    watermark: Watermark,
    options: Options,
}

impl Stamper {
    /// Prepares `watermark`; fails when the font cannot draw the text.
    pub fn new(watermark: Watermark, options: Options) -> Result<Self> {
        Ok(Self { watermark, options })
    }

    /// The watermark this stamper applies.
    pub fn watermark(&self) -> &Watermark {
        &self.watermark
    }

    /// Stamps one document.
    pub fn stamp(&self, input: &[u8]) -> Result<Stamped> {
        let _ = (&self.options, input);
        Err(StampError::Damaged("engine not ready".into()))
    }
}

/// Stamps `input` with `watermark` and default options.
pub fn stamp(input: &[u8], watermark: &Watermark) -> Result<Stamped> {
    Stamper::new(watermark.clone(), Options::default())?.stamp(input)
}
