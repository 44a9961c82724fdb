//! Downloading one file from every peer hosting it: the async driver of the [`Scheduler`].

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use proto::{ErrorCode, FileId, Manifest, NodeId, Request};
use store::{PartFile, StateKey, StoreError};
use tokio::sync::Semaphore;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;
use transport::{Connection, Transport, TransportError};

use crate::exchange::{ExchangeError, request, request_within};
use crate::scheduler::{Assignment, Limits};
use crate::swarm::{Joining, Offer};
use crate::{Failure, NodeError, Scheduler, Status, blocking};

/// Chunk bytes a download keeps in flight from one peer, and in all: the pipelining depth, and what
/// bounds memory whatever the file size.
const PEER_WINDOW: u64 = 8 * 1024 * 1024;
const TOTAL_WINDOW: u64 = 32 * 1024 * 1024;
/// Manifest requests in flight at once, to different sources, one address after another: the first valid
/// answer wins, so peers that stall cost one timeout in all, not one each.
const MANIFEST_PARALLEL: usize = 32;
/// The manifest bytes the requests in flight may hold together (the largest manifest is 32 MiB); a request
/// that finds it used up fails and gives its bytes back.
const MANIFEST_BUDGET: usize = 40 * 1024 * 1024;

/// A source: its index in the list of sources, since several hosts may claim one node id (one is genuine,
/// the others impostors or stale addresses) and each is tried on its own.
type SourceIndex = usize;
/// A source as the scheduler knows it: whether it is *not* the one whose manifest was taken (so that,
/// among peers alike, the one known to answer is asked first), and its index.
type Ranked = (bool, SourceIndex);

/// A peer to download from, and the transport that reaches it.
#[derive(Clone)]
pub struct Source {
    /// Its id, checked by transports that authenticate.
    pub node: NodeId,
    /// Its transfer address.
    pub addr: SocketAddr,
    /// `None` if it has the whole file; else the bitmap of the chunks it has.
    pub has: Option<Vec<u8>>,
    /// How to reach it.
    pub transport: Arc<dyn Transport>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Source({} at {} over {})", self.node.short(), self.addr, self.transport.name())
    }
}

impl Source {
    /// The host this source is: the id it claims at its address.
    pub fn host(&self) -> crate::Host {
        crate::Host { node: self.node, ip: self.addr.ip() }
    }
}

/// What happens during a download, for progress display and logs.
#[derive(Clone, Debug)]
pub enum DownloadEvent {
    /// The manifest is known and the `.part` file open (`have` chunks already verified by a resume).
    Started {
        /// The file name.
        name: String,
        /// Its size.
        size: u64,
        /// Its chunk count.
        chunks: u32,
        /// Chunks already verified.
        have: u32,
        /// Bytes already verified.
        have_bytes: u64,
        /// Peers connected.
        sources: usize,
        /// The `.part` file.
        part: PathBuf,
    },
    /// A chunk arrived and was verified and written.
    Chunk {
        /// The chunk.
        index: u32,
        /// Its length.
        bytes: u32,
        /// Who sent it.
        peer: NodeId,
    },
    /// A chunk request failed; the chunk goes back to the queue.
    ChunkFailed {
        /// The chunk.
        index: u32,
        /// Who failed.
        peer: NodeId,
        /// Why.
        error: String,
        /// Whether the bytes arrived but did not match the hash.
        corrupt: bool,
    },
    /// A peer is no longer asked for chunks.
    SourceDropped {
        /// The peer.
        peer: NodeId,
        /// Why.
        reason: String,
    },
}

/// Downloads file `id` from `sources` (each over its own transport) into `dir`, each chunk verified before it is written to the
/// `.part` file, which is renamed when complete; the `.part` file's state is authenticated with `key`.
/// Requests wait at most `timeout` each. Returns the final path; on failure the verified part is kept for
/// a later resume.
///
/// Uploading, a fetch hands its verified chunks to other downloaders as they come, and the peers that
/// join meanwhile are asked what they have and become sources ([`crate::Client::fetch`]). Partial sources are asked for their bitmaps every [`HAVE_REFRESH`].
///
/// Several sources may claim the same node id: each is connected to and scheduled on its own, so an
/// impostor costs at most the fallback from a failing source, and an authenticating transport refuses it
/// at the handshake.
pub async fn download(
    id: FileId,
    sources: &[Source],
    dir: &Path,
    timeout: Duration,
    key: &StateKey,
    on_event: impl FnMut(&DownloadEvent),
) -> Result<PathBuf, NodeError> {
    download_offering(id, sources, dir, timeout, key, None, on_event).await
}

