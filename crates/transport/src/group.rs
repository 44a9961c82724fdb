//! A private group over any transport that authenticates: on every channel, each end proves it holds
//! the group key before a byte of the exchange passes, with a proof bound to that very channel (its
//! exported keying material, [`Authenticated::binding`]). An outsider can neither ask nor answer, and a
//! proof relayed from another channel proves nothing. A client's proof leads its first write and a
//! server's its first answer, so a proven exchange costs 64 bytes and no round trip. A peer without the
//! key gets its channel closed, without a word.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use async_trait::async_trait;
use proto::{GroupKey, NodeId, Role};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::{Authenticated, Connection, Incoming, Listener, Stream, Transport, TransportError};

/// `inner`, its channels open only to members of one group.
pub struct GroupTransport {
    inner: Arc<dyn Transport>,
    key: Arc<GroupKey>,
}

impl GroupTransport {
    /// Members of the group of `key` alone, over `inner`, which must authenticate its channels.
    pub fn new(inner: Arc<dyn Transport>, key: GroupKey) -> Result<Self, TransportError> {
        Ok(Self { inner: crate::authenticating(inner)?, key: Arc::new(key) })
    }
}

#[async_trait]
impl Transport for GroupTransport {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn authenticates(&self) -> bool {
        true
    }

    async fn bind(&self, addr: SocketAddr) -> Result<Box<dyn Listener>, TransportError> {
        let inner = self.inner.bind(addr).await?;
        Ok(Box::new(GroupListener { inner, key: self.key.clone() }))
    }

    async fn connect(&self, addr: SocketAddr, expected: NodeId) -> Result<Arc<dyn Connection>, TransportError> {
        let inner = self.inner.connect(addr, expected).await?;
        Ok(Arc::new(GroupConnection { inner, key: self.key.clone() }))
    }
}

struct GroupListener {
    inner: Box<dyn Listener>,
    key: Arc<GroupKey>,
}

#[async_trait]
impl Listener for GroupListener {
    fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> Result<Box<dyn Incoming>, TransportError> {
        let inner = self.inner.accept().await?;
        Ok(Box::new(GroupIncoming { inner, key: self.key.clone() }))
    }
}

struct GroupIncoming {
    inner: Box<dyn Incoming>,
    key: Arc<GroupKey>,
}

#[async_trait]
impl Incoming for GroupIncoming {
    fn remote_addr(&self) -> SocketAddr {
        self.inner.remote_addr()
    }

    fn authenticated(&self) -> Option<Authenticated> {
        self.inner.authenticated()
    }

    async fn accept_stream(&mut self) -> Result<Option<Box<dyn Stream>>, TransportError> {
        let stream = self.inner.accept_stream().await?;
        Ok(stream.map(|s| Box::new(Proven::new(s, &self.key, Role::Server)) as Box<dyn Stream>))
    }
}

struct GroupConnection {
    inner: Arc<dyn Connection>,
    key: Arc<GroupKey>,
}

#[async_trait]
impl Connection for GroupConnection {
    fn remote_addr(&self) -> SocketAddr {
        self.inner.remote_addr()
    }

    async fn open(&self) -> Result<Box<dyn Stream>, TransportError> {
        Ok(Box::new(Proven::new(self.inner.open().await?, &self.key, Role::Client)))
    }
}

/// A stream whose first bytes each way are the two ends' proofs.
struct Proven {
    inner: Box<dyn Stream>,
    /// Our proof and how much of it went out; `None` on a channel that proves no binding.
    ours: Option<[u8; 32]>,
    sent: usize,
    /// The proof the peer must send, and how much of it arrived.
    expected: [u8; 32],
    theirs: [u8; 32],
    got: usize,
}

impl Proven {
    fn new(inner: Box<dyn Stream>, key: &GroupKey, role: Role) -> Self {
        let peer = match role {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        };
        let binding = inner.authenticated().map(|a| a.binding);
        let ours = binding.map(|b| key.proof(role, &b));
        let expected = binding.map_or([0; 32], |b| key.proof(peer, &b));
        Self { inner, ours, sent: 0, expected, theirs: [0; 32], got: 0 }
    }

    /// Sends what is left of our proof.
    fn poll_prove(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(ours) = self.ours else { return Poll::Ready(Err(unproven("the channel proves no binding"))) };
        while self.sent < ours.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &ours[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        Poll::Ready(Ok(()))
    }
}

fn unproven(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, format!("not a member of this group: {why}"))
}

impl AsyncRead for Proven {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.ours.is_none() {
            return Poll::Ready(Err(unproven("the channel proves no binding")));
        }
        while this.got < this.theirs.len() {
            let mut proof = ReadBuf::new(&mut this.theirs[this.got..]);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut proof))?;
            match proof.filled().len() {
                // Closed before a byte: an exchange that never started, which the reader sees as such.
                0 if this.got == 0 => return Poll::Ready(Ok(())),
                0 => return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into())),
                n => this.got += n,
            }
            if this.got == this.theirs.len() && !same(&this.theirs, &this.expected) {
                return Poll::Ready(Err(unproven("wrong proof")));
            }
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Proven {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_prove(cx))?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_prove(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Stream for Proven {
    fn finish(self: Box<Self>) {
        self.inner.finish()
    }

    fn authenticated(&self) -> Option<Authenticated> {
        self.inner.authenticated()
    }
}

/// Whether two proofs are equal, in time that does not depend on where they differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}
