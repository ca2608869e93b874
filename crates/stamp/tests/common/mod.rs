//! Helpers shared by the engine's integration tests: the shared corpus, PDF
//! fixtures generated in Rust, rendering with `hayro`, and the external
//! checkers DESIGN §3 names (`qpdf --check`, `mutool draw -F txt`).
//!
//! The corpus (`shared/corpus/sample-files` next to the workspace) is never
//! copied into the repository; a test that needs it fails loudly when it is
//! missing. A missing external tool fails the test with the package to
//! install, never a silent pass.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use peedy_stamp::{Options, Stamped, Stamper, Watermark};

// ---------------------------------------------------------------- corpus

/// Where the shared corpus of real PDFs lives.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/sample-files")
}

/// Every PDF of the corpus, sorted by name. Panics when the corpus is absent
/// or empty: these tests must never pass by finding nothing to test.
pub fn corpus() -> Vec<PathBuf> {
    let dir = corpus_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "corpus missing at {}: {e}; it comes with the workspace's shared/ folder \
             (../shared/corpus/sample-files from the repository root)",
            dir.display()
        )
    });
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("pdf")))
        .collect();
    files.sort();
    assert!(
        files.len() >= 20,
        "corpus at {} has only {} PDFs; it comes with the workspace's shared/ folder",
        dir.display(),
        files.len()
    );
    files
}

/// The corpus file whose name starts with `prefix` (e.g. `"017-"`).
pub fn corpus_file(prefix: &str) -> PathBuf {
    let all = corpus();
    let mut found = all.iter().filter(|p| file_name(p).starts_with(prefix));
    found
        .next()
        .unwrap_or_else(|| panic!("no corpus file starts with {prefix:?}"))
        .clone()
}

