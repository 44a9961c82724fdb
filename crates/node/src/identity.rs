//! The node's identity (certificate and key), kept in its state folder so it survives restarts.

use std::path::Path;

use proto::NodeId;
use transport::Identity;

use crate::NodeError;

use store::{IDENTITY_CERT_FILE as CERT_FILE, IDENTITY_KEY_FILE as KEY_FILE};

/// The identity stored in `state_dir`, created on first start. Its node id is the certificate's hash.
pub(crate) fn load_or_create(state_dir: &Path) -> Result<Identity, NodeError> {
    let (cert_path, key_path) = (state_dir.join(CERT_FILE), state_dir.join(KEY_FILE));
    let state_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| NodeError::State { path, source }
    };
    if cert_path.exists() || key_path.exists() {
        let cert = std::fs::read(&cert_path).map_err(state_err(&cert_path))?;
        let key = std::fs::read(&key_path).map_err(state_err(&key_path))?;
        return Ok(Identity::from_der(cert, key));
    }
    std::fs::create_dir_all(state_dir).map_err(state_err(state_dir))?;
    let identity = Identity::generate()
        .map_err(|e| NodeError::State { path: cert_path.clone(), source: std::io::Error::other(e) })?;
    write_private(&key_path, identity.key_der()).map_err(state_err(&key_path))?;
    std::fs::write(&cert_path, identity.cert_der()).map_err(state_err(&cert_path))?;
    Ok(identity)
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(bytes)
}

/// A random id, for a process that only asks (it needs no stable identity).
pub(crate) fn random_id() -> NodeId {
    NodeId(store::random_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_survives_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        let first = load_or_create(&state).expect("create").node_id();
        assert_eq!(load_or_create(&state).expect("load").node_id(), first);
        assert_ne!(random_id(), random_id());
    }
}
