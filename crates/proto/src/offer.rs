//! Offers: one node hands files or a text to another. The sender asks the recipient's node with
//! [`crate::Request::Offer`], saying what and how much and where to fetch it; the recipient, once it
//! accepts, fetches the offer's list ([`crate::Request::OfferList`], an encoded [`crate::Catalogue`]
//! whose names are paths), its text ([`crate::Request::OfferText`]) and its files (by id, as any file)
//! from the sender, and tells it the end ([`crate::Request::OfferEnded`]). All are additions to wire
//! version 2.

use std::fmt;

use crate::codec::{DecodeError, Reader, Writer, check_len};

/// The most files one offer holds.
pub const MAX_OFFER_FILES: u32 = 100_000;
/// The longest text an offer carries, in bytes of UTF-8.
pub const MAX_OFFER_TEXT: u32 = 64 * 1024;
/// The longest title (what the offer is, in a few words, for a prompt) in bytes of UTF-8.
pub const MAX_OFFER_TITLE: usize = 200;

/// An offer's id: random, made by the sender, the key of every later request about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OfferId(pub [u8; 16]);

impl fmt::Display for OfferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// What a sender offers, as the recipient is asked about it. Everything in it is the sender's word:
/// the recipient checks the list it fetches against `files` and `bytes`, and the text against `text`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// Its id.
    pub id: OfferId,
    /// The transport to fetch it over (the name peers announce, as `quic`): the recipient's own of
    /// that name, to the address the offer came from.
    pub transport: String,
    /// The port the sender serves the offer on.
    pub port: u16,
    /// How many files (at most [`MAX_OFFER_FILES`]).
    pub files: u32,
    /// Their bytes in all.
    pub bytes: u64,
    /// The text's length in bytes (at most [`MAX_OFFER_TEXT`]; 0: no text).
    pub text: u32,
    /// What it is, in a few words (`holiday/ and 2 more`), at most [`MAX_OFFER_TITLE`] bytes.
    pub title: String,
    /// The sender's node name, as it would announce it (at most [`crate::MAX_NODE_NAME`] bytes).
    pub name: String,
}

impl Offer {
    pub(crate) fn put(&self, out: &mut Vec<u8>) {
        out.put(&self.id.0);
        out.put_str(&self.transport);
        out.put_u16(self.port);
        out.put_u32(self.files);
        out.put_u64(self.bytes);
        out.put_u32(self.text);
        out.put_str(crate::text::cut(&self.title, MAX_OFFER_TITLE));
        out.put_str(crate::text::cut(&self.name, crate::MAX_NODE_NAME));
    }

    pub(crate) fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let id = OfferId(r.array()?);
        let transport = r.str("transport", crate::MAX_TRANSPORT_NAME)?;
        let port = r.u16()?;
        let files = r.u32()?;
        check_len("offered files", files as usize, MAX_OFFER_FILES as usize)?;
        let bytes = r.u64()?;
        let text = r.u32()?;
        check_len("offered text", text as usize, MAX_OFFER_TEXT as usize)?;
        let title = r.str("offer title", MAX_OFFER_TITLE)?;
        let name = r.str("node name", crate::MAX_NODE_NAME)?;
        Ok(Offer { id, transport, port, files, bytes, text, title, name })
    }
}
