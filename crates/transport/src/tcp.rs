//! Plain TCP: the fastest on a clean LAN, but neither encrypted nor authenticated (content is verified by
//! hash in any case). Sockets are pooled per peer (`pool`).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use proto::NodeId;
use tokio::net::{TcpListener, TcpStream};

use crate::pool::{Accepted, Dial, Pooled};
use crate::{Authenticated, Connection, Incoming, Listener, Transport, TransportConfig, TransportError};

/// The TCP transport.
#[derive(Clone, Debug, Default)]
pub struct TcpTransport {
    config: TransportConfig,
}

impl TcpTransport {
    /// A TCP transport with these settings.
    pub fn new(config: TransportConfig) -> Self {
        Self { config }
    }
}

#[async_trait]
impl Transport for TcpTransport {
    fn name(&self) -> &str {
        "tcp"
    }

    fn authenticates(&self) -> bool {
        false
    }

    async fn bind(&self, addr: SocketAddr) -> Result<Box<dyn Listener>, TransportError> {
        let listener = TcpListener::bind(addr).await.map_err(|source| TransportError::Bind { addr, source })?;
        let local = listener.local_addr()?;
        Ok(Box::new(TcpServer { listener, local, config: self.config.clone() }))
    }

    async fn connect(&self, addr: SocketAddr, _expected: NodeId) -> Result<Arc<dyn Connection>, TransportError> {
        let dial = PlainDial { addr, config: self.config.clone() };
        Ok(Arc::new(Pooled::connect(dial, addr, self.config.idle_timeout).await?))
    }
}

struct PlainDial {
    addr: SocketAddr,
    config: TransportConfig,
}

#[async_trait]
impl Dial for PlainDial {
    type Socket = TcpStream;

    async fn dial(&self) -> Result<(TcpStream, Option<Authenticated>), TransportError> {
        Ok((dial(self.addr, &self.config).await?, None))
    }
}

/// A TCP socket to `addr`, tuned, within the connect timeout.
pub(crate) async fn dial(addr: SocketAddr, config: &TransportConfig) -> Result<TcpStream, TransportError> {
    let after = config.connect_timeout;
    let socket = tokio::time::timeout(after, TcpStream::connect(addr))
        .await
        .map_err(|_| TransportError::Timeout { addr, after })?
        .map_err(|e| TransportError::connect(addr, e))?;
    tune(&socket, config)?;
    Ok(socket)
}

struct TcpServer {
    listener: TcpListener,
    local: SocketAddr,
    config: TransportConfig,
}

#[async_trait]
impl Listener for TcpServer {
    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    async fn accept(&mut self) -> Result<Box<dyn Incoming>, TransportError> {
        let (socket, remote) = self.listener.accept().await?;
        tune(&socket, &self.config)?;
        Ok(Box::new(Accepted::new(socket, remote, None)))
    }
}

/// Socket options of every connection, dialled or accepted.
pub(crate) fn tune(socket: &TcpStream, config: &TransportConfig) -> io::Result<()> {
    // Request frames are small and answered at once: never hold them back for coalescing.
    socket.set_nodelay(true)?;
    match &config.tcp_congestion {
        Some(name) => set_congestion(socket, name),
        None => Ok(()),
    }
}

#[cfg(any(target_os = "linux", target_os = "freebsd"))]
fn set_congestion(socket: &TcpStream, name: &str) -> io::Result<()> {
    socket2::SockRef::from(socket).set_tcp_congestion(name.as_bytes())
}

/// Elsewhere the system's congestion control cannot be chosen per socket.
#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
fn set_congestion(_socket: &TcpStream, _name: &str) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "choosing the TCP congestion control needs Linux or FreeBSD"))
}
