//! BLAKE3 hashing of files into manifests, chunks in parallel.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use proto::{Manifest, chunk_size_for};

use crate::error::io_err;
use crate::{PositionedIo, StoreError};

/// Read size while hashing: large enough for SIMD hashing to run at full speed and for few system
/// calls, small enough to keep memory constant whatever the file size (one buffer per thread).
const READ_BUF: usize = 1024 * 1024;

/// Hashes the file at `path` into a manifest named `name`, reading it once in constant memory. Its chunks
/// are hashed independently, so a file of several chunks is hashed on every core at once, each thread
/// with a handle of its own (the kernel reads ahead for each): reading and hashing overlap, as `b3sum`'s
/// do.
pub fn hash_file(path: &Path, name: String) -> Result<Manifest, StoreError> {
    hash_file_counting(path, name, &AtomicU64::new(0))
}

/// [`hash_file`], adding the bytes read to `hashed` as it goes (for progress).
pub fn hash_file_counting(path: &Path, name: String, hashed: &AtomicU64) -> Result<Manifest, StoreError> {
    let err = || io_err(path);
    let file = File::open(path).map_err(err())?;
    let size = file.metadata().map_err(err())?.len();
    let chunk_size = u64::from(chunk_size_for(size));
    let count = size.div_ceil(chunk_size);
    let (next, counted) = (AtomicU64::new(0), hashed);
    let hash_some = |file: &File| -> Result<Vec<(u64, blake3::Hash)>, std::io::Error> {
        // No larger than the file: a folder of small files allocates no more than it reads.
        let mut buf = vec![0u8; READ_BUF.min(chunk_size as usize).min(size as usize)];
        let mut done = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            if index >= count {
                return Ok(done);
            }
            let (start, end) = (index * chunk_size, ((index + 1) * chunk_size).min(size));
            let mut hasher = blake3::Hasher::new();
            let mut at = start;
            while at < end {
                let piece = &mut buf[..(end - at).min(READ_BUF as u64) as usize];
                file.read_exact_at(piece, at)?;
                hasher.update(piece);
                at += piece.len() as u64;
                counted.fetch_add(piece.len() as u64, Ordering::Relaxed);
            }
            done.push((index, hasher.finalize()));
        }
    };
    // A file of one chunk is hashed here, with the handle already open: a folder of small files costs no
    // thread per file.
    let helpers = std::thread::available_parallelism().map_or(1, usize::from).min(count as usize).saturating_sub(1);
    let results: Vec<_> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..helpers).map(|_| scope.spawn(|| hash_some(&File::open(path)?))).collect();
        let mine = hash_some(&file);
        let theirs = workers.into_iter().map(|w| w.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        std::iter::once(mine).chain(theirs).collect()
    });
    let changed = || StoreError::ChangedWhileHashing { path: path.into() };
    let mut chunks = vec![blake3::Hash::from_bytes([0; 32]); count as usize];
    for result in results {
        let hashed =
            result.map_err(|e| if e.kind() == std::io::ErrorKind::UnexpectedEof { changed() } else { err()(e) })?;
        for (index, hash) in hashed {
            chunks[index as usize] = hash;
        }
    }
    if file.metadata().map_err(err())?.len() != size {
        return Err(changed());
    }
    Manifest::new(name, size, chunks).map_err(|reason| StoreError::Unshareable { path: path.into(), reason })
}

/// Checks that `data` is exactly chunk `index` of `manifest`.
pub fn verify_chunk(manifest: &Manifest, index: u32, data: &[u8]) -> Result<(), StoreError> {
    let expected = manifest.chunk_hash(index).ok_or(StoreError::ChunkOutOfRange { index })?;
    if data.len() != manifest.chunk_span(index).1 as usize || blake3::hash(data) != *expected {
        return Err(StoreError::ChunkMismatch { index });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest_of(data: &[u8]) -> Manifest {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, data).expect("write");
        hash_file(&path, "f".into()).expect("hash")
    }

    #[test]
    fn chunk_hashes_match_the_bytes() {
        let chunk = proto::MIN_CHUNK_SIZE as usize;
        for len in [0, 1, chunk, 2 * chunk, 2 * chunk + 17] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let m = manifest_of(&data);
            assert_eq!(m.size(), len as u64);
            assert_eq!(m.chunk_count() as usize, len.div_ceil(chunk));
            for (i, piece) in data.chunks(chunk).enumerate() {
                verify_chunk(&m, i as u32, piece).expect("chunk verifies");
            }
        }
    }

    #[test]
    fn verify_rejects_wrong_bytes_and_lengths() {
        let data = vec![5u8; 1000];
        let m = manifest_of(&data);
        let mut flipped = data.clone();
        flipped[500] ^= 1;
        assert!(matches!(verify_chunk(&m, 0, &flipped), Err(StoreError::ChunkMismatch { index: 0 })));
        assert!(matches!(verify_chunk(&m, 0, &data[..999]), Err(StoreError::ChunkMismatch { .. })));
        assert!(matches!(verify_chunk(&m, 1, &data), Err(StoreError::ChunkOutOfRange { index: 1 })));
    }
}
