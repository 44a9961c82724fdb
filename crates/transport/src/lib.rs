//! Transfer transports of p2pnode: how two nodes open byte streams to each other, as plug-ins.
//!
//! A [`Transport`] binds a [`Listener`] that yields [`Incoming`] connections, or connects to a peer
//! (address plus the [`NodeId`] it announced) for a [`Connection`] that opens [`Stream`]s. Each stream
//! carries one request/response exchange ([`frame_io`]); [`Stream::finish`] says the exchange completed,
//! so a transport may carry the next exchange on the same channel. A transport names itself with a short
//! ASCII name ([`Transport::name`]) that nodes announce with its port, so a new transport needs no change
//! to the wire format: a node uses the transports it has among those a peer announces.
//!
//! The traits are written with `async_trait`, so an implementation is plain `async fn`s:
//!
//! ```
//! use std::net::SocketAddr;
//! use std::sync::Arc;
//! use transport::{Connection, Listener, NodeId, Transport, TransportError, async_trait};
//!
//! struct Carrier;
//!
//! #[async_trait]
//! impl Transport for Carrier {
//!     fn name(&self) -> &str {
//!         "carrier-pigeon"
//!     }
//!     fn authenticates(&self) -> bool {
//!         false
//!     }
//!     async fn bind(&self, addr: SocketAddr) -> Result<Box<dyn Listener>, TransportError> {
//!         Err(TransportError::Bind { addr, source: std::io::ErrorKind::Unsupported.into() })
//!     }
//!     async fn connect(&self, addr: SocketAddr, _: NodeId) -> Result<Arc<dyn Connection>, TransportError> {
//!         Err(TransportError::Refused { addr })
//!     }
//! }
//! ```
//!
//! This crate's transports:
//! - [`tcp`]: plain TCP. A connection is a small pool of sockets, each carrying one exchange at a time;
//!   it does not authenticate the peer (content is verified by hash in any case).
//! - [`tls`]: TLS 1.3 over the same sockets and pooling, both ends proving their node id with their
//!   certificate ([`Identity`]); its listener can take plain TCP clients on the same port.
//! - [`quic`]: QUIC with quinn, for lossy links: one connection per peer, one stream per exchange, both
//!   ends proving their node id as with TLS.
//! - [`memory`]: an in-memory network for tests that need no sockets and run on a paused clock.
//!
//! [`builtin`] picks them by name, for wiring code such as a command line.
//!
//! With the `conformance` feature, `conformance` is the suite every transport must pass: a third party
//! runs it on its own transport with one call.
//!
//! Errors are typed ([`TransportError`]) so that a caller can tell "cannot reach" from "reached, then
//! failed" and fall back to another peer without parsing messages.

pub mod builtin;
mod certs;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod congestion;
pub mod frame_io;
mod group;
mod identity;
pub mod memory;
mod pool;
pub mod quic;
mod reuse;
pub mod tcp;
pub mod tls;
mod trust;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use async_trait::async_trait;
pub use group::GroupTransport;
pub use identity::{Identity, IdentityError, node_id_of};
pub use proto::NodeId;
pub use reuse::Reuse;
use tokio::io::{AsyncRead, AsyncWrite};
pub use trust::TrustTransport;

/// The application protocol and its version, checked in every TLS handshake (tls and quic).
pub const ALPN: &[u8] = b"p2pnode/2";
/// Handshakes a server runs at once; further clients wait (tls) or are refused (quic) until one completes
/// or times out.
pub const MAX_HANDSHAKES: usize = 128;

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
    /// A private group was asked of a transport that does not authenticate its channels.
    #[error("transport {0} does not authenticate peers; a private group needs one that does (tls or quic)")]
    NotAuthenticating(String),
    /// A connection to a node outside the trust list was asked for.
    #[error("node {} is not trusted", .0.short())]
    NotTrusted(NodeId),
    /// The connection closed, or an operation on it failed.
    #[error("{}", io_reason(.0))]
    Io(#[from] io::Error),
}

/// `inner`, if it authenticates its channels: what a wrapper that relies on proven ids or channel
/// bindings (a group, a trust list) asks of what it wraps.
fn authenticating(inner: Arc<dyn Transport>) -> Result<Arc<dyn Transport>, TransportError> {
    match inner.authenticates() {
        true => Ok(inner),
        false => Err(TransportError::NotAuthenticating(inner.name().to_string())),
    }
}

