//! Text drawn with an embedded font: shaping every line, subsetting the font
//! to the glyphs used, and the PDF objects of a composite font (PDF 1.7
//! §9.7): a Type0 font with `/Encoding /Identity-H` whose two-byte codes are
//! CIDs, a CIDFont (`CIDFontType2` for TrueType outlines, `CIDFontType0` for
//! CFF), its font descriptor, the font program, and a `/ToUnicode` CMap
//! (§9.10.3) so the watermark can be extracted as text.
//!
//! All of it is computed once in [`prepare`]; writing the objects into a
//! document ([`EmbeddedFont::write`]) only formats them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use sha2::{Digest, Sha256};
use subsetter::GlyphRemapper;
use ttf_parser::{Face, GlyphId, Tag};

use super::shape::{ShapedGlyph, shape_line};
use super::{FontData, Metrics, PreparedLine};
use crate::error::{Result, StampError};
use crate::pdf::write::{Buf, NewObject, push_hex_string, push_name, push_num};

/// What kind of outlines the font program has, which decides the CIDFont
/// subtype and how the program is embedded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outlines {
    /// `glyf` outlines: `/CIDFontType2` with `/FontFile2` (PDF 1.3).
    TrueType,
    /// CFF outlines: `/CIDFontType0` with `/FontFile3 /Subtype /CIDFontType0C`
    /// holding the bare CFF table (PDF 1.3).
    Cff,
}

/// An embedded font subset, ready to be written into any document.
#[derive(Clone)]
pub(super) struct EmbeddedFont {
    /// `/BaseFont`: subset tag plus PostScript name, e.g. `ABCDEF+DejaVuSans`.
    base_font: String,
    outlines: Outlines,
    /// The font file stream's data: the subset font (TrueType) or its CFF
    /// table.
    program: Vec<u8>,
    /// `/W`: the width of every CID shown, in thousandths of an em, by CID.
    widths: BTreeMap<u16, f32>,
    /// The text each CID stands for (`/ToUnicode`).
    to_unicode: BTreeMap<u16, String>,
    /// `/Flags` of the font descriptor (§9.8.2).
    flags: u32,
    /// `/FontBBox`, in thousandths of an em.
    bbox: [f32; 4],
    italic_angle: f32,
    /// `/Ascent`, `/Descent`, `/CapHeight`, `/StemV` in thousandths of an em.
    ascent: f32,
    descent: f32,
    cap_height: f32,
    stem_v: f32,
}

impl std::fmt::Debug for EmbeddedFont {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedFont")
            .field("base_font", &self.base_font)
            .field("outlines", &self.outlines)
            .field("program_bytes", &self.program.len())
            .field("glyphs", &self.widths.len())
            .finish_non_exhaustive()
    }
}

