//! The p2pnode node: composes discovery, transports and the content store into the things a user does.
//! Front ends (the command line, a web page, an embedder) only call it.
//!
//! - [`Client`] lists the peers and what they share ([`Client::list`], by the query language of
//!   [`Dictionary::select`]: id, path, name, folder, glob) and fetches many files at once
//!   ([`Client::fetch`]), each from every peer that has it, every chunk verified; a [`Fetch`] is a
//!   stream of typed [`FetchEvent`]s and can be cancelled. A fetch can pass its verified chunks on to
//!   other downloaders of the same files while it runs, and for a while after.
//! - [`Node`] serves: it shares the files of its folders (the downloads folder too, so downloads are
//!   re-shared), announces itself, and answers catalogue, manifest and chunk requests.
//! - [`PeerTable`] is the one peer table of a process: a client and a node in one process share it
//!   ([`Node::peer_table`], [`ClientBuilder::peers`]), and a long-lived client answers from it live.
//! - Under those, [`download()`] fetches one file, driven by the sans-IO [`Scheduler`].
//! - [`pair`] pairs two people's nodes by a short code read aloud, so that each trusts the other by name
//!   ([`TrustList`]).
//! - [`Client::send`] hands files and a text to one peer: served to its proven id alone, and fetched by
//!   its [`Node`] as its [`Accept`] policy (and, through [`Ask`], a person) decides.
//!
//! Both are handed their plug-ins: any number of transports (`Arc<dyn Transport>`) and discoveries
//! (`Box<dyn Discovery>`); nothing here names a concrete one. A node listens on every transport it is
//! given and announces each by name; a client connects to each peer over the first of its transports
//! that the peer announces. Errors are per operation ([`PeersError`], [`ListError`], [`FetchError`],
//! [`NodeError`]) and name no command-line flag: front ends add what to do in their own terms.
//!
//! A program that fetches a file from the LAN (`examples/fetch.rs`; a test runs it against a node):
//!
//! ```no_run
#![doc = include_str!("../examples/fetch.rs")]
//! ```
//!
//! Serving a folder:
//!
//! ```no_run
//! # async fn example(config: node::ServeConfig, tls: std::sync::Arc<dyn node::Transport>,
//! #     lan: Box<dyn node::Discovery>) -> Result<(), node::NodeError> {
//! let node = node::Node::builder(config)?.transport(tls).discovery(lan).bind().await?;
//! node.run(std::future::pending()).await
//! # }
//! ```

mod client;
mod config;
mod download;
mod error;
mod exchange;
pub mod pair;
mod peers;
mod send;
mod server;
mod state_dir;
mod swarm;
mod words;

pub use client::dictionary::{DictEntry, Dictionary, Host, ResolveError, looks_like_id};
pub use client::fetch::{Fetch, FetchEvent, FetchOptions, Planned, Seed};
pub use client::{Client, ClientBuilder, Listing, Wanted};
pub use config::{ClientConfig, IDLE_TIMEOUT, NetConfig, ServeConfig};
pub use discovery::{Discovery, Peer};
pub use download::scheduler::{Assignment, Failure, Limits, Scheduler, Status};
pub use download::{DownloadEvent, DownloadOptions, Dropped, HAVE_REFRESH, Source, check_writable, download};
pub use error::{FetchError, ListError, NodeError, PeersError, SendError};
pub use peers::PeerTable;
pub use proto::{
    Escaped, FileId, GroupKey, GroupSecretError, MAX_NODE_NAME, NodeId, chunk_size_for, escape, human_bytes,
};
pub use send::{ASK_WITHIN, Accept, Ask, OfferAsk, OfferFrom, Outgoing, SendEvent};
pub use server::accepting::{MAX_CONNECTIONS, MAX_CONNECTIONS_PER_PEER};
pub use server::{
    Grants, HASHING_TOLD, Node, NodeBuilder, NodeEvent, SharedEntry, SharedError, SharedFiles, SharedReader, Upload,
};
pub use state_dir::{StateDir, TRUST_LIST_FILE, TrustList};
pub use store::{Copies, Hashing, NameRules, StateKey, discard_part, put_in_place, safe_file_name, saved_as};
pub use transport::{Identity, Transport};

/// A random id, for a process that only asks (it needs no stable identity), and for seeds of randomness.
pub(crate) fn random_id() -> NodeId {
    NodeId(store::random_bytes())
}

/// Runs blocking file work off the async threads. A panic in it is a bug and carries on as one.
pub(crate) async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            // Cancelled: the runtime is shutting down, and nothing waits for this any more.
            Err(_) => std::future::pending().await,
        },
    }
}
