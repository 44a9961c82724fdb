//! The shared folders: which files a node serves, by content id.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proto::{Catalogue, CatalogueEntry, FileId, MAX_CATALOGUE_ENTRIES, Manifest};

use crate::names::{PART_SUFFIX, STATE_SUFFIX};
use crate::{FileStamp, HashCache, StoreError, is_download_artifact, read_state};

/// A file this node serves.
#[derive(Clone, Debug)]
pub struct SharedFile {
    /// Where it is on disk.
    pub path: PathBuf,
    /// Its manifest.
    pub manifest: Arc<Manifest>,
    /// For a whole file, its size and mtime when it was hashed: a server compares them before sending
    /// bytes, and refuses a file that changed. `None` for a download in progress, whose verified chunks
    /// never change.
    pub stamp: Option<FileStamp>,
    /// `None` for a whole file; for a download in progress (`path` is its `.part`), the bitmap of the
    /// chunks verified when the folder was last scanned. Chunks are only ever added, so the bitmap never
    /// claims a chunk that is not there.
    pub have: Option<Vec<u8>>,
}

/// The files of the shared folders (their top level; hidden files and symlinks leading out of the folder are
/// left out), and the verified chunks of downloads in progress there, indexed by content id.
#[derive(Debug)]
pub struct Library {
    dirs: Vec<PathBuf>,
    cache: HashCache,
    files: HashMap<FileId, SharedFile>,
}

impl Library {
    /// A library over `dirs`, empty until [`Self::rescan`].
    pub fn new(dirs: Vec<PathBuf>, cache: HashCache) -> Self {
        Self { dirs, cache, files: HashMap::new() }
    }

