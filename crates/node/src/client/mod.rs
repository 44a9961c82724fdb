//! The client: what every front end calls (the command line, the web page, an embedder). It lists the
//! peers and what they share, and fetches files, over the process's one [`PeerTable`]; a long-lived
//! client answers from that live table, with no survey per call.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use discovery::{Discovery, Peer};
use proto::{Catalogue, ErrorCode, FileId, NodeId, Request};
use tokio::sync::{OnceCell, Semaphore};
use tokio::task::JoinSet;
use transport::{Transport, TransportError};

use crate::config::ClientConfig;
use crate::error::ListError;
use crate::exchange::{ExchangeError, request_within};

pub(crate) mod dictionary;
pub(crate) mod fetch;
use crate::NodeError;
use crate::download::Source;
use crate::error::PeersError;
use crate::peers::{PeerTable, reach};
use crate::swarm::Uploading;
use dictionary::{DictEntry, Dictionary, Host, ResolveError};

/// The largest catalogue accepted from a peer.
const MAX_CATALOGUE_BYTES: u64 = 64 * 1024 * 1024;
/// The catalogue bytes one listing takes in, over every peer: what bounds its memory whatever peers
/// announce (a dictionary and the catalogue being merged cost about as much again).
const LISTING_BUDGET: usize = 24 * 1024 * 1024;
/// Catalogues fetched from one address: several nodes on one machine are normal, a host claiming dozens
/// of ids is not.
const MAX_CATALOGUES_PER_ADDRESS: usize = 8;

/// A client being put together: hand it its plug-ins, then [`ClientBuilder::build`].
pub struct ClientBuilder {
    config: ClientConfig,
    transports: Vec<Arc<dyn Transport>>,
    provers: Vec<Arc<dyn Transport>>,
    discoveries: Vec<Box<dyn Discovery>>,
    peers: Option<PeerTable>,
    upload: Option<(NodeId, Vec<Arc<dyn Transport>>)>,
}

impl ClientBuilder {
    /// Reaches peers over `transport` too (the first one given is preferred). Its connections are
    /// reused: every listing and file of the client share one connection per peer.
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transports.push(Arc::new(transport::Reuse::new(transport)));
        self
    }

    /// Where a peer serves only the ids it trusts and refuses the one this client's transports prove, asks
    /// it again over `transport`, which proves another (the user's own, which the peer may trust), and
    /// reaches that peer over it from then on. Transports of one name go together.
    pub fn prove_with(mut self, transport: Arc<dyn Transport>) -> Self {
        self.provers.push(Arc::new(transport::Reuse::new(transport)));
        self
    }

    /// Hears peers through `discovery` too (the client then runs its own peer table).
    pub fn discovery(mut self, discovery: Box<dyn Discovery>) -> Self {
        self.discoveries.push(discovery);
        self
    }

    /// Shares `table` (a serving node's, see [`crate::Node::peer_table`]) instead of discoveries of its
    /// own: one process, one peer table.
    pub fn peers(mut self, table: PeerTable) -> Self {
        self.peers = Some(table);
        self
    }

    /// Lets fetches pass their verified chunks on to other downloaders (see [`crate::FetchOptions::upload`]):
    /// listening on `transports`, announced as node `id` (the id the client's transports prove). A
    /// client sharing a serving node's table needs none: the node serves its downloads folder.
    pub fn upload(mut self, id: NodeId, transports: Vec<Arc<dyn Transport>>) -> Self {
        self.upload = Some((id, transports));
        self
    }

    /// Starts the client's peer table (unless it shares one). Within a tokio runtime.
    pub fn build(self) -> Result<Client, NodeError> {
        let ClientBuilder { config, transports, provers, discoveries, peers, upload } = self;
        if transports.is_empty() {
            return Err(NodeError::NoPlugin("transport"));
        }
        let peers = match peers {
            Some(table) => table,
            None => PeerTable::start(discoveries)?,
        };
        let upload = upload.filter(|(_, listen)| !listen.is_empty());
        let uploading = OnceCell::new();
        let proving = Mutex::default();
        Ok(Client(Arc::new(Inner { config, transports, provers, proving, peers, upload, uploading })))
    }
}

/// Lists and fetches what the LAN shares. Cloned freely: the clones are one client, and its fetches run
/// at once.
#[derive(Clone)]
pub struct Client(Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) config: ClientConfig,
    /// The transports to reach peers with, preferred first.
    pub(crate) transports: Vec<Arc<dyn Transport>>,
    /// Those that prove the user's own id, for the peers that refuse the others ([`ClientBuilder::prove_with`]).
    provers: Vec<Arc<dyn Transport>>,
    /// The peers that accepted only the provers.
    proving: Mutex<HashSet<NodeId>>,
    pub(crate) peers: PeerTable,
    upload: Option<(NodeId, Vec<Arc<dyn Transport>>)>,
    /// The upload side, bound by the first fetch that uploads and kept while the client lives.
    uploading: OnceCell<Option<Uploading>>,
}

