//! The download scheduler, without I/O: which chunk to ask of which peer next, and when to give up on a
//! request.
//!
//! The driver ([`super::download()`]) asks [`Scheduler::next_request`] for work while it returns some,
//! performs each request, and reports the outcome with [`Scheduler::on_success`] or
//! [`Scheduler::on_failure`]; it sleeps until [`Scheduler::next_deadline`] and then calls
//! [`Scheduler::on_timeouts`]. The scheduler never waits, sleeps or touches a socket, and takes the time
//! as an argument, so every policy below is tested with plain function calls and a made-up clock:
//! - pipelining: each peer gets as many requests in flight as its measured rate keeps busy for
//!   [`PIPELINE_TARGET`] (at least 2, at most the configured maximum), and the least busy peer is served
//!   first, so faster peers are handed more chunks;
//! - adaptive timeouts: a request expires after [`TIMEOUT_FACTOR`] times the time the peer's measured rate
//!   (or, before it has one, the best rate seen from any peer) says its queue needs, kept between a floor
//!   and the configured ceiling;
//! - fallback: a failed or expired chunk goes back to the queue, and is not asked again of a peer that
//!   failed it while another peer could serve it; a peer that failed waits (doubling backoff) before it is
//!   asked again, and is dropped after [`MAX_STRIKES`] failures in a row, at once when unreachable or when
//!   it lacks the file, and after [`MAX_CORRUPT`] corrupt chunks; requests in flight when a peer fails
//!   that fail too count as one failure (a peer that goes away fails them all at once);
//! - endgame: once nothing is left to hand out, an idle peer may duplicate the oldest request still in
//!   flight (each chunk at most once); the first copy to arrive wins and the other is cancelled;
//! - availability: a peer that has only part of the file (it is downloading it too) is asked only for the
//!   chunks it has, as its latest bitmap ([`Scheduler::set_has`]) says; peers may join mid-download
//!   ([`Scheduler::add_peer`]);
//! - rarest first: each peer is asked for the chunk the fewest live peers have, ties broken at random
//!   (per download, [`Scheduler::shuffled`]), so a crowd fetches different chunks from a seed and then
//!   trades them; a seed that sent a chunk elsewhere moments ago ([`Failure::Elsewhere`]) is asked for it
//!   again only after [`ELSEWHERE_WAIT`], by when the swarm likely has it;
//! - when chunks remain that no live peer may be asked for, the download waits for partial peers that
//!   grew within the patience (twice the timeout ceiling), and is then stuck, and says which; once no live
//!   peer has a chunk still missing, it waits the timeout ceiling for one to join
//!   ([`Scheduler::orphaned_until`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use std::hash::Hash;

use proto::{Bitmap, NodeId};

/// Consecutive failures after which a peer is dropped.
pub(crate) const MAX_STRIKES: u32 = 3;
/// Corrupt chunks after which a peer is dropped (banned for this download).
pub(crate) const MAX_CORRUPT: u32 = 2;
/// How long a peer's pipeline should keep it busy: enough to hide a round trip and the recovery of a lost
/// packet (a few round trips) on a VPN link; with less, the peer idled whenever the oldest chunk waited
/// for a retransmission while the next request could not be sent.
pub(crate) const PIPELINE_TARGET: Duration = Duration::from_millis(1000);
/// A request may take this many times what the peer's rate predicts before it expires.
pub(crate) const TIMEOUT_FACTOR: u32 = 4;
/// No request expires sooner than this.
pub(crate) const TIMEOUT_FLOOR: Duration = Duration::from_secs(2);
/// The first wait after a failure; it doubles with each further failure in a row.
const BACKOFF: Duration = Duration::from_millis(250);
/// How long a chunk that a seed sent elsewhere ([`Failure::Elsewhere`]) is not asked of it again, where
/// partial peers could pass it on: long enough for the receiver's next bitmap refresh and a transfer from
/// it (with one second, the last chunks of a crowd of 12 still left the seed 2-8 times each).
pub(crate) const ELSEWHERE_WAIT: Duration = Duration::from_secs(2);
/// Weight of a new rate sample in the moving average.
const RATE_WEIGHT: f64 = 0.3;
/// A rate sample spans at least this long (or a whole busy spell): the chunks of a pipelined peer arrive
/// in bursts (one waits for a lost packet while those behind it complete), and a sample per chunk read
/// such a burst as many times the link's rate, the pipeline grew past what the peer could deliver within
/// its timeouts, and requests expired while still queued behind others.
const RATE_SAMPLE: Duration = Duration::from_millis(250);

/// How a request failed, as far as scheduling cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The peer could not be connected to: gone.
    Unreachable,
    /// The peer does not have the file (any more).
    NotFound,
    /// No answer in time.
    Timeout,
    /// The peer answered that it is at its limits: there, but to be asked less at once.
    Busy,
    /// The connection broke or the peer broke the protocol.
    Broken,
    /// The bytes did not match the chunk hash.
    Corrupt,
    /// A seed sent the chunk to another downloader moments ago: no failure of the seed, and the chunk
    /// is asked of the swarm first.
    Elsewhere,
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

/// Limits of one download.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The chunk size of the file.
    pub chunk_size: u32,
    /// The most requests in flight to one peer.
    pub per_peer: usize,
    /// The most requests in flight in all (bounds memory: each holds a chunk).
    pub total: usize,
    /// The longest any request may take.
    pub timeout_ceiling: Duration,
}

/// What the scheduler tells peers apart by: a node id, or (in the driver) the index of one of the sources
/// that claim a node id, since several hosts may claim one.
pub trait PeerKey: Copy + Ord + Hash + std::fmt::Debug {}

impl<T: Copy + Ord + Hash + std::fmt::Debug> PeerKey for T {}

/// A request the driver should make.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Assignment<P = NodeId> {
    /// Whom to ask.
    pub peer: P,
    /// For which chunk.
    pub chunk: u32,
}

