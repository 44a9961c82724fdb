//! Wire types and codecs of p2pnode, with no I/O and no async runtime.
//!
//! This crate owns every byte layout that crosses the network or identifies content:
//! - [`NodeId`] and [`FileId`]: 32-byte identifiers, printed as hex.
//! - [`Manifest`]: a file's name, size, chunk size and BLAKE3 chunk hashes; its id is the BLAKE3 hash of
//!   its canonical encoding, so a manifest fetched from any peer is checked against the id it was asked by.
//! - [`Datagram`]: the discovery datagram (an [`Announcement`] or a query), always under [`MAX_DATAGRAM`].
//! - [`Request`] and [`Response`]: the transfer frames, and [`Catalogue`]: the list of files a node shares.
//! - [`Escaped`]: text from a peer made safe for a terminal or a log line.
//!
//! # Encoding
//! All integers are big-endian. Strings and lists carry a length prefix and have a documented maximum, so a
//! decoder never allocates more than a constant bound for any input. Every decoder rejects trailing bytes.
//! Each top-level message starts with a 4-byte magic and a version byte; an unknown version is an error that
//! the caller may ignore (a newer peer), never a panic.
//!
//! # Transfer exchange
//! A client opens a stream and writes one request frame: `u32 length` then the request body. The server
//! answers with one response frame (`u32 length`, body), and for [`Response::Ok`] exactly `len` raw bytes
//! follow: an encoded [`Catalogue`], an encoded [`Manifest`], chunk bytes, or the bitmap of the chunks the
//! server has now ([`Request::Have`]: one bit per chunk, all set for a whole file). A TCP connection
//! carries such exchanges one after the other; QUIC carries one per stream.
//!
//! # Growing the wire
//! Wire version 2 (frames `P2PF` 1, catalogue `P2PC` 2, manifest `P2PM` 1, datagrams) grows by addition
//! only, and no version byte changes for it:
//! - A new request, answer or error code gets a tag or code never used before; no field of an existing
//!   frame changes meaning, order or size.
//! - A node that does not know a request answers [`ErrorCode::BadRequest`] (the whole frame was read, so
//!   the connection goes on), and the asker falls back to what version 2 had before the addition: a
//!   feature missing on the other side is never an error shown to a user.
//! - An error code a node does not know decodes as [`ErrorCode::Other`] and counts as a refusal.
//! - Every frame sent today is kept as bytes in `tests/fixtures/wire-v2.txt`; the test beside it checks
//!   that each still decodes to the same value and encodes to the same bytes. A new frame adds a line;
//!   no line is ever changed or removed.
//!
//! # Example
//! ```
//! use proto::{Announcement, Datagram, MAX_DATAGRAM, NodeId};
//!
//! let record = Announcement {
//!     node: NodeId([7; 32]),
//!     instance: 1,
//!     name: "laptop".into(),
//!     ports: vec![("tls".into(), 5001), ("quic".into(), 5001)],
//!     catalogue_version: 3,
//!     file_count: 12,
//!     interval_secs: 5,
//! };
//! let bytes = Datagram::Announce(record.clone()).encode()?;
//! assert!(bytes.len() < MAX_DATAGRAM);
//! assert_eq!(Datagram::decode(&bytes)?, Datagram::Announce(record));
//! // A peer's bytes are never trusted: a truncated datagram is an error, not a panic.
//! assert!(Datagram::decode(&bytes[..10]).is_err());
//! # Ok::<(), proto::DecodeError>(())
//! ```

mod announce;
mod bitmap;
mod catalogue;
pub mod codec;
mod frame;
mod group;
mod ids;
mod manifest;
mod offer;
mod pair;
mod path;
pub mod text;

pub use announce::{Announcement, Datagram, MAX_DATAGRAM, MAX_NODE_NAME, MAX_TRANSPORT_NAME, is_transport_name};
pub use bitmap::Bitmap;
pub use catalogue::{Catalogue, CatalogueEntry, MAX_CATALOGUE_ENTRIES};
pub use codec::DecodeError;
pub use frame::{ErrorCode, FRAME_PREFIX, MAX_FRAME, Request, Response, frame_len};
pub use group::{GroupKey, GroupSecretError, Role};
pub use ids::{FileId, NodeId, ParseIdError};
pub use manifest::{
    MAX_CHUNK_SIZE, MAX_CHUNKS, MAX_FILE_NAME, MIN_CHUNK_SIZE, Manifest, TARGET_CHUNKS, chunk_count_for, chunk_size_for,
};
pub use offer::{MAX_OFFER_FILES, MAX_OFFER_TEXT, MAX_OFFER_TITLE, Offer, OfferId};
pub use pair::{Beacon, MAX_PAIR_FRAME, PairFrame};
pub use path::{MAX_DEPTH, MAX_PATH, PathError, WINDOWS_DEVICES, check_path, is_windows_device};
pub use text::{Escaped, escape, human_bytes};
