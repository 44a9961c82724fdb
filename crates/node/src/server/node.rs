//! The serving node: shares its folders, announces itself, answers requests until told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use discovery::Discovery;
use proto::NodeId;
use store::{Change, Hashing, Library};
use tokio::sync::{Notify, mpsc, watch};
use transport::{Identity, Listener, Transport};

use super::accepting::{Listening, bind_all};
use super::context::{ServeContext, Shares, Upload};
use super::grants::Grants;
use super::server_loop::{Herald, ServerLoop, local_addrs};
use super::shared::SharedFiles;
use super::watch::Changes;
use crate::peers::PeerTable;
use crate::send::inbox::Inbox;
use crate::send::{Ask, OfferFrom};
use crate::state_dir::StateDir;
use crate::{Client, ClientConfig, NodeError, ServeConfig, blocking};

/// A node being put together: its folders checked, its state folder locked and its identity loaded, so
/// that transports can be made with that identity and discoveries with its id; then [`NodeBuilder::bind`].
pub struct NodeBuilder {
    config: ServeConfig,
    identity: Identity,
    state: StateDir,
    transports: Vec<Arc<dyn Transport>>,
    discoveries: Vec<Box<dyn Discovery>>,
    peers: Option<PeerTable>,
    ask: Option<Ask>,
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
    /// What a peer took, file by file, once the peer holds no connection any more.
    Uploaded(Vec<Upload>),
    /// A peer offered files or a text: taken (and being fetched into the downloads folder), or refused
    /// and why.
    Offered {
        /// Who.
        from: OfferFrom,
        /// What, in the sender's words (escape it).
        title: String,
        /// How many files.
        files: u32,
        /// Their bytes.
        bytes: u64,
        /// Taken, or refused and why (as the sender is told).
        accepted: Result<(), String>,
    },
    /// The text of an offer taken (the sender's words: escape it).
    Text {
        /// Who sent it.
        from: OfferFrom,
        /// What it says.
        text: String,
    },
    /// An offer taken has ended: the files here, and why the rest are not where some failed.
    Received {
        /// Who sent them.
        from: OfferFrom,
        /// Where they are.
        files: Vec<PathBuf>,
        /// Why the others are not here.
        error: Option<String>,
    },
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

    /// Announces on, and hears peers through, `discovery` too (the node then runs its own peer table).
    pub fn discovery(mut self, discovery: Box<dyn Discovery>) -> Self {
        self.discoveries.push(discovery);
        self
    }

    /// Asks a person through `ask` about the offers that the node's [`crate::Accept::Ask`] policy leaves
    /// to one (without it, they are refused).
    pub fn ask(mut self, ask: Ask) -> Self {
        self.ask = Some(ask);
        self
    }

    /// Announces through, and hears peers in, `table` (one the process runs already) instead.
    pub fn peers(mut self, table: PeerTable) -> Self {
        self.peers = Some(table);
        self
    }

    /// Reads the shared folders, taking the files whose hashes are known (the new ones are hashed once
    /// the node runs, and served as they are), and binds every transport, so that every setup error
    /// surfaces here, before anything is announced.
    pub async fn bind(self) -> Result<Node, NodeError> {
        let NodeBuilder { config, identity, state, transports, discoveries, peers, ask } = self;
        if transports.is_empty() {
            return Err(NodeError::NoPlugin("transport"));
        }
        let peers = match peers {
            Some(table) => table,
            None => PeerTable::start(discoveries)?,
        };
        let (cache, key) = (state.hash_cache(), state.key()?);
        let shared = vec![config.dir.clone(), config.downloads.clone()];
        let mut library = Library::new(shared, state.path().to_path_buf(), cache, key);
        let known_only = |_: &Library, _| ControlFlow::Break(());
        library = blocking(move || library.rescan_telling(None, Duration::ZERO, known_only).map(|_| library)).await?;
        let listeners = bind_all(&transports, config.port, false).await?;
        let (on_event, grants) = (Box::new(|_: &NodeEvent| {}), Grants::default());
        let id = identity.node_id();
        let (shares, _) = watch::channel(Arc::new(Shares::of(&library, 1)));
        let rescan = Arc::new(Notify::new());
        Ok(Node { id, config, listeners, transports, ask, peers, library, grants, state, on_event, shares, rescan })
    }
}

/// A node bound to its ports with its folders scanned, ready to [`Node::run`].
pub struct Node {
    id: NodeId,
    config: ServeConfig,
    /// Each transport's listener, with the names announced for its port.
    listeners: Vec<(Vec<String>, Box<dyn Listener>)>,
    /// The transports, which also fetch what peers offer.
    transports: Vec<Arc<dyn Transport>>,
    ask: Option<Ask>,
    peers: PeerTable,
    library: Library,
    grants: Grants,
    /// Locked until the node stops: no other node serves from its state folder meanwhile.
    state: StateDir,
    on_event: OnEvent,
    /// What it shares, as the latest scan found it.
    shares: watch::Sender<Arc<Shares>>,
    /// Wakes the rescan: a file was found changed since it was hashed.
    rescan: Arc<Notify>,
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
        let state = StateDir::lock(&config.state_dir, &config.dir)?;
        let identity = state.identity()?;
        let (transports, discoveries) = (Vec::new(), Vec::new());
        Ok(NodeBuilder { config, identity, state, transports, discoveries, peers: None, ask: None })
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The files this node serves to given peers alone, unlisted: grant one, and only the peers it names
    /// can fetch it (by its id, over a transport that proves who they are).
    pub fn grants(&self) -> Grants {
        self.grants.clone()
    }

