//! A sweep over every PDF of the shared corpus (`shared/corpus/sample-files`,
//! real files from the wild), plus regression tests named after what broke in
//! other tools on those files (DESIGN §3).
//!
//! For every file: stamping with the defaults succeeds as an appended update
//! (the input is a prefix of the output), keeps the page count (per `qpdf
//! --show-npages`), stamps every page, puts "Ricky Bobby" on every page as
//! `mutool draw -F txt` sees it, adds no `qpdf --check` errors (and keeps a
//! clean file clean), and gives byte-identical output when repeated.
//!
//! The corpus is not copied into the repository; the tests fail loudly when
//! it is missing.

mod common;

use common::*;
use peedy_stamp::{Options, StampError, Stamped, Stamper, Watermark};

/// The password-protected corpus file and its user password.
const PASSWORD_FILE: &str = "005-";
const PASSWORD: &str = "openpassword";
/// The damaged corpus file: qpdf finds no pages; 3 page objects are left.
const DAMAGED_FILE: &str = "017-";

/// Checks one stamped corpus file; returns what is wrong with it.
fn check_file(name: &str, input: &[u8]) -> Vec<String> {
    let mut problems = Vec::new();
    let stamper = stamper(Watermark::new(TEXT).expect("valid text"));
    let stamped = match stamper.stamp(input) {
        Ok(s) => s,
        Err(e) => return vec![format!("stamping failed: {e:?}")],
    };
    let report = stamped.report().clone();
    let output = stamped.to_vec(input);

    match &stamped {
        Stamped::Appended { update, .. } => {
            if update.is_empty() {
                problems.push("the update is empty".into());
            }
            if !output.starts_with(input) {
                problems.push("the input is not a prefix of the output".into());
            }
        }
        Stamped::Rewritten { .. } => {
            problems.push("rewritten, not an appended incremental update".into())
        }
    }
    if stamped.output_len(input) != output.len() {
        problems.push(format!(
            "output_len {} != {} bytes written",
            stamped.output_len(input),
            output.len()
        ));
    }

    // Page count: qpdf's for the input, or (when qpdf finds none, as for the
    // damaged file) the pages the engine found.
    let qpdf_in = qpdf_pages(input, None);
    let expected = if qpdf_in == 0 { report.pages } else { qpdf_in };
    if expected == 0 {
        problems.push("no pages found".into());
    }
    if report.pages != expected {
        problems.push(format!(
            "report.pages {} != {expected} (qpdf)",
            report.pages
        ));
    }
    if report.stamped_pages != expected {
        problems.push(format!(
            "report.stamped_pages {} != {expected}",
            report.stamped_pages
        ));
    }
    if report.encrypted {
        problems.push("reported as encrypted".into());
    }
    let qpdf_out = qpdf_pages(&output, None);
    if qpdf_out != expected {
        problems.push(format!(
            "qpdf counts {qpdf_out} pages in the output, not {expected}"
        ));
    }
    let hayro_out = hayro_page_count(&output);
    if hayro_out != expected as usize {
        problems.push(format!(
            "hayro finds {hayro_out} pages in the output, not {expected}"
        ));
    }

    // The watermark text on every page.
    let texts = texts_of(&output, None);
    if texts.len() != expected as usize {
        problems.push(format!(
            "mutool extracted {} pages, not {expected}",
            texts.len()
        ));
    }
    for (i, t) in texts.iter().enumerate() {
        if !t.contains(TEXT) {
            problems.push(format!("page {}: mutool text lacks {TEXT:?}: {t:?}", i + 1));
        }
    }

    // Validity: no more qpdf errors than the input had; clean stays clean.
    let check_in = qpdf_check_full(input, None);
    let check_out = qpdf_check_full(&output, None);
    if check_out.errors.len() > check_in.errors.len() {
        problems.push(format!(
            "qpdf --check: {} errors in the output, {} in the input: {:?}",
            check_out.errors.len(),
            check_in.errors.len(),
            check_out.errors
        ));
    }
    if check_in.code == 0 && check_out.code != 0 {
        problems.push(format!(
            "qpdf --check: clean input, output exits {}: {:?} {:?}",
            check_out.code, check_out.errors, check_out.warnings
        ));
    }
    if check_out.code == 2 && check_in.code != 2 {
        problems.push(format!(
            "qpdf --check exits 2 (errors) on the output only: {:?}",
            check_out.errors
        ));
    }

    // Deterministic: the same stamper again, and a fresh one.
    let again = stamper.stamp(input).map(|s| s.to_vec(input));
    if again.as_ref() != Ok(&output) {
        problems.push("stamping twice gives different bytes".into());
    }
    let fresh = common::stamper(Watermark::new(TEXT).expect("valid text"))
        .stamp(input)
        .map(|s| s.to_vec(input));
    if fresh.as_ref() != Ok(&output) {
        problems.push("a fresh Stamper gives different bytes".into());
    }

    // The output opens in the engine again (a second stamp on top).
    match stamper.stamp(&output) {
        Ok(s) if s.report().pages == expected => {}
        Ok(s) => problems.push(format!(
            "stamping the output again finds {} pages",
            s.report().pages
        )),
        Err(e) => problems.push(format!("stamping the output again fails: {e:?}")),
    }

    problems
        .into_iter()
        .map(|p| format!("{name}: {p}"))
        .collect()
}

