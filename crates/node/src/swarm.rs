//! A `get` that uploads while it downloads: it listens on its own transfer port, announces itself, and
//! serves the verified chunks of the files it fetches (and the files once complete) to the other
//! downloaders, who learn of it from its announcements and of its new chunks from their bitmap
//! refreshes. It shares nothing else: no folder is read, no state folder locked.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use discovery::{Discovery, Merged, PeerEvent};
use proto::{Catalogue, CatalogueEntry, FileId, Manifest, NodeId};
use store::{FileStamp, SharedFile};
use tokio::sync::{broadcast, watch};
use transport::Transport;

use crate::accepting::{Listening, bind_all};
use crate::server::{Activity, ServeContext, Shares};
use crate::serving::{Herald, stopped};
use crate::{NetConfig, NodeError, Source};

/// How often the files the downloads offer are published to the server (and a new one announced): at
/// most this often, whatever the number of files a `get` fetches (each publication copies them all).
const PUBLISH: Duration = Duration::from_millis(250);
/// Peers that joined and are not yet taken by every download; a download that lags behind misses some
/// (they announce again).
const JOINING_BUFFER: usize = 64;

/// The upload side of a `get`, bound to its port: [`Swarm::run`] serves it while the downloads, handed
/// its [`Offer`], fill it.
pub struct Swarm {
    herald: Herald,
    listening: Listening,
    context: ServeContext,
    discovery: Merged,
    /// How the peers that join are reached, preferred first.
    clients: Vec<Arc<dyn Transport>>,
    offer: Offer,
}

/// What the downloads of a swarming `get` offer to others: each file's verified chunks, then the whole
/// file; and the peers that join the swarm, for the downloads to ask. Cloned into each download.
#[derive(Clone)]
pub struct Offer(Arc<Offered>);

struct Offered {
    files: Mutex<Files>,
    shares: watch::Sender<Arc<Shares>>,
    /// The peers the swarm knows now, by host, and each it hears of from now on (again at each change
    /// it announces: a peer without the file yet may have it then).
    peers: Mutex<HashMap<(NodeId, IpAddr), Source>>,
    joining: broadcast::Sender<Source>,
}

/// The peers a download is told of: those known when it started, then each the swarm hears of.
pub(crate) struct Joining {
    known: Vec<Source>,
    later: Option<broadcast::Receiver<Source>>,
}

impl Joining {
    /// The next peer; `None` when the swarm's reports lagged (some are missed), or, for ever, once the
    /// swarm is gone.
    pub(crate) async fn next(&mut self) -> Option<Source> {
        if let Some(source) = self.known.pop() {
            return Some(source);
        }
        let Some(later) = &mut self.later else { return std::future::pending().await };
        match later.recv().await {
            Ok(source) => Some(source),
            Err(broadcast::error::RecvError::Lagged(_)) => None,
            Err(broadcast::error::RecvError::Closed) => {
                self.later = None;
                None
            }
        }
    }
}

#[derive(Default)]
struct Files {
    files: HashMap<FileId, SharedFile>,
    /// The catalogue's version: it changes with the set of files.
    version: u64,
    /// Whether the files changed since they were last published.
    changed: bool,
}

impl Swarm {
    /// Binds `transports` on `port` (any free port where it is taken) and hears peers through
    /// `discoveries`; peers that join are reached over `clients` (preferred first). Node `id` announces
    /// itself as `name`.
    pub async fn bind(
        id: NodeId,
        name: String,
        port: u16,
        net: &NetConfig,
        transports: &[Arc<dyn Transport>],
        discoveries: Vec<Box<dyn Discovery>>,
        clients: Vec<Arc<dyn Transport>>,
    ) -> Result<Self, NodeError> {
        if transports.is_empty() || clients.is_empty() {
            return Err(NodeError::NoPlugin("transport"));
        }
        if discoveries.is_empty() {
            return Err(NodeError::NoPlugin("discovery"));
        }
        let listeners = bind_all(transports, port, true).await?;
        let herald = Herald::new(id, name, &listeners, net.announce_interval);
        let empty = Catalogue { entries: Vec::new() }.encode();
        let (shares, watched) = watch::channel(Arc::new(Shares { version: 1, catalogue: empty, ..Shares::default() }));
        let files = Mutex::new(Files { version: 1, ..Files::default() });
        let (peers, joining) = (Mutex::default(), broadcast::channel(JOINING_BUFFER).0);
        let offer = Offer(Arc::new(Offered { files, shares, peers, joining }));
        let context = ServeContext::new(watched, net.transport_config().idle_timeout, None, false);
        let (listening, discovery) = (Listening::start(listeners), Merged::new(discoveries));
        Ok(Self { herald, listening, context, discovery, clients, offer })
    }

    /// What the downloads are handed.
    pub fn offer(&self) -> Offer {
        self.offer.clone()
    }

