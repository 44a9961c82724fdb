//! The peer cache, without I/O: announcements and the clock in, peer events and the next deadline out.
//!
//! A claim is one host's announcement of one node id. Ids are not proven in discovery (a host may announce
//! any id), so the cache keeps every claim apart, each host's claim to an id beside the others: an
//! impostor announcing a genuine node's id adds a claim, it never replaces the genuine one, and the
//! transfer layer tries each (an authenticating transport refuses the impostor at the handshake).
//!
//! Everything is bounded, whatever the LAN sends: claims in all ([`MAX_CLAIMS`], the soonest to expire
//! evicted first), ids per source address ([`MAX_IDS_PER_ADDRESS`]: several nodes on one machine are normal,
//! thousands are a flood) and claims per id ([`MAX_CLAIMS_PER_ID`]); the interval a sender announces is
//! clamped, so a claim expires within minutes; and the work per datagram is a few map operations
//! (O(log n)), never a scan of every peer.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use proto::{Announcement, NodeId};

use crate::{Peer, PeerEvent};

/// A peer is expired after this many announce intervals without an announcement.
const MISSED_INTERVALS: u32 = 3;
/// The longest announce interval honoured: a claim expires at most three of these after its last
/// announcement.
pub const MAX_INTERVAL: Duration = Duration::from_secs(60);
/// Claims held at once, over every id and address.
pub const MAX_CLAIMS: usize = 4_096;
/// Node ids one source address may claim at once.
pub const MAX_IDS_PER_ADDRESS: usize = 32;
/// Hosts that may claim one node id at once.
pub const MAX_CLAIMS_PER_ID: usize = 8;

type ClaimKey = (NodeId, IpAddr);

/// Known claims and when each expires.
#[derive(Debug)]
pub struct PeerCache {
    local: NodeId,
    claims: HashMap<ClaimKey, (Peer, Instant)>,
    /// The claims ordered by expiry, for the next deadline, expiry and eviction in O(log n).
    by_expiry: BTreeSet<(Instant, ClaimKey)>,
    per_address: HashMap<IpAddr, usize>,
    per_id: HashMap<NodeId, usize>,
}

impl PeerCache {
    /// An empty cache for the node `local`, whose own announcements are ignored.
    pub fn new(local: NodeId) -> Self {
        Self {
            local,
            claims: HashMap::new(),
            by_expiry: BTreeSet::new(),
            per_address: HashMap::new(),
            per_id: HashMap::new(),
        }
    }

    /// Takes an announcement received at `now` from `ip`: returns the events it causes (a new or changed
    /// claim, and a claim evicted to make room), if any.
    pub fn on_announcement(&mut self, now: Instant, ip: IpAddr, announcement: Announcement) -> Vec<PeerEvent> {
        if announcement.node == self.local {
            return Vec::new();
        }
        let interval = Duration::from_secs(u64::from(announcement.interval_secs.max(1))).min(MAX_INTERVAL);
        let expires = now + interval * MISSED_INTERVALS;
        let key = (announcement.node, ip);
        let peer = Peer { ip, announcement };
        if let Some((old, at)) = self.claims.get_mut(&key) {
            self.by_expiry.remove(&(*at, key));
            self.by_expiry.insert((expires, key));
            *at = expires;
            if *old == peer {
                return Vec::new();
            }
            *old = peer.clone();
            return vec![PeerEvent::Updated(peer)];
        }
        let full = |count: Option<&usize>, max| count.is_some_and(|n| *n >= max);
        if full(self.per_address.get(&ip), MAX_IDS_PER_ADDRESS) || full(self.per_id.get(&key.0), MAX_CLAIMS_PER_ID) {
            return Vec::new();
        }
        let mut events = Vec::new();
        if self.claims.len() >= MAX_CLAIMS
            && let Some(&(_, oldest)) = self.by_expiry.first()
        {
            events.extend(self.remove(oldest).map(PeerEvent::Expired));
        }
        *self.per_address.entry(ip).or_default() += 1;
        *self.per_id.entry(key.0).or_default() += 1;
        self.by_expiry.insert((expires, key));
        self.claims.insert(key, (peer.clone(), expires));
        events.push(PeerEvent::Seen(peer));
        events
    }

    /// Removes the claims expired at `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<PeerEvent> {
        let mut events = Vec::new();
        while let Some(&(at, key)) = self.by_expiry.first()
            && at <= now
        {
            events.extend(self.remove(key).map(PeerEvent::Expired));
        }
        events
    }

    /// Drops `ip`'s claim to `node` at once (a discovery that learns of departures, as mDNS does).
    pub fn forget(&mut self, node: NodeId, ip: IpAddr) -> Option<PeerEvent> {
        self.remove((node, ip)).map(PeerEvent::Expired)
    }

    fn remove(&mut self, key: ClaimKey) -> Option<Peer> {
        let (peer, at) = self.claims.remove(&key)?;
        self.by_expiry.remove(&(at, key));
        release(&mut self.per_address, key.1);
        release(&mut self.per_id, key.0);
        Some(peer)
    }

    /// When the next claim expires, if any is known.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.by_expiry.first().map(|(at, _)| *at)
    }

    /// The claims known now.
    pub fn peers(&self) -> impl Iterator<Item = &Peer> {
        self.claims.values().map(|(p, _)| p)
    }
}