#[test]
fn every_corpus_file_stamps_cleanly() {
    let files = corpus();
    let mut problems = Vec::new();
    let mut checked = 0;
    for path in &files {
        let name = file_name(path);
        if name.starts_with(PASSWORD_FILE) {
            continue; // its own tests below
        }
        let input = std::fs::read(path).expect("read corpus file");
        problems.extend(check_file(&name, &input));
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} corpus files checked");
    assert!(
        problems.is_empty(),
        "{} problems in the corpus sweep:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn password_protected_005_needs_its_password() {
    let input = corpus_bytes(PASSWORD_FILE);
    let err = stamper(Watermark::new(TEXT).expect("valid text"))
        .stamp(&input)
        .expect_err("a password-protected file must not stamp without its password");
    match &err {
        StampError::PasswordProtected(msg) => {
            assert!(
                msg.contains("password"),
                "message {msg:?} should mention a password"
            )
        }
        other => panic!("expected PasswordProtected, got {other:?}"),
    }
    assert_eq!(err.code(), "password_protected");

    let wrong = Stamper::new(
        Watermark::new(TEXT).expect("valid text"),
        Options {
            password: Some("not-the-password".into()),
            ..Options::default()
        },
    )
    .expect("valid stamper")
    .stamp(&input);
    assert!(
        matches!(wrong, Err(StampError::PasswordProtected(_))),
        "a wrong password: {wrong:?}"
    );
}

#[test]
fn password_protected_005_stamps_with_its_password_and_stays_encrypted() {
    let input = corpus_bytes(PASSWORD_FILE);
    let stamper = Stamper::new(
        Watermark::new(TEXT).expect("valid text"),
        Options {
            password: Some(PASSWORD.into()),
            ..Options::default()
        },
    )
    .expect("valid stamper");
    let stamped = stamper.stamp(&input).expect("stamps with the password");
    let output = stamped.to_vec(&input);
    assert!(matches!(stamped, Stamped::Appended { .. }));
    assert!(output.starts_with(&input));
    let pages = qpdf_pages(&input, Some(PASSWORD));
    assert!(pages >= 1);
    let report = stamped.report();
    assert!(report.encrypted, "report: {report:?}");
    assert_eq!(report.pages, pages);
    assert_eq!(report.stamped_pages, pages);

    // Still encrypted, the same way, and still needing the password.
    let enc_in = qpdf_encryption(&input, Some(PASSWORD)).expect("the input is encrypted");
    let enc_out = qpdf_encryption(&output, Some(PASSWORD)).expect("the output stays encrypted");
    assert_eq!(enc_out, enc_in);
    assert_eq!(qpdf_pages(&output, Some(PASSWORD)), pages);
    let check = qpdf_check_full(&output, Some(PASSWORD));
    assert_eq!(check.code, 0, "qpdf --check: {check:?}");
    assert!(
        qpdf_check_full(&output, None).code == 2,
        "the output must not open without the password"
    );

    let texts = texts_of(&output, Some(PASSWORD));
    assert_eq!(texts.len(), pages as usize);
    for (i, t) in texts.iter().enumerate() {
        assert!(t.contains(TEXT), "page {}: {t:?}", i + 1);
    }
    // Deterministic, encrypted or not.
    assert_eq!(
        stamper.stamp(&input).expect("stamps again").to_vec(&input),
        output
    );
}

/// pdftk `multistamp` wrote a corrupt page tree for this file and exited 0.
#[test]
fn cmyk_page_tree_survives() {
    let input = corpus_bytes("023-");
    let (output, stamped) = stamp_default(&input);
    assert_eq!(stamped.report().pages, 1);
    let check = qpdf_check_full(&output, None);
    assert_eq!(check.code, 0, "qpdf --check: {check:?}");
    assert_eq!(qpdf_pages(&output, None), 1);
    assert_eq!(hayro_page_count(&output), 1);
    let t = text_of(&output, 1);
    assert!(t.contains(TEXT), "{t:?}");
    // The page tree is a /Pages node whose kids are the page.
    let trailer = mutool_show(&output, "trailer");
    assert!(trailer.contains("/Root"), "{trailer}");
    let page = mutool_show(&output, "pages/1");
    assert!(page.contains("/Type /Page"), "{page}");
    assert!(page.contains("/Parent"), "{page}");
}

/// qpdf, mutool, PyMuPDF and pypdf gave 0 pages or an error for this damaged
/// file; only 3 page objects are left in it, and the engine rebuilds the
/// page tree around them.
#[test]
fn damaged_017_keeps_its_pages() {
    let input = corpus_bytes(DAMAGED_FILE);
    assert_eq!(
        qpdf_pages(&input, None),
        0,
        "precondition: qpdf finds no pages in the damaged input"
    );
    let (output, stamped) = stamp_default(&input);
    assert!(
        matches!(stamped, Stamped::Appended { .. }),
        "the damaged file is still stamped by an appended update"
    );
    assert!(output.starts_with(&input));
    let report = stamped.report();
    assert_eq!(report.pages, 3, "report: {report:?}");
    assert_eq!(report.stamped_pages, 3);
    assert!(report.repaired, "report: {report:?}");
    assert_eq!(qpdf_pages(&output, None), 3);
    let check = qpdf_check_full(&output, None);
    assert_ne!(check.code, 2, "qpdf --check errors: {check:?}");
    let texts = texts_of(&output, None);
    assert_eq!(texts.len(), 3);
    for (i, t) in texts.iter().enumerate() {
        assert!(t.contains(TEXT), "page {}: {t:?}", i + 1);
    }
}

/// pypdf stamped pages that share one content stream four times each.
#[test]
fn shared_content_stream_gets_one_watermark_per_page() {
    let input = corpus_bytes("015-arabic_habibi-rotated");
    // Precondition: the four pages share one content stream.
    let contents: Vec<String> = (1..=4)
        .map(|i| {
            let page = mutool_show(&input, &format!("pages/{i}"));
            page.lines()
                .find(|l| l.contains("/Contents"))
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .collect();
    assert!(
        contents.iter().all(|c| !c.is_empty() && *c == contents[0]),
        "precondition: one shared content stream, got {contents:?}"
    );

    let (output, stamped) = stamp_default(&input);
    assert_eq!(stamped.report().stamped_pages, 4);
    let texts = texts_of(&output, None);
    assert_eq!(texts.len(), 4);
    for (i, t) in texts.iter().enumerate() {
        assert_eq!(
            t.matches(TEXT).count(),
            1,
            "page {} should show the watermark exactly once: {t:?}",
            i + 1
        );
    }
    assert_eq!(qpdf_check_full(&output, None).code, 0);
}

/// The corpus helper refuses to run without the corpus (checked here by
/// pointing it at the real directory: it must find the files).
#[test]
fn corpus_is_present_and_complete() {
    let files = corpus();
    for prefix in [
        PASSWORD_FILE,
        DAMAGED_FILE,
        "023-",
        "015-arabic_habibi-rotated",
    ] {
        assert!(
            files.iter().any(|p| file_name(p).starts_with(prefix)),
            "corpus lacks {prefix}"
        );
    }
}