/// [`download`], offering the verified chunks to other downloaders where there is an `offer`.
pub(crate) async fn download_offering(
    id: FileId,
    sources: &[Source],
    dir: &Path,
    timeout: Duration,
    key: &StateKey,
    offer: Option<&Offer>,
    mut on_event: impl FnMut(&DownloadEvent),
) -> Result<PathBuf, NodeError> {
    // A folder to be made is proven makeable first; an existing one proves itself with the `.part`
    // (a probe file per download costs a create and an unlink each: thousands for a folder of small files).
    if !dir.is_dir() {
        check_writable(dir)?;
    }
    let mut conns = connect_all(sources, &mut on_event).await?;
    let (manifest, answered) = fetch_manifest(&conns, sources, id, timeout).await?;
    let manifest = Arc::new(manifest);
    let dir = dir.to_path_buf();
    // Only now, with something to write, does the folder come into being.
    std::fs::create_dir_all(&dir).map_err(|source| NodeError::NotWritable { dir: dir.clone(), source })?;
    let part = Arc::new(
        blocking({
            let (manifest, key) = (manifest.clone(), key.clone());
            move || PartFile::open(&dir, manifest, &key)
        })
        .await?,
    );
    let progress = part.progress();
    on_event(&DownloadEvent::Started {
        name: manifest.name().to_string(),
        size: manifest.size(),
        chunks: manifest.chunk_count(),
        have: progress.chunks,
        have_bytes: progress.bytes,
        sources: conns.len(),
        part: part.part_path().to_path_buf(),
    });
    if let Some(offer) = offer {
        offer.part(manifest.clone(), part.part_path(), part.have_bits());
    }
    let chunk = u64::from(manifest.chunk_size());
    let limits = Limits {
        chunk_size: manifest.chunk_size(),
        per_peer: (PEER_WINDOW / chunk).clamp(2, 16) as usize,
        total: (TOTAL_WINDOW / chunk).max(2) as usize,
        timeout_ceiling: timeout,
    };
    let shuffle = u64::from_be_bytes(crate::identity::random_id().0[..8].try_into().unwrap_or_default());
    let mut scheduler: Scheduler<Ranked> = Scheduler::new(part.missing(), [], limits).shuffled(shuffle);
    let ranked = |i: SourceIndex| (i != answered, i);
    for &i in conns.keys() {
        scheduler.add_peer(ranked(i), sources[i].has.clone(), now());
    }
    let mut sources = sources.to_vec();
    let mut joins = Joins::of(&sources);
    let mut joining = offer.map(Offer::joining);
    let mut refresh = tokio::time::interval(HAVE_REFRESH);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut refreshing: HashSet<SourceIndex> = HashSet::new();
    let buffers = Buffers::default();
    let mut tasks = JoinSet::new();
    let mut running: HashMap<Assignment<Ranked>, AbortHandle> = HashMap::new();
    let bitmap_len = manifest.chunk_count().div_ceil(8) as u64;
    loop {
        while let Some(job) = scheduler.next_request(now()) {
            let (conn, part, buffers) = (conns[&job.peer.1].clone(), part.clone(), buffers.clone());
            let fetched = async move { Done::Chunk(job, fetch_chunk(&*conn, &part, id, job.chunk, &buffers).await) };
            running.insert(job, tasks.spawn(fetched));
        }
        if scheduler.status(now()) != Status::Running || tasks.is_empty() && scheduler.next_deadline(now()).is_none() {
            break;
        }
        let deadline = scheduler.next_deadline(now()).map(Instant::from_std);
        let joined = tokio::select! {
            joined = tasks.join_next(), if !tasks.is_empty() => joined,
            () = sleep_until(deadline) => {
                for (job, dropped) in scheduler.on_timeouts(now()) {
                    running.remove(&job).inspect(AbortHandle::abort);
                    let error = format!("no answer within {:?}", scheduler.timeout(job.peer));
                    report_failure(&mut on_event, &manifest, sources[job.peer.1].node, job.chunk, &error, false, dropped);
                }
                continue;
            }
            _ = refresh.tick() => {
                for (&i, conn) in &conns {
                    if scheduler.is_partial(ranked(i)) && refreshing.insert(i) {
                        ask_have(&mut tasks, i, conn.clone(), id, bitmap_len);
                    }
                }
                continue;
            }
            joined = next_joining(&mut joining) => {
                let Some(source) = joined else { continue };
                let asked = |i| scheduler.knows(ranked(i)) || refreshing.contains(&i);
                if let Some(i) = joins.ask(source, &mut sources, asked) {
                    let source = sources[i].clone();
                    tasks.spawn(async move { Done::Joined(i, source.transport.connect(source.addr, source.node).await) });
                }
                continue;
            }
        };
        let done = match joined {
            Some(Ok(done)) => done,
            Some(Err(e)) if e.is_cancelled() => continue,
            Some(Err(e)) => std::panic::resume_unwind(e.into_panic()),
            None => continue,
        };
        let (job, result) = match done {
            Done::Chunk(job, result) => (job, result),
            Done::Joined(i, Ok(conn)) => {
                // A joining peer becomes a source once it says what it has.
                joins.connecting.remove(&i);
                conns.insert(i, conn.clone());
                refreshing.insert(i);
                ask_have(&mut tasks, i, conn, id, bitmap_len);
                continue;
            }
            Done::Joined(i, Err(e)) => {
                joins.connecting.remove(&i);
                tracing::debug!(target: "p2pnode::download", peer = %sources[i].node.short(), error = %e, "joining peer unreachable");
                continue;
            }
            Done::Have(i, answer) => {
                refreshing.remove(&i);
                let joined = scheduler.knows(ranked(i));
                match (answer, joined) {
                    (Ok(bits), _) if bits.len() as u64 != bitmap_len => {
                        scheduler.drop_peer(ranked(i));
                        let reason = format!("sent a bitmap of {} bytes for {bitmap_len}", bits.len());
                        on_event(&DownloadEvent::SourceDropped { peer: sources[i].node, reason });
                    }
                    (Ok(bits), true) => _ = scheduler.set_has(ranked(i), whole_or(bits, &manifest), now()),
                    (Ok(bits), false) => scheduler.add_peer(ranked(i), whole_or(bits, &manifest), now()),
                    // A joining peer without the file (yet: it is asked again when it announces a change) is
                    // no source, and nothing to tell.
                    (Err(_), false) => {}
                    (Err(ExchangeError::Refused { code: ErrorCode::NotFound, message }), true) => {
                        scheduler.drop_peer(ranked(i));
                        on_event(&DownloadEvent::SourceDropped { peer: sources[i].node, reason: message });
                    }
                    // Chunk requests tell a peer that is gone; the next refresh asks again.
                    (Err(_), true) => {}
                }
                continue;
            }
        };
        // A request settled already (its endgame twin won, or it expired) may still complete before it
        // could be cancelled: the scheduler answers `None`, and its chunk counts once, as settled.
        running.remove(&job);
        let peer = sources[job.peer.1].node;
        match result {
            Ok(bytes) => {
                let Some(losers) = scheduler.on_success(now(), job.peer, job.chunk, bytes) else {
                    continue;
                };
                for loser in losers {
                    running.remove(&loser).inspect(AbortHandle::abort);
                }
                tracing::debug!(target: "p2pnode::download", file = manifest.name(), chunk = job.chunk, peer = %peer.short(), "chunk verified");
                on_event(&DownloadEvent::Chunk { index: job.chunk, bytes, peer });
            }
            Err(ChunkError::Store(e)) => return Err(NodeError::PartWrite(e)),
            Err(e) => {
                let failure = e.failure();
                let Some(dropped) = scheduler.on_failure(now(), job.peer, job.chunk, failure) else {
                    continue;
                };
                if failure == Failure::Elsewhere {
                    continue;
                }
                let corrupt = failure == Failure::Corrupt;
                report_failure(&mut on_event, &manifest, peer, job.chunk, &e.to_string(), corrupt, dropped);
            }
        }
    }
    let outcome = match scheduler.status(now()) {
        Status::Done => {
            tasks.shutdown().await;
            blocking(move || part.finish()).await.map_err(NodeError::from)
        }
        Status::Stuck { missing } => Err(NodeError::Incomplete { chunks: missing, part: part.part_path().into() }),
        Status::Running => unreachable!("the loop ends only when nothing is in flight or waited for"),
    };
    if let Some(offer) = offer {
        match &outcome {
            Ok(path) => offer.finished(id, path),
            Err(_) => offer.withdraw(id),
        }
    }
    outcome
}

