//! The loop of a datagram discovery (udp, memory): announcements and queries out, datagrams in, the
//! peer cache's expiry, over any medium that carries [`proto::Datagram`]s. One clock, tokio's, so that
//! on a paused clock intervals and expiry take no real time.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use proto::{Announcement, Datagram, GroupKey, NodeId};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use crate::sealed::Seal;
use crate::{Discovery, PeerCache, PeerEvent};

/// Pending commands and undelivered events; a full event queue holds the loop back.
const QUEUE: usize = 256;

/// What carries datagrams between nodes.
#[async_trait]
pub(crate) trait Medium: Send + Sync + 'static {
    /// The next datagram and its sender; cancel-safe.
    async fn recv(&mut self) -> io::Result<(Vec<u8>, SocketAddr)>;

    /// Sends to every node within broadcast reach.
    async fn broadcast(&self, bytes: &[u8]);

    /// Sends to one node.
    async fn send_to(&self, bytes: &[u8], to: SocketAddr);
}

/// A running datagram discovery; dropping it stops its task.
#[derive(Debug)]
pub struct DatagramDiscovery {
    commands: mpsc::Sender<Command>,
    events: mpsc::Receiver<PeerEvent>,
}

#[derive(Debug)]
enum Command {
    Announce(Box<Announcement>),
    Query,
}

impl DatagramDiscovery {
    /// Starts the loop of node `local` on `medium` (within a tokio runtime): it announces every
    /// `interval`, and sends its record and queries to `unicast` as well as broadcasting them.
    /// With `group`, every datagram is sealed for the group's members, and only theirs are heard.
    pub(crate) fn start(
        medium: impl Medium,
        local: NodeId,
        interval: Duration,
        unicast: Vec<SocketAddr>,
        group: Option<&GroupKey>,
    ) -> Self {
        let (commands, rx) = mpsc::channel(QUEUE);
        let (tx, events) = mpsc::channel(QUEUE);
        let (cache, seal) = (PeerCache::new(local), group.map(Seal::new));
        let task = Task { medium, local, interval, unicast, cache, record: None, commands: rx, events: tx, seal };
        tokio::spawn(task.run());
        Self { commands, events }
    }

    fn send(&self, command: Command) {
        // A full queue means the task is far behind; a lost announce or query is repeated at the next
        // interval, so dropping it is harmless.
        let _ = self.commands.try_send(command);
    }
}

#[async_trait]
impl Discovery for DatagramDiscovery {
    fn announce(&self, record: Announcement) {
        self.send(Command::Announce(Box::new(record)));
    }

    fn query(&self) {
        self.send(Command::Query);
    }

    async fn next_event(&mut self) -> Option<PeerEvent> {
        self.events.recv().await
    }
}

/// The background task: owns the medium and the cache.
struct Task<M> {
    medium: M,
    local: NodeId,
    interval: Duration,
    unicast: Vec<SocketAddr>,
    cache: PeerCache,
    record: Option<Announcement>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<PeerEvent>,
    seal: Option<Seal>,
}

impl<M: Medium> Task<M> {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
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
                received = self.medium.recv() => match received {
                    Ok((bytes, from)) => self.on_datagram(&bytes, from).await,
                    Err(e) => tracing::debug!(error = %e, "discovery receive failed"),
                },
                _ = tick.tick() => {
                    self.announce().await;
                    self.query_unicast().await;
                }
                () = sleep_until(deadline) => {
                    for event in self.cache.expire(Instant::now().into_std()) {
                        self.emit(event).await;
                    }
                }
            }
        }
    }

    async fn on_datagram(&mut self, bytes: &[u8], from: SocketAddr) {
        let opened;
        let bytes = match &self.seal {
            Some(seal) => match seal.open(bytes) {
                Some(inside) => {
                    opened = inside;
                    &opened
                }
                None => return,
            },
            None => bytes,
        };
        match Datagram::decode(bytes) {
            Ok(Datagram::Announce(a)) => {
                for event in self.cache.on_announcement(Instant::now().into_std(), from.ip(), a) {
                    self.emit(event).await;
                }
            }
            Ok(Datagram::Query { from: asker }) if asker != self.local => {
                if let Some(bytes) = self.record_bytes() {
                    self.medium.send_to(&bytes, from).await;
                }
            }
            Ok(Datagram::Query { .. }) | Err(_) => {}
        }
    }

    async fn emit(&self, event: PeerEvent) {
        let _ = self.events.send(event).await;
    }

    fn record_bytes(&self) -> Option<Vec<u8>> {
        let record = self.record.clone()?;
        let bytes = Datagram::Announce(record).encode();
        self.sealed(bytes.inspect_err(|e| tracing::warn!(error = %e, "announcement not sent")).ok()?)
    }

    /// `bytes` as they go out: sealed for the group, if there is one.
    fn sealed(&self, bytes: Vec<u8>) -> Option<Vec<u8>> {
        match &self.seal {
            Some(seal) => seal.seal(&bytes).or_else(|| {
                tracing::warn!(len = bytes.len(), "datagram too long to seal; not sent");
                None
            }),
            None => Some(bytes),
        }
    }

    /// Broadcasts our record (if we serve) and sends it to the unicast peers.
    async fn announce(&self) {
        if let Some(bytes) = self.record_bytes() {
            self.medium.broadcast(&bytes).await;
            for peer in &self.unicast {
                self.medium.send_to(&bytes, *peer).await;
            }
        }
    }

    async fn query(&self) {
        if let Some(bytes) = self.query_bytes() {
            self.medium.broadcast(&bytes).await;
        }
        self.query_unicast().await;
    }

    /// Unicast peers cannot hear our broadcasts, and may not know us: ask them directly.
    async fn query_unicast(&self) {
        let Some(bytes) = self.query_bytes() else { return };
        for peer in &self.unicast {
            self.medium.send_to(&bytes, *peer).await;
        }
    }

    fn query_bytes(&self) -> Option<Vec<u8>> {
        self.sealed(Datagram::Query { from: self.local }.encode().expect("a query has no variable-length field"))
    }
}

pub(crate) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
