//! The download scheduler, without I/O: which chunk to ask of which peer next.
//!
//! The driver ([`crate::download()`]) asks [`Scheduler::next_request`] for work while it returns some,
//! performs each request, and reports the outcome with [`Scheduler::on_success`] or
//! [`Scheduler::on_failure`]. The scheduler never waits, sleeps or touches a socket, so every policy below
//! is tested with plain function calls:
//! - each live peer gets up to `per_peer` requests in flight, and the least busy peer is served first, so a
//!   faster peer, finishing sooner, is handed more chunks;
//! - a failed chunk goes back to the queue and is not asked again of a peer that failed it while another
//!   peer could serve it;
//! - a peer is dropped after [`MAX_STRIKES`] failures in a row, at once when unreachable or when it lacks
//!   the file, and after [`MAX_CORRUPT`] corrupt chunks;
//! - when chunks remain that no live peer may be asked for, the download is stuck, and says which.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use proto::NodeId;

/// Consecutive failures after which a peer is dropped.
pub(crate) const MAX_STRIKES: u32 = 3;
/// Corrupt chunks after which a peer is dropped (banned for this download).
pub(crate) const MAX_CORRUPT: u32 = 2;

/// How a request failed, as far as scheduling cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The peer could not be connected to: gone.
    Unreachable,
    /// The peer does not have the file (any more).
    NotFound,
    /// No answer in time.
    Timeout,
    /// The connection broke or the peer broke the protocol.
    Broken,
    /// The bytes did not match the chunk hash.
    Corrupt,
}

/// Where the download stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Requests are in flight or can be made.
    Running,
    /// Every chunk is verified.
    Done,
    /// Nothing is in flight and no live peer may be asked for these chunks.
    Stuck {
        /// The chunks that cannot be fetched.
        missing: Vec<u32>,
    },
}

#[derive(Debug, Default)]
struct PeerState {
    in_flight: usize,
    strikes: u32,
    corrupt: u32,
    dropped: bool,
}

/// Chunk assignment for one download.
#[derive(Debug)]
pub struct Scheduler {
    pending: BTreeSet<u32>,
    in_flight: HashMap<u32, NodeId>,
    failed_by: HashMap<u32, HashMap<NodeId, Failure>>,
    peers: BTreeMap<NodeId, PeerState>,
    per_peer: usize,
    max_in_flight: usize,
}

impl Scheduler {
    /// Schedules `missing` chunks over `peers`, with at most `per_peer` requests per peer and
    /// `max_in_flight` in all.
    pub fn new(
        missing: impl IntoIterator<Item = u32>,
        peers: impl IntoIterator<Item = NodeId>,
        per_peer: usize,
        max_in_flight: usize,
    ) -> Self {
        Self {
            pending: missing.into_iter().collect(),
            in_flight: HashMap::new(),
            failed_by: HashMap::new(),
            peers: peers.into_iter().map(|p| (p, PeerState::default())).collect(),
            per_peer: per_peer.max(1),
            max_in_flight: max_in_flight.max(1),
        }
    }

    /// The next request to make, if a peer has room and a chunk it may be asked for.
    pub fn next_request(&mut self) -> Option<(NodeId, u32)> {
        if self.in_flight.len() >= self.max_in_flight {
            return None;
        }
        let mut candidates: Vec<(usize, NodeId)> = self
            .peers
            .iter()
            .filter(|(_, s)| !s.dropped && s.in_flight < self.per_peer)
            .map(|(id, s)| (s.in_flight, *id))
            .collect();
        candidates.sort();
        for (_, peer) in candidates {
            if let Some(chunk) = self.pending.iter().copied().find(|c| self.may_ask(peer, *c)) {
                self.pending.remove(&chunk);
                self.in_flight.insert(chunk, peer);
                self.peer(peer).in_flight += 1;
                return Some((peer, chunk));
            }
        }
        None
    }

    /// `chunk` arrived from `peer`, verified and written.
    pub fn on_success(&mut self, peer: NodeId, chunk: u32) {
        self.in_flight.remove(&chunk);
        self.failed_by.remove(&chunk);
        let state = self.peer(peer);
        state.in_flight -= 1;
        state.strikes = 0;
    }

    /// The request of `chunk` from `peer` failed. Returns `true` if the peer is now dropped.
    pub fn on_failure(&mut self, peer: NodeId, chunk: u32, failure: Failure) -> bool {
        self.in_flight.remove(&chunk);
        self.pending.insert(chunk);
        self.failed_by.entry(chunk).or_default().insert(peer, failure);
        let state = self.peer(peer);
        state.in_flight -= 1;
        state.strikes += 1;
        state.corrupt += u32::from(failure == Failure::Corrupt);
        let drop_now = matches!(failure, Failure::Unreachable | Failure::NotFound)
            || state.strikes >= MAX_STRIKES
            || state.corrupt >= MAX_CORRUPT;
        let newly = drop_now && !state.dropped;
        state.dropped |= drop_now;
        newly
    }

