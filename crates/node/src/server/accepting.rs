//! Accepting connections within the node's limits, and serving each in a task of its own: what a
//! serving node and a swarming `get` share. Connections count against their holder (an address, or a
//! trusted node id); when the node is full, one of the holder with the most is closed for a newcomer
//! that holds fewer, so a few hosts cannot lock everyone else out.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use proto::{FileId, NodeId};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::{AbortHandle, JoinSet};
use transport::{Incoming, Listener, Transport};

use super::connection::{answer_busy, serve_connection};
use super::context::{Sent, ServeContext, Upload};
use crate::NodeError;

/// Connections served at once; further ones are answered busy, or take the place of one of the holder
/// with the most.
pub const MAX_CONNECTIONS: usize = 128;
/// Connections one holder may hold at once (a TCP downloader keeps up to 16 sockets to a peer, and a
/// host may run several): an address, or a node id that a trust list vouches for (trusted peers behind one
/// address, a NAT or a VPN gateway, each get as many).
pub const MAX_CONNECTIONS_PER_PEER: usize = 48;
/// How long a newcomer waits for the slot of the connection closed for it.
const EVICTION_WAIT: Duration = Duration::from_secs(1);
/// Accepted connections waiting for the serving loop.
const ACCEPT_QUEUE: usize = 16;
/// Connections over the limits answered busy at once; beyond these they are closed unanswered.
const BUSY_ANSWERS: usize = 32;

/// The listeners of a node and the connections they accepted, each served in a task of its own within
/// [`MAX_CONNECTIONS`] and [`MAX_CONNECTIONS_PER_PEER`]; connections over those are answered busy.
pub(crate) struct Listening {
    incoming: mpsc::Receiver<Box<dyn Incoming>>,
    accepting: JoinSet<()>,
    limit: Arc<Semaphore>,
    per_peer: Arc<PeerSlots>,
    busy_answers: Arc<Semaphore>,
    connections: JoinSet<(SocketAddr, Option<Vec<Sent>>)>,
    /// The connections served, by holder, oldest first: those eviction picks from.
    held: HashMap<Holder, Vec<AbortHandle>>,
    /// Each connection task's holder and peer address.
    tasks: HashMap<tokio::task::Id, (Holder, SocketAddr)>,
    uploads: UploadTally,
}

/// Whom a connection counts against: its address, or the node id a trust list vouches for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Holder {
    Address(IpAddr),
    Node(NodeId),
}

impl Holder {
    fn of(incoming: &dyn Incoming) -> Self {
        match incoming.authenticated() {
            Some(proven) if incoming.vouched() => Holder::Node(proven.peer),
            _ => Holder::Address(incoming.remote_addr().ip()),
        }
    }
}

impl Listening {
    /// Accepts on every listener from now on.
    pub(crate) fn start(listeners: Vec<(Vec<String>, Box<dyn Listener>)>) -> Self {
        let (incoming, accepting) = accept_all(listeners);
        Self {
            incoming,
            accepting,
            limit: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            per_peer: Arc::new(PeerSlots::default()),
            busy_answers: Arc::new(Semaphore::new(BUSY_ANSWERS)),
            connections: JoinSet::new(),
            held: HashMap::new(),
            tasks: HashMap::new(),
            uploads: UploadTally::default(),
        }
    }

    /// Serves what comes in with `context` until a peer that took something holds no connection any
    /// more: returns what it took (named as `names` says). An error: a listener stopped. Cancel-safe.
    pub(crate) async fn next(
        &mut self,
        context: &ServeContext,
        names: &HashMap<NodeId, String>,
    ) -> Result<Vec<Upload>, NodeError> {
        loop {
            tokio::select! {
                Some(joined) = self.accepting.join_next() => match joined {
                    // Only the runtime cancels a listener, as it shuts down: that is no failure to tell.
                    Err(e) if e.is_cancelled() => std::future::pending::<()>().await,
                    joined => return Err(NodeError::task_stopped("listener", joined)),
                },
                Some(accepted) = self.incoming.recv() => self.admit(accepted, context),
                Some(joined) = self.connections.join_next_with_id() => {
                    let id = match &joined {
                        Ok((id, _)) => *id,
                        Err(e) => e.id(),
                    };
                    let Some((holder, peer)) = self.tasks.remove(&id) else { continue };
                    if let Some(held) = self.held.get_mut(&holder) {
                        held.retain(|task| task.id() != id);
                        if held.is_empty() {
                            self.held.remove(&holder);
                        }
                    }
                    // An evicted connection sent what it sent; a busy answer sent nothing to count.
                    let sent = match joined {
                        Ok((_, (_, Some(sent)))) => sent,
                        Ok((_, (_, None))) => continue,
                        Err(_) => Vec::new(),
                    };
                    let uploads = self.uploads.closed(peer.ip(), sent, names);
                    if !uploads.is_empty() {
                        return Ok(uploads);
                    }
                }
                else => std::future::pending().await,
            }
        }
    }

