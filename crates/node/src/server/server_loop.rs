//! The server loop: one for every process that serves, whatever it shares (a node its folders, a fetch
//! the files it downloads). It answers peers within the node's limits, announces each new catalogue
//! version through the peer table, and tells what peers took.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use discovery::PeerEvent;
use proto::{Announcement, NodeId};
use tokio::sync::{broadcast, mpsc};
use transport::Listener;

use super::accepting::Listening;
use super::context::{ServeContext, Shares};
use crate::peers::PeerTable;
use crate::{NodeError, NodeEvent};

/// A bound server: its listeners, what it serves ([`ServeContext::shares`], kept up to date by its
/// share source) and how it announces itself.
pub(crate) struct ServerLoop {
    pub(crate) herald: Herald,
    pub(crate) listening: Listening,
    pub(crate) context: ServeContext,
    pub(crate) peers: PeerTable,
}

impl ServerLoop {
    /// Serves until `shutdown` completes, then closes every connection at once. `source` is what keeps
    /// the shares up to date; its end (with why) stops the server with an error, as does a listener's or
    /// the discovery's. `told` are the source's own events, handed to `on_event` with the uploads.
    pub(crate) async fn run(
        self,
        source: impl Future<Output = NodeError>,
        mut told: mpsc::UnboundedReceiver<NodeEvent>,
        shutdown: impl Future<Output = ()>,
        on_event: &mut (dyn FnMut(&NodeEvent) + Send),
    ) -> Result<(), NodeError> {
        let ServerLoop { herald, mut listening, context, peers } = self;
        let mut shares = context.shares.clone();
        let mut announced = shares.borrow().version;
        peers.announce(herald.record(&shares.borrow()));
        // Nodes that started before us have announced already: ask them now rather than wait an interval.
        peers.query();
        let mut changes = peers.subscribe();
        let mut peer_log = PeerLog::default();
        for peer in peers.now() {
            peer_log.names.insert(peer.id(), peer.announcement.name);
        }
        let discovery_stopped = peers.stopped();
        tokio::pin!(shutdown, source, discovery_stopped);
        let outcome = loop {
            tokio::select! {
                () = &mut shutdown => break Ok(()),
                stopped = &mut source => break Err(stopped),
                served = listening.next(&context, &peer_log.names) => match served {
                    Ok(uploads) if uploads.is_empty() => {}
                    Ok(uploads) => on_event(&NodeEvent::Uploaded(uploads)),
                    Err(e) => break Err(e),
                },
                Ok(()) = shares.changed() => {
                    let current = shares.borrow_and_update().clone();
                    if current.version != announced {
                        announced = current.version;
                        let bytes = current.catalogue.len();
                        tracing::info!(files = current.files.len(), version = current.version, bytes, "catalogue changed");
                        peers.announce(herald.record(&current));
                    }
                }
                Some(event) = told.recv() => on_event(&event),
                changed = changes.recv() => match changed {
                    Ok(event) => peer_log.log(event),
                    Err(broadcast::error::RecvError::Lagged(missed)) => peer_log.missed(missed),
                    Err(broadcast::error::RecvError::Closed) => {}
                },
                () = &mut discovery_stopped => break Err(NodeError::task_stopped("discovery", Ok(()))),
            }
        };
        listening.shutdown().await;
        outcome
    }
}

/// Who a node announces itself as, and where it listens: all of its announcements but the catalogue's
/// version and size.
pub(crate) struct Herald {
    id: NodeId,
    /// Told apart from an earlier run of the same node.
    instance: u64,
    name: String,
    ports: Vec<(String, u16)>,
    interval: Duration,
}

impl Herald {
    pub(crate) fn new(
        id: NodeId,
        name: String,
        listeners: &[(Vec<String>, Box<dyn Listener>)],
        interval: Duration,
    ) -> Self {
        let instance = u64::from_be_bytes(crate::random_id().0[..8].try_into().unwrap_or_default());
        let ports = local_addrs(listeners).into_iter().map(|(name, addr)| (name, addr.port())).collect();
        Self { id, instance, name, ports, interval }
    }

    /// The announcement of a node serving `shares`.
    pub(crate) fn record(&self, shares: &Shares) -> Announcement {
        Announcement {
            node: self.id,
            instance: self.instance,
            name: self.name.clone(),
            ports: self.ports.clone(),
            catalogue_version: shares.version,
            file_count: shares.files.len() as u32,
            interval_secs: self.interval.as_secs().clamp(1, u64::from(u16::MAX)) as u16,
        }
    }
}