/// What an I/O error on a connection means to a person: a peer that went away mid-exchange reads as that,
/// whichever layer noticed (rustls' "peer closed connection without sending TLS close_notify: https://…"
/// says the same at length).
fn io_reason(e: &io::Error) -> String {
    use io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    match e.kind() {
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe => "the peer closed the connection".into(),
        _ => e.to_string(),
    }
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

/// Settings shared by the transports: `Default`, then the setters.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TransportConfig {
    /// How long a connection attempt (handshake included) may take.
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

impl TransportConfig {
    /// How long a connection attempt (handshake included) may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a server keeps a connection with no request in progress.
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = idle;
        self
    }

    /// The TCP congestion control of this node's TCP sockets (`None`: the system's default).
    pub fn tcp_congestion(mut self, name: Option<String>) -> Self {
        self.tcp_congestion = name;
        self
    }
}

/// What the handshake of an authenticating transport proved about one channel: the node id of the peer
/// (the hash of the certificate whose key it proved), and keying material exported from this very
/// handshake (the TLS exporter, RFC 8446 7.5), so that a later proof bound to it cannot be relayed onto
/// another channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authenticated {
    /// The peer's proven node id.
    pub peer: NodeId,
    /// Keying material both ends of this channel, and no one else, can compute.
    pub binding: [u8; 32],
}

/// The exporter label of [`Authenticated::binding`].
pub(crate) const BINDING_LABEL: &[u8] = b"EXPORTER-p2pnode-channel-binding";

/// A way to carry byte streams between nodes.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// The transport's name, announced with its port: 1 to 16 bytes of `a-z`, `0-9` and `-`
    /// ([`proto::is_transport_name`]), as ALPN names protocols (`tcp`, `tls`, `quic`).
    fn name(&self) -> &str;

    /// The names of other transports whose clients this one's listener also takes on its port (tls takes
    /// plain tcp clients where told to): a node announces them with the same port.
    fn also_serves(&self) -> Vec<String> {
        Vec::new()
    }

    /// Whether every connection proves the peer's node id ([`Authenticated`]) and is encrypted.
    fn authenticates(&self) -> bool;

    /// Listens on `addr` (port 0 picks a free port; see [`Listener::local_addr`]).
    async fn bind(&self, addr: SocketAddr) -> Result<Box<dyn Listener>, TransportError>;

    /// Connects to the node `expected` at `addr`. A transport that authenticates fails with
    /// [`TransportError::IdentityMismatch`] when the peer proves another id.
    async fn connect(&self, addr: SocketAddr, expected: NodeId) -> Result<Arc<dyn Connection>, TransportError>;

    /// Connects anew to `expected` at `addr`, where a connection made before may be dead: a transport that
    /// keeps its connections ([`Reuse`]) dials rather than handing the old one out again.
    async fn reconnect(&self, addr: SocketAddr, expected: NodeId) -> Result<Arc<dyn Connection>, TransportError> {
        self.connect(addr, expected).await
    }
}

/// Accepts connections from other nodes.
#[async_trait]
pub trait Listener: Send {
    /// The bound address.
    fn local_addr(&self) -> SocketAddr;

    /// The next incoming connection (its handshake completed, where the transport has one).
    async fn accept(&mut self) -> Result<Box<dyn Incoming>, TransportError>;
}

/// The server side of an accepted connection.
#[async_trait]
pub trait Incoming: Send {
    /// The peer's address.
    fn remote_addr(&self) -> SocketAddr;

    /// What the handshake proved about the client, if the transport authenticates.
    fn authenticated(&self) -> Option<Authenticated> {
        None
    }

    /// The next stream the peer opened; `None` once the peer is done with the connection. Must be
    /// cancel-safe: a server bounds it with a timeout.
    async fn accept_stream(&mut self) -> Result<Option<Box<dyn Stream>>, TransportError>;

    /// Whether the transport vouches for the peer's proven id before any exchange: it is on a trust list.
    /// A server may then count the peer's connections by id rather than by address.
    fn vouched(&self) -> bool {
        false
    }
}

/// The client side of a connection to a node; cheap to share between tasks.
#[async_trait]
pub trait Connection: Send + Sync {
    /// The peer's address.
    fn remote_addr(&self) -> SocketAddr;

    /// Opens a stream for one exchange.
    async fn open(&self) -> Result<Box<dyn Stream>, TransportError>;
}

/// A bidirectional byte stream carrying one request/response exchange.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin {
    /// The exchange completed cleanly (the response was read or written in full); the transport may
    /// carry another exchange on what carried this one. Dropping a stream instead abandons it.
    fn finish(self: Box<Self>);

    /// Finishes the stream, and completes once the peer has received everything written to it: for the
    /// last words of a process about to end, since a QUIC connection closed by a process that ends loses
    /// what was not yet delivered. Where closing a socket delivers what it holds (TCP), at once.
    fn finish_delivered(self: Box<Self>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        self.finish();
        Box::pin(std::future::ready(()))
    }

    /// What the handshake of the channel carrying this stream proved about the peer, if the transport
    /// authenticates (over TCP-based transports each pooled socket is a channel of its own).
    fn authenticated(&self) -> Option<Authenticated> {
        None
    }
}
