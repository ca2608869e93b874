//! The command line: every subcommand, flag and `PEEDY_*` environment
//! variable of the `peedy` binary, as clap definitions.
//!
//! Each field's `///` line is its `--help` text. Watermark values are parsed
//! with the engine's own `FromStr` impls, so a bad value is a usage error
//! (exit 2) carrying the engine's message. Settings that configure a run
//! (limits, password, font) can also come from the environment; the
//! watermark's look is per invocation and comes from flags only.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand};
use peedy_stamp::{Color, Layer, Limits, PageSelection, Position, Rotation, Size};

/// Peedy watermarks PDFs: "licensed to Ricky Bobby" on every page.
#[derive(Debug, Parser)]
#[command(name = "peedy", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

const STAMP_EXAMPLES: &str = r#"Examples:
  peedy stamp book.pdf --text "Licensed to Ricky Bobby" -o book-rb.pdf
  peedy stamp *.pdf --text 'DRAFT\nnot for distribution' --color red -o stamped/
  cat in.pdf | peedy stamp - --text CONFIDENTIAL > out.pdf"#;

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Stamp a watermark on every page of one or more PDFs.
    ///
    /// Output: with one input, `-o` names the output file, `-` (standard
    /// output), or a directory (the output keeps the input's file name).
    /// With several inputs, `-o` is a directory; it is created when missing,
    /// unless its name ends in `.pdf`. Without `-o`, each output is written
    /// next to its input as NAME.stamped.pdf, and standard input goes to
    /// standard output.
    ///
    /// Existing files are never overwritten without --force, and an input is
    /// never overwritten even with it. Outputs appear atomically (written to a
    /// hidden temporary file in the same directory, then renamed).
    ///
    /// Exit status: 0 when every file was stamped, 1 when some failed (each
    /// is named on stderr with the reason), 2 for a usage error.
    #[command(after_help = STAMP_EXAMPLES)]
    Stamp(StampArgs),

    /// Run the watermarking service: the HTTP API, the durable job queue and
    /// its workers, and callback delivery, in one process.
    ///
    /// With no flags it needs no setup: a SQLite database and a blob
    /// directory under ./peedy-data/, listening on 127.0.0.1:4000. Every
    /// flag can also be set with the PEEDY_* environment variable shown.
    /// SIGTERM or Ctrl-C stops taking work, lets jobs in flight finish for
    /// --shutdown-grace-secs, hands the rest back to the queue and exits.
    ///
    /// As separate services: several processes with --database-url
    /// postgres://… and --roles web or --roles worker share one PostgreSQL.
    Serve(ServeArgs),

    /// Show the nodes sharing this database, what each is running, and the
    /// depth of each queue (the same JSON as GET /api/v1/cluster with --json).
    Cluster(ClusterArgs),

    /// Print a shell completion script for peedy on standard output.
    ///
    /// For example, for bash: `peedy completions bash > ~/.local/share/bash-completion/completions/peedy`;
    /// for zsh, write it as `_peedy` into a directory on your $fpath; for
    /// fish: `peedy completions fish > ~/.config/fish/completions/peedy.fish`.
    Completions(CompletionsArgs),

    /// Print the manual page (roff) on standard output, or write one page per
    /// command into a directory.
    ///
    /// Read it with `peedy man | man -l -` or `peedy man stamp | man -l -`;
    /// install every page with `peedy man --dir /usr/local/share/man/man1`.
    Man(ManArgs),
}

/// Where the metadata lives: shared by `serve` and `cluster`, so both read
/// the same database from the same flags and environment.
#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// Directory for the SQLite database and the blobs.
    #[arg(
        long,
        value_name = "DIR",
        env = "PEEDY_DATA_DIR",
        default_value = "peedy-data"
    )]
    pub data_dir: PathBuf,

    /// Database URL: sqlite://PATH or postgres://…; default: the SQLite file
    /// peedy.db in the data directory.
    #[arg(
        long,
        value_name = "URL",
        env = "PEEDY_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
}

