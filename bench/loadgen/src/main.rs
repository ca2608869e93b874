//! `peedy-loadgen`: the client and the callback receiver of
//! `bench/service.py`, in one small Rust process.
//!
//! It uploads PDFs to a running `peedy serve` (`POST /api/v1/documents`,
//! multipart, with `callback_url` pointing at its own receiver) and waits
//! for every callback. Both sides keep their connections alive and run on a
//! single current-thread runtime, so on a small machine the benchmark spends
//! its CPU in the server rather than in the load generator.
//!
//! Modes:
//! - `latency`: sequential uploads of one file each, every upload waiting
//!   for its callback; p50/p90/p99/max upload → callback;
//! - `throughput`: the file list `--copies` times, `--per-request` files per
//!   request, `--clients` concurrent uploaders; documents per second from the
//!   first upload to the last callback;
//! - `null-server`: not a load mode but a stand-in for `peedy serve`, the
//!   cheapest server keeping its upload/callback contract on the same stack
//!   (see `null_server.rs`), which the two modes above can drive.
//!
//! One JSON object goes to stdout; human-readable text to stderr. With
//! `--server-pid`, the server's CPU time and context switches during the
//! measured part are read from `/proc` and reported per document, next to
//! the load generator's own.

mod null_server;
mod procfs;
mod receiver;
mod upload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use std::collections::HashSet;
use tokio::task::JoinSet;

use crate::null_server::NullArgs;
use crate::procfs::Usage;
use crate::receiver::Arrivals;
use crate::upload::Uploader;

/// Load generator for Peedy's service benchmark: uploads PDFs and receives
/// their callbacks.
#[derive(Parser, Debug)]
#[command(name = "peedy-loadgen", version)]
struct Cli {
    #[command(flatten)]
    load: LoadArgs,
    #[command(subcommand)]
    command: Command,
}

/// The options of the load modes (`latency`, `throughput`).
#[derive(clap::Args, Debug)]
struct LoadArgs {
    /// The running server, e.g. http://127.0.0.1:4000 (required by
    /// `latency` and `throughput`).
    #[arg(long)]
    base: Option<String>,
    /// Concurrent upload clients (throughput mode).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    clients: u16,
    /// Files per upload request (throughput mode).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    per_request: u16,
    /// The watermark text sent with every upload.
    #[arg(long, default_value = "Ricky Bobby")]
    watermark: String,
    /// The server's process id: report its CPU time and context switches
    /// (all threads, from /proc) during the measured part.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Seconds to wait for an upload's answer, and for the callbacks (each
    /// one in latency mode; all of them, after the last upload answered, in
    /// throughput mode). A document whose stamping fails gets no callback,
    /// so its run ends here, with an error.
    #[arg(long, default_value_t = 900)]
    timeout_secs: u64,
}

