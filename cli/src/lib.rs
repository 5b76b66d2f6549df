//! The `hearth` command-line tool. This crate does rendering and prompts only: every piece
//! of state lives in `hearth_client` (the profile) and `hearth_doc` (the document).
//!
//! `main` parses the command line, runs one command and turns any error into an exit code
//! and a message that says what to do (see [`exit`]).
#![forbid(unsafe_code)]

mod args;
mod chart;
mod commands;
mod editor;
pub mod exit;
mod font;
mod log_filter;
mod picture;
mod progress;
mod reminder;
mod render;
mod schedule;
mod session;

use std::process::ExitCode;

use clap::Parser;

pub use args::Cli;

// Loading a long history is allocation-heavy (Automerge rebuilds every change): measured
// on a ten-year profile, mimalloc takes ~12% off the whole-process time of `hearth log`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs `hearth` with the process's arguments and environment.
pub fn main() -> ExitCode {
    init_tracing();
    handle_unwritable_stdout();
    // clap exits with 2 on a usage error, which hearth reserves for "sync unavailable".
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(exit::USER)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => exit::report(&err),
    }
}

/// `println!` panics when standard output cannot be written. Two cases are not bugs:
/// `hearth log | head` closes the pipe early (stop quietly, as other tools do, and exit 0
/// so `set -o pipefail` scripts are not failed by a reader that had enough), and output
/// redirected to a full disk or a closed file (say so plainly, exit 1). Everything else
/// keeps the default report.
fn handle_unwritable_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload_as_str().unwrap_or_default();
        if let Some(why) = message.strip_prefix("failed printing to stdout: ") {
            if why.to_ascii_lowercase().contains("broken pipe") {
                std::process::exit(0);
            }
            eprintln!(
                "hearth: cannot write the output ({why}); nothing else was changed. Free some \
                 space or write it somewhere else"
            );
            std::process::exit(i32::from(exit::USER));
        }
        default(info);
    }));
}

/// Logs go to stderr, off unless `RUST_LOG` asks for them. They carry ids and sizes only,
/// coloured only at a terminal and never with `NO_COLOR` set.
fn init_tracing() {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .try_init();
}
