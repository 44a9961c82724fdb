//! QUIC over UDP with quinn: one connection per peer, one stream per exchange, many exchanges at once.
//!
//! Identity is pinned as over [`crate::tls`] (`certs`): the client accepts a server only if the
//! BLAKE3 hash of its certificate is the node id the server announced, and the server learns the client's
//! node id from its certificate. ALPN names the protocol and its version ([`crate::ALPN`]).
//!
//! Tuning, for one download to fill a 1 Gbit/s x 50 ms path (a 6.25 MB bandwidth-delay product):
//! - a client's receive window is 16 MiB per stream (a whole chunk of the largest size can be in flight)
//!   and 64 MiB per connection (several chunks pipelined); a server's send window is 8 MiB per connection;
//! - our own congestion control ([`crate::congestion`]): a window of 1.5 bandwidth-delay products that
//!   random loss does not shrink (loss-based Cubic and NewReno collapse on Wi-Fi and VPN links; quinn's
//!   BBR keeps a whole BDP queued and overflows the router's queue);
//! - path MTU discovery searches up to the MTU of the route to the peer (read from the kernel), not
//!   beyond: probes larger than the path are lost and hold congestion window while in flight; and never
//!   above 6,550 bytes, so that quinn's batches of 10 datagrams fit one 64 KiB GSO send; except on routes
//!   of 32 KiB and more (loopback), which take one datagram per send, as large as the route, from the
//!   first packet on;
//! - a 100 ms initial RTT instead of 333 ms, so a lost handshake packet is resent after 0.3 s, not 1 s;
//! - GSO and GRO wherever quinn's UDP layer finds them (on by default), but on those large routes.
//!
//! What a peer can make us hold is bounded by us: a server takes requests only (a small receive window,
//! [`SERVER_STREAMS`] streams, none of its own toward the client), a client lets a server open no stream
//! at all, keep-alives come from the client only (so a server's idle timeout closes a silent client), and
//! a server completes at most [`crate::MAX_HANDSHAKES`] handshakes at once, asking clients to prove their address
//! (a Retry) once more than [`RETRY_ABOVE`] are under way, so forged Initial packets cost little and hold
//! no connection slot: a connection is handed to the node only once its handshake completed.

mod path;
mod settings;
mod stream;
#[cfg(test)]
mod tests;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use proto::NodeId;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{ConnectionError, Endpoint};
use rustls::pki_types::CertificateDer;
use tokio::sync::OnceCell;
use tokio::task::JoinSet;

use self::path::endpoint;
pub use self::settings::SERVER_STREAMS;
use self::settings::{Side, transport_config};
use self::stream::QuicStream;
use crate::certs::{self, PinnedServer};
use crate::identity::SERVER_NAME;
use crate::{
    Authenticated, BINDING_LABEL, Connection, Identity, Incoming, Listener, MAX_HANDSHAKES, Stream, Transport,
    TransportConfig, TransportError,
};

/// Beyond this many handshakes under way, a client must prove its address with a Retry first.
pub const RETRY_ABOVE: usize = 8;

/// The QUIC transport, proving `identity` as client and as server.
pub struct QuicTransport {
    config: TransportConfig,
    identity: Identity,
    client: OnceCell<Endpoint>,
}

impl QuicTransport {
    /// A QUIC transport with these settings.
    pub fn new(config: TransportConfig, identity: Identity) -> Self {
        Self { config, identity, client: OnceCell::new() }
    }

    fn server_config(&self) -> io::Result<quinn::ServerConfig> {
        let tls = certs::server_config(&self.identity).map_err(io::Error::other)?;
        let crypto = QuicServerConfig::try_from(tls).map_err(io::Error::other)?;
        Ok(quinn::ServerConfig::with_crypto(Arc::new(crypto)))
    }

    fn client_config(&self, verifier: Arc<PinnedServer>, server: SocketAddr) -> io::Result<quinn::ClientConfig> {
        let tls = certs::client_config(&self.identity, verifier).map_err(io::Error::other)?;
        let crypto = QuicClientConfig::try_from(tls).map_err(io::Error::other)?;
        let mut client = quinn::ClientConfig::new(Arc::new(crypto));
        client.transport_config(transport_config(Side::Client, self.config.idle_timeout, server));
        Ok(client)
    }

    /// A connection to the node `expected` at `addr`, its identity checked.
    async fn handshake(&self, addr: SocketAddr, expected: NodeId) -> Result<quinn::Connection, TransportError> {
        let verifier = PinnedServer::new(expected);
        let config = self.client_config(verifier.clone(), addr)?;
        let connecting =
            self.client_endpoint().await?.connect_with(config, addr, SERVER_NAME).map_err(io::Error::other)?;
        let after = self.config.connect_timeout;
        match tokio::time::timeout(after, connecting).await {
            Err(_) => Err(TransportError::Timeout { addr, after }),
            Ok(Err(_)) if verifier.mismatched() => {
                tracing::warn!(%addr, expected = %expected.short(), "peer's certificate does not match its announced id");
                Err(TransportError::IdentityMismatch { addr, expected })
            }
            Ok(Err(ConnectionError::TimedOut)) => Err(TransportError::Timeout { addr, after }),
            Ok(Err(e)) => Err(io::Error::other(e).into()),
            Ok(Ok(connection)) => Ok(connection),
        }
    }

    async fn client_endpoint(&self) -> io::Result<&Endpoint> {
        self.client.get_or_try_init(|| async { endpoint(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)), None) }).await
    }
}

