//! The state folder of a node or a client (identity, state key, hash cache, trust list, lock): opened
//! once, locked while a node serves from it, and the one place that hands out what it holds.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use proto::NodeId;
use store::{
    Copies, HASH_CACHE_FILE, HashCache, IDENTITY_CERT_FILE as CERT_FILE, IDENTITY_KEY_FILE as KEY_FILE, LOCK_FILE,
    StateKey, write_private,
};
use transport::Identity;

use crate::NodeError;

/// A state folder, opened: created where missing, and locked where a node serves from it (one serving
/// node per state folder: two would share an identity, and `peers` would flip between them).
#[derive(Debug)]
pub struct StateDir {
    path: PathBuf,
    /// Held while a node serves from it; released by the OS however the process ends.
    _lock: Option<StateLock>,
}

impl StateDir {
    /// Opens the state folder at `path` for a process that does not serve from it (a client: its key
    /// resumes downloads, its hash cache finds copies); it is created where missing.
    pub fn open(path: &Path) -> Result<Self, NodeError> {
        std::fs::create_dir_all(path).map_err(|source| NodeError::State { path: path.into(), source })?;
        Ok(Self { path: path.to_path_buf(), _lock: None })
    }

    /// Opens the state folder at `path` and locks it for the node that serves `shared`, or says which
    /// process holds it.
    pub fn lock(path: &Path, shared: &Path) -> Result<Self, NodeError> {
        let lock = StateLock::acquire(path, shared)?;
        Ok(Self { path: path.to_path_buf(), _lock: Some(lock) })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The identity kept here (certificate and key), created on first use; its node id is the
    /// certificate's hash.
    pub fn identity(&self) -> Result<Identity, NodeError> {
        load_or_create_identity(&self.path)
    }

    /// The identity kept in the state folder at `path`, where one was made already: nothing is created (a
    /// command that only asks need not make a node).
    pub fn existing_identity(path: &Path) -> Option<Identity> {
        let (cert, key) = (std::fs::read(path.join(CERT_FILE)).ok()?, std::fs::read(path.join(KEY_FILE)).ok()?);
        (!cert.is_empty() && !key.is_empty()).then(|| Identity::from_der(cert, key))
    }

    /// The key that authenticates the state of downloads in progress, created on first use.
    pub fn key(&self) -> Result<StateKey, NodeError> {
        Ok(StateKey::load_or_create(&self.path)?)
    }

    /// The manifests of the files hashed before, by path and stamp.
    pub fn hash_cache(&self) -> HashCache {
        HashCache::load(self.path.join(HASH_CACHE_FILE))
    }

    /// Lookups of the files a fetch would only duplicate, with the hash cache kept here.
    pub fn copies(&self) -> Copies {
        Copies::new(self.hash_cache())
    }

    /// Writes `list` as this folder's trust list, whole or not at all (a temporary file renamed over it).
    pub fn save_trust_list(&self, list: &TrustList) -> Result<(), NodeError> {
        let (path, temporary) = (self.path.join(TRUST_LIST_FILE), self.path.join(format!(".{TRUST_LIST_FILE}.new")));
        let written = std::fs::write(&temporary, list.to_text()).and_then(|()| std::fs::rename(&temporary, &path));
        written.map_err(|source| NodeError::State { path, source })
    }

    /// The peers this node knows by name ([`TRUST_LIST_FILE`]); empty where there is none.
    pub fn trust_list(&self) -> Result<TrustList, NodeError> {
        let path = self.path.join(TRUST_LIST_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => TrustList::parse(&text).map_err(|e| NodeError::State { path, source: e }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TrustList::default()),
            Err(source) => Err(NodeError::State { path, source }),
        }
    }
}

/// The file of a state folder that names the peers it trusts: a full id per line, and a name after it
/// where the peer has one (`#` starts a comment).
pub const TRUST_LIST_FILE: &str = "trusted";

/// Peers known by full id, and some by a name: a state folder's ([`StateDir::trust_list`]), or a file
/// of ids given for the run.
#[derive(Clone, Debug, Default)]
pub struct TrustList {
    entries: Vec<(NodeId, Option<String>)>,
}

impl TrustList {
    /// The list in `text`: `ID [NAME]` per line, `#` starting a comment; a line that is no id is an error
    /// naming the line.
    pub fn parse(text: &str) -> Result<Self, std::io::Error> {
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let mut words = line.split('#').next().unwrap_or_default().split_whitespace();
            let Some(id) = words.next() else { continue };
            let id = id
                .parse()
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("line {}: {e}", n + 1)))?;
            let name: Vec<&str> = words.collect();
            entries.push((id, (!name.is_empty()).then(|| name.join(" "))));
        }
        Ok(Self { entries })
    }

    /// Every id listed.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.entries.iter().map(|(id, _)| *id)
    }

    /// The id listed under `name`.
    pub fn id_of(&self, name: &str) -> Option<NodeId> {
        self.entries.iter().find(|(_, n)| n.as_deref() == Some(name)).map(|(id, _)| *id)
    }

    /// The name `id` is listed under, if it has one.
    pub fn name_of(&self, id: NodeId) -> Option<&str> {
        self.entries.iter().find(|(i, _)| *i == id).and_then(|(_, n)| n.as_deref())
    }

    /// Lists `id` under a name made of `wanted` (a peer's choice): one word of printable characters
    /// without `#`, at most 64 bytes, `peer` where nothing is left, and `-2`, `-3`, ... where another id
    /// has it. An id listed already keeps its name. Returns the name it is listed under.
    pub fn add(&mut self, id: NodeId, wanted: &str) -> String {
        if let Some(name) = self.name_of(id) {
            return name.to_string();
        }
        let cleaned: String = wanted
            .chars()
            .map(|c| {
                if c.is_whitespace() || c.is_control() || c == '#' || proto::text::is_format_char(c) { '-' } else { c }
            })
            .collect();
        let mut base = cleaned.trim_matches('-').to_string();
        // A name that reads as an id (8 hex digits or more) would be taken for one.
        if base.is_empty() || crate::looks_like_id(&base) {
            base = "peer".into();
        }
        while base.len() > 56 {
            base.pop();
        }
        let name = std::iter::once(base.clone())
            .chain((2..).map(|n| format!("{base}-{n}")))
            .find(|name| self.id_of(name).is_none())
            .unwrap_or(base);
        self.entries.push((id, Some(name.clone())));
        name
    }

    /// The list as its file holds it: `ID NAME` per line.
    fn to_text(&self) -> String {
        let line = |(id, name): &(NodeId, Option<String>)| match name {
            Some(name) => format!("{id} {name}\n"),
            None => format!("{id}\n"),
        };
        self.entries.iter().map(line).collect()
    }
}

