//! What a viewer shows: generated pages rendered with `hayro` before and
//! after stamping. The watermark's pixels darken (or tint) where the text
//! goes, the rest of the page is unchanged, and the text sits centred on the
//! visible area (the crop box) and upright for the reader on rotated pages.
//! Text direction is cross-checked with `mutool draw -F stext`.

mod common;

use common::*;
use peedy_stamp::{Anchor, Color, Layer, PageSelection, Position, Size, Watermark};

/// Pixels per point: Letter renders at 306 × 396.
const SCALE: f32 = 0.5;

/// Pixels that differ by more than a rounding error.
fn changed(before: &Image, after: &Image) -> Vec<(usize, usize)> {
    assert_eq!(
        (before.width, before.height),
        (after.width, after.height),
        "stamping changed the rendered page size"
    );
    let mut out = Vec::new();
    for y in 0..before.height {
        for x in 0..before.width {
            let (a, b) = (before.at(x, y), after.at(x, y));
            if (0..3).any(|i| a[i].abs_diff(b[i]) > 8) {
                out.push((x, y));
            }
        }
    }
    out
}

/// Mean position of `pixels`, as fractions of the image (0..1, y down).
fn centroid(img: &Image, pixels: &[(usize, usize)]) -> (f32, f32) {
    let n = pixels.len().max(1) as f32;
    let sx: f32 = pixels.iter().map(|p| p.0 as f32).sum();
    let sy: f32 = pixels.iter().map(|p| p.1 as f32).sum();
    (sx / n / img.width as f32, sy / n / img.height as f32)
}

