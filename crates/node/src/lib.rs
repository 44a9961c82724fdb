//! The p2pnode node: composes discovery, a transport and the content store into the things a user does.
//!
//! - [`Node`] serves: it shares the files of its folders (the downloads folder too, so downloads are
//!   re-shared), announces itself, and answers catalogue, manifest and chunk requests.
//! - [`Survey`] asks the LAN who is there and what they share, without running a node: the content
//!   [`Dictionary`] maps each file id to its name, size and hosting peers.
//! - [`download()`] fetches a file from every peer hosting it, each chunk verified before it is written,
//!   driven by the sans-IO [`Scheduler`].
//!
//! A serving node listens on every transport; a download uses the one chosen with [`transport_for`], and
//! everything else takes `Arc<dyn Transport>`.

mod config;
mod dictionary;
mod download;
mod error;
mod exchange;
mod identity;
mod node;
mod scheduler;
mod server;
mod state_lock;
mod survey;
mod throttle;

use std::sync::Arc;

pub use config::{IDLE_TIMEOUT, NetConfig, ServeConfig};
pub use dictionary::{DictEntry, Dictionary, Host, ResolveError, looks_like_id};
pub use discovery::Peer;
pub use discovery::udp::DEFAULT_PORT as DEFAULT_DISCOVERY_PORT;
pub use download::{DownloadEvent, Source, check_writable, download};
pub use error::NodeError;
pub use node::{MAX_CONNECTIONS, MAX_CONNECTIONS_PER_PEER, Node};
pub use proto::{Escaped, FileId, MAX_NODE_NAME, NodeId, TransportKind, chunk_size_for, escape};
pub use scheduler::{Assignment, Failure, Limits, Scheduler, Status};
pub use store::{StateKey, discard_part};
pub use survey::Survey;
use transport::{Identity, Transport, TransportConfig};

/// The transport of `kind`. A node that serves passes its identity (QUIC servers prove it); one that only
/// downloads passes `None`.
pub fn transport_for(kind: TransportKind, config: TransportConfig, identity: Option<&Identity>) -> Arc<dyn Transport> {
    match kind {
        TransportKind::Tcp => Arc::new(transport::tcp::TcpTransport::new(config)),
        TransportKind::Quic => Arc::new(transport::quic::QuicTransport::new(config, identity.cloned())),
    }
}

/// Runs blocking file work off the async threads. A panic in it is a bug and carries on as one.
pub(crate) async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
