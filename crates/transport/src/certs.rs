//! The TLS 1.3 settings shared by tls and quic: each end presents its node certificate, and each accepts
//! the other's only if it hashes to a node id (the client: to the id the server announced), with the
//! handshake signatures checked against the certificate's key. No certificate authority is involved:
//! there is no "accept any certificate" path, and names in certificates are never looked at.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use proto::NodeId;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::{ALPN, Identity, node_id_of};

/// The crypto of every handshake and of the traffic after it: ring's, with AES-128-GCM preferred (ring
/// puts AES-256 first). Both give more security than a LAN tool needs; AES-128 encrypts bulk data a
/// quarter faster, and tls and quic both spend their CPU there.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.sort_by_key(|s| s.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    Arc::new(provider)
}

/// A server's TLS settings: its certificate, and a client certificate required of every client.
pub(crate) fn server_config(identity: &Identity) -> Result<rustls::ServerConfig, rustls::Error> {
    let clients = Arc::new(AnyNodeClient { provider: provider() });
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(clients)
        .with_single_cert(vec![identity.cert()], identity.key())?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    Ok(tls)
}

/// A client's TLS settings toward one server, checked by `verifier`.
pub(crate) fn client_config(
    identity: &Identity,
    verifier: Arc<PinnedServer>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![identity.cert()], identity.key())?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    Ok(tls)
}

/// The node id a peer's certificate chain proves (its first certificate).
pub(crate) fn peer_id(chain: Option<&[CertificateDer<'_>]>) -> Option<NodeId> {
    chain?.first().map(|cert| node_id_of(cert))
}

/// The handshake signature checks of both verifiers: made with the certificate's key, by the provider's
/// algorithms.
macro_rules! signature_checks {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider.signature_verification_algorithms.supported_schemes()
        }
    };
}

/// Accepts a server only if its certificate hashes to the expected node id; remembers a mismatch, so
/// the caller can say "impostor" rather than "handshake failed".
#[derive(Debug)]
pub(crate) struct PinnedServer {
    expected: NodeId,
    provider: Arc<CryptoProvider>,
    mismatch: AtomicBool,
}

impl PinnedServer {
    pub(crate) fn new(expected: NodeId) -> Arc<Self> {
        Arc::new(Self { expected, provider: provider(), mismatch: AtomicBool::new(false) })
    }

    /// Whether the server presented another node's certificate.
    pub(crate) fn mismatched(&self) -> bool {
        self.mismatch.load(Ordering::Relaxed)
    }
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if node_id_of(end_entity) == self.expected {
            return Ok(ServerCertVerified::assertion());
        }
        self.mismatch.store(true, Ordering::Relaxed);
        Err(rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure))
    }

    signature_checks!();
}

/// Takes any client certificate as proof of the node id it hashes to (which nodes may do what is decided
/// above the transport), once the client proved it holds the certificate's key.
#[derive(Debug)]
struct AnyNodeClient {
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AnyNodeClient {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    signature_checks!();
}

/// 32 random bytes from the provider's generator.
pub(crate) fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    // The generator fails only where the system has no entropy source at all: then nothing else would
    // work either, and a memory network's binding is a test's.
    let _ = provider().secure_random.fill(&mut bytes);
    bytes
}
