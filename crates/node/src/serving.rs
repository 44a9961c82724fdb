//! The serving node: shares its folders, announces itself, answers requests until told to stop.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use discovery::{Discovery, Merged, PeerEvent};
use proto::{Announcement, NodeId};
use store::{Change, HASH_CACHE_FILE, HashCache, Hashing, Library, StateKey};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinError;
use transport::{Identity, Listener, Transport};

use crate::accepting::{Listening, bind_all};
use crate::server::{ServeContext, Shares, Upload};
use crate::state_lock::StateLock;
use crate::watch::Changes;
use crate::{NodeError, ServeConfig, blocking, identity};

/// A node being put together: its folders checked, its state folder locked and its identity loaded, so
/// that transports can be made with that identity and discoveries with its id; then [`NodeBuilder::bind`].
pub struct NodeBuilder {
    config: ServeConfig,
    identity: Identity,
    lock: StateLock,
    transports: Vec<Arc<dyn Transport>>,
    discoveries: Vec<Box<dyn Discovery>>,
}

/// What a serving node tells as it runs.
#[derive(Clone, Debug)]
pub enum NodeEvent {
    /// How far the hashing of new and changed files has come, every [`HASHING_TOLD`] while it lasts
    /// (the files hashed so far are served already).
    Hashing(Hashing),
    /// The files there were at the start are hashed: `files` are shared, `bytes` in all. Told once.
    Ready {
        /// Files shared.
        files: usize,
        /// Their bytes.
        bytes: u64,
    },
    /// What a peer took of a file, once the peer holds no connection any more.
    Uploaded(Upload),
}

/// How often hashing progress is told, and the files hashed meanwhile published.
pub const HASHING_TOLD: Duration = Duration::from_millis(500);

/// What the node calls with each [`NodeEvent`].
type OnEvent = Box<dyn FnMut(&NodeEvent) + Send>;

impl NodeBuilder {
    /// The identity the node proves (for the transports that authenticate).
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Listens on `transport` too (the first one given takes the configured port, the others the same
    /// number where it is free).
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transports.push(transport);
        self
    }

    /// Announces on, and hears peers through, `discovery` too.
    pub fn discovery(mut self, discovery: Box<dyn Discovery>) -> Self {
        self.discoveries.push(discovery);
        self
    }

    /// Reads the shared folders, taking the files whose hashes are known (the new ones are hashed once
    /// the node runs, and served as they are), and binds every transport, so that every setup error
    /// surfaces here, before anything is announced.
    pub async fn bind(self) -> Result<Node, NodeError> {
        let NodeBuilder { config, identity, lock, transports, discoveries } = self;
        if transports.is_empty() {
            return Err(NodeError::NoPlugin("transport"));
        }
        if discoveries.is_empty() {
            return Err(NodeError::NoPlugin("discovery"));
        }
        let cache = HashCache::load(config.state_dir.join(HASH_CACHE_FILE));
        let key = StateKey::load_or_create(&config.state_dir)?;
        let shared = vec![config.dir.clone(), config.downloads.clone()];
        let mut library = Library::new(shared, config.state_dir.clone(), cache, key);
        let known_only = |_: &Library, _| ControlFlow::Break(());
        library = blocking(move || library.rescan_telling(None, Duration::ZERO, known_only).map(|_| library)).await?;
        let listeners = bind_all(&transports, config.port, false).await?;
        let discovery = Merged::new(discoveries);
        let on_event = Box::new(|_: &NodeEvent| {});
        Ok(Node { id: identity.node_id(), config, listeners, discovery, library, lock, on_event })
    }
}

/// A node bound to its ports with its folders scanned, ready to [`Node::run`].
pub struct Node {
    id: NodeId,
    config: ServeConfig,
    /// Each transport's listener, with the names announced for its port.
    listeners: Vec<(Vec<String>, Box<dyn Listener>)>,
    discovery: Merged,
    library: Library,
    /// Held until the node stops: no other node serves from its state folder meanwhile.
    lock: StateLock,
    on_event: OnEvent,
}