/// Exports the connection's [`Authenticated::binding`].
fn binding(connection: &quinn::Connection) -> io::Result<[u8; 32]> {
    let mut binding = [0u8; 32];
    connection
        .export_keying_material(&mut binding, BINDING_LABEL, b"")
        .map_err(|_| io::Error::other("keying material cannot be exported"))?;
    Ok(binding)
}

#[async_trait]
impl Transport for QuicTransport {
    fn name(&self) -> &str {
        "quic"
    }

    fn authenticates(&self) -> bool {
        true
    }

    async fn bind(&self, addr: SocketAddr) -> Result<Box<dyn Listener>, TransportError> {
        let bind_err = |source| TransportError::Bind { addr, source };
        let server = self.server_config().map_err(bind_err)?;
        let endpoint = endpoint(addr, Some(server.clone())).map_err(bind_err)?;
        let local = endpoint.local_addr()?;
        let (handshake, idle) = (self.config.connect_timeout, self.config.idle_timeout);
        let handshakes = JoinSet::new();
        Ok(Box::new(QuicServer { endpoint, server, local, handshake, idle, handshakes }))
    }

    async fn connect(&self, addr: SocketAddr, expected: NodeId) -> Result<Arc<dyn Connection>, TransportError> {
        let connection = self.handshake(addr, expected).await?;
        let auth = Authenticated { peer: expected, binding: binding(&connection)? };
        Ok(Arc::new(QuicConnection { connection, auth }))
    }
}

struct QuicServer {
    endpoint: Endpoint,
    /// The TLS side of every connection; the transport settings are made per client (route MTU).
    server: quinn::ServerConfig,
    local: SocketAddr,
    handshake: Duration,
    idle: Duration,
    /// Handshakes under way, each in its own task, so a slow client holds up no other.
    handshakes: JoinSet<Option<(quinn::Connection, Authenticated)>>,
}

#[async_trait]
impl Listener for QuicServer {
    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The next client whose handshake completed: only then is it a connection (and takes a slot).
    async fn accept(&mut self) -> Result<Box<dyn Incoming>, TransportError> {
        loop {
            tokio::select! {
                incoming = self.endpoint.accept() => {
                    let incoming = incoming.ok_or_else(|| io::Error::other("endpoint closed"))?;
                    self.start_handshake(incoming);
                }
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some((connection, auth))) = done {
                        let remote = connection.remote_address();
                        return Ok(Box::new(QuicIncoming { remote, connection, auth, streams: 0 }));
                    }
                }
            }
        }
    }
}

impl QuicServer {
    /// Answers a client's first packet: a handshake in a task of its own, a Retry where many handshakes
    /// are under way and the client has not proven its address, or a refusal where too many are.
    fn start_handshake(&mut self, incoming: quinn::Incoming) {
        let under_way = self.handshakes.len();
        if under_way >= RETRY_ABOVE && !incoming.remote_address_validated() && incoming.may_retry() {
            let _ = incoming.retry();
            return;
        }
        if under_way >= MAX_HANDSHAKES {
            tracing::debug!(peer = %incoming.remote_address(), "too many handshakes under way, refused");
            incoming.refuse();
            return;
        }
        let remote = incoming.remote_address();
        let mut config = self.server.clone();
        config.transport_config(transport_config(Side::Server, self.idle, remote));
        let limit = self.handshake;
        self.handshakes.spawn(async move {
            let connecting = incoming.accept_with(Arc::new(config)).ok()?;
            let connection = match tokio::time::timeout(limit, connecting).await {
                Ok(Ok(connection)) => connection,
                Ok(Err(e)) => {
                    tracing::debug!(peer = %remote, error = %e, "handshake failed");
                    return None;
                }
                Err(_) => {
                    tracing::debug!(peer = %remote, "handshake timed out");
                    return None;
                }
            };
            let chain = connection.peer_identity()?.downcast::<Vec<CertificateDer<'static>>>().ok()?;
            let auth = Authenticated { peer: certs::peer_id(Some(&chain))?, binding: binding(&connection).ok()? };
            Some((connection, auth))
        });
    }
}

struct QuicIncoming {
    remote: SocketAddr,
    connection: quinn::Connection,
    auth: Authenticated,
    /// Streams accepted so far: each answer gets a lower priority than the one before.
    streams: i32,
}

#[async_trait]
impl Incoming for QuicIncoming {
    fn remote_addr(&self) -> SocketAddr {
        self.remote
    }

    fn authenticated(&self) -> Option<Authenticated> {
        Some(self.auth)
    }

    async fn accept_stream(&mut self) -> Result<Option<Box<dyn Stream>>, TransportError> {
        match self.connection.accept_bi().await {
            Ok((send, recv)) => {
                // Answers go out in the order asked, as over TCP, rather than round-robin: each chunk
                // then arrives at the link's full rate, so the downloader's rate estimates and timeouts
                // hold, and the first chunks are verified (and shared) first.
                self.streams = self.streams.saturating_add(1);
                send.set_priority(-self.streams).map_err(io::Error::other)?;
                Ok(Some(Box::new(QuicStream::new((send, recv), self.auth))))
            }
            Err(ConnectionError::ApplicationClosed(_) | ConnectionError::LocallyClosed | ConnectionError::TimedOut) => {
                Ok(None)
            }
            Err(e) => Err(io::Error::other(e).into()),
        }
    }
}

struct QuicConnection {
    connection: quinn::Connection,
    auth: Authenticated,
}

#[async_trait]
impl Connection for QuicConnection {
    fn remote_addr(&self) -> SocketAddr {
        self.connection.remote_address()
    }

    async fn open(&self) -> Result<Box<dyn Stream>, TransportError> {
        let pair = self.connection.open_bi().await.map_err(io::Error::other)?;
        Ok(Box::new(QuicStream::new(pair, self.auth)))
    }
}