/// The bytes of the corpus file whose name starts with `prefix`.
pub fn corpus_bytes(prefix: &str) -> Vec<u8> {
    let path = corpus_file(prefix);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A path's file name, for messages.
pub fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

// ---------------------------------------------------------------- stamping

/// The watermark text the original Peedy was tested with.
pub const TEXT: &str = "Ricky Bobby";

/// A stamper with default options for `wm`.
pub fn stamper(wm: Watermark) -> Stamper {
    Stamper::new(wm, Options::default()).expect("the watermark is valid")
}

/// Stamps `input` with the default "Ricky Bobby" watermark and returns the
/// whole output and the result.
pub fn stamp_default(input: &[u8]) -> (Vec<u8>, Stamped) {
    let s = stamper(Watermark::new(TEXT).expect("valid text"));
    let stamped = s
        .stamp(input)
        .unwrap_or_else(|e| panic!("stamping failed: {e:?}"));
    (stamped.to_vec(input), stamped)
}

/// Stamps `input` with `wm` and returns the whole output.
pub fn stamp_with(input: &[u8], wm: Watermark) -> Vec<u8> {
    let stamped = stamper(wm)
        .stamp(input)
        .unwrap_or_else(|e| panic!("stamping failed: {e:?}"));
    stamped.to_vec(input)
}

// ---------------------------------------------------------------- fixtures

/// One page of a generated fixture.
#[derive(Debug, Clone)]
pub struct PageSpec {
    /// `/MediaBox`; `None` inherits the `/Pages` node's.
    pub media_box: Option<[f32; 4]>,
    /// `/CropBox`, if any.
    pub crop_box: Option<[f32; 4]>,
    /// `/Rotate`, if any.
    pub rotate: Option<i32>,
    /// Content streams: one is written as `/Contents N 0 R`, several as a
    /// `/Contents [...]` array, none as no `/Contents` at all.
    pub contents: Vec<Vec<u8>>,
    /// Give the page its own `/Resources` (else it inherits the `/Pages`
    /// node's).
    pub own_resources: bool,
}

/// US Letter.
pub const LETTER: [f32; 4] = [0.0, 0.0, 612.0, 792.0];

impl PageSpec {
    /// A blank US Letter page (an empty content stream).
    pub fn blank() -> Self {
        Self {
            media_box: Some(LETTER),
            crop_box: None,
            rotate: None,
            contents: vec![Vec::new()],
            own_resources: false,
        }
    }

    /// A US Letter page showing `text` in Helvetica 12 near the bottom left.
    pub fn with_text(text: &str) -> Self {
        Self::blank().contents(vec![text_ops(text, 36.0, 36.0)])
    }

    /// Sets the `/MediaBox` (`None`: inherited).
    pub fn media_box(mut self, b: Option<[f32; 4]>) -> Self {
        self.media_box = b;
        self
    }

    /// Sets the `/CropBox`.
    pub fn crop_box(mut self, b: [f32; 4]) -> Self {
        self.crop_box = Some(b);
        self
    }

    /// Sets `/Rotate`.
    pub fn rotate(mut self, r: i32) -> Self {
        self.rotate = Some(r);
        self
    }

    /// Sets the content streams.
    pub fn contents(mut self, c: Vec<Vec<u8>>) -> Self {
        self.contents = c;
        self
    }

    /// Gives the page its own `/Resources` dictionary.
    pub fn own_resources(mut self) -> Self {
        self.own_resources = true;
        self
    }
}

/// `BT /F1 12 Tf x y Td (text) Tj ET`.
pub fn text_ops(text: &str, x: f32, y: f32) -> Vec<u8> {
    format!("BT /F1 12 Tf {x} {y} Td ({text}) Tj ET\n").into_bytes()
}

/// A generated PDF: a catalog, one `/Pages` node holding the pages, a
/// Helvetica font in the node's `/Resources` (inherited by the pages), and a
/// classic xref table with correct offsets.
#[derive(Debug, Clone, Default)]
pub struct Fixture {
    pages: Vec<PageSpec>,
    /// `/MediaBox` on the `/Pages` node, inherited by pages without one.
    pub node_media_box: Option<[f32; 4]>,
    /// `/Rotate` on the `/Pages` node.
    pub node_rotate: Option<i32>,
}

impl Fixture {
    /// No pages yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a page.
    pub fn page(mut self, p: PageSpec) -> Self {
        self.pages.push(p);
        self
    }

    /// Puts a `/MediaBox` on the `/Pages` node.
    pub fn node_media_box(mut self, b: [f32; 4]) -> Self {
        self.node_media_box = Some(b);
        self
    }

    /// Puts a `/Rotate` on the `/Pages` node.
    pub fn node_rotate(mut self, r: i32) -> Self {
        self.node_rotate = Some(r);
        self
    }

    /// Writes the PDF.
    pub fn build(&self) -> Vec<u8> {
        // 1 catalog, 2 pages node, 3 font, then per page: the page and its
        // content streams.
        let mut bodies: Vec<Vec<u8>> = vec![Vec::new(); 3];
        bodies[0] = b"<< /Type /Catalog /Pages 2 0 R >>".to_vec();
        bodies[2] =
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
                .to_vec();
        let resources = "<< /Font << /F1 3 0 R >> /ProcSet [/PDF /Text] >>";
        let mut kids = String::new();
        for p in &self.pages {
            let page_num = bodies.len() + 1;
            bodies.push(Vec::new());
            let mut content_refs = Vec::new();
            for c in &p.contents {
                content_refs.push(bodies.len() + 1);
                bodies.push(stream("", c));
            }
            let mut d = String::from("<< /Type /Page /Parent 2 0 R");
            if let Some(b) = p.media_box {
                let _ = write!(d, " /MediaBox {}", rect(b));
            }
            if let Some(b) = p.crop_box {
                let _ = write!(d, " /CropBox {}", rect(b));
            }
            if let Some(r) = p.rotate {
                let _ = write!(d, " /Rotate {r}");
            }
            if p.own_resources {
                let _ = write!(d, " /Resources {resources}");
            }
            match content_refs.as_slice() {
                [] => {}
                [one] => {
                    let _ = write!(d, " /Contents {one} 0 R");
                }
                many => {
                    d.push_str(" /Contents [");
                    for r in many {
                        let _ = write!(d, " {r} 0 R");
                    }
                    d.push_str(" ]");
                }
            }
            d.push_str(" >>");
            bodies[page_num - 1] = d.into_bytes();
            let _ = write!(kids, " {page_num} 0 R");
        }
        let mut node = format!(
            "<< /Type /Pages /Kids [{kids} ] /Count {} /Resources {resources}",
            self.pages.len()
        );
        if let Some(b) = self.node_media_box {
            let _ = write!(node, " /MediaBox {}", rect(b));
        }
        if let Some(r) = self.node_rotate {
            let _ = write!(node, " /Rotate {r}");
        }
        node.push_str(" >>");
        bodies[1] = node.into_bytes();
        write_pdf(&bodies, "")
    }
}

/// A one-page Letter fixture showing "Page 1".
pub fn one_page() -> Vec<u8> {
    Fixture::new().page(PageSpec::with_text("Page 1")).build()
}

/// An `n`-page Letter fixture, page i showing "Page i"; every other page
/// has its content split into a `/Contents` array.
pub fn pages(n: usize) -> Vec<u8> {
    let mut f = Fixture::new();
    for i in 1..=n {
        let p = if i % 2 == 0 {
            PageSpec::blank().contents(vec![
                b"q 0.9 g 30 30 100 20 re f Q\n".to_vec(),
                text_ops(&format!("Page {i}"), 36.0, 36.0),
            ])
        } else {
            PageSpec::with_text(&format!("Page {i}"))
        };
        f = f.page(p);
    }
    f.build()
}

fn rect(b: [f32; 4]) -> String {
    format!("[{} {} {} {}]", b[0], b[1], b[2], b[3])
}

/// The body of a stream object: `<< extra /Length n >> stream … endstream`.
pub fn stream(extra: &str, data: &[u8]) -> Vec<u8> {
    let mut out = format!("<< {extra} /Length {} >>\nstream\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\nendstream");
    out
}

/// Writes a PDF 1.4 whose object `i + 1` is `bodies[i]` (the text between
/// `N 0 obj` and `endobj`), with a classic xref table whose offsets are
/// right, and a trailer naming `1 0 R` as `/Root` plus `trailer_extra`.
pub fn write_pdf(bodies: &[Vec<u8>], trailer_extra: &str) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::with_capacity(bodies.len());
    for (i, body) in bodies.iter().enumerate() {
        offsets.push(out.len());
        let _ = writeln!(out, "{} 0 obj", i + 1);
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    let _ = write!(out, "xref\n0 {}\n0000000000 65535 f\r\n", bodies.len() + 1);
    for off in offsets {
        let _ = write!(out, "{off:010} 00000 n\r\n");
    }
    let _ = write!(
        out,
        "trailer\n<< /Size {} /Root 1 0 R {trailer_extra} >>\nstartxref\n{xref}\n%%EOF\n",
        bodies.len() + 1
    );
    out
}

// ---------------------------------------------------------------- rendering

/// A rendered page: RGBA8 pixels, row-major, top row first, on white.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `[r, g, b, a]` per pixel.
    pub rgba: Vec<u8>,
}