/// `peedy cluster`: which database to read.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `peedy completions`: which shell.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// `peedy man`: which page, or where all pages go.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The page of this subcommand (peedy-stamp(1), …) instead of peedy(1).
    #[arg(value_name = "COMMAND", value_parser = ["stamp", "serve", "cluster", "completions", "man"], conflicts_with = "dir")]
    pub command: Option<String>,

    /// Write peedy.1 and a page per subcommand (peedy-stamp.1, …) into this
    /// directory (created when missing) instead of printing peedy.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `peedy serve`: where to listen and store, how many workers, limits,
/// retries, callbacks and retention.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (Phoenix's port, as the original).
    #[arg(
        long,
        value_name = "ADDR",
        env = "PEEDY_LISTEN",
        default_value = "127.0.0.1:4000"
    )]
    pub listen: std::net::SocketAddr,

    #[command(flatten)]
    pub db: DatabaseArgs,

    /// Where blobs (uploads, stamped output) are kept: `dir`, the blobs
    /// directory in the data directory, or `database`, PostgreSQL (chunked).
    /// Default: database with a PostgreSQL URL, dir otherwise. `dir` with
    /// PostgreSQL suits one machine or a shared filesystem; `database` needs
    /// PostgreSQL.
    #[arg(long, value_name = "WHERE", env = "PEEDY_BLOB_STORE", value_enum)]
    pub blob_store: Option<BlobStoreArg>,

    /// What this process does: web (the HTTP API), worker (the stamping
    /// and callback jobs), or both. Separate web and worker processes need a
    /// shared database (--database-url postgres://…); a worker still answers
    /// /healthcheck and /readyz on --listen.
    #[arg(
        long,
        value_name = "ROLES",
        env = "PEEDY_ROLES",
        value_delimiter = ',',
        default_value = "web,worker",
        value_parser = ["web", "worker"]
    )]
    pub roles: Vec<String>,

    /// Seconds between this node's heartbeats in the cluster view; a node
    /// that misses three drops off it.
    #[arg(
        long,
        value_name = "SECS",
        env = "PEEDY_HEARTBEAT_SECS",
        default_value_t = 5.0
    )]
    pub heartbeat_secs: f64,

    /// Stamping jobs run at once (default: the number of CPU cores).
    #[arg(long, value_name = "N", env = "PEEDY_STAMP_CONCURRENCY")]
    pub stamp_concurrency: Option<usize>,

    /// Callback deliveries run at once (the original's max_concurrency).
    #[arg(
        long,
        value_name = "N",
        env = "PEEDY_CALLBACK_CONCURRENCY",
        default_value_t = 5
    )]
    pub callback_concurrency: usize,

    /// Largest PDF accepted per file (K, M, G suffixes); 413 past it.
    #[arg(
        long,
        value_name = "BYTES",
        env = "PEEDY_MAX_UPLOAD_BYTES",
        default_value = "256M"
    )]
    pub max_upload_bytes: ByteSize,

    /// Most files per upload request.
    #[arg(long, value_name = "N", env = "PEEDY_MAX_FILES", default_value_t = 100)]
    pub max_files: usize,

    /// Memory for a document's bytes between upload, stamping and callback
    /// (K, M, G suffixes; 0: read them back from the blob directory each
    /// time). Uploads of up to a quarter of it are gathered in memory,
    /// written only when new, and handed to the stamping job and the
    /// callback from there. Used on nodes that run workers.
    #[arg(
        long,
        value_name = "BYTES",
        env = "PEEDY_BLOB_MEMORY",
        default_value = "64M"
    )]
    pub blob_memory: ByteSize,

    /// Documents waiting to be stamped before uploads get 503 + Retry-After.
    #[arg(
        long,
        value_name = "N",
        env = "PEEDY_MAX_QUEUED",
        default_value_t = 10_000
    )]
    pub max_queued: i64,

    /// Largest PDF for the synchronous POST /api/v1/stamp.
    #[arg(
        long,
        value_name = "BYTES",
        env = "PEEDY_MAX_SYNC_BYTES",
        default_value = "32M"
    )]
    pub max_sync_bytes: ByteSize,

    /// Attempts per stamping job (a crash or panic of its worker counts).
    #[arg(
        long,
        value_name = "N",
        env = "PEEDY_STAMP_ATTEMPTS",
        default_value_t = 3
    )]
    pub stamp_attempts: i32,

    /// Attempts per callback delivery, with exponential backoff and jitter.
    #[arg(
        long,
        value_name = "N",
        env = "PEEDY_CALLBACK_ATTEMPTS",
        default_value_t = 25
    )]
    pub callback_attempts: i32,

    /// First retry delay in seconds; doubles per attempt.
    #[arg(
        long,
        value_name = "SECS",
        env = "PEEDY_RETRY_BASE_SECS",
        default_value_t = 2.0
    )]
    pub retry_base_secs: f64,

    /// Longest retry delay in seconds.
    #[arg(
        long,
        value_name = "SECS",
        env = "PEEDY_RETRY_MAX_SECS",
        default_value_t = 3600.0
    )]
    pub retry_max_secs: f64,

    /// Job lease in seconds, renewed by a heartbeat while a job runs: the
    /// jobs of a worker that died are run again within about this long.
    #[arg(
        long,
        value_name = "SECS",
        env = "PEEDY_LEASE_SECS",
        default_value_t = 30.0
    )]
    pub lease_secs: f64,

    /// Sign callbacks (Standard Webhooks headers) with this secret
    /// (whsec_BASE64, or any string).
    #[arg(
        long,
        value_name = "SECRET",
        env = "PEEDY_CALLBACK_SECRET",
        hide_env_values = true
    )]
    pub callback_secret: Option<String>,

    /// Callback request timeout in seconds.
    #[arg(
        long,
        value_name = "SECS",
        env = "PEEDY_CALLBACK_TIMEOUT_SECS",
        default_value_t = 15.0
    )]
    pub callback_timeout_secs: f64,

    /// Allow callbacks to private, loopback and link-local addresses (a
    /// server listening on loopback may always call loopback).
    #[arg(long, env = "PEEDY_ALLOW_PRIVATE_CALLBACKS")]
    pub allow_private_callbacks: bool,

    /// Failures within --breaker-window-secs that open a host's circuit
    /// breaker (deliveries then wait, without spending attempts).
    #[arg(
        long,
        value_name = "N",
        env = "PEEDY_BREAKER_FAILURES",
        default_value_t = 3
    )]
    pub breaker_failures: u32,

    /// The breaker's failure window in seconds.
    #[arg(
        long,
        value_name = "SECS",
        env = "PEEDY_BREAKER_WINDOW_SECS",
        default_value_t = 10.0
    )]
    pub breaker_window_secs: f64,

    /// How long an open breaker waits before trying the host again.
    #[arg(
        long,
        value_name = "SECS",
        env = "PEEDY_BREAKER_OPEN_SECS",
        default_value_t = 60.0
    )]
    pub breaker_open_secs: f64,

    /// How long documents are kept (e.g. 7d, 12h, 30m, 90s).
    #[arg(long, value_name = "DURATION", env = "PEEDY_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub retention: std::time::Duration,

    /// Seconds that jobs in flight may take to finish after SIGTERM/Ctrl-C.
    #[arg(
        long,
        value_name = "SECS",
        env = "PEEDY_SHUTDOWN_GRACE_SECS",
        default_value_t = 30.0
    )]
    pub shutdown_grace_secs: f64,

    /// Log format: text (for terminals) or json.
    #[arg(long, value_name = "FORMAT", env = "PEEDY_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,

    /// Require `Authorization: Bearer TOKEN` on the /api routes, with one of
    /// these comma-separated tokens (POST /api/v1/dev/null, /healthcheck,
    /// /readyz and the web page stay open).
    #[arg(
        long,
        value_name = "TOKENS",
        env = "PEEDY_API_TOKENS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub api_tokens: Vec<String>,

    /// Like --api-tokens, from a file with one token per line (blank lines
    /// and lines starting with # are ignored); both may be given.
    #[arg(long, value_name = "FILE", env = "PEEDY_API_TOKEN_FILE")]
    pub api_token_file: Option<PathBuf>,

    #[command(flatten)]
    pub limits: LimitArgs,
}

