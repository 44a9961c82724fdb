//! One serving node per state folder: two nodes on one folder would share an identity, and `peers` would
//! flip between them.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use store::LOCK_FILE;

use crate::NodeError;

/// The state folder's lock, held by the serving node until it exits (the OS releases it however the
/// process ends, so a crash leaves nothing to clean up).
#[derive(Debug)]
pub(crate) struct StateLock {
    _file: File,
}

impl StateLock {
    /// Locks `state_dir` for this process, or says which process serving `shared` holds it.
    pub(crate) fn acquire(state_dir: &Path, shared: &Path) -> Result<Self, NodeError> {
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
}
