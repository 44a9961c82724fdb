//! The discovery datagram: who a node is and where its transports listen.

use std::fmt;
use std::str::FromStr;

use crate::NodeId;
use crate::codec::{DecodeError, Reader, Writer, check_len};

/// Every datagram, whatever its content, fits one unfragmented packet on any LAN or VPN.
pub const MAX_DATAGRAM: usize = 1_200;
/// The longest display name, in bytes of UTF-8.
pub const MAX_NODE_NAME: usize = 64;
/// The most transports one announcement lists.
const MAX_PORTS: usize = 8;

const MAGIC: &[u8; 4] = b"P2PD";
const VERSION: u8 = 1;
const TAG_ANNOUNCE: u8 = 1;
const TAG_QUERY: u8 = 2;

/// A transfer transport, as named on the command line and in announcements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransportKind {
    /// Plain TCP: the fastest on a clean LAN.
    Tcp,
    /// QUIC over UDP: better on lossy links (Wi-Fi, VPN).
    Quic,
}

impl TransportKind {
    /// Every transport this build knows.
    pub const ALL: [TransportKind; 2] = [TransportKind::Tcp, TransportKind::Quic];

    fn tag(self) -> u8 {
        match self {
            TransportKind::Tcp => 1,
            TransportKind::Quic => 2,
        }
    }

    fn from_tag(tag: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.tag() == tag)
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::Tcp => "tcp",
            TransportKind::Quic => "quic",
        })
    }
}

impl FromStr for TransportKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.to_string() == s)
            .ok_or_else(|| format!("unknown transport '{s}' (expected tcp or quic)"))
    }
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
    /// The transfer port of each transport the node listens on.
    pub ports: Vec<(TransportKind, u16)>,
    /// Increases whenever the node's catalogue changes, so peers know when to fetch it again.
    pub catalogue_version: u64,
    /// How many files the catalogue lists.
    pub file_count: u32,
    /// The announce interval in seconds; peers expire the node after three missed intervals.
    pub interval_secs: u16,
}

impl Announcement {
    /// The port of `kind`, if the node listens on it.
    pub fn port(&self, kind: TransportKind) -> Option<u16> {
        self.ports.iter().find(|(k, _)| *k == kind).map(|(_, p)| *p)
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
                out.put_u8(TAG_ANNOUNCE);
                out.put(&a.node.0);
                out.put_u64(a.instance);
                out.put_str(&a.name);
                out.put_u8(a.ports.len() as u8);
                for (kind, port) in &a.ports {
                    out.put_u8(kind.tag());
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

    /// Decodes a received datagram. Ports of transports this build does not know are skipped, so newer
    /// peers stay reachable over the transports both sides share.
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
                    let (tag, port) = (r.u8()?, r.u16()?);
                    ports.extend(TransportKind::from_tag(tag).map(|k| (k, port)));
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
            ports: vec![(TransportKind::Tcp, 5001), (TransportKind::Quic, 5001)],
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
        let mut v2 = Datagram::Query { from: NodeId([1; 32]) }.encode().expect("encodes");
        v2[4] = 2;
        assert_eq!(Datagram::decode(&v2), Err(DecodeError::UnsupportedVersion(2)));
    }

    #[test]
    fn skips_unknown_transports() {
        let mut bytes = Datagram::Announce(announcement()).encode().expect("encodes");
        let quic_tag = 5 + 1 + 32 + 8 + 2 + MAX_NODE_NAME + 1 + 3;
        bytes[quic_tag] = 9;
        let Ok(Datagram::Announce(a)) = Datagram::decode(&bytes) else { panic!("decodes") };
        assert_eq!(a.ports, vec![(TransportKind::Tcp, 5001)]);
    }

    #[test]
    fn parses_transport_names() {
        assert_eq!("quic".parse(), Ok(TransportKind::Quic));
        assert!("udp".parse::<TransportKind>().is_err());
    }
}