    /// Serves `accepted` if the limits allow (where the node is full, in the place of a connection of the
    /// holder with the most, if that holds more than the newcomer would), or answers it busy.
    fn admit(&mut self, accepted: Box<dyn Incoming>, context: &ServeContext) {
        let (peer, holder) = (accepted.remote_addr(), Holder::of(&*accepted));
        let permit = match self.limit.clone().try_acquire_owned() {
            Ok(permit) => Some(Slot::Free(permit)),
            Err(_) => self.evict_for(holder).then(|| Slot::Freed(self.limit.clone())),
        };
        match (permit, self.per_peer.take(holder)) {
            (Some(permit), Some(slot)) => {
                let context = ServeContext { peer_buffers: slot.buffers.clone(), ..context.clone() };
                self.uploads.opened(peer.ip(), accepted.authenticated().map(|a| a.peer));
                let task = self.connections.spawn(async move {
                    let Some(permit) = permit.taken().await else { return (peer, Some(Vec::new())) };
                    let sent = serve_connection(accepted, context).await;
                    drop((permit, slot));
                    (peer, Some(sent))
                });
                self.tasks.insert(task.id(), (holder, peer));
                self.held.entry(holder).or_default().push(task);
            }
            _ => {
                // Debug only: every client of a busy seed would log here, and so would a flood.
                tracing::debug!(%peer, "connection limit reached, answered busy");
                // Busy answers are few and short, so a flood of connections costs little.
                if let Ok(permit) = self.busy_answers.clone().try_acquire_owned() {
                    let task = self.connections.spawn(async move {
                        answer_busy(accepted).await;
                        drop(permit);
                        (peer, None)
                    });
                    self.tasks.insert(task.id(), (holder, peer));
                }
            }
        }
    }

    /// Closes the oldest connection of the holder with the most, if it holds at least two more than
    /// `newcomer` does (so that the newcomer, admitted in its place, still holds fewer). Whether it did.
    fn evict_for(&mut self, newcomer: Holder) -> bool {
        let holds = |holder: &Holder| self.held.get(holder).map_or(0, Vec::len);
        let Some((&top, most)) = self.held.iter().max_by_key(|(_, held)| held.len()) else { return false };
        if most.len() < holds(&newcomer) + 2 {
            return false;
        }
        tracing::debug!(evicted = ?top, for_ = ?newcomer, "node full: a connection of the holder with the most closed");
        if let Some(held) = self.held.get_mut(&top) {
            held.remove(0).abort();
        }
        true
    }

    /// Stops accepting and closes every connection at once.
    pub(crate) async fn shutdown(mut self) {
        self.accepting.abort_all();
        self.connections.shutdown().await;
    }
}

/// A place among the node's connections: free now, or freed by an eviction and taken once the evicted
/// connection has let go of it.
enum Slot {
    Free(OwnedSemaphorePermit),
    Freed(Arc<Semaphore>),
}

impl Slot {
    async fn taken(self) -> Option<OwnedSemaphorePermit> {
        match self {
            Slot::Free(permit) => Some(permit),
            Slot::Freed(limit) => tokio::time::timeout(EVICTION_WAIT, limit.acquire_owned()).await.ok()?.ok(),
        }
    }
}

/// What each address took, told once it holds no connection any more: a download spreads over several
/// connections (one socket per exchange in flight on tcp and tls), and people want one line for it.
#[derive(Default)]
struct UploadTally(HashMap<IpAddr, Tally>);

