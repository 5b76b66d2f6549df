//! The relay's TCP listener: `TCP_NODELAY` on every connection, and a deadline for the
//! HTTP request that opens the websocket.
//!
//! axum's server sets no timer, so hyper's own header timeout never applies: a client
//! that connects and then sends nothing, or one byte of its request now and then
//! (slowloris), would hold a socket forever, and enough of them exhaust the relay's file
//! descriptors. Here a connection must have its request read and answered within
//! [`REQUEST_DEADLINE`] of being accepted; after the first byte of the answer the deadline
//! is gone, and the websocket's own login timeout and idle pings take over.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

/// How long a connection may take to send its HTTP request (the websocket upgrade).
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);

/// A [`TcpListener`] whose connections get [`REQUEST_DEADLINE`] and `TCP_NODELAY`.
#[derive(Debug)]
pub struct RelayListener {
    inner: TcpListener,
    deadline: Duration,
}

impl RelayListener {
    /// Wraps `inner`, with `deadline` for each connection's HTTP request.
    pub fn new(inner: TcpListener, deadline: Duration) -> Self {
        Self { inner, deadline }
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
            tcp,
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
    tcp: TcpStream,
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
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Deadlined {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.tcp).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.deadline = None;
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.deadline = None;
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}
