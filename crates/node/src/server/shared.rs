//! The complete files a node shares, for front ends that hand them out by other means than the wire
//! (the guest page): listed by their catalogue paths, and read chunk by chunk, each chunk checked
//! against the hash the node took of it, so a file that changed since is refused as peers are refused.

use std::sync::Arc;
use std::time::Duration;

use proto::{Catalogue, FileId, Manifest};
use store::{PositionedIo, SharedFile};
use tokio::sync::{Notify, watch};

use super::answer::open_current;
use super::context::Shares;
use crate::blocking;

/// The files a running node shares, as they stand after its latest scan. Cloned freely.
#[derive(Clone)]
pub struct SharedFiles {
    shares: watch::Receiver<Arc<Shares>>,
    rescan: Arc<Notify>,
    /// How long an open waits for the rescan of a file found changed.
    idle: Duration,
}

/// One complete shared file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedEntry {
    /// Its content id.
    pub id: FileId,
    /// Its path below the shared folders, `/`-separated, as the catalogue lists it.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Why a shared file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    /// The node shares no complete file of that id (any more).
    #[error("no such shared file")]
    NotShared,
    /// The file changed or was deleted since it was hashed.
    #[error("{path}: changed or deleted since it was hashed")]
    Changed {
        /// Its path on disk.
        path: String,
    },
    /// Reading it failed.
    #[error("{path}: {source}")]
    Read {
        /// Its path on disk.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

impl SharedFiles {
    pub(crate) fn new(shares: watch::Receiver<Arc<Shares>>, rescan: Arc<Notify>, idle: Duration) -> Self {
        Self { shares, rescan, idle }
    }

    /// The complete files shared now, by path (one content at several paths is listed at each).
    pub fn list(&self) -> Vec<SharedEntry> {
        let shares = self.shares.borrow().clone();
        let Ok(catalogue) = Catalogue::decode(&shares.catalogue) else { return Vec::new() };
        let mut entries: Vec<_> = catalogue
            .entries
            .into_iter()
            .filter(|e| e.have.is_none())
            .map(|e| SharedEntry { id: e.id, path: e.name, size: e.size })
            .collect();
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        entries
    }

    /// The complete file `id`, opened if it is still what was hashed (one touched since is rescanned
    /// first, and opened if its content is the same).
    pub async fn open(&self, id: FileId) -> Result<SharedReader, SharedError> {
        let shared = self.complete(id)?;
        let path = shared.path.display().to_string();
        match open_current(&shared, &self.shares, &self.rescan, self.idle).await {
            Some(file) => {
                Ok(SharedReader { file, manifest: shared.manifest.clone(), path, rescan: self.rescan.clone() })
            }
            None => Err(SharedError::Changed { path }),
        }
    }

    fn complete(&self, id: FileId) -> Result<SharedFile, SharedError> {
        let shares = self.shares.borrow();
        let shared = shares.files.get(&id).filter(|f| f.have.is_none());
        shared.cloned().ok_or(SharedError::NotShared)
    }
}

/// A shared file open for reading, chunk by chunk.
pub struct SharedReader {
    file: Arc<std::fs::File>,
    manifest: Arc<Manifest>,
    path: String,
    rescan: Arc<Notify>,
}

impl SharedReader {
    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.manifest.size()
    }

    /// Its manifest: the chunk size and hashes.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Chunk `index`, read from disk and checked against its hash: a chunk that no longer matches is an
    /// error (and has the node rescan the file), never bytes.
    pub async fn chunk(&self, index: u32) -> Result<Vec<u8>, SharedError> {
        let (offset, len) = self.manifest.chunk_span(index);
        let (file, manifest) = (self.file.clone(), self.manifest.clone());
        let read = blocking(move || {
            let mut bytes = vec![0u8; len as usize];
            file.read_exact_at(&mut bytes, offset)
                .map(|()| (store::verify_chunk(&manifest, index, &bytes).is_ok(), bytes))
        })
        .await;
        match read {
            Ok((true, bytes)) => Ok(bytes),
            Ok((false, _)) => {
                self.rescan.notify_one();
                Err(SharedError::Changed { path: self.path.clone() })
            }
            Err(source) => Err(SharedError::Read { path: self.path.clone(), source }),
        }
    }
}