    /// The process's peer table, for a client that lists and fetches beside the node
    /// ([`crate::ClientBuilder::peers`]).
    pub fn peer_table(&self) -> &PeerTable {
        &self.peers
    }

    /// The bound transfer address of each transport, by the names announced for it.
    pub fn local_addrs(&self) -> Vec<(String, SocketAddr)> {
        local_addrs(&self.listeners)
    }

    /// The complete files the node shares, as its scans find them while it runs: for handing them out
    /// by other means than the wire (each chunk read is checked against its hash).
    pub fn shared_files(&self) -> SharedFiles {
        SharedFiles::new(self.shares.subscribe(), self.rescan.clone(), self.config.net.idle_timeout)
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
        let Node {
            id,
            config,
            listeners,
            transports,
            ask,
            peers,
            library,
            grants,
            state,
            mut on_event,
            shares,
            rescan,
        } = self;
        let (shares, shares_tx) = (shares.subscribe(), shares);
        let herald = Herald::new(id, config.name.clone(), &listeners, config.net.announce_interval);
        let (told, tellings) = mpsc::unbounded_channel();
        let publisher = Publisher { shares: shares_tx, version: 1, told: told.clone() };
        let changed = Arc::new(Changes::default());
        // Canonical, as the library reads them: a change is then told by the path the library knows.
        let folders = [&config.dir, &config.downloads].map(|d| d.canonicalize().unwrap_or_else(|_| d.clone()));
        // Held while the node runs: dropping it stops the notifications.
        let watcher = super::watch::watch(&folders, state.path(), changed.clone());
        let wakes = Wakes { now: rescan.clone(), changed };
        // Told of changes, the node rescans on its own only to catch what notifications miss (and the
        // progress of downloads in progress); that is most of what an idle node costs.
        let every = match &watcher {
            Some(_) => WATCHED_RESCAN.max(config.net.announce_interval),
            None => config.net.announce_interval,
        };
        let rescans = tokio::spawn(rescan_forever(library, publisher, every, wakes, watcher.is_some()));
        let abort = rescans.abort_handle();
        // A background task that ends stops the node: serving on without rescans, announcements or a
        // listener would look alive and share nothing new, or nothing at all.
        let source = async { NodeError::task_stopped("rescan", rescans.await) };
        let inbox = inbox(&config, (transports, ask), &peers, state.path(), told)?;
        let idle = config.net.idle_timeout;
        let context = ServeContext { rescan, grants, ..ServeContext::new(shares, idle, config.max_upload_rate, true) };
        let context = ServeContext { inbox: Some(Arc::new(inbox)), ..context };
        let server = ServerLoop { herald, listening: Listening::start(listeners), context, peers };
        let outcome = server.run(source, tellings, shutdown, &mut *on_event).await;
        abort.abort();
        outcome
    }
}

/// Where the node's offers arrive: fetched with a client over its own transports and peer table, into its
/// downloads folder.
fn inbox(
    config: &ServeConfig,
    (transports, ask): (Vec<Arc<dyn Transport>>, Option<Ask>),
    peers: &PeerTable,
    state: &std::path::Path,
    told: mpsc::UnboundedSender<NodeEvent>,
) -> Result<Inbox, NodeError> {
    let client_config = ClientConfig::default().net(config.net.clone()).state_dir(state.to_path_buf());
    let mut client = Client::builder(client_config).peers(peers.clone());
    for transport in transports {
        client = client.transport(transport);
    }
    let folders = (state.to_path_buf(), config.downloads.clone());
    Ok(Inbox::new((config.accept, ask), folders, client.build()?, told))
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
    let (mut first, mut wait, mut unsettled) = (true, interval, Vec::new());
    loop {
        // Which paths changed, where only the file system's notifications woke the rescan (or files
        // modified moments ago wait to be found unchanged): their folders alone are read again.
        let changed = match first {
            true => None,
            false => tokio::select! {
                () = tokio::time::sleep(wait) => None,
                () = wakes.now.notified() => None,
                () = wakes.changed.wake.notified() => {
                    tokio::time::sleep(SETTLE).await;
                    wakes.changed.take().map(|mut paths| {
                        paths.append(&mut unsettled);
                        paths
                    })
                }
                () = tokio::time::sleep(SETTLE), if !unsettled.is_empty() => Some(std::mem::take(&mut unsettled)),
            },
        };
        let (full, started) = (changed.is_none(), tokio::time::Instant::now());
        (library, publisher) = blocking(move || {
            publisher.rescan(&mut library, changed.as_deref());
            (library, publisher)
        })
        .await;
        unsettled = library.unsettled();
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
