//! The hash cache: manifests of shared files, keyed by path and [`FileStamp`].

use std::collections::HashMap;
use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use proto::Manifest;
use proto::codec::{DecodeError, Reader, Writer};

use crate::error::io_err;
use crate::{StoreError, hash_file};

const MAGIC: &[u8; 4] = b"P2PH";
const VERSION: u8 = 2;
const MAX_PATH: usize = 4_096;
const MAX_ENTRIES: usize = 1_000_000;

/// Manifests of files already hashed. A file whose stamp is unchanged is not read again.
#[derive(Debug, Default)]
pub struct HashCache {
    file: Option<PathBuf>,
    entries: HashMap<PathBuf, Entry>,
    dirty: bool,
}

#[derive(Debug)]
struct Entry {
    stamp: FileStamp,
    manifest: Manifest,
}

/// What tells a changed file from an unchanged one without reading it: its size, modification time and
/// inode. A `touch` and a rewrite change the mtime, a replacement by rename (how editors save) the inode.
/// Not the status-change time: it moves on `chmod` and hard links too, and bytes changed with the mtime
/// put back (bit rot, to the node) are caught by every downloader's hash check instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp {
    size: u64,
    mtime_ns: u64,
    inode: u64,
}

impl FileStamp {
    /// The stamp of a file with metadata `meta`.
    pub fn of(meta: &Metadata) -> Self {
        let since_epoch = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok());
        Self { size: meta.len(), mtime_ns: since_epoch.map_or(0, |d| d.as_nanos() as u64), inode: inode(meta) }
    }

    /// The file's size.
    pub fn size(self) -> u64 {
        self.size
    }

    /// Whether the file was last modified at least `quiet` ago (a clock behind the file's time counts as
    /// just modified).
    pub fn quiet_for(self, quiet: std::time::Duration) -> bool {
        let now = std::time::SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        now.saturating_sub(self.mtime_ns) >= quiet.as_nanos() as u64
    }
}

#[cfg(unix)]
fn inode(meta: &Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

/// Elsewhere size and mtime are all the stamp holds.
#[cfg(not(unix))]
fn inode(_meta: &Metadata) -> u64 {
    0
}

impl HashCache {
    /// The cache persisted at `file`; empty when the file is missing or unreadable (it is only a cache).
    pub fn load(file: PathBuf) -> Self {
        let entries = match std::fs::read(&file) {
            Ok(bytes) => decode(&bytes).unwrap_or_else(|e| {
                tracing::warn!(file = %file.display(), error = %e, "hash cache unreadable, rehashing");
                HashMap::new()
            }),
            Err(_) => HashMap::new(),
        };
        Self { file: Some(file), entries, dirty: false }
    }

    /// The manifest of the file at `path` (with `meta`, its metadata), named `name`: from the cache when
    /// its stamp matches, else by hashing the file.
    pub fn manifest(&mut self, path: &Path, meta: &Metadata, name: &str) -> Result<Manifest, StoreError> {
        let stamp = FileStamp::of(meta);
        if let Some(known) = self.cached(path, stamp, name) {
            return Ok(known);
        }
        let manifest = hash_file(path, name.to_string())?;
        self.insert(path, stamp, manifest.clone());
        Ok(manifest)
    }

    /// The manifest of the file at `path` named `name`, if the cache holds it for `stamp`.
    pub fn cached(&self, path: &Path, stamp: FileStamp, name: &str) -> Option<Manifest> {
        let e = self.entries.get(path)?;
        (e.stamp == stamp && e.manifest.name() == name).then(|| e.manifest.clone())
    }

    /// Remembers `manifest` as that of the file at `path`, hashed when it had `stamp`.
    pub fn insert(&mut self, path: &Path, stamp: FileStamp, manifest: Manifest) {
        tracing::debug!(file = %path.display(), id = %manifest.id().short(), "hashed");
        self.entries.insert(path.to_path_buf(), Entry { stamp, manifest });
        self.dirty = true;
    }

    /// Forgets the files for which `keep` is false (no longer shared).
    pub fn retain(&mut self, mut keep: impl FnMut(&Path) -> bool) {
        let before = self.entries.len();
        self.entries.retain(|path, _| keep(path));
        self.dirty |= self.entries.len() != before;
    }

    /// Writes the cache if it changed, atomically (a temporary file renamed over the old one).
    pub fn save(&mut self) -> Result<(), StoreError> {
        let Some(file) = self.file.as_ref().filter(|_| self.dirty) else { return Ok(()) };
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, self.encode()).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, file).map_err(io_err(file))?;
        self.dirty = false;
        Ok(())
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.put(MAGIC);
        out.put_u8(VERSION);
        out.put_u32(self.entries.len() as u32);
        for (path, e) in &self.entries {
            let bytes = path.as_os_str().as_encoded_bytes();
            out.put_u16(bytes.len() as u16);
            out.put(bytes);
            for field in [e.stamp.size, e.stamp.mtime_ns, e.stamp.inode] {
                out.put_u64(field);
            }
            let manifest = e.manifest.encode();
            out.put_u32(manifest.len() as u32);
            out.put(&manifest);
        }
        out
    }
}

