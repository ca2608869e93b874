//! Tests of font choice, layout, shaping and the font objects, on DejaVu Sans
//! and Helvetica's real metrics; a few render the result with hayro.

use std::collections::BTreeMap;
use std::io::Write as _;

use ttf_parser::Face;

use super::*;
use crate::pdf::write::Body;

/// A 784-byte OpenType font with CFF outlines whose glyphs are boxes, for
/// space, A, B, 漢 and 字 (made by `fonts/test/make_test_cff.py`).
static TEST_CFF: &[u8] = include_bytes!("../../fonts/test/PeedyTestCFF.otf");

fn prepare(text: &str) -> PreparedText {
    PreparedText::new(text.split('\n'), None).expect("text can be prepared")
}

fn dejavu() -> Face<'static> {
    Face::parse(DEJAVU_SANS, 0).expect("DejaVu Sans parses")
}

/// Glyph ids of `text`'s characters by plain `cmap` lookup (no shaping).
fn cmap_glyphs(text: &str) -> Vec<u16> {
    let face = dejavu();
    text.chars()
        .map(|c| face.glyph_index(c).expect("DejaVu has the char").0)
        .collect()
}

/// Writes the font objects with numbers from 10 on.
fn write(text: &PreparedText) -> (u32, Vec<NewObject>) {
    let mut next = 10;
    let mut alloc = || {
        next += 1;
        next - 1
    };
    let mut objects = Vec::new();
    let id = text.write_font(&mut alloc, &mut objects);
    (id, objects)
}

fn body(objects: &[NewObject], id: u32) -> &Body {
    &objects
        .iter()
        .find(|o| o.id == id)
        .expect("object exists")
        .body
}

fn direct(objects: &[NewObject], id: u32) -> String {
    match body(objects, id) {
        Body::Direct(d) => String::from_utf8(d.clone()).expect("ASCII dict"),
        Body::Stream { .. } => panic!("object {id} is a stream"),
    }
}

/// The object number after `/Key` in a dictionary (`/Key 12 0 R`).
fn reference(dict: &str, key: &str) -> u32 {
    let rest = dict
        .split(&format!("/{key} "))
        .nth(1)
        .unwrap_or_else(|| panic!("{key} in {dict}"));
    let rest = rest.trim_start_matches('[');
    rest.split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a reference")
}

fn stream_data(objects: &[NewObject], id: u32) -> (&[u8], &[u8]) {
    match body(objects, id) {
        Body::Stream {
            dict,
            data,
            compress,
        } => {
            assert!(compress, "font streams are compressed");
            (dict, data)
        }
        Body::Direct(_) => panic!("object {id} is not a stream"),
    }
}

/// The subset font program (`/FontFile2`) and the `/ToUnicode` CMap.
fn font_streams(text: &PreparedText) -> (Vec<u8>, String) {
    let (type0, objects) = write(text);
    let type0_dict = direct(&objects, type0);
    let cid_font = direct(&objects, reference(&type0_dict, "DescendantFonts"));
    let descriptor = direct(&objects, reference(&cid_font, "FontDescriptor"));
    let (_, program) = stream_data(&objects, reference(&descriptor, "FontFile2"));
    let (_, cmap) = stream_data(&objects, reference(&type0_dict, "ToUnicode"));
    (
        program.to_vec(),
        String::from_utf8(cmap.to_vec()).expect("ASCII CMap"),
    )
}

/// `CID -> text` from a `/ToUnicode` CMap's `bfchar` entries.
fn parse_to_unicode(cmap: &str) -> BTreeMap<u16, String> {
    let mut map = BTreeMap::new();
    let mut in_block = false;
    for line in cmap.lines() {
        if line.ends_with("beginbfchar") {
            in_block = true;
        } else if line == "endbfchar" {
            in_block = false;
        } else if in_block {
            let mut parts = line.split(' ');
            let cid = parts.next().expect("src").trim_matches(['<', '>']);
            let dst = parts.next().expect("dst").trim_matches(['<', '>']);
            let units: Vec<u16> = (0..dst.len())
                .step_by(4)
                .map(|i| u16::from_str_radix(&dst[i..i + 4], 16).expect("hex"))
                .collect();
            let cid = u16::from_str_radix(cid, 16).expect("hex");
            map.insert(cid, String::from_utf16(&units).expect("UTF-16"));
        }
    }
    map
}

