//! The relay's TCP listener: `TCP_NODELAY` on every connection, TLS when the relay has a
//! certificate of its own, and a deadline for the TLS handshake and the HTTP request that
//! opens the websocket.
//!
//! axum's server sets no timer, so hyper's own header timeout never applies: a client
//! that connects and then sends nothing, or one byte of its request now and then
//! (slowloris), would hold a socket forever, and enough of them exhaust the relay's file
//! descriptors. Here a connection must have its request read and answered within
//! [`REQUEST_DEADLINE`] of being accepted; after the first byte of the answer the deadline
//! is gone, and the websocket's own login timeout and idle pings take over.
//!
//! With TLS, the handshake runs inside the connection's first reads rather than in
//! `accept`: axum accepts connections one at a time, so a handshake there would let one
//! slow client hold up everyone else's. The deadline sits outside the TLS layer, so it
//! covers the handshake too, and only the relay's HTTP answer (never a handshake
//! message) lifts it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;
use tokio_rustls::server::TlsStream;

use crate::tls::RelayTls;

/// How long a connection may take to send its HTTP request (the websocket upgrade).
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);

/// A [`TcpListener`] whose connections get [`REQUEST_DEADLINE`] and `TCP_NODELAY`, and
/// TLS if it was given a certificate.
#[derive(Debug)]
pub struct RelayListener {
    inner: TcpListener,
    deadline: Duration,
    tls: Option<Arc<RelayTls>>,
}

impl RelayListener {
    /// Wraps `inner`, with `deadline` for each connection's HTTP request.
    pub fn new(inner: TcpListener, deadline: Duration) -> Self {
        Self {
            inner,
            deadline,
            tls: None,
        }
    }

    /// Serves TLS with `tls`'s certificate (the one in use when each connection arrives).
    pub fn with_tls(mut self, tls: Option<Arc<RelayTls>>) -> Self {
        self.tls = tls;
        self
    }
}

impl Listener for RelayListener {
    type Io = Deadlined;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // axum's accept loop: retries connection errors, backs off on others (EMFILE).
        let (tcp, addr) = Listener::accept(&mut self.inner).await;
        // Frames are whole messages, written when ready: no Nagle delay behind an
        // unacknowledged one.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let io = Deadlined {
            io: match &self.tls {
                None => Conn::Plain(tcp),
                Some(tls) => Conn::Handshaking(Box::new(tls.acceptor().accept(tcp))),
            },
            deadline: Some(Box::pin(tokio::time::sleep(self.deadline))),
        };
        (io, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// The TCP peer of a connection [`RelayListener`] accepted, for handlers
/// (`ConnectInfo<Peer>`): the client, or the reverse proxy in front of the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub std::net::SocketAddr);

impl Connected<IncomingStream<'_, RelayListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, RelayListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// A connection whose reads fail with [`io::ErrorKind::TimedOut`] once its deadline
/// passes, until the server first writes to it.
#[derive(Debug)]
pub struct Deadlined {
    io: Conn,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl AsyncRead for Deadlined {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(deadline) = self.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the HTTP request did not arrive in time",
            )));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Deadlined {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.deadline = None;
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.deadline = None;
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// One connection's bytes: plain, or TLS (its handshake first, driven by whichever of
/// read or write the server calls first).
enum Conn {
    Plain(TcpStream),
    Handshaking(Box<tokio_rustls::Accept<TcpStream>>),
    Tls(Box<TlsStream<TcpStream>>),
    /// The handshake failed; the server has been told, and the connection is dropped.
    Failed,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::Plain(_) => "Plain",
            Conn::Handshaking(_) => "Handshaking",
            Conn::Tls(_) => "Tls",
            Conn::Failed => "Failed",
        })
    }
}

impl Conn {
    /// Drives a pending TLS handshake; ready once the connection carries bytes.
    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Conn::Handshaking(accept) = self else {
            return match self {
                Conn::Failed => Poll::Ready(Err(handshake_failed())),
                _ => Poll::Ready(Ok(())),
            };
        };
        match Pin::new(accept.as_mut()).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(stream)) => {
                *self = Conn::Tls(Box::new(stream));
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => {
                // A client that does not trust the certificate ends here (with its alert):
                // worth seeing when debugging a setup, too common to log louder.
                tracing::debug!(error = %e, "TLS handshake failed");
                *self = Conn::Failed;
                Poll::Ready(Err(e))
            }
        }
    }
}

fn handshake_failed() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "the TLS handshake failed")
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        ready!(self.poll_handshake(cx))?;
        match self.get_mut() {
            Conn::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Conn::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
            Conn::Handshaking(_) | Conn::Failed => Poll::Ready(Err(handshake_failed())),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_handshake(cx))?;
        match self.get_mut() {
            Conn::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Conn::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
            Conn::Handshaking(_) | Conn::Failed => Poll::Ready(Err(handshake_failed())),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_handshake(cx))?;
        match self.get_mut() {
            Conn::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Conn::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
            Conn::Handshaking(_) | Conn::Failed => Poll::Ready(Err(handshake_failed())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Conn::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
            // Nothing to close politely before a handshake that never finished.
            Conn::Handshaking(_) | Conn::Failed => Poll::Ready(Ok(())),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_handshake(cx))?;
        match self.get_mut() {
            Conn::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Conn::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
            Conn::Handshaking(_) | Conn::Failed => Poll::Ready(Err(handshake_failed())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(tcp) => tcp.is_write_vectored(),
            Conn::Tls(tls) => tls.is_write_vectored(),
            Conn::Handshaking(_) | Conn::Failed => false,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// The bound on a wait that should end much sooner.
    const WAIT: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn the_request_deadline_covers_the_tls_handshake_and_the_request_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = crate::tls::tests::self_signed(dir.path(), "relay");
        let tls = Arc::new(RelayTls::load(&cert, &key).unwrap());
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let listener = RelayListener::new(tcp, Duration::from_millis(300)).with_tls(Some(tls));
        let router = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let server = tokio::spawn(async move { axum::serve(listener, router).await });

        // One says nothing; one sends the first bytes of a ClientHello and stops there.
        let mut mute = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
        stalled
            .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
            .await
            .unwrap();
        for (what, conn) in [("silent", &mut mute), ("stalled", &mut stalled)] {
            let mut byte = [0u8; 1];
            let read = tokio::time::timeout(WAIT, conn.read(&mut byte)).await;
            assert!(
                matches!(read, Ok(Ok(0) | Err(_))),
                "a {what} TLS connection is closed: {read:?}"
            );
        }
        // One finishes the handshake (the relay has written to it by then) and sends no
        // HTTP request: the handshake's writes do not lift the deadline.
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut idle = tokio_rustls::TlsConnector::from(Arc::new(client_config(&cert)))
            .connect(name, tcp)
            .await
            .unwrap();
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(WAIT, idle.read(&mut byte)).await;
        assert!(
            matches!(read, Ok(Ok(0) | Err(_))),
            "a TLS connection that sends no request is closed: {read:?}"
        );
        // And one that asks in time is answered.
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut asking = tokio_rustls::TlsConnector::from(Arc::new(client_config(&cert)))
            .connect(
                rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap(),
                tcp,
            )
            .await
            .unwrap();
        asking
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(WAIT, asking.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        server.abort();
    }

    /// A TLS client that trusts the certificate at `cert`.
    fn client_config(cert: &std::path::Path) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(cert).unwrap();
        for c in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
            roots.add(c.unwrap()).unwrap();
        }
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
    }
}
