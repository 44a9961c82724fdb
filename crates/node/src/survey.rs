//! Asking the LAN who is there and what they share, without running a node.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use discovery::udp::{UdpConfig, UdpDiscovery};
use discovery::{Discovery, Peer, PeerEvent};
use proto::{Catalogue, FileId, NodeId, Request};
use tokio::task::JoinSet;
use tokio::time::Instant;
use transport::Transport;

use crate::exchange::request;
use crate::{DictEntry, Dictionary, NetConfig, NodeError, ResolveError, Source, identity, transport_for};

/// Answers are taken as settled once none came for this long (LAN answers arrive within milliseconds).
const SETTLE_QUIET: Duration = Duration::from_millis(250);
/// How often the query is repeated while nobody has answered (datagrams get lost; peers start late).
const REQUERY: Duration = Duration::from_millis(500);
/// The largest catalogue accepted from a peer.
const MAX_CATALOGUE_BYTES: u64 = 64 * 1024 * 1024;

/// A short-lived view of the LAN: the peers that answered a query, and what they share.
pub struct Survey {
    net: NetConfig,
    transport: Arc<dyn Transport>,
    discovery: UdpDiscovery,
    peers: BTreeMap<NodeId, Peer>,
    started: Instant,
    settled: bool,
}

impl Survey {
    /// Starts asking (binding only an ephemeral port: a serving node may hold the discovery port).
    pub fn start(net: &NetConfig) -> Result<Self, NodeError> {
        let discovery = UdpDiscovery::start(UdpConfig {
            local: identity::random_id(),
            port: net.discovery_port,
            listen: false,
            interval: net.announce_interval,
            broadcast: net.broadcast.clone(),
            static_peers: net.static_peers.clone(),
        })?;
        discovery.query();
        let transport = transport_for(net.transport, net.transport_config(), None);
        Ok(Self {
            net: net.clone(),
            transport,
            discovery,
            peers: BTreeMap::new(),
            started: Instant::now(),
            settled: false,
        })
    }

    /// The peers on the LAN: waits up to the timeout for a first answer, then until answers settle (the
    /// first call only).
    pub async fn peers(&mut self) -> Result<Vec<Peer>, NodeError> {
        if self.settled {
            return Ok(self.peers.values().cloned().collect());
        }
        let give_up = self.started + self.net.timeout;
        while self.peers.is_empty() {
            let wait = (Instant::now() + REQUERY).min(give_up);
            match tokio::time::timeout_at(wait, self.discovery.next_event()).await {
                Ok(Some(event)) => self.apply(event),
                Ok(None) => break,
                Err(_) if Instant::now() >= give_up => return Err(NodeError::NoPeers(self.net.timeout)),
                Err(_) => self.discovery.query(),
            }
        }
        while let Ok(Some(event)) = tokio::time::timeout(SETTLE_QUIET, self.discovery.next_event()).await {
            self.apply(event);
        }
        self.settled = true;
        Ok(self.peers.values().cloned().collect())
    }

    fn apply(&mut self, event: PeerEvent) {
        match event {
            PeerEvent::Seen(p) | PeerEvent::Updated(p) => {
                self.peers.insert(p.id(), p);
            }
            PeerEvent::Expired(id) => {
                self.peers.remove(&id);
            }
        }
    }

    /// The content dictionary: the catalogues of every peer, fetched in parallel. Peers that do not
    /// answer in time are left out with a warning.
    pub async fn dictionary(&mut self) -> Result<Dictionary, NodeError> {
        let mut fetches = JoinSet::new();
        let ids: Vec<NodeId> = self.peers().await?.iter().map(Peer::id).collect();
        for source in self.sources(ids.into_iter()) {
            let (transport, timeout) = (self.transport.clone(), self.net.timeout);
            fetches.spawn(async move {
                let fetched = tokio::time::timeout(timeout, async {
                    let conn = transport.connect(source.addr, source.node).await?;
                    let bytes = request(&*conn, &Request::Catalogue, MAX_CATALOGUE_BYTES).await?;
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Catalogue::decode(&bytes)?)
                })
                .await;
                (source, fetched)
            });
        }
        let mut dictionary = Dictionary::default();
        while let Some(joined) = fetches.join_next().await {
            match joined {
                Ok((source, Ok(Ok(catalogue)))) => dictionary.add_catalogue(source.node, &catalogue),
                Ok((source, Ok(Err(e)))) => tracing::warn!(peer = %source.addr, error = %e, "catalogue not fetched"),
                Ok((source, Err(_))) => tracing::warn!(peer = %source.addr, "catalogue request timed out"),
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        }
        Ok(dictionary)
    }

    /// The one file `query` (a name or an id) names, and the peers to fetch it from.
    pub async fn find(&mut self, query: &str) -> Result<(FileId, DictEntry, Vec<Source>), NodeError> {
        let dictionary = self.dictionary().await?;
        let id = dictionary.resolve(query).map_err(|e| match e {
            ResolveError::NotFound { close } => NodeError::NotHosted { query: query.into(), close },
            ResolveError::Ambiguous { ids } => {
                NodeError::Ambiguous { query: query.into(), ids: ids.iter().map(FileId::to_string).collect() }
            }
        })?;
        let entry =
            dictionary.entry(&id).cloned().ok_or(NodeError::NotHosted { query: query.into(), close: vec![] })?;
        let mut sources = self.sources(entry.hosts.iter().copied());
        for source in &mut sources {
            source.has = entry.partial.get(&source.node).cloned();
        }
        Ok((id, entry, sources))
    }

    /// The transfer addresses of these peers for our transport (peers without it are left out).
    fn sources(&self, nodes: impl Iterator<Item = NodeId>) -> Vec<Source> {
        nodes
            .filter_map(|id| self.peers.get(&id))
            .filter_map(|p| p.addr(self.net.transport).map(|addr| Source { node: p.id(), addr, has: None }))
            .collect()
    }
}
