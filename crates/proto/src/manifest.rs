//! The manifest: what a file is, chunk by chunk.

use crate::FileId;
use crate::codec::{DecodeError, Reader, Writer, check_len};

/// The smallest chunk: small files still get chunks large enough to amortise a request.
pub const MIN_CHUNK_SIZE: u32 = 256 * 1024;
/// The largest chunk: bounds the memory a download holds per chunk in flight.
pub const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;
/// Files get the smallest chunk size that keeps them at or below this many chunks.
pub const TARGET_CHUNKS: u64 = 2_000;
/// The most chunks a manifest may list (files above 32 GiB exceed [`TARGET_CHUNKS`] at the largest chunk
/// size); bounds a manifest to 32 MiB of hashes.
pub const MAX_CHUNKS: usize = 1 << 20;
/// The longest file name, in bytes of UTF-8.
pub const MAX_FILE_NAME: usize = 255;

const MAGIC: &[u8; 4] = b"P2PM";
const VERSION: u8 = 1;

/// The chunk count of a file of `file_size` bytes (in chunks of [`chunk_size_for`] it).
pub fn chunk_count_for(file_size: u64) -> u32 {
    file_size.div_ceil(u64::from(chunk_size_for(file_size))).try_into().unwrap_or(u32::MAX)
}

/// The chunk size of a file of `file_size` bytes: the smallest power of two in
/// [`MIN_CHUNK_SIZE`]..=[`MAX_CHUNK_SIZE`] that gives at most [`TARGET_CHUNKS`] chunks.
pub fn chunk_size_for(file_size: u64) -> u32 {
    let mut size = MIN_CHUNK_SIZE;
    while size < MAX_CHUNK_SIZE && file_size.div_ceil(u64::from(size)) > TARGET_CHUNKS {
        size *= 2;
    }
    size
}

/// A file's name, size and the BLAKE3 hash of each chunk. Built by `store` from a file on disk, fetched
/// from peers by [`FileId`], and checked against that id before use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    name: String,
    size: u64,
    chunks: Vec<blake3::Hash>,
}

impl Manifest {
    /// A manifest for a file of `size` bytes whose chunks (of [`chunk_size_for`]`(size)`) hash to `chunks`.
    pub fn new(name: String, size: u64, chunks: Vec<blake3::Hash>) -> Result<Self, DecodeError> {
        check_len("file name", name.len(), MAX_FILE_NAME)?;
        if name.is_empty() {
            return Err(DecodeError::Invalid("empty file name"));
        }
        check_len("chunk list", chunks.len(), MAX_CHUNKS)?;
        if chunks.len() as u64 != size.div_ceil(u64::from(chunk_size_for(size))) {
            return Err(DecodeError::Invalid("chunk count for file size"));
        }
        Ok(Self { name, size, chunks })
    }

    /// The file name as the sharing peer knows it: for people, never trusted as a path.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The size of every chunk but the last, which may be shorter.
    pub fn chunk_size(&self) -> u32 {
        chunk_size_for(self.size)
    }

    /// How many chunks the file has (0 for an empty file).
    pub fn chunk_count(&self) -> u32 {
        // `new` bounds the count by MAX_CHUNKS, which fits u32.
        self.chunks.len() as u32
    }

    /// The expected hash of chunk `index`, `None` past the end.
    pub fn chunk_hash(&self, index: u32) -> Option<&blake3::Hash> {
        self.chunks.get(index as usize)
    }

    /// The byte offset and length of chunk `index` (which must be below [`Self::chunk_count`]).
    pub fn chunk_span(&self, index: u32) -> (u64, u32) {
        let chunk = u64::from(self.chunk_size());
        let offset = u64::from(index) * chunk;
        // The last chunk is the remainder, below the chunk size, so it fits u32.
        (offset, self.size.saturating_sub(offset).min(chunk) as u32)
    }

    /// The length of [`Self::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        4 + 1 + 2 + self.name.len() + 8 + 4 + 32 * self.chunks.len()
    }

    /// The canonical encoding; [`Self::id`] hashes exactly these bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.put(MAGIC);
        out.put_u8(VERSION);
        out.put_str(&self.name);
        out.put_u64(self.size);
        out.put_u32(self.chunk_count());
        self.chunks.iter().for_each(|h| out.put(h.as_bytes()));
        out
    }

    /// Decodes a canonical encoding, validating every field.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.header(MAGIC, VERSION)?;
        let name = r.str("file name", MAX_FILE_NAME)?;
        let size = r.u64()?;
        let count = r.count("chunk list", MAX_CHUNKS, 32)?;
        let chunks = (0..count).map(|_| r.array().map(blake3::Hash::from_bytes)).collect::<Result<_, _>>()?;
        r.finish()?;
        Self::new(name, size, chunks)
    }

    /// The content id: BLAKE3 of [`Self::encode`].
    pub fn id(&self) -> FileId {
        FileId(*blake3::hash(&self.encode()).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn chunk_size_follows_file_size() {
        assert_eq!(chunk_size_for(0), MIN_CHUNK_SIZE);
        assert_eq!(chunk_size_for(500 * MIB), MIN_CHUNK_SIZE);
        assert_eq!(chunk_size_for(500 * MIB + 1), 2 * MIN_CHUNK_SIZE);
        assert_eq!(chunk_size_for(1024 * MIB), 1024 * 1024);
        assert_eq!(chunk_size_for(u64::MAX / 2), MAX_CHUNK_SIZE);
    }

    fn sample(size: u64) -> Manifest {
        let n = size.div_ceil(u64::from(chunk_size_for(size)));
        let chunks = (0..n).map(|i| blake3::hash(&i.to_be_bytes())).collect();
        Manifest::new("a file.bin".into(), size, chunks).expect("valid sample")
    }

    #[test]
    fn round_trips_and_id_is_stable() {
        for size in [0, 1, 256 * 1024, 256 * 1024 + 1, 600 * MIB] {
            let m = sample(size);
            let decoded = Manifest::decode(&m.encode()).expect("decodes");
            assert_eq!(decoded, m);
            assert_eq!(decoded.id(), m.id());
        }
        assert_ne!(sample(1).id(), sample(2).id());
    }

    #[test]
    fn spans_cover_the_file() {
        let m = sample(600 * MIB + 5);
        let last = m.chunk_count() - 1;
        assert_eq!(m.chunk_span(0), (0, m.chunk_size()));
        let (offset, len) = m.chunk_span(last);
        assert_eq!(offset + u64::from(len), m.size());
        assert_eq!(len, 5);
    }

    #[test]
    fn rejects_inconsistent_or_truncated_input() {
        let bytes = sample(1).encode();
        assert_eq!(Manifest::decode(&bytes[..bytes.len() - 1]), Err(DecodeError::Truncated));
        let mut extra = bytes.clone();
        extra.push(0);
        assert_eq!(Manifest::decode(&extra), Err(DecodeError::TrailingBytes(1)));
        let wrong_count = Manifest::new("x".into(), 1, vec![]);
        assert_eq!(wrong_count, Err(DecodeError::Invalid("chunk count for file size")));
        let mut forged = bytes[..bytes.len() - 36].to_vec();
        forged.put_u32(u32::MAX);
        assert!(matches!(Manifest::decode(&forged), Err(DecodeError::TooLong { .. })));
    }
}
