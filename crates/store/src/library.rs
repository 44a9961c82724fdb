//! The shared folders: which files a node serves, by content id.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::FileType;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proto::{Bitmap, Catalogue, CatalogueEntry, FileId, MAX_CATALOGUE_ENTRIES, Manifest, check_path};

use crate::names::{PART_SUFFIX, STATE_SUFFIX};
use crate::state_key::STATE_FILES;
use crate::{FileStamp, HashCache, StateKey, StoreError, VerifiedChunks, bits_now, is_download_artifact, read_state};

/// What a rescan found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Nothing.
    None,
    /// The same content, but some files were touched, rewritten alike or replaced on disk: the catalogue
    /// stands, what a server checks before sending bytes does not.
    OnDisk,
    /// Files came, went or changed content, or downloads verified more chunks: a new catalogue.
    Catalogue,
}

/// A file this node serves.
#[derive(Clone, Debug)]
pub struct SharedFile {
    /// Where it is on disk.
    pub path: PathBuf,
    /// Its manifest.
    pub manifest: Arc<Manifest>,
    /// For a whole file, its stamp when it was hashed: a server compares it before sending bytes, and has
    /// a file whose stamp changed rescanned first. `None` for a download in progress, whose verified chunks
    /// never change.
    pub stamp: Option<FileStamp>,
    /// `None` for a whole file; for a download in progress (`path` is its `.part`), its verified chunks.
    pub have: Option<Partial>,
}

/// The verified chunks of a download in progress that a node serves. Chunks are only ever added, so
/// neither kind ever claims a chunk that is not there.
#[derive(Clone, Debug)]
pub enum Partial {
    /// Another process's download, found by a scan of a shared folder: the chunks verified then; its state
    /// file says which are now.
    OnDisk(Bitmap),
    /// A download of this process: its chunks as they are verified, in memory.
    InMemory(VerifiedChunks),
}

impl PartialEq for Partial {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Partial::OnDisk(a), Partial::OnDisk(b)) => a == b,
            (Partial::InMemory(a), Partial::InMemory(b)) => a.same(b),
            _ => false,
        }
    }
}

impl Partial {
    /// The chunks as a catalogue lists them.
    pub fn listed(&self) -> Bitmap {
        match self {
            Partial::OnDisk(bits) => bits.clone(),
            Partial::InMemory(verified) => verified.bits(),
        }
    }

    /// The chunks verified now of the download into `part_path` of `manifest`; for one on disk, this reads
    /// its state file (blocking). Empty once the download is gone.
    pub fn now(&self, part_path: &Path, manifest: &Manifest) -> Bitmap {
        match self {
            Partial::OnDisk(listed) => {
                let mut now = bits_now(part_path, manifest).unwrap_or_else(|| Bitmap::empty(manifest.chunk_count()));
                now.union(listed);
                now
            }
            Partial::InMemory(verified) => verified.bits(),
        }
    }
}

/// The files of the shared folders and their subfolders, and the verified chunks of downloads in progress
/// there, indexed by content id and listed by path. Never shared: hidden files and folders, paths that
/// [`check_path`] refuses, symlinked folders, the node's state folder and everything in it
/// (identity, keys, caches) wherever it is, and symlinks whose target is hidden, in the state folder or
/// outside the shared folders. Downloads in progress are recognised only by state files this node wrote
/// ([`StateKey`]), and only as regular files (a symlinked `.part` could point anywhere).
#[derive(Debug)]
pub struct Library {
    dirs: Vec<PathBuf>,
    state_dir: PathBuf,
    cache: HashCache,
    key: StateKey,
    /// Shared with whoever serves them: a new version is a new map, never a copy of this one.
    files: Arc<HashMap<FileId, SharedFile>>,
    /// Every shared path (`folder/file`, below its shared folder) and the content it holds: two shared
    /// folders may each hold a different file at one path.
    paths: BTreeSet<(String, FileId)>,
    /// What each folder held when last read: a rescan told which paths changed reads only their folders.
    listings: HashMap<PathBuf, Listing>,
    /// New or changed files modified moments ago, by the stamp they had: hashed once a later scan finds
    /// them unchanged (a file being copied in is hashed once, when complete, not again and again).
    unsettled: HashMap<PathBuf, FileStamp>,
    /// Whether the folders were read once: what the first scan finds is not new.
    read_once: bool,
    /// [`QUIET`], but in tests of other things.
    quiet: Duration,
}

/// A new or changed file modified longer ago than this is hashed at once; one modified since, once a
/// later scan finds it unchanged.
const QUIET: Duration = Duration::from_secs(1);

/// A folder's entries to share, as read: its subfolders to walk and its files.
#[derive(Debug, Default)]
struct Listing {
    folders: Vec<String>,
    files: Vec<Listed>,
}

/// A file of a [`Listing`].
#[derive(Debug)]
enum Listed {
    /// A whole file, by name, and what tells it changed.
    Whole { name: String, stamp: FileStamp },
    /// A download in progress, shared under `name` (its state file's, less the suffix).
    Partial { name: String, file: SharedFile },
}

