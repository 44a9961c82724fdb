//! QUIC over UDP with quinn: one connection per peer, one stream per exchange, many exchanges at once.
//!
//! Identity is pinned: the client accepts a server only if the BLAKE3 hash of its certificate is the node
//! id the server announced (there is no "accept any certificate" path), and the TLS handshake proves the
//! server holds the certificate's key. ALPN names the protocol and its version ([`ALPN`]).
//!
//! Tuning, for one download to fill a 1 Gbit/s x 50 ms path (a 6.25 MB bandwidth-delay product):
//! - a client's receive window is 16 MiB per stream (a whole chunk of the largest size can be in flight)
//!   and 64 MiB per connection (several chunks pipelined); a server's send window is 8 MiB per connection;
//! - our own congestion control ([`crate::congestion`]): a window of 1.5 bandwidth-delay products that
//!   random loss does not shrink (loss-based Cubic and NewReno collapse on Wi-Fi and VPN links; quinn's
//!   BBR keeps a whole BDP queued and overflows the router's queue);
//! - path MTU discovery searches up to the MTU of the route to the peer (read from the kernel), not
//!   beyond: probes larger than the path are lost and hold congestion window while in flight; and never
//!   above 6,550 bytes, so that quinn's batches of 10 datagrams fit one 64 KiB GSO send;
//! - a 100 ms initial RTT instead of 333 ms, so a lost handshake packet is resent after 0.3 s, not 1 s;
//! - GSO and GRO wherever quinn's UDP layer finds them (on by default; nothing to configure).
//!
//! What a peer can make us hold is bounded by us: a server takes requests only (a small receive window,
//! [`SERVER_STREAMS`] streams, none of its own toward the client), a client lets a server open no stream
//! at all, keep-alives come from the client only (so a server's idle timeout closes a silent client), and
//! a server completes at most [`MAX_HANDSHAKES`] handshakes at once, asking clients to prove their address
//! (a Retry) once more than [`RETRY_ABOVE`] are under way, so forged Initial packets cost little and hold
//! no connection slot: a connection is handed to the node only once its handshake completed.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use proto::{NodeId, TransportKind};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{ConnectionError, Endpoint, IdleTimeout, VarInt};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OnceCell;
use tokio::task::JoinSet;

use crate::congestion::BdpConfig;
use crate::identity::SERVER_NAME;
use crate::{
    BoxFuture, Connection, Identity, Incoming, Listener, Stream, Transport, TransportConfig, TransportError, node_id_of,
};

/// The application protocol and its version, checked in the TLS handshake.
pub const ALPN: &[u8] = b"p2pnode/1";
const STREAM_WINDOW: u32 = 16 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 64 * 1024 * 1024;
/// A server's send window: what one connection may have written and not yet acknowledged.
const SERVER_SEND_WINDOW: u64 = 8 * 1024 * 1024;
/// A server receives request frames only (at most 4 KiB each).
const SERVER_STREAM_WINDOW: u32 = 64 * 1024;
const SERVER_CONNECTION_WINDOW: u32 = 256 * 1024;
/// Exchanges a client may run at once on one connection to a server (a download keeps at most 16 chunk
/// requests in flight to one peer).
pub const SERVER_STREAMS: u32 = 16;
/// Handshakes a server runs at once; further clients are refused until one completes or times out.
pub const MAX_HANDSHAKES: usize = 64;
/// Beyond this many handshakes under way, a client must prove its address with a Retry first.
pub const RETRY_ABOVE: usize = 8;
/// Path MTU discovery may grow packets up to this size where the path allows (loopback, jumbo-frame
/// LANs); elsewhere it settles at the path's real MTU. Not larger: quinn sends up to 10 datagrams in one
/// GSO call, the kernel refuses a call of over 64 KiB, and quinn-udp drops such a call silently (it takes
/// EMSGSIZE for a lost MTU probe). With 65,000 here every connection over loopback lost its first large
/// batch and waited a PTO: 125 ms for a first 256 KiB chunk instead of 2.6 ms.
const MAX_UDP_PAYLOAD: u16 = 6_550;
/// The payload of a 1,500-byte IPv4 packet, assumed where the route's MTU cannot be read.
const ETHERNET_PAYLOAD: u16 = 1_472;
const IP_UDP_HEADERS: u16 = 20 + 8;
/// Every QUIC path carries datagrams of 1,200 bytes (RFC 9000, 14).
const QUIC_MIN_PAYLOAD: u16 = 1_200;
/// The round trip assumed until the handshake measures one: the first retransmission of a lost handshake
/// packet waits three of these. RFC 9002's 333 ms suits the Internet; on a LAN or VPN a lost packet of the
/// handshake then cost a whole second.
const INITIAL_RTT: Duration = Duration::from_millis(100);
/// UDP socket buffers asked for.
const SOCKET_BUFFER: usize = 8 * 1024 * 1024;