impl Image {
    /// The pixel at `(x, y)` (y down).
    pub fn at(&self, x: usize, y: usize) -> [u8; 4] {
        let i = (y * self.width + x) * 4;
        [
            self.rgba[i],
            self.rgba[i + 1],
            self.rgba[i + 2],
            self.rgba[i + 3],
        ]
    }
}

/// Renders page `index` (0-based) of `pdf` with `hayro` at `scale` pixels
/// per point, on a white background. hayro shows the visible area (the crop
/// box within the media box) turned by `/Rotate`, as a viewer does.
pub fn render(pdf: &[u8], index: usize, scale: f32) -> Image {
    use hayro::hayro_interpret::InterpreterSettings;
    use hayro::hayro_syntax::Pdf;
    use hayro::vello_cpu::color::palette::css::WHITE;
    use hayro::{PixmapSettings, RenderCache, RenderSettings};

    let doc = Pdf::new(pdf.to_vec()).unwrap_or_else(|e| panic!("hayro cannot open: {e:?}"));
    let pages = doc.pages();
    assert!(
        index < pages.len(),
        "page {index} of {} pages requested",
        pages.len()
    );
    let page = &pages[index];
    let cache = RenderCache::new();
    let pixmap = hayro::render(
        page,
        &cache,
        &InterpreterSettings::default(),
        &RenderSettings::default(),
        &PixmapSettings {
            x_scale: scale,
            y_scale: scale,
            bg_color: WHITE,
        },
    );
    Image {
        width: usize::from(pixmap.width()),
        height: usize::from(pixmap.height()),
        // Opaque white background: premultiplied equals straight alpha.
        rgba: pixmap.data_as_u8_slice().to_vec(),
    }
}