/// The CIDs a line shows, in order (outside any `/ActualText`).
fn shown_cids(text: &PreparedText, line: usize) -> Vec<u16> {
    let mut ops = Vec::new();
    text.show_line(line, &mut ops);
    let ops = String::from_utf8(ops).expect("ASCII operators");
    let ops = ops.split("BDC\n").last().unwrap_or_default();
    let mut cids = Vec::new();
    for hex in ops.split('<').skip(1) {
        let hex = hex.split('>').next().unwrap_or_default();
        for i in (0..hex.len()).step_by(4) {
            cids.push(u16::from_str_radix(&hex[i..i + 4], 16).expect("hex"));
        }
    }
    cids
}

/// The `/ActualText` of a line, if it has one.
fn actual_text(text: &PreparedText, line: usize) -> Option<String> {
    let mut ops = Vec::new();
    text.show_line(line, &mut ops);
    let ops = String::from_utf8(ops).expect("ASCII operators");
    let hex = ops.split("/ActualText <FEFF").nth(1)?.split('>').next()?;
    let units: Vec<u16> = (0..hex.len())
        .step_by(4)
        .map(|i| u16::from_str_radix(&hex[i..i + 4], 16).expect("hex"))
        .collect();
    String::from_utf16(&units).ok()
}

#[test]
fn prepared_text_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<PreparedText>();
    check::<FontData>();
}

#[test]
fn helvetica_is_used_for_winansi_text() {
    for text in ["Ricky Bobby", "Café — déjà vu", "Line one\nLine (two)"] {
        let prepared = prepare(text);
        assert!(!prepared.embedded(), "{text}");
        assert_eq!(prepared.ascent(), 0.718);
        assert_eq!(prepared.descent(), -0.207);
        assert_eq!(prepared.line_height(), 1.2);
    }
    let (id, objects) = write(&prepare("Ricky Bobby"));
    assert_eq!(objects.len(), 1);
    assert_eq!(
        direct(&objects, id),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    );
}

#[test]
fn helvetica_widths_are_the_afm_widths() {
    let prepared = prepare("Ricky Bobby");
    assert_eq!(prepared.line_count(), 1);
    // R i c k y space B o b b y, from Helvetica.afm.
    let expected = [722, 222, 500, 500, 500, 278, 667, 556, 556, 556, 500];
    let expected = expected.iter().sum::<u32>() as f32 / 1000.0;
    assert!((prepared.line_width(0) - expected).abs() < 1e-6);
    assert!((prepared.line_width(0) - 5.557).abs() < 1e-6);
    // é = 556, em dash = 1000, space = 278.
    let prepared = prepare("é—é é");
    assert!(
        (prepared.line_width(0) - (556.0 + 1000.0 + 556.0 + 278.0 + 556.0) / 1000.0).abs() < 1e-6
    );
    assert_eq!(prepared.line_width(1), 0.0, "no such line");
}

#[test]
fn helvetica_lines_are_winansi_literal_strings_with_escapes() {
    let prepared = prepare("a(b)\\c\nCafé —\n");
    assert_eq!(prepared.line_count(), 3);
    let mut out = Vec::new();
    prepared.show_line(0, &mut out);
    assert_eq!(out, b"(a\\(b\\)\\\\c) Tj\n");
    out.clear();
    prepared.show_line(1, &mut out);
    assert_eq!(out, b"(Caf\xE9 \x97) Tj\n");
    out.clear();
    prepared.show_line(2, &mut out);
    assert!(out.is_empty(), "an empty line draws nothing");
    assert_eq!(prepared.line_width(2), 0.0);
}

#[test]
fn soft_hyphens_are_dropped() {
    let prepared = prepare("Ricky\u{AD}Bobby");
    let mut out = Vec::new();
    prepared.show_line(0, &mut out);
    assert_eq!(out, b"(RickyBobby) Tj\n");
}

#[test]
fn tabs_are_spaces() {
    let prepared = prepare("a\tb");
    assert!(!prepared.embedded());
    let mut out = Vec::new();
    prepared.show_line(0, &mut out);
    assert_eq!(out, b"(a b) Tj\n");
}