/// What a listing found: the peers, the content dictionary of everything they share, and which of its
/// files the queries picked (`None`: no query, every file).
pub struct Listing {
    /// The peers that answered.
    pub peers: Vec<Peer>,
    /// Every file they share.
    pub dictionary: Dictionary,
    /// The files the queries named.
    pub selected: Option<HashSet<FileId>>,
}

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

impl Client {
    /// A client with `config`: hand it its plug-ins.
    pub fn builder(config: ClientConfig) -> ClientBuilder {
        let (transports, provers, discoveries) = (Vec::new(), Vec::new(), Vec::new());
        ClientBuilder { config, transports, provers, discoveries, peers: None, upload: None }
    }

    /// The process's peer table, as this client reads it.
    pub fn peer_table(&self) -> &PeerTable {
        &self.0.peers
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.0
    }

    /// The peers on the LAN (see [`PeerTable::settled`]).
    pub async fn peers(&self) -> Result<Vec<Peer>, PeersError> {
        let answered = self.0.peers.settled(self.0.config.net.timeout).await;
        match answered {
            Err(PeersError::NoneAnswered(within)) if self.0.config.private_group => Err(PeersError::NoMember(within)),
            answered => answered,
        }
    }

    /// The peers, everything they share, and which files `queries` name (files, folders or globs:
    /// [`Dictionary::select`]); no query: every file.
    pub async fn list(&self, queries: &[String]) -> Result<Listing, ListError> {
        let peers = self.peers().await?;
        let dictionary = self.dictionary().await?;
        let selected = match queries {
            [] => None,
            queries => {
                let mut ids = HashSet::new();
                for query in queries {
                    ids.extend(
                        dictionary.select(query).map_err(|e| unresolved(query, e))?.into_iter().map(|(id, _)| id),
                    );
                }
                Some(ids)
            }
        };
        Ok(Listing { peers, dictionary, selected })
    }

    /// The upload side, bound at the first call (`None`: the client has no upload transports, or they
    /// could not be bound, which was logged: downloads go on without it).
    pub(crate) async fn uploading(&self) -> Option<&Uploading> {
        let bind = || async {
            let (id, listen) = self.0.upload.as_ref()?;
            let config = &self.0.config;
            let clients = self.0.transports.clone();
            let bound = Uploading::start(*id, config, listen, self.0.peers.clone(), clients).await;
            bound.inspect_err(|e| tracing::warn!(error = %e, "not passing chunks on to other downloaders")).ok()
        };
        self.0.uploading.get_or_init(bind).await.as_ref()
    }

    /// The content dictionary: the catalogues of every peer, fetched in parallel, within the listing's
    /// memory budget and at most `MAX_CATALOGUES_PER_ADDRESS` (8) per address. Peers that do not answer in
    /// time, or whose catalogue does not fit, are left out with a warning.
    pub async fn dictionary(&self) -> Result<Dictionary, PeersError> {
        let mut fetches = JoinSet::new();
        let peers = self.peers().await?;
        let budget = Arc::new(Semaphore::new(LISTING_BUDGET));
        let mut per_address: HashMap<IpAddr, usize> = HashMap::new();
        for source in self.sources(&peers, |_| true) {
            let fetched = per_address.entry(source.addr.ip()).or_default();
            if *fetched >= MAX_CATALOGUES_PER_ADDRESS {
                tracing::warn!("files of {} not listed: too many nodes at one address", source.addr.ip());
                continue;
            }
            *fetched += 1;
            let (timeout, budget) = (self.0.config.net.timeout, budget.clone());
            let prover = self.prover_for(&source);
            fetches.spawn(async move {
                let fetched = tokio::time::timeout(timeout, catalogue(&source, &budget)).await;
                match (fetched, prover) {
                    // Refused as a stranger: asked again as the user, whom it may trust.
                    (Ok(Err(e)), Some(prover)) if refused_as_stranger(&*e) => {
                        let again = tokio::time::timeout(timeout, catalogue(&prover, &budget)).await;
                        (prover, again, true)
                    }
                    (fetched, _) => (source, fetched, false),
                }
            });
        }
        let mut dictionary = Dictionary::default();
        // A peer is told of once, whichever of its addresses failed.
        let mut told = HashSet::new();
        let name = |source: &Source| {
            let named = peers.iter().find(|p| p.id() == source.node).map(|p| p.announcement.name.as_str());
            format!("{} ({} at {})", named.unwrap_or("a peer"), source.node.short(), source.addr)
        };
        while let Some(joined) = fetches.join_next().await {
            let (source, fetched, proved) = joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            let error = match fetched {
                Ok(Ok(catalogue)) => {
                    if proved {
                        self.0.proving.lock().unwrap_or_else(PoisonError::into_inner).insert(source.node);
                    }
                    dictionary.add_catalogue(source.host(), &catalogue);
                    continue;
                }
                Ok(Err(e)) => e,
                Err(_) => format!("no answer within {:?}", self.0.config.net.timeout).into(),
            };
            if !told.insert(source.node) {
                continue;
            }
            match (error.downcast_ref(), error.downcast_ref()) {
                // Peers outside our own trust list are not asked: nothing to tell.
                (Some(TransportError::NotTrusted(_)), _) => {}
                (_, Some(ExchangeError::Refused { code: ErrorCode::NotTrusted, .. })) => tracing::warn!(
                    target: "p2pnode::note",
                    "{} shares only with the peers it trusts, and this node is not one of them",
                    name(&source)
                ),
                _ => tracing::warn!("files of {} not listed: {error}", name(&source)),
            }
        }
        Ok(dictionary)
    }

