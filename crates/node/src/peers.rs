//! The one peer table of a process: its discoveries run once, and everything that needs to know who is
//! on the LAN (the client's listings and fetches, the server's upload log, the swarm's joining peers)
//! reads this table or subscribes to its changes. A serving side announces through it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use discovery::{Discovery, Merged, Peer, PeerEvent};
use proto::{Announcement, NodeId};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;
use transport::Transport;

use crate::download::Source;
use crate::error::{NodeError, PeersError};

/// Answers are taken as settled once no new peer answered for this long (LAN answers arrive within
/// milliseconds), and at the timeout whatever peers do.
const SETTLE_QUIET: Duration = Duration::from_millis(250);
/// How often the query is repeated while nobody has answered (datagrams get lost; peers start late).
const REQUERY: Duration = Duration::from_millis(500);
/// Changes kept for subscribers that lag behind; one that misses some reads the table again.
const CHANGES_BUFFER: usize = 1024;

/// The peers a process knows, fed by its discoveries; cloned into whatever needs it (all clones are one
/// table). The discoveries stop when the last clone is dropped.
#[derive(Clone)]
pub struct PeerTable(Arc<Handle>);

struct Handle {
    known: Arc<Known>,
    commands: mpsc::UnboundedSender<Command>,
}

/// What the discovery task keeps up to date.
struct Known {
    peers: Mutex<BTreeMap<(NodeId, IpAddr), Peer>>,
    changes: broadcast::Sender<PeerEvent>,
    /// Whether a wait for answers has once run its course: from then on the table is live, and read as
    /// it is (a long-lived process surveys once, not per call).
    settled: AtomicBool,
    /// Set once the discoveries have all stopped.
    stopped: watch::Sender<bool>,
}

enum Command {
    Announce(Announcement),
    Query,
}

impl PeerTable {
    /// Starts `discoveries` (at least one) as one, and asks the LAN who is there. Within a tokio runtime.
    pub fn start(discoveries: Vec<Box<dyn Discovery>>) -> Result<Self, NodeError> {
        if discoveries.is_empty() {
            return Err(NodeError::NoPlugin("discovery"));
        }
        let (stopped, _) = watch::channel(false);
        let known = Arc::new(Known {
            peers: Mutex::default(),
            changes: broadcast::channel(CHANGES_BUFFER).0,
            settled: AtomicBool::new(false),
            stopped,
        });
        let (commands, orders) = mpsc::unbounded_channel();
        let discovery = Merged::new(discoveries);
        discovery.query();
        tokio::spawn(run(discovery, orders, known.clone()));
        Ok(Self(Arc::new(Handle { known, commands })))
    }

    /// Announces `record` from now on, at every interval (replacing any earlier one).
    pub fn announce(&self, record: Announcement) {
        let _ = self.0.commands.send(Command::Announce(record));
    }

    /// Asks every node within reach to announce itself now.
    pub fn query(&self) {
        let _ = self.0.commands.send(Command::Query);
    }

    /// The peers known now.
    pub fn now(&self) -> Vec<Peer> {
        self.0.known.peers().values().cloned().collect()
    }

    /// Each change from now on (seen, updated, expired). A subscriber that lags behind misses some: it
    /// is told so, and reads [`PeerTable::now`] again.
    pub fn subscribe(&self) -> broadcast::Receiver<PeerEvent> {
        self.0.known.changes.subscribe()
    }

