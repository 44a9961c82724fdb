//! Peer discovery of p2pnode: who is on the LAN, at which address, with which transports.
//!
//! The [`Discovery`] trait yields [`PeerEvent`]s (seen, updated, expired) and sends queries; [`udp`]
//! implements it with UDP broadcast datagrams ([`proto::Datagram`]) plus unicast to static peers (for VPNs
//! and other subnets). The expiry logic is the sans-IO [`PeerCache`]: it takes the time and datagrams and
//! returns events and its next deadline, so it is tested without sockets or sleeps.
//!
//! Discovery finds peers; it moves no files. Catalogues are fetched over a transport.

mod cache;
pub mod udp;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;

pub use cache::{MAX_CLAIMS, MAX_CLAIMS_PER_ID, MAX_IDS_PER_ADDRESS, MAX_INTERVAL, PeerCache};
use proto::{Announcement, NodeId, TransportKind};

/// A boxed future, so the trait stays object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A node seen on the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The address its announcements came from.
    pub ip: IpAddr,
    /// What it announced.
    pub announcement: Announcement,
}

impl Peer {
    /// The node's id.
    pub fn id(&self) -> NodeId {
        self.announcement.node
    }

    /// Where its `kind` transport listens, if it has one.
    pub fn addr(&self, kind: TransportKind) -> Option<SocketAddr> {
        self.announcement.port(kind).map(|port| SocketAddr::new(self.ip, port))
    }
}

/// A change in the set of known peers. A peer is one host's claim to a node id: two hosts announcing the
/// same id are two peers (one of them is an impostor or a stale address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerEvent {
    /// A node announced itself for the first time (or again after expiring).
    Seen(Peer),
    /// A known node announced a change: address, ports, name, catalogue version or a restart.
    Updated(Peer),
    /// A host's claim to a node id lapsed: three announce intervals missed, or evicted to bound the table.
    Expired(Peer),
}

/// Finds peers and lets them find us.
pub trait Discovery: Send {
    /// Announces `record` now and at every interval from now on (replacing any earlier record).
    fn announce(&self, record: Announcement);

    /// Asks every node within reach to announce itself now.
    fn query(&self);

    /// The next change in the set of peers; `None` once discovery stopped.
    fn next_event(&mut self) -> BoxFuture<'_, Option<PeerEvent>>;
}
