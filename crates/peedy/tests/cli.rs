//! `peedy stamp` end to end: the real binary on PDFs these tests write
//! themselves and on the shared corpus of real PDFs (`../shared/corpus` from
//! the repository root; tests that need it fail, loudly, when it is absent).
//!
//! Output is checked with the tools DESIGN §3 names: `qpdf --check` (Debian
//! `qpdf`) for validity and `mutool draw -F txt` (Debian `mupdf-tools`) for
//! the watermark text. A missing tool fails the test with the install hint.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

mod fixture;
use fixture::{corpus, corpus_file, tiny_pdf};

// ---------------------------------------------------------------- helpers

/// Writes `tiny_pdf(text)` to `dir/name` and returns the path.
fn write_pdf(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, tiny_pdf(text)).expect("write test PDF");
    path
}

fn peedy() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_peedy"));
    cmd.stdin(Stdio::null());
    // Settings from the developer's environment must not change the tests.
    for var in [
        "PEEDY_PASSWORD",
        "PEEDY_FONT",
        "PEEDY_MAX_INPUT_BYTES",
        "PEEDY_MAX_PAGES",
        "PEEDY_MAX_DECODED_BYTES",
        "PEEDY_MAX_DEPTH",
        "PEEDY_TIMEOUT_SECS",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run the peedy binary")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit {code}, got {:?}\nstderr:\n{}",
        out.status.code(),
        stderr(out)
    );
}

fn corpus_pdfs() -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = fs::read_dir(corpus())
        .expect("read corpus dir")
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pdf"))
        .collect();
    all.sort();
    all
}

fn tool(name: &str, package: &str) -> Command {
    let probe = Command::new(name).arg("--version").output();
    if probe.is_err() {
        panic!("`{name}` is needed to check the output: apt-get install {package}");
    }
    Command::new(name)
}

/// `qpdf --check` exit status: 0 clean, 3 warnings, 2 errors.
fn qpdf_check(path: &Path, password: Option<&str>) -> (i32, String) {
    let mut cmd = tool("qpdf", "qpdf");
    if let Some(pw) = password {
        cmd.arg(format!("--password={pw}"));
    }
    let out = cmd.arg("--check").arg(path).output().expect("run qpdf");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[track_caller]
fn assert_valid_pdf(path: &Path) {
    let (code, text) = qpdf_check(path, None);
    assert_eq!(code, 0, "qpdf --check {}:\n{text}", path.display());
}

/// The text MuPDF extracts from every page.
fn text_of(path: &Path) -> String {
    let out = tool("mutool", "mupdf-tools")
        .args(["draw", "-q", "-F", "txt", "-o", "-"])
        .arg(path)
        .output()
        .expect("run mutool");
    assert!(
        out.status.success(),
        "mutool draw {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[track_caller]
fn assert_stamped(path: &Path, watermark: &str, original: &str) {
    assert_valid_pdf(path);
    let text = text_of(path);
    assert!(
        text.contains(watermark),
        "{} should show the watermark {watermark:?}; its text is:\n{text}",
        path.display()
    );
    assert!(
        text.contains(original),
        "{} should still show its own text {original:?}; its text is:\n{text}",
        path.display()
    );
}

fn leftover_temp_files(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".peedy-tmp"))
        .collect()
}

#[test]
fn tiny_pdf_helper_writes_a_valid_pdf() {
    let dir = TempDir::new().unwrap();
    let pdf = write_pdf(dir.path(), "in.pdf", "Hello there");
    assert_valid_pdf(&pdf);
    assert!(text_of(&pdf).contains("Hello there"));
}

// ---------------------------------------------------------------- usage errors: exit 2

#[test]
fn missing_text_is_a_usage_error() {
    let dir = TempDir::new().unwrap();
    let pdf = write_pdf(dir.path(), "in.pdf", "Hello");
    let out = run(peedy().arg("stamp").arg(&pdf));
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("--text"), "{}", stderr(&out));
}

#[test]
fn bad_colour_is_a_usage_error_with_the_engines_message() {
    let dir = TempDir::new().unwrap();
    let pdf = write_pdf(dir.path(), "in.pdf", "Hello");
    let out = run(peedy()
        .args([
            "stamp",
            "--text",
            "Ricky Bobby",
            "--color",
            "chartreuse-ish",
        ])
        .arg(&pdf));
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains(r#"not a colour: "chartreuse-ish""#),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        1,
        "nothing written"
    );
}

