//! The peer cache, without I/O: announcements and the clock in, peer events and the next deadline out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use proto::{Announcement, NodeId};

use crate::{Peer, PeerEvent};

/// A peer is expired after this many announce intervals without an announcement.
const MISSED_INTERVALS: u32 = 3;

/// Known peers and when each expires.
#[derive(Debug)]
pub struct PeerCache {
    local: NodeId,
    peers: HashMap<NodeId, (Peer, Instant)>,
}

impl PeerCache {
    /// An empty cache for the node `local`, whose own announcements are ignored.
    pub fn new(local: NodeId) -> Self {
        Self { local, peers: HashMap::new() }
    }

    /// Takes an announcement received at `now` from `ip`: returns the event it causes, if any.
    pub fn on_announcement(&mut self, now: Instant, ip: IpAddr, announcement: Announcement) -> Option<PeerEvent> {
        if announcement.node == self.local {
            return None;
        }
        let interval = Duration::from_secs(u64::from(announcement.interval_secs.max(1)));
        let expires = now + interval * MISSED_INTERVALS;
        let peer = Peer { ip, announcement };
        match self.peers.insert(peer.id(), (peer.clone(), expires)) {
            None => Some(PeerEvent::Seen(peer)),
            Some((old, _)) if old != peer => Some(PeerEvent::Updated(peer)),
            Some(_) => None,
        }
    }

    /// Removes the peers expired at `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<PeerEvent> {
        let gone: Vec<NodeId> = self.peers.iter().filter(|(_, (_, at))| *at <= now).map(|(id, _)| *id).collect();
        gone.into_iter()
            .map(|id| {
                self.peers.remove(&id);
                PeerEvent::Expired(id)
            })
            .collect()
    }

    /// When the next peer expires, if any is known.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.peers.values().map(|(_, at)| *at).min()
    }

    /// The peers known now.
    pub fn peers(&self) -> impl Iterator<Item = &Peer> {
        self.peers.values().map(|(p, _)| p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::TransportKind;

    fn announcement(node: u8, version: u64) -> Announcement {
        Announcement {
            node: NodeId([node; 32]),
            instance: 1,
            name: format!("node{node}"),
            ports: vec![(TransportKind::Tcp, 5001)],
            catalogue_version: version,
            file_count: 0,
            interval_secs: 5,
        }
    }

    #[test]
    fn seen_updated_refreshed_expired() {
        let (t0, ip) = (Instant::now(), IpAddr::from([10, 0, 0, 2]));
        let mut cache = PeerCache::new(NodeId([0; 32]));
        assert!(matches!(cache.on_announcement(t0, ip, announcement(1, 1)), Some(PeerEvent::Seen(_))));
        assert_eq!(cache.on_announcement(t0, ip, announcement(1, 1)), None);
        let updated = cache.on_announcement(t0, ip, announcement(1, 2));
        assert!(matches!(updated, Some(PeerEvent::Updated(p)) if p.announcement.catalogue_version == 2));
        assert_eq!(cache.next_deadline(), Some(t0 + Duration::from_secs(15)));

        // Refreshed at 10 s, so still there at 20 s, gone at 25 s.
        let t10 = t0 + Duration::from_secs(10);
        assert_eq!(cache.on_announcement(t10, ip, announcement(1, 2)), None);
        assert!(cache.expire(t0 + Duration::from_secs(20)).is_empty());
        assert_eq!(cache.expire(t0 + Duration::from_secs(25)), vec![PeerEvent::Expired(NodeId([1; 32]))]);
        assert_eq!(cache.next_deadline(), None);
    }

    #[test]
    fn own_announcements_are_ignored() {
        let mut cache = PeerCache::new(NodeId([1; 32]));
        assert_eq!(cache.on_announcement(Instant::now(), IpAddr::from([127, 0, 0, 1]), announcement(1, 1)), None);
        assert_eq!(cache.peers().count(), 0);
    }

    #[test]
    fn a_new_address_is_an_update() {
        let mut cache = PeerCache::new(NodeId([0; 32]));
        let now = Instant::now();
        cache.on_announcement(now, IpAddr::from([10, 0, 0, 2]), announcement(1, 1));
        let moved = cache.on_announcement(now, IpAddr::from([10, 0, 0, 3]), announcement(1, 1));
        assert!(matches!(moved, Some(PeerEvent::Updated(p)) if p.ip == IpAddr::from([10, 0, 0, 3])));
    }
}
