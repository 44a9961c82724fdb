//! Finding the files a download would only duplicate.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use proto::{FileId, Manifest};

use crate::{HashCache, NameRules, is_download_artifact, safe_file_name};

/// Files of another name but the same size that one lookup hashes at most: a folder of thousands of
/// same-size files costs a few dozen hashes per lookup, not thousands.
const MAX_OTHER_CANDIDATES: usize = 64;

/// The files already in destination folders, for the downloads of one run: each folder is listed once,
/// when first asked about (files this run downloads there are not candidates), and each file hashed at
/// most once.
#[derive(Debug)]
pub struct Copies {
    cache: HashCache,
    /// Each folder's visible regular files, by size.
    listed: HashMap<PathBuf, HashMap<u64, BTreeSet<PathBuf>>>,
    /// The manifest of each file hashed, under its own name (`None`: unreadable).
    hashed: HashMap<PathBuf, Option<Manifest>>,
}

impl Copies {
    /// Lookups that take the manifests `cache` knows (a node's hash cache holds its downloads folder).
    pub fn new(cache: HashCache) -> Self {
        Self { cache, listed: HashMap::new(), hashed: HashMap::new() }
    }

    /// A regular file in `dir` whose bytes, under the name `name`, make the manifest `id` of a `size`-byte
    /// file, whatever it is called there. The file named as the download would be is tried first, then at
    /// most 64 others of that size.
    pub fn find(&mut self, dir: &Path, id: FileId, name: &str, size: u64) -> Option<PathBuf> {
        // Canonical, as the paths a node's hash cache holds.
        let dir = dir.canonicalize().ok()?;
        let same = self.listed.entry(dir.clone()).or_insert_with(|| list(&dir)).get(&size);
        let expected = dir.join(safe_file_name(name, NameRules::of(&dir)));
        // Only the few tried are copied out: a lookup costs the same in a folder of thousands.
        let first = same.is_some_and(|s| s.contains(&expected)).then(|| expected.clone());
        let others = same.into_iter().flatten().filter(|p| **p != expected).take(MAX_OTHER_CANDIDATES).cloned();
        let candidates: Vec<PathBuf> = first.into_iter().chain(others).collect();
        candidates.into_iter().find(|path| self.id_as(path, name) == Some(id))
    }

    /// The id the file at `path` would have under the name `name`: its chunks hashed once, then named.
    fn id_as(&mut self, path: &Path, name: &str) -> Option<FileId> {
        let cache = &mut self.cache;
        let hashed = self.hashed.entry(path.to_path_buf()).or_insert_with(|| {
            let meta = std::fs::metadata(path).ok()?;
            cache.manifest(path, &meta, path.file_name()?.to_str()?).ok()
        });
        let m = hashed.as_ref()?;
        let chunks = (0..m.chunk_count()).filter_map(|i| m.chunk_hash(i).copied()).collect();
        Manifest::new(name.to_string(), m.size(), chunks).ok().map(|named| named.id())
    }
}

/// The visible regular files of `dir` (no hidden files, no downloads in progress), by size.
fn list(dir: &Path) -> HashMap<u64, BTreeSet<PathBuf>> {
    let mut by_size: HashMap<u64, BTreeSet<PathBuf>> = HashMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return by_size };
    let visible = |p: &PathBuf| {
        p.file_name().and_then(|n| n.to_str()).is_some_and(|n| !n.starts_with('.') && !is_download_artifact(n))
    };
    let regular = |p: PathBuf| std::fs::metadata(&p).ok().filter(|m| m.is_file()).map(|m| (p, m.len()));
    for (path, size) in entries.filter_map(|e| Some(e.ok()?.path())).filter(visible).filter_map(regular) {
        by_size.entry(size).or_default().insert(path);
    }
    by_size
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_found_by_content_whatever_its_name() {
        let dir = tempfile::tempdir().expect("dir");
        let original = dir.path().join("original.bin");
        std::fs::write(&original, b"the bytes").expect("write");
        let id = crate::hash_file(&original, "song.ogg".into()).expect("hash").id();
        std::fs::write(dir.path().join("song.ogg"), b"other one").expect("write");
        std::fs::write(dir.path().join(".hidden.ogg"), b"the bytes").expect("write");
        let found = Copies::new(HashCache::default()).find(dir.path(), id, "song.ogg", 9);
        assert_eq!(found, Some(original.canonicalize().expect("canonical")), "a same-size file of another name");
        std::fs::remove_file(&original).expect("remove");
        let mut copies = Copies::new(HashCache::default());
        assert_eq!(copies.find(dir.path(), id, "song.ogg", 9), None, "a different file of that name");
        std::fs::write(&original, b"the bytes").expect("write");
        assert_eq!(copies.find(dir.path(), id, "song.ogg", 9), None, "a folder is listed once per run");
        assert_eq!(copies.find(&dir.path().join("missing"), id, "song.ogg", 9), None);
    }
}
