//! The HTTP face of the relay: the router (`/v1/sync`, `/healthz`, `/metrics`), the state
//! every handler shares, and [`serve`], which runs the router on a listener the caller
//! bound (so tests can use port 0 and never sleep for readiness) and shuts down cleanly.
//!
//! axum's graceful shutdown stops accepting and waits for HTTP requests, but an upgraded
//! websocket is no longer a request: so every socket task holds a [`TaskTracker`] token
//! and watches a [`CancellationToken`], and [`Relay::serve`] cancels the token and waits
//! for the tracker before it returns and stops the store thread.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::admission::{Gate, client_address};
use crate::listener::{Peer, RelayListener};
use crate::tls::RelayTls;
use hearth_proto::{AclRecord, AclState, Fingerprint, SpaceId};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::RelayConfig;
use crate::hub::Hub;
use crate::identity::RelayIdentity;
use crate::metrics::Metrics;
use crate::store::{SpaceKey, SqliteStore, Storage as _, StoreError};
use crate::worker::StoreHandle;

/// How many store jobs may wait for the store thread before senders wait.
const STORE_QUEUE: usize = 4096;
/// Most pushes the store thread commits in one transaction.
const STORE_MAX_BATCH: usize = 256;
/// How long [`Relay::serve`] waits for the store thread to finish its queue.
const STORE_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the relay could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The database could not be opened or migrated.
    #[error("cannot open the relay database {path}: check the path and its permissions")]
    OpenStore {
        /// The database path.
        path: std::path::PathBuf,
        /// What the store said.
        #[source]
        source: StoreError,
    },
    /// The store thread could not be started.
    #[error("cannot start the relay's store thread")]
    StoreThread(#[source] std::io::Error),
    /// The operating system has no randomness to offer for the relay's key.
    #[error("cannot draw a random key for the relay: {0}")]
    Random(String),
    /// Accepting or serving connections failed.
    #[error("the relay's server failed")]
    Serve(#[source] std::io::Error),
    /// The TLS certificate or key given in the settings cannot be used.
    #[error("cannot serve TLS")]
    Tls(#[from] crate::tls::TlsError),
}

/// A space's verified ACL chain: the records as stored and the state they lead to.
#[derive(Debug)]
pub(crate) struct Chain {
    pub(crate) records: Vec<Vec<u8>>,
    pub(crate) state: AclState,
}

/// Everything the handlers and socket tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: RelayConfig,
    pub(crate) gate: Arc<Gate>,
    pub(crate) identity: Arc<RelayIdentity>,
    pub(crate) store: StoreHandle,
    pub(crate) metrics: Metrics,
    pub(crate) hub: Hub,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tracker: TaskTracker,
    pub(crate) next_connection: AtomicU64,
    acl_cache: Mutex<HashMap<SpaceKey, Arc<Chain>>>,
}

/// The state behind the router: cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub(crate) shared: Arc<Shared>,
}

