//! The `hearth-relay` command line: puts the settings together (defaults, `--config` file,
//! `HEARTH_RELAY_*` environment, flags: see [`RelayConfig::load`]), binds the listener,
//! logs the fingerprint of the relay's key, prints `listening on ADDR` once it accepts
//! connections, and serves until SIGINT or SIGTERM; SIGHUP reads its TLS certificate and
//! key again. `hearth-relay fingerprint` prints the fingerprint alone, for the operator to
//! hand to the relay's users, and `hearth-relay token create|list|revoke` manages creation
//! tokens on the database those settings name (while the relay runs, too). The binary is a
//! thin wrapper around [`main`], so that other packages (the end-to-end tests) can build
//! the very same program under their own name.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{Admission, CONFIG_ENV};
use crate::log_throttle::LogThrottle;
use crate::store::SqliteStore;
use crate::{LogFormat, Relay, RelayConfig, tokens};
use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use serde::Serialize;

/// How often the log lines held back are summed up.
const SUMMARY_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

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
    #[arg(long, env = CONFIG_ENV, value_name = "PATH", global = true)]
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
    /// Who may create spaces: anyone (`open`), or only holders of a token from
    /// `hearth-relay token create` (`token`). Default: `token` when listening on an address
    /// other machines can reach, `open` on a loopback one [env: HEARTH_RELAY_ADMISSION].
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    admission: Option<Admission>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Creation tokens, for a relay in token mode: who may create a space here
    #[command(subcommand)]
    Token(TokenCommand),
    /// Print the fingerprint of this relay's key and exit. Give it to the relay's users:
    /// hearth pins the key the first time it connects, and `hearth status` shows it. After
    /// the relay was rebuilt with a new database, they run `hearth relay trust FINGERPRINT`
    /// with the new one. Reads the database given with --db or --config, like the relay.
    Fingerprint,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Mint a token and print it (only once: the relay keeps just its hash)
    Create {
        /// How many spaces it may create
        #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        uses: u32,
        /// How long it works: "7d", "12h", "30m"
        #[arg(long, default_value = "7d", value_name = "DURATION", value_parser = token_lifetime)]
        expires: std::time::Duration,
    },
    /// List the tokens: number, uses left, expiry (never the tokens themselves)
    List,
    /// Revoke a token by its number (from `token list`); spaces it created stay
    Revoke {
        /// The token's number
        id: i64,
    },
}

