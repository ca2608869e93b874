//! `peedy`, the one binary: parses the command line, runs the subcommand and
//! turns its outcome into an exit status.
//!
//! Exit status: 0 when everything asked for was done, 1 when some of it
//! failed (each failure is named on stderr), 2 for a usage error — clap's own
//! and [`UsageError`]s found by the commands before they start work.

mod cli;
mod cluster_cmd;
mod manual_cmd;
mod serve_cmd;
mod stamp_cmd;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command};

/// A mistake in how the command was called, found before any work started:
/// exit status 2, like clap's own errors.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;

/// jemalloc instead of glibc's malloc. Measured on the service benchmark
/// (BENCHMARKS.md, session 3): glibc with many arenas crept upwards under
/// sustained load, and capped at two arenas (what `serve` used to set) its
/// arena locks cost ~7 % of the server's CPU on large PDFs; with jemalloc
/// the server spends about 20 % less CPU per large document and 10 % less
/// per small one, keeps less memory between bursts, and `peedy stamp` got
/// faster too (16 large manuals: 0.16 -> 0.13 s). mimalloc was tried in
/// session 1 and kept far more memory. `serve` tunes it for a long-running
/// process (see `serve_cmd::tune_allocator`).
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (name, result) = match cli.command {
        Command::Stamp(args) => ("stamp", stamp_cmd::run(args)),
        Command::Serve(args) => ("serve", serve_cmd::run(args)),
        Command::Cluster(args) => ("cluster", cluster_cmd::run(args)),
        Command::Completions(args) => (
            "completions",
            manual_cmd::completions(&args).map(|()| stamp_cmd::Summary::default()),
        ),
        Command::Man(args) => (
            "man",
            manual_cmd::man(&args).map(|()| stamp_cmd::Summary::default()),
        ),
    };
    match result {
        Ok(summary) if summary.failed == 0 => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(EXIT_FAILED),
        Err(err) => match err.downcast_ref::<UsageError>() {
            Some(usage) => {
                // Formatted like clap's own usage errors (which also exit 2).
                let mut cli = Cli::command();
                cli.build();
                let err = match cli.find_subcommand_mut(name) {
                    Some(sub) => sub.error(ErrorKind::ValueValidation, usage),
                    None => cli.error(ErrorKind::ValueValidation, usage),
                };
                let _ = err.print();
                ExitCode::from(EXIT_USAGE)
            }
            None => {
                eprintln!("peedy: {err:#}");
                ExitCode::from(EXIT_FAILED)
            }
        },
    }
}