impl Listed {
    fn name(&self) -> &str {
        match self {
            Listed::Whole { name, .. } | Listed::Partial { name, .. } => name,
        }
    }
}

/// How far the hashing of a rescan has come: files and bytes hashed, of those that need it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hashing {
    /// Files hashed.
    pub files: usize,
    /// Files to hash in all.
    pub files_total: usize,
    /// Bytes hashed.
    pub bytes: u64,
    /// Bytes to hash in all.
    pub bytes_total: u64,
}

/// What one rescan gathers.
#[derive(Default)]
struct Scan {
    files: HashMap<FileId, SharedFile>,
    paths: BTreeSet<(String, FileId)>,
    /// The files hashed or found in the cache: the cache keeps these.
    hashed: HashSet<PathBuf>,
    /// Files the cache does not know, to hash once the folders are read.
    pending: Vec<Pending>,
    /// Files modified moments ago, left to a later scan.
    unsettled: HashMap<PathBuf, FileStamp>,
}

impl Scan {
    /// Adds the whole file at `path` (with `stamp`), shared as `rel`, whose manifest is `manifest`.
    fn whole(&mut self, path: PathBuf, rel: String, stamp: FileStamp, manifest: Manifest) {
        self.hashed.insert(path.clone());
        let whole = SharedFile { path, manifest: Arc::new(manifest), stamp: Some(stamp), have: None };
        self.paths.insert((rel, whole.manifest.id()));
        match self.files.entry(whole.manifest.id()) {
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
}

/// A file to hash, shared as `rel`.
struct Pending {
    path: PathBuf,
    rel: String,
    name: String,
    stamp: FileStamp,
}

/// Where a scan may and may not take files from: the shared folders and the state folder, canonical.
struct Bounds {
    roots: Vec<PathBuf>,
    private: Option<PathBuf>,
}

/// While hashing, the cache is saved this often, so that a node stopped midway keeps most of the work.
const SAVE_EVERY: Duration = Duration::from_secs(10);

impl Library {
    /// A library over `dirs`, keeping out `state_dir` and trusting the download state that `key`
    /// authenticates; empty until [`Self::rescan`].
    pub fn new(dirs: Vec<PathBuf>, state_dir: PathBuf, cache: HashCache, key: StateKey) -> Self {
        let (files, paths, listings, unsettled) = (Arc::default(), BTreeSet::new(), HashMap::new(), HashMap::new());
        Self { dirs, state_dir, cache, key, files, paths, listings, unsettled, read_once: false, quiet: QUIET }
    }

    /// Reads the folders again, hashing new and changed files, and says what changed. Files that cannot be
    /// read, and files and subfolders whose path is not safe to share ([`check_path`]), are skipped with a
    /// warning; a shared folder that cannot be listed is an error.
    pub fn rescan(&mut self) -> Result<Change, StoreError> {
        self.rescan_telling(None, Duration::MAX, |_, _| ControlFlow::Continue(()))
    }

    /// [`Self::rescan`], telling how it goes: once the folders are read, the library holds every file
    /// whose manifest is known (cached, or a download in progress) and `tell` sees it; then the new and
    /// changed files are hashed, several at once, and every `every` the library holds those hashed so far
    /// and `tell` sees it again with how far the hashing has come, and once more when it is done. `tell`
    /// may stop the rescan (`Break`): the files not yet hashed are left to the next one.
    ///
    /// With `changed` (the paths the file system said changed), only the folders that hold them, and
    /// those they are, are read again; every other folder is taken as it was last read.
    pub fn rescan_telling(
        &mut self,
        changed: Option<&[PathBuf]>,
        every: Duration,
        mut tell: impl FnMut(&Self, Hashing) -> ControlFlow<()>,
    ) -> Result<Change, StoreError> {
        let stale = changed.map(|paths| paths.iter().flat_map(|p| [Some(p.as_path()), p.parent()]).flatten().collect());
        let mut scan = self.walk(stale.as_ref())?;
        let (old_files, old_paths) = (std::mem::take(&mut self.files), std::mem::take(&mut self.paths));
        let hashed_all = match scan.pending.is_empty() {
            true => None,
            false => self.hash_pending(&mut scan, every, &mut tell),
        };
        let Scan { files, paths, hashed, unsettled, .. } = scan;
        (self.unsettled, self.read_once) = (unsettled, true);
        self.cache.retain(|p| hashed.contains(p));
        if let Err(e) = self.cache.save() {
            tracing::warn!(error = %e, "hash cache not saved");
        }
        let catalogue =
            paths != old_paths || files.iter().any(|(id, f)| old_files.get(id).is_none_or(|old| old.have != f.have));
        let on_disk = files
            .iter()
            .any(|(id, f)| old_files.get(id).is_none_or(|old| (&old.path, old.stamp) != (&f.path, f.stamp)));
        (self.files, self.paths) = (Arc::new(files), paths);
        // The end of the hashing is told too, whenever it falls, with the library as the rescan leaves it.
        if let Some(progress) = hashed_all {
            let _ = tell(self, progress);
        }
        Ok(match (catalogue, on_disk) {
            (true, _) => Change::Catalogue,
            (false, true) => Change::OnDisk,
            (false, false) => Change::None,
        })
    }

    /// Reads the shared folders (only those in `stale` where it is given, and those never read): the
    /// files whose manifest is known, and those to hash.
    fn walk(&mut self, stale: Option<&HashSet<&Path>>) -> Result<Scan, StoreError> {
        let mut scan = Scan::default();
        let roots = self.dirs.iter().map(|d| d.canonicalize().map_err(crate::error::io_err(d)));
        let bounds = Bounds { roots: roots.collect::<Result<_, _>>()?, private: self.state_dir.canonicalize().ok() };
        let mut listings = HashMap::with_capacity(self.listings.len());
        'roots: for root in &bounds.roots {
            let mut folders = vec![(root.clone(), String::new())];
            while let Some((folder, prefix)) = folders.pop() {
                let previous = self.listings.remove(&folder);
                let reread = previous.is_none() || stale.is_none_or(|s| s.contains(folder.as_path()));
                let (listing, previous) = match (reread, previous) {
                    (false, Some(kept)) => (Ok(kept), None),
                    (_, previous) => (self.list(&folder, &prefix, &bounds), previous),
                };
                // The files this folder held when last read; none where it is new (but at the first scan).
                let before: Option<HashSet<&str>> = match (&previous, self.read_once && reread) {
                    (Some(old), _) => Some(old.files.iter().map(Listed::name).collect()),
                    (None, true) => Some(HashSet::new()),
                    (None, false) => None,
                };
                let listing = match listing {
                    Ok(listing) => listing,
                    Err(e) if prefix.is_empty() => return Err(crate::error::io_err(root)(e)),
                    Err(e) => {
                        tracing::warn!(folder = %folder.display(), error = %e, "folder not shared");
                        continue;
                    }
                };
                folders.extend(listing.folders.iter().map(|name| (folder.join(name), format!("{prefix}{name}/"))));
                for listed in &listing.files {
                    if scan.paths.len() + scan.pending.len() >= MAX_CATALOGUE_ENTRIES {
                        tracing::warn!(dir = %root.display(), "catalogue full, not sharing further files");
                        break 'roots;
                    }
                    let new = before.as_ref().is_some_and(|b| !b.contains(listed.name()));
                    self.add(&mut scan, &folder, &prefix, listed, new);
                }
                listings.insert(folder, listing);
            }
        }
        self.listings = listings;
        Ok(scan)
    }

    /// What `folder` (shared as `prefix`) holds to share. Hidden files and folders, paths [`check_path`]
    /// refuses, and shared folders inside this one (the downloads folder in the shared one: they are
    /// read as roots of their own) are left out.
    fn list(&self, folder: &Path, prefix: &str, bounds: &Bounds) -> std::io::Result<Listing> {
        let mut listing = Listing::default();
        for entry in std::fs::read_dir(folder)?.flatten() {
            let path = entry.path();
            let (Some(name), Ok(kind)) = (path.file_name().and_then(|n| n.to_str()), entry.file_type()) else {
                continue;
            };
            let rel = format!("{prefix}{name}");
            if bounds.is_private(&path) {
                continue;
            }
            if kind.is_dir() {
                if !name.starts_with('.') && !bounds.roots.contains(&path) && safe(&path, &rel) {
                    listing.folders.push(name.to_string());
                }
            } else if let Some(file) = partial(&path, &self.key) {
                let rel = rel.strip_suffix(STATE_SUFFIX).unwrap_or(&rel);
                if safe(&path, rel) {
                    let name = name.strip_suffix(STATE_SUFFIX).unwrap_or(name).to_string();
                    listing.files.push(Listed::Partial { name, file });
                }
            } else if let Some(stamp) = bounds.shareable(&path, kind)
                && safe(&path, &rel)
            {
                listing.files.push(Listed::Whole { name: name.to_string(), stamp });
            }
        }
        Ok(listing)
    }

    /// Adds a file `listed` in `folder` (shared as `prefix`) to `scan`: a download in progress for the
    /// chunks it has verified, or a whole file, known to the cache or to hash.
    fn add(&self, scan: &mut Scan, folder: &Path, prefix: &str, listed: &Listed, new: bool) {
        match listed {
            Listed::Partial { name, file } => {
                scan.paths.insert((format!("{prefix}{name}"), file.manifest.id()));
                scan.files.entry(file.manifest.id()).or_insert_with(|| file.clone());
            }
            Listed::Whole { name, stamp } => {
                let (path, rel) = (folder.join(name), format!("{prefix}{name}"));
                match self.cache.cached(&path, *stamp, name) {
                    Some(m) => scan.whole(path, rel, *stamp, m),
                    // A file first seen now, or seen changing, is hashed once it is quiet: it may be being
                    // copied in. One changed in place (touched, rewritten) is hashed at once.
                    None if !(new || self.unsettled.contains_key(&path))
                        || stamp.quiet_for(self.quiet)
                        || self.unsettled.get(&path) == Some(stamp) =>
                    {
                        scan.pending.push(Pending { path, rel, name: name.clone(), stamp: *stamp })
                    }
                    None => _ = scan.unsettled.insert(path, *stamp),
                }
            }
        }
    }

    /// Hashes the files of `scan` to hash, on a thread per core (files of several chunks one at a time:
    /// each is hashed on every core already), telling `tell` every `every`.
    /// Returns how far it came, unless `tell` stopped it.
    fn hash_pending(
        &mut self,
        scan: &mut Scan,
        every: Duration,
        tell: &mut impl FnMut(&Self, Hashing) -> ControlFlow<()>,
    ) -> Option<Hashing> {
        let pending = std::mem::take(&mut scan.pending);
        let mut progress = Hashing {
            files_total: pending.len(),
            bytes_total: pending.iter().map(|p| p.stamp.size()).sum(),
            ..Hashing::default()
        };
        self.hold_so_far(scan);
        if tell(self, progress).is_break() {
            return None;
        }
        let (next, hashed, large) = (AtomicUsize::new(0), AtomicU64::new(0), Mutex::new(()));
        let threads = std::thread::available_parallelism().map_or(1, usize::from).min(pending.len());
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::channel();
            for _ in 0..threads {
                let (tx, pending, next, hashed, large) = (tx.clone(), &pending, &next, &hashed, &large);
                scope.spawn(move || {
                    while let Some(p) = pending.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let _one_at_a_time = (p.stamp.size() > u64::from(proto::MIN_CHUNK_SIZE))
                            .then(|| large.lock().unwrap_or_else(|e| e.into_inner()));
                        let result = crate::hash_file_counting(&p.path, p.name.clone(), hashed);
                        if tx.send((p, result)).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(tx);
            let (mut told, mut saved, mut gap) = (Instant::now(), Instant::now(), every);
            loop {
                match rx.recv_timeout(gap.saturating_sub(told.elapsed())) {
                    Ok((p, Ok(m))) => {
                        self.cache.insert(&p.path, p.stamp, m.clone());
                        scan.whole(p.path.clone(), p.rel.clone(), p.stamp, m);
                        progress.files += 1;
                    }
                    Ok((p, Err(StoreError::ChangedWhileHashing { .. }))) => {
                        tracing::debug!(file = %p.path.display(), "changed while hashed; hashed again once quiet");
                        scan.unsettled.insert(p.path.clone(), p.stamp);
                        progress.files += 1;
                    }
                    Ok((p, Err(e))) => {
                        tracing::warn!(file = %p.path.display(), error = %e, "not shared");
                        progress.files += 1;
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                if told.elapsed() < gap {
                    continue;
                }
                let telling = Instant::now();
                progress.bytes = hashed.load(Ordering::Relaxed);
                self.hold_so_far(scan);
                if tell(self, progress).is_break() {
                    // The threads stop after the file each is hashing.
                    return None;
                }
                told = Instant::now();
                // Telling copies the library so far: where that is large, it is told less often, so that
                // the copies take at most a fifth of the time.
                gap = every.max((told - telling) * 4);
                if saved.elapsed() >= SAVE_EVERY {
                    if let Err(e) = self.cache.save() {
                        tracing::warn!(error = %e, "hash cache not saved");
                    }
                    saved = told;
                }
            }
            progress.bytes = hashed.load(Ordering::Relaxed);
            Some(progress)
        })
    }

    /// Holds what `scan` has gathered so far, for `tell` to see while the rescan goes on.
    fn hold_so_far(&mut self, scan: &Scan) {
        (self.files, self.paths) = (Arc::new(scan.files.clone()), scan.paths.clone());
    }

    /// The shared file with content `id`.
    pub fn file(&self, id: &FileId) -> Option<&SharedFile> {
        self.files.get(id)
    }

    /// Every shared file by content id.
    pub fn files(&self) -> &Arc<HashMap<FileId, SharedFile>> {
        &self.files
    }

    /// The new or changed files modified moments ago, not shared yet: a rescan of these paths soon
    /// shares those that have stayed unchanged since.
    pub fn unsettled(&self) -> Vec<PathBuf> {
        self.unsettled.keys().cloned().collect()
    }

    /// How many files are shared.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether nothing is shared.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The catalogue to serve: every shared path, sorted.
    pub fn catalogue(&self) -> Catalogue {
        let entry = |(path, id): &(String, FileId)| {
            let f = self.files.get(id)?;
            Some(CatalogueEntry {
                id: *id,
                name: path.clone(),
                size: f.manifest.size(),
                have: f.have.as_ref().map(Partial::listed),
            })
        };
        Catalogue { entries: self.paths.iter().filter_map(entry).collect() }
    }
}

/// Whether the file or folder at `path` may be shared as `rel`, with a warning where not.
fn safe(path: &Path, rel: &str) -> bool {
    let checked = check_path(rel);
    if let Err(e) = checked {
        tracing::warn!(file = %path.display(), error = %e, "not shared");
    }
    checked.is_ok()
}

/// A download in progress, from its state file `NAME.part.state` (if `path` is one, `key` authenticates
/// it, and both it and `NAME.part` are regular files), shared for the chunks it has verified.
fn partial(path: &Path, key: &StateKey) -> Option<SharedFile> {
    let part = path.to_str()?.strip_suffix(STATE_SUFFIX).map(|p| PathBuf::from(format!("{p}{PART_SUFFIX}")))?;
    let regular = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file());
    if !regular(path) || !regular(&part) {
        return None;
    }
    let (manifest, have) = read_state(path, key)?;
    Some(SharedFile { path: part, manifest: Arc::new(manifest), stamp: None, have: Some(Partial::OnDisk(have)) })
}

impl Bounds {
    /// Whether `path` (canonical) is in the state folder: anything in it, or only the node's own files
    /// when the state folder is a shared folder or holds one (`--state-dir` equal to `--dir`).
    fn is_private(&self, path: &Path) -> bool {
        let Some(private) = &self.private else { return false };
        if self.roots.iter().any(|root| root.starts_with(private)) {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            path.parent() == Some(private.as_path()) && STATE_FILES.contains(&name)
        } else {
            path.starts_with(private)
        }
    }

    /// The stamp of `path` (in a root, an entry of type `kind`) if it is a file to share: a UTF-8,
    /// non-hidden name that is no download artifact, a regular file, and for a symlink a target inside a
    /// shared folder, outside the state folder and hidden nowhere along its way.
    fn shareable(&self, path: &Path, kind: FileType) -> Option<FileStamp> {
        let name = path.file_name()?.to_str()?;
        if name.starts_with('.') || is_download_artifact(name) {
            return None;
        }
        if kind.is_symlink() && !self.allows_target(&path.canonicalize().ok()?) {
            tracing::debug!(file = %path.display(), "symlink target is hidden, private or outside the shared folders, skipped");
            return None;
        }
        let meta = std::fs::metadata(path).ok()?;
        meta.is_file().then(|| FileStamp::of(&meta))
    }

    fn allows_target(&self, target: &Path) -> bool {
        let visible = |root: &PathBuf| {
            target.strip_prefix(root).is_ok_and(|rel| {
                rel.components().all(|c| !c.as_os_str().to_string_lossy().starts_with('.'))
                    && !rel.to_str().is_some_and(is_download_artifact)
            })
        };
        !self.is_private(target) && self.roots.iter().any(visible)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Library {
        /// Hashes new files at once, however recently modified: for tests of other things.
        fn hurried(mut self) -> Self {
            self.quiet = Duration::ZERO;
            self
        }
    }

    #[test]
    fn a_file_modified_moments_ago_is_hashed_once_a_later_scan_finds_it_unchanged() {
        let dir = tempfile::tempdir().expect("dir");
        let s = dir.path().join("shared");
        std::fs::create_dir(&s).expect("mkdir");
        let mut lib = Library::new(vec![s.clone()], dir.path().join("state"), HashCache::default(), StateKey::random());
        assert_eq!(lib.rescan().expect("scan"), Change::None);
        let copying = s.join("copying.bin");
        std::fs::write(&copying, vec![1u8; 1000]).expect("write");
        assert_eq!((lib.rescan().expect("scan"), lib.len()), (Change::None, 0), "being written: not hashed");
        assert_eq!(lib.unsettled(), [copying.canonicalize().expect("canonical")]);
        let mut more = std::fs::OpenOptions::new().append(true).open(&copying).expect("open");
        std::io::Write::write_all(&mut more, &[2u8; 1000]).expect("append");
        assert_eq!((lib.rescan().expect("scan"), lib.len()), (Change::None, 0), "still growing");
        assert_eq!((lib.rescan().expect("scan"), lib.len()), (Change::Catalogue, 1), "unchanged since: shared");
        assert!(lib.unsettled().is_empty());
        assert_eq!(lib.catalogue().entries[0].size, 2000, "hashed once, whole");
    }

    #[test]
    #[cfg(unix)] // symlinks: Windows makes them only with a privilege
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

        let mut lib =
            Library::new(vec![s.to_path_buf()], s.join(".p2pnode"), HashCache::default(), StateKey::random()).hurried();
        assert_eq!(lib.rescan().expect("scan"), Change::Catalogue);
        let names: Vec<_> = lib.catalogue().entries.into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["a.txt", "inside", "same.txt"]);

        std::fs::write(s.join("b.txt"), b"bb").expect("write");
        assert_eq!(lib.rescan().expect("scan"), Change::Catalogue);
        assert_eq!(lib.len(), 4);
        assert_eq!(lib.rescan().expect("scan"), Change::None);
    }

    /// A node answers while it hashes: the files it knows come first, those it hashes as they are done.
    #[test]
    fn a_rescan_tells_the_known_files_first_then_the_hashed_ones() {
        let dir = tempfile::tempdir().expect("dir");
        let (s, cache) = (dir.path().join("shared"), dir.path().join("cache"));
        std::fs::create_dir(&s).expect("mkdir");
        std::fs::write(s.join("known.txt"), b"hashed before").expect("write");
        let new = |lib: &mut Library| lib.rescan_telling(None, Duration::ZERO, |_, _| ControlFlow::Continue(()));
        let mut lib =
            Library::new(vec![s.clone()], dir.path().join("state"), HashCache::load(cache.clone()), StateKey::random())
                .hurried();
        new(&mut lib).expect("scan");
        std::fs::write(s.join("b.txt"), b"bb").expect("write");
        std::fs::write(s.join("c.txt"), b"ccc").expect("write");

        let mut told = Vec::new();
        let mut stop_at_once = |lib: &Library, hashing| {
            told.push((lib.len(), hashing));
            ControlFlow::Break(())
        };
        let mut lib =
            Library::new(vec![s.clone()], dir.path().join("state"), HashCache::load(cache), StateKey::random())
                .hurried();
        assert_eq!(lib.rescan_telling(None, Duration::ZERO, &mut stop_at_once).expect("scan"), Change::Catalogue);
        let to_hash = Hashing { files: 0, files_total: 2, bytes: 0, bytes_total: 5 };
        assert_eq!(told, [(1, to_hash)], "the cached file at once, before any hashing");
        assert_eq!(lib.len(), 1, "stopped: the new files wait for the next rescan");

        told.clear();
        let mut go_on = |lib: &Library, hashing| {
            told.push((lib.len(), hashing));
            ControlFlow::Continue(())
        };
        assert_eq!(lib.rescan_telling(None, Duration::ZERO, &mut go_on).expect("scan"), Change::Catalogue);
        assert_eq!(told.first(), Some(&(1, to_hash)));
        assert_eq!(told.last(), Some(&(3, Hashing { files: 2, bytes: 5, ..to_hash })), "{told:?}");
        assert_eq!(lib.len(), 3);
    }

    /// Told which paths changed, a rescan reads their folders only: the others are taken as last read,
    /// until a full rescan.
    #[test]
    fn a_rescan_told_what_changed_reads_only_those_folders() {
        let dir = tempfile::tempdir().expect("dir");
        let s = dir.path().canonicalize().expect("canonical");
        for folder in ["a", "b", "b/old"] {
            std::fs::create_dir(s.join(folder)).expect("mkdir");
        }
        std::fs::write(s.join("a/x.txt"), b"x").expect("write");
        std::fs::write(s.join("b/old/y.txt"), b"y").expect("write");
        let mut lib =
            Library::new(vec![s.clone()], s.join(".p2pnode"), HashCache::default(), StateKey::random()).hurried();
        lib.rescan().expect("scan");
        let names = |lib: &Library| lib.catalogue().entries.into_iter().map(|e| e.name).collect::<Vec<_>>();

        std::fs::write(s.join("a/unannounced.txt"), b"u").expect("write");
        std::fs::write(s.join("b/new.txt"), b"n").expect("write");
        std::fs::rename(s.join("b/old"), s.join("b/renamed")).expect("rename");
        let told = [s.join("b/new.txt"), s.join("b/old"), s.join("b/renamed")];
        let changed = lib.rescan_telling(Some(&told), Duration::MAX, |_, _| ControlFlow::Continue(()));
        assert_eq!(changed.expect("scan"), Change::Catalogue);
        assert_eq!(names(&lib), ["a/x.txt", "b/new.txt", "b/renamed/y.txt"], "folder a was not read again");
        lib.rescan().expect("scan");
        assert_eq!(names(&lib), ["a/unannounced.txt", "a/x.txt", "b/new.txt", "b/renamed/y.txt"]);
    }

    #[test]
    fn subfolders_are_shared_by_path_and_hidden_or_unsafe_ones_are_not() {
        let shared = tempfile::tempdir().expect("dir");
        let s = shared.path();
        let write = |rel: &str, bytes: &[u8]| {
            std::fs::create_dir_all(s.join(rel).parent().expect("parent")).expect("mkdir");
            std::fs::write(s.join(rel), bytes).expect("write");
        };
        write("a.txt", b"a");
        write("copy.txt", b"same");
        write("docs/copy.txt", b"same");
        write("docs/report.pdf", b"pdf");
        write("docs/2024/q1.pdf", b"q1");
        write("docs/.draft", b"hidden file");
        write(".git/config", b"hidden folder");
        // Windows makes no folder of a device's name: the rule is for the shares of other systems.
        #[cfg(unix)]
        write("CON/x.txt", b"a Windows device name");
        write("downloads/got.txt", b"a shared folder inside the shared folder");
        write("downloads/a.txt", b"another a.txt, in the other shared folder");
        // Past Windows' 260-character paths, which a folder this deep would need.
        #[cfg(unix)]
        write(&("d/".repeat(proto::MAX_DEPTH + 2) + "deep.txt"), b"too deep");
        #[cfg(unix)]
        std::os::unix::fs::symlink(s.join("docs"), s.join("loop")).expect("symlink");

        let dirs = vec![s.to_path_buf(), s.join("downloads")];
        let mut lib = Library::new(dirs, s.join(".p2pnode"), HashCache::default(), StateKey::random()).hurried();
        assert_eq!(lib.rescan().expect("scan"), Change::Catalogue);
        let entries = lib.catalogue().entries;
        let paths: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        let listed = ["a.txt", "a.txt", "copy.txt", "docs/2024/q1.pdf", "docs/copy.txt", "docs/report.pdf", "got.txt"];
        assert_eq!(paths, listed, "both a.txt: one path, a different file in each shared folder");
        assert_eq!(entries[2].id, entries[4].id, "one content under one name is one file, at either path");
        assert_eq!(lib.len(), 6);
        std::fs::rename(s.join("docs/2024"), s.join("docs/2025")).expect("rename a folder");
        assert_eq!(lib.rescan().expect("scan"), Change::Catalogue, "a renamed folder is a new catalogue");
    }

    /// Every way a person or an editor can change a file on disk is noticed: alike content keeps its id and
    /// catalogue (only the stamp moves on), a rename or a deletion changes the catalogue.
    #[test]
    fn touches_rewrites_replacements_renames_and_deletions_are_changes() {
        let dir = tempfile::tempdir().expect("dir");
        let (s, file) = (dir.path(), dir.path().join("notes.txt"));
        std::fs::write(&file, b"same bytes").expect("write");
        let mut lib =
            Library::new(vec![s.to_path_buf()], s.join(".p2pnode"), HashCache::default(), StateKey::random()).hurried();
        lib.rescan().expect("scan");
        let id = lib.catalogue().entries[0].id;
        let stamp = || FileStamp::of(&std::fs::metadata(&file).expect("metadata"));
        let touch = |at: u64| {
            let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(at);
            std::fs::File::options().write(true).open(&file).and_then(|f| f.set_modified(when)).expect("touch");
        };
        let alike: [(&str, &dyn Fn()); 3] = [
            ("touch", &|| touch(1_000_000)),
            ("identical rewrite", &|| std::fs::write(&file, b"same bytes").expect("rewrite")),
            ("replace by rename", &|| {
                std::fs::write(s.join(".notes.txt.swp"), b"same bytes").expect("write");
                std::fs::rename(s.join(".notes.txt.swp"), &file).expect("rename over");
            }),
        ];
        for (what, change) in alike {
            let before = stamp();
            change();
            assert_ne!(stamp(), before, "{what}: the stamp sees it");
            assert_eq!(lib.rescan().expect("scan"), Change::OnDisk, "{what}");
            assert_eq!(lib.file(&id).and_then(|f| f.stamp), Some(stamp()), "{what}: served with the new stamp");
        }
        std::fs::rename(&file, s.join("renamed.txt")).expect("rename");
        assert_eq!(lib.rescan().expect("scan"), Change::Catalogue, "rename");
        std::fs::remove_file(s.join("renamed.txt")).expect("delete");
        assert_eq!(lib.rescan().expect("scan"), Change::Catalogue, "delete");
        assert!(lib.is_empty());
    }

    #[test]
    fn downloads_in_progress_are_shared_for_their_verified_chunks() {
        let dir = tempfile::tempdir().expect("dir");
        let data = vec![9u8; 3 * proto::MIN_CHUNK_SIZE as usize];
        std::fs::write(dir.path().join("src"), &data).expect("write");
        let manifest = Arc::new(crate::hash_file(&dir.path().join("src"), "film.mkv".into()).expect("hash"));
        let downloads = dir.path().join("downloads");
        std::fs::create_dir(&downloads).expect("mkdir");
        let key = StateKey::random();
        let part = crate::PartFile::open(&downloads, manifest.clone(), &key).expect("open");
        part.write_chunk(1, &data[..proto::MIN_CHUNK_SIZE as usize]).expect("chunk 1");

        let mut lib =
            Library::new(vec![downloads.clone()], dir.path().join("state"), HashCache::default(), key).hurried();
        assert_eq!(lib.rescan().expect("scan"), Change::Catalogue);
        let entry = &lib.catalogue().entries[0];
        let bytes = |have: &Option<Bitmap>| have.as_ref().map(|b| b.as_bytes().to_vec());
        assert_eq!((entry.id, bytes(&entry.have)), (manifest.id(), Some(vec![0b010])));
        part.write_chunk(0, &data[..proto::MIN_CHUNK_SIZE as usize]).expect("chunk 0");
        assert_eq!(lib.rescan().expect("scan"), Change::Catalogue, "a new verified chunk changes the catalogue");
        assert_eq!(bytes(&lib.catalogue().entries[0].have), Some(vec![0b011]));
        part.write_chunk(2, &data[..proto::MIN_CHUNK_SIZE as usize]).expect("chunk 2");
        part.finish().expect("finish");
        assert_eq!(lib.rescan().expect("scan"), Change::Catalogue);
        assert_eq!(lib.catalogue().entries[0].have, None, "complete now");
    }

    #[test]
    #[cfg(unix)] // symlinks: Windows makes them only with a privilege
    fn the_state_folder_and_what_leads_into_it_are_never_shared() {
        let (shared, other, outside) =
            (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
        let s = shared.path();
        // The state folder is the shared folder itself, as with `--state-dir` equal to `--dir`.
        let key = StateKey::load_or_create(s).expect("key");
        std::fs::write(s.join(crate::IDENTITY_KEY_FILE), b"private key").expect("write");
        std::fs::write(s.join("ok.txt"), b"ok").expect("write");
        std::fs::create_dir(s.join(".ssh")).expect("mkdir");
        std::fs::write(s.join(".ssh/id"), b"secret").expect("write");
        std::fs::write(other.path().join("film"), b"film").expect("write");
        std::fs::write(outside.path().join("passwd"), b"root").expect("write");
        let link = |target: &Path, name: &str| std::os::unix::fs::symlink(target, s.join(name)).expect("symlink");
        link(&s.join(".ssh/id"), "hidden-target");
        link(&s.join(crate::IDENTITY_KEY_FILE), "key-link");
        link(&outside.path().join("passwd"), "outside");
        link(&other.path().join("film"), "other-share");

        let mut lib =
            Library::new(vec![s.to_path_buf(), other.path().to_path_buf()], s.to_path_buf(), HashCache::default(), key)
                .hurried();
        lib.rescan().expect("scan");
        let mut names: Vec<_> = lib.catalogue().entries.into_iter().map(|e| e.name).collect();
        names.sort();
        assert_eq!(names, ["film", "ok.txt", "other-share"].map(String::from), "nothing private, hidden or outside");

        // With the state folder inside the shared one, nothing in it is shared, whatever it is named.
        let state = s.join("state");
        std::fs::create_dir(&state).expect("mkdir");
        std::fs::write(state.join("keep"), b"k").expect("write");
        link(&state.join("keep"), "into-state");
        let mut lib = Library::new(vec![s.to_path_buf()], state, HashCache::default(), StateKey::random()).hurried();
        lib.rescan().expect("scan");
        assert!(!lib.catalogue().entries.iter().any(|e| e.name == "into-state"));
    }

    #[test]
    #[cfg(unix)] // symlinks: Windows makes them only with a privilege
    fn only_our_own_regular_download_state_is_shared() {
        let (dir, outside) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
        let data = vec![5u8; proto::MIN_CHUNK_SIZE as usize];
        std::fs::write(outside.path().join("secret"), &data).expect("write");
        let manifest = Arc::new(crate::hash_file(&outside.path().join("secret"), "leak".into()).expect("hash"));
        let (ours, theirs) = (StateKey::random(), StateKey::random());
        let downloads = dir.path().join("downloads");
        std::fs::create_dir(&downloads).expect("mkdir");

        // A state file written under another node's key (as a peer could deliver one) is not trusted.
        let foreign = crate::PartFile::open(&downloads, manifest.clone(), &theirs).expect("open");
        foreign.write_chunk(0, &data).expect("chunk");
        let mut lib =
            Library::new(vec![downloads.clone()], dir.path().join("state"), HashCache::default(), ours.clone())
                .hurried();
        lib.rescan().expect("scan");
        assert!(lib.is_empty(), "a foreign state file was trusted");
        let (part, state) = (foreign.part_path().to_path_buf(), downloads.join("leak.part.state"));
        drop(foreign);

        // Our own state beside a `.part` that is a symlink to a file outside: not shared either.
        std::fs::remove_file(&part).expect("rm");
        std::fs::remove_file(&state).expect("rm");
        let own = crate::PartFile::open(&downloads, manifest, &ours).expect("open");
        own.write_chunk(0, &data).expect("chunk");
        drop(own);
        std::fs::remove_file(&part).expect("rm");
        std::os::unix::fs::symlink(outside.path().join("secret"), &part).expect("symlink");
        lib.rescan().expect("scan");
        assert!(lib.is_empty(), "a symlinked .part was shared");
    }

    #[test]
    fn missing_folder_is_an_error() {
        let mut lib = Library::new(
            vec!["/nonexistent/p2pnode".into()],
            "/nonexistent/state".into(),
            HashCache::default(),
            StateKey::random(),
        )
        .hurried();
        assert!(matches!(lib.rescan(), Err(StoreError::Io { .. })));
    }
}