impl AppState {
    /// State for a relay with `config` and `identity` over an already started store
    /// thread.
    pub fn new(config: RelayConfig, identity: RelayIdentity, store: StoreHandle) -> Self {
        let metrics = Metrics::new(store.stats());
        let gate = Arc::new(Gate::new(&config, governor::clock::MonotonicClock));
        Self {
            shared: Arc::new(Shared {
                config,
                gate,
                identity: Arc::new(identity),
                store,
                metrics,
                hub: Hub::default(),
                shutdown: CancellationToken::new(),
                tracker: TaskTracker::new(),
                next_connection: AtomicU64::new(1),
                acl_cache: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The fingerprint of the relay's key, which its operator shares with its users.
    pub fn fingerprint(&self) -> Fingerprint {
        self.shared.identity.fingerprint()
    }

    /// The token that, once cancelled, ends every websocket task.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shared.shutdown.clone()
    }

    /// The tracker every websocket task is registered with.
    pub fn tracker(&self) -> TaskTracker {
        self.shared.tracker.clone()
    }

    /// The relay's counters in the OpenMetrics text format (what `/metrics` serves).
    pub fn metrics_text(&self) -> String {
        self.shared.metrics.render()
    }
}

impl Shared {
    /// The space's chain, from the cache or the store; `None` if the space does not exist.
    pub(crate) async fn chain(&self, space: SpaceId) -> Result<Option<Arc<Chain>>, StoreError> {
        let cached = self
            .acl_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(space.as_bytes())
            .cloned();
        match cached {
            Some(chain) => Ok(Some(chain)),
            None => self.load_chain(space).await,
        }
    }

    /// The space's chain as stored now (and refreshes the cache with it).
    pub(crate) async fn load_chain(
        &self,
        space: SpaceId,
    ) -> Result<Option<Arc<Chain>>, StoreError> {
        let key = *space.as_bytes();
        let records = self
            .store
            .run(move |s| match s.acl(&key) {
                Ok(records) => Ok(Some(records)),
                Err(StoreError::NoSuchSpace) => Ok(None),
                Err(e) => Err(e),
            })
            .await?;
        let Some(records) = records else {
            return Ok(None);
        };
        let chain = Arc::new(verify_chain(records, &self.config.limits)?);
        self.remember(space, Arc::clone(&chain));
        Ok(Some(chain))
    }

    /// Caches `chain` unless a longer one is cached already (chains only grow, and two
    /// tasks may race to cache what they read).
    pub(crate) fn remember(&self, space: SpaceId, chain: Arc<Chain>) {
        let mut cache = self
            .acl_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match cache.get(space.as_bytes()) {
            Some(old) if old.state.len() > chain.state.len() => {}
            _ => {
                cache.insert(*space.as_bytes(), chain);
            }
        }
    }

    /// Caches the chain of a space just created, replacing whatever a deleted space of the
    /// same id left behind.
    pub(crate) fn remember_created(&self, space: SpaceId, chain: Arc<Chain>) {
        self.acl_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(*space.as_bytes(), chain);
    }

    pub(crate) fn forget(&self, space: SpaceId) {
        self.acl_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(space.as_bytes());
    }
}

/// Decodes and verifies a stored chain.
///
/// # Errors
/// [`StoreError::Conflict`] if the stored chain no longer verifies (a corrupt database).
pub(crate) fn verify_chain(
    records: Vec<Vec<u8>>,
    limits: &hearth_proto::Limits,
) -> Result<Chain, StoreError> {
    let decoded = records
        .iter()
        .map(|r| AclRecord::decode(r))
        .collect::<Result<Vec<_>, _>>()
        .and_then(|decoded| AclState::from_records(&decoded, limits));
    match decoded {
        Ok(state) => Ok(Chain { records, state }),
        Err(e) => Err(StoreError::Conflict(format!(
            "the stored ACL chain does not verify: {e}"
        ))),
    }
}

/// The relay's router: `GET /v1/sync` (websocket), `GET /healthz`, `GET /metrics`. Serve it
/// with `into_make_service_with_connect_info::<Peer>()` on a [`RelayListener`] (as
/// [`Relay::serve`] does): `/v1/sync` counts each client by its address.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/v1/sync", get(sync))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Bytes read from a websocket at a time.
const READ_BUFFER: usize = 4096;

async fn sync(
    State(state): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let shared = &state.shared;
    let client = client_address(peer, &headers, &shared.config.trusted_proxies);
    if shared.shutdown.is_cancelled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the relay is shutting down; retry later",
        )
            .into_response();
    }
    let max = shared.config.limits.frame_bytes();
    // Taken before the upgrade completes, so a shutdown from here on waits for this socket.
    let tracked = shared.tracker.token();
    // Small buffers: tungstenite's defaults (128 KiB each way) would cost every idle
    // connection ~130 KiB of resident memory; frames are mostly small, and a large one
    // simply takes a few more reads.
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .on_upgrade(move |socket| async move {
            let _tracked = tracked;
            crate::connection::run(socket, state.shared, client).await;
        })
}

async fn healthz() -> &'static str {
    "ok"
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.metrics_text(),
    )
        .into_response()
}

/// A relay with its database open and its store thread running, ready to serve.
#[derive(Debug)]
pub struct Relay {
    state: AppState,
    store_thread: JoinHandle<()>,
    tls: Option<Arc<RelayTls>>,
}