#[test]
fn bad_spec_values_are_usage_errors() {
    let dir = TempDir::new().unwrap();
    let pdf = write_pdf(dir.path(), "in.pdf", "Hello");
    for (flag, value, message) in [
        ("--size", "huge", "not a font size"),
        ("--rotation", "sideways", "not a rotation"),
        ("--opacity", "1.5", "opacity must be between 0 and 1"),
        ("--position", "middle", "not a position"),
        ("--layer", "beside", "not a layer"),
        ("--pages", "0-2", "not a page selection"),
        ("--text", " ", "the watermark text is empty"),
        ("--max-input-bytes", "lots", "not a byte size"),
        ("--timeout-secs", "-1", "not a number of seconds"),
    ] {
        let mut cmd = peedy();
        cmd.arg("stamp").arg(&pdf).args([flag, value]);
        if flag != "--text" {
            cmd.args(["--text", "Ricky Bobby"]);
        }
        let out = run(&mut cmd);
        assert_exit(&out, 2);
        assert!(
            stderr(&out).contains(message),
            "{flag} {value}: expected {message:?} in:\n{}",
            stderr(&out)
        );
    }
}

#[test]
fn several_inputs_into_one_file_is_a_usage_error() {
    let dir = TempDir::new().unwrap();
    let a = write_pdf(dir.path(), "a.pdf", "A");
    let b = write_pdf(dir.path(), "b.pdf", "B");
    let target = dir.path().join("out.pdf");
    let out = run(peedy()
        .args(["stamp", "--text", "Ricky Bobby"])
        .arg(&a)
        .arg(&b)
        .arg("-o")
        .arg(&target));
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("must be a directory"),
        "{}",
        stderr(&out)
    );
    assert!(!target.exists());

    let out = run(peedy()
        .args(["stamp", "--text", "Ricky Bobby"])
        .arg(&a)
        .arg(&b)
        .args(["-o", "-"]));
    assert_exit(&out, 2);
}

#[test]
fn several_inputs_into_an_existing_file_is_a_usage_error() {
    let dir = TempDir::new().unwrap();
    let a = write_pdf(dir.path(), "a.pdf", "A");
    let b = write_pdf(dir.path(), "b.pdf", "B");
    let target = dir.path().join("out");
    fs::write(&target, b"keep me").unwrap();
    let out = run(peedy()
        .args(["stamp", "--text", "Ricky Bobby"])
        .arg(&a)
        .arg(&b)
        .arg("-o")
        .arg(&target));
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("not a directory"), "{}", stderr(&out));
    assert_eq!(fs::read(&target).unwrap(), b"keep me");
}

#[test]
fn stdin_among_several_inputs_is_a_usage_error() {
    let dir = TempDir::new().unwrap();
    let a = write_pdf(dir.path(), "a.pdf", "A");
    let out = run(peedy()
        .args(["stamp", "--text", "Ricky Bobby", "-"])
        .arg(&a)
        .arg("-o")
        .arg(dir.path()));
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("standard input"), "{}", stderr(&out));
}