/// The QUIC transport. A node that serves needs its [`Identity`]; one that only downloads does not.
pub struct QuicTransport {
    config: TransportConfig,
    identity: Option<Identity>,
    client: OnceCell<Endpoint>,
}

impl QuicTransport {
    /// A QUIC transport with these settings.
    pub fn new(config: TransportConfig, identity: Option<Identity>) -> Self {
        Self { config, identity, client: OnceCell::new() }
    }

    fn server_config(&self) -> io::Result<quinn::ServerConfig> {
        let identity = self.identity.as_ref().ok_or_else(|| io::Error::other("a QUIC server needs an identity"))?;
        let mut tls = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(vec![identity.cert()], identity.key())
            .map_err(io::Error::other)?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let crypto = QuicServerConfig::try_from(tls).map_err(io::Error::other)?;
        Ok(quinn::ServerConfig::with_crypto(Arc::new(crypto)))
    }

    fn client_config(&self, verifier: Arc<PinnedVerifier>, server: SocketAddr) -> io::Result<quinn::ClientConfig> {
        let mut tls = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(io::Error::other)?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let crypto = QuicClientConfig::try_from(tls).map_err(io::Error::other)?;
        let mut client = quinn::ClientConfig::new(Arc::new(crypto));
        client.transport_config(transport_config(Side::Client, self.config.idle_timeout, server));
        Ok(client)
    }

    /// A connection to the node `expected` at `addr`, its identity checked.
    async fn handshake(&self, addr: SocketAddr, expected: NodeId) -> Result<quinn::Connection, TransportError> {
        let verifier = Arc::new(PinnedVerifier { expected, provider: provider(), mismatch: AtomicBool::new(false) });
        let config = self.client_config(verifier.clone(), addr)?;
        let connecting =
            self.client_endpoint().await?.connect_with(config, addr, SERVER_NAME).map_err(io::Error::other)?;
        let after = self.config.connect_timeout;
        match tokio::time::timeout(after, connecting).await {
            Err(_) => Err(TransportError::Timeout { addr, after }),
            Ok(Err(_)) if verifier.mismatch.load(Ordering::Relaxed) => {
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

/// Which end of a connection a configuration is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// The settings of a connection to `peer` (see the module's doc); idle connections close after `idle`.
fn transport_config(side: Side, idle: Duration, peer: SocketAddr) -> Arc<quinn::TransportConfig> {
    let mut mtu = quinn::MtuDiscoveryConfig::default();
    mtu.upper_bound(route_payload(peer));
    let mut t = quinn::TransportConfig::default();
    match side {
        // A client reads chunks: large receive windows; it accepts no stream from the server.
        Side::Client => t
            .stream_receive_window(VarInt::from_u32(STREAM_WINDOW))
            .receive_window(VarInt::from_u32(CONNECTION_WINDOW))
            .send_window(u64::from(SERVER_CONNECTION_WINDOW))
            .max_concurrent_bidi_streams(VarInt::from_u32(0))
            .keep_alive_interval(Some(idle / 3)),
        // A server reads small requests and sends chunks; it never keeps a silent client alive.
        Side::Server => t
            .stream_receive_window(VarInt::from_u32(SERVER_STREAM_WINDOW))
            .receive_window(VarInt::from_u32(SERVER_CONNECTION_WINDOW))
            .send_window(SERVER_SEND_WINDOW)
            .max_concurrent_bidi_streams(VarInt::from_u32(SERVER_STREAMS))
            .keep_alive_interval(None),
    };
    t.max_concurrent_uni_streams(VarInt::from_u32(0))
        .initial_rtt(INITIAL_RTT)
        .max_idle_timeout(IdleTimeout::try_from(idle).ok())
        .congestion_controller_factory(Arc::new(BdpConfig::default()))
        .mtu_discovery_config(Some(mtu));
    Arc::new(t)
}

/// The largest UDP payload the route to `peer` carries: the outgoing device's MTU (65,536 on loopback,
/// 1,500 on Ethernet) less the IP and UDP headers, for path MTU discovery to search up to. Searching
/// above it only sends probes that are lost, and a lost probe holds congestion window until declared
/// lost: a 33 KB probe behind the 15 KB initial window held up the first request for a whole PTO.
fn route_payload(peer: SocketAddr) -> u16 {
    match route_mtu(peer) {
        Ok(mtu) => mtu.saturating_sub(IP_UDP_HEADERS).clamp(QUIC_MIN_PAYLOAD, MAX_UDP_PAYLOAD),
        Err(e) => {
            tracing::debug!(%peer, error = %e, "route MTU unknown; assuming Ethernet's");
            ETHERNET_PAYLOAD
        }
    }
}

/// The MTU of the route the kernel would take to `peer`.
#[cfg(target_os = "linux")]
fn route_mtu(peer: SocketAddr) -> io::Result<u16> {
    let socket = std::net::UdpSocket::bind(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0))?;
    socket.connect(peer)?;
    let mtu = nix::sys::socket::getsockopt(&socket, nix::sys::socket::sockopt::IpMtu)?;
    Ok(u16::try_from(mtu).unwrap_or(u16::MAX))
}

#[cfg(not(target_os = "linux"))]
fn route_mtu(_peer: SocketAddr) -> io::Result<u16> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "route MTU is read on Linux only"))
}