    /// Drops `peer` before any request (it could not be connected to).
    pub fn drop_peer(&mut self, peer: NodeId) {
        self.peer(peer).dropped = true;
    }

    /// Peers not dropped.
    pub fn live_peers(&self) -> usize {
        self.peers.values().filter(|s| !s.dropped).count()
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Where the download stands.
    pub fn status(&self) -> Status {
        if self.pending.is_empty() && self.in_flight.is_empty() {
            return Status::Done;
        }
        let assignable = self.pending.iter().any(|c| self.peers.keys().any(|p| self.live(*p) && self.may_ask(*p, *c)));
        if self.in_flight.is_empty() && !assignable {
            return Status::Stuck { missing: self.pending.iter().copied().collect() };
        }
        Status::Running
    }

    fn live(&self, peer: NodeId) -> bool {
        self.peers.get(&peer).is_some_and(|s| !s.dropped)
    }

    /// A peer that failed a chunk is asked for it again only when every other live peer failed it too,
    /// and never when its copy was corrupt.
    fn may_ask(&self, peer: NodeId, chunk: u32) -> bool {
        let Some(failed) = self.failed_by.get(&chunk) else { return true };
        match failed.get(&peer) {
            None => true,
            Some(Failure::Corrupt) => false,
            Some(_) => self.peers.iter().all(|(p, s)| s.dropped || failed.contains_key(p)),
        }
    }

    fn peer(&mut self, peer: NodeId) -> &mut PeerState {
        self.peers.entry(peer).or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: NodeId = NodeId([1; 32]);
    const B: NodeId = NodeId([2; 32]);
    const C: NodeId = NodeId([3; 32]);

    fn drain(s: &mut Scheduler) -> Vec<(NodeId, u32)> {
        std::iter::from_fn(|| s.next_request()).collect()
    }

    #[test]
    fn spreads_chunks_over_peers_within_limits() {
        let mut s = Scheduler::new(0..10, [A, B, C], 2, 5);
        let first = drain(&mut s);
        assert_eq!(first.len(), 5);
        for peer in [A, B, C] {
            assert!(first.iter().filter(|(p, _)| *p == peer).count() <= 2);
        }
        // The peer that finishes first is handed the next chunk.
        let (peer, chunk) = first[0];
        s.on_success(peer, chunk);
        assert_eq!(s.next_request().map(|(p, _)| p), Some(peer));
    }

    #[test]
    fn completes_when_every_chunk_succeeds() {
        let mut s = Scheduler::new(0..4, [A], 4, 4);
        for (p, c) in drain(&mut s) {
            assert_eq!(s.status(), Status::Running);
            s.on_success(p, c);
        }
        assert_eq!(s.status(), Status::Done);
        assert_eq!(Scheduler::new([], [A], 1, 1).status(), Status::Done);
    }

    #[test]
    fn failed_chunk_moves_to_another_peer_and_dead_peers_are_dropped() {
        let mut s = Scheduler::new([7], [A, B], 1, 4);
        let (first, chunk) = s.next_request().expect("work");
        assert!(s.on_failure(first, chunk, Failure::Unreachable));
        let (second, again) = s.next_request().expect("retry");
        assert_eq!(again, 7);
        assert_ne!(second, first);
        s.on_success(second, again);
        assert_eq!(s.status(), Status::Done);
        assert_eq!(s.live_peers(), 1);
    }

    #[test]
    fn strikes_drop_a_flaky_peer_and_a_lone_peer_is_retried() {
        let mut s = Scheduler::new([0], [A], 1, 1);
        for strike in 1..=MAX_STRIKES {
            let (p, c) = s.next_request().expect("the only peer is asked again");
            assert_eq!(s.on_failure(p, c, Failure::Timeout), strike == MAX_STRIKES);
        }
        assert_eq!(s.status(), Status::Stuck { missing: vec![0] });
    }

    #[test]
    fn corrupt_everywhere_is_stuck_naming_the_chunk() {
        let mut s = Scheduler::new([0, 1, 2], [A, B], 4, 8);
        for (p, c) in drain(&mut s) {
            if c == 1 {
                s.on_failure(p, c, Failure::Corrupt);
            } else {
                s.on_success(p, c);
            }
        }
        // Chunk 1 goes to the other peer, which corrupts it too.
        let (p, c) = s.next_request().expect("other peer");
        assert_eq!(c, 1);
        s.on_failure(p, c, Failure::Corrupt);
        assert_eq!(s.next_request(), None);
        assert_eq!(s.status(), Status::Stuck { missing: vec![1] });
    }
}