#[test]
fn output_over_its_own_input_is_refused_even_with_force() {
    let dir = TempDir::new().unwrap();
    let pdf = write_pdf(dir.path(), "in.pdf", "Hello");
    let before = fs::read(&pdf).unwrap();
    for args in [
        vec![
            "-o".to_owned(),
            pdf.display().to_string(),
            "--force".to_owned(),
        ],
        // The input's own directory with no suffix names the input again.
        vec!["-o".to_owned(), dir.path().display().to_string()],
        vec!["--suffix".to_owned(), String::new()],
    ] {
        let out = run(peedy()
            .args(["stamp", "--text", "Ricky Bobby"])
            .arg(&pdf)
            .args(&args));
        assert_exit(&out, 2);
        assert!(
            stderr(&out).contains("overwrite the input"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(fs::read(&pdf).unwrap(), before);
}

#[test]
fn two_inputs_with_the_same_output_are_refused() {
    let dir = TempDir::new().unwrap();
    fs::create_dir(dir.path().join("x")).unwrap();
    fs::create_dir(dir.path().join("y")).unwrap();
    let a = write_pdf(&dir.path().join("x"), "same.pdf", "A");
    let b = write_pdf(&dir.path().join("y"), "same.pdf", "B");
    let out = run(peedy()
        .args(["stamp", "--text", "Ricky Bobby"])
        .arg(&a)
        .arg(&b)
        .arg("-o")
        .arg(dir.path().join("out")));
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("would both be written"),
        "{}",
        stderr(&out)
    );
    assert!(
        !dir.path().join("out").exists(),
        "nothing created on a usage error"
    );
}

#[test]
fn existing_output_is_refused_without_force() {
    let dir = TempDir::new().unwrap();
    let pdf = write_pdf(dir.path(), "in.pdf", "Hello");
    let target = dir.path().join("in.stamped.pdf");
    fs::write(&target, b"previous").unwrap();
    let out = run(peedy().args(["stamp", "--text", "Ricky Bobby"]).arg(&pdf));
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(fs::read(&target).unwrap(), b"previous");
}

#[test]
fn bad_limit_in_the_environment_is_a_usage_error() {
    let dir = TempDir::new().unwrap();
    let pdf = write_pdf(dir.path(), "in.pdf", "Hello");
    let out = run(peedy()
        .env("PEEDY_MAX_PAGES", "many")
        .args(["stamp", "--text", "Ricky Bobby"])
        .arg(&pdf));
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("--max-pages"), "{}", stderr(&out));
}

#[test]
fn unreadable_font_is_a_usage_error() {
    let dir = TempDir::new().unwrap();
    let pdf = write_pdf(dir.path(), "in.pdf", "Hello");
    let out = run(peedy()
        .args(["stamp", "--text", "Ricky Bobby", "--font"])
        .arg(dir.path().join("nope.ttf"))
        .arg(&pdf));
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("nope.ttf"), "{}", stderr(&out));
}

#[test]
fn a_file_that_is_not_a_font_is_a_usage_error() {
    let dir = TempDir::new().unwrap();
    let pdf = write_pdf(dir.path(), "in.pdf", "Hello");
    let font = dir.path().join("font.ttf");
    fs::write(&font, b"this is not a font at all").unwrap();
    let out = run(peedy()
        .args(["stamp", "--text", "Ricky Bobby", "--font"])
        .arg(&font)
        .arg(&pdf));
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("font.ttf"), "{}", stderr(&out));
}

#[test]
fn help_documents_every_flag_and_its_environment_variable() {
    let out = run(peedy().args(["stamp", "--help"]));
    assert_exit(&out, 0);
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--text",
        "--size",
        "--rotation",
        "--opacity",
        "--color",
        "--position",
        "--header",
        "--layer",
        "--pages",
        "--font",
        "--password",
        "--max-pages",
        "--max-decoded-bytes",
        "--max-input-bytes",
        "--max-depth",
        "--timeout-secs",
        "--output",
        "--suffix",
        "--force",
        "--json",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
    for var in [
        "PEEDY_PASSWORD",
        "PEEDY_FONT",
        "PEEDY_MAX_PAGES",
        "PEEDY_MAX_DECODED_BYTES",
        "PEEDY_MAX_INPUT_BYTES",
        "PEEDY_MAX_DEPTH",
        "PEEDY_TIMEOUT_SECS",
    ] {
        assert!(help.contains(var), "--help lacks {var}:\n{help}");
    }
    assert!(
        help.contains("NAME.stamped.pdf"),
        "--help explains default output names"
    );
}

// ---------------------------------------------------------------- failures: exit 1

#[test]
fn not_a_pdf_fails_naming_the_file() {
    let dir = TempDir::new().unwrap();
    let bogus = dir.path().join("notes.pdf");
    fs::write(&bogus, "just some text, honestly\n").unwrap();
    let out = run(peedy().args(["stamp", "--text", "Ricky Bobby"]).arg(&bogus));
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("peedy: {}: not a PDF", bogus.display())),
        "stderr should name the file and say it is not a PDF:\n{err}"
    );
    assert!(!dir.path().join("notes.stamped.pdf").exists());
    assert!(leftover_temp_files(dir.path()).is_empty());
}

#[test]
fn missing_input_fails_naming_the_file() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("gone.pdf");
    let out = run(peedy()
        .args(["stamp", "--text", "Ricky Bobby"])
        .arg(&missing));
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("peedy: {}: cannot read it", missing.display())),
        "{err}"
    );
}

