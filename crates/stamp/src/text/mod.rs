//! Turning the watermark text into glyphs and font objects.
//!
//! Text that Helvetica (a standard-14 font, nothing embedded) can encode in
//! WinAnsiEncoding is drawn with it, like the original stamp. Anything else is
//! shaped with `rustybuzz` (so Arabic joins and right-to-left text is ordered
//! for display) in the font shipped with Peedy (DejaVu Sans) or a caller's
//! font, and drawn with an embedded subset as a Type0 font (over a
//! CIDFontType2, or a CIDFontType0 for CFF-flavoured fonts) with a
//! `/ToUnicode` map, so the watermark stays extractable as text.
//!
//! Known limit: vertical glyph offsets from shaping (marks stacked on marks)
//! are dropped, since `show_line` does not know the font size that `Ts` would
//! need; horizontal offsets and kerning are kept.
//!
//! Start with [`PreparedText::new`] once per watermark; then, per document,
//! [`PreparedText::write_font`] once and [`PreparedText::show_line`] for every
//! line drawn.

mod embed;
mod helvetica;
mod shape;

use std::sync::Arc;

use crate::error::{Result, StampError};
use crate::pdf::write::{NewObject, push_literal_string};

/// DejaVu Sans 2.37 (Bitstream Vera license, see `fonts/LICENSE`): the font
/// for text Helvetica cannot draw when the caller gives none. It covers Latin,
/// Greek, Cyrillic, Armenian, Georgian, Hebrew, Arabic and many symbols — but
/// no CJK.
static DEJAVU_SANS: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");

/// A TrueType/OpenType font supplied by the caller, e.g. a CJK font for text
/// the font shipped with Peedy (DejaVu Sans) does not cover. Cheap to clone.
#[derive(Clone)]
pub struct FontData {
    data: FontBytes,
    /// Which face of a font collection (`.ttc`) to use.
    index: u32,
}

/// The font file's bytes: shared with the caller's clones, or built in.
#[derive(Clone)]
enum FontBytes {
    Shared(Arc<Vec<u8>>),
    Static(&'static [u8]),
}

impl std::fmt::Debug for FontData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FontData")
            .field("bytes", &self.bytes().len())
            .field("index", &self.index)
            .finish()
    }
}

impl FontData {
    /// Takes the bytes of a TrueType/OpenType font file (the first face of a
    /// collection); fails with [`StampError::Font`] when they are not a font
    /// Peedy can use: unparsable, no character map (`cmap`), or no TrueType
    /// or CFF outlines.
    pub fn from_bytes(data: Vec<u8>) -> crate::Result<Self> {
        let font = Self {
            data: FontBytes::Shared(Arc::new(data)),
            index: 0,
        };
        font.validate()?;
        Ok(font)
    }

    /// The font shipped with Peedy.
    fn default_font() -> Self {
        Self {
            data: FontBytes::Static(DEJAVU_SANS),
            index: 0,
        }
    }

    fn validate(&self) -> Result<()> {
        let face = ttf_parser::Face::parse(self.bytes(), self.index)
            .map_err(|e| StampError::Font(format!("not a TrueType/OpenType font ({e})")))?;
        if face.tables().cmap.is_none() {
            return Err(StampError::Font(
                "the font has no character map (cmap table)".into(),
            ));
        }
        if face.tables().glyf.is_none() && face.tables().cff.is_none() {
            return Err(embed::no_outlines());
        }
        Ok(())
    }

    /// The font file.
    fn bytes(&self) -> &[u8] {
        match &self.data {
            FontBytes::Shared(data) => data,
            FontBytes::Static(data) => data,
        }
    }

    /// The face index within the file.
    fn index(&self) -> u32 {
        self.index
    }
}

/// Vertical metrics of the font used, in em.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Metrics {
    ascent: f32,
    descent: f32,
    line_height: f32,
}

/// One line ready to draw.
#[derive(Debug, Clone)]
struct PreparedLine {
    /// Advance width in em.
    width: f32,
    /// The text-showing operators (`Tj`/`TJ`, maybe inside an `/ActualText`
    /// span).
    ops: Vec<u8>,
    /// Glyph ids in the original font, in drawing order (empty for
    /// Helvetica). Only tests read them: they check shaping and order.
    #[cfg_attr(not(test), allow(dead_code))]
    glyphs: Vec<u16>,
}

/// The font a [`PreparedText`] draws with.
#[derive(Debug, Clone)]
enum PreparedFont {
    /// Standard-14 Helvetica with WinAnsiEncoding.
    Helvetica,
    /// An embedded subset.
    Embedded(embed::EmbeddedFont),
}

/// The watermark text laid out for drawing: lines of glyphs in one font.
/// Built once per watermark (the font is chosen, the text shaped and the
/// font subset here) and used for every page of every document.
#[derive(Debug, Clone)]
pub(crate) struct PreparedText {
    lines: Vec<PreparedLine>,
    font: PreparedFont,
    metrics: Metrics,
}

