//! Sending: one node hands files and a text to a chosen peer, who pulls them. The sender
//! ([`crate::Client::send`]) serves what it offers to the recipient's proven id alone, on a port of its
//! own, listed in no catalogue, and offers it; the recipient's node ([`crate::Node`]) takes the offer as
//! its [`Accept`] policy says (asking a person through [`Ask`] where it may), fetches it with the download
//! machinery of any file (every chunk verified, resumable, what it has already skipped), and tells the
//! sender the end.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use proto::NodeId;

mod files;
pub(crate) mod inbox;
pub(crate) mod outbox;
mod sender;

pub use inbox::ASK_WITHIN;
pub use sender::{Outgoing, SendEvent};

/// Which offers a serving node takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Accept {
    /// From the peers in its trust list, at once; from nobody else.
    Trusted,
    /// From the peers in its trust list at once; from others as a person answers ([`Ask`]), and from
    /// nobody else where nobody can be asked.
    #[default]
    Ask,
    /// From nobody.
    None,
}

/// Who offers: its proven id, the name the trust list gives it, the name it announces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferFrom {
    /// The id its transport proved.
    pub id: NodeId,
    /// Its name in the trust list, where it is there (`Some("")`: trusted, with no name).
    pub paired: Option<String>,
    /// The name it announces where this node hears it, else the name its offer gives (the peer's word:
    /// escape it).
    pub announced: Option<String>,
}

/// What a person is asked about an offer from a peer outside the trust list.
#[derive(Clone, Debug)]
pub struct OfferAsk {
    /// Who offers.
    pub from: OfferFrom,
    /// What it is, in the sender's words (escape it).
    pub title: String,
    /// How many files.
    pub files: u32,
    /// Their bytes in all.
    pub bytes: u64,
    /// The bytes of the text that comes with it (0: none).
    pub text: u32,
}

/// How a node asks a person about an offer: `true` takes it. Asked one offer at a time; no answer within
/// [`ASK_WITHIN`] declines it.
pub type Ask = Arc<dyn Fn(OfferAsk) -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;
