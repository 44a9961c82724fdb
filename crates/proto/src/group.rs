//! A private group's key: what every member derives from the group secret, and the keys it is split
//! into (one per use, so no use can weaken another): discovery datagrams are sealed with one, and each
//! transfer channel is proven with another.

/// The key of a group, 32 bytes derived from its secret by a memory-hard KDF ([`GroupKey::derive`]).
#[derive(Clone, PartialEq, Eq)]
pub struct GroupKey([u8; 32]);

/// Why a group secret gives no key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupSecretError {
    /// The secret is empty, or only white space.
    #[error("the group secret is empty")]
    Empty,
    /// The key derivation failed (it does not, with these parameters).
    #[error("the group key could not be derived: {0}")]
    Derivation(String),
}

/// Which end of a channel a proof comes from: the two ends' proofs differ, so neither can be reflected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The end that opened the channel.
    Client,
    /// The end that accepted it.
    Server,
}

impl GroupKey {
    /// The key every member derives from the group's `secret`: Argon2id with 19 MiB and two passes
    /// (OWASP's minimum), so a captured datagram cannot be tried against guessed secrets quickly. The salt
    /// is fixed: every member must derive the same key from the secret.
    pub fn derive(secret: &str) -> Result<Self, GroupSecretError> {
        if secret.trim().is_empty() {
            return Err(GroupSecretError::Empty);
        }
        let failed = |e: argon2::Error| GroupSecretError::Derivation(e.to_string());
        let params = argon2::Params::new(19 * 1024, 2, 1, Some(32)).map_err(failed)?;
        let kdf = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut key = [0u8; 32];
        kdf.hash_password_into(secret.as_bytes(), b"p2pnode private group 2026-12", &mut key).map_err(failed)?;
        Ok(Self(key))
    }

    /// The group whose key is `key`.
    pub fn from_bytes(key: [u8; 32]) -> Self {
        Self(key)
    }

    /// The key that seals the group's discovery datagrams.
    pub fn discovery_key(&self) -> [u8; 32] {
        blake3::derive_key("p2pnode 2026-12 group discovery datagrams", &self.0)
    }

    /// What `role` sends to prove membership on the channel whose binding (exported keying material that
    /// only the channel's two ends know) is `binding`: it proves nothing on any other channel, so it
    /// cannot be relayed.
    pub fn proof(&self, role: Role, binding: &[u8; 32]) -> [u8; 32] {
        let key = blake3::derive_key("p2pnode 2026-12 group channel proof", &self.0);
        let mut mac = blake3::Hasher::new_keyed(&key);
        mac.update(&[role as u8]).update(binding);
        *mac.finalize().as_bytes()
    }
}

impl std::fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_derive_one_key_from_one_secret() {
        let key = GroupKey::derive("correct horse").expect("a secret");
        assert_eq!(key, GroupKey::derive("correct horse").expect("a secret"));
        assert_ne!(key, GroupKey::derive("correct horsf").expect("a secret"));
        assert_eq!(GroupKey::derive(" \t"), Err(GroupSecretError::Empty));
    }

    #[test]
    fn proofs_differ_by_role_channel_and_group() {
        let (a, b) = (GroupKey::from_bytes([1; 32]), GroupKey::from_bytes([2; 32]));
        let (one, two) = ([7; 32], [8; 32]);
        assert_ne!(a.proof(Role::Client, &one), a.proof(Role::Server, &one));
        assert_ne!(a.proof(Role::Client, &one), a.proof(Role::Client, &two));
        assert_ne!(a.proof(Role::Client, &one), b.proof(Role::Client, &one));
        assert_eq!(a.proof(Role::Client, &one), a.clone().proof(Role::Client, &one));
        assert_ne!(a.discovery_key(), b.discovery_key());
    }
}
