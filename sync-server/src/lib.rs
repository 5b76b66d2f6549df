//! hearth-relay: the small self-hosted server that stores and forwards the couple's
//! encrypted envelopes. It sees ciphertext, ids and sizes only; it can lose, delay or
//! withhold data, but never read or forge it (docs/security.md, "The relay operator").
//!
//! - [`cli`]: the `hearth-relay` command line ([`cli::main`]).
//! - [`config`]: the relay's settings ([`RelayConfig`]), from defaults, file, environment
//!   and flags.
//! - [`metrics`]: the counters `GET /metrics` serves.
//! - [`identity`]: the relay's own key, kept in its database, which clients pin and the
//!   relay proves on every connection; [`clock`]: the relay's wall clock, which embedding
//!   programs (tests) may shift.
//! - [`app`](mod@app): the HTTP router ([`app()`]) with `GET /v1/sync`, `/healthz` and `/metrics`,
//!   and [`serve`], which runs it on a listener the caller bound and shuts down cleanly.
//! - `session`: every protocol decision about one connection's frames (the handshake,
//!   the ACL checks, rejects, rate limits), pure and unit-tested; `reject` maps each
//!   failure to its reject code; `feed` keeps a subscriber's place in the live stream;
//!   `admission` is the relay-wide gate every session asks (open or token mode, and the
//!   per-address limits on creating spaces and failed logins).
//! - [`tokens`]: creation tokens (minting, hashing, what `hearth-relay token` prints);
//!   `sweep`: removing spaces no second device joined in time, and other housekeeping.
//! - `connection`: one websocket, from `Hello` to close: moves bytes and runs what the
//!   session decides.
//! - `snapshots`: a pushed snapshot is only proposed; the rules for a countersignature
//!   that lets it replace the envelopes it covers (another person's current member).
//! - [`listener`] and [`tls`]: the TCP listener (request deadline, `TCP_NODELAY`) and the
//!   relay's own TLS certificate, reloadable while it runs.
//! - [`store`] and [`worker`]: durable storage behind the [`Storage`] trait (SQLite) and
//!   the store thread async tasks hand their work to, with group commit.
//!
//! ```no_run
//! # async fn run() -> Result<(), hearth_relay::RelayError> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(hearth_relay::RelayError::Serve)?;
//! let config = hearth_relay::RelayConfig::default();
//! hearth_relay::serve(config, listener, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admission;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
mod connection;
mod feed;
mod hub;
pub mod identity;
pub mod listener;
pub mod local;
pub mod log_throttle;
pub mod metrics;
mod reject;
mod session;
mod snapshots;
pub mod store;
mod sweep;
pub mod tls;
pub mod tokens;
pub mod worker;

pub use app::{AppState, Relay, RelayError, app, open_store, serve};
pub use clock::RelayClock;
pub use config::{Admission, ConfigError, LogFormat, PerAddress, RelayConfig};
pub use identity::RelayIdentity;
pub use local::LocalRelay;
pub use store::{
    Accepted, Expiry, Proposal, Push, PushOutcome, SqliteStore, Storage, StoreError, StoreLimits,
    TokenInfo, TokenRefusal, Tombstone,
};
pub use worker::{StoreHandle, StoreStats};