    /// The peers on the LAN. The first time (and whenever the table is empty): waits up to `timeout` for a
    /// first answer, asking again every half second, then until no new peer answered for a moment. Once
    /// that has run its course the table is live, and answers at once.
    pub async fn settled(&self, timeout: Duration) -> Result<Vec<Peer>, PeersError> {
        let known = &self.0.known;
        if known.settled.load(Ordering::Relaxed) && !known.peers().is_empty() {
            return Ok(self.now());
        }
        let mut changes = self.subscribe();
        let mut stopped = known.stopped.subscribe();
        let give_up = Instant::now() + timeout;
        while known.peers().is_empty() {
            let wait = (Instant::now() + REQUERY).min(give_up);
            tokio::select! {
                // A change, or changes missed: either way the table is read again.
                _ = changes.recv() => {}
                () = tokio::time::sleep_until(wait) => {
                    if Instant::now() >= give_up {
                        return Err(PeersError::NoneAnswered(timeout));
                    }
                    self.query();
                }
                _ = stopped.wait_for(|s| *s) => return Err(PeersError::Stopped),
            }
        }
        // Only a new peer extends the wait: one that re-announces without end must not keep us here.
        let mut quiet_until = Instant::now() + SETTLE_QUIET;
        while let Ok(changed) = tokio::time::timeout_at(quiet_until.min(give_up), changes.recv()).await {
            match changed {
                Ok(PeerEvent::Seen(_)) => quiet_until = Instant::now() + SETTLE_QUIET,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
        known.settled.store(true, Ordering::Relaxed);
        Ok(self.now())
    }

    /// Completes once every discovery has stopped.
    pub async fn stopped(&self) {
        let _ = self.0.known.stopped.subscribe().wait_for(|s| *s).await;
    }
}

impl Known {
    fn peers(&self) -> MutexGuard<'_, BTreeMap<(NodeId, IpAddr), Peer>> {
        self.peers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn apply(&self, event: &PeerEvent) {
        let peer = event.peer();
        let key = (peer.id(), peer.ip);
        match event {
            PeerEvent::Seen(p) | PeerEvent::Updated(p) => _ = self.peers().insert(key, p.clone()),
            PeerEvent::Expired(_) => _ = self.peers().remove(&key),
        }
        // Nobody listening is fine: the table holds it.
        let _ = self.changes.send(event.clone());
    }
}

/// Runs the discoveries until they stop or every handle of the table is gone.
async fn run(mut discovery: Merged, mut orders: mpsc::UnboundedReceiver<Command>, known: Arc<Known>) {
    let started = Instant::now();
    loop {
        tokio::select! {
            order = orders.recv() => match order {
                Some(Command::Announce(record)) => discovery.announce(record),
                Some(Command::Query) => discovery.query(),
                None => break,
            },
            event = discovery.next_event() => match event {
                Some(event) => {
                    if let PeerEvent::Seen(p) = &event {
                        let after_ms = started.elapsed().as_millis();
                        tracing::debug!(peer = %p.announcement.name, ip = %p.ip, after_ms, "peer answered");
                    }
                    known.apply(&event);
                }
                None => break,
            },
        }
    }
    known.stopped.send_replace(true);
}

/// `peer` as a source: over the first of `transports` (preferred first) that it announces.
pub(crate) fn reach(transports: &[Arc<dyn Transport>], peer: &Peer) -> Option<Source> {
    transports
        .iter()
        .find_map(|t| peer.addr(t.name()).map(|addr| Source { node: peer.id(), addr, has: None, transport: t.clone() }))
}

#[cfg(test)]
mod tests {
    use discovery::memory::MemoryLan;

    use super::*;

    fn record(id: u8) -> Announcement {
        Announcement {
            node: NodeId([id; 32]),
            instance: 1,
            name: format!("n{id}"),
            ports: vec![("tls".into(), 5001)],
            catalogue_version: 1,
            file_count: 0,
            interval_secs: 1,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_table_settles_once_then_answers_from_what_it_knows() {
        let lan = MemoryLan::default();
        let table = PeerTable::start(vec![Box::new(lan.join([10, 0, 0, 1].into(), NodeId([1; 32]), true))])
            .expect("a discovery");
        let first = lan.join([10, 0, 0, 2].into(), NodeId([2; 32]), true);
        first.announce(record(2));
        let peers = table.settled(Duration::from_secs(5)).await.expect("one answered");
        assert_eq!(peers.len(), 1);
        // Live from now on: a peer that joins is in the next answer, with no wait for answers to settle.
        let mut changes = table.subscribe();
        let second = lan.join([10, 0, 0, 3].into(), NodeId([3; 32]), true);
        second.announce(record(3));
        assert!(matches!(changes.recv().await, Ok(PeerEvent::Seen(_))));
        let before = Instant::now();
        assert_eq!(table.settled(Duration::from_secs(5)).await.expect("live").len(), 2);
        assert_eq!(before.elapsed(), Duration::ZERO, "a settled table answers at once");
    }

    #[tokio::test(start_paused = true)]
    async fn nobody_answering_is_an_error_at_the_timeout() {
        let lan = MemoryLan::default();
        let table = PeerTable::start(vec![Box::new(lan.join([10, 0, 0, 1].into(), NodeId([1; 32]), true))])
            .expect("a discovery");
        let started = Instant::now();
        let error = table.settled(Duration::from_secs(3)).await.expect_err("nobody there");
        assert!(matches!(error, PeersError::NoneAnswered(_)), "{error}");
        assert_eq!(started.elapsed(), Duration::from_secs(3));
    }
}