#[test]
fn input_over_the_size_limit_fails_with_the_limit() {
    let dir = TempDir::new().unwrap();
    let pdf = write_pdf(dir.path(), "in.pdf", "Hello");
    let size = fs::metadata(&pdf).unwrap().len();
    let out = run(peedy()
        .args(["stamp", "--text", "Ricky Bobby", "--max-input-bytes", "100"])
        .arg(&pdf));
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains(&format!("the PDF has {size} bytes; the limit is 100")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn page_out_of_range_fails_with_the_page_count() {
    let dir = TempDir::new().unwrap();
    let pdf = write_pdf(dir.path(), "in.pdf", "Hello");
    let out = run(peedy()
        .args(["stamp", "--text", "Ricky Bobby", "--pages", "1,9"])
        .arg(&pdf));
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("page 9 does not exist (the document has 1)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn batch_with_one_bad_file_writes_the_good_ones() {
    let dir = TempDir::new().unwrap();
    let a = write_pdf(dir.path(), "a.pdf", "Alpha page");
    let bad = dir.path().join("bad.pdf");
    fs::write(&bad, "<html>not a pdf</html>").unwrap();
    let c = write_pdf(dir.path(), "c.pdf", "Gamma page");
    // Not there yet, no .pdf extension: created.
    let out_dir = dir.path().join("stamped");
    let out = run(peedy()
        .args(["stamp", "--text", "Ricky Bobby", "--rotation", "0"])
        .arg(&a)
        .arg(&bad)
        .arg(&c)
        .arg("-o")
        .arg(&out_dir));
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("peedy: {}: not a PDF", bad.display())),
        "{err}"
    );
    assert!(err.contains("stamped 2 of 3 files (1 failed)"), "{err}");
    assert_eq!(
        err.matches("peedy: ").count(),
        1,
        "only the bad file fails:\n{err}"
    );
    assert_stamped(&out_dir.join("a.pdf"), "Ricky Bobby", "Alpha page");
    assert_stamped(&out_dir.join("c.pdf"), "Ricky Bobby", "Gamma page");
    assert!(!out_dir.join("bad.pdf").exists());
    assert!(leftover_temp_files(&out_dir).is_empty());
}

// ---------------------------------------------------------------- success: exit 0

#[test]
fn single_file_is_stamped_with_the_text() {
    let dir = TempDir::new().unwrap();
    let pdf = write_pdf(dir.path(), "in.pdf", "Hello there");
    let target = dir.path().join("out.pdf");
    let out = run(peedy()
        .args(["stamp", "--text", "Ricky Bobby", "-o"])
        .arg(&target)
        .arg(&pdf));
    assert_exit(&out, 0);
    assert!(
        out.stderr.is_empty(),
        "a single success is silent: {}",
        stderr(&out)
    );
    assert_stamped(&target, "Ricky Bobby", "Hello there");
    assert!(leftover_temp_files(dir.path()).is_empty());
}

#[test]
fn default_output_goes_next_to_the_input() {
    let dir = TempDir::new().unwrap();
    let pdf = write_pdf(dir.path(), "report.pdf", "Quarterly");
    let out = run(peedy().args(["stamp", "--text", "DRAFT"]).arg(&pdf));
    assert_exit(&out, 0);
    assert_stamped(&dir.path().join("report.stamped.pdf"), "DRAFT", "Quarterly");

    let out = run(peedy()
        .args(["stamp", "--text", "DRAFT", "--suffix", "-draft"])
        .arg(&pdf));
    assert_exit(&out, 0);
    assert_stamped(&dir.path().join("report-draft.pdf"), "DRAFT", "Quarterly");
}

#[test]
fn output_into_an_existing_directory_keeps_the_name() {
    let dir = TempDir::new().unwrap();
    let pdf = write_pdf(dir.path(), "book.pdf", "Chapter one");
    let out_dir = dir.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let out = run(peedy()
        .args(["stamp", "--text", "Ricky Bobby", "-o"])
        .arg(&out_dir)
        .arg(&pdf));
    assert_exit(&out, 0);
    assert_stamped(&out_dir.join("book.pdf"), "Ricky Bobby", "Chapter one");
}

#[test]
fn force_overwrites_an_existing_output() {
    let dir = TempDir::new().unwrap();
    let pdf = write_pdf(dir.path(), "in.pdf", "Hello");
    let target = dir.path().join("out.pdf");
    fs::write(&target, b"previous").unwrap();
    let out = run(peedy()
        .args(["stamp", "--text", "Ricky Bobby", "--force", "-o"])
        .arg(&target)
        .arg(&pdf));
    assert_exit(&out, 0);
    assert_stamped(&target, "Ricky Bobby", "Hello");
}

#[test]
fn stdin_to_stdout() {
    let dir = TempDir::new().unwrap();
    let pdf = write_pdf(dir.path(), "in.pdf", "Piped page");
    let mut child = peedy()
        .args(["stamp", "-", "--text", "Ricky Bobby"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn peedy");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = tiny_pdf("Piped page");
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("wait for peedy");
    writer.join().expect("writer thread").expect("write stdin");
    assert_exit(&out, 0);
    assert!(out.stdout.starts_with(b"%PDF-"), "stdout is a PDF");
    let piped = dir.path().join("piped.pdf");
    fs::write(&piped, &out.stdout).unwrap();
    assert_stamped(&piped, "Ricky Bobby", "Piped page");

    // The same bytes as a file-to-file run (the output is deterministic).
    let target = dir.path().join("file.pdf");
    let out = run(peedy()
        .args(["stamp", "--text", "Ricky Bobby", "-o"])
        .arg(&target)
        .arg(&pdf));
    assert_exit(&out, 0);
    assert_eq!(fs::read(&target).unwrap(), fs::read(&piped).unwrap());
}

#[test]
fn file_to_stdout() {
    let dir = TempDir::new().unwrap();
    let pdf = write_pdf(dir.path(), "in.pdf", "Hello");
    let out = run(peedy()
        .args(["stamp", "--text", "Ricky Bobby", "-o", "-"])
        .arg(&pdf));
    assert_exit(&out, 0);
    let target = dir.path().join("captured.pdf");
    fs::write(&target, &out.stdout).unwrap();
    assert_stamped(&target, "Ricky Bobby", "Hello");
}

#[test]
fn backslash_n_in_the_text_makes_two_lines() {
    let dir = TempDir::new().unwrap();
    let pdf = write_pdf(dir.path(), "in.pdf", "Hello");
    let target = dir.path().join("out.pdf");
    let out = run(peedy()
        .args(["stamp", "--text", r"Ricky\nBobby", "--rotation", "0", "-o"])
        .arg(&target)
        .arg(&pdf));
    assert_exit(&out, 0);
    assert_valid_pdf(&target);
    let text = text_of(&target);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert!(
        lines.contains(&"Ricky") && lines.contains(&"Bobby"),
        "expected Ricky and Bobby on lines of their own:\n{text}"
    );
    assert!(!text.contains(r"\n"), "no literal backslash-n:\n{text}");
}

#[test]
fn every_spec_flag_is_accepted_together() {
    let dir = TempDir::new().unwrap();
    let pdf = write_pdf(dir.path(), "in.pdf", "Hello");
    let target = dir.path().join("out.pdf");
    let out = run(peedy()
        .args([
            "stamp",
            "--text",
            "CONFIDENTIAL",
            "--size",
            "36",
            "--rotation",
            "diagonal",
            "--opacity",
            "0.5",
            "--color",
            "#c00000",
            "--position",
            "bottom-right:-20,20",
            "--header",
            "--layer",
            "under",
            "--pages",
            "1,last",
            "--max-pages",
            "10",
            "--max-decoded-bytes",
            "64M",
            "--max-input-bytes",
            "1M",
            "--max-depth",
            "32",
            "--timeout-secs",
            "30",
            "-o",
        ])
        .arg(&target)
        .arg(&pdf));
    assert_exit(&out, 0);
    assert_stamped(&target, "CONFIDENTIAL", "Hello");
}

#[test]
fn page_limit_from_the_environment_applies() {
    let dir = TempDir::new().unwrap();
    let pdf = write_pdf(dir.path(), "in.pdf", "Hello");
    let out = run(peedy()
        .env("PEEDY_MAX_PAGES", "0")
        .args(["stamp", "--text", "Ricky Bobby"])
        .arg(&pdf));
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("the PDF has 1 pages; the limit is 0"),
        "{}",
        stderr(&out)
    );
}

// ---------------------------------------------------------------- the real-world corpus

#[test]
fn password_protected_file_without_password_fails_saying_so() {
    let locked = corpus_file("005-");
    let dir = TempDir::new().unwrap();
    let out = run(peedy()
        .args(["stamp", "--text", "Ricky Bobby", "-o"])
        .arg(dir.path())
        .arg(&locked));
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains(&locked.display().to_string()),
        "names the file:\n{err}"
    );
    assert!(err.contains("password-protected"), "says why:\n{err}");
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn password_protected_file_with_its_password_is_stamped() {
    let locked = corpus_file("005-");
    let dir = TempDir::new().unwrap();
    let target = dir.path().join("unlocked.pdf");
    // From the environment, so it stays off the command line.
    let out = run(peedy()
        .env("PEEDY_PASSWORD", "openpassword")
        .args(["stamp", "--text", "Ricky Bobby", "-o"])
        .arg(&target)
        .arg(&locked));
    assert_exit(&out, 0);
    let (code, text) = qpdf_check(&target, Some("openpassword"));
    assert_eq!(code, 0, "qpdf --check:\n{text}");
    // Still encrypted: without the password qpdf cannot open it.
    assert_ne!(qpdf_check(&target, None).0, 0, "the output stays encrypted");
}

#[test]
fn corpus_batch_stamps_every_readable_file() {
    let inputs = corpus_pdfs();
    assert!(inputs.len() >= 30, "corpus looks incomplete: {inputs:?}");
    let dir = TempDir::new().unwrap();
    let out_dir = dir.path().join("out/");
    let out = run(peedy()
        .args(["stamp", "--text", "Ricky Bobby", "-o"])
        .arg(&out_dir)
        .args(&inputs));
    assert_exit(&out, 1);
    let err = stderr(&out);
    let failures: Vec<&str> = err.lines().filter(|l| l.starts_with("peedy: ")).collect();
    assert_eq!(
        failures.len(),
        1,
        "only the password-protected file fails:\n{err}"
    );
    assert!(
        failures[0].contains("005-") && failures[0].contains("password-protected"),
        "{err}"
    );
    let total = inputs.len();
    assert!(
        err.contains(&format!(
            "stamped {} of {total} files (1 failed)",
            total - 1
        )),
        "{err}"
    );
    for input in inputs {
        let name = input.file_name().expect("name");
        if name.to_string_lossy().starts_with("005-") {
            continue;
        }
        let output = out_dir.join(name);
        let (before, _) = qpdf_check(&input, None);
        let (after, report) = qpdf_check(&output, None);
        assert!(
            after == 0 || after <= before && after != 2,
            "{}: qpdf --check {before} before, {after} after:\n{report}",
            output.display()
        );
    }
    assert!(leftover_temp_files(&out_dir).is_empty());
}

// ---------------------------------------------------------------- --json, completions, man

#[test]
fn json_report_describes_every_file_in_order() {
    let dir = TempDir::new().unwrap();
    let four = corpus_file("004-");
    let locked = corpus_file("005-");
    let tiny = write_pdf(dir.path(), "tiny.pdf", "Hello JSON");
    let out_dir = dir.path().join("out");
    let out = run(peedy()
        .args(["stamp", "--json", "--text", "Ricky Bobby", "-o"])
        .arg(&out_dir)
        .arg(&four)
        .arg(&locked)
        .arg(&tiny));
    assert_exit(&out, 1);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(report["stamped"], 2, "{report:#}");
    assert_eq!(report["failed"], 1, "{report:#}");
    let files = report["files"].as_array().expect("files");
    assert_eq!(files.len(), 3, "{report:#}");

    for (entry, input, pages, text) in [
        (&files[0], &four, 4, None),
        (&files[2], &tiny, 1, Some("Hello JSON")),
    ] {
        assert_eq!(entry["status"], "stamped", "{entry:#}");
        assert_eq!(entry["input"], input.display().to_string());
        let output = out_dir.join(input.file_name().unwrap());
        assert_eq!(entry["output"], output.display().to_string());
        assert_eq!(entry["pages"], pages, "{entry:#}");
        assert_eq!(entry["stamped_pages"], pages, "{entry:#}");
        assert_eq!(entry["input_bytes"], fs::metadata(input).unwrap().len());
        assert_eq!(entry["output_bytes"], fs::metadata(&output).unwrap().len());
        assert_eq!(entry["incremental"], true, "{entry:#}");
        assert!(entry["ms"].is_u64(), "{entry:#}");
        if let Some(text) = text {
            assert_stamped(&output, "Ricky Bobby", text);
        }
    }
    let failed = &files[1];
    assert_eq!(failed["status"], "failed", "{failed:#}");
    assert_eq!(failed["input"], locked.display().to_string());
    assert_eq!(failed["error"]["code"], "password_protected", "{failed:#}");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("password-protected"),
        "{failed:#}"
    );
    // The human failure line still goes to stderr; the summary is in the JSON.
    let err = stderr(&out);
    assert!(err.contains("password-protected"), "{err}");
    assert!(!err.contains("stamped 2 of 3"), "{err}");

    // Some pages only: the counts say so.
    let out = run(peedy()
        .args([
            "stamp", "--json", "--pages", "2-3", "--text", "x", "-f", "-o",
        ])
        .arg(dir.path().join("two.pdf"))
        .arg(&four));
    assert_exit(&out, 0);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["files"][0]["pages"], 4, "{report:#}");
    assert_eq!(report["files"][0]["stamped_pages"], 2, "{report:#}");
    assert_eq!(
        (report["stamped"].clone(), report["failed"].clone()),
        (1.into(), 0.into())
    );
}

