//! Asking the LAN who is there and what they share, without running a node.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use discovery::{Discovery, Merged, Peer, PeerEvent};
use proto::{Catalogue, FileId, NodeId, Request};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use transport::{Transport, TransportError};

use crate::exchange::request_within;
use crate::{DictEntry, Dictionary, Host, NetConfig, NodeError, ResolveError, Source};

/// Answers are taken as settled once no new peer answered for this long (LAN answers arrive within
/// milliseconds), and at the timeout whatever peers do.
const SETTLE_QUIET: Duration = Duration::from_millis(250);
/// How often the query is repeated while nobody has answered (datagrams get lost; peers start late).
const REQUERY: Duration = Duration::from_millis(500);
/// The largest catalogue accepted from a peer.
const MAX_CATALOGUE_BYTES: u64 = 64 * 1024 * 1024;
/// The catalogue bytes one survey takes in, over every peer: what bounds its memory whatever peers
/// announce (a dictionary and the catalogue being merged cost about as much again).
const SURVEY_BUDGET: usize = 24 * 1024 * 1024;
/// Catalogues fetched from one address: several nodes on one machine are normal, a host claiming dozens
/// of ids is not.
const MAX_CATALOGUES_PER_ADDRESS: usize = 8;

/// A file to fetch: which, from whom, and where below the destination it goes (`photos/beach.jpg`: a
/// path of the dictionary, safe by [`proto::check_path`]).
#[derive(Clone)]
pub struct Wanted {
    /// Its id.
    pub id: FileId,
    /// What the dictionary knows of it.
    pub entry: DictEntry,
    /// Where it goes: folders, then its name.
    pub to: String,
    /// The hosts to fetch it from.
    pub sources: Vec<Source>,
}

/// The error of a query that names no file, or several.
pub fn unresolved(query: &str, e: ResolveError) -> NodeError {
    match e {
        ResolveError::NotFound { close } => NodeError::NotHosted { query: query.into(), close },
        ResolveError::Ambiguous { ids } => {
            NodeError::Ambiguous { query: query.into(), ids: ids.iter().map(FileId::to_string).collect() }
        }
    }
}

/// A short-lived view of the LAN: the peers that answered a query, and what they share. A peer is one
/// host's claim to a node id; two hosts claiming one id are both kept (see [`discovery::PeerCache`]).
pub struct Survey {
    net: NetConfig,
    /// The transports to reach peers with, preferred first.
    transports: Vec<Arc<dyn Transport>>,
    discovery: Merged,
    peers: BTreeMap<(NodeId, IpAddr), Peer>,
    started: Instant,
    settled: bool,
}

impl Survey {
    /// Starts asking through `discoveries`; peers are reached over the first of `transports` (in order of
    /// preference) that each one announces.
    pub fn new(
        net: &NetConfig,
        transports: Vec<Arc<dyn Transport>>,
        discoveries: Vec<Box<dyn Discovery>>,
    ) -> Result<Self, NodeError> {
        if transports.is_empty() {
            return Err(NodeError::NoPlugin("transport"));
        }
        if discoveries.is_empty() {
            return Err(NodeError::NoPlugin("discovery"));
        }
        let discovery = Merged::new(discoveries);
        discovery.query();
        let (net, peers, started) = (net.clone(), BTreeMap::new(), Instant::now());
        Ok(Self { net, transports, discovery, peers, started, settled: false })
    }

    /// The peers on the LAN: waits up to the timeout for a first answer, then until no new peer answered
    /// for a moment, and never past the timeout (the first call only).
    pub async fn peers(&mut self) -> Result<Vec<Peer>, NodeError> {
        if self.settled {
            return Ok(self.peers.values().cloned().collect());
        }
        let give_up = self.started + self.net.timeout;
        while self.peers.is_empty() {
            let wait = (Instant::now() + REQUERY).min(give_up);
            match tokio::time::timeout_at(wait, self.discovery.next_event()).await {
                Ok(Some(event)) => _ = self.apply(event),
                Ok(None) => break,
                Err(_) if Instant::now() >= give_up => return Err(NodeError::NoPeers(self.net.timeout)),
                Err(_) => self.discovery.query(),
            }
        }
        // Only a new peer extends the wait: one that re-announces without end must not keep us here.
        let mut quiet_until = Instant::now() + SETTLE_QUIET;
        while let Ok(Some(event)) = tokio::time::timeout_at(quiet_until.min(give_up), self.discovery.next_event()).await
        {
            if self.apply(event) {
                quiet_until = Instant::now() + SETTLE_QUIET;
            }
        }
        self.settled = true;
        Ok(self.peers.values().cloned().collect())
    }

    /// Takes a discovery event; returns whether it brought a new peer.
    fn apply(&mut self, event: PeerEvent) -> bool {
        match event {
            PeerEvent::Seen(p) => {
                let after = self.started.elapsed();
                tracing::debug!(peer = %p.announcement.name, ip = %p.ip, after_ms = after.as_millis(), "peer answered");
                self.peers.insert((p.id(), p.ip), p).is_none()
            }
            PeerEvent::Updated(p) => {
                self.peers.insert((p.id(), p.ip), p);
                false
            }
            PeerEvent::Expired(p) => {
                self.peers.remove(&(p.id(), p.ip));
                false
            }
        }
    }

