//! The relay's settings in one struct, so that the binary (flags and environment), the
//! tests (a temporary database, small limits, short timeouts) and any embedding program
//! configure the same thing the same way.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hearth_proto::Limits;

/// Who may create a space on this relay (DESIGN §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Creation {
    /// Anyone with a valid Genesis record may create a space, bounded by the quotas.
    #[default]
    Open,
    /// Only holders of a one-time creation token minted by the operator. Token minting is
    /// not built yet, so a relay in this mode refuses every `CreateSpace`.
    Token,
}

/// Everything a relay needs to run.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Where to listen (the binary binds it; [`crate::serve`] takes a bound listener).
    pub listen: SocketAddr,
    /// The SQLite database file.
    pub db: PathBuf,
    /// The limits the relay announces in `Challenge` and enforces.
    pub limits: Limits,
    /// Who may create spaces.
    pub creation: Creation,
    /// How long a client has from connecting to sending its whole HTTP request (the
    /// websocket upgrade); see [`crate::listener`].
    pub request_timeout: Duration,
    /// How long a client has from the websocket upgrade to a successful `Auth`.
    pub handshake_timeout: Duration,
    /// How long an authenticated connection may stay silent (no frame, no pong) before the
    /// relay closes it. The relay pings at half this interval.
    pub idle_timeout: Duration,
    /// The most the database file may grow to, in bytes (`None`: as far as the disk allows).
    /// At the cap, pushes are refused as they are on a full disk, and nothing is lost.
    pub max_db_bytes: Option<u64>,
    /// The relay id announced in `Challenge`; `None` draws a random one per process.
    /// Signatures are also bound to a per-connection nonce, so a fresh id per process
    /// costs clients nothing.
    pub relay_id: Option<[u8; 16]>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            db: PathBuf::from("hearth-relay.db"),
            limits: Limits::default(),
            creation: Creation::Open,
            request_timeout: crate::listener::REQUEST_DEADLINE,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_db_bytes: None,
            relay_id: None,
        }
    }
}