/// How often a download asks its partial sources which chunks they have now.
pub const HAVE_REFRESH: Duration = Duration::from_millis(500);
/// Sources of one download at most, those that joined mid-download included.
const MAX_SOURCES: usize = 64;

/// What a task of a download's driver brings back.
enum Done {
    /// A chunk request's outcome.
    Chunk(Assignment<Ranked>, Result<u32, ChunkError>),
    /// A source's bitmap, or why not.
    Have(SourceIndex, Result<Vec<u8>, ExchangeError>),
    /// A connection to a peer that joined the swarm.
    Joined(SourceIndex, Result<Arc<dyn Connection>, TransportError>),
}

/// Asks source `i` over `conn` which chunks of `id` it has (a bitmap of `len` bytes).
fn ask_have(tasks: &mut JoinSet<Done>, i: SourceIndex, conn: Arc<dyn Connection>, id: FileId, len: u64) {
    tasks.spawn(async move { Done::Have(i, request(&*conn, &Request::Have(id), len, Vec::new()).await) });
}

/// The next peer that joined the swarm; `None` when none came (the swarm's reports lagged) or, for
/// ever, without a swarm.
async fn next_joining(joining: &mut Option<Joining>) -> Option<Source> {
    match joining {
        Some(joining) => joining.next().await,
        None => std::future::pending().await,
    }
}