#[derive(Subcommand, Debug)]
enum Command {
    #[command(flatten)]
    Load(Mode),
    /// Serve Peedy's upload/callback contract as cheaply as possible: each
    /// PDF part is held in memory and sent back to its `callback_url`
    /// unstamped (no disk, no database). The other options do not apply.
    NullServer(NullArgs),
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Sequential uploads, one file per request, each waiting for its
    /// callback (the files are used in turn).
    Latency {
        /// Measured uploads.
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..))]
        n: u32,
        /// Uploads before the measured ones, not reported.
        #[arg(long, default_value_t = 10)]
        warmup: u32,
        /// PDFs to upload.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// The file list `--copies` times, `--clients` concurrent uploaders,
    /// `--per-request` files per request; first upload to last callback.
    Throughput {
        /// How many times to upload the file list.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        copies: u32,
        /// PDFs to upload (a file may be listed more than once).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mode = match cli.command {
        Command::NullServer(args) => return null_server::main(&args),
        Command::Load(mode) => mode,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("peedy-loadgen: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.load, mode)) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("peedy-loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: LoadArgs, mode: Mode) -> Result<Value> {
    let base = cli
        .base
        .as_deref()
        .context("--base (the server's URL) is required by latency and throughput")?;
    let opts = Opts {
        clients: usize::from(cli.clients),
        per_request: usize::from(cli.per_request),
        server_pid: cli.server_pid,
        timeout: Duration::from_secs(cli.timeout_secs),
    };
    if let Some(pid) = opts.server_pid {
        Usage::of(&pid.to_string()).with_context(|| format!("reading /proc/{pid}"))?;
    }
    let (hook, mut arrivals) = receiver::start().await?;
    let files = match &mode {
        Mode::Latency { files, .. } | Mode::Throughput { files, .. } => files,
    };
    let (uploader, order) = Uploader::new(
        base,
        &cli.watermark,
        &hook,
        files,
        opts.clients,
        opts.timeout,
    )?;
    let uploader = Arc::new(uploader);
    match mode {
        Mode::Latency { n, warmup, .. } => {
            latency(&opts, &uploader, &mut arrivals, &order, n, warmup).await
        }
        Mode::Throughput { copies, .. } => {
            throughput(&opts, &uploader, &mut arrivals, &order, copies).await
        }
    }
}

/// The options the modes use, apart from the files.
struct Opts {
    clients: usize,
    per_request: usize,
    server_pid: Option<u32>,
    timeout: Duration,
}

/// CPU and context switches of the server (if given) and of this process.
struct Snapshot {
    server: Option<Usage>,
    own: Usage,
}

impl Snapshot {
    fn take(server_pid: Option<u32>) -> Result<Snapshot> {
        let server = match server_pid {
            Some(pid) => {
                Some(Usage::of(&pid.to_string()).with_context(|| format!("reading /proc/{pid}"))?)
            }
            None => None,
        };
        let own = Usage::of("self").context("reading /proc/self")?;
        Ok(Snapshot { server, own })
    }

    /// JSON for the usage since `before`, per document too; and a line of
    /// text.
    fn report_since(
        &self,
        before: &Snapshot,
        documents: usize,
        pid: Option<u32>,
    ) -> (Value, String) {
        let per = |x: f64| {
            if documents == 0 {
                0.0
            } else {
                x / documents as f64
            }
        };
        let own = self.own.since(&before.own);
        let mut text = String::new();
        let server = match (&self.server, &before.server, pid) {
            (Some(after), Some(earlier), Some(pid)) => {
                let u = after.since(earlier);
                text = format!(
                    "server CPU {:.2} s ({:.2} ms/doc), {} context switches ({:.1}/doc); ",
                    u.cpu_s,
                    1000.0 * per(u.cpu_s),
                    u.ctx_switches,
                    per(u.ctx_switches as f64)
                );
                json!({
                    "pid": pid,
                    "cpu_s": u.cpu_s,
                    "cpu_ms_per_doc": 1000.0 * per(u.cpu_s),
                    "ctx_switches": u.ctx_switches,
                    "ctx_switches_per_doc": per(u.ctx_switches as f64),
                })
            }
            _ => Value::Null,
        };
        text.push_str(&format!(
            "loadgen CPU {:.2} s ({:.2} ms/doc), {} context switches",
            own.cpu_s,
            1000.0 * per(own.cpu_s),
            own.ctx_switches
        ));
        let loadgen = json!({
            "cpu_s": own.cpu_s,
            "cpu_ms_per_doc": 1000.0 * per(own.cpu_s),
            "ctx_switches": own.ctx_switches,
            "ctx_switches_per_doc": per(own.ctx_switches as f64),
        });
        (json!({ "server": server, "loadgen": loadgen }), text)
    }
}

async fn latency(
    opts: &Opts,
    uploader: &Uploader,
    arrivals: &mut Arrivals,
    order: &[usize],
    n: u32,
    warmup: u32,
) -> Result<Value> {
    let mut lat = Vec::with_capacity(n as usize);
    let mut answered = Vec::with_capacity(n as usize);
    let mut before = None;
    for i in 0..warmup + n {
        if i == warmup {
            before = Some(Snapshot::take(opts.server_pid)?);
        }
        let file = order[i as usize % order.len()];
        let t0 = Instant::now();
        let up = uploader.upload(&[file]).await?;
        let t_answer = t0.elapsed();
        let [id] = up.ids.as_slice() else {
            bail!(
                "upload {} answered {} documents (skipped: {}); expected 1",
                i + 1,
                up.ids.len(),
                up.skipped
            );
        };
        let Some(at) = arrivals.wait_for(id, Instant::now() + opts.timeout).await else {
            bail!(
                "timed out after {} s waiting for the callback of upload {} (document {id}); \
                 {} of {} callbacks arrived",
                opts.timeout.as_secs(),
                i + 1,
                i,
                i + 1
            );
        };
        if i >= warmup {
            lat.push(ms(at.saturating_duration_since(t0)));
            answered.push(ms(t_answer));
        }
    }
    let after = Snapshot::take(opts.server_pid)?;
    let (usage, usage_text) = match &before {
        Some(before) => after.report_since(before, lat.len(), opts.server_pid),
        None => (Value::Null, String::new()),
    };
    let mean = lat.iter().sum::<f64>() / lat.len() as f64;
    let max = lat.iter().copied().fold(0.0, f64::max);
    lat.sort_by(f64::total_cmp);
    answered.sort_by(f64::total_cmp);
    let (p50, p90, p99) = (pct(&lat, 50.0), pct(&lat, 90.0), pct(&lat, 99.0));
    eprintln!(
        "latency: {n} sequential uploads (after {warmup} warm-up), upload → callback \
         p50 {p50:.1} ms, p90 {p90:.1} ms, p99 {p99:.1} ms, max {max:.1} ms \
         (upload answered p50 {:.1} ms); {usage_text}",
        pct(&answered, 50.0)
    );
    let mut report = json!({
        "mode": "latency",
        "uploads": n,
        "warmup": warmup,
        "p50_ms": p50,
        "p90_ms": p90,
        "p99_ms": p99,
        "max_ms": max,
        "mean_ms": mean,
        "upload_answer_p50_ms": pct(&answered, 50.0),
    });
    merge(&mut report, usage);
    Ok(report)
}

async fn throughput(
    opts: &Opts,
    uploader: &Arc<Uploader>,
    arrivals: &mut Arrivals,
    order: &[usize],
    copies: u32,
) -> Result<Value> {
    let total = order.len() * copies as usize;
    let batches: Arc<Vec<Vec<usize>>> = Arc::new(
        (0..total)
            .step_by(opts.per_request)
            .map(|start| {
                (start..total.min(start + opts.per_request))
                    .map(|g| order[g % order.len()])
                    .collect()
            })
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let before = Snapshot::take(opts.server_pid)?;
    let t0 = Instant::now();
    let mut clients = JoinSet::new();
    for _ in 0..opts.clients.min(batches.len()) {
        let (uploader, batches, next) = (
            Arc::clone(uploader),
            Arc::clone(&batches),
            Arc::clone(&next),
        );
        clients.spawn(async move {
            let (mut ids, mut skipped) = (Vec::new(), 0);
            while let Some(batch) = batches.get(next.fetch_add(1, Ordering::Relaxed)) {
                let up = uploader.upload(batch).await?;
                ids.extend(up.ids);
                skipped += up.skipped;
            }
            anyhow::Ok((ids, skipped))
        });
    }

    let mut all_ids = Vec::with_capacity(total);
    let mut waiting = HashSet::new();
    let mut skipped = 0;
    let mut uploads_done = None;
    let mut deadline = None;
    while !clients.is_empty() || !waiting.is_empty() {
        tokio::select! {
            joined = clients.join_next(), if !clients.is_empty() => {
                let Some(joined) = joined else { continue };
                let (ids, sk) = joined.context("an upload client panicked")??;
                skipped += sk;
                for id in ids {
                    if !arrivals.has(&id) {
                        waiting.insert(id.clone());
                    }
                    all_ids.push(id);
                }
                if clients.is_empty() {
                    uploads_done = Some(t0.elapsed());
                    deadline = Some(tokio::time::Instant::now() + opts.timeout);
                }
            }
            arrived = arrivals.next() => {
                let Some(id) = arrived else { bail!("the callback receiver stopped") };
                waiting.remove(&id);
            }
            () = sleep_until(deadline), if deadline.is_some() => {
                bail!(
                    "timed out after {} s waiting for callbacks: {} of {} arrived",
                    opts.timeout.as_secs(),
                    all_ids.len() - waiting.len(),
                    all_ids.len()
                );
            }
        }
    }
    let after = Snapshot::take(opts.server_pid)?;
    ensure!(
        !all_ids.is_empty(),
        "the server accepted no documents ({skipped} parts skipped)"
    );
    let last = all_ids
        .iter()
        .filter_map(|id| arrivals.get(id))
        .max()
        .context("no callback time recorded")?;
    let seconds = last.saturating_duration_since(t0).as_secs_f64();
    let documents = all_ids.len();
    let docs_per_s = documents as f64 / seconds;
    let (usage, usage_text) = after.report_since(&before, documents, opts.server_pid);
    let uploads_s = uploads_done.unwrap_or_default().as_secs_f64();
    eprintln!(
        "throughput: {documents} documents in {} requests ({} per request, {} clients, \
         {skipped} parts skipped): {seconds:.2} s first upload → last callback \
         (uploads answered after {uploads_s:.2} s), {docs_per_s:.1} docs/s; {usage_text}",
        batches.len(),
        opts.per_request,
        opts.clients
    );
    let mut report = json!({
        "mode": "throughput",
        "documents": documents,
        "requests": batches.len(),
        "skipped": skipped,
        "clients": opts.clients,
        "per_request": opts.per_request,
        "seconds": seconds,
        "uploads_seconds": uploads_s,
        "docs_per_s": docs_per_s,
    });
    merge(&mut report, usage);
    Ok(report)
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `p`th percentile of sorted values, nearest rank (as bench/service.py
/// computed it before).
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let last = sorted.len() - 1;
    let k = (p / 100.0 * last as f64).round_ties_even() as usize;
    sorted[k.min(last)]
}

fn merge(report: &mut Value, extra: Value) {
    if let (Value::Object(report), Value::Object(extra)) = (report, extra) {
        report.extend(extra);
    }
}

#[cfg(test)]
mod tests {
    use super::pct;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(pct(&v, 50.0), 51.0);
        assert_eq!(pct(&v, 99.0), 99.0);
        assert_eq!(pct(&v, 100.0), 100.0);
        assert_eq!(pct(&[], 50.0), 0.0);
    }
}