/// `--blob-store`: where blobs are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BlobStoreArg {
    /// The blobs directory in the data directory.
    Dir,
    /// The PostgreSQL database.
    Database,
}

impl From<BlobStoreArg> for peedy_store::BlobBackend {
    fn from(arg: BlobStoreArg) -> Self {
        match arg {
            BlobStoreArg::Dir => peedy_store::BlobBackend::Dir,
            BlobStoreArg::Database => peedy_store::BlobBackend::Database,
        }
    }
}

/// Parses `7d`, `12h`, `30m`, `90s` or plain seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let (num, unit) = t.split_at(t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len()));
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("not a duration: {s:?} (use e.g. 7d, 12h, 30m, 90s)"))?;
    let secs = match unit.trim() {
        "" | "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        "d" => v * 86_400.0,
        _ => {
            return Err(format!(
                "not a duration: {s:?} (use e.g. 7d, 12h, 30m, 90s)"
            ));
        }
    };
    std::time::Duration::try_from_secs_f64(secs).map_err(|_| format!("not a duration: {s:?}"))
}

/// `peedy stamp`: inputs, outputs, the watermark and how to open the files.
#[derive(Debug, Args)]
pub struct StampArgs {
    /// PDF files to stamp; `-` reads one PDF from standard input.
    #[arg(required = true, value_name = "IN")]
    pub inputs: Vec<PathBuf>,

