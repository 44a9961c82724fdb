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

use proto::{Announcement, Datagram, MAX_DATAGRAM, NodeId};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use crate::{BoxFuture, Discovery, PeerCache, PeerEvent};

/// The default discovery port.
pub const DEFAULT_PORT: u16 = 5000;
/// Broadcast on the loopback network, so nodes on one host find each other even with no network up.
const LOOPBACK_BROADCAST: Ipv4Addr = Ipv4Addr::new(127, 255, 255, 255);
/// Pending commands and undelivered events; a full event queue holds the socket loop back.
const QUEUE: usize = 256;

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

/// A running UDP discovery; dropping it stops the background task.
#[derive(Debug)]
pub struct UdpDiscovery {
    commands: mpsc::Sender<Command>,
    events: mpsc::Receiver<PeerEvent>,
}

#[derive(Debug)]
enum Command {
    Announce(Box<Announcement>),
    Query,
}

impl UdpDiscovery {
    /// Binds the sockets and starts the background task (within a tokio runtime).
    pub fn start(config: UdpConfig) -> Result<Self, DiscoveryError> {
        let bind_err = |source| DiscoveryError::Bind { port: config.port, source };
        let shared = if config.listen { Some(bind(config.port, true).map_err(bind_err)?) } else { None };
        let own = bind(0, false).map_err(bind_err)?;
        let (commands, rx) = mpsc::channel(QUEUE);
        let (tx, events) = mpsc::channel(QUEUE);
        let cache = PeerCache::new(config.local);
        let task = Task { config, shared, own, cache, record: None, commands: rx, events: tx };
        tokio::spawn(task.run());
        Ok(Self { commands, events })
    }

    fn send(&self, command: Command) {
        // A full queue means the task is far behind; a lost announce or query is repeated at the next
        // interval, so dropping it is harmless.
        let _ = self.commands.try_send(command);
    }
}

impl Discovery for UdpDiscovery {
    fn announce(&self, record: Announcement) {
        self.send(Command::Announce(Box::new(record)));
    }

    fn query(&self) {
        self.send(Command::Query);
    }

    fn next_event(&mut self) -> BoxFuture<'_, Option<PeerEvent>> {
        Box::pin(self.events.recv())
    }
}

/// The background task: owns the sockets and the cache.
struct Task {
    config: UdpConfig,
    shared: Option<UdpSocket>,
    own: UdpSocket,
    cache: PeerCache,
    record: Option<Announcement>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<PeerEvent>,
}

impl Task {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(self.config.interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let (mut shared_buf, mut own_buf) = ([0u8; MAX_DATAGRAM + 1], [0u8; MAX_DATAGRAM + 1]);
        loop {
            let deadline = self.cache.next_deadline().map(Instant::from_std);
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Announce(record)) => {
                        self.record = Some(*record);
                        self.announce().await;
                    }
                    Some(Command::Query) => self.query().await,
                    None => return,
                },
                received = recv(self.shared.as_ref(), &mut shared_buf) => self.on_datagram(received, &shared_buf).await,
                received = self.own.recv_from(&mut own_buf) => self.on_datagram(received, &own_buf).await,
                _ = tick.tick() => {
                    self.announce().await;
                    self.query_static().await;
                }
                _ = sleep_until(deadline) => {
                    for event in self.cache.expire(std::time::Instant::now()) {
                        self.emit(event).await;
                    }
                }
            }
        }
    }

    async fn on_datagram(&mut self, received: io::Result<(usize, SocketAddr)>, buf: &[u8]) {
        let (len, from) = match received {
            Ok(r) => r,
            Err(e) => return tracing::debug!(error = %e, "discovery receive failed"),
        };
        match Datagram::decode(&buf[..len]) {
            Ok(Datagram::Announce(a)) => {
                for event in self.cache.on_announcement(std::time::Instant::now(), from.ip(), a) {
                    self.emit(event).await;
                }
            }
            Ok(Datagram::Query { from: asker }) if asker != self.config.local => {
                if let Some(bytes) = self.record_bytes() {
                    self.send_to(&bytes, from).await;
                }
            }
            Ok(Datagram::Query { .. }) => {}
            Err(_) => {}
        }
    }

    async fn emit(&self, event: PeerEvent) {
        let _ = self.events.send(event).await;
    }

    fn record_bytes(&self) -> Option<Vec<u8>> {
        let record = self.record.clone()?;
        Datagram::Announce(record).encode().inspect_err(|e| tracing::warn!(error = %e, "announcement not sent")).ok()
    }

    /// Broadcasts our record (if we serve) and sends it to the static peers.
    async fn announce(&self) {
        if let Some(bytes) = self.record_bytes() {
            self.broadcast(&bytes).await;
            for peer in &self.config.static_peers {
                self.send_to(&bytes, *peer).await;
            }
        }
    }

    async fn query(&self) {
        let bytes = self.query_bytes();
        self.broadcast(&bytes).await;
        self.query_static().await;
    }

    /// Static peers cannot hear our broadcasts, and may not know us: ask them directly.
    async fn query_static(&self) {
        let bytes = self.query_bytes();
        for peer in &self.config.static_peers {
            self.send_to(&bytes, *peer).await;
        }
    }

    fn query_bytes(&self) -> Vec<u8> {
        Datagram::Query { from: self.config.local }.encode().expect("a query has no variable-length field")
    }

    async fn broadcast(&self, bytes: &[u8]) {
        for ip in broadcast_targets(self.config.broadcast.as_deref()) {
            self.send_to(bytes, SocketAddrV4::new(ip, self.config.port).into()).await;
        }
    }

    async fn send_to(&self, bytes: &[u8], to: SocketAddr) {
        if let Err(e) = self.own.send_to(bytes, to).await {
            tracing::debug!(%to, error = %e, "discovery send failed");
        }
    }
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

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
