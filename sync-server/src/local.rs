//! A relay on 127.0.0.1 inside another program: `hearth demo`, the end-to-end tests and the
//! benchmarks run one beside their clients. It binds before returning (so it is ready the
//! moment the caller has its URL), serves on its own thread and runtime, and stops cleanly
//! when dropped.

use std::path::PathBuf;
use std::thread::JoinHandle;

use crate::{RelayConfig, RelayError, serve};

/// A running loopback relay; dropping it shuts it down.
#[derive(Debug)]
pub struct LocalRelay {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl LocalRelay {
    /// Starts a relay with its database at `db`, on a free port of 127.0.0.1.
    ///
    /// # Errors
    /// [`RelayError::Serve`] if the runtime or the socket cannot be set up;
    /// [`RelayError::StoreThread`] if its thread cannot start.
    pub fn start(db: PathBuf) -> Result<LocalRelay, RelayError> {
        Self::start_with(RelayConfig {
            db,
            ..RelayConfig::default()
        })
    }

    /// Starts a relay with `config` (its `listen` is ignored: the relay takes a free port
    /// of 127.0.0.1), for callers that want other limits or timeouts.
    ///
    /// # Errors
    /// As [`LocalRelay::start`].
    pub fn start_with(config: RelayConfig) -> Result<LocalRelay, RelayError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(RelayError::Serve)?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .map_err(RelayError::Serve)?;
        let addr = listener.local_addr().map_err(RelayError::Serve)?;
        let scheme = if config.tls_cert.is_some() {
            "wss"
        } else {
            "ws"
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("local-relay".into())
            .spawn(move || {
                let served = runtime.block_on(serve(config, listener, async move {
                    let _ = stopped.await;
                }));
                if let Err(e) = served {
                    tracing::error!(error = %e, "the local relay stopped");
                }
            })
            .map_err(RelayError::StoreThread)?;
        Ok(LocalRelay {
            url: format!("{scheme}://{addr}/v1/sync"),
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The URL clients use: `ws://127.0.0.1:PORT/v1/sync` (`wss://` with a TLS certificate).
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for LocalRelay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
