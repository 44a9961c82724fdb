//! Peer discovery of p2pnode, as plug-ins: who is on the LAN, at which address, with which transports.
//!
//! A [`Discovery`] announces this node's record, asks the LAN to announce itself, and yields
//! [`PeerEvent`]s (seen, updated, expired). The traits are written with `async_trait`, so an
//! implementation is plain `async fn`s. This crate's discoveries:
//! - [`udp`]: UDP broadcast datagrams ([`proto::Datagram`]) plus unicast to static peers (VPNs, other
//!   subnets);
//! - [`mdns`]: multicast DNS (service `_p2pnode._udp.local.`), for LANs that drop broadcast;
//! - [`memory`]: an in-memory LAN for tests that need no sockets and run on a paused clock.
//!
//! [`Merged`] runs several at once as one. Each bounds what it keeps with the sans-IO [`PeerCache`]: it
//! takes the time and announcements and returns events and its next deadline, so it is tested without
//! sockets or sleeps. With the `conformance` feature, `conformance` is the suite every discovery must
//! pass.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! use discovery::memory::MemoryLan;
//! use discovery::{Discovery, PeerEvent};
//! # let record = |id| proto::Announcement { node: proto::NodeId([id; 32]), instance: 1, name: "n".into(),
//! #     ports: vec![("tls".into(), 5001)], catalogue_version: 1, file_count: 0, interval_secs: 1 };
//!
//! let lan = MemoryLan::default();
//! let mut watcher = lan.join([10, 0, 0, 1].into(), proto::NodeId([1; 32]), true);
//! let announcer = lan.join([10, 0, 0, 2].into(), proto::NodeId([2; 32]), true);
//! announcer.announce(record(2));
//! let Some(PeerEvent::Seen(peer)) = watcher.next_event().await else { panic!() };
//! assert_eq!(peer.addr("tls"), Some(([10, 0, 0, 2], 5001).into()));
//! # }
//! ```
//!
//! Discovery finds peers; it moves no files. Catalogues are fetched over a transport.

#[cfg(feature = "conformance")]
pub mod conformance;
mod datagrams;
pub mod mdns;
pub mod memory;
mod merged;
mod peer_cache;
mod sealed;
pub mod udp;

use std::net::{IpAddr, SocketAddr};

pub use async_trait::async_trait;
pub use merged::Merged;
pub use peer_cache::{MAX_CLAIMS, MAX_CLAIMS_PER_ID, MAX_IDS_PER_ADDRESS, MAX_INTERVAL, PeerCache};
use proto::{Announcement, NodeId};
pub use sealed::Seal;

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

    /// Where its transport named `transport` listens, if it has one.
    pub fn addr(&self, transport: &str) -> Option<SocketAddr> {
        self.announcement.port(transport).map(|port| SocketAddr::new(self.ip, port))
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
    /// A host's claim to a node id lapsed: it left, missed three announce intervals, or was evicted to
    /// bound the table.
    Expired(Peer),
}

impl PeerEvent {
    /// The peer the event is about.
    pub fn peer(&self) -> &Peer {
        let (PeerEvent::Seen(p) | PeerEvent::Updated(p) | PeerEvent::Expired(p)) = self;
        p
    }
}

/// Finds peers and lets them find us.
#[async_trait]
pub trait Discovery: Send {
    /// Announces `record` now and at every interval from now on (replacing any earlier record).
    fn announce(&self, record: Announcement);

    /// Asks every node within reach to announce itself now.
    fn query(&self);

    /// The next change in the set of peers; `None` once discovery stopped. Must be cancel-safe: callers
    /// wait on it beside other work and drop the wait when that comes first.
    async fn next_event(&mut self) -> Option<PeerEvent>;
}
