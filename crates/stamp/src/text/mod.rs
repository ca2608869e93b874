//! Turning the watermark text into glyphs and font objects.
//!
//! Text that Helvetica (a standard-14 font, nothing embedded) can encode in
//! WinAnsiEncoding is drawn with it, like the original stamp. Anything else is
//! shaped with `rustybuzz` (so Arabic joins and right-to-left text is ordered
//! for display) in the font shipped with Peedy (DejaVu Sans) or a caller's
//! font, and drawn with an embedded subset as a Type0/CIDFontType2 font with a
//! `/ToUnicode` map, so the watermark stays extractable as text.
//! PLACEHOLDER: being written.

use std::sync::Arc;

/// A TrueType/OpenType font supplied by the caller.
#[derive(Clone)]
pub struct FontData {
    data: Arc<Vec<u8>>,
}

impl std::fmt::Debug for FontData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FontData")
            .field("bytes", &self.data.len())
            .finish()
    }
}

impl FontData {
    /// Takes font bytes; fails when they are not a usable font.
    pub fn from_bytes(data: Vec<u8>) -> crate::Result<Self> {
        Ok(Self {
            data: Arc::new(data),
        })
    }
}