fn decode(bytes: &[u8]) -> Result<HashMap<PathBuf, Entry>, DecodeError> {
    let mut r = Reader::new(bytes);
    r.header(MAGIC, VERSION)?;
    let count = r.count("hash cache", MAX_ENTRIES, 2 + 3 * 8 + 4)?;
    let mut entries = HashMap::with_capacity(count);
    for _ in 0..count {
        let path_len = usize::from(r.u16()?);
        proto::codec::check_len("path", path_len, MAX_PATH)?;
        let path = path_from_bytes(r.bytes(path_len)?);
        let stamp = FileStamp { size: r.u64()?, mtime_ns: r.u64()?, inode: r.u64()? };
        let manifest_len = r.u32()? as usize;
        let manifest = Manifest::decode(r.bytes(manifest_len)?)?;
        if let Some(path) = path {
            entries.insert(path, Entry { stamp, manifest });
        }
    }
    r.finish()?;
    Ok(entries)
}

/// A path written by [`HashCache::encode`]: any bytes on Unix; elsewhere UTF-8 only (an entry whose path
/// is not is dropped, and its file hashed again).
#[cfg(unix)]
fn path_from_bytes(bytes: &[u8]) -> Option<PathBuf> {
    Some(PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(bytes)))
}

#[cfg(not(unix))]
fn path_from_bytes(bytes: &[u8]) -> Option<PathBuf> {
    std::str::from_utf8(bytes).ok().map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persists_and_rehashes_only_changed_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (file, cache_file) = (dir.path().join("a.bin"), dir.path().join("cache"));
        std::fs::write(&file, b"first").expect("write");
        let meta = std::fs::metadata(&file).expect("meta");
        let mut cache = HashCache::load(cache_file.clone());
        let first = cache.manifest(&file, &meta, "a.bin").expect("hash");
        cache.save().expect("save");

        // A reloaded cache answers from disk: prove it by deleting the file it would otherwise read.
        let mut reloaded = HashCache::load(cache_file.clone());
        let moved = dir.path().join("moved");
        std::fs::rename(&file, &moved).expect("move away");
        assert_eq!(reloaded.manifest(&file, &meta, "a.bin").expect("cached"), first);

        // A changed size misses the cache and rehashes.
        std::fs::write(&file, b"second!").expect("rewrite");
        let meta = std::fs::metadata(&file).expect("meta");
        let second = reloaded.manifest(&file, &meta, "a.bin").expect("rehash");
        assert_ne!(second.id(), first.id());
        assert_eq!(second.size(), 7);
    }

    #[test]
    fn corrupt_cache_file_is_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache_file = dir.path().join("cache");
        std::fs::write(&cache_file, b"P2PH\x01\xff\xff\xff\xff garbage").expect("write");
        assert!(HashCache::load(cache_file).entries.is_empty());
    }
}