    /// Output file, directory, or `-` for standard output (see above).
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// Inserted before `.pdf` in output names made from input names
    /// [default: `.stamped` next to the input, none in an -o directory].
    #[arg(long, value_name = "SUFFIX", allow_hyphen_values = true)]
    pub suffix: Option<String>,

    /// Overwrite existing output files (the input itself never is).
    #[arg(short, long)]
    pub force: bool,

    /// Print one JSON document on standard output describing every input:
    /// its output, pages, stamped pages, sizes and milliseconds, or its error
    /// code and message (for scripts; the exit status is the same).
    #[arg(long)]
    pub json: bool,

    /// The watermark itself.
    #[command(flatten)]
    pub watermark: WatermarkArgs,

    /// How to open the inputs.
    #[command(flatten)]
    pub open: OpenArgs,

    /// Safety limits.
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// The watermark spec (DESIGN §3), one flag per field.
#[derive(Debug, Args)]
#[command(next_help_heading = "Watermark")]
pub struct WatermarkArgs {
    /// The text to stamp, 1–500 characters; a newline or the two characters
    /// `\n` start a new line (`\\` is a backslash).
    #[arg(short, long, value_name = "TEXT")]
    pub text: String,

    /// Font size: `auto` (fits the page, as the original) or points.
    #[arg(
        long,
        value_name = "auto|PT",
        default_value_t = Size::Auto,
        allow_negative_numbers = true
    )]
    pub size: Size,

    /// Rotation in degrees counter-clockwise, or `diagonal` (along the page's
    /// diagonal).
    #[arg(
        long,
        value_name = "DEG|diagonal",
        default_value_t = Rotation::default(),
        allow_negative_numbers = true
    )]
    pub rotation: Rotation,

    /// Fill opacity from 0 (invisible) to 1 (opaque).
    #[arg(
        long,
        value_name = "0..1",
        default_value_t = peedy_stamp::DEFAULT_OPACITY,
        allow_negative_numbers = true
    )]
    pub opacity: f32,

    /// Colour: #rrggbb, #rgb, or black, white, red, green, blue, gray.
    #[arg(long, value_name = "COLOR", default_value_t = Color::BLACK)]
    pub color: Color,

    /// Where the text's centre goes: center, top, top-left, top-right, left,
    /// right, bottom, bottom-left or bottom-right, optionally moved by
    /// `:dx,dy` points (x right, y up), e.g. `bottom-right:-20,20`.
    #[arg(long, value_name = "ANCHOR[:DX,DY]", default_value_t = Position::default())]
    pub position: Position,

    /// Also print a small unrotated line of the text near the top of each
    /// page.
    #[arg(long)]
    pub header: bool,

    /// Draw the watermark over the page content or under it (under is hidden
    /// by opaque content such as scans).
    #[arg(long, value_name = "over|under", default_value_t = Layer::Over)]
    pub layer: Layer,

    /// Pages to stamp: `all` or a list like `1-3,5,last`, `2-` (to the end),
    /// `last-1` (second to last).
    #[arg(long, value_name = "PAGES", default_value_t = PageSelection::All)]
    pub pages: PageSelection,
}

