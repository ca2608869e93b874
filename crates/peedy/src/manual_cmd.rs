//! `peedy completions SHELL` and `peedy man [COMMAND]`: shell completion
//! scripts and manual pages generated from the clap definition in
//! [`crate::cli`], so they always match the binary.

use std::fs;
use std::io::{self, Write};

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};

/// The command line as clap sees it, built (subcommands get their display
/// names, `peedy-stamp`, for the manual pages).
fn command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// Prints the completion script for `args.shell`.
pub fn completions(args: &CompletionsArgs) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "peedy", &mut script);
    print(&script)
}

/// Writes `bytes` to standard output. A reader that stops early
/// (`peedy man | head`) is not an error.
fn print(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to standard output")
        }
        _ => Ok(()),
    }
}

/// Prints peedy(1) or a subcommand's page, or writes them all to `--dir`.
pub fn man(args: &ManArgs) -> anyhow::Result<()> {
    let cmd = command();
    if let Some(dir) = &args.dir {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the directory {}", dir.display()))?;
        let subs: Vec<clap::Command> = cmd.get_subcommands().cloned().collect();
        for page in std::iter::once(cmd).chain(subs) {
            page_of(page)
                .generate_to(dir)
                .with_context(|| format!("cannot write the manual pages into {}", dir.display()))?;
        }
        return Ok(());
    }
    let page = match &args.command {
        None => cmd,
        // clap only lets the subcommands' names through.
        Some(name) => cmd
            .find_subcommand(name)
            .cloned()
            .with_context(|| format!("no subcommand {name:?}"))?,
    };
    let mut roff = Vec::new();
    page_of(page)
        .render(&mut roff)
        .context("cannot render the manual page")?;
    print(&roff)
}

/// The manual page of `cmd`, every page naming the program and its version
/// as its source (clap_mangen would name a subcommand's: "stamp 0.1.0").
fn page_of(cmd: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd).source(concat!("peedy ", env!("CARGO_PKG_VERSION")))
}