    /// Reads the folders again, hashing new and changed files. Returns whether the set of shared files
    /// changed. Files that cannot be read are skipped with a warning; a folder that cannot be listed is an
    /// error.
    pub fn rescan(&mut self) -> Result<bool, StoreError> {
        let mut files = HashMap::new();
        for dir in &self.dirs {
            let root = dir.canonicalize().map_err(crate::error::io_err(dir))?;
            for entry in std::fs::read_dir(&root).map_err(crate::error::io_err(&root))? {
                let Ok(entry) = entry else { continue };
                let path = entry.path();
                if let Some(partial) = partial(&path) {
                    files.entry(partial.manifest.id()).or_insert(partial);
                    continue;
                }
                let Some((name, meta)) = shareable(&root, &path) else { continue };
                if files.len() >= MAX_CATALOGUE_ENTRIES {
                    tracing::warn!(dir = %root.display(), "catalogue full, not sharing further files");
                    break;
                }
                match self.cache.manifest(&path, &meta, &name) {
                    Ok(m) => {
                        let stamp = Some(FileStamp::of(&meta));
                        let whole = SharedFile { path, manifest: Arc::new(m), stamp, have: None };
                        match files.entry(whole.manifest.id()) {
                            Entry::Vacant(slot) => {
                                slot.insert(whole);
                            }
                            // A whole copy beats a partial one of the same content.
                            Entry::Occupied(mut slot) if slot.get().have.is_some() => {
                                slot.insert(whole);
                            }
                            Entry::Occupied(_) => {}
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "not shared"),
                }
            }
        }
        self.cache.retain(|p| files.values().any(|f| f.path == p));
        if let Err(e) = self.cache.save() {
            tracing::warn!(error = %e, "hash cache not saved");
        }
        let changed = files.len() != self.files.len()
            || files.iter().any(|(id, f)| self.files.get(id).is_none_or(|old| old.have != f.have));
        self.files = files;
        Ok(changed)
    }

    /// The shared file with content `id`.
    pub fn file(&self, id: &FileId) -> Option<&SharedFile> {
        self.files.get(id)
    }

    /// Every shared file by content id.
    pub fn files(&self) -> &HashMap<FileId, SharedFile> {
        &self.files
    }

    /// How many files are shared.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether nothing is shared.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The catalogue to serve, sorted by name.
    pub fn catalogue(&self) -> Catalogue {
        let mut entries: Vec<_> = self
            .files
            .iter()
            .map(|(id, f)| CatalogueEntry {
                id: *id,
                name: f.manifest.name().to_string(),
                size: f.manifest.size(),
                have: f.have.clone(),
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Catalogue { entries }
    }
}

/// A download in progress, from its state file `NAME.part.state` (if `path` is one and both files are
/// there), shared for the chunks it has verified.
fn partial(path: &Path) -> Option<SharedFile> {
    let part = path.to_str()?.strip_suffix(STATE_SUFFIX).map(|p| PathBuf::from(format!("{p}{PART_SUFFIX}")))?;
    let (manifest, have) = read_state(path)?;
    part.is_file().then(|| SharedFile { path: part, manifest: Arc::new(manifest), stamp: None, have: Some(have) })
}

/// The name and metadata of `path` if it is a file to share: a UTF-8, non-hidden name that is no download
/// artifact, a regular file, and (for a symlink) a target inside `root`.
fn shareable(root: &Path, path: &Path) -> Option<(String, Metadata)> {
    let name = path.file_name()?.to_str()?;
    if name.starts_with('.') || is_download_artifact(name) {
        return None;
    }
    let link = std::fs::symlink_metadata(path).ok()?;
    if link.file_type().is_symlink() && !path.canonicalize().ok()?.starts_with(root) {
        tracing::debug!(file = %path.display(), "symlink leads out of the shared folder, skipped");
        return None;
    }
    let meta = std::fs::metadata(path).ok()?;
    meta.is_file().then(|| (name.to_string(), meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_plain_files_only_and_notices_changes() {
        let (shared, outside) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
        let s = shared.path();
        std::fs::write(s.join("a.txt"), b"a").expect("write");
        std::fs::write(s.join("same.txt"), b"a").expect("write");
        std::fs::write(s.join(".hidden"), b"h").expect("write");
        std::fs::write(s.join("x.part"), b"p").expect("write");
        std::fs::create_dir(s.join("sub")).expect("mkdir");
        std::fs::write(outside.path().join("secret"), b"s").expect("write");
        std::os::unix::fs::symlink(outside.path().join("secret"), s.join("escape")).expect("symlink");
        std::os::unix::fs::symlink(s.join("a.txt"), s.join("inside")).expect("symlink");

        let mut lib = Library::new(vec![s.to_path_buf()], HashCache::default());
        assert!(lib.rescan().expect("scan"));
        let names: Vec<_> = lib.catalogue().entries.into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["a.txt", "inside", "same.txt"]);

        std::fs::write(s.join("b.txt"), b"bb").expect("write");
        assert!(lib.rescan().expect("scan"));
        assert_eq!(lib.len(), 4);
        assert!(!lib.rescan().expect("scan"));
    }

    #[test]
    fn downloads_in_progress_are_shared_for_their_verified_chunks() {
        let dir = tempfile::tempdir().expect("dir");
        let data = vec![9u8; 3 * proto::MIN_CHUNK_SIZE as usize];
        std::fs::write(dir.path().join("src"), &data).expect("write");
        let manifest = Arc::new(crate::hash_file(&dir.path().join("src"), "film.mkv".into()).expect("hash"));
        let downloads = dir.path().join("downloads");
        std::fs::create_dir(&downloads).expect("mkdir");
        let part = crate::PartFile::open(&downloads, manifest.clone()).expect("open");
        part.write_chunk(1, &data[..proto::MIN_CHUNK_SIZE as usize]).expect("chunk 1");

        let mut lib = Library::new(vec![downloads.clone()], HashCache::default());
        assert!(lib.rescan().expect("scan"));
        let entry = &lib.catalogue().entries[0];
        assert_eq!((entry.id, entry.have.clone()), (manifest.id(), Some(vec![0b010])));
        part.write_chunk(0, &data[..proto::MIN_CHUNK_SIZE as usize]).expect("chunk 0");
        assert!(lib.rescan().expect("scan"), "a new verified chunk changes the catalogue");
        assert_eq!(lib.catalogue().entries[0].have, Some(vec![0b011]));
        part.write_chunk(2, &data[..proto::MIN_CHUNK_SIZE as usize]).expect("chunk 2");
        part.finish().expect("finish");
        assert!(lib.rescan().expect("scan"));
        assert_eq!(lib.catalogue().entries[0].have, None, "complete now");
    }

    #[test]
    fn missing_folder_is_an_error() {
        let mut lib = Library::new(vec!["/nonexistent/p2pnode".into()], HashCache::default());
        assert!(matches!(lib.rescan(), Err(StoreError::Io { .. })));
    }
}
