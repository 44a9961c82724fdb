//! An in-memory network: nodes in one process reach each other through it with no socket, so node tests
//! run on tokio's paused clock, deterministic and fast (timeouts, fallback, expiry take no real time).
//!
//! A [`MemoryNetwork`] maps addresses to listeners; each [`MemoryTransport`] on it binds and connects at
//! its own IP address and proves its node id as an authenticating transport does (the network knows who
//! bound what). Each stream is a [`tokio::io::duplex`] pair.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use transport::memory::MemoryNetwork;
//! use transport::{Identity, Transport};
//!
//! let network = MemoryNetwork::default();
//! let identity = Identity::generate().unwrap();
//! let server = network.transport([10, 0, 0, 1].into(), &identity);
//! let client = network.transport([10, 0, 0, 2].into(), &Identity::generate().unwrap());
//! let listener = server.bind(([0, 0, 0, 0], 7000).into()).await.unwrap();
//! let connection = client.connect(listener.local_addr(), identity.node_id()).await.unwrap();
//! assert_eq!(connection.remote_addr(), ([10, 0, 0, 1], 7000).into());
//! # }
//! ```

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use async_trait::async_trait;
use proto::NodeId;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::sync::mpsc;

use crate::{Authenticated, Connection, Identity, Incoming, Listener, Stream, Transport, TransportError};

/// Bytes a stream buffers each way, as a socket would.
const STREAM_BUFFER: usize = 256 * 1024;
/// Connections waiting for a listener to accept them, and streams for a server to take.
const BACKLOG: usize = 64;
/// The first port handed out for port 0.
const FIRST_EPHEMERAL: u16 = 40_000;

/// Listeners by address; clone it to give every node the same network.
#[derive(Clone, Debug, Default)]
pub struct MemoryNetwork {
    listeners: Arc<Mutex<Listeners>>,
}

#[derive(Debug, Default)]
struct Listeners {
    bound: HashMap<SocketAddr, (NodeId, mpsc::Sender<MemoryIncoming>)>,
    next_port: u16,
}

impl MemoryNetwork {
    /// A transport at `ip` on this network, proving `identity`'s node id.
    pub fn transport(&self, ip: IpAddr, identity: &Identity) -> MemoryTransport {
        MemoryTransport { network: self.clone(), ip, id: identity.node_id() }
    }

    fn listeners(&self) -> std::sync::MutexGuard<'_, Listeners> {
        self.listeners.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A node's access to a [`MemoryNetwork`].
#[derive(Clone, Debug)]
pub struct MemoryTransport {
    network: MemoryNetwork,
    ip: IpAddr,
    id: NodeId,
}

#[async_trait]
impl Transport for MemoryTransport {
    fn name(&self) -> &str {
        "mem"
    }

    fn authenticates(&self) -> bool {
        true
    }

    /// Binds at this transport's IP (whatever `addr`'s IP), on `addr`'s port or a free one.
    async fn bind(&self, addr: SocketAddr) -> Result<Box<dyn Listener>, TransportError> {
        let mut listeners = self.network.listeners();
        let mut local = SocketAddr::new(self.ip, addr.port());
        while local.port() == 0 || listeners.bound.contains_key(&local) {
            if addr.port() != 0 {
                let source = std::io::ErrorKind::AddrInUse.into();
                return Err(TransportError::Bind { addr: local, source });
            }
            listeners.next_port = listeners.next_port.max(FIRST_EPHEMERAL).wrapping_add(1);
            local.set_port(listeners.next_port);
        }
        let (tx, accepted) = mpsc::channel(BACKLOG);
        listeners.bound.insert(local, (self.id, tx));
        Ok(Box::new(MemoryListener { network: self.network.clone(), local, accepted }))
    }

    async fn connect(&self, addr: SocketAddr, expected: NodeId) -> Result<Arc<dyn Connection>, TransportError> {
        let (id, listener) =
            self.network.listeners().bound.get(&addr).cloned().ok_or(TransportError::Refused { addr })?;
        if id != expected {
            return Err(TransportError::IdentityMismatch { addr, expected });
        }
        let binding = crate::certs::random_bytes();
        let (streams, incoming_streams) = mpsc::channel(BACKLOG);
        let remote = SocketAddr::new(self.ip, 0);
        let auth = Authenticated { peer: self.id, binding };
        let incoming = MemoryIncoming { remote, auth, streams: incoming_streams };
        listener.send(incoming).await.map_err(|_| TransportError::Refused { addr })?;
        Ok(Arc::new(MemoryConnection { remote: addr, auth: Authenticated { peer: id, binding }, streams }))
    }
}

struct MemoryListener {
    network: MemoryNetwork,
    local: SocketAddr,
    accepted: mpsc::Receiver<MemoryIncoming>,
}

impl Drop for MemoryListener {
    fn drop(&mut self) {
        self.network.listeners().bound.remove(&self.local);
    }
}

#[async_trait]
impl Listener for MemoryListener {
    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    async fn accept(&mut self) -> Result<Box<dyn Incoming>, TransportError> {
        match self.accepted.recv().await {
            Some(incoming) => Ok(Box::new(incoming)),
            None => Err(std::io::Error::from(std::io::ErrorKind::NotConnected).into()),
        }
    }
}

struct MemoryIncoming {
    remote: SocketAddr,
    auth: Authenticated,
    streams: mpsc::Receiver<DuplexStream>,
}

#[async_trait]
impl Incoming for MemoryIncoming {
    fn remote_addr(&self) -> SocketAddr {
        self.remote
    }

    fn authenticated(&self) -> Option<Authenticated> {
        Some(self.auth)
    }

    async fn accept_stream(&mut self) -> Result<Option<Box<dyn Stream>>, TransportError> {
        let auth = self.auth;
        Ok(self.streams.recv().await.map(|pipe| Box::new(MemoryStream { pipe, auth }) as Box<dyn Stream>))
    }
}

struct MemoryConnection {
    remote: SocketAddr,
    auth: Authenticated,
    streams: mpsc::Sender<DuplexStream>,
}

#[async_trait]
impl Connection for MemoryConnection {
    fn remote_addr(&self) -> SocketAddr {
        self.remote
    }

    async fn open(&self) -> Result<Box<dyn Stream>, TransportError> {
        let (ours, theirs) = tokio::io::duplex(STREAM_BUFFER);
        let closed = || TransportError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        self.streams.send(theirs).await.map_err(|_| closed())?;
        Ok(Box::new(MemoryStream { pipe: ours, auth: self.auth }))
    }
}

/// One end of a stream; finishing or dropping it closes it (each exchange has a pipe of its own).
struct MemoryStream {
    pipe: DuplexStream,
    auth: Authenticated,
}

impl Stream for MemoryStream {
    fn finish(self: Box<Self>) {}

    fn authenticated(&self) -> Option<Authenticated> {
        Some(self.auth)
    }
}

impl AsyncRead for MemoryStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.pipe).poll_read(cx, buf)
    }
}

impl AsyncWrite for MemoryStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.pipe).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.pipe).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.pipe).poll_shutdown(cx)
    }
}
