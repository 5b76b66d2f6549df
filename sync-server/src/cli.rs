//! The `hearth-relay` command line: puts the settings together (defaults, `--config` file,
//! `HEARTH_RELAY_*` environment, flags: see [`RelayConfig::load`]), binds the listener,
//! prints `listening on ADDR` once it accepts connections, and serves until SIGINT or
//! SIGTERM; SIGHUP reads its TLS certificate and key again. The binary is a thin wrapper around [`main`], so that other packages (the
//! end-to-end tests) can build the very same program under their own name.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::CONFIG_ENV;
use crate::{LogFormat, Relay, RelayConfig};
use anyhow::Context as _;
use clap::Parser;
use serde::Serialize;

/// hearth's self-hosted relay: stores and forwards encrypted envelopes it cannot read.
///
/// Settings come from the defaults, then the TOML file given with --config, then
/// HEARTH_RELAY_* environment variables, then these flags, each overriding the one before
/// (docs/self-hosting.md lists them all).
#[derive(Debug, Parser, Serialize)]
#[command(version, about)]
struct Args {
    /// TOML file with the relay's settings; it must exist if given.
    #[arg(long, env = CONFIG_ENV, value_name = "PATH")]
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
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    db: Option<PathBuf>,
    /// The most the database may grow to, in MiB; past it, pushes are refused as on a full
    /// disk (clients keep their data and retry). Default: as far as the disk allows
    /// [env: HEARTH_RELAY_MAX_DB_MIB].
    #[arg(long, value_name = "MIB")]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_db_mib: Option<u64>,
    /// How log lines are written to stderr: `text` (plain unless stderr is a terminal and
    /// NO_COLOR is unset) or `json`, one object per line [env: HEARTH_RELAY_LOG_FORMAT]
    /// [default: text].
    #[arg(long, value_name = "FORMAT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<LogFormat>,
    /// Serve wss:// with this PEM certificate chain (the relay's own certificate first;
    /// give --tls-key too). Without both, the relay serves plain ws:// for a proxy to put
    /// TLS in front of. Read again on SIGHUP [env: HEARTH_RELAY_TLS_CERT].
    #[arg(long, value_name = "PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert; keep it readable by the relay only
    /// [env: HEARTH_RELAY_TLS_KEY].
    #[arg(long, value_name = "PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_key: Option<PathBuf>,
}

/// Runs the relay as the `hearth-relay` binary does: settings from the file, environment
/// and `std::env::args`, logs to stderr, `listening on ADDR` on stdout once ready; returns
/// the exit code.
pub fn main() -> ExitCode {
    let args = Args::parse();
    // The settings come first: they choose the log format. An error in them is printed
    // as plain text, like every error before logging starts.
    let result = RelayConfig::load(args.config.as_deref(), RelayConfig::env(), &args)
        .map_err(anyhow::Error::from)
        .and_then(|config| {
            init_logs(config.log_format);
            run(&args, config)
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr at `RUST_LOG`'s level (`info` by default), as `format` says. Colour only
/// for a person at a terminal: journald, files and pipes get plain text, and so does anyone
/// who sets `NO_COLOR` (<https://no-color.org>: any value but the empty string).
fn init_logs(format: LogFormat) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        _ => {
            let colour = std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            builder.with_ansi(colour).init();
        }
    }
}

fn run(args: &Args, config: RelayConfig) -> anyhow::Result<()> {
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
        let tls = relay.tls();
        match &tls {
            Some(tls) => tracing::info!(
                %addr,
                db = %config.db.display(),
                cert = %tls.cert_path().display(),
                "relay started, serving TLS (wss://)"
            ),
            None => tracing::info!(
                %addr,
                db = %config.db.display(),
                "relay started, without TLS (plain ws://: put a TLS proxy in front, or give --tls-cert and --tls-key)"
            ),
        }
        let shutdown = shutdown_signal()?;
        reload_on_hangup(tls)?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {addr}").context("cannot write to stdout")?;
        stdout.flush().context("cannot write to stdout")?;
        drop(stdout);
        relay.serve(listener, shutdown).await?;
        tracing::info!("relay stopped");
        Ok(())
    })
}

/// Registers for SIGHUP now (before `listening on`, like the shutdown signals) and reads
/// the TLS certificate and key again on each one: a renewal takes effect without a
/// restart, and a new pair that does not load is logged and the one in use kept.
fn reload_on_hangup(tls: Option<std::sync::Arc<crate::tls::RelayTls>>) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = signal(SignalKind::hangup()).context("cannot watch for SIGHUP")?;
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                let Some(tls) = &tls else {
                    tracing::info!(
                        "SIGHUP: no TLS certificate to reload (the relay serves plain ws://)"
                    );
                    continue;
                };
                match tls.reload() {
                    Ok(()) => tracing::info!(
                        cert = %tls.cert_path().display(),
                        "reloaded the TLS certificate; new connections use it"
                    ),
                    Err(e) => tracing::error!(
                        error = %format!("{:#}", anyhow::Error::new(e)),
                        "kept the TLS certificate in use: the new one does not load"
                    ),
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = tls;
    Ok(())
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