#[test]
fn other_scripts_are_embedded_in_dejavu_sans() {
    for text in ["Καλημέρα", "Привет", "שלום", "مرحبا", "Ricky → Bobby"] {
        let prepared = prepare(text);
        assert!(prepared.embedded(), "{text}");
        assert!(prepared.line_width(0) > 0.5, "{text}");
        // DejaVu Sans: hhea ascender 1901, descender -483, no line gap, 2048/em.
        assert!((prepared.ascent() - 1901.0 / 2048.0).abs() < 1e-6);
        assert!((prepared.descent() + 483.0 / 2048.0).abs() < 1e-6);
        assert!((prepared.line_height() - 2384.0 / 2048.0).abs() < 1e-6);
        let (_, objects) = write(&prepared);
        assert_eq!(
            objects.len(),
            5,
            "Type0, CIDFont, descriptor, program, ToUnicode"
        );
    }
}

#[test]
fn embedded_widths_are_the_fonts_advances() {
    // Cyrillic letters have no kerning pairs in DejaVu Sans; the width is
    // the plain sum of hmtx advances.
    let face = dejavu();
    let text = "Привет";
    let expected: u32 = cmap_glyphs(text)
        .iter()
        .map(|&g| {
            u32::from(
                face.glyph_hor_advance(ttf_parser::GlyphId(g))
                    .expect("advance"),
            )
        })
        .sum();
    let prepared = prepare(text);
    assert!((prepared.line_width(0) - expected as f32 / 2048.0).abs() < 1e-5);
    // Unshaped text in logical order: glyphs are the cmap's.
    assert_eq!(prepared.lines[0].glyphs, cmap_glyphs(text));
}

#[test]
fn a_custom_font_is_used_even_for_winansi_text() {
    let font = FontData::from_bytes(DEJAVU_SANS.to_vec()).expect("DejaVu is a font");
    let prepared = PreparedText::new(["Ricky Bobby"], Some(&font)).expect("prepared");
    assert!(prepared.embedded());
    let (program, _) = font_streams(&prepared);
    assert!(Face::parse(&program, 0).is_ok());
}

#[test]
fn arabic_is_shaped_into_joining_forms() {
    let text = "مرحبا";
    let prepared = prepare(text);
    let isolated: Vec<u16> = cmap_glyphs(text).into_iter().rev().collect();
    let shaped = &prepared.lines[0].glyphs;
    assert_eq!(shaped.len(), isolated.len());
    // Meem (initial), hah (medial), beh (medial) and alef (final) join; reh
    // joins to the meem before it (final form).
    let differing = shaped.iter().zip(&isolated).filter(|(a, b)| a != b).count();
    assert!(differing >= 4, "shaped {shaped:?} vs isolated {isolated:?}");
    // Drawn in visual order with no /ActualText: extractors reorder
    // right-to-left text themselves (see `draw_line`).
    assert_eq!(actual_text(&prepared, 0), None);
}

#[test]
fn hebrew_is_drawn_in_visual_order() {
    let text = "שלום";
    let prepared = prepare(text);
    let mut logical = cmap_glyphs(text);
    logical.reverse();
    assert_eq!(prepared.lines[0].glyphs, logical);
    assert_eq!(actual_text(&prepared, 0), None);
}

#[test]
fn mixed_direction_lines_keep_ltr_runs_in_place() {
    // LTR paragraph: "abc ", the Hebrew word reversed, " def".
    let text = "abc שלום def";
    let prepared = prepare(text);
    let glyphs = cmap_glyphs(text);
    let mut expected = glyphs[..4].to_vec();
    expected.extend(glyphs[4..8].iter().rev());
    expected.extend(&glyphs[8..]);
    assert_eq!(prepared.lines[0].glyphs, expected);
}

#[test]
fn actual_text_only_where_to_unicode_cannot_give_the_text() {
    let prepared = prepare("Привет\nΚαλημέρα\nשלום עולם");
    for line in 0..3 {
        assert_eq!(actual_text(&prepared, line), None);
    }
    // "ё" then "е" + combining diaeresis: shaping composes both into the
    // glyph of "ё", whose /ToUnicode entry is the first one, "ё"; the line
    // says what it really is.
    let text = "ёе\u{308}";
    let prepared = prepare(text);
    let glyphs = &prepared.lines[0].glyphs;
    assert_eq!(glyphs.len(), 2);
    assert_eq!(glyphs[0], glyphs[1]);
    assert_eq!(actual_text(&prepared, 0).as_deref(), Some(text));
    let mut ops = Vec::new();
    prepared.show_line(0, &mut ops);
    let ops = String::from_utf8(ops).expect("ASCII");
    assert!(ops.starts_with("/Span <</ActualText <FEFF"), "{ops}");
    assert!(ops.ends_with(">> BDC\n<00010001> Tj\nEMC\n"), "{ops}");
}

