//! A download in progress: verified chunks in `NAME.part`; the manifest and the bitmap of verified chunks
//! in `NAME.part.state` (magic, version, manifest length and bytes, a MAC, bitmap), so that a serving node
//! can share the verified chunks before the download completes. The MAC, under the node-local
//! [`StateKey`], binds the manifest to the `.part` file's name: a state file this node did not write is
//! not a download in progress (it is neither resumed nor shared).
//!
//! Invariant: a chunk's bit is set in the state file only after its verified bytes were written to the
//! `.part` file. After a crash the bits may claim chunks whose bytes never reached the disk, so a resumed
//! download hashes every claimed chunk again before trusting it; bytes that were never verified are never
//! renamed to the final name.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use proto::codec::{Reader, Writer};
use proto::{Bitmap, Manifest};

use crate::error::io_err;
use crate::names::{PART_SUFFIX, STATE_SUFFIX, numbered};
use crate::place::{MAX_NAME_TRIES, put_in_place};
use crate::{NameRules, PositionedIo, StateKey, StoreError, safe_file_name, verify_chunk};

const MAGIC: &[u8; 4] = b"P2PS";
const VERSION: u8 = 3;
/// What the MAC of a state file covers besides the part file's name and the manifest.
const MAC_CONTEXT: &[u8] = b"p2pnode part state v3";

/// How far a download is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartProgress {
    /// Verified chunks.
    pub chunks: u32,
    /// Verified bytes.
    pub bytes: u64,
}

/// A download in progress. Shared between the tasks that fetch chunks: [`Self::write_chunk`] takes `&self`,
/// hashes outside any lock and writes with positioned I/O.
#[derive(Debug)]
pub struct PartFile {
    dir: PathBuf,
    name: String,
    part_path: PathBuf,
    part: File,
    /// The state file, open until the download is finished: closed before it is deleted, since Windows
    /// keeps the name of a file deleted while it is open until the handle closes.
    state: Mutex<Option<File>>,
    manifest: Arc<Manifest>,
    /// Where the bitmap starts in the state file.
    bits_at: u64,
    verified: VerifiedChunks,
    /// Whether the part was an earlier version's, taken over ([`Self::open`]).
    took_over: bool,
}

/// The chunks a download has verified so far, as it verifies them: shared by the download and whoever in
/// the same process serves it, who so never reads the state file back (a clone is a handle to the same).
#[derive(Clone, Debug)]
pub struct VerifiedChunks(Arc<Mutex<Verified>>);

#[derive(Debug)]
struct Verified {
    bits: Bitmap,
    progress: PartProgress,
}

impl VerifiedChunks {
    fn new(chunks: u32) -> Self {
        Self(Arc::new(Mutex::new(Verified {
            bits: Bitmap::empty(chunks),
            progress: PartProgress { chunks: 0, bytes: 0 },
        })))
    }

    /// Whether chunk `index` is verified and written.
    pub fn has(&self, index: u32) -> bool {
        self.lock().bits.has(index)
    }

    /// The verified chunks now.
    pub fn bits(&self) -> Bitmap {
        self.lock().bits.clone()
    }

