//! TLS 1.3 over TCP (rustls): the framing, socket pooling and tuning of [`crate::tcp`], encrypted, with
//! both ends proving their node id by certificate as over QUIC (`certs`).
//!
//! One TCP port serves tls and, where told to ([`TlsTransport::with_plain_tcp`]), plain tcp clients too:
//! a TLS client's first byte is 0x16 (a handshake record), a plain client's is the high byte of a frame's
//! length, which is 0 (frames are at most 4 KiB). Handshakes run in tasks of their own, at most
//! [`MAX_HANDSHAKES`] at once (beyond, clients wait in the kernel's backlog) and
//! `MAX_PENDING_PER_ADDRESS` (48) from one address; the first byte is awaited for the idle timeout (a pooled
//! plain socket sends it only with its first exchange), the handshake for the connect timeout. So a
//! client that connects and says nothing holds up no other, and a connection is handed over only once its
//! handshake completed.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use proto::NodeId;
use rustls::pki_types::ServerName;
use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::certs::{self, PinnedServer};
use crate::identity::SERVER_NAME;
use crate::pool::{Accepted, Dial, Pooled};
use crate::tcp::{dial, tune};
use crate::{
    Authenticated, BINDING_LABEL, Connection, Identity, Incoming, Listener, MAX_HANDSHAKES, Transport, TransportConfig,
    TransportError,
};

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;
/// Connections one address may have waiting to be handed over (for their first byte, which an idle pooled
/// plain socket sends only when it carries an exchange, or in their handshake): as many as a node serves
/// one address, so a host that connects and says nothing cannot take every slot from the others.
const MAX_PENDING_PER_ADDRESS: usize = 48;
/// What one read from the socket may take in. rustls reads at most 4 KiB at a time; buffered below it, a
/// read system call brings in several records instead of a fraction of one.
const READ_BUFFER: usize = 64 * 1024;

/// The TLS transport.
#[derive(Clone, Debug)]
pub struct TlsTransport {
    config: TransportConfig,
    identity: Identity,
    plain: bool,
}

impl TlsTransport {
    /// A TLS transport proving `identity`, as client and as server.
    pub fn new(config: TransportConfig, identity: Identity) -> Self {
        Self { config, identity, plain: false }
    }

    /// Its listener also takes plain tcp clients on the same port.
    pub fn with_plain_tcp(mut self) -> Self {
        self.plain = true;
        self
    }
}

#[async_trait]
impl Transport for TlsTransport {
    fn name(&self) -> &str {
        "tls"
    }

    fn also_serves(&self) -> Vec<String> {
        if self.plain { vec!["tcp".into()] } else { Vec::new() }
    }

    fn authenticates(&self) -> bool {
        true
    }

    async fn bind(&self, addr: SocketAddr) -> Result<Box<dyn Listener>, TransportError> {
        let bind_err = |source| TransportError::Bind { addr, source };
        let tls = certs::server_config(&self.identity).map_err(|e| bind_err(io::Error::other(e)))?;
        let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
        let local = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let (config, plain, handshakes, per_address) =
            (self.config.clone(), self.plain, JoinSet::new(), HashMap::new());
        Ok(Box::new(TlsServer { listener, local, config, acceptor, plain, handshakes, per_address }))
    }

    async fn connect(&self, addr: SocketAddr, expected: NodeId) -> Result<Arc<dyn Connection>, TransportError> {
        let verifier = PinnedServer::new(expected);
        let tls = certs::client_config(&self.identity, verifier.clone()).map_err(io::Error::other)?;
        let connector = TlsConnector::from(Arc::new(tls));
        let dial = TlsDial { addr, expected, config: self.config.clone(), connector, verifier };
        Ok(Arc::new(Pooled::connect(dial, addr, self.config.idle_timeout).await?))
    }
}

/// Exports this channel's [`Authenticated::binding`].
fn binding<D>(connection: &rustls::ConnectionCommon<D>) -> io::Result<[u8; 32]> {
    connection.export_keying_material([0u8; 32], BINDING_LABEL, None).map_err(io::Error::other)
}

struct TlsDial {
    addr: SocketAddr,
    expected: NodeId,
    config: TransportConfig,
    connector: TlsConnector,
    verifier: Arc<PinnedServer>,
}

#[async_trait]
impl Dial for TlsDial {
    type Socket = tokio_rustls::client::TlsStream<BufReader<TcpStream>>;

