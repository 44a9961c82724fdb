//! Downloading one file from every peer hosting it: the async driver of the [`Scheduler`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use proto::{ErrorCode, FileId, Manifest, NodeId, Request};
use store::{PartFile, StoreError};
use tokio::task::JoinSet;
use transport::{Connection, Transport, TransportError};

use crate::exchange::{ExchangeError, request};
use crate::{Failure, NodeError, Scheduler, Status, blocking};

/// Chunk bytes a download keeps in flight from one peer, and in all: the pipelining depth, and what
/// bounds memory whatever the file size.
const PEER_WINDOW: u64 = 8 * 1024 * 1024;
const TOTAL_WINDOW: u64 = 32 * 1024 * 1024;

/// A peer to download from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    /// Its id, checked by transports that authenticate.
    pub node: NodeId,
    /// Its transfer address.
    pub addr: SocketAddr,
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

/// Downloads file `id` from `sources` into `dir`, each chunk verified before it is written to the
/// `.part` file, which is renamed when complete. Requests wait at most `timeout` each. Returns the final
/// path; on failure the verified part is kept for a later resume.
pub async fn download(
    transport: Arc<dyn Transport>,
    id: FileId,
    sources: &[Source],
    dir: &Path,
    timeout: Duration,
    mut on_event: impl FnMut(&DownloadEvent),
) -> Result<PathBuf, NodeError> {
    let conns = connect_all(&transport, sources, &mut on_event).await?;
    let manifest = Arc::new(fetch_manifest(&conns, id, timeout).await?);
    let dir = dir.to_path_buf();
    std::fs::create_dir_all(&dir).map_err(|source| NodeError::State { path: dir.clone(), source })?;
    let part = Arc::new(
        blocking({
            let manifest = manifest.clone();
            move || PartFile::open(&dir, manifest)
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

    let chunk = u64::from(manifest.chunk_size());
    let per_peer = (PEER_WINDOW / chunk).clamp(1, 8) as usize;
    let mut scheduler =
        Scheduler::new(part.missing(), conns.keys().copied(), per_peer, (TOTAL_WINDOW / chunk).max(1) as usize);
    let mut tasks = JoinSet::new();
    loop {
        while let Some((peer, index)) = scheduler.next_request() {
            let (conn, part) = (conns[&peer].clone(), part.clone());
            tasks.spawn(async move { (peer, index, fetch_chunk(&*conn, &part, id, index, timeout).await) });
        }
        let Some(joined) = tasks.join_next().await else { break };
        let (peer, index, result) = joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        match result {
            Ok(bytes) => {
                scheduler.on_success(peer, index);
                tracing::debug!(target: "p2pnode::download", file = manifest.name(), chunk = index, peer = %peer.short(), "chunk verified");
                on_event(&DownloadEvent::Chunk { index, bytes, peer });
            }
            Err(ChunkError::Store(e)) => return Err(e.into()),
            Err(e) => {
                let failure = e.failure();
                tracing::warn!(target: "p2pnode::download", file = manifest.name(), chunk = index, peer = %peer.short(), error = %e, "chunk failed");
                on_event(&DownloadEvent::ChunkFailed {
                    index,
                    peer,
                    error: e.to_string(),
                    corrupt: failure == Failure::Corrupt,
                });
                if scheduler.on_failure(peer, index, failure) {
                    on_event(&DownloadEvent::SourceDropped { peer, reason: e.to_string() });
                }
            }
        }
    }
    match scheduler.status() {
        Status::Done => {
            let part = Arc::into_inner(part).expect("every fetch task has ended, so no other reference is left");
            Ok(blocking(move || part.finish()).await?)
        }
        Status::Stuck { missing } => Err(NodeError::Incomplete { chunks: missing, part: part.part_path().into() }),
        Status::Running => unreachable!("the loop ends only when nothing is in flight and nothing can be asked"),
    }
}

/// Connects to every source at once; those that fail are reported and left out.
async fn connect_all(
    transport: &Arc<dyn Transport>,
    sources: &[Source],
    on_event: &mut impl FnMut(&DownloadEvent),
) -> Result<HashMap<NodeId, Arc<dyn Connection>>, NodeError> {
    let mut attempts = JoinSet::new();
    for source in sources.iter().copied() {
        let transport = transport.clone();
        attempts.spawn(async move { (source.node, transport.connect(source.addr, source.node).await) });
    }
    let mut conns = HashMap::new();
    let mut last_error = None;
    while let Some(joined) = attempts.join_next().await {
        match joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())) {
            (node, Ok(conn)) => {
                conns.insert(node, conn);
            }
            (node, Err(e)) => {
                on_event(&DownloadEvent::SourceDropped { peer: node, reason: e.to_string() });
                last_error = Some(e);
            }
        }
    }
    match (conns.is_empty(), last_error) {
        (true, Some(e)) => Err(e.into()),
        _ => Ok(conns),
    }
}

/// The manifest of `id` from the first peer whose copy hashes to `id`.
async fn fetch_manifest(
    conns: &HashMap<NodeId, Arc<dyn Connection>>,
    id: FileId,
    timeout: Duration,
) -> Result<Manifest, NodeError> {
    const MAX_MANIFEST: u64 = 64 + proto::MAX_FILE_NAME as u64 + 32 * proto::MAX_CHUNKS as u64;
    for (peer, conn) in conns {
        let fetched = tokio::time::timeout(timeout, request(&**conn, &Request::Manifest(id), MAX_MANIFEST)).await;
        match fetched.map(|r| r.map(|bytes| Manifest::decode(&bytes))) {
            Ok(Ok(Ok(m))) if m.id() == id => return Ok(m),
            Ok(Ok(Ok(_))) => tracing::warn!(peer = %peer.short(), "manifest does not match its id"),
            Ok(Ok(Err(e))) => tracing::warn!(peer = %peer.short(), error = %e, "manifest undecodable"),
            Ok(Err(e)) => tracing::warn!(peer = %peer.short(), error = %e, "manifest not fetched"),
            Err(_) => tracing::warn!(peer = %peer.short(), "manifest request timed out"),
        }
    }
    Err(NodeError::NoManifest(id.to_string()))
}

/// Why one chunk request failed.
#[derive(Debug, thiserror::Error)]
enum ChunkError {
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
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
            ChunkError::Exchange(_) => Failure::Broken,
            ChunkError::Timeout(_) => Failure::Timeout,
            ChunkError::Corrupt | ChunkError::Store(_) => Failure::Corrupt,
        }
    }
}

/// Fetches chunk `index`, verifies it and writes it to the `.part` file. Returns its length.
async fn fetch_chunk(
    conn: &dyn Connection,
    part: &Arc<PartFile>,
    id: FileId,
    index: u32,
    timeout: Duration,
) -> Result<u32, ChunkError> {
    let (_, len) = part.manifest().chunk_span(index);
    let ask = Request::Chunk { file: id, index, offset: 0, len };
    let data = tokio::time::timeout(timeout, request(conn, &ask, u64::from(len)))
        .await
        .map_err(|_| ChunkError::Timeout(timeout))??;
    let part = part.clone();
    blocking(move || part.write_chunk(index, &data)).await.map_err(|e| match e {
        StoreError::ChunkMismatch { .. } => ChunkError::Corrupt,
        other => ChunkError::Store(other),
    })?;
    Ok(len)
}