/// Shapes `lines` (already normalized) in `font`, subsets it and returns the
/// drawable lines, the font and its metrics.
pub(super) fn prepare(
    lines: &[String],
    font: &FontData,
) -> Result<(Vec<PreparedLine>, EmbeddedFont, Metrics)> {
    let face = Face::parse(font.bytes(), font.index())
        .map_err(|e| StampError::Font(format!("not a usable TrueType/OpenType font: {e}")))?;
    let outlines = if face.tables().glyf.is_some() {
        Outlines::TrueType
    } else if face.tables().cff.is_some() {
        Outlines::Cff
    } else {
        return Err(no_outlines());
    };
    let upem = f32::from(face.units_per_em());
    let em = 1000.0 / upem;
    let rb = rustybuzz::Face::from_face(face.clone());

    // Shape every line; whitespace the font lacks is drawn as a space.
    let mut texts = Vec::with_capacity(lines.len());
    let mut shaped = Vec::with_capacity(lines.len());
    for line in lines {
        let text: String = line
            .chars()
            .map(|c| {
                if c != ' ' && c.is_whitespace() && face.glyph_index(c).is_none() {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        shaped.push(shape_line(&rb, &text)?);
        texts.push(text);
    }

    // Subset to the glyphs drawn; their new ids are the CIDs.
    let used: BTreeSet<u16> = shaped
        .iter()
        .flatten()
        .filter(|g| g.visible)
        .map(|g| g.gid)
        .collect();
    let used: Vec<u16> = used.into_iter().collect();
    let remapper = GlyphRemapper::new_from_glyphs_sorted(&used);
    let cid = |gid: u16| remapper.get(gid).unwrap_or(0);
    let subset = subsetter::subset(font.bytes(), font.index(), &remapper)
        .map_err(|e| StampError::Font(format!("cannot subset the font: {e}")))?;
    let program = match outlines {
        Outlines::TrueType => subset,
        Outlines::Cff => ttf_parser::RawFace::parse(&subset, 0)
            .ok()
            .and_then(|raw| raw.table(Tag::from_bytes(b"CFF ")))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| StampError::Font("the subset font has no CFF table".into()))?,
    };

    let mut widths = BTreeMap::new();
    for &gid in &used {
        let advance = face.glyph_hor_advance(GlyphId(gid)).unwrap_or(0);
        widths.insert(cid(gid), f32::from(advance) * em);
    }

    // Each CID stands for the text of the first cluster it starts.
    let mut to_unicode: BTreeMap<u16, String> = BTreeMap::new();
    for (glyphs, text) in shaped.iter().zip(&texts) {
        for g in glyphs.iter().filter(|g| g.visible && g.first_in_cluster) {
            let s = text.get(g.text.clone()).unwrap_or_default();
            to_unicode.entry(cid(g.gid)).or_insert_with(|| s.to_owned());
        }
    }

    let prepared = shaped
        .iter()
        .zip(&texts)
        .map(|(glyphs, text)| draw_line(glyphs, text, em, &cid, &to_unicode, &widths))
        .collect();

    let ascender = f32::from(face.ascender());
    let descender = f32::from(face.descender());
    let line_gap = f32::from(face.line_gap());
    let height = (ascender - descender + line_gap) / upem;
    let metrics = Metrics {
        ascent: ascender / upem,
        descent: descender / upem,
        line_height: if height > 0.5 && height < 5.0 {
            height
        } else {
            1.2
        },
    };

    let bbox = face.global_bounding_box();
    let weight = f32::from(face.weight().to_number());
    let mut flags = 4; // Symbolic: glyphs outside the standard Latin set.
    if face.is_monospaced() {
        flags |= 1; // FixedPitch
    }
    if face.is_italic() || face.italic_angle() != 0.0 {
        flags |= 64; // Italic
    }
    let name = postscript_name(&face);
    let embedded = EmbeddedFont {
        base_font: format!("{}+{name}", subset_tag(&name, &used)),
        outlines,
        program,
        widths,
        to_unicode,
        flags,
        bbox: [
            f32::from(bbox.x_min) * em,
            f32::from(bbox.y_min) * em,
            f32::from(bbox.x_max) * em,
            f32::from(bbox.y_max) * em,
        ],
        italic_angle: face.italic_angle(),
        ascent: ascender * em,
        descent: descender * em,
        cap_height: f32::from(cap_height(&face)) * em,
        // The usual estimate from the weight class (as krilla and others do);
        // viewers only use it to synthesize a substitute.
        stem_v: 10.0 + 0.244 * (weight - 50.0),
    };
    Ok((prepared, embedded, metrics))
}

/// The error for a font without outlines Peedy can embed.
pub(super) fn no_outlines() -> StampError {
    StampError::Font(
        "the font has neither TrueType (glyf) nor CFF outlines \
         (CFF2 and bitmap-only fonts are not supported)"
            .into(),
    )
}

/// One element of a `TJ` array.
enum Piece {
    /// Consecutive CIDs.
    Glyphs(Vec<u16>),
    /// A shift in thousandths of an em; positive moves left (§9.4.3).
    Adjust(f32),
}

/// The text-showing operators and width of one shaped line.
///
/// A glyph shown by `TJ` advances by its `/W` width; where shaping moved a
/// glyph (kerning, mark placement) or changed an advance, a number in the
/// array makes up the difference. Vertical offsets (marks stacked above a
/// base) cannot be expressed without knowing the font size and are dropped.
fn draw_line(
    glyphs: &[ShapedGlyph],
    text: &str,
    em: f32,
    cid: &dyn Fn(u16) -> u16,
    to_unicode: &BTreeMap<u16, String>,
    widths: &BTreeMap<u16, f32>,
) -> PreparedLine {
    let mut pieces: Vec<Piece> = Vec::new();
    // How far right of the current text position the next glyph must go.
    let mut pending = 0.0f32;
    let mut width = 0i64;
    let mut shown = Vec::new();
    for g in glyphs {
        width += i64::from(g.x_advance);
        let advance = g.x_advance as f32 * em;
        if !g.visible {
            pending += advance;
            continue;
        }
        let c = cid(g.gid);
        let offset = g.x_offset as f32 * em;
        pending += offset;
        if pending.abs() >= 0.01 {
            pieces.push(Piece::Adjust(-pending));
        }
        match pieces.last_mut() {
            Some(Piece::Glyphs(cids)) => cids.push(c),
            _ => pieces.push(Piece::Glyphs(vec![c])),
        }
        let w = widths.get(&c).copied().unwrap_or(0.0);
        pending = advance - offset - w;
        shown.push(g.gid);
    }

    let mut ops = Vec::new();
    // Extraction maps each glyph through /ToUnicode and puts right-to-left
    // runs back in logical order. When that cannot give back the line — a
    // glyph standing for different text in different places, a whitespace
    // without a glyph — say what the text is (§14.9.4).
    //
    // Right-to-left order alone is not a reason: measured with poppler
    // 22.12 (`pdftotext`), a logical-order /ActualText on right-to-left
    // glyphs comes out reversed (poppler lays the replacement text out left
    // to right, then reorders it as right-to-left text), while plain glyphs
    // in visual order come out right; MuPDF's `-F txt` gives visual order
    // either way.
    let mut logical: Vec<&ShapedGlyph> = glyphs.iter().filter(|g| g.visible).collect();
    logical.sort_by_key(|g| g.text.start);
    let extracted: String = logical
        .iter()
        .filter_map(|g| to_unicode.get(&cid(g.gid)).map(String::as_str))
        .collect();
    let actual_text = extracted != text;
    if actual_text {
        ops.extend_from_slice(b"/Span <</ActualText ");
        let utf16: Vec<u8> = std::iter::once(0xFEFF)
            .chain(text.encode_utf16())
            .flat_map(u16::to_be_bytes)
            .collect();
        push_hex_string(&mut ops, &utf16);
        ops.extend_from_slice(b">> BDC\n");
    }
    match pieces.as_slice() {
        [] => {}
        [Piece::Glyphs(cids)] => {
            push_cids(&mut ops, cids);
            ops.extend_from_slice(b" Tj\n");
        }
        _ => {
            ops.push(b'[');
            for piece in &pieces {
                match piece {
                    Piece::Glyphs(cids) => push_cids(&mut ops, cids),
                    Piece::Adjust(v) => {
                        ops.push(b' ');
                        push_num(&mut ops, *v);
                        ops.push(b' ');
                    }
                }
            }
            ops.extend_from_slice(b"] TJ\n");
        }
    }
    if actual_text {
        ops.extend_from_slice(b"EMC\n");
    }
    PreparedLine {
        width: width as f32 * em / 1000.0,
        ops,
        glyphs: shown,
    }
}

/// Appends CIDs as a hex string of two-byte codes (`Identity-H`).
fn push_cids(out: &mut Vec<u8>, cids: &[u16]) {
    let bytes: Vec<u8> = cids.iter().flat_map(|c| c.to_be_bytes()).collect();
    push_hex_string(out, &bytes);
}

impl EmbeddedFont {
    /// Writes the Type0 font and its descendants (see the module docs);
    /// returns the Type0 font's object number.
    pub(super) fn write(&self, alloc: &mut dyn FnMut() -> u32, out: &mut Vec<NewObject>) -> u32 {
        let type0_id = alloc();
        let cid_font_id = alloc();
        let descriptor_id = alloc();
        let program_id = alloc();
        let to_unicode_id = alloc();
        let mut name = Vec::new();
        push_name(&mut name, self.base_font.as_bytes());
        let name = String::from_utf8_lossy(&name).into_owned();

        // §9.7.6.1: a Type0 font over a CIDFontType0 is named "font-CMap".
        let type0_name = match self.outlines {
            Outlines::TrueType => name.clone(),
            Outlines::Cff => format!("{name}-Identity-H"),
        };
        let mut d = String::new();
        let _ = write!(
            d,
            "<< /Type /Font /Subtype /Type0 /BaseFont {type0_name} /Encoding /Identity-H \
             /DescendantFonts [{cid_font_id} 0 R] /ToUnicode {to_unicode_id} 0 R >>"
        );
        out.push(NewObject::direct(type0_id, d));

        let mut d = Vec::new();
        let subtype = match self.outlines {
            Outlines::TrueType => "CIDFontType2",
            Outlines::Cff => "CIDFontType0",
        };
        let _ = write!(
            Buf(&mut d),
            "<< /Type /Font /Subtype /{subtype} /BaseFont {name} \
             /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> \
             /FontDescriptor {descriptor_id} 0 R /W ["
        );
        let mut run_end: Option<u16> = None;
        for (&cid, &w) in &self.widths {
            if run_end.is_some_and(|end| end.checked_add(1) == Some(cid)) {
                d.push(b' ');
            } else {
                if run_end.is_some() {
                    d.extend_from_slice(b"] ");
                }
                let _ = write!(Buf(&mut d), "{cid} [");
            }
            push_num(&mut d, w);
            run_end = Some(cid);
        }
        if run_end.is_some() {
            d.push(b']');
        }
        d.push(b']');
        if self.outlines == Outlines::TrueType {
            d.extend_from_slice(b" /CIDToGIDMap /Identity");
        }
        d.extend_from_slice(b" >>");
        out.push(NewObject::direct(cid_font_id, d));

        let mut d = Vec::new();
        let _ = write!(
            Buf(&mut d),
            "<< /Type /FontDescriptor /FontName {name} /Flags {} /FontBBox [",
            self.flags
        );
        for (i, v) in self.bbox.iter().enumerate() {
            if i > 0 {
                d.push(b' ');
            }
            push_num(&mut d, *v);
        }
        d.extend_from_slice(b"] /ItalicAngle ");
        push_num(&mut d, self.italic_angle);
        for (key, v) in [
            ("Ascent", self.ascent),
            ("Descent", self.descent),
            ("CapHeight", self.cap_height),
            ("StemV", self.stem_v),
        ] {
            let _ = write!(Buf(&mut d), " /{key} ");
            push_num(&mut d, v.round());
        }
        let file_key = match self.outlines {
            Outlines::TrueType => "FontFile2",
            Outlines::Cff => "FontFile3",
        };
        let _ = write!(Buf(&mut d), " /{file_key} {program_id} 0 R >>");
        out.push(NewObject::direct(descriptor_id, d));

        let program_dict = match self.outlines {
            Outlines::TrueType => format!("<< /Length1 {} >>", self.program.len()),
            Outlines::Cff => "<< /Subtype /CIDFontType0C >>".to_owned(),
        };
        out.push(NewObject::stream(
            program_id,
            program_dict,
            self.program.clone(),
            true,
        ));
        out.push(NewObject::stream(
            to_unicode_id,
            "<< >>",
            self.to_unicode_cmap(),
            true,
        ));
        type0_id
    }

    /// The `/ToUnicode` CMap program (§9.10.3; Adobe TN 5411).
    fn to_unicode_cmap(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(
            b"/CIDInit /ProcSet findresource begin\n\
              12 dict begin\n\
              begincmap\n\
              /CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n\
              /CMapName /Adobe-Identity-UCS def\n\
              /CMapType 2 def\n\
              1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
        );
        let entries: Vec<(u16, Vec<u8>)> = self
            .to_unicode
            .iter()
            .map(|(&cid, text)| {
                let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
                (cid, utf16)
            })
            // A destination string holds at most 512 bytes (TN 5411).
            .filter(|(_, utf16)| !utf16.is_empty() && utf16.len() <= 512)
            .collect();
        // At most 100 entries per block.
        for block in entries.chunks(100) {
            let _ = writeln!(Buf(&mut out), "{} beginbfchar", block.len());
            for (cid, utf16) in block {
                push_hex_string(&mut out, &cid.to_be_bytes());
                out.push(b' ');
                push_hex_string(&mut out, utf16);
                out.push(b'\n');
            }
            out.extend_from_slice(b"endbfchar\n");
        }
        out.extend_from_slice(
            b"endcmap\n\
              CMapName currentdict /CMap defineresource pop\n\
              end\n\
              end\n",
        );
        out
    }

    /// The `/BaseFont` name, e.g. `ABCDEF+DejaVuSans`.
    #[cfg(test)]
    pub(super) fn base_font(&self) -> &str {
        &self.base_font
    }

    /// The text each CID stands for.
    #[cfg(test)]
    pub(super) fn to_unicode(&self) -> &BTreeMap<u16, String> {
        &self.to_unicode
    }
}

/// The height of capital letters: from `OS/2` (version 2 and later), else
/// the top of the `H` (DejaVu Sans has an `OS/2` version 1), else the
/// ascender.
fn cap_height(face: &Face<'_>) -> i16 {
    face.capital_height()
        .filter(|&h| h > 0)
        .or_else(|| {
            let h = face.glyph_index('H')?;
            Some(face.glyph_bounding_box(h)?.y_max)
        })
        .unwrap_or(face.ascender())
}

/// The font's PostScript name (`name` id 6, else the full name without
/// spaces) cut down to what a PDF name may safely hold, or `Font`.
fn postscript_name(face: &Face<'_>) -> String {
    let find = |id: u16| {
        face.names()
            .into_iter()
            .filter(|n| n.name_id == id)
            .find_map(|n| n.to_string())
    };
    let name = find(ttf_parser::name_id::POST_SCRIPT_NAME)
        .or_else(|| find(ttf_parser::name_id::FULL_NAME))
        .unwrap_or_default();
    let name: String = name
        .chars()
        .filter(|c| c.is_ascii_graphic() && !"()<>[]{}/%#+".contains(*c))
        .take(63 - 7)
        .collect();
    if name.is_empty() {
        "Font".to_owned()
    } else {
        name
    }
}

/// A subset tag (§9.9.2): six capital letters, here derived from the font
/// name and the glyph set so the same text in the same font always gets the
/// same tag (deterministic output) and different subsets get different ones.
fn subset_tag(name: &str, glyphs: &[u16]) -> String {
    let mut hash = Sha256::new();
    hash.update(name.as_bytes());
    for g in glyphs {
        hash.update(g.to_be_bytes());
    }
    hash.finalize()
        .iter()
        .take(6)
        .map(|b| char::from(b'A' + b % 26))
        .collect()
}