impl Relay {
    /// Opens (creating if needed) the database at `config.db`, with the relay's key in it
    /// (drawn at the first start), and starts the store thread.
    ///
    /// # Errors
    /// [`RelayError::Tls`] if the settings name a TLS certificate and key that cannot be
    /// used (checked first, so nothing is opened then); [`RelayError::OpenStore`],
    /// [`RelayError::StoreThread`], [`RelayError::Random`].
    pub fn open(config: RelayConfig) -> Result<Self, RelayError> {
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(Arc::new(RelayTls::load(cert, key)?)),
            _ => None,
        };
        let (mut store, identity) = open_store(&config)?;
        // Before the first connection is served: a space due to expire is gone by then.
        let swept =
            crate::sweep::sweep(&mut store, &config, config.clock.now_ms()).map_err(|source| {
                RelayError::OpenStore {
                    path: config.db.clone(),
                    source,
                }
            })?;
        crate::sweep::log(&swept, &config);
        let (handle, store_thread) = StoreHandle::spawn(store, STORE_QUEUE, STORE_MAX_BATCH)
            .map_err(RelayError::StoreThread)?;
        let state = AppState::new(config, identity, handle);
        Ok(Self {
            state,
            store_thread,
            tls,
        })
    }

    /// The relay's certificate, if it serves TLS: [`RelayTls::reload`] swaps it while the
    /// relay runs.
    pub fn tls(&self) -> Option<Arc<RelayTls>> {
        self.tls.clone()
    }

    /// The state the router runs on.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves on `listener` until `shutdown` completes, then closes every websocket,
    /// waits for their tasks, and lets the store thread finish what was queued.
    ///
    /// # Errors
    /// [`RelayError::Serve`] if accepting connections failed.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), RelayError> {
        let Relay {
            state,
            store_thread,
            tls,
        } = self;
        let token = state.shutdown_token();
        let tracker = state.tracker();
        let signal = token.clone();
        let listener =
            RelayListener::new(listener, state.shared.config.request_timeout).with_tls(tls);
        let housekeeping = tokio::spawn(crate::sweep::run(Arc::clone(&state.shared)));
        let served = axum::serve(
            listener,
            app(state).into_make_service_with_connect_info::<Peer>(),
        )
        .with_graceful_shutdown(async move {
            tokio::select! {
                () = shutdown => {}
                () = signal.cancelled() => {}
            }
            signal.cancel();
        })
        .await;
        token.cancel();
        // It watches the token; a sweep under way finishes its batch first.
        let _ = housekeeping.await;
        tracker.close();
        tracker.wait().await;
        tracing::info!("every connection closed; stopping the store");
        // The store thread stops once the last handle (held by the state) is gone.
        let joined = tokio::task::spawn_blocking(move || store_thread.join());
        if tokio::time::timeout(STORE_STOP_TIMEOUT, joined)
            .await
            .is_err()
        {
            tracing::warn!("the store thread did not stop in time");
        }
        served.map_err(RelayError::Serve)
    }
}

/// Opens the database `config` names (creating it if needed) and reads the relay's
/// identity from it, drawing and storing one at the first start.
///
/// # Errors
/// [`RelayError::OpenStore`], [`RelayError::Random`].
pub fn open_store(config: &RelayConfig) -> Result<(SqliteStore, RelayIdentity), RelayError> {
    let open_failed = |source| RelayError::OpenStore {
        path: config.db.clone(),
        source,
    };
    let mut store = SqliteStore::open(&config.db, config.store_limits()).map_err(open_failed)?;
    let mut fresh = [0u8; 32];
    getrandom::fill(&mut fresh).map_err(|e| RelayError::Random(e.to_string()))?;
    let secret = store
        .relay_secret(&fresh, config.clock.now_ms())
        .map_err(open_failed)?;
    Ok((store, RelayIdentity::from_secret(&secret)))
}

/// Opens the relay described by `config` and serves it on `listener` until `shutdown`
/// completes (see [`Relay::serve`]).
///
/// # Errors
/// As [`Relay::open`] and [`Relay::serve`].
pub async fn serve(
    config: RelayConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RelayError> {
    Relay::open(config)?.serve(listener, shutdown).await
}