#[test]
fn a_missing_glyph_is_an_error_naming_the_char() {
    let err = PreparedText::new(["Hello 漢"], None).expect_err("DejaVu has no Han");
    assert_eq!(
        err,
        StampError::Font("the font has no glyph for '漢' (U+6F22)".into())
    );
    assert_eq!(err.code(), "font");
    // Also in a custom font.
    let font = FontData::from_bytes(DEJAVU_SANS.to_vec()).expect("DejaVu is a font");
    let err = PreparedText::new(["ok", "漢字"], Some(&font)).expect_err("no Han");
    assert!(err.to_string().contains("U+6F22"), "{err}");
}

#[test]
fn whitespace_without_a_glyph_is_drawn_as_space() {
    // DejaVu Sans has no U+3000 IDEOGRAPHIC SPACE.
    assert!(dejavu().glyph_index('\u{3000}').is_none());
    let prepared = prepare("Привет\u{3000}мир");
    assert_eq!(prepared.lines[0].glyphs, cmap_glyphs("Привет мир"));
}

#[test]
fn garbage_is_not_a_font() {
    let err = FontData::from_bytes(b"garbage".to_vec()).expect_err("not a font");
    assert!(matches!(err, StampError::Font(_)), "{err:?}");
    assert!(
        err.to_string().contains("not a TrueType/OpenType font"),
        "{err}"
    );
    assert!(FontData::from_bytes(Vec::new()).is_err());
    // A font cut short does not parse either.
    assert!(FontData::from_bytes(DEJAVU_SANS[..100].to_vec()).is_err());
}

/// DejaVu Sans with the table `tag` renamed, so the font lacks it.
fn dejavu_without(tag: &[u8; 4]) -> Vec<u8> {
    let mut data = DEJAVU_SANS.to_vec();
    let tables = usize::from(u16::from_be_bytes([data[4], data[5]]));
    let record = (0..tables)
        .map(|i| 12 + 16 * i)
        .find(|&at| &data[at..at + 4] == tag)
        .expect("DejaVu has the table");
    data[record..record + 4].copy_from_slice(b"zzzz");
    data
}

#[test]
fn fonts_without_a_cmap_or_outlines_are_refused() {
    let err = FontData::from_bytes(dejavu_without(b"cmap")).expect_err("no cmap");
    assert_eq!(
        err,
        StampError::Font("the font has no character map (cmap table)".into())
    );
    let err = FontData::from_bytes(dejavu_without(b"glyf")).expect_err("no outlines");
    assert!(
        err.to_string()
            .contains("neither TrueType (glyf) nor CFF outlines"),
        "{err}"
    );
}

#[test]
fn a_cff_font_is_embedded_as_cid_font_type0() {
    let font = FontData::from_bytes(TEST_CFF.to_vec()).expect("a CFF OpenType font");
    let prepared = PreparedText::new(["漢字 AB", "B"], Some(&font)).expect("the font has them");
    assert!(prepared.embedded());
    // Advances 1000 + 1000 + 250 + 600 + 600 at 1000 units per em.
    assert!((prepared.line_width(0) - 3.45).abs() < 1e-6);
    assert!((prepared.line_width(1) - 0.6).abs() < 1e-6);
    assert!((prepared.ascent() - 0.88).abs() < 1e-6);
    assert!((prepared.descent() + 0.12).abs() < 1e-6);
    assert!((prepared.line_height() - 1.0).abs() < 1e-6);

    let (type0, objects) = write(&prepared);
    let type0_dict = direct(&objects, type0);
    assert!(
        type0_dict.contains("+PeedyTestCFF-Identity-H /Encoding /Identity-H"),
        "{type0_dict}"
    );
    let cid_font = direct(&objects, reference(&type0_dict, "DescendantFonts"));
    assert!(cid_font.contains("/Subtype /CIDFontType0 "), "{cid_font}");
    assert!(!cid_font.contains("CIDToGIDMap"), "{cid_font}");
    // CIDs follow the font's glyph order: space, A, B, 漢, 字.
    assert!(
        cid_font.contains("/W [1 [250 600 600 1000 1000]]"),
        "{cid_font}"
    );
    let descriptor = direct(&objects, reference(&cid_font, "FontDescriptor"));
    assert!(
        descriptor.contains("/Ascent 880 /Descent -120 /CapHeight 700"),
        "{descriptor}"
    );
    let (dict, program) = stream_data(&objects, reference(&descriptor, "FontFile3"));
    assert_eq!(dict, b"<< /Subtype /CIDFontType0C >>");
    // A bare CFF font with the glyphs drawn, CIDs = its glyph ids.
    let cff = ttf_parser::cff::Table::parse(program).expect("a CFF table");
    assert_eq!(cff.number_of_glyphs(), 6);
    assert_eq!(shown_cids(&prepared, 0), [4, 5, 1, 2, 3]);
    assert_eq!(shown_cids(&prepared, 1), [3]);
    let map = parse_to_unicode(&font_streams_cff(&prepared));
    let text: String = shown_cids(&prepared, 0)
        .iter()
        .map(|c| map[c].as_str())
        .collect();
    assert_eq!(text, "漢字 AB");

    let inked = inked_columns(one_page_pdf(&prepared));
    let first = inked.iter().position(|&i| i).expect("some ink");
    let last = inked.iter().rposition(|&i| i).expect("some ink");
    // Boxes from x = 20 + 36 * 0.1 to 20 + 36 * (3.45 - 0.6 + 0.52).
    assert!((23..=24).contains(&first), "{first}");
    assert!((140..=142).contains(&last), "{last}");

    let err = PreparedText::new(["ABC"], Some(&font)).expect_err("no C");
    assert_eq!(
        err,
        StampError::Font("the font has no glyph for 'C' (U+0043)".into())
    );
}