#[derive(Debug, Default)]
struct PeerState {
    /// `None`: the peer has every chunk; else a bitmap of the chunks it has.
    has: Option<Bitmap>,
    in_flight: usize,
    strikes: u32,
    /// When the last strike was counted: requests in flight then that fail too failed of the same cause
    /// (a peer that dies fails every request at once), and count as no further strike.
    struck_at: Option<Instant>,
    corrupt: u32,
    dropped: bool,
    retry_at: Option<Instant>,
    /// Bytes per second, moving average.
    rate: Option<f64>,
    last_done: Option<Instant>,
    /// The sample being gathered: since when, and the bytes delivered since.
    sample: Option<(Instant, u64)>,
    /// Requests in flight the peer took at once before it answered busy; grows by one per chunk delivered.
    cap: Option<usize>,
    /// Since when the peer answers busy without delivering a chunk: past twice the timeout ceiling, busy
    /// counts as a failure (a peer always busy is as good as gone).
    busy_since: Option<Instant>,
    /// When a partial peer joined or its bitmap last grew: the download waits for it within the patience.
    grew_at: Option<Instant>,
}

/// Chunk assignment for one download.
#[derive(Debug)]
pub struct Scheduler<P = NodeId> {
    limits: Limits,
    pending: BTreeSet<u32>,
    /// The pending chunks, rarest first: (live peers that have it, tie-break, chunk).
    queue: BTreeSet<(usize, u64, u32)>,
    /// Ties are broken by this seed's hash of the chunk index, or by index where `None`.
    tiebreak: Option<u64>,
    /// Chunks a seed refused as sent elsewhere, not asked of it again until then.
    deferred: HashMap<(P, u32), Instant>,
    /// Requests in flight and when each was made.
    in_flight: HashMap<(P, u32), Instant>,
    failed_by: HashMap<u32, HashMap<P, Failure>>,
    peers: BTreeMap<P, PeerState>,
    /// When the last live peer with a chunk still missing was dropped: the download waits for another
    /// until the timeout ceiling has passed since.
    orphaned_at: Option<Instant>,
}

impl<P: PeerKey> Scheduler<P> {
    /// Schedules the `missing` chunks over `peers`, each with the bitmap of the chunks it has (`None`:
    /// all of them).
    pub fn new(
        missing: impl IntoIterator<Item = u32>,
        peers: impl IntoIterator<Item = (P, Option<Bitmap>)>,
        limits: Limits,
    ) -> Self {
        let mut scheduler = Self {
            limits: Limits { per_peer: limits.per_peer.max(1), total: limits.total.max(1), ..limits },
            pending: missing.into_iter().collect(),
            queue: BTreeSet::new(),
            tiebreak: None,
            deferred: HashMap::new(),
            in_flight: HashMap::new(),
            failed_by: HashMap::new(),
            peers: peers.into_iter().map(|(p, has)| (p, PeerState { has, ..PeerState::default() })).collect(),
            orphaned_at: None,
        };
        scheduler.rank_all();
        scheduler
    }

    /// Breaks ties between equally rare chunks by a hash seeded with `seed` rather than by index: each
    /// downloader of a crowd then asks a seed for different chunks.
    pub fn shuffled(mut self, seed: u64) -> Self {
        self.tiebreak = Some(seed);
        self.rank_all();
        self
    }

    /// A peer that joined at `now`, with the chunks it has (`None`: all); a partial one is waited for
    /// within the patience.
    pub fn add_peer(&mut self, peer: P, has: Option<Bitmap>, now: Instant) {
        let grew_at = has.is_some().then_some(now);
        self.peers.insert(peer, PeerState { has, grew_at, ..PeerState::default() });
        self.rank_all();
        self.note_hosts(now);
    }

    /// The chunks `peer` has now, as it answered at `now` (`None`: all); whether it has more than before.
    /// A bitmap never shrinks: chunks are verified before they are listed, and a peer that loses a file
    /// answers that it does not have it.
    pub fn set_has(&mut self, peer: P, has: Option<Bitmap>, now: Instant) -> bool {
        let Some(state) = self.peers.get_mut(&peer) else { return false };
        let count = |has: &Option<Bitmap>| has.as_ref().map_or(u32::MAX, Bitmap::count);
        let grew = count(&has) > count(&state.has);
        if grew {
            state.has = has;
            state.grew_at = Some(now);
            self.rank_all();
            self.note_hosts(now);
        }
        grew
    }

    /// Orders the pending chunks anew, rarest first (after availability changed).
    fn rank_all(&mut self) {
        self.queue = self.pending.iter().map(|c| self.rank(*c)).collect();
    }

    /// Where `chunk` stands in the queue.
    fn rank(&self, chunk: u32) -> (usize, u64, u32) {
        let holders = self.peers.iter().filter(|(p, s)| !s.dropped && self.has(p, chunk)).count();
        let tie = self.tiebreak.map_or(u64::from(chunk), |seed| mix(seed ^ u64::from(chunk)));
        (holders, tie, chunk)
    }

    /// Puts `chunk` back in the queue.
    fn push_pending(&mut self, chunk: u32) {
        if self.pending.insert(chunk) {
            self.queue.insert(self.rank(chunk));
        }
    }

    /// Takes `chunk` out of the queue.
    fn take_pending(&mut self, chunk: u32) {
        if self.pending.remove(&chunk) {
            self.queue.remove(&self.rank(chunk));
        }
    }

    /// The next request to make at `now`, if a peer has room and a chunk it may be asked for.
    pub fn next_request(&mut self, now: Instant) -> Option<Assignment<P>> {
        if self.in_flight.len() >= self.limits.total {
            return None;
        }
        for state in self.peers.values_mut() {
            state.retry_at = state.retry_at.filter(|t| *t > now);
        }
        self.deferred.retain(|_, until| *until > now);
        let mut ready: Vec<(usize, P)> = self
            .peers
            .iter()
            .filter(|(_, s)| !s.dropped && s.retry_at.is_none() && s.in_flight < self.window(s))
            .map(|(id, s)| (s.in_flight, *id))
            .collect();
        ready.sort();
        for (_, peer) in ready {
            let fresh =
                self.queue.iter().map(|(_, _, c)| *c).find(|c| self.pending.contains(c) && self.may_ask(peer, *c));
            let chunk = match fresh {
                Some(chunk) => {
                    self.take_pending(chunk);
                    chunk
                }
                None if self.pending.is_empty() => match self.endgame_candidate(peer, now) {
                    Some(chunk) => chunk,
                    None => continue,
                },
                None => continue,
            };
            self.in_flight.insert((peer, chunk), now);
            self.peer(peer).in_flight += 1;
            return Some(Assignment { peer, chunk });
        }
        None
    }

