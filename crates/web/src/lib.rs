//! The web front end of a serving node, written on the node crate's API alone:
//!
//! - [`Page`]: the page on this machine, on a loopback address, opened by a secret: the peers, every
//!   file on the LAN as a tree with a filter (the query language of `get`), fetches into the downloads
//!   folder with live progress (Server-Sent Events fed by the fetch's events), cancel and resume.
//! - [`Guests`]: the guest page on the LAN, for browsers (phones) that know a PIN: downloads of the
//!   node's complete shared files with HTTP ranges, every chunk checked against its hash before it is
//!   sent, and, where allowed, uploads into an inbox that is never shared.
//!
//! Both are hostile-input surfaces: connections and bodies bounded, the Host header checked (DNS
//! rebinding), state-changing requests need a secret in a header (CSRF), a Content-Security-Policy with
//! no inline script, and every name from the network drawn as text by the pages' script.

use std::net::SocketAddr;
use std::path::PathBuf;

mod assets;
pub mod guests;
mod http;
mod idle;
pub mod page;

pub use guests::{GuestConfig, GuestEvent, Guests, Uploads};
pub use http::{CSP, MAX_CONNECTIONS, MAX_CONNECTIONS_PER_ADDRESS};
pub use page::{Page, PageAt, PageConfig};

/// Why a page could not be served.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// Its port could not be bound.
    #[error("the web page cannot listen on {addr}: {source}")]
    Bind {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The guest page's port could not be bound.
    #[error("the guest page cannot listen on {addr}: {source}")]
    GuestBind {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The page on this machine was asked to listen beyond it.
    #[error("the web page listens on loopback addresses only (127.0.0.1 or ::1), not {0}")]
    NotLoopback(SocketAddr),
    /// Its state file, or the guests' inbox, could not be read or written.
    #[error("{}: {source}", path.display())]
    State {
        /// Which.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The system gave no random numbers for a secret.
    #[error("no random numbers for the page's secret: {0}")]
    Random(String),
}
