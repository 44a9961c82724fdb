//! Errors of the content store.

use std::io;
use std::path::PathBuf;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file or folder could not be read or written; the message names it.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The file cannot be described by a manifest (name over 255 bytes, or over 16 TiB).
    #[error("{}: cannot be shared: {reason}", path.display())]
    Unshareable {
        /// The file.
        path: PathBuf,
        /// What limit it exceeds.
        reason: proto::DecodeError,
    },
    /// Received bytes do not hash to the manifest's chunk hash: the sender's copy is corrupt (or it lies).
    #[error("chunk {index} does not match its hash")]
    ChunkMismatch {
        /// The chunk index.
        index: u32,
    },
    /// A chunk index or length is outside the manifest.
    #[error("chunk {index} is outside the file")]
    ChunkOutOfRange {
        /// The chunk index.
        index: u32,
    },
    /// The file changed while it was hashed (it is being written): hashed again once it is quiet.
    #[error("{}: changed while it was hashed", path.display())]
    ChangedWhileHashing {
        /// The file.
        path: PathBuf,
    },
    /// The download was finished before every chunk was verified.
    #[error("{missing} chunks still missing")]
    Incomplete {
        /// How many chunks are missing.
        missing: u32,
    },
}

/// Attaches the path to an I/O error.
pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.into();
    move |source| StoreError::Io { path, source }
}