#[derive(Default)]
struct Tally {
    open: usize,
    /// The id a connection from the address proved, if any did.
    proven: Option<NodeId>,
    sent: HashMap<FileId, Sent>,
}

impl UploadTally {
    fn opened(&mut self, ip: IpAddr, proven: Option<NodeId>) {
        let tally = self.0.entry(ip).or_default();
        tally.open += 1;
        tally.proven = tally.proven.or(proven);
    }

    /// Counts what a connection of `ip` sent; once it was the last, the uploads to `ip`, named as
    /// `names` (announced names by node id) know the proven id.
    fn closed(&mut self, ip: IpAddr, sent: Vec<Sent>, names: &HashMap<NodeId, String>) -> Vec<Upload> {
        let Some(tally) = self.0.get_mut(&ip) else { return Vec::new() };
        for s in sent {
            tally.sent.entry(s.file).and_modify(|total| total.bytes += s.bytes).or_insert(s);
        }
        tally.open -= 1;
        if tally.open > 0 {
            return Vec::new();
        }
        let Some(tally) = self.0.remove(&ip) else { return Vec::new() };
        let peer_name = tally.proven.and_then(|id| names.get(&id).cloned());
        let upload = |Sent { file, path, name, size, bytes }| Upload {
            peer: ip,
            peer_name: peer_name.clone(),
            file,
            path,
            name,
            size,
            bytes,
        };
        tally.sent.into_values().map(upload).collect()
    }
}

/// Connections held per holder, and the send buffers their exchanges share.
#[derive(Default)]
struct PeerSlots(std::sync::Mutex<std::collections::HashMap<Holder, (usize, Arc<Semaphore>)>>);

impl PeerSlots {
    /// A slot for one more connection of `holder`, if it holds fewer than the limit.
    fn take(self: &Arc<Self>, holder: Holder) -> Option<PeerSlot> {
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (count, buffers) =
            held.entry(holder).or_insert_with(|| (0, Arc::new(Semaphore::new(super::context::PEER_SEND_BUDGET))));
        if *count >= MAX_CONNECTIONS_PER_PEER {
            return None;
        }
        *count += 1;
        Some(PeerSlot { slots: self.clone(), holder, buffers: buffers.clone() })
    }
}

/// One connection's slot, given back when the connection ends.
struct PeerSlot {
    slots: Arc<PeerSlots>,
    holder: Holder,
    buffers: Arc<Semaphore>,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut held = self.slots.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((count, _)) = held.get_mut(&self.holder) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.holder);
            }
        }
    }
}

/// Binds every transport: the first on `port` (any free port where it is taken and `or_any`), then the
/// others on the same number where it is free (UDP and TCP ports are separate), so a peer sees one port
/// number however it connects. Each
/// listener comes with the names it is announced by: its transport's, and those it also serves.
pub(crate) async fn bind_all(
    transports: &[Arc<dyn Transport>],
    port: u16,
    or_any: bool,
) -> Result<Vec<(Vec<String>, Box<dyn Listener>)>, NodeError> {
    let mut listeners: Vec<(Vec<String>, Box<dyn Listener>)> = Vec::new();
    for transport in transports {
        let same = listeners.first().map_or(port, |(_, l)| l.local_addr().port());
        let listener = match transport.bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, same))).await {
            Err(e) if (port == 0 && !listeners.is_empty()) || or_any => {
                tracing::debug!(transport = transport.name(), port = same, error = %e, "port taken, using another");
                transport.bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))).await?
            }
            other => other?,
        };
        let names = std::iter::once(transport.name().to_string()).chain(transport.also_serves()).collect();
        listeners.push((names, listener));
    }
    Ok(listeners)
}

/// Accepts on every listener, each in its own task, into one bounded queue.
fn accept_all(listeners: Vec<(Vec<String>, Box<dyn Listener>)>) -> (mpsc::Receiver<Box<dyn Incoming>>, JoinSet<()>) {
    let (tx, rx) = mpsc::channel(ACCEPT_QUEUE);
    let mut tasks = JoinSet::new();
    for (names, mut listener) in listeners {
        let tx = tx.clone();
        tasks.spawn(async move {
            loop {
                match listener.accept().await {
                    Ok(incoming) => {
                        if tx.send(incoming).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(transport = names.join("+"), error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
    }
    (rx, tasks)
}
