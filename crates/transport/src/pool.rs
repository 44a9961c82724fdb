//! Socket-per-exchange connections, shared by tcp and tls: each socket carries one exchange at a time; a
//! client keeps a few idle sockets per peer so the next exchange skips the handshake, and opens more when
//! it runs exchanges in parallel; a server serves one socket as one connection.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::{Authenticated, Connection, Incoming, Stream, TransportError};

/// Idle sockets a client keeps per peer.
const MAX_IDLE: usize = 16;

/// A socket a stream can borrow.
pub(crate) trait Socket: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> Socket for S {}

/// Opens one more channel to a peer: a connected socket, its handshake (if any) done.
#[async_trait]
pub(crate) trait Dial: Send + Sync + 'static {
    /// What a channel is.
    type Socket: Socket;

    /// A new channel, and what its handshake proved.
    async fn dial(&self) -> Result<(Self::Socket, Option<Authenticated>), TransportError>;
}

/// A client connection: idle channels to one peer, and how to open more.
pub(crate) struct Pooled<D: Dial> {
    dial: D,
    addr: SocketAddr,
    /// Idle channels are retired at this age, before the server's idle timeout closes them.
    max_age: Duration,
    idle: IdlePool<D::Socket>,
}

type IdlePool<S> = Arc<Mutex<Vec<(S, Option<Authenticated>, Instant)>>>;

impl<D: Dial> Pooled<D> {
    /// Dials once now, so an unreachable peer fails here with a typed error, not at the first exchange.
    pub(crate) async fn connect(dial: D, addr: SocketAddr, server_idle: Duration) -> Result<Self, TransportError> {
        let (socket, auth) = dial.dial().await?;
        let pooled = Self { dial, addr, max_age: server_idle / 2, idle: Arc::new(Mutex::new(Vec::new())) };
        park(&pooled.idle, socket, auth);
        Ok(pooled)
    }

    /// An idle channel the server has not yet timed out.
    fn reusable(&self) -> Option<(D::Socket, Option<Authenticated>)> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((socket, auth, since)) = idle.pop() {
            if since.elapsed() < self.max_age {
                return Some((socket, auth));
            }
        }
        None
    }
}

#[async_trait]
impl<D: Dial> Connection for Pooled<D> {
    fn remote_addr(&self) -> SocketAddr {
        self.addr
    }

    async fn open(&self) -> Result<Box<dyn Stream>, TransportError> {
        let (socket, auth) = match self.reusable() {
            Some(channel) => channel,
            None => self.dial.dial().await?,
        };
        let idle = self.idle.clone();
        let on_finish = move |socket| park(&idle, socket, auth);
        Ok(Box::new(Lent { socket, auth, on_finish }))
    }
}

fn park<S>(idle: &IdlePool<S>, socket: S, auth: Option<Authenticated>) {
    let mut idle = idle.lock().unwrap_or_else(|p| p.into_inner());
    if idle.len() < MAX_IDLE {
        idle.push((socket, auth, Instant::now()));
    }
}

/// The server side of one accepted socket.
pub(crate) struct Accepted<S> {
    remote: SocketAddr,
    auth: Option<Authenticated>,
    state: Slot<S>,
}

impl<S> Accepted<S> {
    pub(crate) fn new(socket: S, remote: SocketAddr, auth: Option<Authenticated>) -> Self {
        Self { remote, auth, state: Slot::Ready(socket) }
    }
}

/// Where the one socket of an accepted connection is: ready for the next exchange, lent to a stream that
/// will hand it back when its exchange finishes, or gone.
enum Slot<S> {
    Ready(S),
    Lent(oneshot::Receiver<S>),
    Done,
}

#[async_trait]
impl<S: Socket> Incoming for Accepted<S> {
    fn remote_addr(&self) -> SocketAddr {
        self.remote
    }

    fn authenticated(&self) -> Option<Authenticated> {
        self.auth
    }

    async fn accept_stream(&mut self) -> Result<Option<Box<dyn Stream>>, TransportError> {
        // Waiting on the receiver in place keeps this cancel-safe: a wait dropped halfway loses nothing.
        if let Slot::Lent(back) = &mut self.state {
            // A stream dropped without finishing abandons the socket: the connection is over.
            self.state = match back.await {
                Ok(socket) => Slot::Ready(socket),
                Err(_) => Slot::Done,
            };
        }
        let Slot::Ready(socket) = std::mem::replace(&mut self.state, Slot::Done) else { return Ok(None) };
        let (tx, rx) = oneshot::channel();
        self.state = Slot::Lent(rx);
        let on_finish = move |socket| {
            let _ = tx.send(socket);
        };
        Ok(Some(Box::new(Lent { socket, auth: self.auth, on_finish })))
    }
}

/// A socket lent to one exchange; `on_finish` takes it back.
struct Lent<S, F> {
    socket: S,
    auth: Option<Authenticated>,
    on_finish: F,
}

impl<S: Socket, F: FnOnce(S) + Send + Unpin> Stream for Lent<S, F> {
    fn finish(self: Box<Self>) {
        let Lent { socket, on_finish, .. } = *self;
        on_finish(socket);
    }

    fn authenticated(&self) -> Option<Authenticated> {
        self.auth
    }
}

impl<S: Socket, F: Unpin> AsyncRead for Lent<S, F> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_read(cx, buf)
    }
}

impl<S: Socket, F: Unpin> AsyncWrite for Lent<S, F> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.socket).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.socket).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.socket.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_shutdown(cx)
    }
}