/// Runs the relay as the `hearth-relay` binary does: settings from the file, environment
/// and `std::env::args`, logs to stderr, `listening on ADDR` on stdout once ready; returns
/// the exit code.
pub fn main() -> ExitCode {
    let args = Args::parse();
    // A flood repeats the same few lines: each is written a few times a minute, the rest
    // summed up (see `log_throttle`).
    let throttle = LogThrottle::default();
    // The settings come first: they choose the log format. An error in them is printed
    // as plain text, like every error before logging starts.
    let result = RelayConfig::load(args.config.as_deref(), RelayConfig::env(), &args)
        .map_err(anyhow::Error::from)
        .and_then(|config| {
            init_logs(config.log_format, &throttle);
            run(&args, config, &throttle)
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr at `RUST_LOG`'s level (`info` by default), as `format` says, each line
/// through `throttle`. Colour only for a person at a terminal: journald, files and pipes
/// get plain text, and so does anyone who sets `NO_COLOR` (<https://no-color.org>: any
/// value but the empty string).
fn init_logs(format: LogFormat, throttle: &LogThrottle) {
    use std::io::IsTerminal as _;
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::filter::FilterExt as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let levels = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let filter = levels.and(throttle.clone());
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match format {
        LogFormat::Json => tracing_subscriber::registry()
            .with(layer.json().with_filter(filter))
            .init(),
        _ => {
            let colour = std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            tracing_subscriber::registry()
                .with(layer.with_ansi(colour).with_filter(filter))
                .init();
        }
    }
}

fn run(args: &Args, config: RelayConfig, throttle: &LogThrottle) -> anyhow::Result<()> {
    match &args.command {
        Some(Command::Token(command)) => return token(&config, command),
        Some(Command::Fingerprint) => return print_fingerprint(&config),
        None => {}
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
        let tls = relay.tls();
        let admission = config.admission();
        match &tls {
            Some(tls) => tracing::info!(
                %addr,
                db = %config.db.display(),
                admission = admission.as_str(),
                %fingerprint,
                cert = %tls.cert_path().display(),
                "relay started, serving TLS (wss://)"
            ),
            None => tracing::info!(
                %addr,
                db = %config.db.display(),
                admission = admission.as_str(),
                %fingerprint,
                "relay started, without TLS (plain ws://: put a TLS proxy in front, or give --tls-cert and --tls-key)"
            ),
        }
        if admission == Admission::Open {
            tracing::info!(
                "anyone who can reach this relay may create spaces (admission open, the default on a loopback address); behind a reverse proxy, or to admit only people you give a token, set admission = \"token\""
            );
        }
        let shutdown = shutdown_signal()?;
        reload_on_hangup(tls)?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {addr}").context("cannot write to stdout")?;
        stdout.flush().context("cannot write to stdout")?;
        drop(stdout);
        let summaries = tokio::spawn({
            let throttle = throttle.clone();
            async move {
                let mut every = tokio::time::interval(SUMMARY_EVERY);
                loop {
                    every.tick().await;
                    throttle.summarize(std::time::Instant::now(), false);
                }
            }
        });
        let served = relay.serve(listener, shutdown).await;
        summaries.abort();
        throttle.summarize(std::time::Instant::now(), true);
        served?;
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

/// `hearth-relay token …` on the database `config` names, which must exist already (a
/// mistyped path would otherwise create an empty relay database).
fn token(config: &RelayConfig, command: &TokenCommand) -> anyhow::Result<()> {
    if !config.db.exists() {
        bail!(
            "there is no relay database at {}: give the relay's own --db or --config (or \
             HEARTH_RELAY_DB), or start the relay once to create it",
            config.db.display()
        );
    }
    let mut store = SqliteStore::open(&config.db, config.store_limits()).with_context(|| {
        format!(
            "cannot open the relay database {}: check the path and its permissions",
            config.db.display()
        )
    })?;
    let now = tokens::now_ms();
    let mut stdout = std::io::stdout().lock();
    match command {
        TokenCommand::Create { uses, expires } => {
            let token = tokens::mint().context("no randomness to mint a token from")?;
            let lifetime = u64::try_from(expires.as_millis()).unwrap_or(u64::MAX);
            let expires_at = now.saturating_add(lifetime);
            let id = store
                .add_token(&tokens::hash(&token), *uses, expires_at, now)
                .context("cannot store the token")?;
            writeln!(stdout, "{}", token.as_str()).context("cannot write to stdout")?;
            eprintln!("{}", tokens::minted_note(id, *uses, expires_at));
            // Only a mode chosen in these settings says how the relay runs: without one it
            // depends on the address the relay listens on, which its own flags may give.
            if config.admission == Some(Admission::Open) {
                eprintln!(
                    "note: the settings given here (--config, --db, HEARTH_RELAY_*) put the \
                     relay in open mode, where anyone may create spaces and no token is \
                     needed; if the relay runs with these, set admission = \"token\" to \
                     require tokens"
                );
            }
        }
        TokenCommand::List => {
            let list = store.tokens().context("cannot read the tokens")?;
            if list.is_empty() {
                eprintln!("No creation tokens. Mint one with `hearth-relay token create`.");
            } else {
                write!(stdout, "{}", tokens::table(&list, now))
                    .context("cannot write to stdout")?;
            }
        }
        TokenCommand::Revoke { id } => {
            if !store.revoke_token(*id).context("cannot revoke the token")? {
                bail!("there is no token {id}: `hearth-relay token list` shows their numbers");
            }
            eprintln!("Token {id} revoked: it can create no more spaces (those it created stay).");
        }
    }
    stdout.flush().context("cannot write to stdout")?;
    Ok(())
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

/// The longest a creation token may stay good for.
const MAX_TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(3650 * 86_400);

/// `--expires`: a duration as humantime writes it ("7d", "12h"), at most ten years (a
/// token that never expires is a standing invitation to whoever copies it).
fn token_lifetime(text: &str) -> Result<std::time::Duration, String> {
    let lifetime = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if lifetime > MAX_TOKEN_LIFETIME {
        return Err("a token may be good for ten years at most (\"3650d\")".into());
    }
    if lifetime.is_zero() {
        return Err("give a lifetime longer than zero, like \"7d\"".into());
    }
    Ok(lifetime)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_lives_between_a_moment_and_ten_years() {
        assert_eq!(
            token_lifetime("7d"),
            Ok(std::time::Duration::from_secs(7 * 86_400))
        );
        assert_eq!(token_lifetime("3650d"), Ok(MAX_TOKEN_LIFETIME));
        assert!(token_lifetime("3651d").unwrap_err().contains("ten years"));
        assert!(token_lifetime("9000y").unwrap_err().contains("ten years"));
        assert!(token_lifetime("0s").is_err());
        assert!(token_lifetime("soon").is_err());
    }
}