/// A QUIC endpoint on `addr` that accepts packets as large as path MTU discovery may grow them.
fn endpoint(addr: SocketAddr, server: Option<quinn::ServerConfig>) -> io::Result<Endpoint> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    // A burst of a fast sender overflows the default receive buffer (about 200 KiB) and every drop costs
    // a retransmission; the kernel caps these at net.core.rmem_max / wmem_max.
    socket.set_recv_buffer_size(SOCKET_BUFFER)?;
    socket.set_send_buffer_size(SOCKET_BUFFER)?;
    socket.bind(&addr.into())?;
    let mut config = quinn::EndpointConfig::default();
    config.max_udp_payload_size(MAX_UDP_PAYLOAD).map_err(io::Error::other)?;
    Endpoint::new(config, server, socket.into(), Arc::new(quinn::TokioRuntime))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Transport for QuicTransport {
    fn kind(&self) -> TransportKind {
        TransportKind::Quic
    }

    fn bind(&self, addr: SocketAddr) -> BoxFuture<'_, Result<Box<dyn Listener>, TransportError>> {
        Box::pin(async move {
            let bind_err = |source| TransportError::Bind { addr, source };
            let server = self.server_config().map_err(bind_err)?;
            let endpoint = endpoint(addr, Some(server.clone())).map_err(bind_err)?;
            let local = endpoint.local_addr()?;
            let (handshake, idle) = (self.config.connect_timeout, self.config.idle_timeout);
            let handshakes = JoinSet::new();
            Ok(Box::new(QuicServer { endpoint, server, local, handshake, idle, handshakes }) as Box<dyn Listener>)
        })
    }

    fn connect(
        &self,
        addr: SocketAddr,
        expected: NodeId,
    ) -> BoxFuture<'_, Result<Arc<dyn Connection>, TransportError>> {
        Box::pin(async move {
            let connection = self.handshake(addr, expected).await?;
            Ok(Arc::new(QuicConnection { connection }) as Arc<dyn Connection>)
        })
    }
}

/// Accepts a server only if its certificate hashes to the expected node id, and checks the handshake
/// signatures with the certificate's key.
#[derive(Debug)]
struct PinnedVerifier {
    expected: NodeId,
    provider: Arc<CryptoProvider>,
    mismatch: AtomicBool,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if node_id_of(end_entity) == self.expected {
            return Ok(ServerCertVerified::assertion());
        }
        self.mismatch.store(true, Ordering::Relaxed);
        Err(rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
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
    handshakes: JoinSet<Option<quinn::Connection>>,
}

impl Listener for QuicServer {
    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The next client whose handshake completed: only then is it a connection (and takes a slot).
    fn accept(&mut self) -> BoxFuture<'_, Result<Box<dyn Incoming>, TransportError>> {
        Box::pin(async move {
            loop {
                tokio::select! {
                    incoming = self.endpoint.accept() => {
                        let incoming = incoming.ok_or_else(|| io::Error::other("endpoint closed"))?;
                        self.start_handshake(incoming);
                    }
                    Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                        if let Ok(Some(connection)) = done {
                            let remote = connection.remote_address();
                            return Ok(Box::new(QuicIncoming { remote, connection, streams: 0 }) as Box<dyn Incoming>);
                        }
                    }
                }
            }
        })
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
            match tokio::time::timeout(limit, connecting).await {
                Ok(Ok(connection)) => Some(connection),
                Ok(Err(e)) => {
                    tracing::debug!(peer = %remote, error = %e, "handshake failed");
                    None
                }
                Err(_) => {
                    tracing::debug!(peer = %remote, "handshake timed out");
                    None
                }
            }
        });
    }
}

