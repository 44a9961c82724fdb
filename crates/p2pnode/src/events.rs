//! Every JSON line the binary prints with --json: one variant per event, named by its `event` field, each
//! documented in docs/json.md (tests hold the two together). Strings carry peers' names exactly: JSON
//! escaping is the only escaping.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

/// One line of `--json` output.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum Event {
    /// `serve` listens.
    Serving { name: String, id: String, ports: BTreeMap<String, u16>, files: usize, page: Option<String> },
    /// How far `serve` has come hashing new and changed files (those hashed are shared already).
    Hashing { files: usize, files_total: usize, bytes: u64, bytes_total: u64 },
    /// `serve` has hashed the files there were when it started: every one is shared.
    Ready { files: usize, bytes: u64, page: Option<String> },
    /// `serve --guests` serves the guest page at `urls`, opened by `pin`; uploads go to `inbox`.
    Guests { urls: Vec<String>, pin: String, inbox: Option<PathBuf> },
    /// Too many wrong PINs: the guests' PIN is now `pin`.
    GuestPin { pin: String },
    /// A guest at `ip` entered the PIN.
    GuestIn { ip: String },
    /// A guest at `ip` uploaded a file, now at `path`.
    GuestUpload { ip: String, path: PathBuf, bytes: u64 },
    /// What a peer took of a file from `serve`, as its connection ended.
    Uploaded { peer: String, peer_name: Option<String>, id: String, name: String, size: u64, bytes: u64 },
    /// A peer of `peers`.
    Peer {
        name: String,
        id: String,
        ip: String,
        ports: BTreeMap<String, u16>,
        files: u32,
        conflicting_claim: bool,
        trusted: Option<bool>,
    },
    /// A file of `ls`.
    File { name: String, size: u64, id: String, hosts: Vec<FileHost> },
    /// `pair` waits with this code, for so many seconds.
    PairCode { code: String, seconds: u64 },
    /// `pair` paired: the other node, filed in the trust list under `name`.
    Paired { name: String, id: String, fingerprint: String },
    /// This node: `id`.
    Id { name: String, id: String, fingerprint: String, state_dir: PathBuf },
    /// A download's manifest is known and its `.part` open.
    Started {
        id: String,
        name: String,
        size: u64,
        chunks: u32,
        have: u32,
        sources: usize,
        part: PathBuf,
        earlier_version: bool,
    },
    /// A chunk arrived, verified and written.
    Chunk { id: String, index: u32, bytes: u32, peer: String, done_bytes: u64 },
    /// A chunk request failed; the chunk is asked of a peer again.
    ChunkFailed { id: String, index: u32, peer: String, error: String, corrupt: bool },
    /// A peer is no longer asked for chunks.
    SourceDropped { id: String, peer: String, reason: String, waiting_seconds: Option<f64> },
    /// A download completed.
    Done { id: String, path: PathBuf, size: u64, seconds: f64, bytes_per_second: f64 },
    /// `get` fetched nothing: the destination holds the file.
    AlreadyHave { id: String, name: String, path: PathBuf },
    /// `send` offered its files to the peer `to` (named `name`), who is asked now.
    Offered { to: String, name: String, files: u32, bytes: u64 },
    /// `send` is done: the peer has every file.
    Sent { to: String, name: String },
    /// `serve` was offered files or a text: `accepted`, or refused and `why`.
    Offer {
        from: String,
        from_name: Option<String>,
        paired: Option<String>,
        title: String,
        files: u32,
        bytes: u64,
        accepted: bool,
        why: Option<String>,
    },
    /// `serve` received a text with an offer it took.
    Text { from: String, from_name: Option<String>, paired: Option<String>, text: String },
    /// An offer `serve` took has ended: the `files` here, and the `error` where some are not.
    Received {
        from: String,
        from_name: Option<String>,
        paired: Option<String>,
        files: Vec<PathBuf>,
        error: Option<String>,
    },
    /// The command failed (also said on stderr); the exit status is not 0.
    Error { message: String },
}

