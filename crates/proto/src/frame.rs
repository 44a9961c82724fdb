//! Transfer frames: one request, one response header, then the response's raw bytes.

use std::fmt;

use crate::FileId;
use crate::codec::{DecodeError, Reader, Writer, check_len};
use crate::offer::{Offer, OfferId};

/// Bytes of the big-endian `u32` length that precedes every frame.
pub const FRAME_PREFIX: usize = 4;
/// The largest request or response frame (the raw bytes after an ok response are bounded separately).
pub const MAX_FRAME: usize = 4 * 1024;
/// The longest error message a response may carry.
const MAX_MESSAGE: usize = 1_024;

const MAGIC: &[u8; 4] = b"P2PF";
const VERSION: u8 = 1;

/// The body length announced by a frame's prefix, rejected past [`MAX_FRAME`] before anything is read.
pub fn frame_len(prefix: [u8; FRAME_PREFIX]) -> Result<usize, DecodeError> {
    let len = u32::from_be_bytes(prefix) as usize;
    check_len("frame", len, MAX_FRAME)?;
    Ok(len)
}

/// What a client asks of a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// The server's [`crate::Catalogue`].
    Catalogue,
    /// The encoded [`crate::Manifest`] of a file.
    Manifest(FileId),
    /// `len` bytes of chunk `index` of a file, from `offset` within the chunk.
    Chunk {
        /// The file.
        file: FileId,
        /// The chunk index.
        index: u32,
        /// The first byte within the chunk.
        offset: u32,
        /// How many bytes.
        len: u32,
    },
    /// Which chunks of a file the server has now: a bitmap, one bit per chunk (bit `i % 8` of byte
    /// `i / 8`), all set for a whole file. A downloader asks its partial sources again and again, so it
    /// learns of their new chunks within a refresh.
    Have(FileId),
    /// Files or a text offered to the asker's node (an addition to wire version 2): answered ok once
    /// the recipient accepts, which may take a person's answer, or refused (`declined`, `not trusted`,
    /// `busy`).
    Offer(Offer),
    /// The list of an offer this node made to the asker: an encoded [`crate::Catalogue`] whose names are
    /// the files' paths. Answered to the offer's recipient alone (an addition to wire version 2).
    OfferList(OfferId),
    /// The text of an offer this node made to the asker, in UTF-8 (an addition to wire version 2).
    OfferText(OfferId),
    /// The recipient of an offer is done with it: it has every file (`fetched`), or it gave up (an
    /// addition to wire version 2).
    OfferEnded {
        /// The offer.
        offer: OfferId,
        /// Whether every file is there.
        fetched: bool,
    },
}

impl Request {
    /// What is asked, in a word (for logs).
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Catalogue => "catalogue",
            Request::Manifest(_) => "manifest",
            Request::Have(_) => "have",
            Request::Chunk { .. } => "chunk",
            Request::Offer(_) => "offer",
            Request::OfferList(_) => "offer list",
            Request::OfferText(_) => "offer text",
            Request::OfferEnded { .. } => "offer ended",
        }
    }

    /// The frame: length prefix and body.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = header();
        match self {
            Request::Catalogue => body.put_u8(1),
            Request::Manifest(id) => {
                body.put_u8(2);
                body.put(&id.0);
            }
            Request::Chunk { file, index, offset, len } => {
                body.put_u8(3);
                body.put(&file.0);
                body.put_u32(*index);
                body.put_u32(*offset);
                body.put_u32(*len);
            }
            Request::Have(id) => {
                body.put_u8(4);
                body.put(&id.0);
            }
            Request::Offer(offer) => {
                body.put_u8(5);
                offer.put(&mut body);
            }
            Request::OfferList(id) => {
                body.put_u8(6);
                body.put(&id.0);
            }
            Request::OfferText(id) => {
                body.put_u8(7);
                body.put(&id.0);
            }
            Request::OfferEnded { offer, fetched } => {
                body.put_u8(8);
                body.put(&offer.0);
                body.put_u8(u8::from(*fetched));
            }
        }
        framed(body)
    }

    /// Decodes a frame body (without its prefix).
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        r.header(MAGIC, VERSION)?;
        let request = match r.u8()? {
            1 => Request::Catalogue,
            2 => Request::Manifest(FileId(r.array()?)),
            3 => Request::Chunk { file: FileId(r.array()?), index: r.u32()?, offset: r.u32()?, len: r.u32()? },
            4 => Request::Have(FileId(r.array()?)),
            5 => Request::Offer(Offer::take(&mut r)?),
            6 => Request::OfferList(OfferId(r.array()?)),
            7 => Request::OfferText(OfferId(r.array()?)),
            8 => Request::OfferEnded {
                offer: OfferId(r.array()?),
                fetched: match r.u8()? {
                    0 => false,
                    1 => true,
                    tag => return Err(DecodeError::UnknownTag { what: "offer ending", tag }),
                },
            },
            tag => return Err(DecodeError::UnknownTag { what: "request", tag }),
        };
        r.finish()?;
        Ok(request)
    }
}

/// Why a server refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// The server does not share that file, or the chunk is out of range.
    NotFound,
    /// The request was malformed or asked for an invalid range.
    BadRequest,
    /// The server is at its connection or request limit; try another peer or later.
    Busy,
    /// The server failed to read its own file (changed or deleted while shared).
    Internal,
    /// A seed sent this chunk to another downloader moments ago: ask the swarm for it first (the seed
    /// answers the same request the next time), so that its uplink carries each chunk about once.
    Elsewhere,
    /// The server serves only the node ids it trusts, and the asker's proven id is not one of them (an
    /// addition to wire version 2: an older client reads it as an unknown code).
    NotTrusted,
    /// The recipient of an offer said no, or nobody answered in time (an addition to wire version 2).
    Declined,
    /// A code this build does not know (a newer peer).
    Other(u16),
}

