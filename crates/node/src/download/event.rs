//! What a download tells as it goes, and what it logs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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
        /// Whether the `.part` file was that of an earlier version of the file (it changed where it is
        /// shared), taken over: `have` are its chunks that the new version shares.
        earlier_version: bool,
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
        /// What happened to it.
        why: Dropped,
        /// Where it was the last source: how long the download waits for another host before it ends.
        waiting: Option<Duration>,
    },
}

/// Why a source is no longer asked for chunks; as text, what happened to it ("is gone (...)"), to follow
/// its name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Dropped {
    /// It went away: its connection was refused or closed, and cannot be made again.
    #[error("is gone ({0})")]
    Gone(String),
    /// It stopped answering in time.
    #[error("stopped answering ({0})")]
    Silent(String),
    /// It no longer has the file.
    #[error("no longer has the file")]
    NotFound,
    /// It shares only with the peers it trusts, and this node is not one of them.
    #[error("shares only with the peers it trusts")]
    NotTrusted,
    /// It sent chunks that do not match their hashes.
    #[error("sent chunks that do not match their hashes")]
    Corrupt,
    /// It broke the protocol.
    #[error("broke the protocol ({0})")]
    Broken(String),
}

/// Logs a failed request and tells the caller.
pub(super) fn report_failure(
    on_event: &mut impl FnMut(&DownloadEvent),
    manifest: &Manifest,
    node: NodeId,
    chunk: u32,
    error: &str,
    corrupt: bool,
) {
    let (file, peer) = (manifest.name(), node.short());
    if corrupt {
        tracing::info!(target: "p2pnode::download", file, chunk, %peer, "corrupt chunk discarded");
    } else {
        tracing::info!(target: "p2pnode::download", file, chunk, %peer, error, "chunk request failed");
    }
    on_event(&DownloadEvent::ChunkFailed { index: chunk, peer: node, error: error.to_string(), corrupt });
}
