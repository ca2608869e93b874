//! Bad and hostile input (DESIGN §3): every case gets a typed error or a
//! correct result — never a panic, an endless loop, a stack overflow or
//! unbounded memory. Encrypted files stay encrypted the same way.

mod common;

use std::io::Write as _;
use std::time::Duration;

use common::*;
use peedy_stamp::{Limits, Options, PageSelection, StampError, Stamped, Stamper, Watermark};

/// Generous: these inputs are small, but the dev profile is slow.
const LIMIT: Duration = Duration::from_secs(20);

fn wm() -> Watermark {
    Watermark::new(TEXT).expect("valid text")
}

fn with_options(options: Options) -> Stamper {
    Stamper::new(wm(), options).expect("valid stamper")
}

fn with_limits(limits: Limits) -> Stamper {
    with_options(Options {
        limits,
        ..Options::default()
    })
}

/// Stamps on a thread with a time limit.
fn stamp_within(stamper: Stamper, input: Vec<u8>, what: &str) -> Result<Stamped, StampError> {
    within(LIMIT, what, move || stamper.stamp(&input))
}

fn stamp_default_within(input: Vec<u8>, what: &str) -> Result<Stamped, StampError> {
    stamp_within(stamper(wm()), input, what)
}

// ---------------------------------------------------------------- not a PDF

#[test]
fn empty_input_is_not_a_pdf() {
    match stamper(wm()).stamp(b"") {
        Err(StampError::NotAPdf(msg)) => assert!(msg.contains("empty"), "{msg:?}"),
        other => panic!("expected NotAPdf, got {other:?}"),
    }
}

#[test]
fn hello_is_not_a_pdf() {
    let err = stamper(wm()).stamp(b"hello").expect_err("not a PDF");
    assert!(matches!(err, StampError::NotAPdf(_)), "{err:?}");
    assert_eq!(err.code(), "not_a_pdf");
}

#[test]
fn random_bytes_are_not_a_pdf() {
    let mut state = 0x1234_5678_9abc_def0u64;
    for len in [1, 7, 1000, 4096, 65_536] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        assert!(!bytes.windows(5).any(|w| w == b"%PDF-"));
        let r = stamp_default_within(bytes, "random bytes");
        assert!(
            matches!(r, Err(StampError::NotAPdf(_))),
            "{len} bytes: {r:?}"
        );
    }
}

#[test]
fn a_header_and_garbage_is_damaged() {
    let mut input = b"%PDF-1.7\n".to_vec();
    input.extend(std::iter::repeat_n(b"garbage obj endobj << >> ", 200).flatten());
    let r = stamp_default_within(input, "header and garbage");
    assert!(
        matches!(r, Err(StampError::Damaged(_) | StampError::NoPages)),
        "{r:?}"
    );
}

// ---------------------------------------------------------------- truncated

#[test]
fn truncated_fixture_gives_a_typed_error_or_a_good_output() {
    let full = pages(3);
    let xref = find(&full, b"\nxref\n").expect("the fixture has an xref table") + 1;
    let mut cuts: Vec<usize> = (0..full.len()).step_by(29).collect();
    cuts.extend([
        9,
        15,
        xref - 1,
        xref,
        xref + 5,
        xref + 30,
        full.len() - 7,
        full.len() - 1,
    ]);
    let mut ok = 0;
    for cut in cuts {
        let input = full[..cut].to_vec();
        match stamp_default_within(input.clone(), "truncated") {
            Ok(s) => {
                ok += 1;
                let r = s.report().clone();
                assert!(r.pages >= 1 && r.pages <= 3, "cut at {cut}: {r:?}");
                assert_eq!(r.stamped_pages, r.pages, "cut at {cut}");
                // The output reads back.
                let out = s.to_vec(&input);
                let again = stamper(wm()).stamp(&out);
                assert!(
                    again.is_ok(),
                    "cut at {cut}: the output does not stamp again: {again:?}"
                );
            }
            Err(StampError::NotAPdf(_) | StampError::Damaged(_) | StampError::NoPages) => {}
            Err(e) => panic!("cut at {cut}: unexpected error {e:?}"),
        }
    }
    assert!(ok > 0, "no truncation was repaired");
}

