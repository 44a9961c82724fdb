//! Trusted peers alone, over a transport that authenticates: a listener that takes channels only from
//! the node ids it is given (each proven by the peer's certificate), and a client that connects only to
//! them. Anyone else's channel has its first request answered [`ErrorCode::NotTrusted`] and is closed, so
//! that its peer can tell a refusal from a fault; each refused node is logged once a minute.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use proto::{ErrorCode, NodeId};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::frame_io::refuse_connection;
use crate::{Authenticated, Connection, Incoming, Listener, Transport, TransportError};

/// Refusals being answered at once; past these, an untrusted channel is closed unanswered.
const REFUSALS_AT_ONCE: usize = 16;
/// The time an untrusted channel gets to send its request and take the refusal.
const REFUSAL_TIME: Duration = Duration::from_secs(2);
/// A refused node is logged once within this.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// Refused nodes remembered for [`LOG_EVERY`], at most: a flood of ids forgets the oldest, never grows.
const LOGGED_NODES: usize = 1024;

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
        let (trusted, answering) = (self.trusted.clone(), Arc::new(Semaphore::new(REFUSALS_AT_ONCE)));
        Ok(Box::new(TrustListener { inner, trusted, answering, logged: HashMap::new() }))
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
    answering: Arc<Semaphore>,
    /// When each refused node was last logged.
    logged: HashMap<NodeId, Instant>,
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
                Some(proven) if self.trusted.contains(&proven.peer) => return Ok(Box::new(Vouched(incoming))),
                proven => self.refuse(incoming, proven),
            }
        }
    }
}

/// A channel from a trusted node.
struct Vouched(Box<dyn Incoming>);

#[async_trait]
impl Incoming for Vouched {
    fn remote_addr(&self) -> SocketAddr {
        self.0.remote_addr()
    }

    fn authenticated(&self) -> Option<Authenticated> {
        self.0.authenticated()
    }

    async fn accept_stream(&mut self) -> Result<Option<Box<dyn crate::Stream>>, TransportError> {
        self.0.accept_stream().await
    }

    fn vouched(&self) -> bool {
        true
    }
}

impl TrustListener {
    /// Answers an untrusted channel's request with a refusal, off the accept loop and within bounds.
    fn refuse(&mut self, incoming: Box<dyn Incoming>, proven: Option<Authenticated>) {
        let addr = incoming.remote_addr();
        match proven {
            Some(proven) => self.log_once(proven.peer, addr),
            None => tracing::debug!(%addr, "unauthenticated channel refused"),
        }
        let Ok(permit) = self.answering.clone().try_acquire_owned() else { return };
        tokio::spawn(async move {
            let (code, message) = (ErrorCode::NotTrusted, "this node serves only the peers it trusts");
            refuse_connection(incoming, code, message, REFUSAL_TIME).await;
            drop(permit);
        });
    }

    fn log_once(&mut self, peer: NodeId, addr: SocketAddr) {
        let now = Instant::now();
        if self.logged.get(&peer).is_some_and(|at| now - *at < LOG_EVERY) {
            return;
        }
        if self.logged.len() >= LOGGED_NODES {
            self.logged.retain(|_, at| now - *at < LOG_EVERY);
            if self.logged.len() >= LOGGED_NODES {
                self.logged.clear();
            }
        }
        self.logged.insert(peer, now);
        tracing::warn!(
            target: "p2pnode::server",
            "refused node {peer} at {}: it is not trusted here (told once a minute per node)",
            addr.ip()
        );
    }
}
