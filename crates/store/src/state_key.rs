//! The node-local key that authenticates download state files.
//!
//! A `NAME.part.state` file tells a node which content a `.part` file holds and which of its chunks are
//! verified; a node shares those chunks. Such a file must come from this node, never from a peer (a
//! downloaded or planted state file would make the node advertise an id of the attacker's choice and
//! serve whatever bytes lie beside it). So every state file carries a BLAKE3 MAC under a key that never
//! leaves the state folder, and a state file whose MAC does not verify is not a download in progress.

use std::io::Write;
use std::path::Path;

use crate::StoreError;
use crate::error::io_err;

/// The key file in the state folder.
const KEY_FILE: &str = "state-key";
/// The node's certificate, in the state folder.
pub const IDENTITY_CERT_FILE: &str = "node-cert.der";
/// The node's private key, in the state folder.
pub const IDENTITY_KEY_FILE: &str = "node-key.der";
/// The hash cache, in the state folder.
pub const HASH_CACHE_FILE: &str = "hashes.bin";
/// The file a serving node holds locked, with its process id, so that one node at a time uses the folder.
pub const LOCK_FILE: &str = "lock";
/// Every file a node keeps in its state folder: never shared, even where the state folder is shared.
pub(crate) const STATE_FILES: [&str; 5] = [KEY_FILE, IDENTITY_CERT_FILE, IDENTITY_KEY_FILE, HASH_CACHE_FILE, LOCK_FILE];
const KEY_LEN: usize = 32;

/// A node-local secret key (see the module's doc).
#[derive(Clone)]
pub struct StateKey([u8; KEY_LEN]);

impl std::fmt::Debug for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateKey(..)")
    }
}

impl StateKey {
    /// The key kept in `state_dir`, created (readable by its owner only) on first use.
    pub fn load_or_create(state_dir: &Path) -> Result<Self, StoreError> {
        let path = state_dir.join(KEY_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let key = bytes.try_into().map_err(|_| StoreError::Io {
                    path: path.clone(),
                    source: std::io::Error::other("damaged (not 32 bytes): delete it, partial downloads restart"),
                })?;
                return Ok(Self(key));
            }
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(&path)(e)),
            Err(_) => {}
        }
        std::fs::create_dir_all(state_dir).map_err(io_err(state_dir))?;
        let key = Self::random();
        match create_private(&path) {
            Ok(mut file) => file.write_all(&key.0).map_err(io_err(&path))?,
            // Another process created it first: use that one.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Self::load_or_create(state_dir),
            Err(e) => return Err(io_err(&path)(e)),
        }
        Ok(key)
    }

    /// A key for this process only: state files it writes are not trusted by any later process.
    pub fn random() -> Self {
        Self(random_bytes())
    }

    /// The MAC of `parts`, in order.
    pub(crate) fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_keyed(&self.0);
        for part in parts {
            hasher.update(&(part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        *hasher.finalize().as_bytes()
    }
}

/// 32 random bytes from the OS. Without an OS random source (a broken system), bytes derived from the
/// time and process id, which still differ per run.
pub fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        bytes = *blake3::hash(seed.as_bytes()).as_bytes();
    }
    bytes
}

/// Creates `path`, which must not exist, readable by its owner only.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    private_options().create_new(true).open(path)
}

/// Writes `bytes` to `path` (replacing what it held), readable by its owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    private_options().create(true).truncate(true).open(path)?.write_all(bytes)
}

#[cfg(unix)]
fn private_options() -> std::fs::OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(0o600);
    options
}

/// Elsewhere files get the folder's permissions (on Windows, the user's profile is private already).
#[cfg(not(unix))]
fn private_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_survives_restarts_and_differs_per_folder() {
        let (a, b) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
        let first = StateKey::load_or_create(a.path()).expect("create");
        assert_eq!(StateKey::load_or_create(a.path()).expect("load").0, first.0);
        assert_ne!(StateKey::load_or_create(b.path()).expect("create").0, first.0);
        std::fs::write(a.path().join(KEY_FILE), b"short").expect("damage");
        assert!(StateKey::load_or_create(a.path()).is_err());
    }
}
