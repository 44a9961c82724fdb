//! The discovery datagram: who a node is and where its transports listen.

use crate::NodeId;
use crate::codec::{DecodeError, Reader, Writer, check_len};

/// Every datagram, whatever its content, fits one unfragmented packet on any LAN or VPN.
pub const MAX_DATAGRAM: usize = 1_200;
/// The longest display name, in bytes of UTF-8.
pub const MAX_NODE_NAME: usize = 64;
/// The most transports one announcement lists.
const MAX_PORTS: usize = 8;

const MAGIC: &[u8; 4] = b"P2PD";
/// Version 2 names transports by string (version 1 had a closed list of tags); nodes of different versions
/// ignore each other's datagrams.
const VERSION: u8 = 2;
const TAG_ANNOUNCE: u8 = 1;
const TAG_QUERY: u8 = 2;

/// The longest transport name, in bytes.
pub const MAX_TRANSPORT_NAME: usize = 16;

/// Whether `name` can name a transport on the wire: 1 to [`MAX_TRANSPORT_NAME`] bytes of lowercase ASCII
/// letters, digits and `-` (as ALPN identifiers are short ASCII): safe to print, and never confused with
/// another spelling of itself.
pub fn is_transport_name(name: &str) -> bool {
    (1..=MAX_TRANSPORT_NAME).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// What a serving node broadcasts about itself. The sender's address is the datagram's source address, so
/// a node never announces an address that others cannot dial.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    /// The node's identity.
    pub node: NodeId,
    /// Random per process start, so peers notice a restart even when nothing else changed.
    pub instance: u64,
    /// Display name, at most [`MAX_NODE_NAME`] bytes.
    pub name: String,
    /// The transfer port of each transport the node listens on, by the transport's name
    /// ([`is_transport_name`]); names this build does not know are kept, and a client uses the ones it has.
    pub ports: Vec<(String, u16)>,
    /// Increases whenever the node's catalogue changes, so peers know when to fetch it again.
    pub catalogue_version: u64,
    /// How many files the catalogue lists.
    pub file_count: u32,
    /// The announce interval in seconds; peers expire the node after three missed intervals.
    pub interval_secs: u16,
}

impl Announcement {
    /// The port of the transport named `transport`, if the node listens on it.
    pub fn port(&self, transport: &str) -> Option<u16> {
        self.ports.iter().find(|(name, _)| name == transport).map(|(_, p)| *p)
    }
}

/// A discovery datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Datagram {
    /// A node's record, broadcast periodically and sent in answer to a query.
    Announce(Announcement),
    /// Asks every node that receives it to answer the sender with its announcement at once.
    Query {
        /// The asker, so a node does not answer itself.
        from: NodeId,
    },
}

impl Datagram {
    /// Encodes, failing if a field exceeds its limit (so the result is always below [`MAX_DATAGRAM`]).
    pub fn encode(&self) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::with_capacity(128);
        out.put(MAGIC);
        out.put_u8(VERSION);
        match self {
            Datagram::Announce(a) => {
                check_len("node name", a.name.len(), MAX_NODE_NAME)?;
                check_len("port list", a.ports.len(), MAX_PORTS)?;
                if !a.ports.iter().all(|(name, _)| is_transport_name(name)) {
                    return Err(DecodeError::Invalid("transport name"));
                }
                out.put_u8(TAG_ANNOUNCE);
                out.put(&a.node.0);
                out.put_u64(a.instance);
                out.put_str(&a.name);
                out.put_u8(a.ports.len() as u8);
                for (name, port) in &a.ports {
                    out.put_str(name);
                    out.put_u16(*port);
                }
                out.put_u64(a.catalogue_version);
                out.put_u32(a.file_count);
                out.put_u16(a.interval_secs);
            }
            Datagram::Query { from } => {
                out.put_u8(TAG_QUERY);
                out.put(&from.0);
            }
        }
        debug_assert!(out.len() <= MAX_DATAGRAM);
        Ok(out)
    }

    /// Decodes a received datagram. A transport name that breaks [`is_transport_name`] is skipped with its
    /// port (it could name nothing a client has), so the rest of the announcement still counts.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        check_len("datagram", bytes.len(), MAX_DATAGRAM)?;
        let mut r = Reader::new(bytes);
        r.header(MAGIC, VERSION)?;
        let datagram = match r.u8()? {
            TAG_ANNOUNCE => {
                let node = NodeId(r.array()?);
                let instance = r.u64()?;
                let name = r.str("node name", MAX_NODE_NAME)?;
                let count = usize::from(r.u8()?);
                check_len("port list", count, MAX_PORTS)?;
                let mut ports = Vec::with_capacity(count);
                for _ in 0..count {
                    let (name, port) = (r.str("transport name", MAX_TRANSPORT_NAME)?, r.u16()?);
                    if is_transport_name(&name) {
                        ports.push((name, port));
                    }
                }
                Datagram::Announce(Announcement {
                    node,
                    instance,
                    name,
                    ports,
                    catalogue_version: r.u64()?,
                    file_count: r.u32()?,
                    interval_secs: r.u16()?,
                })
            }
            TAG_QUERY => Datagram::Query { from: NodeId(r.array()?) },
            tag => return Err(DecodeError::UnknownTag { what: "datagram", tag }),
        };
        r.finish()?;
        Ok(datagram)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announcement() -> Announcement {
        Announcement {
            node: NodeId([7; 32]),
            instance: 42,
            name: "n".repeat(MAX_NODE_NAME),
            ports: (0..MAX_PORTS).map(|i| (format!("transport-{i:06}"), 5001)).collect(),
            catalogue_version: 3,
            file_count: 1_000_000,
            interval_secs: 5,
        }
    }

    #[test]
    fn round_trips_within_size() {
        for d in [Datagram::Announce(announcement()), Datagram::Query { from: NodeId([1; 32]) }] {
            let bytes = d.encode().expect("encodes");
            assert!(bytes.len() <= MAX_DATAGRAM);
            assert_eq!(Datagram::decode(&bytes), Ok(d));
        }
    }

    #[test]
    fn rejects_long_names_and_foreign_bytes() {
        let mut a = announcement();
        a.name.push('x');
        assert!(matches!(Datagram::Announce(a).encode(), Err(DecodeError::TooLong { .. })));
        assert_eq!(Datagram::decode(b"hello world"), Err(DecodeError::BadMagic));
        for other in [1, 3] {
            let mut foreign = Datagram::Query { from: NodeId([1; 32]) }.encode().expect("encodes");
            foreign[4] = other;
            assert_eq!(Datagram::decode(&foreign), Err(DecodeError::UnsupportedVersion(other)));
        }
    }

    #[test]
    fn keeps_unknown_transports_and_skips_malformed_names() {
        let mut a = announcement();
        a.ports = vec![("tls".into(), 5001), ("tcp".into(), 5001)];
        let mut bytes = Datagram::Announce(a).encode().expect("encodes");
        let tcp = bytes.len() - (8 + 4 + 2) - 2 - 3;
        bytes[tcp..tcp + 3].copy_from_slice(b"T\x1bP");
        let Ok(Datagram::Announce(a)) = Datagram::decode(&bytes) else { panic!("decodes") };
        assert_eq!(a.ports, vec![("tls".to_string(), 5001)]);
        assert!(is_transport_name("my-transport2") && !is_transport_name("") && !is_transport_name("TCP"));
        let mut bad = announcement();
        bad.ports = vec![("tcp\n".into(), 1)];
        assert!(Datagram::Announce(bad).encode().is_err());
    }
}
