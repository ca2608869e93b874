//! Shaping one line of text into positioned glyphs in visual order.
//!
//! The line is split into bidi runs (UAX #9, `unicode-bidi`) laid out in
//! visual order, each run into script segments (so a Latin word inside
//! Devanagari text gets the right shaper), and each segment is shaped by
//! `rustybuzz` in its direction: Arabic joins, marks are positioned, RTL
//! glyphs come out right to left.

use std::ops::Range;

use rustybuzz::ttf_parser::Tag;
use rustybuzz::{Direction, UnicodeBuffer};
use unicode_bidi::BidiInfo;
use unicode_script::{Script as UScript, UnicodeScript};

use crate::error::{Result, StampError};

/// One glyph of a shaped line, in visual (left-to-right) order.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ShapedGlyph {
    /// Glyph id in the font (0 only for an invisible whitespace glyph, see
    /// [`ShapedGlyph::visible`]).
    pub gid: u16,
    /// How far the pen moves after this glyph, in font units.
    pub x_advance: i32,
    /// Horizontal shift of this glyph from the pen, in font units.
    pub x_offset: i32,
    /// Vertical shift of this glyph from the baseline, in font units.
    pub y_offset: i32,
    /// The byte range of the line this glyph's cluster comes from.
    pub text: Range<usize>,
    /// Whether this is the first glyph of its cluster (the one that carries
    /// the cluster's text in `/ToUnicode`).
    pub first_in_cluster: bool,
    /// False for a whitespace the font has no glyph for: only its advance is
    /// kept.
    pub visible: bool,
}

/// Shapes `line` with `face`; fails when the font has no glyph for a
/// non-whitespace character.
pub(super) fn shape_line(face: &rustybuzz::Face<'_>, line: &str) -> Result<Vec<ShapedGlyph>> {
    let mut glyphs = Vec::new();
    if line.is_empty() {
        return Ok(glyphs);
    }
    let bidi = BidiInfo::new(line, None);
    for para in &bidi.paragraphs {
        let (levels, runs) = bidi.visual_runs(para, para.range.clone());
        for run in runs {
            let rtl = levels.get(run.start).is_some_and(|l| l.is_rtl());
            let mut segments = script_segments(line, run);
            if rtl {
                // Later segments of a right-to-left run stand further left.
                segments.reverse();
            }
            for (range, script) in segments {
                shape_segment(face, line, range, script, rtl, &mut glyphs)?;
            }
        }
    }
    Ok(glyphs)
}

/// Shapes `line[range]` and appends its glyphs (already in visual order).
fn shape_segment(
    face: &rustybuzz::Face<'_>,
    line: &str,
    range: Range<usize>,
    script: Option<rustybuzz::Script>,
    rtl: bool,
    out: &mut Vec<ShapedGlyph>,
) -> Result<()> {
    let text = &line[range.clone()];
    let mut buffer = UnicodeBuffer::new();
    buffer.push_str(text);
    // The neighbours decide Arabic joining at a segment's edges.
    buffer.set_pre_context(&line[..range.start]);
    buffer.set_post_context(&line[range.end..]);
    buffer.set_direction(if rtl {
        Direction::RightToLeft
    } else {
        Direction::LeftToRight
    });
    if let Some(script) = script {
        buffer.set_script(script);
    }
    buffer.guess_segment_properties();
    let shaped = rustybuzz::shape(face, &[], buffer);

    let infos = shaped.glyph_infos();
    let positions = shaped.glyph_positions();
    // A cluster spans from its start to the next larger cluster start.
    let mut starts: Vec<usize> = infos.iter().map(|i| i.cluster as usize).collect();
    starts.sort_unstable();
    starts.dedup();
    let cluster_end = |start: usize| {
        starts
            .iter()
            .copied()
            .find(|&s| s > start)
            .unwrap_or(text.len())
    };
    // The glyph that comes first in logical order carries the cluster's
    // text: the first in the buffer, or the last for right-to-left text
    // (whose buffer is in visual order).
    let mut first = vec![false; infos.len()];
    let mut seen = Vec::with_capacity(starts.len());
    let mut order: Vec<usize> = (0..infos.len()).collect();
    if rtl {
        order.reverse();
    }
    for i in order {
        let start = infos[i].cluster as usize;
        if !seen.contains(&start) {
            seen.push(start);
            first[i] = true;
        }
    }
    for ((info, pos), first_in_cluster) in infos.iter().zip(positions).zip(first) {
        let start = (info.cluster as usize).min(text.len());
        let end = cluster_end(start);
        let cluster = text.get(start..end).unwrap_or_default();
        let gid = u16::try_from(info.glyph_id).unwrap_or(0);
        let mut visible = true;
        if gid == 0 {
            if let Some(c) = cluster
                .chars()
                .find(|&c| !c.is_whitespace() && face.glyph_index(c).is_none())
                .or_else(|| cluster.chars().find(|c| !c.is_whitespace()))
            {
                return Err(missing_glyph(c));
            }
            visible = false;
        }
        out.push(ShapedGlyph {
            gid,
            x_advance: pos.x_advance,
            x_offset: pos.x_offset,
            y_offset: pos.y_offset,
            text: range.start + start..range.start + end,
            first_in_cluster,
            visible,
        });
    }
    Ok(())
}

/// The error for a character the font cannot draw.
pub(super) fn missing_glyph(c: char) -> StampError {
    StampError::Font(format!(
        "the font has no glyph for '{c}' (U+{:04X})",
        u32::from(c)
    ))
}

/// Splits `range` of `text` into runs of one script each. Characters shared
/// by scripts (spaces, digits, punctuation, combining marks) join the run
/// they are in; a leading run of them joins the first real script.
fn script_segments(
    text: &str,
    range: Range<usize>,
) -> Vec<(Range<usize>, Option<rustybuzz::Script>)> {
    let mut segments = Vec::new();
    let mut start = range.start;
    let mut current: Option<UScript> = None;
    for (i, c) in text[range.clone()].char_indices() {
        let script = c.script();
        if matches!(
            script,
            UScript::Common | UScript::Inherited | UScript::Unknown
        ) {
            continue;
        }
        match current {
            None => current = Some(script),
            Some(cur) if cur != script => {
                let at = range.start + i;
                segments.push((start..at, to_hb_script(cur)));
                start = at;
                current = Some(script);
            }
            Some(_) => {}
        }
    }
    segments.push((start..range.end, current.and_then(to_hb_script)));
    segments
}

/// The rustybuzz script for a Unicode script, by its ISO 15924 code.
fn to_hb_script(script: UScript) -> Option<rustybuzz::Script> {
    let code = script.short_name().as_bytes();
    let tag: [u8; 4] = code.try_into().ok()?;
    rustybuzz::Script::from_iso15924_tag(Tag::from_bytes(&tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_split_at_changes_and_commons_stick() {
        let text = "abc 123 Привет, мир";
        let segs = script_segments(text, 0..text.len());
        assert_eq!(segs.len(), 2);
        assert_eq!(&text[segs[0].0.clone()], "abc 123 ");
        assert_eq!(&text[segs[1].0.clone()], "Привет, мир");
        assert_eq!(segs[1].1, Some(rustybuzz::script::CYRILLIC));
        let segs = script_segments("123", 0..3);
        assert_eq!(segs, [(0..3, None)]);
    }
}
