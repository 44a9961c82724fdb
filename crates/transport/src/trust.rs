//! Trusted peers alone, over a transport that authenticates: a listener that takes channels only from
//! the node ids it is given (each proven by the peer's certificate), and a client that connects only to
//! them. Anyone else's channel is closed as soon as its handshake shows who it is.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use proto::NodeId;

use crate::{Connection, Incoming, Listener, Transport, TransportError};

/// `inner`, open only to the node ids in `trusted`.
pub struct TrustTransport {
    inner: Arc<dyn Transport>,
    trusted: Arc<HashSet<NodeId>>,
}

impl TrustTransport {
    /// Channels of `inner`, which must authenticate them, to and from `trusted` alone.
    pub fn new(inner: Arc<dyn Transport>, trusted: HashSet<NodeId>) -> Result<Self, TransportError> {
        Ok(Self { inner: crate::authenticating(inner)?, trusted: Arc::new(trusted) })
    }
}

#[async_trait]
impl Transport for TrustTransport {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn authenticates(&self) -> bool {
        true
    }

    async fn bind(&self, addr: SocketAddr) -> Result<Box<dyn Listener>, TransportError> {
        let inner = self.inner.bind(addr).await?;
        Ok(Box::new(TrustListener { inner, trusted: self.trusted.clone() }))
    }

    async fn connect(&self, addr: SocketAddr, expected: NodeId) -> Result<Arc<dyn Connection>, TransportError> {
        if !self.trusted.contains(&expected) {
            return Err(TransportError::NotTrusted(expected));
        }
        // The transport fails the handshake unless the peer proves `expected`.
        self.inner.connect(addr, expected).await
    }
}

struct TrustListener {
    inner: Box<dyn Listener>,
    trusted: Arc<HashSet<NodeId>>,
}

#[async_trait]
impl Listener for TrustListener {
    fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> Result<Box<dyn Incoming>, TransportError> {
        loop {
            let incoming = self.inner.accept().await?;
            match incoming.authenticated() {
                Some(proven) if self.trusted.contains(&proven.peer) => return Ok(incoming),
                proven => {
                    let peer = proven.map(|p| p.peer.short());
                    tracing::debug!(addr = %incoming.remote_addr(), ?peer, "untrusted peer's channel closed");
                }
            }
        }
    }
}