/// How to open the inputs: passwords and fonts.
#[derive(Debug, Args)]
#[command(next_help_heading = "Opening")]
pub struct OpenArgs {
    /// Password for encrypted PDFs (user or owner password); the output stays
    /// encrypted.
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "PEEDY_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,

    /// TrueType/OpenType font file to draw the text with, instead of
    /// Helvetica and the font shipped with Peedy.
    #[arg(long, value_name = "FILE", env = "PEEDY_FONT")]
    pub font: Option<PathBuf>,
}

/// The engine's safety limits for untrusted input; shared by every command
/// that stamps.
#[derive(Debug, Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitArgs {
    /// Largest input accepted (bytes; K, M, G suffixes are powers of 1024).
    #[arg(
        long,
        value_name = "BYTES",
        env = "PEEDY_MAX_INPUT_BYTES",
        default_value_t = ByteSize(Limits::default().max_input_bytes)
    )]
    pub max_input_bytes: ByteSize,

    /// Most pages a document may have.
    #[arg(
        long,
        value_name = "N",
        env = "PEEDY_MAX_PAGES",
        default_value_t = Limits::default().max_pages
    )]
    pub max_pages: u32,

    /// Most bytes one stream may decompress to (guards against
    /// decompression bombs; K, M, G suffixes).
    #[arg(
        long,
        value_name = "BYTES",
        env = "PEEDY_MAX_DECODED_BYTES",
        default_value_t = ByteSize(Limits::default().max_decoded_bytes)
    )]
    pub max_decoded_bytes: ByteSize,

    /// Deepest nesting of arrays, dictionaries and the page tree.
    #[arg(
        long,
        value_name = "N",
        env = "PEEDY_MAX_DEPTH",
        default_value_t = Limits::default().max_depth
    )]
    pub max_depth: u32,

    /// Time budget per document in seconds (fractions allowed); 0 means none.
    #[arg(
        long,
        value_name = "SECS",
        env = "PEEDY_TIMEOUT_SECS",
        default_value_t = 0.0,
        value_parser = parse_secs,
        allow_negative_numbers = true
    )]
    pub timeout_secs: f64,
}

impl LimitArgs {
    /// The engine's [`Limits`] for these flags.
    pub fn to_limits(&self) -> Limits {
        Limits {
            max_input_bytes: self.max_input_bytes.0,
            max_pages: self.max_pages,
            max_decoded_bytes: self.max_decoded_bytes.0,
            max_depth: self.max_depth,
            // parse_secs only lets finite, non-negative, representable values through.
            time_limit: (self.timeout_secs > 0.0)
                .then(|| std::time::Duration::try_from_secs_f64(self.timeout_secs).ok())
                .flatten(),
        }
    }
}

fn parse_secs(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("not a number of seconds: {s:?}"))?;
    if !v.is_finite() || v < 0.0 || std::time::Duration::try_from_secs_f64(v).is_err() {
        return Err(format!(
            "not a number of seconds: {s:?} (use 0 for no limit)"
        ));
    }
    Ok(v)
}

