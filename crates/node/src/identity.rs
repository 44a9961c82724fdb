//! The node's identity, kept in its state folder so it survives restarts.

use std::path::Path;

use proto::NodeId;

use crate::NodeError;

const FILE: &str = "node-id";

/// The node id stored in `state_dir`, created (random) on first start.
pub(crate) fn load_or_create(state_dir: &Path) -> Result<NodeId, NodeError> {
    let path = state_dir.join(FILE);
    let err = |source| NodeError::State { path: path.clone(), source };
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map_err(|e| err(std::io::Error::new(std::io::ErrorKind::InvalidData, e))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(state_dir).map_err(err)?;
            let id = random_id();
            std::fs::write(&path, format!("{id}\n")).map_err(err)?;
            Ok(id)
        }
        Err(e) => Err(err(e)),
    }
}

/// A random id, for a process that only asks (it needs no stable identity).
pub(crate) fn random_id() -> NodeId {
    let mut bytes = [0u8; 32];
    // The OS random source failing is a broken system; a fixed id would only make our queries look
    // like another node's, which is harmless, so fall back to mixing in the time and process id.
    if getrandom::fill(&mut bytes).is_err() {
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        bytes = *blake3::hash(seed.as_bytes()).as_bytes();
    }
    NodeId(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_survives_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        let first = load_or_create(&state).expect("create");
        assert_eq!(load_or_create(&state).expect("load"), first);
        assert_ne!(random_id(), random_id());
    }
}