/// The identity stored in `state_dir`, created on first start. Its node id is the certificate's hash.
/// Creation writes both files under temporary names and then renames them, key first: a crash leaves no
/// file, or a key alone, which names no node (the certificate does) and is replaced.
fn load_or_create_identity(state_dir: &Path) -> Result<Identity, NodeError> {
    let (cert_path, key_path) = (state_dir.join(CERT_FILE), state_dir.join(KEY_FILE));
    let state_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| NodeError::State { path, source }
    };
    let read = |path: &Path| match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(state_err(path)(e)),
    };
    match (read(&cert_path)?, read(&key_path)?) {
        (Some(cert), Some(key)) if !cert.is_empty() && !key.is_empty() => return Ok(Identity::from_der(cert, key)),
        (Some(_), _) => {
            let damaged = format!(
                "identity damaged: {CERT_FILE} has no usable {KEY_FILE} beside it; remove {} to start with a new node id",
                cert_path.display()
            );
            return Err(state_err(&key_path)(std::io::Error::other(damaged)));
        }
        (None, Some(_)) => {
            tracing::warn!(key = %key_path.display(), "unfinished identity from an interrupted start replaced")
        }
        (None, None) => {}
    }
    std::fs::create_dir_all(state_dir).map_err(state_err(state_dir))?;
    let identity = Identity::generate()
        .map_err(|e| NodeError::State { path: cert_path.clone(), source: std::io::Error::other(e) })?;
    for (path, bytes) in [(&key_path, identity.key_der()), (&cert_path, identity.cert_der())] {
        let unfinished = path.with_extension("der.new");
        write_private(&unfinished, bytes).map_err(state_err(&unfinished))?;
        std::fs::rename(&unfinished, path).map_err(state_err(path))?;
    }
    Ok(identity)
}

/// The state folder's lock, held by the serving node until it exits (the OS releases it however the
/// process ends, so a crash leaves nothing to clean up).
#[derive(Debug)]
struct StateLock {
    _file: File,
}