#[test]
fn json_cannot_share_standard_output_with_the_pdf() {
    let dir = TempDir::new().unwrap();
    let pdf = write_pdf(dir.path(), "in.pdf", "Hello");
    let out = run(peedy()
        .args(["stamp", "--json", "--text", "x", "-o", "-"])
        .arg(&pdf));
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("--json"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
}

#[test]
fn completions_come_from_the_cli_definition() {
    let out = run(peedy().args(["completions", "bash"]));
    assert_exit(&out, 0);
    let bash = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "_peedy()",
        "complete -F _peedy",
        "serve",
        "stamp",
        "--text",
        "--json",
        "--api-tokens",
    ] {
        assert!(bash.contains(needle), "the bash completion lacks {needle}");
    }
    let out = run(peedy().args(["completions", "zsh"]));
    assert_exit(&out, 0);
    let zsh = String::from_utf8_lossy(&out.stdout);
    assert!(
        zsh.starts_with("#compdef peedy"),
        "{}",
        &zsh[..zsh.len().min(200)]
    );
    assert!(zsh.contains("--api-token-file"));
    let out = run(peedy().args(["completions", "fish"]));
    assert_exit(&out, 0);
    let fish = String::from_utf8_lossy(&out.stdout);
    assert!(
        fish.contains("complete -c peedy") && fish.contains("-l text"),
        "{fish}"
    );
    let out = run(peedy().args(["completions", "tcsh"]));
    assert_exit(&out, 2);
}

