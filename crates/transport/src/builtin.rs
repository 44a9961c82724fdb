//! This crate's transports by name, for wiring code that picks them at run time (a command line, a
//! benchmark): the node itself never names one.

use std::sync::Arc;

use crate::quic::QuicTransport;
use crate::tcp::TcpTransport;
use crate::tls::TlsTransport;
use crate::{Identity, Transport, TransportConfig};

/// The names of this crate's network transports, the recommended one first.
pub const NAMES: [&str; 3] = ["tls", "tcp", "quic"];

/// The transport named `name` as a client uses it, proving `identity` where it authenticates.
pub fn client(name: &str, config: TransportConfig, identity: Identity) -> Option<Arc<dyn Transport>> {
    Some(match name {
        "tls" => Arc::new(TlsTransport::new(config, identity)),
        "tcp" => Arc::new(TcpTransport::new(config)),
        "quic" => Arc::new(QuicTransport::new(config, identity)),
        _ => return None,
    })
}

/// What a serving node listens on to be reachable by all of them: tls, taking plain tcp clients on the
/// same TCP port, and quic.
pub fn serving(config: TransportConfig, identity: &Identity) -> Vec<Arc<dyn Transport>> {
    vec![
        Arc::new(TlsTransport::new(config.clone(), identity.clone()).with_plain_tcp()),
        Arc::new(QuicTransport::new(config, identity.clone())),
    ]
}