    /// `chunk` arrived from `peer`, verified and written. Returns the duplicate requests of the same
    /// chunk, which the driver cancels; `None` for a request settled already (an endgame copy whose twin
    /// won, or one that expired), whose bytes the driver must not count again.
    pub fn on_success(&mut self, now: Instant, peer: P, chunk: u32, bytes: u32) -> Option<Vec<Assignment<P>>> {
        let issued = self.in_flight.remove(&(peer, chunk))?;
        self.failed_by.remove(&chunk);
        let per_peer = self.limits.per_peer;
        let state = self.peer(peer);
        state.in_flight -= 1;
        state.strikes = 0;
        state.retry_at = None;
        state.cap = state.cap.map(|c| c + 1).filter(|c| *c < per_peer);
        state.busy_since = None;
        let busy_since = state.last_done.map_or(issued, |t| t.max(issued));
        let (since, before) = state.sample.unwrap_or((busy_since, 0));
        let delivered = before + u64::from(bytes);
        let elapsed = now.saturating_duration_since(since);
        // A peer idle from now ends its sample: one too short to measure is dropped (the first is kept,
        // for lack of any other), and the next starts with the next request rather than now.
        let measured = elapsed >= RATE_SAMPLE || state.in_flight == 0 && state.rate.is_none();
        if measured {
            let sample = delivered as f64 / elapsed.as_secs_f64().max(1e-4);
            state.rate = Some(state.rate.map_or(sample, |r| r + RATE_WEIGHT * (sample - r)));
        }
        state.sample = match (state.in_flight, measured) {
            (0, _) => None,
            (_, true) => Some((now, 0)),
            (_, false) => Some((since, delivered)),
        };
        state.last_done = Some(now);
        let losers: Vec<Assignment<P>> = self
            .in_flight
            .keys()
            .filter(|(_, c)| *c == chunk)
            .map(|(p, c)| Assignment { peer: *p, chunk: *c })
            .collect();
        for loser in &losers {
            self.in_flight.remove(&(loser.peer, loser.chunk));
            self.peer(loser.peer).in_flight -= 1;
        }
        Some(losers)
    }

    /// The request of `chunk` from `peer` failed. Returns whether the peer is now dropped; `None` for a
    /// request settled already, which is no failure of its peer.
    ///
    /// A busy peer is no failing one: it is asked again after a pause, with at most as many requests at
    /// once as it took. Nor is the last live peer dropped for timeouts or broken exchanges while it still
    /// delivers chunks (within twice the timeout ceiling): a slow but honest sole source is waited for.
    pub fn on_failure(&mut self, now: Instant, peer: P, chunk: u32, failure: Failure) -> Option<bool> {
        let issued = self.in_flight.remove(&(peer, chunk))?;
        if !self.in_flight.keys().any(|(_, c)| *c == chunk) {
            self.push_pending(chunk);
        }
        if failure == Failure::Elsewhere {
            // Deferred only where a partial peer could pass the chunk on; else the seed sends it when
            // asked again.
            if self.peers.iter().any(|(p, s)| *p != peer && !s.dropped && s.has.is_some()) {
                self.deferred.insert((peer, chunk), now + ELSEWHERE_WAIT);
            }
            self.peer(peer).in_flight -= 1;
            return Some(false);
        }
        let delivering_for = self.patience();
        let state = self.peer(peer);
        if failure == Failure::Busy {
            let since = *state.busy_since.get_or_insert(now);
            if now.saturating_duration_since(since) < delivering_for {
                state.in_flight -= 1;
                state.cap = Some(state.in_flight.max(1));
                state.retry_at = Some(now + BACKOFF);
                return Some(false);
            }
        }
        let definite = matches!(failure, Failure::Unreachable | Failure::NotFound | Failure::Corrupt);
        if !definite && state.struck_at.is_some_and(|t| issued <= t) {
            state.in_flight -= 1;
            return Some(false);
        }
        self.failed_by.entry(chunk).or_default().insert(peer, failure);
        let sole = self.live_peers() == 1;
        let state = self.peer(peer);
        state.in_flight -= 1;
        state.strikes += 1;
        state.struck_at = Some(now);
        state.corrupt += u32::from(failure == Failure::Corrupt);
        state.retry_at = Some(now + BACKOFF * 2u32.pow(state.strikes.min(8) - 1));
        let last_hope = sole
            && matches!(failure, Failure::Timeout | Failure::Broken | Failure::Busy)
            && state.last_done.is_some_and(|t| now.saturating_duration_since(t) < delivering_for);
        let drop_now = matches!(failure, Failure::Unreachable | Failure::NotFound)
            || state.strikes >= MAX_STRIKES && !last_hope
            || state.corrupt >= MAX_CORRUPT;
        let newly = drop_now && !state.dropped;
        if newly {
            self.drop_peer(peer, now);
        }
        Some(newly)
    }

    /// How long a peer is waited for: one that still delivers, or a partial one that may still grow.
    fn patience(&self) -> Duration {
        self.limits.timeout_ceiling.max(TIMEOUT_FLOOR) * 2
    }