impl StateLock {
    /// Locks `state_dir` for this process, or says which process serving `shared` holds it.
    fn acquire(state_dir: &Path, shared: &Path) -> Result<Self, NodeError> {
        let path = state_dir.join(LOCK_FILE);
        let state_err = |source| NodeError::State { path: path.clone(), source };
        std::fs::create_dir_all(state_dir).map_err(|source| NodeError::State { path: state_dir.into(), source })?;
        let mut file =
            File::options().read(true).write(true).create(true).truncate(false).open(&path).map_err(state_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(NodeError::AlreadyServing { pid: holder.trim().parse().ok(), dir: shared_name(shared) });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(state_err(e)),
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .map_err(state_err)?;
        Ok(Self { _file: file })
    }
}

fn shared_name(shared: &Path) -> PathBuf {
    shared.canonicalize().unwrap_or_else(|_| shared.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paired_peer_is_filed_under_a_clean_unique_name_and_saved_whole() {
        let dir = tempfile::tempdir().expect("dir");
        let state = StateDir::open(dir.path()).expect("state");
        let mut list = state.trust_list().expect("none yet");
        let (a, b, c) = (NodeId([1; 32]), NodeId([2; 32]), NodeId([3; 32]));
        assert_eq!(list.add(a, "bob"), "bob");
        assert_eq!(list.add(b, "bob"), "bob-2", "another id of the same name");
        assert_eq!(list.add(a, "robert"), "bob", "an id listed keeps its name");
        assert_eq!(list.add(c, "evil\nname # \u{202e}x"), "evil-name----x", "one word, no comment, no controls");
        assert_eq!(list.add(NodeId([4; 32]), &NodeId([5; 32]).to_string()), "peer", "no name that reads as an id");
        state.save_trust_list(&list).expect("saved");
        let again = state.trust_list().expect("read back");
        assert_eq!(
            (again.id_of("bob"), again.id_of("bob-2"), again.id_of("evil-name----x")),
            (Some(a), Some(b), Some(c))
        );
    }

    #[test]
    fn the_trust_list_names_ids_and_refuses_what_is_no_id() {
        let dir = tempfile::tempdir().expect("dir");
        let state = StateDir::open(dir.path()).expect("open");
        assert_eq!(state.trust_list().expect("none yet").ids().count(), 0);
        let (a, b) = (NodeId([0xaa; 32]), NodeId([0xbb; 32]));
        std::fs::write(dir.path().join(TRUST_LIST_FILE), format!("# paired\n{a} bob\n{b}  # unnamed\n\n"))
            .expect("write");
        let list = state.trust_list().expect("read");
        assert_eq!((list.id_of("bob"), list.id_of("carol"), list.ids().count()), (Some(a), None, 2));
        std::fs::write(dir.path().join(TRUST_LIST_FILE), "bob\n").expect("write");
        let error = state.trust_list().expect_err("no id").to_string();
        assert!(error.contains(TRUST_LIST_FILE) && error.contains("line 1"), "{error}");
    }

    #[test]
    fn a_second_node_on_the_folder_is_told_who_holds_it() {
        let dir = tempfile::tempdir().expect("dir");
        let state = dir.path().join(".p2pnode");
        let held = StateLock::acquire(&state, dir.path()).expect("first");
        match StateLock::acquire(&state, dir.path()) {
            Err(NodeError::AlreadyServing { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("second lock: {other:?}"),
        }
        drop(held);
        StateLock::acquire(&state, dir.path()).expect("free again once the first is gone");
    }

    #[test]
    fn identity_survives_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        let first = load_or_create_identity(&state).expect("create").node_id();
        assert_eq!(load_or_create_identity(&state).expect("load").node_id(), first);
    }

    #[test]
    fn a_half_written_identity_is_replaced_or_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path();
        load_or_create_identity(state).expect("create");
        // A crash between the renames: the key alone, which no peer has seen an id for.
        std::fs::remove_file(state.join(CERT_FILE)).expect("remove cert");
        let replaced = load_or_create_identity(state).expect("a lone key is replaced");
        assert_eq!(load_or_create_identity(state).expect("load").node_id(), replaced.node_id());
        // A certificate whose key is gone cannot be repaired: the error says what to do.
        std::fs::remove_file(state.join(KEY_FILE)).expect("remove key");
        let error = load_or_create_identity(state).expect_err("a lone certificate").to_string();
        assert!(error.contains("remove") && error.contains(CERT_FILE), "{error}");
    }
}
