//! Errors of node operations, each phrased for the person who has to act on it.

use std::path::PathBuf;
use std::time::Duration;

use store::StoreError;
use transport::TransportError;

/// Why serving, or a download of one file, failed. Front ends add what to do in their own terms (a flag,
/// a button): these messages name none.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The shared folder is missing.
    #[error("shared folder {} does not exist", .0.display())]
    MissingFolder(PathBuf),
    /// The shared folder is a file.
    #[error("shared folder {} is a file, not a folder", .0.display())]
    NotAFolder(PathBuf),
    /// A folder or file could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The transfer port could not be bound, or a peer could not be reached.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A node or client was built without a plug-in it needs.
    #[error("no {0} was given to the node")]
    NoPlugin(&'static str),
    /// The hosts of a file announce none of the client's transports.
    #[error("the peers hosting '{name}' serve none of the transports {}", .transports.join(", "))]
    NoTransport {
        /// The file's name.
        name: String,
        /// The client's transports.
        transports: Vec<String>,
    },
    /// No hosting peer delivered a manifest that matches the file id.
    #[error("no peer delivered the manifest of {0}")]
    NoManifest(String),
    /// Some chunks could not be fetched from any peer; the verified part is kept for a later resume.
    #[error("{} chunks could not be fetched from any peer (chunks {}); verified part kept in {}",
        .chunks.len(), chunk_list(.chunks), .part.display())]
    Incomplete {
        /// The chunks missing.
        chunks: Vec<u32>,
        /// The `.part` file.
        part: PathBuf,
    },
    /// Every source went away and none came in time; the verified part is kept for a later resume.
    #[error("every host of {name} is gone; the verified part ({}) is kept in {}", share(*.verified, *.size),
        .part.display())]
    SourcesGone {
        /// The file's name (as its peers give it: escape it wherever it is shown).
        name: String,
        /// The `.part` file.
        part: PathBuf,
        /// Bytes verified.
        verified: u64,
        /// The file's size.
        size: u64,
    },
    /// Writing a verified chunk failed (disk full, folder removed); the chunks verified so far are kept.
    #[error("{0}; the verified chunks are kept for a later resume")]
    PartWrite(#[source] StoreError),
    /// The downloads folder cannot be created or written to.
    #[error("downloads folder {} is not writable: {source}", dir.display())]
    NotWritable {
        /// The folder.
        dir: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A background task of a serving node (rescan, discovery, a listener) ended.
    #[error("the node's {task} task stopped ({reason}); the node exits: start it again, and report this if it repeats")]
    TaskStopped {
        /// Which task.
        task: &'static str,
        /// Why, as far as known.
        reason: String,
    },
    /// Another node serves from the same state folder.
    #[error("another p2pnode{} is already serving {} from the same state folder", pid.map(|p| format!(" (pid {p})")).unwrap_or_default(), dir.display())]
    AlreadyServing {
        /// The process holding the folder, if it said.
        pid: Option<u32>,
        /// The shared folder.
        dir: PathBuf,
    },
    /// The destination's file system has less free space than the download needs.
    #[error("{name} needs {} more, {} free on {}", proto::human_bytes(*.needs), proto::human_bytes(*.free), .dir.display())]
    NoSpace {
        /// The file.
        name: String,
        /// The folder it goes to.
        dir: PathBuf,
        /// The bytes still to write.
        needs: u64,
        /// The bytes free there.
        free: u64,
    },
    /// A state file could not be read or written.
    #[error("{}: {source}", path.display())]
    State {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Why a listing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListError {
    /// No peers to ask.
    #[error(transparent)]
    Peers(#[from] PeersError),
    /// Peers answered, but none shares a file of that name or id.
    #[error("no peer hosts '{query}'{}", close_names(.close))]
    NotHosted {
        /// What was asked for.
        query: String,
        /// Names that are close, for a "did you mean".
        close: Vec<String>,
    },
    /// Several different files have that name; ask by id.
    #[error("'{query}' names {} different files, ask by id: {}", .ids.len(), .ids.join(", "))]
    Ambiguous {
        /// What was asked for.
        query: String,
        /// The ids of the candidates.
        ids: Vec<String>,
    },
    /// Several queries named nothing, or several things: each said.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Several(Vec<ListError>),
}

/// Why a fetch failed. The verified part of every file that did not complete is kept (unless the fetch
/// was told to delete it), and the same fetch again resumes it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The queries could not be resolved.
    #[error(transparent)]
    List(#[from] ListError),
    /// The destination cannot be written to.
    #[error(transparent)]
    Destination(NodeError),
    /// The one file fetched failed.
    #[error(transparent)]
    File(NodeError),
    /// Several files were fetched, and some failed (each was told as it failed).
    #[error("{failed} of {of} files could not be fetched")]
    Files {
        /// How many failed.
        failed: usize,
        /// How many were fetched.
        of: usize,
    },
    /// The fetch was cancelled before it completed.
    #[error("cancelled")]
    Cancelled,
}

fn close_names(close: &[String]) -> String {
    match close {
        [] => String::new(),
        names => format!("; close names: {}", names.join(", ")),
    }
}

/// The first chunks of a list, so an error line stays one line.
/// `part` of `whole` in per cent, for people.
fn share(part: u64, whole: u64) -> String {
    format!("{:.0} %", part as f64 * 100.0 / whole.max(1) as f64)
}

fn chunk_list(chunks: &[u32]) -> String {
    const SHOWN: usize = 10;
    let mut text = chunks.iter().take(SHOWN).map(u32::to_string).collect::<Vec<_>>().join(", ");
    if chunks.len() > SHOWN {
        text.push_str(", ...");
    }
    text
}

/// Why no peers could be listed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeersError {
    /// Nobody answered: no node runs on this LAN, or the network drops discovery datagrams.
    #[error("no peer answered within {0:?}")]
    NoneAnswered(Duration),
    /// Nobody answered a member of a private group: the one thing a wrong group secret looks like.
    #[error("no peer of this group answered (check the group secret)")]
    NoMember(Duration),
    /// Every discovery stopped.
    #[error("peer discovery stopped")]
    Stopped,
}

/// Why a send ended without the recipient having everything. Names of peers and their words are
/// escaped already.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// A path given cannot be sent.
    #[error("{}: {why}", path.display())]
    Path {
        /// The path.
        path: PathBuf,
        /// Why.
        why: &'static str,
    },
    /// No file, no text.
    #[error("nothing to send")]
    Nothing,
    /// The text is too long for one offer.
    #[error("the text is longer than {max} bytes")]
    TextTooLong {
        /// The most bytes.
        max: u32,
    },
    /// The recipient announces none of this node's transports.
    #[error("{to} announces none of the transports this node uses")]
    NoTransport {
        /// The recipient.
        to: String,
    },
    /// The transport to the recipient proves no id: an offer could not be served to the recipient alone.
    #[error("{transport} proves nobody's id: sending needs tls or quic")]
    Unproven {
        /// Its name.
        transport: String,
    },
    /// A file could not be hashed.
    #[error("{0}")]
    Hashing(#[source] NodeError),
    /// The offer could not be served.
    #[error("cannot serve the offer: {0}")]
    Listen(#[source] NodeError),
    /// The recipient could not be asked.
    #[error("{to} could not be asked: {why}")]
    Unreached {
        /// The recipient.
        to: String,
        /// Why.
        why: String,
    },
    /// The recipient, or a person there, said no.
    #[error("{to} declined{}", if why.is_empty() { String::new() } else { format!(": {why}") })]
    Declined {
        /// The recipient.
        to: String,
        /// Its words.
        why: String,
    },
    /// The recipient takes offers only from the peers it trusts.
    #[error("{to} accepts offers only from the peers it trusts")]
    NotTrusted {
        /// The recipient.
        to: String,
    },
    /// The recipient is busy with other offers.
    #[error("{to} is busy: {why}")]
    Busy {
        /// The recipient.
        to: String,
        /// Its words.
        why: String,
    },
    /// The recipient does not know offers (an older version).
    #[error("{to} takes no offers: its p2pnode is older than this one")]
    TakesNoOffers {
        /// The recipient.
        to: String,
    },
    /// The recipient accepted but could not fetch everything.
    #[error("{to} could not fetch everything; it keeps what it verified")]
    Failed {
        /// The recipient.
        to: String,
    },
    /// The recipient accepted, then asked nothing for a long while.
    #[error("{to} stopped fetching: nothing asked for {within:?}")]
    Silent {
        /// The recipient.
        to: String,
        /// How long.
        within: Duration,
    },
}

impl NodeError {
    /// The error that stops the node when its background `task` ended (they run until shut down), logged
    /// with why: the panic's message, if it panicked.
    pub(crate) fn task_stopped(task: &'static str, joined: Result<(), tokio::task::JoinError>) -> Self {
        let reason = match joined {
            Ok(()) => "it ended".to_string(),
            Err(e) => match e.try_into_panic() {
                Ok(payload) => match payload.downcast::<String>() {
                    Ok(message) => format!("it panicked: {message}"),
                    Err(payload) => {
                        format!("it panicked: {}", payload.downcast_ref::<&str>().unwrap_or(&"(no message)"))
                    }
                },
                Err(e) => e.to_string(),
            },
        };
        tracing::error!(task, reason, "background task stopped; the node exits");
        Self::TaskStopped { task, reason }
    }
}
