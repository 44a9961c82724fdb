//! 32-byte identifiers of nodes and files.

use std::fmt;
use std::str::FromStr;

/// Why a text is not a valid identifier.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a 64-digit hex id")]
pub struct ParseIdError;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The first 8 hex digits: enough for people to tell ids apart in a listing.
            pub fn short(&self) -> String {
                self.to_string()[..8].to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;
            fn from_str(s: &str) -> Result<Self, ParseIdError> {
                parse_hex32(s).map(Self)
            }
        }
    };
}

id_type!(
    /// Identifies a node: the BLAKE3 hash of its certificate, stable across restarts.
    NodeId
);
id_type!(
    /// Identifies a file's content: the BLAKE3 hash of its canonical [`crate::Manifest`] encoding.
    FileId
);

/// Crockford's base 32: digits and capitals without I, L, O and U, which read alike or aloud as others.
const READABLE: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl NodeId {
    /// The first 100 bits of the id as 4 groups of 5 characters (`K3M9Q-7TZ2B-...`), for two people to
    /// read to each other to tell that a peer is who it says: for recognising only, never to trust by.
    pub fn fingerprint(&self) -> String {
        let bits = u128::from_be_bytes(self.0[..16].try_into().unwrap_or_default()) >> 28;
        let chars: Vec<char> = (0..20).rev().map(|i| char::from(READABLE[((bits >> (5 * i)) & 31) as usize])).collect();
        chars.chunks(5).map(|group| group.iter().collect::<String>()).collect::<Vec<_>>().join("-")
    }
}

fn parse_hex32(s: &str) -> Result<[u8; 32], ParseIdError> {
    let s = s.as_bytes();
    if s.len() != 64 {
        return Err(ParseIdError);
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let text = std::str::from_utf8(pair).map_err(|_| ParseIdError)?;
        *byte = u8::from_str_radix(text, 16).map_err(|_| ParseIdError)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_reads_100_bits_in_four_groups() {
        let mut id = NodeId([0; 32]);
        assert_eq!(id.fingerprint(), "00000-00000-00000-00000");
        id.0[0] = 0xff;
        assert_eq!(id.fingerprint(), "ZW000-00000-00000-00000", "the first bits lead");
        id.0[12] = 0x10;
        assert_eq!(id.fingerprint(), "ZW000-00000-00000-00001", "bit 100 is the last");
        id.0[12] = 0x08;
        assert_eq!(id.fingerprint(), "ZW000-00000-00000-00000", "bit 101 is past it");
        assert!(!NodeId([0x5a; 32]).fingerprint().contains(['I', 'L', 'O', 'U']));
    }

    #[test]
    fn hex_round_trip() {
        let id = FileId([0xab; 32]);
        let text = id.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<FileId>(), Ok(id));
        assert_eq!(id.short(), "abababab");
    }

    #[test]
    fn rejects_bad_hex() {
        assert_eq!("zz".repeat(32).parse::<NodeId>(), Err(ParseIdError));
        assert_eq!("ab".parse::<NodeId>(), Err(ParseIdError));
        assert_eq!("é".repeat(32).parse::<NodeId>(), Err(ParseIdError));
    }
}