    /// The live partial peers that grew within the patience, each with when it stops counting.
    fn growing(&self, now: Instant) -> impl Iterator<Item = Instant> + '_ {
        let patience = self.patience();
        let live = self.peers.values().filter(|s| !s.dropped && s.has.is_some());
        live.filter_map(move |s| s.grew_at.map(|t| t + patience)).filter(move |until| *until > now)
    }

    /// Expires the requests whose time is up at `now`, as failures. Returns them (the driver cancels them)
    /// with whether each one's peer is now dropped. Requests to one peer that expire together are one
    /// failure of that peer (they queued behind each other), not one each; and a request that stalls while
    /// its peer keeps delivering others (a stream stuck on a lossy link) is asked again without counting
    /// against the peer.
    pub fn on_timeouts(&mut self, now: Instant) -> Vec<(Assignment<P>, bool)> {
        let mut expired: Vec<Assignment<P>> = self
            .in_flight
            .iter()
            .filter(|((peer, _), issued)| **issued + self.timeout(*peer) <= now)
            .map(|((peer, chunk), _)| Assignment { peer: *peer, chunk: *chunk })
            .collect();
        expired.sort_by_key(|a| (a.peer, a.chunk));
        let mut struck = None;
        expired
            .into_iter()
            .map(|a| {
                let first = struck != Some(a.peer);
                struck = Some(a.peer);
                let delivering = self.peers[&a.peer].last_done.is_some_and(|t| t + self.timeout(a.peer) > now);
                let dropped = if first && !delivering {
                    self.on_failure(now, a.peer, a.chunk, Failure::Timeout).unwrap_or(false)
                } else {
                    self.requeue(a)
                };
                (a, dropped)
            })
            .collect()
    }

    /// Puts a request back without counting it against its peer. Returns `false` (the peer is not dropped).
    fn requeue(&mut self, a: Assignment<P>) -> bool {
        if self.in_flight.remove(&(a.peer, a.chunk)).is_some() {
            self.peer(a.peer).in_flight -= 1;
            if !self.in_flight.keys().any(|(_, c)| *c == a.chunk) {
                self.push_pending(a.chunk);
            }
        }
        false
    }

    /// When the driver must call back after `now`: the next request expiry, the end of a peer's backoff or
    /// of a deferral, or (while chunks are pending) the end of a partial peer's patience that has not
    /// passed yet (one that has would wake the driver at once, again and again).
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let expiries = self.in_flight.iter().map(|((peer, _), issued)| *issued + self.timeout(*peer));
        let retries = self.peers.values().filter(|s| !s.dropped).filter_map(|s| s.retry_at);
        let endgame = self.lagging().map(|(_, since)| since).filter(|_| self.pending.is_empty());
        let deferrals = self.deferred.values().copied();
        let patience = self.growing(now).filter(|_| !self.pending.is_empty());
        let orphaned = self.orphaned_until(now);
        expiries.chain(retries).chain(endgame).chain(deferrals).chain(patience).chain(orphaned).min()
    }

    /// The current timeout of a request to `peer`.
    pub fn timeout(&self, peer: P) -> Duration {
        let best =
            self.peers.values().filter_map(|s| s.rate).fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
        let Some(state) = self.peers.get(&peer) else { return self.limits.timeout_ceiling };
        match state.rate.or(best) {
            None => self.limits.timeout_ceiling,
            Some(rate) => {
                let queue = f64::from(self.limits.chunk_size) * self.window(state) as f64 / rate;
                Duration::from_secs_f64(queue * f64::from(TIMEOUT_FACTOR))
                    .clamp(TIMEOUT_FLOOR, self.limits.timeout_ceiling.max(TIMEOUT_FLOOR))
            }
        }
    }

    /// Drops `peer` at `now` (it could not be connected to, or no longer has the file).
    pub fn drop_peer(&mut self, peer: P, now: Instant) {
        self.peer(peer).dropped = true;
        self.rank_all();
        self.note_hosts(now);
    }

    /// Notes at `now` whether a live peer has a chunk still missing: since when none has is what the
    /// download waits from.
    fn note_hosts(&mut self, now: Instant) {
        match self.has_hosts() {
            true => self.orphaned_at = None,
            false => _ = self.orphaned_at.get_or_insert(now),
        }
    }

    /// Whether a live peer has a chunk still missing (pending, or in flight): one worth waiting on. A
    /// partial peer with only what this download has (another download of the same file) is none.
    pub fn has_hosts(&self) -> bool {
        let mut missing = self.pending.iter().copied().chain(self.in_flight.keys().map(|(_, c)| *c));
        missing.any(|c| self.peers.iter().any(|(p, s)| !s.dropped && self.has(p, c)))
    }

    /// Until when the download waits for another peer, where no live peer has a chunk still missing: the
    /// timeout ceiling after the last one that had went.
    pub fn orphaned_until(&self, now: Instant) -> Option<Instant> {
        let until = self.orphaned_at? + self.limits.timeout_ceiling;
        (until > now && !self.has_hosts()).then_some(until)
    }

    /// Whether `peer` may be asked to join (again): unknown, or dropped for anything but corrupt chunks
    /// (a peer that went away may come back).
    pub fn may_join(&self, peer: P) -> bool {
        self.peers.get(&peer).is_none_or(|s| s.dropped && s.corrupt < MAX_CORRUPT)
    }

    /// Whether `peer` is live and delivered nothing within its request timeout: gone, or stalled.
    pub fn is_silent(&self, peer: P, now: Instant) -> bool {
        let quiet = |s: &PeerState| s.last_done.is_none_or(|t| t + self.timeout(peer) <= now);
        self.peers.get(&peer).is_some_and(|s| !s.dropped && quiet(s))
    }

    /// Whether `peer` is known and has only part of the file, as far as it last said.
    pub fn is_partial(&self, peer: P) -> bool {
        self.peers.get(&peer).is_some_and(|s| !s.dropped && s.has.is_some())
    }

    /// Peers not dropped.
    pub fn live_peers(&self) -> usize {
        self.peers.values().filter(|s| !s.dropped).count()
    }

    /// Where the download stands at `now`: chunks that no live peer may be asked for yet are waited for
    /// while a seed's deferral lasts or a partial peer grew within the patience.
    pub fn status(&self, now: Instant) -> Status {
        if self.pending.is_empty() && self.in_flight.is_empty() {
            return Status::Done;
        }
        let assignable = self.pending.iter().any(|c| self.peers.keys().any(|p| self.live(*p) && self.may_ask(*p, *c)));
        let waiting =
            !self.deferred.is_empty() || self.growing(now).next().is_some() || self.orphaned_until(now).is_some();
        if self.in_flight.is_empty() && !assignable && !waiting {
            return Status::Stuck { missing: self.pending.iter().copied().collect() };
        }
        Status::Running
    }

    /// Requests a peer may have in flight: enough to keep it busy for [`PIPELINE_TARGET`] at its rate, and
    /// no more than it took at once when it last answered busy.
    fn window(&self, state: &PeerState) -> usize {
        let by_rate = match state.rate {
            None => self.limits.per_peer.min(4),
            Some(rate) => {
                let chunks =
                    (rate * PIPELINE_TARGET.as_secs_f64() / f64::from(self.limits.chunk_size)).ceil() as usize + 1;
                chunks.clamp(2.min(self.limits.per_peer), self.limits.per_peer)
            }
        };
        by_rate.min(state.cap.unwrap_or(usize::MAX))
    }

    /// The oldest lagging request (in flight longer than its peer's rate predicts) that no other peer
    /// duplicates yet and `peer` may be asked for.
    fn endgame_candidate(&self, peer: P, now: Instant) -> Option<u32> {
        self.lagging()
            .filter(|((p, c), since)| *p != peer && *since <= now && self.may_ask(peer, *c))
            .min_by_key(|(_, since)| *since)
            .map(|((_, c), _)| c)
    }

    /// Requests with no duplicate, each with the time from which it counts as lagging.
    fn lagging(&self) -> impl Iterator<Item = ((P, u32), Instant)> + '_ {
        let mut copies: HashMap<u32, usize> = HashMap::new();
        for (_, c) in self.in_flight.keys() {
            *copies.entry(*c).or_default() += 1;
        }
        self.in_flight
            .iter()
            .filter(move |((_, c), _)| copies[c] == 1)
            .map(|((p, c), issued)| ((*p, *c), *issued + self.timeout(*p) / TIMEOUT_FACTOR))
    }

    fn live(&self, peer: P) -> bool {
        self.peers.get(&peer).is_some_and(|s| !s.dropped)
    }

    /// Whether `peer` may be asked for `chunk`: it must have it; a peer that failed it is asked again
    /// only when every other live peer that has it failed it too, and never when its copy was corrupt.
    fn may_ask(&self, peer: P, chunk: u32) -> bool {
        let has = |p: &P| self.has(p, chunk);
        if !has(&peer) || self.deferred.contains_key(&(peer, chunk)) {
            return false;
        }
        let Some(failed) = self.failed_by.get(&chunk) else { return true };
        match failed.get(&peer) {
            None => true,
            Some(Failure::Corrupt) => false,
            Some(_) => self.peers.iter().all(|(p, s)| s.dropped || !has(p) || failed.contains_key(p)),
        }
    }

    /// Whether `peer` has `chunk`, as far as it last said.
    fn has(&self, peer: &P, chunk: u32) -> bool {
        self.peers.get(peer).is_some_and(|s| s.has.as_ref().is_none_or(|bits| bits.has(chunk)))
    }

    fn peer(&mut self, peer: P) -> &mut PeerState {
        self.peers.entry(peer).or_default()
    }
}

