//! What a download tells as it goes, and what it logs.

use std::path::PathBuf;
use std::sync::Arc;

use proto::{Manifest, NodeId};
use store::VerifiedChunks;

/// What happens during a download, for progress display and logs.
#[derive(Clone, Debug)]
pub enum DownloadEvent {
    /// The manifest is known (name, size, chunks) and the `.part` file open (`have` chunks already
    /// verified by a resume).
    Started {
        /// Chunks already verified.
        have: u32,
        /// Bytes already verified.
        have_bytes: u64,
        /// Peers connected.
        sources: usize,
        /// The `.part` file.
        part: PathBuf,
        /// The manifest being fetched.
        manifest: Arc<Manifest>,
        /// The chunks verified, as they grow: for whoever serves them to others meanwhile.
        verified: VerifiedChunks,
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

/// Logs a failed request and tells the caller, with the peer's drop if it was the last straw.
pub(super) fn report_failure(
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