    /// The content dictionary: the catalogues of every peer, fetched in parallel, within the survey's
    /// memory budget and at most `MAX_CATALOGUES_PER_ADDRESS` (8) per address. Peers that do not answer in
    /// time, or whose catalogue does not fit, are left out with a warning.
    pub async fn dictionary(&mut self) -> Result<Dictionary, NodeError> {
        let mut fetches = JoinSet::new();
        self.peers().await?;
        let budget = Arc::new(Semaphore::new(SURVEY_BUDGET));
        let mut per_address: HashMap<IpAddr, usize> = HashMap::new();
        for source in self.sources(|_| true) {
            let fetched = per_address.entry(source.addr.ip()).or_default();
            if *fetched >= MAX_CATALOGUES_PER_ADDRESS {
                tracing::warn!(peer = %source.addr, "too many nodes at one address, catalogue not fetched");
                continue;
            }
            *fetched += 1;
            let (timeout, budget) = (self.net.timeout, budget.clone());
            fetches.spawn(async move {
                let fetched = tokio::time::timeout(timeout, async {
                    let conn = source.transport.connect(source.addr, source.node).await?;
                    let bytes = request_within(&*conn, &Request::Catalogue, MAX_CATALOGUE_BYTES, &budget).await?;
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Catalogue::decode(&bytes)?)
                })
                .await;
                (source, fetched)
            });
        }
        let mut dictionary = Dictionary::default();
        while let Some(joined) = fetches.join_next().await {
            match joined {
                Ok((source, Ok(Ok(catalogue)))) => dictionary.add_catalogue(source.host(), &catalogue),
                // Peers outside a trust list are not asked: nothing to warn about.
                Ok((_, Ok(Err(e)))) if matches!(e.downcast_ref(), Some(TransportError::NotTrusted(_))) => {}
                Ok((source, Ok(Err(e)))) => tracing::warn!(peer = %source.addr, error = %e, "catalogue not fetched"),
                Ok((source, Err(_))) => tracing::warn!(peer = %source.addr, "catalogue request timed out"),
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        }
        Ok(dictionary)
    }

    /// The one file `query` (a name or an id) names, and the hosts to fetch it from: every host that
    /// listed it, under whatever id each claims.
    pub async fn find(&mut self, query: &str) -> Result<(FileId, DictEntry, Vec<Source>), NodeError> {
        let dictionary = self.dictionary().await?;
        let id = dictionary.resolve(query).map_err(|e| unresolved(query, e))?;
        let entry =
            dictionary.entry(&id).cloned().ok_or(NodeError::NotHosted { query: query.into(), close: vec![] })?;
        let sources = self.sources_of(&entry);
        Ok((id, entry, sources))
    }

    /// The files `queries` name (files, folders or globs: [`Dictionary::select`]), each with the hosts to
    /// fetch it from and where below the destination it goes; the catalogues are fetched once for all.
    pub async fn select(&mut self, queries: &[String]) -> Result<Vec<Wanted>, NodeError> {
        let dictionary = self.dictionary().await?;
        let (mut wanted, mut places) = (Vec::new(), HashSet::new());
        for query in queries {
            for (id, to) in dictionary.select(query).map_err(|e| unresolved(query, e))? {
                let Some(entry) = dictionary.entry(&id).cloned() else { continue };
                if places.insert(to.clone()) {
                    wanted.push(Wanted { id, sources: self.sources_of(&entry), entry, to });
                }
            }
        }
        Ok(wanted)
    }

    /// The hosts of `entry`, each with the chunks it has if it has only part of the file.
    fn sources_of(&self, entry: &DictEntry) -> Vec<Source> {
        let mut sources = self.sources(|host| entry.hosts.contains(&host));
        for source in &mut sources {
            source.has = entry.partial.get(&source.host()).cloned();
        }
        sources
    }

    /// The peers `wanted` picks, each with the first of our transports it announces and its address for
    /// it (peers with none of our transports are left out).
    fn sources(&self, wanted: impl Fn(Host) -> bool) -> Vec<Source> {
        self.peers.values().filter(|p| wanted(Host::of(p))).filter_map(|p| reach(&self.transports, p)).collect()
    }

    /// The names of the transports peers are reached with, preferred first.
    pub fn transport_names(&self) -> Vec<&str> {
        self.transports.iter().map(|t| t.name()).collect()
    }
}

/// `peer` as a source: over the first of `transports` (preferred first) that it announces.
pub(crate) fn reach(transports: &[Arc<dyn Transport>], peer: &Peer) -> Option<Source> {
    transports
        .iter()
        .find_map(|t| peer.addr(t.name()).map(|addr| Source { node: peer.id(), addr, has: None, transport: t.clone() }))
}
