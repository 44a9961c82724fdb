//! The UDP path: how large a datagram the route to a peer carries, and the socket of an endpoint.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use quinn::Endpoint;
use socket2::{Domain, Protocol, Socket, Type};

/// Path MTU discovery may grow packets up to this size where the path allows (jumbo-frame LANs);
/// elsewhere it settles at the path's real MTU. Not larger: quinn sends up to 10 datagrams in one GSO
/// call, the kernel refuses a call of over 64 KiB, and quinn-udp drops such a call silently (it takes
/// EMSGSIZE for a lost MTU probe). With 65,000 here every connection over loopback lost its first large
/// batch and waited a PTO: 125 ms for a first 256 KiB chunk instead of 2.6 ms.
pub(super) const GSO_PAYLOAD: u16 = 6_550;
/// Routes that carry datagrams at least this large (loopback: 65,536 bytes) send one datagram per call
/// instead, as large as the route takes, from the first packet on: one 64 KiB packet costs one packet's
/// work (encryption set-up, frames, acknowledgements, the kernel's per-packet path) where a GSO batch of
/// ten costs ten. On loopback this took QUIC alone from 790 to 1,070 MiB/s.
pub(super) const LARGE_ROUTE_PAYLOAD: u16 = 32 * 1024;
/// The largest UDP payload a client's endpoint takes: chunks come in datagrams as large as the route
/// carries. A server's takes [`GSO_PAYLOAD`]: it receives requests and acknowledgements only, and quinn
/// sizes an endpoint's receive buffer as this times 64 GRO segments times a batch of 32 (13 MB rather
/// than 133 MB of address space).
const MAX_UDP_PAYLOAD: u16 = 65_000;
/// The payload of a 1,500-byte IPv4 packet, assumed where the route's MTU cannot be read.
const ETHERNET_PAYLOAD: u16 = 1_472;
const IP_UDP_HEADERS: u16 = 20 + 8;
/// Every QUIC path carries datagrams of 1,200 bytes (RFC 9000, 14).
const QUIC_MIN_PAYLOAD: u16 = 1_200;
/// UDP socket buffers asked for.
const SOCKET_BUFFER: usize = 8 * 1024 * 1024;

/// The largest UDP payload the route to `peer` carries: the outgoing device's MTU (65,536 on loopback,
/// 1,500 on Ethernet) less the IP and UDP headers, for path MTU discovery to search up to. Searching
/// above it only sends probes that are lost, and a lost probe holds congestion window until declared
/// lost: a 33 KB probe behind the 15 KB initial window held up the first request for a whole PTO.
pub(super) fn route_payload(peer: SocketAddr) -> u16 {
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
    let socket = std::net::UdpSocket::bind(SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0))?;
    socket.connect(peer)?;
    let mtu = nix::sys::socket::getsockopt(&socket, nix::sys::socket::sockopt::IpMtu)?;
    Ok(u16::try_from(mtu).unwrap_or(u16::MAX))
}

#[cfg(not(target_os = "linux"))]
fn route_mtu(_peer: SocketAddr) -> io::Result<u16> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "route MTU is read on Linux only"))
}

/// A QUIC endpoint on `addr` that accepts packets as large as path MTU discovery may grow them.
pub(super) fn endpoint(addr: SocketAddr, server: Option<quinn::ServerConfig>) -> io::Result<Endpoint> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    // A burst of a fast sender overflows the default receive buffer (about 200 KiB) and every drop costs
    // a retransmission; the kernel caps these at net.core.rmem_max / wmem_max.
    socket.set_recv_buffer_size(SOCKET_BUFFER)?;
    socket.set_send_buffer_size(SOCKET_BUFFER)?;
    socket.bind(&addr.into())?;
    let mut config = quinn::EndpointConfig::default();
    let most = if server.is_some() { GSO_PAYLOAD } else { MAX_UDP_PAYLOAD };
    config.max_udp_payload_size(most).map_err(io::Error::other)?;
    Endpoint::new(config, server, socket.into(), Arc::new(quinn::TokioRuntime))
}
