//! Peedy's stamping engine: PDF bytes and a [`Watermark`] in, a stamped PDF
//! out. Pure library: no async, no database, no file I/O.
//!
//! The output is, whenever possible, the original bytes followed by an
//! appended incremental update ([`Stamped::Appended`]): the caller writes the
//! input and then the update, so unchanged objects are never re-encoded and
//! the cost grows with the page count, not the file size. Only a file that had
//! to be repaired is rewritten whole ([`Stamped::Rewritten`]).
//!
//! ```no_run
//! use peedy_stamp::{Stamper, Watermark, Options};
//! let input = std::fs::read("in.pdf").unwrap();
//! let stamper = Stamper::new(Watermark::new("Ricky Bobby").unwrap(), Options::default()).unwrap();
//! let stamped = stamper.stamp(&input).unwrap();
//! let output = stamped.to_vec(&input);
//! ```
#![deny(missing_docs)]

mod error;
mod pdf;
mod stamp;
mod text;
mod watermark;

pub use error::{Result, SpecError, StampError};
pub use stamp::{Limits, Options, Report, Stamped, Stamper, stamp};
pub use text::FontData;
pub use watermark::{
    Anchor, Color, DEFAULT_OPACITY, DEFAULT_ROTATION_DEGREES, Layer, MAX_TEXT_CHARS, PageRef,
    PageSelection, Position, Rotation, Size, Watermark,
};