#[test]
fn a_file_cut_before_its_xref_is_repaired_with_every_page() {
    let full = pages(3);
    let xref = find(&full, b"\nxref\n").expect("xref") + 1;
    for cut in [xref, full.len() - 6] {
        let input = full[..cut].to_vec();
        let s = stamp_default_within(input.clone(), "cut before xref").expect("repaired");
        let r = s.report();
        assert_eq!((r.pages, r.stamped_pages), (3, 3), "cut at {cut}: {r:?}");
        let out = s.to_vec(&input);
        assert_eq!(qpdf_pages(&out, None), 3, "cut at {cut}");
        let texts = texts_of(&out, None);
        assert_eq!(texts.len(), 3);
        for (i, t) in texts.iter().enumerate() {
            assert!(
                t.contains(TEXT) && t.contains(&format!("Page {}", i + 1)),
                "{t:?}"
            );
        }
    }
}

/// A file cut in the middle of its second page: the surviving `/Pages`
/// node still lists the lost pages (`6 0 R`, `9 0 R`). The repaired update
/// must not give its new objects those numbers, or the page tree of the
/// output names the watermark's form and content streams as pages.
#[test]
fn repaired_update_does_not_reuse_numbers_the_page_tree_still_names() {
    let full = pages(3);
    let page2 = find(&full, b"6 0 obj").expect("page 2");
    let input = full[..page2].to_vec();
    let s = stamp_default_within(input.clone(), "cut before page 2").expect("repaired");
    let r = s.report().clone();
    assert_eq!((r.pages, r.stamped_pages), (1, 1), "{r:?}");
    let out = s.to_vec(&input);
    let check = qpdf_check_full(&out, None);
    assert_eq!(
        qpdf_pages(&out, None),
        1,
        "qpdf sees the update's new objects as pages: {:?}",
        check.warnings
    );
    assert!(
        !check
            .warnings
            .iter()
            .any(|w| w.contains("/Type key should be /Page")),
        "{:?}",
        check.warnings
    );
    let again = stamper(wm()).stamp(&out).expect("the output stamps again");
    assert_eq!(again.report().pages, 1, "stamping the output again");
}

/// `data` with the first `from` replaced by `to` (which must be there).
fn replace_bytes(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = data
        .windows(from.len())
        .position(|w| w == from)
        .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(from)));
    let mut out = data[..at].to_vec();
    out.extend_from_slice(to);
    out.extend_from_slice(&data[at + from.len()..]);
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

// ---------------------------------------------------------------- nesting

/// A one-page file whose page dictionary (or another object) holds `deep`.
fn with_deep(deep: &[u8], in_page: bool) -> Vec<u8> {
    let mut page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R".to_vec();
    let mut info = b"<< /Producer (deep)".to_vec();
    let target = if in_page { &mut page } else { &mut info };
    target.extend_from_slice(b" /Deep ");
    target.extend_from_slice(deep);
    page.extend_from_slice(b" >>");
    info.extend_from_slice(b" >>");
    write_pdf(
        &[
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>".to_vec(),
            stream("", b"BT /F1 12 Tf 72 72 Td (x) Tj ET"),
            page,
            info,
        ],
        "/Info 5 0 R",
    )
}

fn nested(open: &[u8], close: &[u8], levels: usize, closed: bool) -> Vec<u8> {
    let mut v = open.repeat(levels);
    if closed {
        v.extend(close.repeat(levels));
    }
    v
}