impl ErrorCode {
    /// The code on the wire.
    pub fn code(self) -> u16 {
        match self {
            ErrorCode::NotFound => 1,
            ErrorCode::BadRequest => 2,
            ErrorCode::Busy => 3,
            ErrorCode::Internal => 4,
            ErrorCode::Elsewhere => 5,
            ErrorCode::NotTrusted => 6,
            ErrorCode::Declined => 7,
            ErrorCode::Other(c) => c,
        }
    }

    /// The error a wire code stands for ([`ErrorCode::Other`] for codes this build does not know).
    pub fn from_code(code: u16) -> Self {
        use ErrorCode::*;
        [NotFound, BadRequest, Busy, Internal, Elsewhere, NotTrusted, Declined]
            .into_iter()
            .find(|c| c.code() == code)
            .unwrap_or(ErrorCode::Other(code))
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::NotFound => f.write_str("not found"),
            ErrorCode::BadRequest => f.write_str("bad request"),
            ErrorCode::Busy => f.write_str("busy"),
            ErrorCode::Internal => f.write_str("internal error"),
            ErrorCode::Elsewhere => f.write_str("sent to another downloader; ask the swarm"),
            ErrorCode::NotTrusted => f.write_str("not trusted"),
            ErrorCode::Declined => f.write_str("declined"),
            ErrorCode::Other(c) => write!(f, "error {c}"),
        }
    }
}

/// The header of a server's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// Success: exactly `len` raw bytes follow.
    Ok {
        /// The length of the raw bytes that follow.
        len: u64,
    },
    /// Failure: nothing follows.
    Err {
        /// What went wrong.
        code: ErrorCode,
        /// A short explanation for logs, at most 1 KiB.
        message: String,
    },
}

impl Response {
    /// The frame: length prefix and body. A long message is cut at a character boundary.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = header();
        match self {
            Response::Ok { len } => {
                body.put_u8(0);
                body.put_u64(*len);
            }
            Response::Err { code, message } => {
                body.put_u8(1);
                body.put_u16(code.code());
                body.put_str(crate::text::cut(message, MAX_MESSAGE));
            }
        }
        framed(body)
    }

    /// Decodes a frame body (without its prefix).
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        r.header(MAGIC, VERSION)?;
        let response = match r.u8()? {
            0 => Response::Ok { len: r.u64()? },
            1 => Response::Err { code: ErrorCode::from_code(r.u16()?), message: r.str("message", MAX_MESSAGE)? },
            tag => return Err(DecodeError::UnknownTag { what: "response", tag }),
        };
        r.finish()?;
        Ok(response)
    }
}

fn header() -> Vec<u8> {
    let mut body = Vec::with_capacity(64);
    body.put(MAGIC);
    body.put_u8(VERSION);
    body
}

fn framed(body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_PREFIX + body.len());
    out.put_u32(body.len() as u32);
    out.extend(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(frame: &[u8]) -> &[u8] {
        let len = frame_len(frame[..4].try_into().expect("prefix")).expect("within limit");
        assert_eq!(len, frame.len() - 4);
        &frame[4..]
    }

    #[test]
    fn requests_round_trip() {
        let file = FileId([9; 32]);
        for req in [
            Request::Catalogue,
            Request::Manifest(file),
            Request::Chunk { file, index: 7, offset: 10, len: 1 << 20 },
            Request::Have(file),
            Request::Offer(crate::Offer {
                id: OfferId([3; 16]),
                transport: "quic".into(),
                port: 5001,
                files: 2,
                bytes: 1 << 33,
                text: 12,
                title: "holiday/ and 1 more".into(),
                name: "laptop".into(),
            }),
            Request::OfferList(OfferId([4; 16])),
            Request::OfferText(OfferId([5; 16])),
            Request::OfferEnded { offer: OfferId([6; 16]), fetched: true },
        ] {
            assert_eq!(Request::decode(body_of(&req.encode())), Ok(req));
        }
    }

    #[test]
    fn responses_round_trip_and_cut_long_messages() {
        let ok = Response::Ok { len: 123 };
        assert_eq!(Response::decode(body_of(&ok.encode())), Ok(ok));
        let long = Response::Err { code: ErrorCode::Busy, message: "é".repeat(MAX_MESSAGE) };
        let Ok(Response::Err { code, message }) = Response::decode(body_of(&long.encode())) else { panic!("decodes") };
        assert_eq!(code, ErrorCode::Busy);
        assert_eq!(message.len(), MAX_MESSAGE);
        let odd = Response::Err { code: ErrorCode::Other(77), message: String::new() };
        assert_eq!(Response::decode(body_of(&odd.encode())), Ok(odd));
    }

    #[test]
    fn rejects_oversized_and_unknown_frames() {
        assert!(matches!(frame_len(u32::MAX.to_be_bytes()), Err(DecodeError::TooLong { .. })));
        let mut bytes = Request::Catalogue.encode();
        bytes[9] = 200;
        assert_eq!(Request::decode(&bytes[4..]), Err(DecodeError::UnknownTag { what: "request", tag: 200 }));
    }
}
