//! Files a node serves to given peers alone, never listed in its catalogue: what one node offers another
//! (a file sent to a recipient, who then pulls it). A granted file is answered only to a connection whose
//! transport proved one of the granted ids (tls, quic); to anyone else it does not exist.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use proto::{FileId, NodeId};
use store::{FileStamp, SharedFile};

use super::spread::Downloader;
use crate::NodeError;

/// The files granted, by id; cloned freely (the clones are one set). See [`crate::Node::grants`].
#[derive(Clone, Default)]
pub struct Grants(Arc<Mutex<HashMap<FileId, Grant>>>);

struct Grant {
    file: SharedFile,
    to: HashSet<NodeId>,
}

impl Grants {
    /// Serves the file at `path` (hashed now, off the async threads) to the nodes `to` alone; returns
    /// its id, by which they ask for it, and its size as hashed. A file changed after this is refused
    /// until granted again.
    pub async fn grant(&self, path: &Path, to: HashSet<NodeId>) -> Result<(FileId, u64), NodeError> {
        let path = path.to_path_buf();
        let file = crate::blocking(move || -> Result<SharedFile, NodeError> {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let stamp = std::fs::metadata(&path).map(|m| FileStamp::of(&m));
            let stamp = stamp.map_err(|source| NodeError::State { path: path.clone(), source })?;
            let manifest = Arc::new(store::hash_file(&path, name)?);
            Ok(SharedFile { path, manifest, stamp: Some(stamp), have: None })
        })
        .await?;
        let (id, size) = (file.manifest.id(), file.manifest.size());
        self.lock().insert(id, Grant { file, to });
        Ok((id, size))
    }

    /// No longer serves `id` to anyone.
    pub fn revoke(&self, id: FileId) {
        self.lock().remove(&id);
    }

    /// The file `id`, if it is granted to `who` (a proven id; an address alone proves nothing).
    pub(crate) fn find(&self, who: Downloader, id: &FileId) -> Option<SharedFile> {
        let Downloader::Proven(node) = who else { return None };
        let grants = self.lock();
        grants.get(id).filter(|grant| grant.to.contains(&node)).map(|grant| grant.file.clone())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<FileId, Grant>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
