//! A private group's key: what every member derives from the group secret, and the keys it is split
//! into (one per use, so no use can weaken another): discovery datagrams are sealed with one, and each
//! transfer channel is proven with another.

/// The key of a group, 32 bytes derived from its secret by a memory-hard KDF (the binary's concern).
#[derive(Clone, PartialEq, Eq)]
pub struct GroupKey([u8; 32]);

/// Which end of a channel a proof comes from: the two ends' proofs differ, so neither can be reflected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The end that opened the channel.
    Client,
    /// The end that accepted it.
    Server,
}

impl GroupKey {
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
