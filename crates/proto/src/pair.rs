//! Pairing on the wire: the beacon a waiting `pair` broadcasts to the discovery port, so that the one who
//! types its code finds it, and the frames of the exchange over the TLS channel that follows. Both are
//! additions to wire version 2 with magics of their own: a node that does not pair ignores the beacon as
//! it ignores any datagram it cannot read.

use crate::NodeId;
use crate::codec::{DecodeError, Reader, Writer, check_len};

const BEACON_MAGIC: &[u8; 4] = b"P2PP";
const BEACON_VERSION: u8 = 1;
/// The longest body of a pairing frame: a SPAKE2 message is 33 bytes, a confirmation 32, a name 64.
pub const MAX_PAIR_FRAME: usize = 128;

/// Where a `pair` waits: broadcast every half second while it does. It shows the waiting node's id and
/// port, as a serving node's announcement does; the code's words never leave the two machines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Beacon {
    /// The code's number, which the joining side typed first.
    pub nameplate: u16,
    /// The waiting node, proven by its certificate when the joining side connects.
    pub node: NodeId,
    /// The TLS port the waiting node listens on.
    pub port: u16,
}

impl Beacon {
    /// The datagram.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(43);
        out.put(BEACON_MAGIC);
        out.put_u8(BEACON_VERSION);
        out.put_u16(self.nameplate);
        out.put(&self.node.0);
        out.put_u16(self.port);
        out
    }

    /// A received datagram, if it is a beacon.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.header(BEACON_MAGIC, BEACON_VERSION)?;
        let beacon = Beacon { nameplate: r.u16()?, node: NodeId(r.array()?), port: r.u16()? };
        r.finish()?;
        Ok(beacon)
    }
}

/// One frame of the pairing exchange: a tag, a 2-byte length, the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PairFrame {
    /// A SPAKE2 message, derived from the code.
    Spake(Vec<u8>),
    /// Proof that the sender derived the same key, bound to this channel and to both ids.
    Confirm([u8; 32]),
    /// The sender's name, to file it under (at most 64 bytes of UTF-8).
    Name(String),
    /// The code was wrong: nothing is stored, and the waiting side makes a new code.
    WrongCode,
    /// The waiting side has the joining side's name: the exchange is over.
    Done,
}

const TAG_SPAKE: u8 = 1;
const TAG_CONFIRM: u8 = 2;
const TAG_NAME: u8 = 3;
const TAG_WRONG_CODE: u8 = 4;
const TAG_DONE: u8 = 5;

impl PairFrame {
    /// The frame's bytes, failing where its body is over [`MAX_PAIR_FRAME`] or a name over 64 bytes.
    pub fn encode(&self) -> Result<Vec<u8>, DecodeError> {
        let (tag, body): (u8, &[u8]) = match self {
            PairFrame::Spake(message) => (TAG_SPAKE, message),
            PairFrame::Confirm(mac) => (TAG_CONFIRM, mac),
            PairFrame::Name(name) => {
                check_len("name", name.len(), crate::MAX_NODE_NAME)?;
                (TAG_NAME, name.as_bytes())
            }
            PairFrame::WrongCode => (TAG_WRONG_CODE, &[]),
            PairFrame::Done => (TAG_DONE, &[]),
        };
        check_len("pairing frame", body.len(), MAX_PAIR_FRAME)?;
        let mut out = Vec::with_capacity(3 + body.len());
        out.put_u8(tag);
        out.put_u16(body.len() as u16);
        out.put(body);
        Ok(out)
    }

    /// The length of the body that follows a frame's 3-byte head, refused before it is read where it is
    /// over [`MAX_PAIR_FRAME`].
    pub fn body_len(head: [u8; 3]) -> Result<usize, DecodeError> {
        let len = usize::from(u16::from_be_bytes([head[1], head[2]]));
        check_len("pairing frame", len, MAX_PAIR_FRAME)?;
        Ok(len)
    }

    /// The frame of `head` and `body`.
    pub fn decode(head: [u8; 3], body: &[u8]) -> Result<Self, DecodeError> {
        if body.len() != Self::body_len(head)? {
            return Err(DecodeError::Invalid("pairing frame length"));
        }
        Ok(match head[0] {
            TAG_SPAKE => PairFrame::Spake(body.to_vec()),
            TAG_CONFIRM => PairFrame::Confirm(body.try_into().map_err(|_| DecodeError::Invalid("confirmation"))?),
            TAG_NAME => {
                let name = std::str::from_utf8(body).map_err(|_| DecodeError::Invalid("name"))?;
                check_len("name", name.len(), crate::MAX_NODE_NAME)?;
                PairFrame::Name(name.to_string())
            }
            TAG_WRONG_CODE if body.is_empty() => PairFrame::WrongCode,
            TAG_DONE if body.is_empty() => PairFrame::Done,
            TAG_WRONG_CODE | TAG_DONE => return Err(DecodeError::Invalid("a frame with a body it cannot have")),
            tag => return Err(DecodeError::UnknownTag { what: "pairing frame", tag }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beacons_and_frames_round_trip() {
        let beacon = Beacon { nameplate: 7, node: NodeId([9; 32]), port: 40_000 };
        assert_eq!(Beacon::decode(&beacon.encode()), Ok(beacon));
        assert!(Beacon::decode(b"P2PD\x02\x01").is_err(), "an announcement is no beacon");
        for frame in [
            PairFrame::Spake(vec![1; 33]),
            PairFrame::Confirm([2; 32]),
            PairFrame::Name("bob".into()),
            PairFrame::WrongCode,
            PairFrame::Done,
        ] {
            let bytes = frame.encode().expect("encodes");
            let head = [bytes[0], bytes[1], bytes[2]];
            assert_eq!(PairFrame::decode(head, &bytes[3..]), Ok(frame));
        }
        assert!(PairFrame::body_len([1, 0xff, 0xff]).is_err(), "refused before it is read");
        assert!(PairFrame::Name("n".repeat(65)).encode().is_err());
    }
}