    /// Whether `self` and `other` are handles to the chunks of one download.
    pub fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    fn lock(&self) -> MutexGuard<'_, Verified> {
        // The lock only guards plain data updated without panicking paths; a poisoned lock still holds a
        // consistent bitmap.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl PartFile {
    /// Opens the download of `manifest` into `dir` under its sanitised name. An existing `NAME.part` of the
    /// same content whose state `key` authenticates is resumed (its claimed chunks re-verified). One of an
    /// earlier version of the file (its state ours, its name the same, its content other: the file changed
    /// where it is shared) is taken over, keeping the chunks that still match ([`Self::took_over`]), so
    /// that no stale part stays behind. Any other, or one with a state file this node did not write, is
    /// left alone and `NAME (1).part` tried instead; so is one that another download holds open (each
    /// holds its part locked).
    pub fn open(dir: &Path, manifest: Arc<Manifest>, key: &StateKey) -> Result<Self, StoreError> {
        let name = safe_file_name(manifest.name(), NameRules::of(dir));
        for candidate in numbered(&name).take(MAX_NAME_TRIES) {
            let part_path = dir.join(format!("{candidate}{PART_SUFFIX}"));
            let state_path = dir.join(format!("{candidate}{STATE_SUFFIX}"));
            if !part_path.exists() && !state_path.exists() {
                return Self::create(dir, name, part_path, &state_path, manifest, key);
            }
            let Some((found, bits)) = read_state(&state_path, key).filter(|_| part_path.is_file()) else { continue };
            let taken = found.id() == manifest.id() || found.name() == manifest.name();
            let Some(part) = taken.then(|| locked(&part_path)).transpose()?.flatten() else { continue };
            let opened = Opened { dir, name, part_path, part };
            if found.id() == manifest.id() {
                return Self::resume(opened, &state_path, manifest, &bits);
            }
            return Self::take_over(opened, &state_path, manifest, key, (&found, &bits));
        }
        Err(StoreError::Io { path: dir.join(name), source: std::io::Error::other("no free file name") })
    }

    /// Resumes the part of `earlier`, an earlier version of `manifest`'s file, as a download of
    /// `manifest`: its state written anew, and of the chunks it verified, those that are the same in the
    /// new version (same place, size and hash) kept once verified again.
    fn take_over(
        opened: Opened<'_>,
        state_path: &Path,
        manifest: Arc<Manifest>,
        key: &StateKey,
        (earlier, had): (&Manifest, &Bitmap),
    ) -> Result<Self, StoreError> {
        let same = |i: &u32| {
            earlier.chunk_span(*i) == manifest.chunk_span(*i) && earlier.chunk_hash(*i) == manifest.chunk_hash(*i)
        };
        let mut kept = Bitmap::empty(manifest.chunk_count());
        for index in (0..manifest.chunk_count().min(earlier.chunk_count())).filter(|i| had.has(*i)).filter(same) {
            kept.set(index);
        }
        let mut state = state_header(&manifest, key, &opened.part_path);
        state.put(Bitmap::empty(manifest.chunk_count()).as_bytes());
        std::fs::write(state_path, &state).map_err(io_err(state_path))?;
        let mut this = Self::resume(opened, state_path, manifest, &kept)?;
        this.took_over = true;
        tracing::info!(file = %this.part_path.display(), kept = this.progress().chunks, "an earlier version's part taken over");
        Ok(this)
    }

    /// Whether this download took over the part of an earlier version of its file: the chunks that were
    /// the same in both are all it kept ([`Self::progress`]).
    pub fn took_over(&self) -> bool {
        self.took_over
    }

    fn create(
        dir: &Path,
        name: String,
        part_path: PathBuf,
        state_path: &Path,
        manifest: Arc<Manifest>,
        key: &StateKey,
    ) -> Result<Self, StoreError> {
        let new = || OpenOptions::new().read(true).write(true).create_new(true).clone();
        let part = new().open(&part_path).map_err(io_err(&part_path))?;
        // Just made: nobody else holds it.
        let _ = part.try_lock();
        let verified = VerifiedChunks::new(manifest.chunk_count());
        let mut header = state_header(&manifest, key, &part_path);
        let bits_at = header.len() as u64;
        header.put(verified.lock().bits.as_bytes());
        let state = part.set_len(manifest.size()).map_err(io_err(&part_path)).and_then(|()| {
            let state = new().open(state_path).map_err(io_err(state_path))?;
            state.write_all_at(&header, 0).map_err(io_err(state_path))?;
            Ok(state)
        });
        let state = match state {
            Ok(state) => state,
            // Leave nothing behind: a `.part` without its state would only be a stray file.
            Err(e) => {
                let _ = discard_part(&part_path);
                return Err(e);
            }
        };
        let took_over = false;
        let state = Mutex::new(Some(state));
        Ok(Self { dir: dir.to_path_buf(), name, part_path, part, state, manifest, bits_at, verified, took_over })
    }