/// A host of a file of `ls`.
#[derive(Debug, Serialize)]
pub(crate) struct FileHost {
    pub(crate) id: String,
    pub(crate) ip: String,
    pub(crate) name: String,
    /// The share of the file the host has, while it is downloading it itself.
    pub(crate) partial: Option<f64>,
}

impl Event {
    /// Prints the event as one line on stdout.
    pub(crate) fn print(&self) {
        match serde_json::to_string(self) {
            Ok(line) => say!("{line}"),
            Err(e) => tracing::error!(error = %e, "event not printed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `event` of every variant: the test below finds each in docs/json.md.
    fn one_of_each() -> Vec<Event> {
        let (s, id, ports) = (String::new, || "00".repeat(32), BTreeMap::new);
        vec![
            Event::Serving { name: s(), id: id(), ports: ports(), files: 0, page: None },
            Event::Hashing { files: 0, files_total: 0, bytes: 0, bytes_total: 0 },
            Event::Ready { files: 0, bytes: 0, page: None },
            Event::Guests { urls: vec![s()], pin: s(), inbox: None },
            Event::GuestPin { pin: s() },
            Event::GuestIn { ip: s() },
            Event::GuestUpload { ip: s(), path: PathBuf::new(), bytes: 0 },
            Event::Uploaded { peer: s(), peer_name: None, id: id(), name: s(), size: 0, bytes: 0 },
            Event::Peer {
                name: s(),
                id: id(),
                ip: s(),
                ports: ports(),
                files: 0,
                conflicting_claim: false,
                trusted: None,
            },
            Event::File { name: s(), size: 0, id: id(), hosts: vec![] },
            Event::Id { name: s(), id: id(), fingerprint: s(), state_dir: PathBuf::new() },
            Event::PairCode { code: s(), seconds: 120 },
            Event::Paired { name: s(), id: id(), fingerprint: s() },
            Event::Started {
                id: id(),
                name: s(),
                size: 0,
                chunks: 0,
                have: 0,
                sources: 0,
                part: PathBuf::new(),
                earlier_version: false,
            },
            Event::Chunk { id: id(), index: 0, bytes: 0, peer: id(), done_bytes: 0 },
            Event::ChunkFailed { id: id(), index: 0, peer: id(), error: s(), corrupt: false },
            Event::SourceDropped { id: id(), peer: id(), reason: s(), waiting_seconds: Some(1.0) },
            Event::Done { id: id(), path: PathBuf::new(), size: 0, seconds: 0.0, bytes_per_second: 0.0 },
            Event::AlreadyHave { id: id(), name: s(), path: PathBuf::new() },
            Event::Offered { to: id(), name: s(), files: 0, bytes: 0 },
            Event::Sent { to: id(), name: s() },
            Event::Offer {
                from: id(),
                from_name: None,
                paired: None,
                title: s(),
                files: 0,
                bytes: 0,
                accepted: false,
                why: None,
            },
            Event::Text { from: id(), from_name: None, paired: None, text: s() },
            Event::Received { from: id(), from_name: None, paired: None, files: vec![], error: None },
            Event::Error { message: s() },
        ]
    }

    #[test]
    fn every_event_and_field_is_documented() {
        let doc = include_str!("../../../docs/json.md");
        for event in one_of_each() {
            let value = serde_json::to_value(&event).expect("serialises");
            let name = value["event"].as_str().expect("an event field");
            let section = doc.split(&format!("## `{name}`\n")).nth(1).unwrap_or_else(|| panic!("{name} undocumented"));
            let section = section.split("\n## ").next().unwrap_or_default();
            for field in value.as_object().expect("an object").keys() {
                assert!(section.contains(&format!("| `{field}` |")), "{name}.{field} undocumented");
            }
        }
    }
}
