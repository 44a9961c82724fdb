//! Streaming BLAKE3 hashing of files into manifests.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use proto::{Manifest, chunk_size_for};

use crate::StoreError;
use crate::error::io_err;

/// Read size while hashing: large enough for SIMD hashing to run at full speed, small enough to keep memory
/// constant whatever the file size.
const READ_BUF: usize = 256 * 1024;

/// Hashes the file at `path` into a manifest named `name`, reading it once in constant memory.
pub fn hash_file(path: &Path, name: String) -> Result<Manifest, StoreError> {
    let err = || io_err(path);
    let mut file = File::open(path).map_err(err())?;
    let size = file.metadata().map_err(err())?.len();
    let chunk_size = u64::from(chunk_size_for(size));
    let mut buf = vec![0u8; READ_BUF];
    let mut chunks = Vec::with_capacity(size.div_ceil(chunk_size) as usize);
    let mut hasher = blake3::Hasher::new();
    let (mut in_chunk, mut total) = (0u64, 0u64);
    loop {
        let want = (chunk_size - in_chunk).min(READ_BUF as u64) as usize;
        let n = file.read(&mut buf[..want]).map_err(err())?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        in_chunk += n as u64;
        total += n as u64;
        if in_chunk == chunk_size {
            chunks.push(hasher.finalize());
            hasher.reset();
            in_chunk = 0;
        }
    }
    if in_chunk > 0 {
        chunks.push(hasher.finalize());
    }
    if total != size {
        let changed = std::io::Error::other("file changed size while being hashed");
        return Err(StoreError::Io { path: path.into(), source: changed });
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