/// The peers of a download by host, each under one index for good (original sources included), and
/// those being connected to: a peer is asked to join whenever the swarm reports it (again), unless it is
/// a source already or being asked.
struct Joins {
    places: HashMap<(NodeId, SocketAddr), SourceIndex>,
    connecting: HashSet<SourceIndex>,
}

impl Joins {
    fn of(sources: &[Source]) -> Self {
        let places = sources.iter().enumerate().map(|(i, s)| ((s.node, s.addr), i)).collect();
        Self { places, connecting: HashSet::new() }
    }

    /// The index to connect to `source` under, if it is to be asked now: not `asked` already (a source,
    /// or answering what it has), not being connected to, and within [`MAX_SOURCES`].
    fn ask(
        &mut self,
        source: Source,
        sources: &mut Vec<Source>,
        asked: impl Fn(SourceIndex) -> bool,
    ) -> Option<SourceIndex> {
        let i = match self.places.get(&(source.node, source.addr)) {
            Some(&i) => i,
            None if sources.len() < MAX_SOURCES => {
                self.places.insert((source.node, source.addr), sources.len());
                sources.push(source);
                sources.len() - 1
            }
            None => return None,
        };
        (!asked(i) && self.connecting.insert(i)).then_some(i)
    }
}

/// A bitmap as the scheduler takes it: `None` where every chunk of `manifest` is there.
fn whole_or(bits: Vec<u8>, manifest: &Manifest) -> Option<Vec<u8>> {
    let whole = (0..manifest.chunk_count()).all(|i| store::bit(&bits, i));
    (!whole).then_some(bits)
}

/// Lookups of the files a run's downloads would only duplicate, with the hash cache in `state_dir`
/// where a node keeps one (it holds the node's downloads folder).
pub fn copies(state_dir: &Path) -> store::Copies {
    store::Copies::new(store::HashCache::load(state_dir.join(store::HASH_CACHE_FILE)))
}

