//! Errors of node operations, each phrased for the person who has to act on it.

use std::path::PathBuf;
use std::time::Duration;

use store::StoreError;
use transport::TransportError;

/// Why a node operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The shared folder is missing: create it or point `--dir` elsewhere.
    #[error("shared folder {} does not exist (create it with mkdir -p, or pass another --dir)", .0.display())]
    MissingFolder(PathBuf),
    /// The shared folder is a file.
    #[error("shared folder {} is a file, not a folder (pass the folder to share with --dir)", .0.display())]
    NotAFolder(PathBuf),
    /// A folder or file could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The transfer port could not be bound, or a peer could not be reached.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A node or survey was built without a plug-in it needs.
    #[error("no {0} was given to the node")]
    NoPlugin(&'static str),
    /// Nobody answered: no node runs on this LAN, or the firewall drops broadcasts.
    #[error(
        "no peer answered within {0:?}: is `p2pnode serve` running on the LAN? for other subnets or VPNs use --peer HOST:PORT"
    )]
    NoPeers(Duration),
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
    /// Writing a verified chunk failed (disk full, folder removed); the chunks verified so far are kept.
    #[error("{0}; verified chunks kept: make room and run the same get again to resume")]
    PartWrite(#[source] StoreError),
    /// The downloads folder cannot be created or written to.
    #[error("downloads folder {} is not writable: {source} (choose another with --downloads or -o)", dir.display())]
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
    #[error("another p2pnode{} is already serving {}; stop it, or give this one its own --state-dir", pid.map(|p| format!(" (pid {p})")).unwrap_or_default(), dir.display())]
    AlreadyServing {
        /// The process holding the folder, if it said.
        pid: Option<u32>,
        /// The shared folder.
        dir: PathBuf,
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

fn close_names(close: &[String]) -> String {
    match close {
        [] => String::new(),
        names => format!("; close names: {}", names.join(", ")),
    }
}

/// The first chunks of a list, so an error line stays one line.
fn chunk_list(chunks: &[u32]) -> String {
    const SHOWN: usize = 10;
    let mut text = chunks.iter().take(SHOWN).map(u32::to_string).collect::<Vec<_>>().join(", ");
    if chunks.len() > SHOWN {
        text.push_str(", ...");
    }
    text
}
