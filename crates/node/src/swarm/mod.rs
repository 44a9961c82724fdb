//! A client that uploads while it downloads: it listens on its own transfer port, announces itself, and
//! serves the verified chunks of the files it fetches (and the files once complete) to the other
//! downloaders, who learn of it from its announcements and of its new chunks from their bitmap
//! refreshes. It shares nothing else: no folder is read, no state folder locked.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use discovery::PeerEvent;
use futures_util::{Stream, StreamExt};
use proto::{Catalogue, CatalogueEntry, FileId, Manifest, NodeId};
use store::{FileStamp, Partial, SharedFile, VerifiedChunks};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use transport::Transport;

use crate::config::ClientConfig;
use crate::peers::{PeerTable, reach};
use crate::server::accepting::{Listening, bind_all};
use crate::server::context::{Activity, ServeContext, Shares};
use crate::server::server_loop::{Herald, ServerLoop};
use crate::{NodeError, Source};

/// How often the files the downloads offer are published to the server (and a new one announced): at
/// most this often, whatever the number of files a fetch downloads (each publication copies them all).
const PUBLISH: Duration = Duration::from_millis(250);

/// The upload side of a client, serving in a task of its own (stopped when this is dropped): the
/// server loop over what the downloads, handed its [`Offer`], fill.
pub(crate) struct Uploading {
    offer: Offer,
    activity: Arc<Activity>,
    /// Set when the server stopped (it said why in the log).
    stopped: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

/// What the downloads of an uploading client offer to others: each file's verified chunks, then the
/// whole file; and the peers that join, for the downloads to ask. Cloned into each download.
#[derive(Clone)]
pub(crate) struct Offer(Arc<Offered>);

struct Offered {
    files: Mutex<Files>,
    shares: watch::Sender<Arc<Shares>>,
    peers: PeerTable,
    /// How the peers that join are reached, preferred first.
    clients: Vec<Arc<dyn Transport>>,
}

#[derive(Default)]
struct Files {
    files: HashMap<FileId, SharedFile>,
    /// The catalogue's version: it changes with the set of files.
    version: u64,
    /// Whether the files changed since they were last published.
    changed: bool,
}

impl Uploading {
    /// Binds `listen` on the configured port (any free port where it is taken) and serves, announced
    /// through `peers` as node `id`; peers that join are reached over `clients` (preferred first).
    pub(crate) async fn start(
        id: NodeId,
        config: &ClientConfig,
        listen: &[Arc<dyn Transport>],
        peers: PeerTable,
        clients: Vec<Arc<dyn Transport>>,
    ) -> Result<Self, NodeError> {
        let listeners = bind_all(listen, config.port, true).await?;
        let herald = Herald::new(id, config.name.clone(), &listeners, config.net.announce_interval);
        let empty = Catalogue { entries: Vec::new() }.encode();
        let (shares, watched) = watch::channel(Arc::new(Shares { version: 1, catalogue: empty, ..Shares::default() }));
        let files = Mutex::new(Files { version: 1, ..Files::default() });
        let offer = Offer(Arc::new(Offered { files, shares, peers: peers.clone(), clients }));
        // A downloader: no super-seeding.
        let context = ServeContext::new(watched, config.net.idle_timeout, None, false);
        let activity = context.activity.clone();
        let server = ServerLoop { herald, listening: Listening::start(listeners), context, peers };
        let publishing = offer.clone();
        let source = async move {
            let mut publish = tokio::time::interval(PUBLISH);
            loop {
                publish.tick().await;
                publishing.publish();
            }
        };
        let (ended, stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            // Uploads are not told: a fetch says what it fetched, not what it passed on.
            let (_, nothing_told) = mpsc::unbounded_channel();
            let outcome = server.run(source, nothing_told, std::future::pending(), &mut |_| {}).await;
            if let Err(e) = outcome {
                // The downloads go on: passing chunks on is a service to others, not what the user asked for.
                tracing::warn!(error = %e, "no longer passing chunks on to other downloaders");
            }
            ended.send_replace(true);
        });
        Ok(Self { offer, activity, stopped, task })
    }

    /// What the downloads are handed.
    pub(crate) fn offer(&self) -> Offer {
        self.offer.clone()
    }

    /// Completes once no request has come, nor been answered, for `quiet`: at once where nobody ever
    /// asked anything (a fetch nobody downloads from ends with its last file) or none has for that long.
    pub(crate) async fn quiet_for(&self, quiet: Duration) {
        self.activity.quiet_for(quiet).await
    }

    /// Completes once the server has stopped.
    pub(crate) async fn stopped(&self) {
        let _ = self.stopped.clone().wait_for(|s| *s).await;
    }
}

impl Drop for Uploading {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Offer {
    /// A download in progress into `part`, with its chunks as they are verified (served from memory).
    pub(crate) fn part(&self, manifest: Arc<Manifest>, part: &Path, verified: VerifiedChunks) {
        let have = Some(Partial::InMemory(verified));
        let shared = SharedFile { path: part.to_path_buf(), manifest, stamp: None, have };
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

    /// The peers the table knows, then each it hears of (again at each change one announces: a peer
    /// without the file yet may have it then), until the table is gone.
    pub(crate) fn joining(&self) -> impl Stream<Item = Source> + Unpin + Send + 'static {
        // Subscribed first: a peer heard of meanwhile comes twice rather than not at all.
        let later = self.0.peers.subscribe();
        let clients = self.0.clients.clone();
        let known: Vec<Source> = self.0.peers.now().iter().filter_map(|p| reach(&clients, p)).collect();
        let heard = futures_util::stream::unfold((later, clients), |(mut later, clients)| async move {
            loop {
                match later.recv().await {
                    Ok(PeerEvent::Seen(peer) | PeerEvent::Updated(peer)) => match reach(&clients, &peer) {
                        Some(source) => return Some((source, (later, clients))),
                        None => continue,
                    },
                    // Lagged: some reports were missed; the next announcement brings their peers again.
                    Ok(PeerEvent::Expired(_)) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Box::pin(futures_util::stream::iter(known).chain(heard))
    }

    /// Hands the server what changed since the last time, if anything did.
    fn publish(&self) {
        let mut files = self.files();
        if !std::mem::take(&mut files.changed) {
            return;
        }
        let mut entries: Vec<CatalogueEntry> = (files.files.values())
            .map(|f| {
                let (id, name, size) = (f.manifest.id(), f.manifest.name().to_string(), f.manifest.size());
                CatalogueEntry { id, name, size, have: f.have.as_ref().map(Partial::listed) }
            })
            .collect();
        entries.sort_by(|a, b| (&a.name, a.id.0).cmp(&(&b.name, b.id.0)));
        let catalogue = Catalogue { entries }.encode();
        let shares = Arc::new(Shares { version: files.version, files: Arc::new(files.files.clone()), catalogue });
        self.0.shares.send_replace(shares);
    }

    fn files(&self) -> std::sync::MutexGuard<'_, Files> {
        self.0.files.lock().unwrap_or_else(|p| p.into_inner())
    }
}