/// Proves that `dir` is, or can be created as, a writable folder, so a download fails before it starts
/// rather than after its first chunk; creates nothing (a failed `get` leaves no folder behind).
pub fn check_writable(dir: &Path) -> Result<(), NodeError> {
    let err = |source| NodeError::NotWritable { dir: dir.to_path_buf(), source };
    // The folder itself, or the nearest folder it would be created in.
    let existing = dir.ancestors().find(|a| a.as_os_str().is_empty() || a.exists()).unwrap_or(dir);
    let existing = if existing.as_os_str().is_empty() { Path::new(".") } else { existing };
    if !existing.is_dir() {
        let what = format!("{} is a file, not a folder", existing.display());
        return Err(err(std::io::Error::new(std::io::ErrorKind::NotADirectory, what)));
    }
    let probe = existing.join(format!(".p2pnode-probe-{}", std::process::id()));
    std::fs::OpenOptions::new().write(true).create_new(true).open(&probe).map_err(err)?;
    std::fs::remove_file(&probe).map_err(err)
}

/// Logs a failed request and tells the caller, with the peer's drop if it was the last straw.
fn report_failure(
    on_event: &mut impl FnMut(&DownloadEvent),
    manifest: &Manifest,
    node: NodeId,
    chunk: u32,
    error: &str,
    corrupt: bool,
    dropped: bool,
) {
    let (file, peer) = (manifest.name(), node.short());
    if corrupt {
        tracing::info!(target: "p2pnode::download", file, chunk, %peer, "corrupt chunk discarded");
    } else {
        tracing::info!(target: "p2pnode::download", file, chunk, %peer, error, "chunk request failed");
    }
    on_event(&DownloadEvent::ChunkFailed { index: chunk, peer: node, error: error.to_string(), corrupt });
    if dropped {
        tracing::info!(target: "p2pnode::download", %peer, error, "source dropped");
        on_event(&DownloadEvent::SourceDropped { peer: node, reason: error.to_string() });
    }
}

/// The scheduler's clock: tokio's, so that its timeouts and the driver's sleeps agree on a paused clock.
fn now() -> std::time::Instant {
    Instant::now().into_std()
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Connects to every source at once; those that fail are reported and left out. Returns the connections by
/// source index.
async fn connect_all(
    sources: &[Source],
    on_event: &mut impl FnMut(&DownloadEvent),
) -> Result<HashMap<SourceIndex, Arc<dyn Connection>>, NodeError> {
    let mut attempts = JoinSet::new();
    for (index, source) in sources.iter().cloned().enumerate() {
        attempts.spawn(async move { (index, source.transport.connect(source.addr, source.node).await) });
    }
    let mut conns = HashMap::new();
    let mut last_error = None;
    while let Some(joined) = attempts.join_next().await {
        match joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())) {
            (index, Ok(conn)) => {
                conns.insert(index, conn);
            }
            (index, Err(e)) => {
                on_event(&DownloadEvent::SourceDropped { peer: sources[index].node, reason: e.to_string() });
                last_error = Some(e);
            }
        }
    }
    match (conns.is_empty(), last_error) {
        (true, Some(e)) => Err(e.into()),
        _ => Ok(conns),
    }
}

