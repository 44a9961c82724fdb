//! Transfer transports of p2pnode: how two nodes open byte streams to each other.
//!
//! The [`Transport`] trait is small on purpose: bind a [`Listener`] that yields [`Incoming`] connections,
//! or connect to a peer (address plus the [`NodeId`] it announced) for a [`Connection`] that opens
//! [`Stream`]s. Each stream carries one request/response exchange ([`frames`]); [`Stream::finish`] says the
//! exchange completed, so a transport may carry the next exchange on the same channel.
//!
//! - [`tcp`]: plain TCP. A connection is a small pool of sockets, each carrying one exchange at a time;
//!   it does not authenticate the peer (content is verified by hash in any case).
//! - [`quic`]: QUIC with quinn, for lossy links. One connection per peer, one stream per exchange; the
//!   peer's certificate must hash to the node id it announced ([`Identity`]).
//!
//! Errors are typed ([`TransportError`]) so that a caller can tell "cannot reach" from "reached, then
//! failed" and fall back to another peer without parsing messages.

pub mod congestion;
pub mod frames;
mod identity;
pub mod quic;
pub mod tcp;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use proto::{NodeId, TransportKind};
use tokio::io::{AsyncRead, AsyncWrite};

pub use identity::{Identity, IdentityError, node_id_of};

/// A boxed future, so the traits stay object safe and a node can hold `Arc<dyn Transport>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a transport operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The local address could not be bound; for "address in use", pick another `--port`.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: io::Error,
    },
    /// Nothing answered within the connect timeout: the peer is gone, paused or filtered.
    #[error("connecting to {addr} timed out after {after:?}")]
    Timeout {
        /// The peer.
        addr: SocketAddr,
        /// The timeout.
        after: Duration,
    },
    /// The peer's host answered that nothing listens there: the node stopped.
    #[error("connection to {addr} refused")]
    Refused {
        /// The peer.
        addr: SocketAddr,
    },
    /// The peer proved a different identity than the one it announced: an impostor or a stale address.
    #[error("peer at {addr} is not node {expected}")]
    IdentityMismatch {
        /// The peer.
        addr: SocketAddr,
        /// The id that was announced for this address.
        expected: NodeId,
    },
    /// The peer sent bytes that break the protocol.
    #[error("protocol error: {0}")]
    Protocol(#[from] proto::DecodeError),
    /// The connection closed, or an operation on it failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl TransportError {
    /// Maps a connect failure to the typed error a caller decides on.
    pub fn connect(addr: SocketAddr, e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => TransportError::Refused { addr },
            _ => TransportError::Io(e),
        }
    }
}

/// Settings shared by the transports.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// How long a connection attempt may take.
    pub connect_timeout: Duration,
    /// How long a server keeps a connection with no request in progress.
    pub idle_timeout: Duration,
    /// The TCP congestion control of this node's TCP sockets (Linux `TCP_CONGESTION`, such as `cubic` or
    /// `bbr`); `None` keeps the system's default. The sender's choice is the one that matters.
    pub tcp_congestion: Option<String>,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self { connect_timeout: Duration::from_secs(3), idle_timeout: Duration::from_secs(30), tcp_congestion: None }
    }
}

/// A way to carry byte streams between nodes.
pub trait Transport: Send + Sync + 'static {
    /// Which transport this is (announced with its port).
    fn kind(&self) -> TransportKind;

    /// Listens on `addr` (port 0 picks a free port; see [`Listener::local_addr`]).
    fn bind(&self, addr: SocketAddr) -> BoxFuture<'_, Result<Box<dyn Listener>, TransportError>>;

    /// Connects to the node `expected` at `addr`.
    fn connect(&self, addr: SocketAddr, expected: NodeId)
    -> BoxFuture<'_, Result<Arc<dyn Connection>, TransportError>>;
}

/// Accepts connections from other nodes.
pub trait Listener: Send {
    /// The bound address.
    fn local_addr(&self) -> SocketAddr;

    /// The next incoming connection.
    fn accept(&mut self) -> BoxFuture<'_, Result<Box<dyn Incoming>, TransportError>>;
}

/// The server side of an accepted connection.
pub trait Incoming: Send {
    /// The peer's address.
    fn remote_addr(&self) -> SocketAddr;

    /// The next stream the peer opened; `None` once the peer is done with the connection.
    fn accept_stream(&mut self) -> BoxFuture<'_, Result<Option<Box<dyn Stream>>, TransportError>>;
}

/// The client side of a connection to a node; cheap to share between tasks.
pub trait Connection: Send + Sync {
    /// The peer's address.
    fn remote_addr(&self) -> SocketAddr;

    /// Opens a stream for one exchange.
    fn open(&self) -> BoxFuture<'_, Result<Box<dyn Stream>, TransportError>>;
}

/// A bidirectional byte stream carrying one request/response exchange.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin {
    /// The exchange completed cleanly (the response was read or written in full); the transport may
    /// carry another exchange on what carried this one. Dropping a stream instead abandons it.
    fn finish(self: Box<Self>);
}
