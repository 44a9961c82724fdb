//! UDP broadcast discovery: announcements to every IPv4 interface's broadcast address and to static peers,
//! queries answered by unicast.
//!
//! Two sockets: the shared one is bound to the discovery port with `SO_REUSEADDR` and `SO_REUSEPORT`, so
//! several nodes on one host all receive every broadcast; the node's own one (an ephemeral port) sends
//! everything and receives the answers to its queries, which a shared port could hand to another node on
//! the same host. A node that only asks (`p2pnode ls`, `get`) binds no shared socket at all.

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use async_trait::async_trait;
use proto::{GroupKey, MAX_DATAGRAM, NodeId};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

pub use crate::datagrams::DatagramDiscovery;
use crate::datagrams::Medium;

/// The default discovery port.
pub const DEFAULT_PORT: u16 = 5000;
/// Broadcast on the loopback network, so nodes on one host find each other even with no network up.
const LOOPBACK_BROADCAST: Ipv4Addr = Ipv4Addr::new(127, 255, 255, 255);

/// How to discover.
#[derive(Clone, Debug)]
pub struct UdpConfig {
    /// This node's id: its own announcements are ignored and its queries name it.
    pub local: NodeId,
    /// The discovery port of the LAN.
    pub port: u16,
    /// Whether to bind the discovery port and hear announcements (a serving node), or only to query.
    pub listen: bool,
    /// How often to announce.
    pub interval: Duration,
    /// Where to broadcast; `None` means every IPv4 interface's broadcast address plus loopback.
    pub broadcast: Option<Vec<Ipv4Addr>>,
    /// Discovery addresses of nodes beyond broadcast reach (other subnets, VPNs), sent to by unicast.
    pub static_peers: Vec<SocketAddr>,
    /// The private group whose members alone this node sees and is seen by (sealed datagrams).
    pub group: Option<GroupKey>,
}

/// Why discovery could not start.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The discovery port could not be bound; another program (not a p2pnode) holds it without sharing.
    #[error("cannot bind discovery port {port}: {source}")]
    Bind {
        /// The port.
        port: u16,
        /// The cause.
        source: io::Error,
    },
}

/// Binds the sockets and starts discovery (within a tokio runtime).
pub fn start(config: UdpConfig) -> Result<DatagramDiscovery, DiscoveryError> {
    let bind_err = |source| DiscoveryError::Bind { port: config.port, source };
    let shared = if config.listen { Some(bind(config.port, true).map_err(bind_err)?) } else { None };
    let own = bind(0, false).map_err(bind_err)?;
    let (broadcast, port) = (config.broadcast.clone(), config.port);
    let medium = Udp { shared, own, broadcast, port, bufs: Box::new(([0; MAX_DATAGRAM + 1], [0; MAX_DATAGRAM + 1])) };
    Ok(DatagramDiscovery::start(medium, config.local, config.interval, config.static_peers, config.group.as_ref()))
}

/// The two sockets, and where to broadcast (see [`UdpConfig::broadcast`]) to which port.
struct Udp {
    shared: Option<UdpSocket>,
    own: UdpSocket,
    broadcast: Option<Vec<Ipv4Addr>>,
    port: u16,
    bufs: Box<([u8; MAX_DATAGRAM + 1], [u8; MAX_DATAGRAM + 1])>,
}

#[async_trait]
impl Medium for Udp {
    async fn recv(&mut self) -> io::Result<(Vec<u8>, SocketAddr)> {
        let (shared_buf, own_buf) = &mut *self.bufs;
        tokio::select! {
            received = recv(self.shared.as_ref(), shared_buf) => received.map(|(n, from)| (shared_buf[..n].to_vec(), from)),
            received = self.own.recv_from(own_buf) => received.map(|(n, from)| (own_buf[..n].to_vec(), from)),
        }
    }

    async fn broadcast(&self, bytes: &[u8]) {
        // Listed at every send: interfaces come and go (a laptop joins Wi-Fi after the node started).
        for ip in broadcast_targets(self.broadcast.as_deref()) {
            self.send_to(bytes, SocketAddrV4::new(ip, self.port).into()).await;
        }
    }

    async fn send_to(&self, bytes: &[u8], to: SocketAddr) {
        if let Err(e) = self.own.send_to(bytes, to).await {
            tracing::debug!(%to, error = %e, "discovery send failed");
        }
    }
}

/// Sends `bytes` from `socket` to the discovery `port` of each broadcast address (`broadcast`, or every
/// interface's): for a datagram of another protocol on the discovery port, such as a pairing beacon.
pub async fn broadcast_to(socket: &UdpSocket, bytes: &[u8], port: u16, broadcast: Option<&[Ipv4Addr]>) {
    for ip in broadcast_targets(broadcast) {
        if let Err(e) = socket.send_to(bytes, SocketAddrV4::new(ip, port)).await {
            tracing::debug!(%ip, error = %e, "broadcast failed");
        }
    }
}

/// A socket that hears what is broadcast to the discovery `port` (shared with the nodes of this host), or
/// with `port` 0 one to send broadcasts from.
pub fn socket(port: u16) -> io::Result<UdpSocket> {
    bind(port, port != 0)
}

/// The broadcast addresses to send to: the configured ones, or those of every IPv4 interface found by
/// listing interfaces (never by resolving the host name, which fails on many laptops), plus loopback's.
fn broadcast_targets(configured: Option<&[Ipv4Addr]>) -> BTreeSet<Ipv4Addr> {
    if let Some(list) = configured {
        return list.iter().copied().collect();
    }
    let mut targets = BTreeSet::from([LOOPBACK_BROADCAST]);
    match if_addrs::get_if_addrs() {
        Ok(ifaces) => targets.extend(ifaces.into_iter().filter_map(|i| match i.addr {
            if_addrs::IfAddr::V4(v4) => v4.broadcast,
            if_addrs::IfAddr::V6(_) => None,
        })),
        Err(e) => tracing::warn!(error = %e, "cannot list network interfaces"),
    }
    targets
}

/// A UDP socket on `port` of every IPv4 address, allowed to broadcast; `shared` lets other nodes on this
/// host bind the same port.
fn bind(port: u16, shared: bool) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    if shared {
        // Windows shares a port with SO_REUSEADDR alone; Unix needs SO_REUSEPORT as well.
        socket.set_reuse_address(true)?;
        #[cfg(unix)]
        socket.set_reuse_port(true)?;
    }
    socket.set_broadcast(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port).into())?;
    UdpSocket::from_std(socket.into())
}

async fn recv(socket: Option<&UdpSocket>, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    match socket {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}