/// The manifest of `id` from the first source whose copy hashes to `id`, asked of up to
/// [`MANIFEST_PARALLEL`] sources at once, each given what is left of `timeout`; and that source. Sources
/// are asked one address after another, so the ids of one host that all stall fill no more than their
/// share of the requests.
async fn fetch_manifest(
    conns: &HashMap<SourceIndex, Arc<dyn Connection>>,
    sources: &[Source],
    id: FileId,
    timeout: Duration,
) -> Result<(Manifest, SourceIndex), NodeError> {
    const MAX_MANIFEST: u64 = 64 + proto::MAX_FILE_NAME as u64 + 32 * proto::MAX_CHUNKS as u64;
    let deadline = Instant::now() + timeout;
    let budget = Arc::new(Semaphore::new(MANIFEST_BUDGET));
    let mut order: Vec<SourceIndex> = conns.keys().copied().collect();
    order.sort_unstable();
    let mut seen_at: HashMap<IpAddr, usize> = HashMap::new();
    let mut ranked: Vec<(usize, SourceIndex)> = order
        .into_iter()
        .map(|i| {
            let earlier = seen_at.entry(sources[i].addr.ip()).or_default();
            *earlier += 1;
            (*earlier, i)
        })
        .collect();
    ranked.sort_unstable();
    let mut waiting = ranked.into_iter().map(|(_, i)| (i, conns[&i].clone(), budget.clone()));
    let mut asked = JoinSet::new();
    loop {
        while asked.len() < MANIFEST_PARALLEL {
            let Some((index, conn, budget)) = waiting.next() else { break };
            asked.spawn(async move {
                let ask = Request::Manifest(id);
                let answer = request_within(&*conn, &ask, MAX_MANIFEST, &budget);
                (index, tokio::time::timeout_at(deadline, answer).await)
            });
        }
        let Some(joined) = asked.join_next().await else { break };
        let (index, fetched) = joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        let peer = sources[index].node.short();
        match fetched.map(|r| r.map(|bytes| Manifest::decode(&bytes))) {
            Ok(Ok(Ok(m))) if m.id() == id => return Ok((m, index)),
            Ok(Ok(Ok(_))) => tracing::warn!(%peer, "manifest does not match its id"),
            Ok(Ok(Err(e))) => tracing::warn!(%peer, error = %e, "manifest undecodable"),
            Ok(Err(e)) => tracing::warn!(%peer, error = %e, "manifest not fetched"),
            Err(_) => tracing::warn!(%peer, "manifest request timed out"),
        }
    }
    Err(NodeError::NoManifest(id.to_string()))
}

/// Why one chunk request failed.
#[derive(Debug, thiserror::Error)]
enum ChunkError {
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    #[error("chunk does not match its hash")]
    Corrupt,
    /// Writing to our own disk failed: the download cannot go on.
    #[error(transparent)]
    Store(StoreError),
}

impl ChunkError {
    fn failure(&self) -> Failure {
        match self {
            ChunkError::Exchange(ExchangeError::Transport(
                TransportError::Refused { .. }
                | TransportError::IdentityMismatch { .. }
                | TransportError::Timeout { .. },
            )) => Failure::Unreachable,
            ChunkError::Exchange(ExchangeError::Refused { code: ErrorCode::NotFound, .. }) => Failure::NotFound,
            ChunkError::Exchange(ExchangeError::Refused { code: ErrorCode::Busy, .. }) => Failure::Busy,
            ChunkError::Exchange(ExchangeError::Refused { code: ErrorCode::Elsewhere, .. }) => Failure::Elsewhere,
            ChunkError::Exchange(_) => Failure::Broken,
            ChunkError::Corrupt | ChunkError::Store(_) => Failure::Corrupt,
        }
    }
}

/// Fetches chunk `index` into a buffer of `buffers`, verifies it and writes it to the `.part` file.
/// Returns its length. The scheduler bounds its time: the driver cancels it when it expires.
async fn fetch_chunk(
    conn: &dyn Connection,
    part: &Arc<PartFile>,
    id: FileId,
    index: u32,
    buffers: &Buffers,
) -> Result<u32, ChunkError> {
    let (_, len) = part.manifest().chunk_span(index);
    let ask = Request::Chunk { file: id, index, offset: 0, len };
    let data = request(conn, &ask, u64::from(len), buffers.take()).await?;
    let part = part.clone();
    let (written, data) = blocking(move || (part.write_chunk(index, &data), data)).await;
    buffers.give(data);
    written.map_err(|e| match e {
        StoreError::ChunkMismatch { .. } => ChunkError::Corrupt,
        other => ChunkError::Store(other),
    })?;
    Ok(len)
}

/// The chunk buffers of a download, reused from chunk to chunk: as many as chunks were ever in flight at
/// once. Allocated afresh for each chunk, freed buffers of up to 32 MiB stayed with glibc's allocator,
/// and a download of 16 MiB chunks reached 103 MiB of RSS with two chunks in flight.
#[derive(Clone, Default)]
struct Buffers(Arc<std::sync::Mutex<Vec<Vec<u8>>>>);

impl Buffers {
    fn take(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).pop().unwrap_or_default()
    }

    fn give(&self, buffer: Vec<u8>) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(buffer);
    }
}