/// Pages hayro finds in `pdf`.
pub fn hayro_page_count(pdf: &[u8]) -> usize {
    hayro::hayro_syntax::Pdf::new(pdf.to_vec())
        .map(|d| d.pages().len())
        .unwrap_or(0)
}

// ---------------------------------------------------------------- external tools

/// Runs `tool` with `args`; a missing tool is a loud failure naming the
/// package to install.
pub fn run_tool(tool: &str, package: &str, args: &[&std::ffi::OsStr]) -> Output {
    Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!(
            "cannot run `{tool}` ({e}): install {package} (Debian/Ubuntu: apt-get install {package})"
        )
    })
}

/// Writes `pdf` to a fresh temporary file.
pub fn temp_pdf(pdf: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(".pdf")
        .tempfile()
        .expect("create a temporary file");
    f.write_all(pdf).expect("write the temporary PDF");
    f.flush().expect("flush the temporary PDF");
    f
}

/// The text of page `page` (1-based) as `mutool draw -F txt` extracts it.
pub fn text_of(pdf: &[u8], page: u32) -> String {
    text_of_with_password(pdf, page, None)
}

/// [`text_of`] for an encrypted file opened with `password`.
pub fn text_of_with_password(pdf: &[u8], page: u32, password: Option<&str>) -> String {
    let f = temp_pdf(pdf);
    let page = page.to_string();
    let mut args: Vec<&std::ffi::OsStr> = vec!["draw".as_ref(), "-F".as_ref(), "txt".as_ref()];
    if let Some(p) = password {
        args.push("-p".as_ref());
        args.push(p.as_ref());
    }
    args.push(f.path().as_os_str());
    args.push(page.as_ref());
    let out = run_tool("mutool", "mupdf-tools", &args);
    assert!(
        out.status.success() || !out.stdout.is_empty(),
        "mutool draw -F txt failed on page {page}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What `qpdf --check` says about a file.
#[derive(Debug, Clone)]
pub struct QpdfCheck {
    /// Exit status: 0 clean, 2 errors, 3 warnings only.
    pub code: i32,
    /// Error lines (and the final message when qpdf gave up).
    pub errors: Vec<String>,
    /// `WARNING:` lines.
    pub warnings: Vec<String>,
    /// Everything qpdf printed on standard output.
    pub stdout: String,
}

/// Runs `qpdf --check` (with `--password` when given) on `pdf`.
pub fn qpdf_check_full(pdf: &[u8], password: Option<&str>) -> QpdfCheck {
    let f = temp_pdf(pdf);
    let pw = password.map(|p| format!("--password={p}"));
    let mut args: Vec<&std::ffi::OsStr> = vec!["--check".as_ref()];
    if let Some(p) = &pw {
        args.push(p.as_ref());
    }
    args.push(f.path().as_os_str());
    let out = run_tool("qpdf", "qpdf", &args);
    let code = out.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let path = f.path().to_string_lossy().into_owned();
    // Paths differ between runs: compare lines without them.
    let clean = |l: &str| l.replace(&path, "FILE");
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for line in stdout.lines().chain(stderr.lines()) {
        if line.starts_with("WARNING") {
            warnings.push(clean(line));
        } else if line.starts_with("ERROR")
            || (line.starts_with("qpdf:") && !line.contains("operation succeeded"))
        {
            errors.push(clean(line));
        }
    }
    if code == 2 && errors.is_empty() {
        errors.push(clean(stderr.trim()));
    }
    QpdfCheck {
        code,
        errors,
        warnings,
        stdout: clean(&stdout),
    }
}

/// `qpdf --check`: `(errors, warnings)`.
pub fn qpdf_check(pdf: &[u8]) -> (Vec<String>, Vec<String>) {
    let c = qpdf_check_full(pdf, None);
    (c.errors, c.warnings)
}

/// Pages per `qpdf --show-npages` (0 when qpdf cannot tell).
pub fn qpdf_pages(pdf: &[u8], password: Option<&str>) -> u32 {
    let f = temp_pdf(pdf);
    let pw = password.map(|p| format!("--password={p}"));
    let mut args: Vec<&std::ffi::OsStr> = vec!["--show-npages".as_ref()];
    if let Some(p) = &pw {
        args.push(p.as_ref());
    }
    args.push(f.path().as_os_str());
    let out = run_tool("qpdf", "qpdf", &args);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

/// The encryption lines of `qpdf --show-encryption` (`R = …`, the methods),
/// or `None` when the file is not encrypted.
pub fn qpdf_encryption(pdf: &[u8], password: Option<&str>) -> Option<Vec<String>> {
    let f = temp_pdf(pdf);
    let pw = password.map(|p| format!("--password={p}"));
    let mut args: Vec<&std::ffi::OsStr> = vec!["--show-encryption".as_ref()];
    if let Some(p) = &pw {
        args.push(p.as_ref());
    }
    args.push(f.path().as_os_str());
    let out = run_tool("qpdf", "qpdf", &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "qpdf --show-encryption failed: {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    if stdout.contains("File is not encrypted") {
        return None;
    }
    Some(
        stdout
            .lines()
            .filter(|l| l.starts_with("R = ") || l.contains("encryption method"))
            .map(str::to_owned)
            .collect(),
    )
}

/// Encrypts `pdf` with `qpdf --encrypt USER owner BITS [extra…] --`.
pub fn qpdf_encrypt(pdf: &[u8], user: &str, bits: &str, extra: &[&str]) -> Vec<u8> {
    let f = temp_pdf(pdf);
    let out_file = tempfile::Builder::new()
        .suffix(".pdf")
        .tempfile()
        .expect("create a temporary file");
    let mut args: Vec<&std::ffi::OsStr> = Vec::new();
    for e in extra.iter().filter(|e| !e.starts_with("--use-aes")) {
        args.push(e.as_ref());
    }
    for a in ["--encrypt", user, "owner", bits] {
        args.push(a.as_ref());
    }
    for e in extra.iter().filter(|e| e.starts_with("--use-aes")) {
        args.push(e.as_ref());
    }
    args.push("--".as_ref());
    args.push(f.path().as_os_str());
    args.push(out_file.path().as_os_str());
    let out = run_tool("qpdf", "qpdf", &args);
    assert!(
        out.status.success(),
        "qpdf --encrypt failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(out_file.path()).expect("read the encrypted PDF")
}

/// The text of every page, as `mutool draw -F txt` extracts it (one string
/// per page, in order).
pub fn texts_of(pdf: &[u8], password: Option<&str>) -> Vec<String> {
    let f = temp_pdf(pdf);
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let pattern = dir.path().join("page-%d.txt");
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "draw".as_ref(),
        "-q".as_ref(),
        "-F".as_ref(),
        "txt".as_ref(),
        "-o".as_ref(),
        pattern.as_os_str(),
    ];
    if let Some(p) = password {
        args.push("-p".as_ref());
        args.push(p.as_ref());
    }
    args.push(f.path().as_os_str());
    let out = run_tool("mutool", "mupdf-tools", &args);
    let mut texts = Vec::new();
    for i in 1.. {
        match std::fs::read(dir.path().join(format!("page-{i}.txt"))) {
            Ok(t) => texts.push(String::from_utf8_lossy(&t).into_owned()),
            Err(_) => break,
        }
    }
    // mutool exits 1 when the file has errors it worked around (a damaged
    // input's missing objects); only no output at all is a failure.
    assert!(
        out.status.success() || !texts.is_empty(),
        "mutool draw -F txt failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    texts
}

/// `mutool show FILE WHAT` (e.g. `pages/2`, `trailer`), for looking at the
/// structure of a file.
pub fn mutool_show(pdf: &[u8], what: &str) -> String {
    let f = temp_pdf(pdf);
    let out = run_tool(
        "mutool",
        "mupdf-tools",
        &["show".as_ref(), f.path().as_os_str(), what.as_ref()],
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One line of text as `mutool draw -F stext` sees it on the displayed page.
#[derive(Debug, Clone, PartialEq)]
pub struct TextLine {
    /// The characters.
    pub text: String,
    /// Writing direction in device space (x right, y down): `(1, 0)` is
    /// ordinary upright text; `(cos a, -sin a)` rises at `a` degrees.
    pub dir: (f32, f32),
    /// `[x0 y0 x1 y1]` in device space (points, y down).
    pub bbox: [f32; 4],
}

/// The lines of text on page `page` (1-based), via `mutool draw -F stext`.
pub fn text_lines(pdf: &[u8], page: u32) -> Vec<TextLine> {
    let f = temp_pdf(pdf);
    let page = page.to_string();
    let out = run_tool(
        "mutool",
        "mupdf-tools",
        &[
            "draw".as_ref(),
            "-q".as_ref(),
            "-F".as_ref(),
            "stext".as_ref(),
            f.path().as_os_str(),
            page.as_ref(),
        ],
    );
    let xml = String::from_utf8_lossy(&out.stdout);
    assert!(
        xml.contains("<page"),
        "mutool draw -F stext failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let attr = |tag: &str, name: &str| -> Option<String> {
        let key = format!(" {name}=\"");
        let start = tag.find(&key)? + key.len();
        let end = tag[start..].find('"')? + start;
        Some(tag[start..end].to_owned())
    };
    let nums = |s: &str| -> Vec<f32> {
        s.split_whitespace()
            .filter_map(|v| v.parse::<f32>().ok())
            .collect()
    };
    let mut lines = Vec::new();
    let mut current: Option<TextLine> = None;
    for tag in xml.split('<').skip(1) {
        if tag.starts_with("line ") {
            let dir = nums(&attr(tag, "dir").unwrap_or_default());
            let bbox = nums(&attr(tag, "bbox").unwrap_or_default());
            current = Some(TextLine {
                text: String::new(),
                dir: (
                    dir.first().copied().unwrap_or(0.0),
                    dir.get(1).copied().unwrap_or(0.0),
                ),
                bbox: [0, 1, 2, 3].map(|i| bbox.get(i).copied().unwrap_or(0.0)),
            });
        } else if tag.starts_with("char ") {
            if let (Some(line), Some(c)) = (current.as_mut(), attr(tag, "c")) {
                let c = c
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&quot;", "\"")
                    .replace("&apos;", "'")
                    .replace("&amp;", "&");
                line.text.push_str(&c);
            }
        } else if tag.starts_with("/line")
            && let Some(line) = current.take()
        {
            lines.push(line);
        }
    }
    lines
}

/// Runs `f` on its own thread and fails if it takes longer than `limit`: a
/// hang in the engine fails the test instead of stalling the run.
pub fn within<T: Send + 'static>(
    limit: std::time::Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(what.to_owned())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("spawn a thread");
    match rx.recv_timeout(limit) {
        Ok(v) => {
            let _ = handle.join();
            v
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            // The thread panicked: re-raise its panic here.
            match handle.join() {
                Err(p) => std::panic::resume_unwind(p),
                Ok(()) => panic!("{what}: the thread ended without a result"),
            }
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: took longer than {limit:?} (a hang?)")
        }
    }
}
