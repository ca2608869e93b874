//! Helvetica, the standard-14 font the original stamp used: its
//! WinAnsiEncoding (PDF 1.7 Annex D.2) and its advance widths.
//!
//! Nothing is embedded for Helvetica, so a viewer draws it with its own copy
//! (or a metric-compatible substitute such as Nimbus Sans); Peedy only needs
//! the widths to measure the text. They come from Adobe's `Helvetica.afm`
//! (Core 14 AFM, version 003.001, 1999) — copied via groff's `devps/HR`, which
//! is generated from that AFM at 1000 units per em, so the numbers are the
//! AFM's `WX` values unchanged.

/// The font's ascender from the AFM (`Ascender 718`), in em.
pub(super) const ASCENT: f32 = 0.718;
/// The font's descender from the AFM (`Descender -207`), in em.
pub(super) const DESCENT: f32 = -0.207;
/// Distance between baselines, in em: the customary 120 % of the size.
pub(super) const LINE_HEIGHT: f32 = 1.2;

/// The byte WinAnsiEncoding uses for `c`, or `None` when it has none.
///
/// WinAnsiEncoding is Windows code page 1252 with two PDF quirks that do not
/// matter here (0xA0 and 0xAD show `space` and `hyphen`).
pub(super) fn encode(c: char) -> Option<u8> {
    let b = match c {
        ' '..='~' | '\u{A0}'..='\u{FF}' => c as u8,
        '\u{20AC}' => 0x80, // €
        '\u{201A}' => 0x82, // ‚
        '\u{0192}' => 0x83, // ƒ
        '\u{201E}' => 0x84, // „
        '\u{2026}' => 0x85, // …
        '\u{2020}' => 0x86, // †
        '\u{2021}' => 0x87, // ‡
        '\u{02C6}' => 0x88, // ˆ
        '\u{2030}' => 0x89, // ‰
        '\u{0160}' => 0x8A, // Š
        '\u{2039}' => 0x8B, // ‹
        '\u{0152}' => 0x8C, // Œ
        '\u{017D}' => 0x8E, // Ž
        '\u{2018}' => 0x91, // ‘
        '\u{2019}' => 0x92, // ’
        '\u{201C}' => 0x93, // “
        '\u{201D}' => 0x94, // ”
        '\u{2022}' => 0x95, // •
        '\u{2013}' => 0x96, // –
        '\u{2014}' => 0x97, // —
        '\u{02DC}' => 0x98, // ˜
        '\u{2122}' => 0x99, // ™
        '\u{0161}' => 0x9A, // š
        '\u{203A}' => 0x9B, // ›
        '\u{0153}' => 0x9C, // œ
        '\u{017E}' => 0x9E, // ž
        '\u{0178}' => 0x9F, // Ÿ
        _ => return None,
    };
    Some(b)
}

/// Advance width of WinAnsi code `b` in thousandths of an em (0 for the
/// five codes WinAnsiEncoding leaves undefined and for control codes).
pub(super) fn width(b: u8) -> u16 {
    match b {
        0x20.. => WIDTHS[usize::from(b - 0x20)],
        _ => 0,
    }
}

/// `WX` of each WinAnsi code from 0x20 to 0xFF, from `Helvetica.afm`.
#[rustfmt::skip]
const WIDTHS: [u16; 224] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, // 0x20
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, // 0x30
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, // 0x40
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, // 0x50
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, // 0x60
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, 0, // 0x70
    556, 0, 222, 556, 333, 1000, 556, 556, 333, 1000, 667, 333, 1000, 0, 611, 0, // 0x80
    0, 222, 222, 333, 333, 350, 556, 1000, 333, 1000, 500, 333, 944, 0, 500, 667, // 0x90
    278, 333, 556, 556, 556, 556, 260, 556, 333, 737, 370, 556, 584, 333, 737, 333, // 0xA0
    400, 584, 333, 333, 333, 578, 537, 278, 333, 333, 365, 556, 834, 834, 834, 611, // 0xB0
    667, 667, 667, 667, 667, 667, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278, // 0xC0
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611, // 0xD0
    556, 556, 556, 556, 556, 556, 889, 500, 556, 556, 556, 556, 278, 278, 278, 278, // 0xE0
    556, 556, 556, 556, 556, 556, 556, 584, 611, 556, 556, 556, 556, 500, 556, 500, // 0xF0
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn winansi_covers_latin1_and_the_cp1252_extras() {
        assert_eq!(encode('A'), Some(0x41));
        assert_eq!(encode('é'), Some(0xE9));
        assert_eq!(encode('—'), Some(0x97));
        assert_eq!(encode('€'), Some(0x80));
        assert_eq!(encode('\u{7F}'), None);
        assert_eq!(encode('\u{81}'), None);
        assert_eq!(encode('Ω'), None);
        // Every defined code has a width, every undefined one has none.
        for c in (0x20u32..0x3000).filter_map(char::from_u32) {
            if let Some(b) = encode(c) {
                assert!(width(b) > 0, "{c:?}");
            }
        }
        assert_eq!(width(0x81), 0);
    }
}
