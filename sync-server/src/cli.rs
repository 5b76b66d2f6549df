//! The `hearth-relay` command line: puts the settings together (defaults, `--config` file,
//! `HEARTH_RELAY_*` environment, flags: see [`RelayConfig::load`]), binds the listener,
//! logs the fingerprint of the relay's key, prints `listening on ADDR` once it accepts
//! connections, and serves until SIGINT or SIGTERM. `hearth-relay fingerprint` prints the
//! fingerprint alone, for the operator to hand to the relay's users. The binary is a thin
//! wrapper around [`main`], so that other packages (the end-to-end tests) can build the
//! very same program under their own name.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::CONFIG_ENV;
use crate::{Relay, RelayConfig};
use anyhow::Context as _;
use clap::{Parser, Subcommand};
use serde::Serialize;

/// hearth's self-hosted relay: stores and forwards encrypted envelopes it cannot read.
///
/// Settings come from the defaults, then the TOML file given with --config, then
/// HEARTH_RELAY_* environment variables, then these flags, each overriding the one before
/// (docs/self-hosting.md lists them all).
#[derive(Debug, Parser, Serialize)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    #[serde(skip)]
    command: Option<Command>,
    /// TOML file with the relay's settings; it must exist if given.
    #[arg(long, global = true, env = CONFIG_ENV, value_name = "PATH")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Print the settings the relay would run with, as a config file, and exit.
    #[arg(long)]
    #[serde(skip)]
    print_config: bool,
    /// Address to listen on (port 0 picks a free port) [env: HEARTH_RELAY_LISTEN]
    /// [default: 127.0.0.1:7878].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    /// SQLite database file, created if missing [env: HEARTH_RELAY_DB]
    /// [default: hearth-relay.db].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    db: Option<PathBuf>,
    /// The most the database may grow to, in MiB; past it, pushes are refused as on a full
    /// disk (clients keep their data and retry). Default: as far as the disk allows
    /// [env: HEARTH_RELAY_MAX_DB_MIB].
    #[arg(long, value_name = "MIB")]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_db_mib: Option<u64>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the fingerprint of this relay's key and exit. Give it to the relay's users:
    /// hearth pins the key the first time it connects, and `hearth status` shows it. After
    /// the relay was rebuilt with a new database, they run `hearth relay trust FINGERPRINT`
    /// with the new one. Reads the database given with --db or --config, like the relay.
    Fingerprint,
}

/// Runs the relay as the `hearth-relay` binary does: settings from the file, environment
/// and `std::env::args`, logs to stderr, `listening on ADDR` on stdout once ready; returns
/// the exit code.
pub fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let config = RelayConfig::load(args.config.as_deref(), RelayConfig::env(), &args)?;
    if let Some(Command::Fingerprint) = args.command {
        return print_fingerprint(&config);
    }
    if args.print_config {
        let text = config
            .to_toml()
            .context("cannot write the settings as TOML")?;
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .context("cannot write to stdout")?;
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let relay = Relay::open(config.clone())?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {}: is another relay running there?",
                    config.listen
                )
            })?;
        let addr = listener
            .local_addr()
            .context("cannot read the bound address")?;
        let fingerprint = relay.state().fingerprint();
        tracing::info!(%addr, db = %config.db.display(), %fingerprint, "relay started");
        let shutdown = shutdown_signal()?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {addr}").context("cannot write to stdout")?;
        stdout.flush().context("cannot write to stdout")?;
        drop(stdout);
        relay.serve(listener, shutdown).await?;
        tracing::info!("relay stopped");
        Ok(())
    })
}

/// `hearth-relay fingerprint`: the fingerprint of the key in the relay's database, alone
/// on stdout. A database that is not there yet is an error, not a new relay: the key is
/// made at the relay's first start, and a typo in --db must not print a stranger's.
fn print_fingerprint(config: &RelayConfig) -> anyhow::Result<()> {
    if !config.db.exists() {
        anyhow::bail!(
            "there is no relay database at {}: give the one the relay runs with (--db PATH or \
             --config PATH), or start the relay once, which makes its key",
            config.db.display()
        );
    }
    let (_, identity) = crate::open_store(config)?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", identity.fingerprint())
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")
}

/// Registers for SIGINT and SIGTERM now and returns a future that completes on either.
/// Registering before `listening on` is printed matters: a signal sent as soon as the line
/// appears must reach the handler, not the default action (which kills the process).
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch for SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            tracing::info!("shutting down");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
        })
    }
}