struct QuicIncoming {
    remote: SocketAddr,
    connection: quinn::Connection,
    /// Streams accepted so far: each answer gets a lower priority than the one before.
    streams: i32,
}

impl Incoming for QuicIncoming {
    fn remote_addr(&self) -> SocketAddr {
        self.remote
    }

    fn accept_stream(&mut self) -> BoxFuture<'_, Result<Option<Box<dyn Stream>>, TransportError>> {
        Box::pin(async move {
            match self.connection.accept_bi().await {
                Ok((send, recv)) => {
                    // Answers go out in the order asked, as over TCP, rather than round-robin: each chunk
                    // then arrives at the link's full rate, so the downloader's rate estimates and timeouts
                    // hold, and the first chunks are verified (and shared) first.
                    self.streams = self.streams.saturating_add(1);
                    send.set_priority(-self.streams).map_err(io::Error::other)?;
                    Ok(Some(Box::new(QuicStream { send, recv, finished: false }) as Box<dyn Stream>))
                }
                Err(
                    ConnectionError::ApplicationClosed(_) | ConnectionError::LocallyClosed | ConnectionError::TimedOut,
                ) => Ok(None),
                Err(e) => Err(io::Error::other(e).into()),
            }
        })
    }
}

struct QuicConnection {
    connection: quinn::Connection,
}

impl Connection for QuicConnection {
    fn remote_addr(&self) -> SocketAddr {
        self.connection.remote_address()
    }

    fn open(&self) -> BoxFuture<'_, Result<Box<dyn Stream>, TransportError>> {
        Box::pin(async move {
            let (send, recv) = self.connection.open_bi().await.map_err(io::Error::other)?;
            Ok(Box::new(QuicStream { send, recv, finished: false }) as Box<dyn Stream>)
        })
    }
}

/// One bidirectional QUIC stream. Finishing it ends our side cleanly; dropping it unfinished resets it,
/// so the peer sees an abandoned exchange as an error, never as a short clean one.
struct QuicStream {
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    finished: bool,
}

impl Stream for QuicStream {
    fn finish(mut self: Box<Self>) {
        self.finished = true;
        let _ = self.send.finish();
    }
}

impl Drop for QuicStream {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.send.reset(VarInt::from_u32(0));
            let _ = self.recv.stop(VarInt::from_u32(0));
        }
    }
}

impl AsyncRead for QuicStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.recv).poll_read(cx, buf)
    }
}