/// A 64-bit mix (SplitMix64's finalizer): a seeded order of chunk indexes that looks random.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: NodeId = NodeId([1; 32]);
    const B: NodeId = NodeId([2; 32]);
    const C: NodeId = NodeId([3; 32]);
    const CHUNK: u32 = 1 << 20;

    fn limits(per_peer: usize, total: usize) -> Limits {
        Limits { chunk_size: CHUNK, per_peer, total, timeout_ceiling: Duration::from_secs(10) }
    }

    /// A bitmap of 8 chunks, as a peer sends it.
    fn bits(byte: u8) -> Bitmap {
        Bitmap::from_prefix(&[byte], 8)
    }

    fn full(peers: &[NodeId]) -> Vec<(NodeId, Option<Bitmap>)> {
        peers.iter().map(|p| (*p, None)).collect()
    }

    /// `chunks` to fetch from A, a seed, and B, a downloader that joined at `now` with none yet.
    fn seed_and_empty_partial(chunks: u32, now: Instant) -> Scheduler {
        let mut s = Scheduler::new(0..chunks, [], limits(4, 4));
        s.add_peer(A, None, now);
        s.add_peer(B, Some(bits(0)), now);
        s
    }

    fn drain(s: &mut Scheduler, now: Instant) -> Vec<Assignment> {
        std::iter::from_fn(|| s.next_request(now)).collect()
    }

    #[test]
    fn spreads_chunks_over_peers_within_limits() {
        let now = Instant::now();
        let mut s = Scheduler::new(0..10, full(&[A, B, C]), limits(2, 5));
        let first = drain(&mut s, now);
        assert_eq!(first.len(), 5);
        for peer in [A, B, C] {
            assert!(first.iter().filter(|a| a.peer == peer).count() <= 2);
        }
        // The peer that finishes first is handed the next chunk.
        let done = first[0];
        s.on_success(now, done.peer, done.chunk, CHUNK);
        assert_eq!(s.next_request(now).map(|a| a.peer), Some(done.peer));
    }

    #[test]
    fn a_busy_peer_is_asked_again_later_with_fewer_requests_not_dropped() {
        let now = Instant::now();
        let mut s = Scheduler::new(0..8, full(&[A]), limits(4, 8));
        let asked = drain(&mut s, now);
        assert_eq!(asked.len(), 4);
        for a in &asked[2..] {
            assert_eq!(s.on_failure(now, a.peer, a.chunk, Failure::Busy), Some(false), "busy is no strike");
        }
        assert_eq!(s.live_peers(), 1);
        assert_eq!(s.next_request(now), None, "a pause after busy");
        let later = now + Duration::from_secs(1);
        assert_eq!(drain(&mut s, later), vec![], "no more at once than it took (2 in flight)");
        s.on_success(now + Duration::from_millis(1), A, asked[0].chunk, CHUNK);
        assert_eq!(drain(&mut s, later).len(), 2, "a fast peer, and each chunk delivered lets one more in");
        // Busy for good, delivering nothing: past twice the timeout ceiling it counts as failing.
        let mut t = later;
        for _ in 0..100 {
            t += Duration::from_secs(1);
            let flying: Vec<(NodeId, u32)> = s.in_flight.keys().copied().collect();
            for (peer, chunk) in flying {
                s.on_failure(t, peer, chunk, Failure::Busy);
            }
            drain(&mut s, t + Duration::from_millis(500));
        }
        assert_eq!(s.live_peers(), 0, "a peer busy for ever is dropped in the end");
    }

    #[test]
    fn the_only_source_is_kept_while_it_delivers_and_dropped_once_it_stops() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(0..64, full(&[A]), limits(4, 4));
        let mut now = t0;
        // Each round one chunk arrives and the other requests time out (queued behind other clients at a
        // busy seed): more strikes in a row than a peer among others would get, but it delivers.
        for round in 0..10 {
            let asked = drain(&mut s, now);
            if let [done, late @ ..] = &asked[..] {
                s.on_success(now, done.peer, done.chunk, CHUNK);
                for a in late {
                    assert_eq!(s.on_failure(now, a.peer, a.chunk, Failure::Timeout), Some(false), "round {round}");
                }
            }
            now = s.next_deadline(now).unwrap_or(now) + Duration::from_millis(1);
        }
        assert_eq!(s.live_peers(), 1, "a delivering sole source is never given up");
        // Frozen: no chunk any more, only timeouts. It is dropped once it has delivered nothing for twice
        // the timeout ceiling.
        let frozen = now;
        while s.live_peers() == 1 {
            for a in drain(&mut s, now) {
                s.on_failure(now, a.peer, a.chunk, Failure::Timeout);
            }
            now = s.next_deadline(now).unwrap_or(now) + Duration::from_millis(1);
            assert!(now < frozen + Duration::from_secs(60), "a frozen sole source is dropped");
        }
        assert!(now >= frozen + Duration::from_secs(10), "not before it stopped delivering for a while");
    }

    #[test]
    fn completes_when_every_chunk_succeeds() {
        let now = Instant::now();
        let mut s = Scheduler::new(0..4, full(&[A]), limits(4, 4));
        for a in drain(&mut s, now) {
            assert_eq!(s.status(now), Status::Running);
            s.on_success(now, a.peer, a.chunk, CHUNK);
        }
        assert_eq!(s.status(now), Status::Done);
        assert_eq!(Scheduler::new([], full(&[A]), limits(1, 1)).status(Instant::now()), Status::Done);
    }

    #[test]
    fn a_fast_peer_earns_a_deeper_pipeline() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(0..1000, full(&[A, B]), limits(16, 64));
        drain(&mut s, t0);
        // A delivers a chunk every millisecond (1 GB/s), B one every 100 ms (10 MB/s).
        for i in 1..=300u64 {
            let now = t0 + Duration::from_millis(i);
            let a = s.in_flight.keys().find(|(p, _)| *p == A).map(|(_, c)| *c).expect("A busy");
            s.on_success(now, A, a, CHUNK);
            if i % 100 == 0 {
                let b = s.in_flight.keys().find(|(p, _)| *p == B).map(|(_, c)| *c).expect("B busy");
                s.on_success(now, B, b, CHUNK);
            }
            while s.next_request(now).is_some() {}
        }
        let busy = |p| s.in_flight.keys().filter(|(q, _)| *q == p).count();
        assert!(busy(A) > busy(B), "A {} B {}", busy(A), busy(B));
    }

    #[test]
    fn chunks_arriving_in_bursts_do_not_inflate_the_rate() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(0..1000, full(&[A]), limits(64, 128));
        drain(&mut s, t0);
        // Ten chunks a second, arriving three at a time (two waited for a lost packet of the first).
        for burst in 1..=10u64 {
            let now = t0 + Duration::from_millis(300 * burst);
            let mut oldest: Vec<u32> = s.in_flight.keys().map(|(_, c)| *c).collect();
            oldest.sort();
            for c in oldest.into_iter().take(3) {
                s.on_success(now, A, c, CHUNK);
            }
            drain(&mut s, now);
        }
        let busy = s.in_flight.len();
        let expected = (10.0 * PIPELINE_TARGET.as_secs_f64()) as usize + 1;
        assert!(busy <= expected + 2, "{busy} requests in flight to a peer of ten chunks a second");
    }

    #[test]
    fn failed_chunk_moves_to_another_peer_and_dead_peers_are_dropped() {
        let now = Instant::now();
        let mut s = Scheduler::new([7], full(&[A, B]), limits(1, 4));
        let first = s.next_request(now).expect("work");
        assert_eq!(s.on_failure(now, first.peer, first.chunk, Failure::Unreachable), Some(true));
        let second = s.next_request(now).expect("retry");
        assert_eq!(second.chunk, 7);
        assert_ne!(second.peer, first.peer);
        s.on_success(now, second.peer, second.chunk, CHUNK);
        assert_eq!(s.status(now), Status::Done);
        assert_eq!(s.live_peers(), 1);
    }

    #[test]
    fn a_failed_peer_backs_off_then_strikes_out() {
        let mut now = Instant::now();
        let mut s = Scheduler::new([0], full(&[A]), limits(1, 1));
        for strike in 1..=MAX_STRIKES {
            let a = s.next_request(now).expect("the only peer is asked again after its backoff");
            assert_eq!(s.on_failure(now, a.peer, a.chunk, Failure::Timeout), Some(strike == MAX_STRIKES));
            if strike < MAX_STRIKES {
                assert_eq!(s.next_request(now), None, "backing off");
                now = s.next_deadline(now).expect("retry time");
            }
        }
        assert_eq!(s.status(now), Status::Running, "another peer is waited for");
        let waited = now + Duration::from_secs(10);
        assert_eq!(s.next_deadline(now), Some(waited), "for the timeout ceiling");
        assert_eq!(s.status(waited), Status::Stuck { missing: vec![0] });
    }

    #[test]
    fn a_partial_peer_with_only_what_is_here_is_no_host_to_wait_on() {
        let t0 = Instant::now();
        // Chunk 0 is here; B (another download of the file, or our own node sharing this one) has it alone.
        let mut s = Scheduler::new(1..8, full(&[A]), limits(4, 4));
        let mut only_first = Bitmap::empty(8);
        only_first.set(0);
        s.add_peer(B, Some(only_first), t0);
        let a = s.next_request(t0).expect("A asked");
        assert_eq!(a.peer, A);
        assert_eq!(s.on_failure(t0, a.peer, a.chunk, Failure::Unreachable), Some(true));
        assert!(!s.has_hosts(), "B has nothing missing here");
        assert_eq!(s.orphaned_until(t0), Some(t0 + Duration::from_secs(10)), "another host is waited for");
    }

    #[test]
    fn requests_failing_together_are_one_strike_and_a_peer_gone_is_waited_for_until_one_comes() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(0..8, full(&[A]), limits(4, 4));
        let asked = drain(&mut s, t0);
        assert_eq!(asked.len(), 4);
        // The peer goes away: its four requests fail at once, one strike.
        let t1 = t0 + Duration::from_millis(10);
        for a in &asked {
            assert_eq!(s.on_failure(t1, a.peer, a.chunk, Failure::Broken), Some(false));
        }
        assert_eq!(s.live_peers(), 1, "one cause, one strike");
        // Asked again after its backoff, it refuses: gone, and another peer is waited for.
        let t2 = s.next_deadline(t1).expect("a retry");
        assert!(t2 <= t1 + Duration::from_millis(500), "retried within the first backoff, not {:?}", t2 - t1);
        let a = s.next_request(t2).expect("asked again");
        assert_eq!(s.on_failure(t2, a.peer, a.chunk, Failure::Unreachable), Some(true));
        assert_eq!((s.status(t2), s.orphaned_until(t2)), (Status::Running, Some(t2 + Duration::from_secs(10))));
        assert!(s.may_join(A), "a peer that went away may come back");
        // It comes back within the wait: the download goes on.
        let t3 = t2 + Duration::from_secs(5);
        s.add_peer(A, None, t3);
        assert_eq!(s.orphaned_until(t3), None);
        assert!(s.next_request(t3).is_some());
    }

    #[test]
    fn corrupt_everywhere_is_stuck_naming_the_chunk() {
        let now = Instant::now();
        let mut s = Scheduler::new([0, 1, 2], full(&[A, B]), limits(4, 8));
        for a in drain(&mut s, now) {
            if a.chunk == 1 {
                s.on_failure(now, a.peer, a.chunk, Failure::Corrupt);
            } else {
                s.on_success(now, a.peer, a.chunk, CHUNK);
            }
        }
        let later = s.next_deadline(now).unwrap_or(now);
        let retry = s.next_request(later).expect("the other peer");
        assert_eq!(retry.chunk, 1);
        s.on_failure(later, retry.peer, retry.chunk, Failure::Corrupt);
        assert_eq!(s.next_request(later + Duration::from_secs(60)), None);
        assert_eq!(s.status(now), Status::Stuck { missing: vec![1] });
    }

    #[test]
    fn a_silent_peer_times_out_once_others_show_the_pace() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(0..40, full(&[A, B]), limits(4, 8));
        drain(&mut s, t0);
        assert_eq!(s.timeout(B), Duration::from_secs(10), "no pace known yet: the ceiling");
        // A answers quickly; B never does.
        let mut now = t0;
        for i in 1..=20u64 {
            now = t0 + Duration::from_millis(10 * i);
            if let Some(c) = s.in_flight.keys().find(|(p, _)| *p == A).map(|(_, c)| *c) {
                s.on_success(now, A, c, CHUNK);
            }
        }
        let deadline = s.next_deadline(now).expect("B's requests expire");
        assert!(deadline <= t0 + TIMEOUT_FLOOR * 2, "{:?}", deadline - t0);
        let expired = s.on_timeouts(deadline.max(now));
        assert!(expired.len() > 1 && expired.iter().all(|(a, _)| a.peer == B));
        assert!(expired.iter().all(|(_, dropped)| !dropped), "requests that expire together are one strike");
        assert_eq!(s.peers[&B].strikes, 1);
    }

    #[test]
    fn a_stalled_request_of_a_delivering_peer_is_asked_again_without_a_strike() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(0..40, full(&[A]), limits(4, 8));
        drain(&mut s, t0);
        let stuck = s.in_flight.keys().map(|(_, c)| *c).min().expect("in flight");
        // A delivers every other request, one each 100 ms; `stuck` never arrives, and expires meanwhile.
        let mut expiries = 0;
        for i in 1..=39u64 {
            let now = t0 + Duration::from_millis(100 * i);
            if let Some(c) = s.in_flight.keys().map(|(_, c)| *c).filter(|c| *c != stuck).min() {
                s.on_success(now, A, c, CHUNK);
            }
            for (expired, dropped) in s.on_timeouts(now) {
                assert!(!dropped && expired.chunk == stuck);
                expiries += 1;
            }
            assert_eq!(s.peers[&A].strikes, 0, "a peer that keeps delivering is not failing");
            drain(&mut s, now);
        }
        assert!(expiries > 0, "the stalled request expired");
        assert_eq!(s.live_peers(), 1);
    }

    #[test]
    fn endgame_duplicates_the_last_chunk_and_cancels_the_loser() {
        let now = Instant::now();
        let mut s = Scheduler::new([0, 1], full(&[A, B]), limits(1, 4));
        let first = s.next_request(now).expect("one");
        let second = s.next_request(now).expect("two");
        let done = now + Duration::from_millis(10);
        s.on_success(done, second.peer, second.chunk, CHUNK);
        assert_eq!(s.next_request(done), None, "the first request is not lagging yet");
        let lagging = s.next_deadline(now).expect("endgame wake-up");
        let duplicate = s.next_request(lagging).expect("endgame copy");
        assert_eq!(duplicate.chunk, first.chunk);
        assert_ne!(duplicate.peer, first.peer);
        assert_eq!(s.next_request(lagging), None, "each chunk is duplicated once");
        let cancelled = s.on_success(lagging, duplicate.peer, duplicate.chunk, CHUNK);
        assert_eq!(cancelled, Some(vec![first]));
        assert_eq!(s.status(now), Status::Done);
        let late = s.on_success(lagging, first.peer, first.chunk, CHUNK);
        assert_eq!(late, None, "the cancelled copy completed anyway: settled already, not counted again");
        assert_eq!(s.on_failure(lagging, first.peer, first.chunk, Failure::Timeout), None, "nor failed");
    }

    #[test]
    fn partial_peers_are_asked_only_for_what_they_have() {
        let now = Instant::now();
        let mut s = Scheduler::new(0..4, vec![(A, Some(bits(0b0101)))], limits(4, 4));
        let asked: Vec<u32> = drain(&mut s, now).iter().map(|a| a.chunk).collect();
        assert_eq!(asked, vec![0, 2]);
        for c in asked {
            s.on_success(now, A, c, CHUNK);
        }
        assert_eq!(s.status(now), Status::Stuck { missing: vec![1, 3] });
    }

    #[test]
    fn each_peer_is_asked_for_the_rarest_chunk_it_has() {
        let now = Instant::now();
        let peers = vec![(A, None), (B, Some(bits(0b0011))), (C, Some(bits(0b0001)))];
        let mut s = Scheduler::new(0..4, peers, limits(1, 3));
        let asked: Vec<(NodeId, u32)> = drain(&mut s, now).iter().map(|a| (a.peer, a.chunk)).collect();
        // Chunks 2 and 3 only A has; 1 A and B; 0 everyone.
        assert_eq!(asked, vec![(A, 2), (B, 1), (C, 0)]);
    }

    #[test]
    fn shuffled_downloads_ask_for_chunks_in_different_orders() {
        let now = Instant::now();
        let order = |seed| {
            let mut s = Scheduler::new(0..64, full(&[A]), limits(4, 4)).shuffled(seed);
            let mut asked = Vec::new();
            while let Some(a) = s.next_request(now) {
                asked.push(a.chunk);
                s.on_success(now, a.peer, a.chunk, CHUNK);
            }
            asked
        };
        let (one, two) = (order(1), order(2));
        assert_ne!(one, two);
        assert_ne!(one, (0..64).collect::<Vec<u32>>());
        let mut sorted = one.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..64).collect::<Vec<u32>>(), "each chunk once");
        assert_eq!(one, order(1), "one seed, one order");
    }

    #[test]
    fn partial_peers_are_waited_for_while_they_grow_and_given_up_on_once_they_stop() {
        let now = Instant::now();
        let mut s = Scheduler::new(0..3, [], limits(4, 4));
        s.add_peer(B, Some(bits(0b001)), now);
        assert_eq!(drain(&mut s, now), vec![Assignment { peer: B, chunk: 0 }]);
        s.on_success(now, B, 0, CHUNK);
        assert_eq!(s.status(now), Status::Running, "B may get the rest");
        let patience = limits(4, 4).timeout_ceiling * 2;
        assert_eq!(s.next_deadline(now), Some(now + patience));
        let later = now + patience / 2;
        assert!(!s.set_has(B, Some(bits(0b001)), later), "the same bitmap is no growth");
        assert!(s.set_has(B, Some(bits(0b011)), later));
        assert_eq!(drain(&mut s, later), vec![Assignment { peer: B, chunk: 1 }]);
        s.on_success(later, B, 1, CHUNK);
        assert_eq!(s.status(later + patience - Duration::from_millis(1)), Status::Running);
        assert_eq!(s.status(later + patience), Status::Stuck { missing: vec![2] }, "B stopped growing");
    }

    #[test]
    fn a_partial_peer_past_its_patience_sets_no_deadline() {
        let now = Instant::now();
        let mut s = seed_and_empty_partial(2, now);
        let later = now + limits(4, 4).timeout_ceiling * 3;
        assert_eq!(s.next_request(later).map(|a| a.peer), Some(A));
        let deadline = s.next_deadline(later).expect("the request expires");
        assert!(deadline > later, "a deadline in the past wakes the driver at once, for ever");
    }

    #[test]
    fn a_chunk_a_seed_sent_elsewhere_is_asked_of_the_swarm_first_then_of_the_seed_again() {
        let now = Instant::now();
        let mut s = seed_and_empty_partial(1, now);
        assert_eq!(drain(&mut s, now), vec![Assignment { peer: A, chunk: 0 }]);
        assert_eq!(s.on_failure(now, A, 0, Failure::Elsewhere), Some(false), "no failure of the seed");
        assert!(drain(&mut s, now).is_empty(), "not asked of the seed again at once");
        assert_eq!(s.next_deadline(now), Some(now + ELSEWHERE_WAIT));
        // The partial peer got it meanwhile: it is asked.
        let soon = now + ELSEWHERE_WAIT / 2;
        s.set_has(B, Some(bits(1)), soon);
        assert_eq!(drain(&mut s, soon), vec![Assignment { peer: B, chunk: 0 }]);
        s.on_failure(soon, B, 0, Failure::Broken);
        // It failed there: the seed is asked again once the wait is over.
        assert_eq!(drain(&mut s, now + ELSEWHERE_WAIT), vec![Assignment { peer: A, chunk: 0 }]);
        // With no partial peer to pass it on, a seed's refusal is asked again at once.
        let mut alone = Scheduler::new(0..1, full(&[A]), limits(4, 4));
        assert_eq!(drain(&mut alone, now), vec![Assignment { peer: A, chunk: 0 }]);
        alone.on_failure(now, A, 0, Failure::Elsewhere);
        assert_eq!(drain(&mut alone, now), vec![Assignment { peer: A, chunk: 0 }]);
    }
}
