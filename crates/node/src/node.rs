//! The serving node: shares its folders, announces itself, answers requests until told to stop.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use discovery::udp::{UdpConfig, UdpDiscovery};
use discovery::{Discovery, PeerEvent};
use proto::{Announcement, NodeId};
use store::{HashCache, Library};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use transport::Listener;

use crate::server::{Shares, serve_connection};
use crate::{NodeError, ServeConfig, blocking, identity, transport_for};

/// Connections served at once; further ones are closed at once.
const MAX_CONNECTIONS: usize = 128;
const HASH_CACHE_FILE: &str = "hashes.bin";

/// A node bound to its ports with its folders scanned, ready to [`Node::run`].
pub struct Node {
    id: NodeId,
    instance: u64,
    config: ServeConfig,
    listener: Box<dyn Listener>,
    discovery: UdpDiscovery,
    library: Library,
}

impl Node {
    /// Checks the folders, loads the identity, scans and hashes the shared files, and binds the transfer
    /// and discovery ports, so that every setup error surfaces here, before anything is announced.
    pub async fn bind(config: ServeConfig) -> Result<Self, NodeError> {
        if !config.dir.is_dir() {
            return Err(NodeError::MissingFolder(config.dir.clone()));
        }
        let created = std::fs::create_dir_all(&config.downloads);
        created.map_err(|source| NodeError::State { path: config.downloads.clone(), source })?;
        let id = identity::load_or_create(&config.state_dir)?;
        let cache = HashCache::load(config.state_dir.join(HASH_CACHE_FILE));
        let mut library = Library::new(vec![config.dir.clone(), config.downloads.clone()], cache);
        library = blocking(move || library.rescan().map(|_| library)).await?;
        let transport = transport_for(config.net.transport, config.net.transport_config());
        let listener = transport.bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, config.port))).await?;
        let discovery = UdpDiscovery::start(UdpConfig {
            local: id,
            port: config.net.discovery_port,
            listen: true,
            interval: config.net.announce_interval,
            broadcast: config.net.broadcast.clone(),
            static_peers: config.net.static_peers.clone(),
        })?;
        let instance = u64::from_be_bytes(identity::random_id().0[..8].try_into().unwrap_or_default());
        Ok(Self { id, instance, config, listener, discovery, library })
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The bound transfer address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    /// How many files are shared.
    pub fn file_count(&self) -> usize {
        self.library.len()
    }

    /// Serves until `shutdown` completes; then every connection is closed at once.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
        let Node { id, instance, config, mut listener, mut discovery, library } = self;
        let (shares_tx, mut shares) = watch::channel(Arc::new(Shares::of(&library, 1)));
        let rescans = tokio::spawn(rescan_forever(library, shares_tx, config.net.announce_interval));
        let port = listener.local_addr().port();
        let record = |s: &Shares| Announcement {
            node: id,
            instance,
            name: config.name.clone(),
            ports: vec![(config.net.transport, port)],
            catalogue_version: s.version,
            file_count: s.files.len() as u32,
            interval_secs: config.net.announce_interval.as_secs().clamp(1, u64::from(u16::MAX)) as u16,
        };
        discovery.announce(record(&shares.borrow()));
        // Nodes that started before us have announced already: ask them now rather than wait an interval.
        discovery.query();
        let idle = config.net.transport_config().idle_timeout;
        let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(incoming) => match limit.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let shares = shares.clone();
                            connections.spawn(async move {
                                serve_connection(incoming, shares, idle).await;
                                drop(permit);
                            });
                        }
                        Err(_) => tracing::warn!(peer = %incoming.remote_addr(), "connection limit reached, refused"),
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Ok(()) = shares.changed() => {
                    let current = shares.borrow_and_update().clone();
                    tracing::info!(files = current.files.len(), version = current.version, "catalogue changed");
                    discovery.announce(record(&current));
                }
                Some(event) = discovery.next_event() => log_peer(event),
                Some(_) = connections.join_next() => {}
            }
        }
        rescans.abort();
        connections.shutdown().await;
        Ok(())
    }
}

/// Rescans the folders every `interval` (the files themselves are rehashed only when changed) and
/// publishes a new catalogue version when the set of files changed.
async fn rescan_forever(mut library: Library, shares: watch::Sender<Arc<Shares>>, interval: Duration) {
    let mut version = 1;
    loop {
        tokio::time::sleep(interval).await;
        let (returned, changed) = blocking(move || {
            let changed = library.rescan();
            (library, changed)
        })
        .await;
        library = returned;
        match changed {
            Ok(true) => {
                version += 1;
                shares.send_replace(Arc::new(Shares::of(&library, version)));
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "rescan failed"),
        }
    }
}

fn log_peer(event: PeerEvent) {
    match event {
        PeerEvent::Seen(p) => {
            tracing::info!(name = %p.announcement.name, id = %p.id().short(), ip = %p.ip, files = p.announcement.file_count, "peer seen")
        }
        PeerEvent::Updated(p) => tracing::debug!(name = %p.announcement.name, id = %p.id().short(), "peer updated"),
        PeerEvent::Expired(id) => tracing::info!(id = %id.short(), "peer gone"),
    }
}