/// The bound transfer address of each listener, by the names announced for it.
pub(crate) fn local_addrs(listeners: &[(Vec<String>, Box<dyn Listener>)]) -> Vec<(String, SocketAddr)> {
    let each = listeners.iter().map(|(names, l)| names.iter().map(|name| (name.clone(), l.local_addr())));
    each.flatten().collect()
}

/// Logs peer events, at most [`PEER_LOG_BURST`] a second per address: a host that floods announcements of
/// new ids must not flood the log (the cache bounds what it keeps; this bounds what is said about it), nor
/// hide the lines about other hosts.
#[derive(Default)]
struct PeerLog {
    window: Option<tokio::time::Instant>,
    per_address: HashMap<IpAddr, u32>,
    /// Events beyond [`PEER_LOG_BURST`] in the current second, not logged.
    dropped: u32,
    /// Events that came faster than the log read them, not logged.
    lagged: u32,
    /// The names peers announce, by node id: how uploads to them are told.
    names: HashMap<NodeId, String>,
}

/// Peer events logged per second and address at most.
const PEER_LOG_BURST: u32 = 5;
/// Addresses logged about per second at most.
const PEER_LOG_ADDRESSES: usize = 64;

impl PeerLog {
    /// Peer events that came too fast to be read: not logged, and said so at the next window.
    fn missed(&mut self, events: u64) {
        self.lagged = self.lagged.saturating_add(u32::try_from(events).unwrap_or(u32::MAX));
    }

    /// What the last window left out, in words; `None` where it left nothing out.
    fn unlogged(&self) -> Option<String> {
        let over = (self.dropped > 0).then(|| {
            format!(
                "{} beyond {PEER_LOG_BURST} a second from one address, or from past {PEER_LOG_ADDRESSES} addresses",
                self.dropped
            )
        });
        let lagged =
            (self.lagged > 0).then(|| format!("{} that came faster than the log could read them", self.lagged));
        let both: Vec<String> = over.into_iter().chain(lagged).collect();
        (!both.is_empty()).then(|| format!("peer events not logged: {}", both.join("; ")))
    }

    fn log(&mut self, event: PeerEvent) {
        match &event {
            PeerEvent::Seen(p) | PeerEvent::Updated(p) => _ = self.names.insert(p.id(), p.announcement.name.clone()),
            PeerEvent::Expired(p) => _ = self.names.remove(&p.id()),
        }
        let now = tokio::time::Instant::now();
        if self.window.is_none_or(|start| now - start >= Duration::from_secs(1)) {
            // At the level of the events it stands for: no warning where they would not show.
            if let Some(unlogged) = self.unlogged() {
                tracing::info!("{unlogged}");
            }
            (self.window, self.dropped, self.lagged) = (Some(now), 0, 0);
            self.per_address.clear();
        }
        let p = event.peer();
        let room = self.per_address.len() < PEER_LOG_ADDRESSES || self.per_address.contains_key(&p.ip);
        match self.per_address.entry(p.ip).or_default() {
            logged if room && *logged < PEER_LOG_BURST => *logged += 1,
            _ => {
                self.dropped += 1;
                return;
            }
        }
        match event {
            PeerEvent::Seen(p) => {
                tracing::info!(name = %p.announcement.name, id = %p.id().short(), ip = %p.ip, files = p.announcement.file_count, "peer seen")
            }
            PeerEvent::Updated(p) => tracing::debug!(name = %p.announcement.name, id = %p.id().short(), "peer updated"),
            PeerEvent::Expired(p) => {
                tracing::info!(name = %p.announcement.name, id = %p.id().short(), ip = %p.ip, "peer gone")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_peer_log_left_out_is_said_for_what_it_is() {
        let mut log = PeerLog::default();
        assert_eq!(log.unlogged(), None);
        log.missed(1);
        assert_eq!(
            log.unlogged().as_deref(),
            Some("peer events not logged: 1 that came faster than the log could read them")
        );
        log.dropped = 7;
        let said = log.unlogged().expect("said");
        assert!(said.starts_with("peer events not logged: 7 beyond 5 a second from one address"), "{said}");
        assert!(!said.contains("too many in one second"), "{said}");
    }

    #[tokio::test]
    async fn a_background_task_that_dies_is_an_error_saying_why() {
        let joined = tokio::spawn(async { panic!("disk on fire") }).await;
        let error = NodeError::task_stopped("rescan", joined).to_string();
        assert!(error.contains("rescan task stopped (it panicked: disk on fire)"), "{error}");
        let error = NodeError::task_stopped("discovery", Ok(())).to_string();
        assert!(error.contains("discovery task stopped (it ended)"), "{error}");
    }
}