    /// Whether peers are asking anything of this swarm, for as long as it runs.
    pub fn requests(&self) -> Requests {
        Requests(self.context.activity.clone())
    }

    /// Announces itself and serves until dropped; returns only the error that stopped it (a listener or
    /// the discovery).
    pub async fn run(self) -> NodeError {
        let Swarm { herald, mut listening, context, mut discovery, clients, offer } = self;
        let mut announced = context.shares.borrow().version;
        discovery.announce(herald.record(&context.shares.borrow()));
        // The peers there already: at once, not at their next announcement.
        discovery.query();
        let mut publish = tokio::time::interval(PUBLISH);
        // Uploads are not told: a `get` says what it fetched, not what it passed on.
        let names = HashMap::new();
        loop {
            tokio::select! {
                served = listening.next(&context, &names) => if let Err(e) = served {
                    return e;
                },
                _ = publish.tick() => {
                    if let Some(shares) = offer.publish()
                        && shares.version != announced
                    {
                        announced = shares.version;
                        discovery.announce(herald.record(&shares));
                    }
                }
                event = discovery.next_event() => match event {
                    Some(PeerEvent::Seen(peer) | PeerEvent::Updated(peer)) => {
                        if let Some(source) = crate::survey::reach(&clients, &peer) {
                            offer.peers().insert((peer.id(), peer.ip), source.clone());
                            // No download listens between files: nothing to tell then.
                            let _ = offer.0.joining.send(source);
                        }
                    }
                    Some(PeerEvent::Expired(peer)) => _ = offer.peers().remove(&(peer.id(), peer.ip)),
                    None => return stopped("discovery", Ok(())),
                },
            }
        }
    }
}

/// Whether the peers of a swarm are asking it anything.
pub struct Requests(Arc<Activity>);

impl Requests {
    /// Completes once no request has come, nor been answered, for `quiet` (at once where none has for
    /// that long already: a download nobody asked anything of ends with its last chunk).
    pub async fn quiet_for(&self, quiet: Duration) {
        self.0.quiet_for(quiet).await
    }
}

impl Offer {
    /// A download in progress into `part`, with the chunks verified so far (`have`; the server reads the
    /// chunks verified since from the part's state file).
    pub(crate) fn part(&self, manifest: Arc<Manifest>, part: &Path, have: Vec<u8>) {
        let shared = SharedFile { path: part.to_path_buf(), manifest, stamp: None, have: Some(have) };
        let mut files = self.files();
        files.version += 1;
        files.changed = true;
        files.files.insert(shared.manifest.id(), shared);
    }

    /// `id` is complete at `path`: served from there from the next publication on (a request for its
    /// `.part` meanwhile waits for it).
    pub(crate) fn finished(&self, id: FileId, path: &Path) {
        // Its stamp now: a file changed after this is not served.
        let stamp = std::fs::metadata(path).ok().map(|m| FileStamp::of(&m));
        let mut files = self.files();
        if let Some(file) = files.files.get_mut(&id) {
            (file.path, file.stamp, file.have) = (path.to_path_buf(), stamp, None);
            files.changed = true;
        }
    }

    /// `id` failed: no longer offered (its part may be deleted).
    pub(crate) fn withdraw(&self, id: FileId) {
        let mut files = self.files();
        if files.files.remove(&id).is_some() {
            files.version += 1;
            files.changed = true;
        }
    }

    /// The peers the swarm knows, then those it hears of from now on.
    pub(crate) fn joining(&self) -> Joining {
        // Subscribed first: a peer heard of meanwhile comes twice rather than not at all.
        let later = Some(self.0.joining.subscribe());
        Joining { known: self.peers().values().cloned().collect(), later }
    }

    fn peers(&self) -> std::sync::MutexGuard<'_, HashMap<(NodeId, IpAddr), Source>> {
        self.0.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands the server what changed since the last time, if anything did.
    fn publish(&self) -> Option<Arc<Shares>> {
        let mut files = self.files();
        if !std::mem::take(&mut files.changed) {
            return None;
        }
        let mut entries: Vec<CatalogueEntry> = (files.files.values())
            .map(|f| {
                let (id, name, size) = (f.manifest.id(), f.manifest.name().to_string(), f.manifest.size());
                CatalogueEntry { id, name, size, have: f.have.clone() }
            })
            .collect();
        entries.sort_by(|a, b| (&a.name, a.id.0).cmp(&(&b.name, b.id.0)));
        let catalogue = Catalogue { entries }.encode();
        let shares = Arc::new(Shares { version: files.version, files: Arc::new(files.files.clone()), catalogue });
        self.0.shares.send_replace(shares.clone());
        Some(shares)
    }

    fn files(&self) -> std::sync::MutexGuard<'_, Files> {
        self.0.files.lock().unwrap_or_else(|p| p.into_inner())
    }
}
