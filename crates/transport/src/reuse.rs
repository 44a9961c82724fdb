//! A client transport that hands out again the connections it made: the files of one `get` (and the
//! survey before them) share one connection per peer instead of paying a handshake each. Wraps any
//! transport; a connection that fails to open a stream is forgotten, so the next `connect` dials anew.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use async_trait::async_trait;
use proto::NodeId;

use crate::{Connection, Listener, Stream, Transport, TransportError};

/// Each connection made, by peer address and the node id it was made for.
type Made = Mutex<HashMap<(SocketAddr, NodeId), Arc<dyn Connection>>>;

/// `inner`, with its connections kept and reused.
pub struct Reuse {
    inner: Arc<dyn Transport>,
    made: Arc<Made>,
}

impl Reuse {
    /// Reuses the connections `inner` makes.
    pub fn new(inner: Arc<dyn Transport>) -> Self {
        Self { inner, made: Arc::default() }
    }
}

fn lock(made: &Made) -> MutexGuard<'_, HashMap<(SocketAddr, NodeId), Arc<dyn Connection>>> {
    // The map is only inserted into and removed from: a poisoned lock still holds a consistent one.
    made.lock().unwrap_or_else(|p| p.into_inner())
}

#[async_trait]
impl Transport for Reuse {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn also_serves(&self) -> Vec<String> {
        self.inner.also_serves()
    }

    fn authenticates(&self) -> bool {
        self.inner.authenticates()
    }

    async fn bind(&self, addr: SocketAddr) -> Result<Box<dyn Listener>, TransportError> {
        self.inner.bind(addr).await
    }

    async fn connect(&self, addr: SocketAddr, expected: NodeId) -> Result<Arc<dyn Connection>, TransportError> {
        if let Some(made) = lock(&self.made).get(&(addr, expected)) {
            return Ok(made.clone());
        }
        self.reconnect(addr, expected).await
    }

    async fn reconnect(&self, addr: SocketAddr, expected: NodeId) -> Result<Arc<dyn Connection>, TransportError> {
        let key = (addr, expected);
        // Two callers may dial at once; the later connection replaces the earlier in the map, and both work.
        let inner = self.inner.connect(addr, expected).await?;
        let shared: Arc<dyn Connection> = Arc::new(Kept { inner, key, made: Arc::downgrade(&self.made) });
        lock(&self.made).insert(key, shared.clone());
        Ok(shared)
    }
}

/// A connection kept for reuse, forgotten once it fails to open a stream.
struct Kept {
    inner: Arc<dyn Connection>,
    key: (SocketAddr, NodeId),
    made: Weak<Made>,
}

#[async_trait]
impl Connection for Kept {
    fn remote_addr(&self) -> SocketAddr {
        self.inner.remote_addr()
    }

    async fn open(&self) -> Result<Box<dyn Stream>, TransportError> {
        let opened = self.inner.open().await;
        if opened.is_err()
            && let Some(made) = self.made.upgrade()
        {
            let mut made = lock(&made);
            // Only this connection: a fresh one may hold the key by now.
            if made.get(&self.key).is_some_and(|m| std::ptr::addr_eq(Arc::as_ptr(m), self as *const Self)) {
                made.remove(&self.key);
            }
        }
        opened
    }
}