impl Node {
    /// Checks the folders, locks the state folder and loads (or creates) the node's identity: then hand
    /// it its plug-ins.
    pub fn builder(config: ServeConfig) -> Result<NodeBuilder, NodeError> {
        if config.dir.is_file() {
            return Err(NodeError::NotAFolder(config.dir.clone()));
        }
        if !config.dir.is_dir() {
            return Err(NodeError::MissingFolder(config.dir.clone()));
        }
        crate::check_writable(&config.downloads)?;
        let created = std::fs::create_dir_all(&config.downloads);
        created.map_err(|source| NodeError::NotWritable { dir: config.downloads.clone(), source })?;
        let lock = StateLock::acquire(&config.state_dir, &config.dir)?;
        let identity = identity::load_or_create(&config.state_dir)?;
        Ok(NodeBuilder { config, identity, lock, transports: Vec::new(), discoveries: Vec::new() })
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The bound transfer address of each transport, by the names announced for it.
    pub fn local_addrs(&self) -> Vec<(String, SocketAddr)> {
        local_addrs(&self.listeners)
    }

    /// How many files are shared so far: those whose hashes were known.
    pub fn file_count(&self) -> usize {
        self.library.len()
    }

    /// Calls `on_event` with what the node tells as it runs.
    pub fn on_event(mut self, on_event: impl FnMut(&NodeEvent) + Send + 'static) -> Self {
        self.on_event = Box::new(on_event);
        self
    }

    /// Runs the node in a task of its own until `shutdown` completes, and returns once the files there
    /// were at the start are hashed (for whoever downloads from it at once).
    pub async fn spawn_ready(
        mut self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<Result<(), NodeError>> {
        let (ready, is_ready) = tokio::sync::oneshot::channel();
        let (mut ready, mut told) = (Some(ready), std::mem::replace(&mut self.on_event, Box::new(|_| {})));
        self.on_event = Box::new(move |event| {
            if matches!(event, NodeEvent::Ready { .. })
                && let Some(ready) = ready.take()
            {
                let _ = ready.send(());
            }
            told(event);
        });
        let task = tokio::spawn(self.run(shutdown));
        // An error: the node stopped before it was ready, and the task says why.
        let _ = is_ready.await;
        task
    }

    /// Serves until `shutdown` completes; then every connection is closed at once.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
        let Node { id, config, listeners, mut discovery, library, lock: _lock, mut on_event } = self;
        let herald = Herald::new(id, config.name.clone(), &listeners, config.net.announce_interval);
        let (shares_tx, mut shares) = watch::channel(Arc::new(Shares::of(&library, 1)));
        let (told, mut tellings) = mpsc::unbounded_channel();
        let publisher = Publisher { shares: shares_tx, version: 1, told };
        let (rescan, changed) = (Arc::new(Notify::new()), Arc::new(Changes::default()));
        // Canonical, as the library reads them: a change is then told by the path the library knows.
        let folders = [&config.dir, &config.downloads].map(|d| d.canonicalize().unwrap_or_else(|_| d.clone()));
        // Held while the node runs: dropping it stops the notifications.
        let watcher = crate::watch::watch(&folders, &config.state_dir, changed.clone());
        let wakes = Wakes { now: rescan.clone(), changed };
        // Told of changes, the node rescans on its own only to catch what notifications miss (and the
        // progress of downloads in progress); that is most of what an idle node costs.
        let every = match &watcher {
            Some(_) => WATCHED_RESCAN.max(config.net.announce_interval),
            None => config.net.announce_interval,
        };
        let mut rescans = tokio::spawn(rescan_forever(library, publisher, every, wakes, watcher.is_some()));
        let mut announced = shares.borrow().version;
        discovery.announce(herald.record(&shares.borrow()));
        // Nodes that started before us have announced already: ask them now rather than wait an interval.
        discovery.query();
        let idle = config.net.transport_config().idle_timeout;
        let context = ServeContext { rescan, ..ServeContext::new(shares.clone(), idle, config.max_upload_rate, true) };
        let mut peer_log = PeerLog::default();
        let mut listening = Listening::start(listeners);
        tokio::pin!(shutdown);
        // A background task that ends stops the node: serving on without rescans, announcements or a
        // listener would look alive and share nothing new, or nothing at all.
        let outcome = loop {
            tokio::select! {
                () = &mut shutdown => break Ok(()),
                joined = &mut rescans => break Err(stopped("rescan", joined)),
                served = listening.next(&context, &peer_log.names) => match served {
                    Ok(uploads) => uploads.into_iter().for_each(|upload| on_event(&NodeEvent::Uploaded(upload))),
                    Err(e) => break Err(e),
                },
                Ok(()) = shares.changed() => {
                    let current = shares.borrow_and_update().clone();
                    if current.version != announced {
                        announced = current.version;
                        let bytes = current.catalogue.len();
                        tracing::info!(files = current.files.len(), version = current.version, bytes, "catalogue changed");
                        discovery.announce(herald.record(&current));
                    }
                }
                Some(event) = tellings.recv() => on_event(&event),
                event = discovery.next_event() => match event {
                    Some(event) => peer_log.log(event),
                    None => break Err(stopped("discovery", Ok(()))),
                },
            }
        };
        rescans.abort();
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
        let instance = u64::from_be_bytes(identity::random_id().0[..8].try_into().unwrap_or_default());
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

/// The error that stops the node when its background `task` ended (they run until shut down), logged
/// with why: the panic's message, if it panicked.
pub(crate) fn stopped(task: &'static str, joined: Result<(), JoinError>) -> NodeError {
    let reason = match joined {
        Ok(()) => "it ended".to_string(),
        Err(e) => match e.try_into_panic() {
            Ok(payload) => match payload.downcast::<String>() {
                Ok(message) => format!("it panicked: {message}"),
                Err(payload) => format!("it panicked: {}", payload.downcast_ref::<&str>().unwrap_or(&"(no message)")),
            },
            Err(e) => e.to_string(),
        },
    };
    tracing::error!(task, reason, "background task stopped; the node exits");
    NodeError::TaskStopped { task, reason }
}

/// What wakes the rescan before its interval: a request that met a changed file (`now`), and the file
/// system's notifications (`changed`), which come in bursts (a copy writes many times) and so are taken
/// together, [`SETTLE`] after the first.
struct Wakes {
    now: Arc<Notify>,
    changed: Arc<Changes>,
}

/// The periodic rescan of a node whose folders are watched.
const WATCHED_RESCAN: Duration = Duration::from_secs(30);
/// The share of a core (its inverse) that the fallback rescan of a watched library may take.
const FALLBACK_SHARE: u32 = 100;
/// How long a burst of file-system notifications is gathered before the rescan.
const SETTLE: Duration = Duration::from_millis(200);

/// Rescans the folders at once (hashing what the cache does not know), then every `interval`, or at once
/// when a server found a file changed or the file system says one did (the files themselves are
/// rehashed only when changed).
///
/// Where the folders are `watched`, that periodic rescan is only a fallback, and takes at most
/// [`FALLBACK_SHARE`] of a core: a large library's comes less often than every `interval`.
async fn rescan_forever(
    mut library: Library,
    mut publisher: Publisher,
    interval: Duration,
    wakes: Wakes,
    watched: bool,
) {
    let (mut first, mut wait) = (true, interval);
    loop {
        // Which paths changed, where only the file system's notifications woke the rescan: their folders
        // alone are read again.
        let changed = match first {
            true => None,
            false => tokio::select! {
                () = tokio::time::sleep(wait) => None,
                () = wakes.now.notified() => None,
                () = wakes.changed.wake.notified() => {
                    tokio::time::sleep(SETTLE).await;
                    wakes.changed.take()
                }
            },
        };
        let (full, started) = (changed.is_none(), tokio::time::Instant::now());
        (library, publisher) = blocking(move || {
            publisher.rescan(&mut library, changed.as_deref());
            (library, publisher)
        })
        .await;
        if watched && full && !first {
            wait = interval.max(started.elapsed() * FALLBACK_SHARE);
        }
        if std::mem::take(&mut first) {
            let bytes = library.files().values().filter(|f| f.have.is_none()).map(|f| f.manifest.size()).sum();
            publisher.tell(NodeEvent::Ready { files: library.len(), bytes });
        }
    }
}

/// What a rescan hands the rest of the node: new catalogue versions to serve and announce, and how the
/// hashing goes.
struct Publisher {
    shares: watch::Sender<Arc<Shares>>,
    version: u64,
    told: mpsc::UnboundedSender<NodeEvent>,
}

impl Publisher {
    /// Rescans `library` (only the folders of the `changed` paths where given), publishing the files
    /// hashed so far every [`HASHING_TOLD`] while it hashes.
    fn rescan(&mut self, library: &mut Library, changed: Option<&[PathBuf]>) {
        let (mut hashed, mut published_all) = (0, false);
        let changed = library.rescan_telling(changed, HASHING_TOLD, |library, hashing| {
            if hashing.files > hashed {
                hashed = hashing.files;
                self.publish(library, true);
                // Told at the end: the library holds what the rescan found.
                published_all = hashed == hashing.files_total;
            }
            self.tell(NodeEvent::Hashing(hashing));
            ControlFlow::Continue(())
        });
        match changed {
            Ok(Change::Catalogue) if published_all => {}
            Ok(Change::Catalogue) => self.publish(library, true),
            // Same catalogue, same version: the server gets the new stamps and nothing is announced.
            Ok(Change::OnDisk) => self.publish(library, false),
            Ok(Change::None) => {}
            Err(e) => tracing::warn!(error = %e, "rescan failed"),
        }
    }

    /// Serves what `library` holds now: as a new catalogue version, or with new stamps only.
    fn publish(&mut self, library: &Library, new_version: bool) {
        self.version += u64::from(new_version);
        self.shares.send_replace(Arc::new(Shares::of(library, self.version)));
    }

    fn tell(&self, event: NodeEvent) {
        // The node's loop is gone only when the node stops.
        let _ = self.told.send(event);
    }
}

/// Logs peer events, at most [`PEER_LOG_BURST`] a second per address: a host that floods announcements of
/// new ids must not flood the log (the cache bounds what it keeps; this bounds what is said about it), nor
/// hide the lines about other hosts.
#[derive(Default)]
struct PeerLog {
    window: Option<tokio::time::Instant>,
    per_address: HashMap<IpAddr, u32>,
    dropped: u32,
    /// The names peers announce, by node id: how uploads to them are told.
    names: HashMap<NodeId, String>,
}

/// Peer events logged per second and address at most.
const PEER_LOG_BURST: u32 = 5;
/// Addresses logged about per second at most.
const PEER_LOG_ADDRESSES: usize = 64;

impl PeerLog {
    fn log(&mut self, event: PeerEvent) {
        match &event {
            PeerEvent::Seen(p) | PeerEvent::Updated(p) => _ = self.names.insert(p.id(), p.announcement.name.clone()),
            PeerEvent::Expired(p) => _ = self.names.remove(&p.id()),
        }
        let now = tokio::time::Instant::now();
        if self.window.is_none_or(|start| now - start >= Duration::from_secs(1)) {
            if self.dropped > 0 {
                tracing::warn!(events = self.dropped, "peer events not logged (too many in one second)");
            }
            (self.window, self.dropped) = (Some(now), 0);
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

    #[tokio::test]
    async fn a_background_task_that_dies_is_an_error_saying_why() {
        let joined = tokio::spawn(async { panic!("disk on fire") }).await;
        let error = stopped("rescan", joined).to_string();
        assert!(error.contains("rescan task stopped (it panicked: disk on fire)"), "{error}");
        let error = stopped("discovery", Ok(())).to_string();
        assert!(error.contains("discovery task stopped (it ended)"), "{error}");
    }
}