#[test]
fn deep_nesting_in_a_page_is_too_deep_not_a_stack_overflow() {
    let mut wrong = Vec::new();
    for (what, deep) in [
        ("arrays", nested(b"[", b"]", 100_000, true)),
        ("unclosed arrays", nested(b"[", b"]", 100_000, false)),
        ("dicts", nested(b"<< /A ", b">>", 100_000, true)),
    ] {
        let r = stamp_default_within(with_deep(&deep, true), what);
        if !matches!(
            r,
            Err(StampError::TooDeep { limit: 64 } | StampError::Damaged(_))
        ) {
            wrong.push(format!("100k nested {what} in the page dictionary: {r:?}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn deep_nesting_in_an_untouched_object_does_not_matter() {
    let deep = nested(b"[", b"]", 100_000, true);
    let s = stamp_default_within(with_deep(&deep, false), "deep info").expect("stamps");
    assert_eq!(s.report().pages, 1);
}

#[test]
fn deep_nesting_in_the_trailer_terminates() {
    let mut input = one_page();
    let at = find(&input, b"/Root").expect("trailer");
    let deep = nested(b"[", b"]", 100_000, true);
    let mut entry = b"/Deep ".to_vec();
    entry.extend_from_slice(&deep);
    entry.push(b' ');
    input.splice(at..at, entry);
    // The startxref offset still points at the xref: only the trailer is hard.
    let r = stamp_default_within(input, "deep trailer");
    match r {
        Ok(s) => assert_eq!(s.report().pages, 1),
        Err(StampError::TooDeep { .. } | StampError::Damaged(_) | StampError::NoPages) => {}
        Err(e) => panic!("{e:?}"),
    }
}

// ---------------------------------------------------------------- bombs

/// A PDF 1.5 with a cross-reference stream whose page (object 3) lives in
/// object stream 4, whose Flate data inflates to `payload` bytes (the page
/// dictionary, then zeros).
fn objstm_pdf(payload: u64) -> Vec<u8> {
    let page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>";
    let header = b"3 0 ";
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(header).expect("compress");
    z.write_all(page).expect("compress");
    let zeros = vec![0u8; 1 << 20];
    let mut left = payload.saturating_sub((header.len() + page.len()) as u64);
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        z.write_all(&zeros[..n]).expect("compress");
        left -= n as u64;
    }
    let data = z.finish().expect("compress");

    let mut out = b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for body in [
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
    ] {
        offsets.push(out.len());
        let n = offsets.len();
        out.extend_from_slice(format!("{n} 0 obj\n").as_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let objstm_at = out.len();
    out.extend_from_slice(b"4 0 obj\n");
    out.extend_from_slice(&stream(
        &format!(
            "/Type /ObjStm /N 1 /First {} /Filter /FlateDecode",
            header.len()
        ),
        &data,
    ));
    out.extend_from_slice(b"\nendobj\n");
    let xref_at = out.len();
    // Rows: type (1 byte), field 2 (4 bytes), field 3 (2 bytes).
    let mut rows = Vec::new();
    let mut row = |t: u8, f2: u32, f3: u16| {
        rows.push(t);
        rows.extend_from_slice(&f2.to_be_bytes());
        rows.extend_from_slice(&f3.to_be_bytes());
    };
    row(0, 0, 0xffff);
    row(1, offsets[0] as u32, 0);
    row(1, offsets[1] as u32, 0);
    row(2, 4, 0);
    row(1, objstm_at as u32, 0);
    row(1, xref_at as u32, 0);
    out.extend_from_slice(b"5 0 obj\n");
    out.extend_from_slice(&stream("/Type /XRef /Size 6 /W [1 4 2] /Root 1 0 R", &rows));
    out.extend_from_slice(format!("\nendobj\nstartxref\n{xref_at}\n%%EOF\n").as_bytes());
    out
}

#[test]
fn the_object_stream_fixture_stamps_when_small() {
    // The fixture itself is sound: a small object stream reads fine.
    let input = objstm_pdf(4096);
    let s = stamp_default_within(input.clone(), "small objstm").expect("stamps");
    assert_eq!(s.report().pages, 1);
    let out = s.to_vec(&input);
    assert_eq!(qpdf_check_full(&out, None).code, 0);
    assert!(text_of(&out, 1).contains(TEXT));
}

#[test]
fn decompression_bomb_hits_the_limit() {
    // 1 GiB of zeros, about 1 MB compressed, against the default limit.
    let input = objstm_pdf(1 << 30);
    assert!(input.len() < 8 << 20, "{} bytes", input.len());
    let limit = Limits::default().max_decoded_bytes;
    let r = stamp_default_within(input, "bomb");
    assert!(
        matches!(r, Err(StampError::DecompressionLimit { limit: l }) if l == limit),
        "{r:?}"
    );
}

#[test]
fn decompression_limit_is_configurable() {
    let input = objstm_pdf(2 << 20);
    let ok = stamp_default_within(input.clone(), "2 MiB objstm, default limit");
    assert_eq!(ok.map(|s| s.report().pages), Ok(1));
    let r = stamp_within(
        with_limits(Limits {
            max_decoded_bytes: 1 << 20,
            ..Limits::default()
        }),
        input,
        "2 MiB objstm, 1 MiB limit",
    );
    assert!(
        matches!(r, Err(StampError::DecompressionLimit { limit }) if limit == 1 << 20),
        "{r:?}"
    );
}

// ---------------------------------------------------------------- page trees

#[test]
fn absurd_page_count_is_too_many_pages() {
    let input = write_pdf(
        &[
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            b"<< /Type /Pages /Kids [3 0 R] /Count 10000000 >>".to_vec(),
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>".to_vec(),
        ],
        "",
    );
    let r = stamp_within(
        with_limits(Limits {
            max_pages: 1000,
            ..Limits::default()
        }),
        input,
        "absurd /Count",
    );
    assert!(
        matches!(
            r,
            Err(StampError::TooManyPages {
                count: 10_000_000,
                limit: 1000
            })
        ),
        "{r:?}"
    );
}

#[test]
fn more_real_pages_than_the_limit_is_too_many_pages() {
    let mut f = Fixture::new();
    for _ in 0..11 {
        f = f.page(PageSpec::blank());
    }
    let input = f.build();
    let r = stamp_within(
        with_limits(Limits {
            max_pages: 10,
            ..Limits::default()
        }),
        input.clone(),
        "11 pages, limit 10",
    );
    assert!(
        matches!(r, Err(StampError::TooManyPages { limit: 10, .. })),
        "{r:?}"
    );
    let r = stamp_within(
        with_limits(Limits {
            max_pages: 11,
            ..Limits::default()
        }),
        input,
        "11 pages, limit 11",
    );
    assert_eq!(r.map(|s| s.report().stamped_pages), Ok(11));
}

#[test]
fn page_tree_cycle_terminates() {
    // 2 is the root; its kids are the page, itself and node 5, whose kid is
    // the root again.
    let input = write_pdf(
        &[
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            b"<< /Type /Pages /Kids [3 0 R 2 0 R 5 0 R] /Count 3 /MediaBox [0 0 612 792] >>"
                .to_vec(),
            b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>".to_vec(),
            stream("", b"0 g 10 10 50 50 re f"),
            b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R 5 0 R] /Count 1 >>".to_vec(),
        ],
        "",
    );
    let s = stamp_default_within(input.clone(), "cycle").expect("stamps");
    assert_eq!((s.report().pages, s.report().stamped_pages), (1, 1));
    let out = s.to_vec(&input);
    assert!(text_of(&out, 1).contains(TEXT));

    // A cycle with no page at all.
    let input = write_pdf(
        &[
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
            b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>".to_vec(),
        ],
        "",
    );
    let r = stamp_default_within(input, "pageless cycle");
    assert!(matches!(r, Err(StampError::NoPages)), "{r:?}");
}

#[test]
fn a_deep_page_tree_is_too_deep() {
    // 200 nested /Pages nodes, the page at the bottom.
    let levels = 200;
    let mut bodies = vec![b"<< /Type /Catalog /Pages 2 0 R >>".to_vec()];
    for i in 0..levels {
        let me = i + 2;
        let kid = me + 1;
        let parent = if i == 0 {
            String::new()
        } else {
            format!("/Parent {} 0 R ", me - 1)
        };
        bodies.push(format!("<< /Type /Pages {parent}/Kids [{kid} 0 R] /Count 1 >>").into_bytes());
    }
    bodies.push(
        format!(
            "<< /Type /Page /Parent {} 0 R /MediaBox [0 0 612 792] >>",
            levels + 1
        )
        .into_bytes(),
    );
    let r = stamp_default_within(write_pdf(&bodies, ""), "deep page tree");
    assert!(matches!(r, Err(StampError::TooDeep { limit: 64 })), "{r:?}");
}

// ---------------------------------------------------------------- limits

#[test]
fn input_over_the_size_limit_is_too_large() {
    let input = one_page();
    let len = input.len() as u64;
    let r = with_limits(Limits {
        max_input_bytes: 100,
        ..Limits::default()
    })
    .stamp(&input);
    assert!(
        matches!(r, Err(StampError::TooLarge { size, limit: 100 }) if size == len),
        "{r:?}"
    );
}

#[test]
fn time_limit_is_a_typed_error() {
    let r = with_limits(Limits {
        time_limit: Some(Duration::ZERO),
        ..Limits::default()
    })
    .stamp(&pages(3));
    assert!(
        matches!(r, Err(StampError::TimeLimit { limit_ms: 0 })),
        "{r:?}"
    );
}

#[test]
fn selecting_a_missing_page_is_page_out_of_range() {
    let s = Stamper::new(
        wm().with_pages("1,5".parse::<PageSelection>().expect("valid pages")),
        Options::default(),
    )
    .expect("valid stamper");
    let r = s.stamp(&pages(3));
    assert!(
        matches!(r, Err(StampError::PageOutOfRange { page: 5, count: 3 })),
        "{r:?}"
    );
}

// ---------------------------------------------------------------- encryption

/// Stamps an encrypted file and checks it stays encrypted the same way, is
/// valid and shows the watermark and the original text.
fn check_encrypted(input: &[u8], password: Option<&str>, what: &str) {
    let options = Options {
        password: password.map(str::to_owned),
        ..Options::default()
    };
    let s = stamp_within(with_options(options), input.to_vec(), what)
        .unwrap_or_else(|e| panic!("{what}: {e:?}"));
    assert!(matches!(s, Stamped::Appended { .. }), "{what}");
    let r = s.report().clone();
    assert!(r.encrypted, "{what}: {r:?}");
    assert_eq!((r.pages, r.stamped_pages), (3, 3), "{what}");
    let out = s.to_vec(input);
    assert!(out.starts_with(input));
    // qpdf needs the user password, which may be empty.
    let pw = password.or(Some(""));
    let enc_in = qpdf_encryption(input, pw).expect("the input is encrypted");
    let enc_out =
        qpdf_encryption(&out, pw).unwrap_or_else(|| panic!("{what}: the output is not encrypted"));
    assert_eq!(enc_out, enc_in, "{what}: the encryption changed");
    let check = qpdf_check_full(&out, pw);
    assert_eq!(check.code, 0, "{what}: qpdf --check: {check:?}");
    let texts = texts_of(&out, password);
    assert_eq!(texts.len(), 3, "{what}");
    for (i, t) in texts.iter().enumerate() {
        assert!(
            t.contains(TEXT) && t.contains(&format!("Page {}", i + 1)),
            "{what}: page {}: {t:?}",
            i + 1
        );
    }
    // Deterministic even when encrypting.
    let again = with_options(Options {
        password: password.map(str::to_owned),
        ..Options::default()
    })
    .stamp(input)
    .expect("stamps again")
    .to_vec(input);
    assert!(again == out, "{what}: not deterministic");
}

#[test]
fn encrypted_with_an_empty_user_password_stays_encrypted() {
    let plain = pages(3);
    for (bits, extra, what) in [
        ("40", &["--allow-weak-crypto"][..], "RC4 40-bit"),
        (
            "128",
            &["--allow-weak-crypto", "--use-aes=n"][..],
            "RC4 128-bit",
        ),
        ("128", &["--use-aes=y"][..], "AES 128-bit"),
        ("256", &[][..], "AES 256-bit"),
    ] {
        let input = qpdf_encrypt(&plain, "", bits, extra);
        check_encrypted(&input, None, what);
    }
}

#[test]
fn encrypted_with_object_streams_stays_encrypted() {
    let plain = pages(3);
    let input = qpdf_encrypt(&plain, "", "256", &["--object-streams=generate"]);
    assert!(
        mutool_show(&input, "trailer").contains("/XRef")
            || input.windows(7).any(|w| w == b"/ObjStm"),
        "precondition: qpdf wrote object streams"
    );
    check_encrypted(&input, None, "AES 256-bit with object streams");
}

#[test]
fn a_user_password_is_needed_and_checked() {
    let input = qpdf_encrypt(&pages(3), "u", "256", &[]);
    match stamper(wm()).stamp(&input) {
        Err(StampError::PasswordProtected(msg)) => {
            assert!(msg.contains("password"), "{msg:?}")
        }
        other => panic!("without a password: {other:?}"),
    }
    let wrong = with_options(Options {
        password: Some("wrong".into()),
        ..Options::default()
    })
    .stamp(&input);
    assert!(
        matches!(wrong, Err(StampError::PasswordProtected(_))),
        "a wrong password: {wrong:?}"
    );
    check_encrypted(&input, Some("u"), "AES 256-bit, user password");
}

#[test]
fn the_owner_password_opens_too() {
    for (bits, extra) in [("256", &[][..]), ("128", &["--use-aes=y"][..])] {
        let input = qpdf_encrypt(&pages(3), "u", bits, extra);
        let s = with_options(Options {
            password: Some("owner".into()),
            ..Options::default()
        })
        .stamp(&input)
        .unwrap_or_else(|e| panic!("{bits}-bit with the owner password: {e:?}"));
        assert!(s.report().encrypted);
        let out = s.to_vec(&input);
        let texts = texts_of(&out, Some("u"));
        assert!(texts.iter().all(|t| t.contains(TEXT)), "{texts:?}");
    }
}

// ---------------------------------------------------------------- found by fuzzing

/// `xref` table line of object `num` in a [`write_pdf`] file.
fn xref_line(pdf: &[u8], num: usize) -> usize {
    let xref = find(pdf, b"\nxref\n").expect("xref") + 1;
    // "xref\n0 N\n" then 20-byte lines ("0000000000 65535 f\r\n").
    let first = xref
        + pdf[xref..]
            .iter()
            .position(|&b| b == b'\r')
            .expect("entries")
        - 18;
    first + 20 * num
}

/// Found by `fuzz.rs` (corpus iteration 674 of the default seed, from
/// `024-annotations`): when the xref has to be repaired and the last
/// `N 0 obj` the scan finds for an object does not parse (here a copy of
/// the catalog inside a stream), the complete xref written with the update
/// left the object out altogether — though an earlier copy loads and the
/// engine read it. The output lost its catalog: `qpdf` says "unable to find
/// /Root dictionary" and the engine cannot open its own output.
#[test]
fn repaired_xref_keeps_an_object_whose_last_scanned_copy_is_broken() {
    let mut bodies = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>".to_vec(),
        stream("", b"0 g 10 10 50 50 re f"),
    ];
    // A stream whose data looks like a broken copy of the catalog.
    bodies.push(stream(
        "",
        b"\n1 0 obj\n<< /Type /Catalog /Pages -0.0 0 R >>\nendobj\n",
    ));
    let mut input = write_pdf(&bodies, "");
    // Object 4's xref offset is off by one: reading it needs the repair scan.
    let line = xref_line(&input, 4);
    let off: usize = std::str::from_utf8(&input[line..line + 10])
        .expect("digits")
        .parse()
        .expect("offset");
    input[line..line + 10].copy_from_slice(format!("{:010}", off + 1).as_bytes());

    let s = stamp_default_within(input.clone(), "broken last copy").expect("stamps");
    assert_eq!(s.report().pages, 1);
    let out = s.to_vec(&input);
    let check = qpdf_check_full(&out, None);
    assert_ne!(check.code, 2, "qpdf --check: {check:?}");
    assert_eq!(qpdf_pages(&out, None), 1);
    let again = stamper(wm()).stamp(&out);
    assert_eq!(
        again.map(|s| s.report().pages),
        Ok(1),
        "the engine cannot open its own output"
    );
}

/// Found by `fuzz.rs` (fixtures iteration 339 of the default seed): an
/// object numbered 4294967295 (u32::MAX) found by the repair scan made
/// `Document::size` compute `m + 1` and overflow — a panic in debug builds
/// (`attempt to add with overflow`, src/pdf/doc.rs), a wrapped `/Size` of 0
/// in release builds.
#[test]
fn object_number_u32_max_does_not_overflow() {
    let mut input = one_page();
    let xref = find(&input, b"\nxref\n").expect("xref") + 1;
    // Inserting before the xref also makes startxref wrong: repair scans.
    input.splice(
        xref..xref,
        b"4294967295 0 obj\n<< /Type /Font >>\nendobj\n"
            .iter()
            .copied(),
    );
    let r = stamp_default_within(input.clone(), "object 4294967295");
    match r {
        Ok(s) => {
            assert_eq!(s.report().pages, 1);
            let out = s.to_vec(&input);
            assert_eq!(qpdf_pages(&out, None), 1);
        }
        Err(e) => assert!(matches!(e, StampError::Damaged(_)), "{e:?}"),
    }
}

/// Found by `fuzz.rs` (corpus iterations 9834 and 11949 of seed 0xabc123):
/// the update's new objects are numbered from the trailer's `/Size`,
/// however absurd. `/Size 2147483648` gives objects numbered above 2^31 that
/// `qpdf` rejects ("integer out of range") and the engine's own reader
/// ignores (so stamping the output again finds no pages);
/// `/Size 4294967295` overflows `next += 1` in `UpdateBuilder::form`
/// (src/stamp.rs) — a panic in debug builds, wrapped numbers that collide
/// with existing objects in release builds.
#[test]
fn absurd_trailer_size_keeps_new_object_numbers_readable() {
    let mut wrong = Vec::new();
    for size in ["2147483648", "4294967295"] {
        let input = replace_bytes(
            &one_page(),
            b"/Size 6 ",
            format!("/Size {size} ").as_bytes(),
        );
        // Only the trailer changed (after the xref): every offset holds.
        let r = within(LIMIT, "absurd /Size", {
            let input = input.clone();
            move || {
                std::panic::catch_unwind(move || stamper(wm()).stamp(&input))
                    .map_err(|_| "panicked".to_owned())
            }
        });
        let s = match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                wrong.push(format!("/Size {size}: {e:?}"));
                continue;
            }
            Err(p) => {
                wrong.push(format!("/Size {size}: {p}"));
                continue;
            }
        };
        let out = s.to_vec(&input);
        let check = qpdf_check_full(&out, None);
        if check.code == 2 || qpdf_pages(&out, None) != 1 {
            wrong.push(format!("/Size {size}: qpdf: {:?}", check.errors));
        }
        let again = stamper(wm()).stamp(&out).map(|s| s.report().pages);
        if again != Ok(1) {
            wrong.push(format!(
                "/Size {size}: stamping the output again: {again:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// Found by `fuzz.rs` (fixtures iteration 379 of seed 0xabc123): a page
/// object numbered 4294967295. The repair scan finds it and
/// `Document::size` overflows on `m + 1` (src/pdf/doc.rs); past that,
/// the update rewrites the page and `write_update` computes `o.id + 1`
/// (src/pdf/update.rs) — panics in debug builds.
#[test]
fn page_numbered_u32_max_does_not_overflow() {
    // The page's number changes: the xref no longer lists it and the
    // offsets after it shift, so the engine finds it by scanning.
    let input = replace_bytes(&one_page(), b"\n4 0 obj", b"\n4294967295 0 obj");
    let input = replace_bytes(&input, b"[ 4 0 R ]", b"[ 4294967295 0 R ]");
    let r = within(LIMIT, "page 4294967295", move || {
        std::panic::catch_unwind(move || stamper(wm()).stamp(&input).map(|s| s.report().pages))
            .map_err(|_| "panicked".to_owned())
    });
    match r {
        Ok(Ok(pages)) => assert_eq!(pages, 1),
        Ok(Err(e)) => assert!(matches!(e, StampError::Damaged(_)), "{e:?}"),
        Err(p) => panic!("stamping {p}"),
    }
}

/// Found by `fuzz.rs` (fixtures iteration 4877 of seed 0xabc123, and more
/// like it): page 3's object header says `1 0 obj`, the catalog's number.
/// The xref is right for the catalog, and the engine reads the catalog from
/// it; but the repaired update's complete xref takes every object's *last*
/// `N 0 obj` in the file, so in the output object 1 is page 3: the output
/// has no catalog ("the catalog has no /Pages tree") though stamping
/// reported success.
#[test]
fn repaired_xref_points_at_the_objects_the_engine_read() {
    let full = pages(3);
    let at = find(&full, b"\n9 0 obj").expect("page 3") + 1;
    let mut input = full.clone();
    input[at..at + 7].copy_from_slice(b"1 0 obj");
    let s = stamp_default_within(input.clone(), "duplicate number").expect("stamps");
    let pages = s.report().pages;
    assert!(pages >= 2, "{:?}", s.report());
    let out = s.to_vec(&input);
    let check = qpdf_check_full(&out, None);
    assert_ne!(check.code, 2, "qpdf --check: {check:?}");
    assert_eq!(qpdf_pages(&out, None), pages, "qpdf: {:?}", check.warnings);
    let again = stamper(wm()).stamp(&out).map(|s| s.report().pages);
    assert_eq!(again, Ok(pages), "stamping the output again");
}

/// Found by `fuzz.rs` (fixtures iteration 4450 of seed 0xabc123): the
/// update's cross-reference stream sizes its middle field (`/W [1 n 2]`)
/// for the largest byte offset only, but type-2 rows put the object
/// stream's *number* there. A small file (offsets < 65536) whose new
/// object stream is numbered 65536 or more gets that number truncated to
/// two bytes (src/pdf/update.rs, `bytes_needed(xref_offset)`): here the new
/// object stream 70005 becomes 4469, so the rewritten page points into an
/// object that is not a stream; qpdf has to reconstruct the xref, and the
/// engine cannot read its own output.
#[test]
fn xref_stream_field_width_covers_object_stream_numbers() {
    // The xref stream itself becomes object 69999: a valid file whose
    // offsets all fit in two bytes but whose next object number does not.
    let input = replace_bytes(
        &objstm_pdf(4096),
        b"5 0 obj\n<< /Type /XRef /Size 6 ",
        b"69999 0 obj\n<< /Type /XRef /Size 70000 /Index [0 5 69999 1] ",
    );
    let c = qpdf_check_full(&input, None);
    assert_eq!(c.code, 0, "the input is clean: {c:?}");
    let s = stamp_default_within(input.clone(), "/Size 70000").expect("stamps");
    assert_eq!(s.report().pages, 1);
    let out = s.to_vec(&input);
    let check = qpdf_check_full(&out, None);
    assert_eq!(check.code, 0, "qpdf --check: {check:?}");
    assert_eq!(qpdf_pages(&out, None), 1, "{check:?}");
    assert!(
        text_of(&out, 1).contains(TEXT),
        "the page lost its watermark"
    );
    let again = stamper(wm()).stamp(&out).map(|s| s.report().pages);
    assert_eq!(again, Ok(1), "stamping the output again");
}