    /// The one file `query` (a name or an id) names, and the hosts to fetch it from: every host that
    /// listed it, under whatever id each claims.
    pub async fn find(&self, query: &str) -> Result<(FileId, DictEntry, Vec<Source>), ListError> {
        let dictionary = self.dictionary().await?;
        let id = dictionary.resolve(query).map_err(|e| unresolved(query, e))?;
        let entry =
            dictionary.entry(&id).cloned().ok_or(ListError::NotHosted { query: query.into(), close: vec![] })?;
        let sources = self.sources_of(&self.0.peers.now(), &entry);
        Ok((id, entry, sources))
    }

    /// The files `queries` name (files, folders or globs: [`Dictionary::select`]), each with the hosts to
    /// fetch it from and where below the destination it goes; the catalogues are fetched once for all.
    pub async fn select(&self, queries: &[String]) -> Result<Vec<Wanted>, ListError> {
        let dictionary = self.dictionary().await?;
        let peers = self.0.peers.now();
        let (mut wanted, mut places, mut unresolved_queries) = (Vec::new(), HashSet::new(), Vec::new());
        for query in queries {
            let selected = match dictionary.select(query) {
                Ok(selected) => selected,
                // Every query is tried: each that names nothing is said, not only the first.
                Err(e) => {
                    unresolved_queries.push(unresolved(query, e));
                    continue;
                }
            };
            for (id, to) in selected {
                let Some(entry) = dictionary.entry(&id).cloned() else { continue };
                if places.insert(to.clone()) {
                    wanted.push(Wanted { id, sources: self.sources_of(&peers, &entry), entry, to });
                }
            }
        }
        match unresolved_queries.len() {
            0 => Ok(wanted),
            1 => Err(unresolved_queries.remove(0)),
            _ => Err(ListError::Several(unresolved_queries)),
        }
    }

    /// The hosts of `entry` among `peers`, each with the chunks it has if it has only part of the file.
    fn sources_of(&self, peers: &[Peer], entry: &DictEntry) -> Vec<Source> {
        let mut sources = self.sources(peers, |host| entry.hosts.contains(&host));
        for source in &mut sources {
            source.has = entry.partial.get(&source.host()).cloned();
        }
        sources
    }

    /// The peers `wanted` picks, each with the first of our transports it announces and its address for
    /// it (peers with none of our transports are left out); those that accepted only the user's own id,
    /// over the transport that proves it.
    fn sources(&self, peers: &[Peer], wanted: impl Fn(Host) -> bool) -> Vec<Source> {
        let proving = self.0.proving.lock().unwrap_or_else(PoisonError::into_inner);
        let reached = |p: &Peer| match proving.contains(&p.id()) {
            true => reach(&self.0.provers, p).or_else(|| reach(&self.0.transports, p)),
            false => reach(&self.0.transports, p),
        };
        peers.iter().filter(|p| wanted(Host::of(p))).filter_map(reached).collect()
    }

    /// `source` over the transport of its name that proves the user's own id, if the client has one.
    fn prover_for(&self, source: &Source) -> Option<Source> {
        let prover = self.0.provers.iter().find(|t| t.name() == source.transport.name())?;
        Some(Source { transport: prover.clone(), ..source.clone() })
    }

    /// The transports the upload side listens on (none where the client does not upload).
    pub(crate) fn upload_transports(&self) -> &[Arc<dyn Transport>] {
        self.0.upload.as_ref().map_or(&[], |(_, listen)| listen.as_slice())
    }

    /// The names of the transports peers are reached with, preferred first.
    pub fn transport_names(&self) -> Vec<&str> {
        self.0.transports.iter().map(|t| t.name()).collect()
    }
}

/// The catalogue of `source`, its bytes taken from `budget`.
async fn catalogue(source: &Source, budget: &Semaphore) -> Result<Catalogue, Box<dyn std::error::Error + Send + Sync>> {
    let conn = source.transport.connect(source.addr, source.node).await?;
    let bytes = request_within(&*conn, &Request::Catalogue, MAX_CATALOGUE_BYTES, budget).await?;
    Ok(Catalogue::decode(&bytes)?)
}

/// Whether `e` is a peer's refusal of an id it does not trust.
fn refused_as_stranger(e: &(dyn std::error::Error + 'static)) -> bool {
    matches!(e.downcast_ref(), Some(ExchangeError::Refused { code: ErrorCode::NotTrusted, .. }))
}

/// The error of a query that names no file, or several.
fn unresolved(query: &str, e: ResolveError) -> ListError {
    match e {
        ResolveError::NotFound { close } => ListError::NotHosted { query: query.into(), close },
        ResolveError::Ambiguous { ids } => {
            ListError::Ambiguous { query: query.into(), ids: ids.iter().map(FileId::to_string).collect() }
        }
    }
}
