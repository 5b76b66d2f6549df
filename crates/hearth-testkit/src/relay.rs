//! A real relay on 127.0.0.1, started with any configuration. It is bound before `start`
//! returns, so a client can connect the moment it has the address (no test sleeps or
//! retries), and it serves on its own thread and runtime, as a relay in another process
//! would: it behaves the same under a test's single-threaded runtime, a multi-threaded one,
//! or none at all.

use std::net::SocketAddr;
use std::path::Path;

use hearth_relay::{RelayConfig, RelayError};
use tokio::sync::oneshot;

/// A running relay. [`TestRelay::stop`] waits until it has closed its database; dropping
/// it only asks it to stop.
#[derive(Debug)]
pub struct TestRelay {
    /// The URL clients use: `ws://127.0.0.1:PORT/v1/sync`.
    pub url: String,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    served: Option<oneshot::Receiver<Result<(), RelayError>>>,
}

impl TestRelay {
    /// Starts a relay with `config` on a free port of 127.0.0.1 (whatever `config.listen`
    /// says). Every relay a test starts in-process starts here.
    pub fn start(config: RelayConfig) -> TestRelay {
        Self::start_at(SocketAddr::from(([127, 0, 0, 1], 0)), config)
    }

    /// Starts a relay with `config` on `addr` (port 0: a free one), e.g. the address of a
    /// relay just stopped, to play a relay restarted, or another relay answering at the
    /// same address.
    ///
    /// # Panics
    /// If `addr` cannot be bound.
    pub fn start_at(addr: SocketAddr, config: RelayConfig) -> TestRelay {
        let listener = std::net::TcpListener::bind(addr)
            .unwrap_or_else(|e| panic!("cannot listen on {addr} for a test relay: {e}"));
        listener
            .set_nonblocking(true)
            .expect("the listener can be made non-blocking, as tokio needs");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let (stop, stopped) = oneshot::channel::<()>();
        let (done, served) = oneshot::channel();
        std::thread::Builder::new()
            .name("test-relay".into())
            .spawn(move || {
                let _ = done.send(serve(config, listener, stopped));
            })
            .expect("a thread for the relay");
        TestRelay {
            url: format!("ws://{addr}/v1/sync"),
            addr,
            stop: Some(stop),
            served: Some(served),
        }
    }

    /// Starts a relay with the default configuration and its database at `db`.
    pub fn at(db: &Path) -> TestRelay {
        TestRelay::start(RelayConfig {
            db: db.to_owned(),
            ..RelayConfig::default()
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops it and waits until every connection and its database are closed.
    ///
    /// # Errors
    /// What the relay's `serve` returned: it could not open its database, or serving failed.
    pub async fn stop(mut self) -> Result<(), RelayError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.served
            .take()
            .expect("only stop takes the result, and it takes the relay by value")
            .await
            .expect("the relay's thread reports how it stopped unless it panicked")
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Runs the relay on `listener` until `stopped` fires (or its sender is dropped), on a
/// runtime of its own that is gone by the time this returns.
fn serve(
    config: RelayConfig,
    listener: std::net::TcpListener,
    stopped: oneshot::Receiver<()>,
) -> Result<(), RelayError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(RelayError::Serve)?;
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).map_err(RelayError::Serve)?;
        hearth_relay::serve(config, listener, async move {
            let _ = stopped.await;
        })
        .await
    });
    drop(runtime);
    served
}