impl PreparedText {
    /// Lays out `lines`.
    ///
    /// Font choice: without `font`, text that WinAnsiEncoding covers entirely
    /// uses Helvetica (nothing embedded); other text uses DejaVu Sans. With
    /// `font`, that font is always used. Tabs and other control characters
    /// are drawn as spaces, soft hyphens not at all. Fails with [`StampError::Font`] naming the first
    /// character the font has no glyph for.
    pub(crate) fn new<'a>(
        lines: impl IntoIterator<Item = &'a str>,
        font: Option<&FontData>,
    ) -> Result<Self> {
        let lines: Vec<String> = lines
            .into_iter()
            .map(|line| {
                line.chars()
                    // A soft hyphen only shows where a line breaks, and
                    // watermark lines do not break.
                    .filter(|&c| c != '\u{AD}')
                    .map(|c| {
                        // U+2028/2029 would start a new bidi paragraph.
                        if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                            ' '
                        } else {
                            c
                        }
                    })
                    .collect()
            })
            .collect();
        let winansi: Option<Vec<Vec<u8>>> = match font {
            Some(_) => None,
            None => lines
                .iter()
                .map(|l| l.chars().map(helvetica::encode).collect())
                .collect(),
        };
        if let Some(encoded) = winansi {
            let lines = encoded.into_iter().map(helvetica_line).collect();
            return Ok(Self {
                lines,
                font: PreparedFont::Helvetica,
                metrics: Metrics {
                    ascent: helvetica::ASCENT,
                    descent: helvetica::DESCENT,
                    line_height: helvetica::LINE_HEIGHT,
                },
            });
        }
        let font = font.cloned().unwrap_or_else(FontData::default_font);
        // ttf-parser, rustybuzz and subsetter are fuzzed and used on
        // arbitrary fonts (typst, krilla), but a caller's font is untrusted
        // input: a panic in them becomes an error, not a crash.
        let (lines, embedded, metrics) =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                embed::prepare(&lines, &font)
            }))
            .map_err(|_| {
                StampError::Font("the font could not be read (it may be damaged)".into())
            })??;
        Ok(Self {
            lines,
            font: PreparedFont::Embedded(embedded),
            metrics,
        })
    }

    /// Number of lines.
    pub(crate) fn line_count(&self) -> usize {
        self.lines.len()
    }

    /// Advance width of line `i` for a 1 pt font, i.e. in em (the width at
    /// size `s` is `s * line_width(i)`); 0 for a line that does not exist.
    pub(crate) fn line_width(&self, i: usize) -> f32 {
        self.lines.get(i).map_or(0.0, |l| l.width)
    }

    /// The font's ascent above the baseline, in em (positive).
    pub(crate) fn ascent(&self) -> f32 {
        self.metrics.ascent
    }

    /// The font's descent below the baseline, in em (negative).
    pub(crate) fn descent(&self) -> f32 {
        self.metrics.descent
    }

    /// Distance between baselines, in em.
    pub(crate) fn line_height(&self) -> f32 {
        self.metrics.line_height
    }

    /// Whether the text is drawn with an embedded font (false for
    /// Helvetica).
    pub(crate) fn embedded(&self) -> bool {
        matches!(self.font, PreparedFont::Embedded(_))
    }

    /// Appends the text-showing operators for line `i` to a content stream
    /// (PDF 1.7 §9.4.3). The caller has done `BT /F… size Tf` and set the
    /// text matrix to the line's start (left end of the baseline).
    ///
    /// Helvetica: `(WinAnsi bytes) Tj`. Embedded: `<CIDs> Tj`, or `[…] TJ`
    /// with the positioning from shaping; lines whose glyphs do not read
    /// back as the text in drawing order (right-to-left, ligatures) are
    /// wrapped in `/Span <</ActualText …>> BDC … EMC` (§14.9.4). Nothing for
    /// an empty line or one that does not exist.
    pub(crate) fn show_line(&self, i: usize, out: &mut Vec<u8>) {
        if let Some(line) = self.lines.get(i) {
            out.extend_from_slice(&line.ops);
        }
    }

    /// Writes the font's objects for one document and returns the object
    /// number of the font dictionary for `/Resources /Font`. `alloc` hands
    /// out object numbers; the objects are pushed to `out`.
    ///
    /// Helvetica: one dictionary, `/Type1 /Helvetica` with
    /// `/WinAnsiEncoding`. Embedded: a Type0 font (`/Identity-H`,
    /// `/ToUnicode`), its CIDFont with `/W` widths, the font descriptor and
    /// the subset font program (Flate-compressed streams). The same text and
    /// font always give the same objects.
    pub(crate) fn write_font(
        &self,
        alloc: &mut dyn FnMut() -> u32,
        out: &mut Vec<NewObject>,
    ) -> u32 {
        match &self.font {
            PreparedFont::Helvetica => {
                let id = alloc();
                out.push(NewObject::direct(
                    id,
                    "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica \
                     /Encoding /WinAnsiEncoding >>",
                ));
                id
            }
            PreparedFont::Embedded(font) => font.write(alloc, out),
        }
    }
}

/// A Helvetica line from its WinAnsi bytes.
fn helvetica_line(bytes: Vec<u8>) -> PreparedLine {
    let width = bytes
        .iter()
        .map(|&b| u32::from(helvetica::width(b)))
        .sum::<u32>() as f32
        / 1000.0;
    let mut ops = Vec::new();
    if !bytes.is_empty() {
        push_literal_string(&mut ops, &bytes);
        ops.extend_from_slice(b" Tj\n");
    }
    PreparedLine {
        width,
        ops,
        glyphs: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