/// The `/ToUnicode` CMap of an embedded font of any kind.
fn font_streams_cff(text: &PreparedText) -> String {
    let (type0, objects) = write(text);
    let type0_dict = direct(&objects, type0);
    let (_, cmap) = stream_data(&objects, reference(&type0_dict, "ToUnicode"));
    String::from_utf8(cmap.to_vec()).expect("ASCII CMap")
}

#[test]
fn the_font_program_is_a_small_subset() {
    let prepared = prepare("Καλημέρα κόσμε");
    let (program, _) = font_streams(&prepared);
    let subset = Face::parse(&program, 0).expect("the subset parses");
    let full = dejavu();
    assert!(subset.number_of_glyphs() < full.number_of_glyphs() / 100);
    // .notdef, the distinct letters and the space come first (CIDs 1..=n);
    // the accented letters' components follow.
    let distinct: std::collections::BTreeSet<char> = "Καλημέρα κόσμε".chars().collect();
    let cids: std::collections::BTreeSet<u16> = shown_cids(&prepared, 0).into_iter().collect();
    assert_eq!(cids, (1..=distinct.len() as u16).collect());
    assert!(usize::from(subset.number_of_glyphs()) < distinct.len() + 10);
    assert!(program.len() < 20_000, "{} bytes", program.len());
    // CIDs are the subset's glyph ids and keep the original outlines'
    // advances.
    let cids = shown_cids(&prepared, 0);
    for (cid, gid) in cids.iter().zip(&prepared.lines[0].glyphs) {
        assert_eq!(
            subset.glyph_hor_advance(ttf_parser::GlyphId(*cid)),
            full.glyph_hor_advance(ttf_parser::GlyphId(*gid))
        );
    }
}

