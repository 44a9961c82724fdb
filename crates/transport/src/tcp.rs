//! Plain TCP: each socket carries one exchange at a time; a client keeps a few idle sockets per peer so the
//! next exchange skips the handshake, and opens more when it runs exchanges in parallel.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use proto::{NodeId, TransportKind};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::{BoxFuture, Connection, Incoming, Listener, Stream, Transport, TransportConfig, TransportError};

/// Idle sockets a client keeps per peer.
const MAX_IDLE: usize = 16;

/// The TCP transport.
#[derive(Clone, Debug, Default)]
pub struct TcpTransport {
    config: TransportConfig,
}

impl TcpTransport {
    /// A TCP transport with these settings.
    pub fn new(config: TransportConfig) -> Self {
        Self { config }
    }

    async fn dial(&self, addr: SocketAddr) -> Result<TcpStream, TransportError> {
        let after = self.config.connect_timeout;
        let socket = tokio::time::timeout(after, TcpStream::connect(addr))
            .await
            .map_err(|_| TransportError::Timeout { addr, after })?
            .map_err(|e| TransportError::connect(addr, e))?;
        tune(&socket, &self.config)?;
        Ok(socket)
    }
}

impl Transport for TcpTransport {
    fn kind(&self) -> TransportKind {
        TransportKind::Tcp
    }

    fn bind(&self, addr: SocketAddr) -> BoxFuture<'_, Result<Box<dyn Listener>, TransportError>> {
        Box::pin(async move {
            let listener = TcpListener::bind(addr).await.map_err(|source| TransportError::Bind { addr, source })?;
            let local = listener.local_addr()?;
            Ok(Box::new(TcpServer { listener, local, config: self.config.clone() }) as Box<dyn Listener>)
        })
    }

    fn connect(
        &self,
        addr: SocketAddr,
        _expected: NodeId,
    ) -> BoxFuture<'_, Result<Arc<dyn Connection>, TransportError>> {
        Box::pin(async move {
            // Dial once now, so an unreachable peer fails here with a typed error, not at the first exchange.
            let socket = self.dial(addr).await?;
            let conn = TcpConnection { transport: self.clone(), addr, idle: Arc::new(Mutex::new(Vec::new())) };
            park(&conn.idle, socket);
            Ok(Arc::new(conn) as Arc<dyn Connection>)
        })
    }
}

struct TcpServer {
    listener: TcpListener,
    local: SocketAddr,
    config: TransportConfig,
}

impl Listener for TcpServer {
    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn accept(&mut self) -> BoxFuture<'_, Result<Box<dyn Incoming>, TransportError>> {
        Box::pin(async move {
            let (socket, remote) = self.listener.accept().await?;
            tune(&socket, &self.config)?;
            Ok(Box::new(TcpIncoming { remote, state: Slot::Ready(socket) }) as Box<dyn Incoming>)
        })
    }
}

/// Socket options of every connection, dialled or accepted.
fn tune(socket: &TcpStream, config: &TransportConfig) -> io::Result<()> {
    // Request frames are small and answered at once: never hold them back for coalescing.
    socket.set_nodelay(true)?;
    match &config.tcp_congestion {
        Some(name) => set_congestion(socket, name),
        None => Ok(()),
    }
}

#[cfg(any(target_os = "linux", target_os = "freebsd"))]
fn set_congestion(socket: &TcpStream, name: &str) -> io::Result<()> {
    socket2::SockRef::from(socket).set_tcp_congestion(name.as_bytes())
}

/// Elsewhere the system's congestion control cannot be chosen per socket.
#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
fn set_congestion(_socket: &TcpStream, _name: &str) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "choosing the TCP congestion control needs Linux or FreeBSD"))
}

/// Where the one socket of an accepted connection is: ready for the next exchange, lent to a stream that
/// will hand it back when its exchange finishes, or gone.
enum Slot {
    Ready(TcpStream),
    Lent(oneshot::Receiver<TcpStream>),
    Done,
}

struct TcpIncoming {
    remote: SocketAddr,
    state: Slot,
}

impl Incoming for TcpIncoming {
    fn remote_addr(&self) -> SocketAddr {
        self.remote
    }

    fn accept_stream(&mut self) -> BoxFuture<'_, Result<Option<Box<dyn Stream>>, TransportError>> {
        Box::pin(async move {
            let socket = match std::mem::replace(&mut self.state, Slot::Done) {
                Slot::Ready(socket) => socket,
                // A stream dropped without finishing abandons the socket: the connection is over.
                Slot::Lent(back) => match back.await {
                    Ok(socket) => socket,
                    Err(_) => return Ok(None),
                },
                Slot::Done => return Ok(None),
            };
            let (tx, rx) = oneshot::channel();
            self.state = Slot::Lent(rx);
            let on_finish = move |socket| {
                let _ = tx.send(socket);
            };
            Ok(Some(Box::new(Lent { socket, on_finish }) as Box<dyn Stream>))
        })
    }
}

type IdlePool = Arc<Mutex<Vec<(TcpStream, Instant)>>>;

struct TcpConnection {
    transport: TcpTransport,
    addr: SocketAddr,
    idle: IdlePool,
}

impl Connection for TcpConnection {
    fn remote_addr(&self) -> SocketAddr {
        self.addr
    }

    fn open(&self) -> BoxFuture<'_, Result<Box<dyn Stream>, TransportError>> {
        Box::pin(async move {
            let socket = match self.reusable() {
                Some(socket) => socket,
                None => self.transport.dial(self.addr).await?,
            };
            let idle = self.idle.clone();
            let on_finish = move |socket| park(&idle, socket);
            Ok(Box::new(Lent { socket, on_finish }) as Box<dyn Stream>)
        })
    }
}

impl TcpConnection {
    /// An idle socket the server has not yet timed out (we retire ours at half its idle timeout).
    fn reusable(&self) -> Option<TcpStream> {
        let max_age = self.transport.config.idle_timeout / 2;
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((socket, since)) = idle.pop() {
            if since.elapsed() < max_age {
                return Some(socket);
            }
        }
        None
    }
}

fn park(idle: &IdlePool, socket: TcpStream) {
    let mut idle = idle.lock().unwrap_or_else(|p| p.into_inner());
    if idle.len() < MAX_IDLE {
        idle.push((socket, Instant::now()));
    }
}

/// A socket lent to one exchange; `on_finish` takes it back.
struct Lent<F> {
    socket: TcpStream,
    on_finish: F,
}

impl<F: FnOnce(TcpStream) + Send + Unpin> Stream for Lent<F> {
    fn finish(self: Box<Self>) {
        let Lent { socket, on_finish } = *self;
        on_finish(socket);
    }
}

impl<F: Unpin> AsyncRead for Lent<F> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_read(cx, buf)
    }
}

impl<F: Unpin> AsyncWrite for Lent<F> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.socket).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.socket).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.socket.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_shutdown(cx)
    }
}
