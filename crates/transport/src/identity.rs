//! A node's identity: a self-signed certificate and its key. The node id is the BLAKE3 hash of the
//! certificate, so a peer proves the id it announces by completing a TLS handshake with the key.

use std::fmt;

use proto::NodeId;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Why an identity could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot generate a node certificate: {0}")]
pub struct IdentityError(#[from] rcgen::Error);

/// A certificate and its private key (PKCS#8), both DER.
pub struct Identity {
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl Identity {
    /// A fresh self-signed certificate with a new key.
    pub fn generate() -> Result<Self, IdentityError> {
        let certified = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_string()])?;
        Ok(Self::from_der(certified.cert.der().to_vec(), certified.signing_key.serialize_der()))
    }

    /// An identity from stored bytes (checked when a transport first uses it).
    pub fn from_der(cert: Vec<u8>, key: Vec<u8>) -> Self {
        Self { cert: CertificateDer::from(cert), key: PrivatePkcs8KeyDer::from(key) }
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert
    }

    /// The private key, PKCS#8 DER.
    pub fn key_der(&self) -> &[u8] {
        self.key.secret_pkcs8_der()
    }

    /// The node id this identity proves.
    pub fn node_id(&self) -> NodeId {
        node_id_of(&self.cert)
    }

    pub(crate) fn cert(&self) -> CertificateDer<'static> {
        self.cert.clone()
    }

    pub(crate) fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Self { cert: self.cert.clone(), key: self.key.clone_key() }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.node_id().short())
    }
}

/// The node id a certificate proves.
pub fn node_id_of(cert_der: &[u8]) -> NodeId {
    NodeId(*blake3::hash(cert_der).as_bytes())
}

/// The name in every node certificate; identity is checked by hash, never by name.
pub(crate) const SERVER_NAME: &str = "p2pnode";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_the_certificate_hash() {
        let a = Identity::generate().expect("generate");
        let b = Identity::generate().expect("generate");
        assert_ne!(a.node_id(), b.node_id());
        let copy = Identity::from_der(a.cert_der().to_vec(), a.key_der().to_vec());
        assert_eq!(copy.node_id(), a.node_id());
    }
}