#[test]
fn font_objects_follow_the_spec() {
    let prepared = prepare("Привет");
    let (type0, objects) = write(&prepared);
    assert_eq!(type0, 10);
    let ids: Vec<u32> = objects.iter().map(|o| o.id).collect();
    assert_eq!(ids, [10, 11, 12, 13, 14]);
    let type0_dict = direct(&objects, type0);
    let PreparedFont::Embedded(font) = &prepared.font else {
        panic!("embedded")
    };
    let base = font.base_font();
    assert_eq!(base.len(), "ABCDEF+DejaVuSans".len(), "{base}");
    assert!(base.ends_with("+DejaVuSans"), "{base}");
    assert!(base[..6].bytes().all(|b| b.is_ascii_uppercase()), "{base}");
    assert_eq!(
        type0_dict,
        format!(
            "<< /Type /Font /Subtype /Type0 /BaseFont /{base} /Encoding /Identity-H \
             /DescendantFonts [11 0 R] /ToUnicode 14 0 R >>"
        )
    );
    let cid_font = direct(&objects, 11);
    assert!(cid_font.starts_with(&format!(
        "<< /Type /Font /Subtype /CIDFontType2 /BaseFont /{base} \
         /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> \
         /FontDescriptor 12 0 R /W [1 ["
    )));
    assert!(
        cid_font.ends_with("]] /CIDToGIDMap /Identity >>"),
        "{cid_font}"
    );
    let descriptor = direct(&objects, 12);
    assert!(
        descriptor.starts_with(&format!(
            "<< /Type /FontDescriptor /FontName /{base} /Flags 4 /FontBBox ["
        )),
        "{descriptor}"
    );
    assert!(
        descriptor.contains("/ItalicAngle 0 /Ascent 928 /Descent -236 /CapHeight 729"),
        "{descriptor}"
    );
    assert!(descriptor.ends_with("/FontFile2 13 0 R >>"), "{descriptor}");
    let (dict, program) = stream_data(&objects, 13);
    assert_eq!(dict, format!("<< /Length1 {} >>", program.len()).as_bytes());
    // A different glyph set gets a different tag.
    let PreparedFont::Embedded(other) = &prepare("Привет!").font else {
        panic!("embedded")
    };
    assert_ne!(&other.base_font()[..6], &base[..6]);
}

#[test]
fn to_unicode_maps_every_cid_back_to_its_text() {
    let text = "Привет, Καλημέρα";
    let prepared = prepare(text);
    let (_, cmap) = font_streams(&prepared);
    assert!(cmap.contains("begincodespacerange\n<0000> <FFFF>\nendcodespacerange"));
    let map = parse_to_unicode(&cmap);
    let cids = shown_cids(&prepared, 0);
    assert_eq!(cids.len(), text.chars().count());
    let extracted: String = cids.iter().map(|c| map[c].as_str()).collect();
    assert_eq!(extracted, text);
    // The same as the font's own map.
    let PreparedFont::Embedded(font) = &prepared.font else {
        panic!("embedded")
    };
    assert_eq!(&map, font.to_unicode());

    // Arabic: every shaped glyph maps back to the letter it shows.
    let prepared = prepare("مرحبا");
    let (_, cmap) = font_streams(&prepared);
    let map = parse_to_unicode(&cmap);
    let mut letters: Vec<String> = shown_cids(&prepared, 0)
        .iter()
        .map(|c| map[c].clone())
        .collect();
    letters.reverse();
    assert_eq!(letters.concat(), "مرحبا");
}

#[test]
fn output_is_deterministic() {
    for text in ["Привет мир\nשלום", "مرحبا بالعالم", "Ricky Bobby"] {
        let a = write(&prepare(text));
        let b = write(&prepare(text));
        assert_eq!(a, b, "{text}");
        let (mut ops_a, mut ops_b) = (Vec::new(), Vec::new());
        prepare(text).show_line(0, &mut ops_a);
        prepare(text).show_line(0, &mut ops_b);
        assert_eq!(ops_a, ops_b);
    }
}

#[test]
fn kerning_becomes_tj_adjustments() {
    // DejaVu Sans kerns "AV"; the line is drawn with TJ and its width is the
    // kerned width, less than the sum of the advances.
    let font = FontData::from_bytes(DEJAVU_SANS.to_vec()).expect("font");
    let prepared = PreparedText::new(["AVAVA"], Some(&font)).expect("prepared");
    let mut ops = Vec::new();
    prepared.show_line(0, &mut ops);
    let ops = String::from_utf8(ops).expect("ASCII");
    assert!(ops.starts_with('[') && ops.ends_with("] TJ\n"), "{ops}");
    let face = dejavu();
    let plain: u32 = cmap_glyphs("AVAVA")
        .iter()
        .map(|&g| {
            u32::from(
                face.glyph_hor_advance(ttf_parser::GlyphId(g))
                    .expect("advance"),
            )
        })
        .sum();
    assert!(prepared.line_width(0) < plain as f32 / 2048.0);
    // Each adjustment is positive (moves left) and equals the kerning.
    let adjust: f32 = ops
        .trim_start_matches('[')
        .trim_end_matches("] TJ\n")
        .split(['<', '>'])
        .step_by(2) // the rest are the hex strings
        .filter_map(|s| s.trim().parse::<f32>().ok())
        .sum();
    assert!(adjust > 0.0, "{ops}");
    let kerned = plain as f32 / 2048.0 - prepared.line_width(0);
    assert!(
        (adjust / 1000.0 - kerned).abs() < 1e-3,
        "{adjust} vs {kerned}"
    );
}