#[test]
fn man_pages_come_from_the_cli_definition() {
    let out = run(peedy().arg("man"));
    assert_exit(&out, 0);
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH peedy 1  \"peedy 0.1.0\""), "{page}");
    for needle in ["peedy\\-stamp(1)", "peedy\\-serve(1)", "watermarks PDFs"] {
        assert!(page.contains(needle), "peedy(1) lacks {needle}:\n{page}");
    }

    let out = run(peedy().args(["man", "stamp"]));
    assert_exit(&out, 0);
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH peedy-stamp 1"), "{page}");
    for needle in [
        "\\-\\-text",
        "\\-\\-json",
        "\\-\\-opacity",
        "PEEDY_PASSWORD",
        "Exit status",
    ] {
        assert!(
            page.contains(needle),
            "peedy-stamp(1) lacks {needle}:\n{page}"
        );
    }

    let dir = TempDir::new().unwrap();
    let man_dir = dir.path().join("man1");
    let out = run(peedy().args(["man", "--dir"]).arg(&man_dir));
    assert_exit(&out, 0);
    assert!(out.stdout.is_empty());
    for name in [
        "peedy.1",
        "peedy-stamp.1",
        "peedy-serve.1",
        "peedy-completions.1",
        "peedy-man.1",
    ] {
        let page = fs::read_to_string(man_dir.join(name))
            .unwrap_or_else(|e| panic!("{name} was not written: {e}"));
        assert!(page.contains(".TH "), "{name}");
    }
    let serve = fs::read_to_string(man_dir.join("peedy-serve.1")).unwrap();
    assert!(
        serve.contains("\\-\\-api\\-tokens") && serve.contains("PEEDY_API_TOKEN_FILE"),
        "{serve}"
    );
}

// ---------------------------------------------------------------- peedy cluster

#[test]
fn cluster_without_a_database_says_so_and_creates_nothing() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("nothing-here");
    let out = run(peedy()
        .arg("cluster")
        .arg("--data-dir")
        .arg(&data)
        .env_remove("PEEDY_DATABASE_URL"));
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("no Peedy database"),
        "{}",
        stderr(&out)
    );
    assert!(!data.exists(), "peedy cluster created {data:?}");
}
