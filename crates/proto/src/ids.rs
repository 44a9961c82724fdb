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