    fn resume(
        opened: Opened<'_>,
        state_path: &Path,
        manifest: Arc<Manifest>,
        bits: &Bitmap,
    ) -> Result<Self, StoreError> {
        let Opened { dir, name, part_path, part } = opened;
        part.set_len(manifest.size()).map_err(io_err(&part_path))?;
        let state = OpenOptions::new().read(true).write(true).open(state_path).map_err(io_err(state_path))?;
        // Magic, version, manifest length, manifest, MAC: where the bitmap starts.
        let bits_at = (MAGIC.len() + 1 + 4 + manifest.encoded_len() + 32) as u64;
        let this = Self {
            dir: dir.to_path_buf(),
            name,
            part_path,
            part,
            state: Mutex::new(Some(state)),
            manifest,
            bits_at,
            verified: VerifiedChunks::new(bits.chunks()),
            took_over: false,
        };
        let mut buf = Vec::new();
        for index in (0..this.manifest.chunk_count()).filter(|i| bits.has(*i)) {
            let (offset, len) = this.manifest.chunk_span(index);
            buf.resize(len as usize, 0);
            let readable = this.part.read_exact_at(&mut buf, offset).is_ok();
            if readable && verify_chunk(&this.manifest, index, &buf).is_ok() {
                this.mark(index)?;
            }
        }
        this.persist_all()?;
        tracing::info!(file = %this.part_path.display(), chunks = this.progress().chunks, "resuming download");
        Ok(this)
    }

    /// The manifest being downloaded.
    pub fn manifest(&self) -> &Arc<Manifest> {
        &self.manifest
    }

    /// The `.part` file.
    pub fn part_path(&self) -> &Path {
        &self.part_path
    }

    /// The verified chunks, as they grow.
    pub fn verified(&self) -> &VerifiedChunks {
        &self.verified
    }

    /// The chunks still missing, in order.
    pub fn missing(&self) -> Vec<u32> {
        self.verified.lock().bits.missing().collect()
    }

    /// Verified chunks and bytes so far.
    pub fn progress(&self) -> PartProgress {
        self.verified.lock().progress
    }

    /// Verifies `data` as chunk `index` and writes it. Bytes that fail verification are not written.
    pub fn write_chunk(&self, index: u32, data: &[u8]) -> Result<(), StoreError> {
        verify_chunk(&self.manifest, index, data)?;
        let (offset, _) = self.manifest.chunk_span(index);
        self.part.write_all_at(data, offset).map_err(io_err(&self.part_path))?;
        self.mark(index)
    }

    /// Sets the bit of `index` in memory and in the state file.
    fn mark(&self, index: u32) -> Result<(), StoreError> {
        let mut have = self.verified.lock();
        if !have.bits.set(index) {
            return Ok(());
        }
        have.progress.chunks += 1;
        have.progress.bytes += u64::from(self.manifest.chunk_span(index).1);
        let (at, byte) = have.bits.byte_of(index);
        self.write_state(&[byte], self.bits_at + at as u64)
    }

    fn persist_all(&self) -> Result<(), StoreError> {
        let have = self.verified.lock();
        self.write_state(have.bits.as_bytes(), self.bits_at)
    }