/// A byte count written as a number with an optional binary suffix
/// (`K`/`KiB`, `M`/`MiB`, `G`/`GiB`, `T`/`TiB`; case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let shift = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "k" | "kb" | "kib" => 10,
            "m" | "mb" | "mib" => 20,
            "g" | "gb" | "gib" => 30,
            "t" | "tb" | "tib" => 40,
            _ => return Err(format!("not a byte size: {s:?} (use e.g. 500M or 4G)")),
        };
        num.parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(1u64 << shift))
            .map(ByteSize)
            .ok_or_else(|| format!("not a byte size: {s:?} (use e.g. 500M or 4G)"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
            if n != 0 && n.is_multiple_of(1u64 << shift) {
                return write!(f, "{}{unit}", n >> shift);
            }
        }
        write!(f, "{n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn byte_sizes_parse_and_print() {
        assert_eq!("4G".parse::<ByteSize>().unwrap(), ByteSize(4 << 30));
        assert_eq!("256 MiB".parse::<ByteSize>().unwrap(), ByteSize(256 << 20));
        assert_eq!("12345".parse::<ByteSize>().unwrap(), ByteSize(12345));
        assert!("".parse::<ByteSize>().is_err());
        assert!("4X".parse::<ByteSize>().is_err());
        assert!("-1".parse::<ByteSize>().is_err());
        assert!("99999999999T".parse::<ByteSize>().is_err());
        assert_eq!(ByteSize(4 << 30).to_string(), "4G");
        assert_eq!(ByteSize(1500).to_string(), "1500");
        assert_eq!(ByteSize(0).to_string(), "0");
    }

    #[test]
    fn timeout_zero_means_none() {
        let cli = Cli::parse_from(["peedy", "stamp", "a.pdf", "--text", "x"]);
        let Command::Stamp(args) = cli.command else {
            panic!("expected the stamp command")
        };
        assert_eq!(args.limits.to_limits(), Limits::default());
        let cli = Cli::parse_from([
            "peedy",
            "stamp",
            "a.pdf",
            "-t",
            "x",
            "--timeout-secs",
            "1.5",
        ]);
        let Command::Stamp(args) = cli.command else {
            panic!("expected the stamp command")
        };
        assert_eq!(
            args.limits.to_limits().time_limit,
            Some(std::time::Duration::from_millis(1500))
        );
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("inf").is_err());
        assert!(parse_secs("1e300").is_err());
    }
}

#[cfg(test)]
mod serve_tests {
    use super::*;

    #[test]
    fn durations_parse() {
        use std::time::Duration;
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1d").is_err());
        assert!(parse_duration("3w").is_err());
    }

    #[test]
    fn serve_defaults_are_the_embedded_setup() {
        let cli = Cli::parse_from(["peedy", "serve"]);
        let Command::Serve(args) = cli.command else {
            panic!("expected the serve command")
        };
        assert_eq!(args.listen.to_string(), "127.0.0.1:4000");
        assert_eq!(args.db.data_dir, PathBuf::from("peedy-data"));
        assert_eq!(args.db.database_url, None);
        assert_eq!(args.blob_store, None);
        assert_eq!(args.callback_concurrency, 5);
        assert_eq!(args.retention, std::time::Duration::from_secs(7 * 86_400));
    }

    #[test]
    fn blob_store_is_dir_or_database() {
        let cli = Cli::parse_from(["peedy", "serve", "--blob-store", "database"]);
        let Command::Serve(args) = cli.command else {
            panic!("expected the serve command")
        };
        assert_eq!(args.blob_store, Some(BlobStoreArg::Database));
        let cli = Cli::parse_from(["peedy", "serve", "--blob-store", "dir"]);
        let Command::Serve(args) = cli.command else {
            panic!("expected the serve command")
        };
        assert_eq!(args.blob_store, Some(BlobStoreArg::Dir));
        assert!(Cli::try_parse_from(["peedy", "serve", "--blob-store", "s3"]).is_err());
    }
}
