//! The node's identity (certificate and key), kept in its state folder so it survives restarts.

use std::path::Path;

use proto::NodeId;
use store::{IDENTITY_CERT_FILE as CERT_FILE, IDENTITY_KEY_FILE as KEY_FILE, write_private};
use transport::Identity;

use crate::NodeError;

/// The identity stored in `state_dir`, created on first start. Its node id is the certificate's hash.
/// Creation writes both files under temporary names and then renames them, key first: a crash leaves no
/// file, or a key alone, which names no node (the certificate does) and is replaced.
pub fn load_or_create(state_dir: &Path) -> Result<Identity, NodeError> {
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

    #[test]
    fn a_half_written_identity_is_replaced_or_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path();
        load_or_create(state).expect("create");
        // A crash between the renames: the key alone, which no peer has seen an id for.
        std::fs::remove_file(state.join(CERT_FILE)).expect("remove cert");
        let replaced = load_or_create(state).expect("a lone key is replaced");
        assert_eq!(load_or_create(state).expect("load").node_id(), replaced.node_id());
        // A certificate whose key is gone cannot be repaired: the error says what to do.
        std::fs::remove_file(state.join(KEY_FILE)).expect("remove key");
        let error = load_or_create(state).expect_err("a lone certificate").to_string();
        assert!(error.contains("remove") && error.contains(CERT_FILE), "{error}");
    }
}