/// A one-page PDF drawing `text`'s lines at 36 pt, with its font as /F1.
fn one_page_pdf(text: &PreparedText) -> Vec<u8> {
    let mut content = Vec::new();
    for i in 0..text.line_count() {
        let y = 150.0 - 50.0 * i as f32;
        content.extend_from_slice(format!("BT /F1 36 Tf 20 {y} Td ").as_bytes());
        text.show_line(i, &mut content);
        content.extend_from_slice(b"ET\n");
    }
    let mut objects = vec![
        NewObject::direct(1, "<< /Type /Catalog /Pages 2 0 R >>"),
        NewObject::direct(2, "<< /Type /Pages /Kids [3 0 R] /Count 1 >>"),
        NewObject::direct(
            3,
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 200] \
             /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        ),
        NewObject::stream(4, "<< >>", content, false),
    ];
    let mut next = 5;
    let font = text.write_font(
        &mut || {
            next += 1;
            next - 1
        },
        &mut objects,
    );
    assert_eq!(font, 5);
    let mut pdf = b"%PDF-1.7\n".to_vec();
    let mut offsets = Vec::new();
    for o in &objects {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n", o.id).as_bytes());
        match &o.body {
            Body::Direct(d) => pdf.extend_from_slice(d),
            Body::Stream {
                dict,
                data,
                compress,
            } => {
                let (filter, data) = if *compress {
                    let mut z =
                        flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                    z.write_all(data).expect("in memory");
                    (" /Filter /FlateDecode", z.finish().expect("in memory"))
                } else {
                    ("", data.clone())
                };
                let dict = String::from_utf8(dict.clone()).expect("ASCII");
                let dict = dict.trim_end_matches(">>");
                pdf.extend_from_slice(
                    format!("{dict} /Length {}{filter} >>\nstream\n", data.len()).as_bytes(),
                );
                pdf.extend_from_slice(&data);
                pdf.extend_from_slice(b"\nendstream");
            }
        }
        pdf.extend_from_slice(b"\nendobj\n");
    }
    let xref = pdf.len();
    pdf.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", next).as_bytes());
    for off in offsets {
        pdf.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!("trailer\n<< /Size {next} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n").as_bytes(),
    );
    if let Some(dir) = std::env::var_os("PEEDY_TEXT_TEST_PDFS") {
        let name: String = text.lines[0]
            .glyphs
            .iter()
            .take(4)
            .map(|g| format!("{g}-"))
            .collect();
        let _ = std::fs::write(
            std::path::Path::new(&dir).join(format!("text-{name}.pdf")),
            &pdf,
        );
    }
    pdf
}

/// Renders the page and returns, per pixel column, whether it has ink.
fn inked_columns(pdf: Vec<u8>) -> Vec<bool> {
    use hayro::hayro_interpret::InterpreterSettings;
    use hayro::hayro_syntax::Pdf;
    use hayro::vello_cpu::color::palette::css::WHITE;
    use hayro::{PixmapSettings, RenderCache, RenderSettings, render};

    let pdf = Pdf::new(pdf).expect("hayro reads the PDF");
    let page = pdf.pages().first().expect("one page");
    let cache = RenderCache::new();
    let pixmap = render(
        page,
        &cache,
        &InterpreterSettings::default(),
        &RenderSettings::default(),
        &PixmapSettings {
            bg_color: WHITE,
            ..Default::default()
        },
    );
    let (w, h) = (pixmap.width(), pixmap.height());
    (0..w)
        .map(|x| (0..h).any(|y| pixmap.sample(x, y).r < 128))
        .collect()
}

#[test]
fn embedded_text_renders() {
    for text in ["Привет", "שלום", "مرحبا", "Καλημέρα"] {
        let prepared = prepare(text);
        let inked = inked_columns(one_page_pdf(&prepared));
        let first = inked.iter().position(|&i| i).expect("some ink");
        let last = inked.iter().rposition(|&i| i).expect("some ink");
        // Drawn from x = 20, about as wide as laid out (side bearings aside).
        let expected = 36.0 * prepared.line_width(0);
        let drawn = (last - first + 1) as f32;
        assert!((18..=26).contains(&first), "{text}: starts at {first}");
        assert!(
            drawn > expected * 0.8 && drawn < expected * 1.05,
            "{text}: drawn {drawn} px, laid out {expected}"
        );
    }
}
