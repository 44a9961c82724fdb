//! The catalogue: the files a node shares, fetched over the transport (it is too large for a datagram).

use crate::codec::{DecodeError, Reader, Writer};
use crate::{FileId, MAX_FILE_NAME};

/// The most files one catalogue lists; bounds a catalogue to about 30 MiB.
pub const MAX_CATALOGUE_ENTRIES: usize = 100_000;

const MAGIC: &[u8; 4] = b"P2PC";
const VERSION: u8 = 1;

/// One shared file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogueEntry {
    /// The file's content id; its manifest is fetched by it.
    pub id: FileId,
    /// The name the sharing node gives it (for people, never trusted as a path).
    pub name: String,
    /// The size in bytes.
    pub size: u64,
}

/// The files a node shares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalogue {
    /// The entries, one per distinct content.
    pub entries: Vec<CatalogueEntry>,
}

impl Catalogue {
    /// Encodes the catalogue; callers keep it within [`MAX_CATALOGUE_ENTRIES`].
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.entries.len() * 64);
        out.put(MAGIC);
        out.put_u8(VERSION);
        out.put_u32(self.entries.len() as u32);
        for e in &self.entries {
            out.put(&e.id.0);
            out.put_str(&e.name);
            out.put_u64(e.size);
        }
        out
    }

    /// Decodes a catalogue received from a peer.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.header(MAGIC, VERSION)?;
        let count = r.count("catalogue", MAX_CATALOGUE_ENTRIES, 32 + 2 + 8)?;
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            let id = FileId(r.array()?);
            let name = r.str("file name", MAX_FILE_NAME)?;
            entries.push(CatalogueEntry { id, name, size: r.u64()? });
        }
        r.finish()?;
        Ok(Self { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let c = Catalogue {
            entries: vec![
                CatalogueEntry { id: FileId([1; 32]), name: "a.txt".into(), size: 0 },
                CatalogueEntry { id: FileId([2; 32]), name: "ünïcode ♫.mp3".into(), size: u64::MAX },
            ],
        };
        assert_eq!(Catalogue::decode(&c.encode()), Ok(c));
    }

    #[test]
    fn forged_count_is_rejected_before_allocating() {
        let mut bytes = Catalogue::default().encode();
        bytes.truncate(5);
        bytes.put_u32(50_000);
        assert_eq!(Catalogue::decode(&bytes), Err(DecodeError::Truncated));
    }
}