    async fn dial(&self) -> Result<(Self::Socket, Option<Authenticated>), TransportError> {
        let (addr, after) = (self.addr, self.config.connect_timeout);
        let socket = BufReader::with_capacity(READ_BUFFER, dial(addr, &self.config).await?);
        let name = ServerName::try_from(SERVER_NAME).map_err(io::Error::other)?;
        match tokio::time::timeout(after, self.connector.connect(name, socket)).await {
            Err(_) => Err(TransportError::Timeout { addr, after }),
            Ok(Err(_)) if self.verifier.mismatched() => {
                tracing::warn!(%addr, expected = %self.expected.short(), "peer's certificate does not match its announced id");
                Err(TransportError::IdentityMismatch { addr, expected: self.expected })
            }
            Ok(Err(e)) => Err(e.into()),
            Ok(Ok(tls)) => {
                let binding = binding(tls.get_ref().1)?;
                Ok((tls, Some(Authenticated { peer: self.expected, binding })))
            }
        }
    }
}

struct TlsServer {
    listener: TcpListener,
    local: SocketAddr,
    config: TransportConfig,
    acceptor: TlsAcceptor,
    plain: bool,
    /// Handshakes under way, each in its own task, and how many each address has.
    handshakes: JoinSet<(IpAddr, Option<Box<dyn Incoming>>)>,
    per_address: HashMap<IpAddr, usize>,
}

#[async_trait]
impl Listener for TlsServer {
    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    async fn accept(&mut self) -> Result<Box<dyn Incoming>, TransportError> {
        loop {
            tokio::select! {
                // Beyond MAX_HANDSHAKES pending, new clients wait in the kernel's backlog.
                accepted = self.listener.accept(), if self.handshakes.len() < MAX_HANDSHAKES => {
                    let (socket, remote) = accepted?;
                    let ip = remote.ip();
                    let from_ip = self.per_address.entry(ip).or_default();
                    if *from_ip >= MAX_PENDING_PER_ADDRESS {
                        tracing::debug!(peer = %remote, "too many connections pending from this address, refused");
                        continue;
                    }
                    *from_ip += 1;
                    tune(&socket, &self.config)?;
                    let (acceptor, plain, config) = (self.acceptor.clone(), self.plain, self.config.clone());
                    self.handshakes.spawn(async move {
                        let incoming = match handshake(socket, remote, acceptor, plain, &config).await {
                            Ok(incoming) => incoming,
                            Err(e) => {
                                tracing::debug!(peer = %remote, error = %e, "handshake failed");
                                None
                            }
                        };
                        (ip, incoming)
                    });
                }
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    let Ok((ip, incoming)) = done else { continue };
                    if let Some(count) = self.per_address.get_mut(&ip) {
                        *count -= 1;
                        if *count == 0 {
                            self.per_address.remove(&ip);
                        }
                    }
                    if let Some(incoming) = incoming {
                        return Ok(incoming);
                    }
                }
            }
        }
    }
}

/// Tells a TLS client from a plain one by its first byte (within the idle timeout) and completes a TLS
/// client's handshake (within the connect timeout); `None` for a plain client where plain ones are not
/// taken, or one that closed before its first byte.
async fn handshake(
    socket: TcpStream,
    remote: SocketAddr,
    acceptor: TlsAcceptor,
    plain: bool,
    config: &TransportConfig,
) -> io::Result<Option<Box<dyn Incoming>>> {
    let mut first = [0u8; 1];
    let timed_out = |what| io::Error::new(io::ErrorKind::TimedOut, what);
    let peeked = tokio::time::timeout(config.idle_timeout, socket.peek(&mut first)).await;
    if peeked.map_err(|_| timed_out("no first byte"))?? == 0 {
        return Ok(None);
    }
    if first[0] != TLS_HANDSHAKE {
        return Ok(plain.then(|| Box::new(Accepted::new(socket, remote, None)) as Box<dyn Incoming>));
    }
    let socket = BufReader::with_capacity(READ_BUFFER, socket);
    let accepted = tokio::time::timeout(config.connect_timeout, acceptor.accept(socket)).await;
    let tls = accepted.map_err(|_| timed_out("handshake"))??;
    let connection = tls.get_ref().1;
    let peer = certs::peer_id(connection.peer_certificates())
        .ok_or_else(|| io::Error::new(io::ErrorKind::PermissionDenied, "client sent no certificate"))?;
    let auth = Authenticated { peer, binding: binding(connection)? };
    Ok(Some(Box::new(Accepted::new(tls, remote, Some(auth)))))
}