/// The angle of the principal axis of `pixels` in degrees, as the reader
/// sees it (counter-clockwise from the x axis, y up), in (-90, 90].
fn principal_angle(pixels: &[(usize, usize)]) -> f32 {
    let n = pixels.len().max(1) as f32;
    let mx = pixels.iter().map(|p| p.0 as f32).sum::<f32>() / n;
    let my = pixels.iter().map(|p| -(p.1 as f32)).sum::<f32>() / n;
    let (mut sxx, mut syy, mut sxy) = (0.0f32, 0.0f32, 0.0f32);
    for &(x, y) in pixels {
        let (dx, dy) = (x as f32 - mx, -(y as f32) - my);
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    (0.5 * (2.0 * sxy).atan2(sxx - syy)).to_degrees()
}

/// Pixels of `region` (fractions `[x0, y0, x1, y1]`, y down) in `pixels`.
fn inside(img: &Image, pixels: &[(usize, usize)], region: [f32; 4]) -> usize {
    pixels
        .iter()
        .filter(|&&(x, y)| {
            let (fx, fy) = (x as f32 / img.width as f32, y as f32 / img.height as f32);
            fx >= region[0] && fx < region[2] && fy >= region[1] && fy < region[3]
        })
        .count()
}

/// Renders page `index` of `input` and of it stamped with `wm`.
fn before_after(input: &[u8], wm: Watermark, index: usize) -> (Image, Image, Vec<u8>) {
    let output = stamp_with(input, wm);
    (
        render(input, index, SCALE),
        render(&output, index, SCALE),
        output,
    )
}

fn default_wm() -> Watermark {
    Watermark::new(TEXT).expect("valid text")
}

fn blank(spec: PageSpec) -> Vec<u8> {
    Fixture::new().page(spec).build()
}

/// The reader's angle of the watermark line on page `page` per mutool.
fn watermark_line(pdf: &[u8], page: u32) -> TextLine {
    let lines = text_lines(pdf, page);
    lines
        .iter()
        .find(|l| l.text.contains(TEXT))
        .cloned()
        .unwrap_or_else(|| panic!("no line with {TEXT:?} on page {page}: {lines:?}"))
}

fn assert_reader_angle(line: &TextLine, degrees: f32, what: &str) {
    let (c, s) = (degrees.to_radians().cos(), degrees.to_radians().sin());
    assert!(
        (line.dir.0 - c).abs() < 0.02 && (line.dir.1 + s).abs() < 0.02,
        "{what}: the text runs along {:?}, expected ({c:.3}, {:.3}) = {degrees}° upright",
        line.dir,
        -s
    );
}

#[test]
fn watermark_darkens_the_middle_and_leaves_the_corners_alone() {
    let input = blank(PageSpec::blank());
    let (before, after, output) = before_after(&input, default_wm(), 0);
    assert_eq!((before.width, before.height), (306, 396));
    assert!(
        before.rgba.iter().all(|&v| v == 255),
        "the blank fixture renders white"
    );
    let px = changed(&before, &after);
    let total = before.width * before.height;
    assert!(
        px.len() > total / 100,
        "only {} of {total} pixels changed",
        px.len()
    );
    // Darker, and only as dark as 20 % black allows (255 × 0.8 ≈ 204).
    for &(x, y) in &px {
        let p = after.at(x, y);
        assert!(
            p[0] < 255 && p[0] == p[1] && p[1] == p[2],
            "{p:?} at {x},{y}"
        );
        assert!(p[0] >= 195, "too dark for opacity 0.2: {p:?} at {x},{y}");
    }
    let darkest = px.iter().map(|&(x, y)| after.at(x, y)[0]).min();
    assert!(
        darkest.is_some_and(|d| d <= 210),
        "darkest pixel {darkest:?}"
    );
    // Centred on the page.
    let (cx, cy) = centroid(&after, &px);
    assert!(
        (cx - 0.5).abs() < 0.05 && (cy - 0.5).abs() < 0.05,
        "centroid {cx},{cy}"
    );
    assert!(
        inside(&after, &px, [0.4, 0.4, 0.6, 0.6]) > 0,
        "nothing in the middle"
    );
    // The corners the 50° line does not cross stay white.
    assert_eq!(
        inside(&after, &px, [0.0, 0.0, 0.25, 0.25]),
        0,
        "top-left corner changed"
    );
    assert_eq!(
        inside(&after, &px, [0.75, 0.75, 1.0, 1.0]),
        0,
        "bottom-right corner changed"
    );
    // Along 50°, as the default says.
    let angle = principal_angle(&px);
    assert!((angle - 50.0).abs() < 8.0, "principal axis at {angle}°");
    assert_reader_angle(&watermark_line(&output, 1), 50.0, "unrotated page");
}

#[test]
fn original_content_survives_under_the_watermark() {
    let input = Fixture::new()
        .page(PageSpec::blank().contents(vec![
            b"0 0 1 rg 20 20 60 60 re f\n".to_vec(),
            text_ops("Original words", 36.0, 740.0),
        ]))
        .build();
    let (before, after, output) = before_after(&input, default_wm(), 0);
    // The blue square (bottom left, 10..40 px from the left and bottom) is
    // still there, untouched.
    let (x, y) = (20, after.height - 20);
    assert_eq!(before.at(x, y), [0, 0, 255, 255]);
    assert_eq!(after.at(x, y), [0, 0, 255, 255]);
    let t = text_of(&output, 1);
    assert!(t.contains("Original words") && t.contains(TEXT), "{t:?}");
}

#[test]
fn rotated_pages_show_the_watermark_centred_and_upright() {
    for rotate in [90, 180, 270, -90, 450] {
        let input = blank(PageSpec::blank().rotate(rotate));
        let (before, after, output) = before_after(&input, default_wm(), 0);
        let landscape = rotate.rem_euclid(180) == 90;
        assert_eq!(
            (before.width, before.height),
            if landscape { (396, 306) } else { (306, 396) },
            "/Rotate {rotate}: hayro shows the turned page"
        );
        let px = changed(&before, &after);
        // Auto size follows the original formula, which gives a landscape
        // page a smaller text (about 47 pt here, 102 pt on portrait).
        assert!(
            px.len() > 500,
            "/Rotate {rotate}: {} pixels changed",
            px.len()
        );
        let (cx, cy) = centroid(&after, &px);
        assert!(
            (cx - 0.5).abs() < 0.05 && (cy - 0.5).abs() < 0.05,
            "/Rotate {rotate}: centroid {cx},{cy}"
        );
        let angle = principal_angle(&px);
        assert!(
            (angle - 50.0).abs() < 8.0,
            "/Rotate {rotate}: the text runs at {angle}° as the reader sees it, not 50°"
        );
        assert_reader_angle(
            &watermark_line(&output, 1),
            50.0,
            &format!("/Rotate {rotate}"),
        );
    }
}

#[test]
fn rotation_inherited_from_the_page_tree_is_honoured() {
    let input = Fixture::new()
        .node_rotate(90)
        .page(PageSpec::blank())
        .build();
    let (before, after, output) = before_after(&input, default_wm(), 0);
    assert_eq!((before.width, before.height), (396, 306));
    let px = changed(&before, &after);
    let (cx, cy) = centroid(&after, &px);
    assert!(
        (cx - 0.5).abs() < 0.05 && (cy - 0.5).abs() < 0.05,
        "centroid {cx},{cy}"
    );
    assert_reader_angle(&watermark_line(&output, 1), 50.0, "inherited /Rotate 90");
}

#[test]
fn crop_box_smaller_than_media_box_centres_the_watermark_in_it() {
    // The crop box lies off the media box's centre (306, 396), which is
    // outside it: a watermark centred on the media box would barely show.
    let crop = [50.0, 50.0, 300.0, 400.0];
    for rotate in [0, 90] {
        let input = blank(PageSpec::blank().crop_box(crop).rotate(rotate));
        let output = stamp_with(&input, default_wm());
        // Full scale: the text is small on this small page.
        let (before, after) = (render(&input, 0, 1.0), render(&output, 0, 1.0));
        // hayro renders the crop box only.
        let (w, h) = (250, 350);
        assert_eq!(
            (before.width, before.height),
            if rotate == 90 { (h, w) } else { (w, h) },
            "hayro renders the crop box"
        );
        let px = changed(&before, &after);
        assert!(
            px.len() > 300,
            "/Rotate {rotate}: only {} pixels of the crop box changed",
            px.len()
        );
        let (cx, cy) = centroid(&after, &px);
        assert!(
            (cx - 0.5).abs() < 0.06 && (cy - 0.5).abs() < 0.06,
            "/Rotate {rotate}: centroid {cx},{cy} is not the crop box's centre"
        );
        // The text is sized for the crop box: it stays inside it, with the
        // margin (no changed pixel on the outermost rows and columns).
        assert!(
            px.iter()
                .all(|&(x, y)| x > 0 && y > 0 && x + 1 < after.width && y + 1 < after.height),
            "/Rotate {rotate}: the text touches the crop box's edge"
        );
        assert_reader_angle(&watermark_line(&output, 1), 50.0, "crop box");
    }
}

#[test]
fn inherited_media_box_sizes_the_watermark() {
    // A small square page whose /MediaBox comes from the /Pages node, and a
    // content array.
    let input = Fixture::new()
        .node_media_box([0.0, 0.0, 300.0, 300.0])
        .page(
            PageSpec::blank()
                .media_box(None)
                .contents(vec![b"q".to_vec(), b"Q".to_vec()]),
        )
        .build();
    let (before, after, _) = before_after(&input, default_wm(), 0);
    assert_eq!((before.width, before.height), (150, 150));
    let px = changed(&before, &after);
    assert!(px.len() > 150 * 150 / 100, "{} pixels changed", px.len());
    let (cx, cy) = centroid(&after, &px);
    assert!(
        (cx - 0.5).abs() < 0.05 && (cy - 0.5).abs() < 0.05,
        "centroid {cx},{cy}"
    );
    assert!(
        px.iter()
            .all(|&(x, y)| x > 0 && y > 0 && x + 1 < after.width && y + 1 < after.height),
        "the text runs off the page"
    );
}

/// A page covered by an opaque black rectangle, like a scan.
fn black_page() -> Vec<u8> {
    blank(PageSpec::blank().contents(vec![b"0 g 0 0 612 792 re f\n".to_vec()]))
}

fn red(opacity: f32) -> Watermark {
    default_wm()
        .with_color(Color { r: 255, g: 0, b: 0 })
        .with_opacity(opacity)
        .expect("valid opacity")
}

#[test]
fn layer_over_shows_on_opaque_content() {
    let input = black_page();
    let (before, after, _) = before_after(&input, red(0.5).with_layer(Layer::Over), 0);
    assert!(before.rgba.chunks(4).all(|p| p == [0, 0, 0, 255]));
    let px = changed(&before, &after);
    assert!(px.len() > 1000, "{} pixels changed", px.len());
    for &(x, y) in &px {
        let p = after.at(x, y);
        assert!(p[0] > p[1] && p[1] < 10 && p[2] < 10, "{p:?} at {x},{y}");
    }
    // Inside the glyphs: half-opaque red over black, 255 × 0.5.
    let reddest = px.iter().map(|&(x, y)| after.at(x, y)[0]).max();
    assert!(
        reddest.is_some_and(|r| (120..=136).contains(&r)),
        "reddest pixel {reddest:?}"
    );
}

#[test]
fn layer_under_is_hidden_by_opaque_content() {
    let input = black_page();
    let (before, after, output) = before_after(&input, red(0.5).with_layer(Layer::Under), 0);
    assert_eq!(
        changed(&before, &after),
        Vec::new(),
        "the rectangle must hide it"
    );
    // It is there all the same (as text).
    assert!(text_of(&output, 1).contains(TEXT));
    // And it shows on a blank page.
    let input = blank(PageSpec::blank());
    let (before, after, _) = before_after(&input, red(0.5).with_layer(Layer::Under), 0);
    assert!(changed(&before, &after).len() > 1000);
}

#[test]
fn red_watermark_tints_red() {
    let input = blank(PageSpec::blank());
    let (before, after, _) = before_after(&input, red(0.2), 0);
    let px = changed(&before, &after);
    assert!(px.len() > 1000);
    for &(x, y) in &px {
        let p = after.at(x, y);
        assert!(p[0] > p[1] && p[1] == p[2], "{p:?} at {x},{y}");
        assert!(p[0] >= 250, "red stays full on white: {p:?}");
    }
}

#[test]
fn position_bottom_left_moves_the_text_there() {
    let input = blank(PageSpec::blank());
    // A fixed small size: the auto size spans most of the page whatever
    // the anchor.
    let wm = default_wm()
        .with_size(Size::Points(36.0))
        .with_position(Position {
            anchor: Anchor::BottomLeft,
            dx: 0.0,
            dy: 0.0,
        });
    let (before, after, _) = before_after(&input, wm, 0);
    let px = changed(&before, &after);
    assert!(px.len() > 200, "{} pixels changed", px.len());
    let (cx, cy) = centroid(&after, &px);
    assert!(
        cx < 0.5 && cy > 0.5,
        "centroid {cx},{cy} is not in the bottom left"
    );
    assert_eq!(
        inside(&after, &px, [0.5, 0.0, 1.0, 0.5]),
        0,
        "top-right quadrant changed"
    );
}

#[test]
fn page_selection_stamps_only_the_selected_pages() {
    let input = pages(3);
    let wm = default_wm().with_pages("2".parse::<PageSelection>().expect("valid pages"));
    let stamped = stamper(wm).stamp(&input).expect("stamps");
    assert_eq!(stamped.report().pages, 3);
    assert_eq!(stamped.report().stamped_pages, 1);
    let output = stamped.to_vec(&input);
    for i in 0..3 {
        let px = changed(&render(&input, i, SCALE), &render(&output, i, SCALE));
        if i == 1 {
            assert!(px.len() > 1000, "page 2: {} pixels changed", px.len());
        } else {
            assert_eq!(px.len(), 0, "page {} changed", i + 1);
        }
    }
    let texts = texts_of(&output, None);
    assert_eq!(texts.len(), 3);
    assert!(!texts[0].contains(TEXT) && texts[1].contains(TEXT) && !texts[2].contains(TEXT));
}

#[test]
fn mixed_page_sizes_each_get_a_centred_watermark() {
    let input = Fixture::new()
        .page(PageSpec::blank())
        .page(PageSpec::blank().media_box(Some([0.0, 0.0, 842.0, 595.0])))
        .page(PageSpec::blank().media_box(Some([100.0, 100.0, 250.0, 400.0])))
        .build();
    let output = stamp_with(&input, default_wm());
    for i in 0..3 {
        let (before, after) = (render(&input, i, SCALE), render(&output, i, SCALE));
        let px = changed(&before, &after);
        assert!(
            px.len() > 100,
            "page {}: {} pixels changed",
            i + 1,
            px.len()
        );
        let (cx, cy) = centroid(&after, &px);
        assert!(
            (cx - 0.5).abs() < 0.06 && (cy - 0.5).abs() < 0.06,
            "page {}: centroid {cx},{cy}",
            i + 1
        );
    }
}