    /// Writes `bytes` at `at` in the state file; an error once the download is finished.
    fn write_state(&self, bytes: &[u8], at: u64) -> Result<(), StoreError> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let written = match state.as_ref() {
            Some(file) => file.write_all_at(bytes, at),
            None => Err(std::io::Error::other("the download is finished")),
        };
        written.map_err(io_err(self.state_path()))
    }

    /// Completes the download: every chunk must be verified; the data is flushed to disk and the `.part`
    /// file renamed to the first of `NAME`, `NAME (1)`, ... that does not exist (never replacing a file).
    /// Returns the final path. A write still in flight (a cancelled duplicate) can only rewrite verified
    /// chunks with the same bytes, so it does no harm after this.
    pub fn finish(&self) -> Result<PathBuf, StoreError> {
        let missing = self.manifest.chunk_count() - self.progress().chunks;
        if missing > 0 {
            return Err(StoreError::Incomplete { missing });
        }
        self.part.sync_all().map_err(io_err(&self.part_path))?;
        let target = put_in_place(&self.part_path, &self.dir, &self.name).map_err(io_err(self.dir.join(&self.name)))?;
        drop(self.state.lock().unwrap_or_else(PoisonError::into_inner).take());
        std::fs::remove_file(self.state_path()).map_err(io_err(self.state_path()))?;
        Ok(target)
    }

    fn state_path(&self) -> PathBuf {
        state_path_of(&self.part_path)
    }
}

/// A `.part` file opened and locked for a download, with where it is.
struct Opened<'a> {
    dir: &'a Path,
    name: String,
    part_path: PathBuf,
    part: File,
}

/// The `.part` file at `path`, opened and locked; `None` where another download holds it.
fn locked(path: &Path) -> Result<Option<File>, StoreError> {
    let part = OpenOptions::new().read(true).write(true).open(path).map_err(io_err(path))?;
    match part.try_lock() {
        Ok(()) => Ok(Some(part)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        // A file system without locks (some FUSE ones): nothing to tell another download by.
        Err(std::fs::TryLockError::Error(_)) => Ok(Some(part)),
    }
}

/// Deletes an unfinished download: its `.part` file and the state beside it.
pub fn discard_part(part_path: &Path) -> Result<(), StoreError> {
    let state = state_path_of(part_path);
    std::fs::remove_file(part_path).map_err(io_err(part_path))?;
    match std::fs::remove_file(&state) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::Io { path: state, source: e }),
        _ => Ok(()),
    }
}

/// `NAME.part` -> `NAME.part.state`.
fn state_path_of(part_path: &Path) -> PathBuf {
    let mut path = part_path.as_os_str().to_owned();
    path.push(&STATE_SUFFIX[PART_SUFFIX.len()..]);
    path.into()
}

/// The state file's bytes before the bitmap, for the download into `part_path`.
fn state_header(manifest: &Manifest, key: &StateKey, part_path: &Path) -> Vec<u8> {
    let encoded = manifest.encode();
    let mut header = Vec::with_capacity(9 + encoded.len() + 32);
    header.put(MAGIC);
    header.put_u8(VERSION);
    header.put_u32(encoded.len() as u32);
    header.put(&encoded);
    header.put(&state_mac(key, part_path, &encoded));
    header
}

fn state_mac(key: &StateKey, part_path: &Path, manifest: &[u8]) -> [u8; 32] {
    let name = part_path.file_name().map(|n| n.as_encoded_bytes()).unwrap_or_default();
    key.mac(&[MAC_CONTEXT, name, manifest])
}

/// The manifest and the verified-chunk bitmap of the state file at `path`, if it is readable and `key`
/// authenticates it for the `.part` file beside it. A bitmap cut short (a crash while the file was
/// created) claims nothing for what it lacks.
pub fn read_state(path: &Path, key: &StateKey) -> Option<(Manifest, Bitmap)> {
    let bytes = std::fs::read(path).ok()?;
    let mut r = Reader::new(&bytes);
    r.header(MAGIC, VERSION).ok()?;
    let len = r.u32().ok()? as usize;
    let encoded = r.bytes(len).ok()?;
    let mac: [u8; 32] = r.array().ok()?;
    let part_path = path.with_extension("");
    if !subtle_eq(&mac, &state_mac(key, &part_path, encoded)) {
        return None;
    }
    let manifest = Manifest::decode(encoded).ok()?;
    let bits = Bitmap::from_prefix(&bytes[9 + len + 32..], manifest.chunk_count());
    Some((manifest, bits))
}

