//! The p2pnode node: composes discovery, a transport and the content store into the things a user does.
//!
//! - [`Node`] serves: it shares the files of its folders (the downloads folder too, so downloads are
//!   re-shared), announces itself, and answers catalogue, manifest and chunk requests.
//! - [`Survey`] asks the LAN who is there and what they share, without running a node: the content
//!   [`Dictionary`] maps each file id to its name, size and hosting peers.
//! - [`download()`] fetches a file from every peer hosting it, each chunk verified before it is written,
//!   driven by the sans-IO [`Scheduler`].
//! - [`Swarm`] is the upload side of a download: it serves the verified chunks to the other downloaders
//!   of the same files while they are fetched, so a crowd trades chunks rather than each taking every
//!   byte from the seed.
//!
//! The node is handed its plug-ins: any number of transports (`Arc<dyn Transport>`) and discoveries
//! (`Box<dyn Discovery>`); nothing here names a concrete one. A serving node listens on every transport it
//! is given and announces each by name; a survey or a download connects to each peer over the first of
//! its transports that the peer announces.
//!
//! ```no_run
//! # async fn example(config: node::ServeConfig, tls: std::sync::Arc<dyn node::Transport>,
//! #     lan: Box<dyn node::Discovery>) -> Result<(), node::NodeError> {
//! let node = node::Node::builder(config)?.transport(tls).discovery(lan).bind().await?;
//! node.run(std::future::pending()).await
//! # }
//! ```

mod accepting;
mod config;
mod dictionary;
mod download;
mod error;
mod exchange;
mod identity;
mod scheduler;
mod server;
mod serving;
mod state_lock;
mod survey;
mod swarm;
mod throttle;
mod watch;

pub use accepting::{MAX_CONNECTIONS, MAX_CONNECTIONS_PER_PEER};
pub use config::{IDLE_TIMEOUT, NetConfig, ServeConfig};
pub use dictionary::{DictEntry, Dictionary, Host, ResolveError, looks_like_id};
pub use discovery::{Discovery, Peer};
pub use download::{DownloadEvent, HAVE_REFRESH, Source, check_writable, copies, download};
pub use error::NodeError;
pub use identity::load_or_create as stored_identity;
pub use proto::{Escaped, FileId, GroupKey, MAX_NODE_NAME, NodeId, chunk_size_for, escape};
pub use scheduler::{Assignment, Failure, Limits, Scheduler, Status};
pub use server::Upload;
pub use serving::{HASHING_TOLD, Node, NodeBuilder, NodeEvent};
pub use store::{Copies, Hashing, StateKey, discard_part, safe_file_name};
pub use survey::{Survey, Wanted, unresolved};
pub use swarm::{Offer, Requests, Swarm};
pub use transport::{Identity, Transport};

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