/// One fewer held under `key`; a count of zero is removed, so the map holds only what is held.
fn release<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: K) {
    if let Some(n) = counts.get_mut(&key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announcement(node: u8, version: u64) -> Announcement {
        Announcement {
            node: NodeId([node; 32]),
            instance: 1,
            name: format!("node{node}"),
            ports: vec![("tcp".into(), 5001)],
            catalogue_version: version,
            file_count: 0,
            interval_secs: 5,
        }
    }

    #[test]
    fn seen_updated_refreshed_expired() {
        let (t0, ip) = (Instant::now(), IpAddr::from([10, 0, 0, 2]));
        let mut cache = PeerCache::new(NodeId([0; 32]));
        assert!(matches!(cache.on_announcement(t0, ip, announcement(1, 1))[..], [PeerEvent::Seen(_)]));
        assert_eq!(cache.on_announcement(t0, ip, announcement(1, 1)), []);
        let updated = cache.on_announcement(t0, ip, announcement(1, 2));
        assert!(matches!(&updated[..], [PeerEvent::Updated(p)] if p.announcement.catalogue_version == 2));
        assert_eq!(cache.next_deadline(), Some(t0 + Duration::from_secs(15)));

        // Refreshed at 10 s, so still there at 20 s, gone at 25 s.
        let t10 = t0 + Duration::from_secs(10);
        assert_eq!(cache.on_announcement(t10, ip, announcement(1, 2)), []);
        assert!(cache.expire(t0 + Duration::from_secs(20)).is_empty());
        let gone = cache.expire(t0 + Duration::from_secs(25));
        assert!(matches!(&gone[..], [PeerEvent::Expired(p)] if p.id() == NodeId([1; 32])));
        assert_eq!(cache.next_deadline(), None);
    }

    #[test]
    fn own_announcements_are_ignored() {
        let mut cache = PeerCache::new(NodeId([1; 32]));
        assert_eq!(cache.on_announcement(Instant::now(), IpAddr::from([127, 0, 0, 1]), announcement(1, 1)), []);
        assert_eq!(cache.peers().count(), 0);
    }

    #[test]
    fn a_second_host_claiming_an_id_adds_a_claim_and_replaces_nothing() {
        let mut cache = PeerCache::new(NodeId([0; 32]));
        let (genuine, impostor) = (IpAddr::from([10, 0, 0, 2]), IpAddr::from([10, 0, 0, 3]));
        let now = Instant::now();
        cache.on_announcement(now, genuine, announcement(1, 1));
        let claimed = cache.on_announcement(now, impostor, announcement(1, 1));
        assert!(matches!(&claimed[..], [PeerEvent::Seen(p)] if p.ip == impostor));
        let mut ips: Vec<_> = cache.peers().map(|p| p.ip).collect();
        ips.sort();
        assert_eq!(ips, [genuine, impostor]);
        // The genuine node's refresh is no change; the impostor's expiry leaves it in place.
        assert_eq!(cache.on_announcement(now + Duration::from_secs(10), genuine, announcement(1, 1)), []);
        let gone = cache.expire(now + Duration::from_secs(16));
        assert!(matches!(&gone[..], [PeerEvent::Expired(p)] if p.ip == impostor));
        assert_eq!(cache.peers().map(|p| p.ip).collect::<Vec<_>>(), [genuine]);
    }

    #[test]
    fn a_flood_from_one_address_is_capped_and_others_still_get_in() {
        let mut cache = PeerCache::new(NodeId([0; 32]));
        let (flooder, genuine) = (IpAddr::from([10, 0, 0, 66]), IpAddr::from([10, 0, 0, 2]));
        let now = Instant::now();
        for i in 0..40_000u32 {
            let mut a = announcement(0, 1);
            a.node.0[..4].copy_from_slice(&(i + 1).to_be_bytes());
            cache.on_announcement(now, flooder, a);
        }
        assert_eq!(cache.peers().count(), MAX_IDS_PER_ADDRESS);
        assert!(matches!(cache.on_announcement(now, genuine, announcement(1, 1))[..], [PeerEvent::Seen(_)]));
    }

    #[test]
    fn the_table_is_capped_and_evicts_the_stalest_claim() {
        let mut cache = PeerCache::new(NodeId([0; 32]));
        let now = Instant::now();
        for i in 0..MAX_CLAIMS as u32 {
            let ip = IpAddr::from((i / 16 + 1).to_be_bytes());
            let mut a = announcement(0, 1);
            a.node.0[..4].copy_from_slice(&(i + 1).to_be_bytes());
            cache.on_announcement(now + Duration::from_millis(u64::from(i)), ip, a);
        }
        assert_eq!(cache.peers().count(), MAX_CLAIMS);
        let events =
            cache.on_announcement(now + Duration::from_secs(60), IpAddr::from([10, 9, 9, 9]), announcement(1, 1));
        assert!(matches!(&events[..], [PeerEvent::Expired(old), PeerEvent::Seen(new)]
            if old.id().0[..4] == 1u32.to_be_bytes() && new.id() == NodeId([1; 32])));
        assert_eq!(cache.peers().count(), MAX_CLAIMS);
    }

    #[test]
    fn a_long_announced_interval_is_clamped() {
        let mut cache = PeerCache::new(NodeId([0; 32]));
        let now = Instant::now();
        let mut a = announcement(1, 1);
        a.interval_secs = u16::MAX;
        cache.on_announcement(now, IpAddr::from([10, 0, 0, 2]), a);
        assert_eq!(cache.next_deadline(), Some(now + MAX_INTERVAL * MISSED_INTERVALS));
    }
}
