//! The catalogue: the files a node shares, whole or (while it downloads them) in part, fetched over the
//! transport (it is too large for a datagram).

use crate::codec::{DecodeError, Reader, Writer, check_len};
use crate::{Bitmap, FileId, MAX_CHUNKS, MAX_PATH, check_path, chunk_count_for};

/// The most files one catalogue lists: about 100 MiB at the longest paths, 30 MiB at file names of 255
/// bytes; a file in progress adds its chunk bitmap (up to 128 KiB), and receivers cap the bytes of a
/// catalogue besides.
pub const MAX_CATALOGUE_ENTRIES: usize = 100_000;

const MAGIC: &[u8; 4] = b"P2PC";
/// 2: entries are paths (`folder/file`), not bare names.
const VERSION: u8 = 2;

/// One shared file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogueEntry {
    /// The file's content id; its manifest is fetched by it.
    pub id: FileId,
    /// Its path below the sharing node's folder, `/`-separated ([`check_path`] holds for it); several
    /// paths may list the same content.
    pub name: String,
    /// The size in bytes.
    pub size: u64,
    /// `None` when the node has the whole file; else the bitmap of the chunks it has verified so far (it
    /// is downloading the file itself), of the chunk count its size gives ([`chunk_count_for`]).
    pub have: Option<Bitmap>,
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
            match &e.have {
                None => out.put_u8(0),
                Some(bits) => {
                    out.put_u8(1);
                    out.put_u32(bits.as_bytes().len() as u32);
                    out.put(bits.as_bytes());
                }
            }
        }
        out
    }

    /// Decodes a catalogue received from a peer.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.header(MAGIC, VERSION)?;
        let count = r.count("catalogue", MAX_CATALOGUE_ENTRIES, 32 + 2 + 8 + 1)?;
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            let id = FileId(r.array()?);
            let name = r.str("file path", MAX_PATH)?;
            check_path(&name).map_err(|_| DecodeError::Invalid("file path"))?;
            let size = r.u64()?;
            let have = match r.u8()? {
                0 => None,
                1 => {
                    let len = r.u32()? as usize;
                    check_len("chunk bitmap", len, MAX_CHUNKS / 8)?;
                    Some(Bitmap::decode(r.bytes(len)?, chunk_count_for(size))?)
                }
                tag => return Err(DecodeError::UnknownTag { what: "availability", tag }),
            };
            entries.push(CatalogueEntry { id, name, size, have });
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
                CatalogueEntry { id: FileId([1; 32]), name: "a.txt".into(), size: 0, have: None },
                CatalogueEntry {
                    id: FileId([2; 32]),
                    name: "ünïcode ♫.mp3".into(),
                    size: 3 * u64::from(crate::MIN_CHUNK_SIZE),
                    have: Some(Bitmap::from_prefix(&[0b101], 3)),
                },
            ],
        };
        assert_eq!(Catalogue::decode(&c.encode()), Ok(c));
    }

    #[test]
    fn a_catalogue_with_an_unsafe_path_is_refused() {
        let entry = |name: &str| CatalogueEntry { id: FileId([1; 32]), name: name.into(), size: 1, have: None };
        let good = Catalogue { entries: vec![entry("photos/2024/beach.jpg")] };
        assert_eq!(Catalogue::decode(&good.encode()), Ok(good));
        for bad in ["../../.ssh/authorized_keys", "/etc/passwd", "a/./b", "docs\\..\\x", "nul.txt", "a\u{202e}b"] {
            let forged = Catalogue { entries: vec![entry("fine.txt"), entry(bad)] };
            assert_eq!(Catalogue::decode(&forged.encode()), Err(DecodeError::Invalid("file path")), "{bad:?}");
        }
    }

    #[test]
    fn forged_count_is_rejected_before_allocating() {
        let mut bytes = Catalogue::default().encode();
        bytes.truncate(5);
        bytes.put_u32(50_000);
        assert_eq!(Catalogue::decode(&bytes), Err(DecodeError::Truncated));
    }
}
