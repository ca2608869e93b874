//! Golden files: the exact update the engine appends to generated fixtures
//! for fixed watermark specs, stored in `tests/golden/*.update`. A change in
//! the engine's output shows up here as a diff to review.
//!
//! After an intended change, regenerate them with
//! `UPDATE_GOLDEN=1 cargo test -p peedy-stamp --test golden` and review the
//! new files (each is also checked with `qpdf --check` and `mutool`).

mod common;

use std::path::PathBuf;

use common::*;
use peedy_stamp::{Anchor, Color, Position, Stamped, Watermark};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Stamps `input` with `wm`, checks the output is a valid PDF with the
/// watermark text, and compares the update with `tests/golden/NAME.update`
/// (or rewrites it when `UPDATE_GOLDEN` is set).
fn check_golden(name: &str, input: &[u8], wm: Watermark, max_len: usize) -> Stamped {
    let lines: Vec<String> = wm.lines().map(str::to_owned).collect();
    let stamped = stamper(wm).stamp(input).expect("stamps");
    let Stamped::Appended { update, .. } = &stamped else {
        panic!("{name}: expected an appended update, got a rewrite");
    };
    assert!(
        update.len() <= max_len,
        "{name}: the update has {} bytes, more than the {max_len} expected",
        update.len()
    );

    // Whatever is stored must be a good update: check the actual one.
    let output = stamped.to_vec(input);
    let check = qpdf_check_full(&output, None);
    assert_eq!(check.code, 0, "{name}: qpdf --check: {check:?}");
    let texts = texts_of(&output, None);
    for (i, t) in texts.iter().enumerate() {
        for line in &lines {
            assert!(
                t.contains(line.as_str()),
                "{name}: page {} lacks {line:?}: {t:?}",
                i + 1
            );
        }
    }

    let path = golden_dir().join(format!("{name}.update"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_dir()).expect("create tests/golden");
        std::fs::write(&path, update).expect("write the golden file");
        eprintln!("rewrote {}", path.display());
        return stamped;
    }
    let expected = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{name}: golden file {} missing ({e}); create it with \
             UPDATE_GOLDEN=1 cargo test -p peedy-stamp --test golden",
            path.display()
        )
    });
    if *update != expected {
        let actual = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.update"));
        let _ = std::fs::write(&actual, update);
        let first = update
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(update.len().min(expected.len()));
        let context = |d: &[u8]| {
            String::from_utf8_lossy(&d[first.saturating_sub(40)..(first + 40).min(d.len())])
                .into_owned()
        };
        panic!(
            "{name}: the update differs from {} at byte {first} ({} bytes now, {} stored)\n\
             now:    {:?}\nstored: {:?}\nthe new update is at {}; if the change is intended, \
             run UPDATE_GOLDEN=1 cargo test -p peedy-stamp --test golden",
            path.display(),
            update.len(),
            expected.len(),
            context(update),
            context(&expected),
            actual.display()
        );
    }
    stamped
}

#[test]
fn golden_default_watermark_on_one_page() {
    let stamped = check_golden(
        "default",
        &one_page(),
        Watermark::new(TEXT).expect("valid text"),
        4096,
    );
    let r = stamped.report();
    assert_eq!((r.pages, r.stamped_pages), (1, 1));
    assert!(!r.embedded_font, "Latin text uses Helvetica");
}

#[test]
fn golden_header_multiline_colour_position_on_mixed_pages() {
    let input = Fixture::new()
        .page(PageSpec::with_text("Page 1"))
        .page(PageSpec::with_text("Page 2").rotate(90))
        .page(
            PageSpec::with_text("Page 3")
                .media_box(Some([0.0, 0.0, 842.0, 595.0]))
                .crop_box([20.0, 20.0, 822.0, 575.0]),
        )
        .build();
    let wm = Watermark::new("Ricky Bobby\nCONFIDENTIAL")
        .expect("valid text")
        .with_header(true)
        .with_color(Color {
            r: 0x20,
            g: 0x60,
            b: 0xc0,
        })
        .with_position(Position {
            anchor: Anchor::TopRight,
            dx: -20.0,
            dy: -30.0,
        });
    let stamped = check_golden("header_multiline_color_position", &input, wm, 8192);
    let r = stamped.report();
    assert_eq!((r.pages, r.stamped_pages), (3, 3));
}

#[test]
fn golden_greek_text_embeds_a_font_subset() {
    let stamped = check_golden(
        "greek_embedded_font",
        &pages(2),
        Watermark::new("Καλημέρα κόσμε").expect("valid text"),
        64 * 1024,
    );
    let r = stamped.report();
    assert!(r.embedded_font, "Greek needs the embedded font: {r:?}");
    assert_eq!((r.pages, r.stamped_pages), (2, 2));
}