/// The verified-chunk bitmap of the download into `part_path` of `manifest`, as its state file holds it
/// now: for a server that shares the download while it runs. The state's header was authenticated when
/// the download was listed ([`read_state`]); the bitmap only ever grows, one bit per chunk verified and
/// written. `None` once the download is gone (finished or deleted).
pub fn bits_now(part_path: &Path, manifest: &Manifest) -> Option<Bitmap> {
    let state = File::open(state_path_of(part_path)).ok()?;
    let mut bits = vec![0u8; Bitmap::byte_len(manifest.chunk_count())];
    let bits_at = (MAGIC.len() + 1 + 4 + manifest.encoded_len() + 32) as u64;
    state.read_exact_at(&mut bits, bits_at).ok()?;
    Some(Bitmap::from_prefix(&bits, manifest.chunk_count()))
}

/// Compares two MACs in constant time.
fn subtle_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    blake3::Hash::from_bytes(*a) == blake3::Hash::from_bytes(*b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash_file;

    fn key() -> StateKey {
        StateKey::random()
    }

    fn setup(len: usize) -> (tempfile::TempDir, Vec<u8>, Arc<Manifest>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
        let src = dir.path().join("src");
        std::fs::write(&src, &data).expect("write");
        let manifest = Arc::new(hash_file(&src, "out.bin".into()).expect("hash"));
        std::fs::remove_file(src).expect("rm");
        (dir, data, manifest)
    }

    fn chunk<'a>(m: &Manifest, data: &'a [u8], i: u32) -> &'a [u8] {
        let (off, len) = m.chunk_span(i);
        &data[off as usize..off as usize + len as usize]
    }

    #[test]
    fn writes_verified_chunks_and_never_overwrites() {
        let key = key();
        let (dir, data, m) = setup(3 * proto::MIN_CHUNK_SIZE as usize + 10);
        std::fs::write(dir.path().join("out.bin"), b"user's own file").expect("write");
        let part = PartFile::open(dir.path(), m.clone(), &key).expect("open");
        let mut bad = chunk(&m, &data, 1).to_vec();
        bad[0] ^= 0xff;
        assert!(matches!(part.write_chunk(1, &bad), Err(StoreError::ChunkMismatch { index: 1 })));
        assert!(!part.verified().has(1));
        for i in [3, 0, 1] {
            part.write_chunk(i, chunk(&m, &data, i)).expect("write");
        }
        assert_eq!(part.missing(), vec![2]);
        let part = {
            let unfinished = part.finish();
            assert!(matches!(unfinished, Err(StoreError::Incomplete { missing: 1 })));
            // Stopped: a download that holds its part keeps others off it.
            drop(part);
            PartFile::open(dir.path(), m.clone(), &key).expect("resume")
        };
        assert_eq!(part.missing(), vec![2]);
        part.write_chunk(2, chunk(&m, &data, 2)).expect("write");
        let done = part.finish().expect("finish");
        assert_eq!(done, dir.path().join("out (1).bin"));
        assert_eq!(std::fs::read(&done).expect("read"), data);
        assert_eq!(std::fs::read(dir.path().join("out.bin")).expect("read"), b"user's own file");
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(left.len(), 2, "no .part or state left: {left:?}");
    }

    #[test]
    fn resume_rechecks_claimed_chunks() {
        let key = key();
        let (dir, data, m) = setup(2 * proto::MIN_CHUNK_SIZE as usize);
        let part = PartFile::open(dir.path(), m.clone(), &key).expect("open");
        part.write_chunk(0, chunk(&m, &data, 0)).expect("write");
        part.write_chunk(1, chunk(&m, &data, 1)).expect("write");
        let part_path = part.part_path().to_path_buf();
        drop(part);
        // Damage chunk 1 on disk, as a crash before write-back might.
        let f = OpenOptions::new().write(true).open(&part_path).expect("open");
        f.write_all_at(b"garbage", u64::from(proto::MIN_CHUNK_SIZE)).expect("damage");
        let resumed = PartFile::open(dir.path(), m, &key).expect("resume");
        assert_eq!(resumed.missing(), vec![1]);
        assert_eq!(resumed.progress().chunks, 1);
    }

    #[test]
    fn other_content_with_the_same_name_gets_its_own_part_while_the_first_downloads() {
        let key = key();
        let (dir, _, m) = setup(10);
        let (_other_dir, _, other) = setup(20);
        let first = PartFile::open(dir.path(), m, &key).expect("open");
        let second = PartFile::open(dir.path(), other, &key).expect("open");
        assert_ne!(first.part_path(), second.part_path());
        assert!(second.part_path().ends_with("out (1).bin.part"));
        assert!(!second.took_over(), "a part another download holds is left alone");
    }

    #[test]
    fn a_new_version_takes_the_earlier_versions_part_over_keeping_the_chunks_that_match() {
        let key = key();
        let chunk_size = proto::MIN_CHUNK_SIZE as usize;
        let (dir, old, earlier) = setup(4 * chunk_size);
        // The file changed where it is shared: its second chunk rewritten, its fourth cut short.
        let mut new = old[..3 * chunk_size + 100].to_vec();
        new[chunk_size + 5] ^= 0xff;
        let src = dir.path().join("src");
        std::fs::write(&src, &new).expect("write");
        let changed = Arc::new(hash_file(&src, "out.bin".into()).expect("hash"));
        std::fs::remove_file(src).expect("rm");
        let part = PartFile::open(dir.path(), earlier.clone(), &key).expect("open");
        for index in 0..4 {
            part.write_chunk(index, chunk(&earlier, &old, index)).expect("write");
        }
        let stale = part.part_path().to_path_buf();
        drop(part);

        let part = PartFile::open(dir.path(), changed.clone(), &key).expect("taken over");
        assert!(part.took_over());
        assert_eq!(part.part_path(), stale, "the same part, not a second one beside it");
        assert_eq!(part.missing(), vec![1, 3], "chunks 0 and 2 are the same in both versions");
        for index in [1, 3] {
            part.write_chunk(index, chunk(&changed, &new, index)).expect("write");
        }
        let done = part.finish().expect("finished");
        assert_eq!(std::fs::read(&done).expect("read"), new);
        let left: Vec<_> =
            std::fs::read_dir(dir.path()).expect("list").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(left, [std::ffi::OsString::from("out.bin")], "no stale part or state left behind");
    }

    #[test]
    fn empty_file_completes_at_once() {
        let key = key();
        let (dir, _, m) = setup(0);
        let part = PartFile::open(dir.path(), m, &key).expect("open");
        assert!(part.missing().is_empty());
        assert_eq!(std::fs::read(part.finish().expect("finish")).expect("read").len(), 0);
    }

    #[test]
    fn the_bitmap_now_follows_the_chunks_written_and_ends_with_the_download() {
        let (dir, data, manifest) = setup(3 * 256 * 1024);
        let part = PartFile::open(dir.path(), manifest.clone(), &key()).expect("open");
        let bytes = |bits: Option<Bitmap>| bits.map(|b| b.as_bytes().to_vec());
        assert_eq!(bytes(bits_now(part.part_path(), &manifest)), Some(vec![0]));
        part.write_chunk(1, chunk(&manifest, &data, 1)).expect("write");
        assert_eq!(bytes(bits_now(part.part_path(), &manifest)), Some(vec![0b010]));
        assert_eq!(part.verified().bits().as_bytes(), [0b010], "the same in memory");
        part.write_chunk(0, chunk(&manifest, &data, 0)).expect("write");
        part.write_chunk(2, chunk(&manifest, &data, 2)).expect("write");
        let part_path = part.part_path().to_path_buf();
        part.finish().expect("finish");
        assert_eq!(bits_now(&part_path, &manifest), None, "finished");
    }
}