impl AsyncWrite for QuicStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.send).poll_write(cx, buf).map_err(io::Error::from)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.send).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.send).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    /// Over loopback path MTU discovery grows packets to [`MAX_UDP_PAYLOAD`]; quinn's GSO batches of them
    /// must still be sent, not dropped and counted lost.
    #[tokio::test]
    async fn large_packets_over_loopback_are_not_lost() {
        const LEN: usize = 8 << 20;
        let identity = Identity::generate().expect("identity");
        let id = identity.node_id();
        let server = QuicTransport::new(TransportConfig::default(), Some(identity));
        let mut listener = server.bind((Ipv4Addr::LOCALHOST, 0).into()).await.expect("bind");
        let addr = listener.local_addr();
        let reader = tokio::spawn(async move {
            let mut incoming = listener.accept().await.expect("accept");
            let mut stream = incoming.accept_stream().await.expect("stream").expect("a stream");
            let mut got = Vec::new();
            stream.read_to_end(&mut got).await.expect("read");
            got.len()
        });
        let client = QuicTransport::new(TransportConfig::default(), None);
        let connection = client.handshake(addr, id).await.expect("connect");
        let (mut send, _recv) = connection.open_bi().await.expect("stream");
        send.write_all(&vec![7u8; LEN]).await.expect("write");
        send.finish().expect("finish");
        assert_eq!(reader.await.expect("reader"), LEN);
        let path = connection.stats().path;
        assert!(path.current_mtu > ETHERNET_PAYLOAD, "MTU stayed at {}", path.current_mtu);
        // The bug this guards against lost every large batch; a loaded machine may still drop a few datagrams.
        let sent = connection.stats().udp_tx.datagrams;
        assert!(
            path.lost_packets * 100 <= sent,
            "{} of {sent} packets lost over loopback (MTU {})",
            path.lost_packets,
            path.current_mtu
        );
    }
    /// A node's server and a client connected to it: the listener is kept (handshakes complete only while
    /// it accepts), and the accepted connection is held without taking any stream from it.
    async fn connected() -> (quinn::Connection, Box<dyn Incoming>) {
        let identity = Identity::generate().expect("identity");
        let id = identity.node_id();
        let server = QuicTransport::new(TransportConfig::default(), Some(identity));
        let mut listener = server.bind((Ipv4Addr::LOCALHOST, 0).into()).await.expect("bind");
        let addr = listener.local_addr();
        let client = QuicTransport::new(TransportConfig::default(), None);
        let (connection, incoming) = tokio::join!(client.handshake(addr, id), listener.accept());
        (connection.expect("connect"), incoming.expect("accept"))
    }

    /// A client accepts no stream from a server, so a hostile server cannot fill a downloader's memory
    /// with data nobody asked for.
    #[tokio::test]
    async fn a_server_cannot_open_streams_toward_its_client() {
        let identity = Identity::generate().expect("identity");
        let id = identity.node_id();
        let server = QuicTransport::new(TransportConfig::default(), Some(identity));
        let endpoint =
            endpoint((Ipv4Addr::LOCALHOST, 0).into(), Some(server.server_config().expect("config"))).expect("endpoint");
        let addr = endpoint.local_addr().expect("addr");
        let client = QuicTransport::new(TransportConfig::default(), None);
        let accepted = async { endpoint.accept().await.expect("incoming").await.expect("handshake") };
        let (_client, toward_client) = tokio::join!(client.handshake(addr, id), accepted);
        let wait = Duration::from_millis(500);
        assert!(tokio::time::timeout(wait, toward_client.open_bi()).await.is_err(), "a bidirectional stream opened");
        assert!(tokio::time::timeout(wait, toward_client.open_uni()).await.is_err(), "a unidirectional stream opened");
    }

    /// Streams a server has not accepted hold at most its own small receive window, however much the
    /// client pushes on however many of them.
    #[tokio::test]
    async fn unaccepted_streams_hold_at_most_the_servers_window() {
        let (connection, _held) = connected().await;
        let mut pushed = 0;
        let mut streams = Vec::new();
        for _ in 0..SERVER_STREAMS {
            let (mut send, recv) = connection.open_bi().await.expect("stream");
            let junk = vec![0u8; 64 * 1024];
            while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(200), send.write(&junk)).await {
                pushed += n;
            }
            streams.push((send, recv));
        }
        assert!(pushed <= SERVER_CONNECTION_WINDOW as usize, "{pushed} bytes buffered at the server");
    }
    /// Clients that send an Initial and never complete the handshake (forged first packets, hundreds of
    /// them from one address) hold up no genuine client: the server answers them with a Retry once a few
    /// handshakes are under way, and the genuine client's connection is the next one accepted.
    #[tokio::test]
    async fn forged_initials_hold_up_no_genuine_client() {
        let identity = Identity::generate().expect("identity");
        let id = identity.node_id();
        let server = QuicTransport::new(TransportConfig::default(), Some(identity));
        let mut listener = server.bind((Ipv4Addr::LOCALHOST, 0).into()).await.expect("bind");
        let addr = listener.local_addr();
        let accepted = tokio::spawn(async move { listener.accept().await.map(|incoming| incoming.remote_addr()) });
        forge_initials(&server, addr, 200).await;
        let client = QuicTransport::new(TransportConfig::default(), None);
        let _connection = client.handshake(addr, id).await.expect("the genuine client connects");
        let first = accepted.await.expect("accept task").expect("accepted");
        let genuine = client.client_endpoint().await.and_then(|e| e.local_addr()).expect("client endpoint");
        assert_eq!(first.port(), genuine.port(), "the first connection accepted is the genuine client's");
    }

    /// Sends `count` first packets of handshakes, each from a client that then goes silent.
    async fn forge_initials(transport: &QuicTransport, server: SocketAddr, count: usize) {
        let socket = tokio::net::UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 5), 0)).await.expect("forger socket");
        let mut forger = quinn_proto::Endpoint::new(Arc::default(), None, false, None);
        let verifier =
            Arc::new(PinnedVerifier { expected: NodeId([0; 32]), provider: provider(), mismatch: false.into() });
        let now = std::time::Instant::now();
        for _ in 0..count {
            let config = transport.client_config(verifier.clone(), server).expect("client config");
            let (_, mut connection) = forger.connect(now, config, server, SERVER_NAME).expect("initial");
            let mut packet = Vec::new();
            let transmit = connection.poll_transmit(now, 1, &mut packet).expect("an initial packet");
            socket.send_to(&packet[..transmit.size], server).await.expect("send");
        }
    }
}
