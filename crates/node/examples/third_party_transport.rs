//! A transport written outside this workspace's transport crate, as a newcomer would: it wraps TCP and
//! counts the bytes it carries (a metrics plug-in), passes the public conformance suite, and a node serves
//! a file over it. Copy this file to start a transport of your own.
//!
//! `cargo run -p node --example third_party_transport`

use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use std::time::Duration;

use node::{Client, ClientConfig, NetConfig, Node, ServeConfig, Source, StateKey};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use transport::tcp::TcpTransport;
use transport::{Connection, Listener, NodeId, Stream, Transport, TransportError, async_trait};

/// Plain TCP underneath; every byte read through it counted.
struct Counted {
    inner: TcpTransport,
    received: Arc<AtomicU64>,
}

#[async_trait]
impl Transport for Counted {
    fn name(&self) -> &str {
        "counted-tcp"
    }

    fn authenticates(&self) -> bool {
        false
    }

    async fn bind(&self, addr: SocketAddr) -> Result<Box<dyn Listener>, TransportError> {
        self.inner.bind(addr).await
    }

    async fn connect(&self, addr: SocketAddr, expected: NodeId) -> Result<Arc<dyn Connection>, TransportError> {
        let inner = self.inner.connect(addr, expected).await?;
        Ok(Arc::new(CountedConnection { inner, received: self.received.clone() }))
    }
}

struct CountedConnection {
    inner: Arc<dyn Connection>,
    received: Arc<AtomicU64>,
}

#[async_trait]
impl Connection for CountedConnection {
    fn remote_addr(&self) -> SocketAddr {
        self.inner.remote_addr()
    }

    async fn open(&self) -> Result<Box<dyn Stream>, TransportError> {
        Ok(Box::new(CountedStream { inner: self.inner.open().await?, received: self.received.clone() }))
    }
}

struct CountedStream {
    inner: Box<dyn Stream>,
    received: Arc<AtomicU64>,
}

impl Stream for CountedStream {
    fn finish(self: Box<Self>) {
        self.inner.finish();
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.received.fetch_add((buf.filled().len() - before) as u64, Ordering::Relaxed);
        polled
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn counted() -> Arc<Counted> {
    Arc::new(Counted { inner: TcpTransport::default(), received: Arc::default() })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. The conformance suite, on our transport.
    let passed = transport::conformance::run(|| transport::conformance::Subject {
        server: counted(),
        server_id: NodeId([1; 32]),
        client: counted(),
        client_id: NodeId([2; 32]),
        bind: (Ipv4Addr::LOCALHOST, 0).into(),
        unreachable: (Ipv4Addr::LOCALHOST, 9).into(),
        connect_timeout: transport::TransportConfig::default().connect_timeout,
    })
    .await;
    println!("conformance: {passed} of {} cases passed", transport::conformance::CASES);

    // 2. A node serving a file over it (discovery in memory, as the example needs no LAN).
    let shared = tempfile::tempdir()?;
    std::fs::write(shared.path().join("hello.txt"), b"hello from a third-party transport")?;
    let net = NetConfig::default().announce_interval(Duration::from_secs(1)).timeout(Duration::from_secs(3));
    let config = ServeConfig::new(shared.path()).net(net.clone()).name("example");
    let lan = discovery::memory::MemoryLan::default();
    let builder = Node::builder(config)?;
    let id = builder.identity().node_id();
    let node =
        builder.transport(counted()).discovery(Box::new(lan.join(Ipv4Addr::LOCALHOST.into(), id, true))).bind().await?;
    let (_, addr) = node.local_addrs()[0].clone();
    node.spawn_ready(std::future::pending()).await;

    // 3. A client that lists and downloads over it.
    let client = counted();
    let asker = lan.join(Ipv4Addr::LOCALHOST.into(), NodeId([9; 32]), false);
    let lister = Client::builder(ClientConfig::default().net(net.clone()));
    let lister = lister.transport(client.clone()).discovery(Box::new(asker)).build()?;
    let (file, _, sources) = lister.find("hello.txt").await?;
    assert_eq!(sources.iter().map(|s| s.addr.port()).collect::<Vec<_>>(), vec![addr.port()]);
    let out = tempfile::tempdir()?;
    let sources: Vec<Source> = sources;
    let path = node::download(
        file,
        &sources,
        out.path(),
        &node::DownloadOptions::new(StateKey::random()).timeout(net.timeout),
        |_| {},
    )
    .await?;
    println!(
        "downloaded {} over counted-tcp; {} bytes received through it",
        path.display(),
        client.received.load(Ordering::Relaxed)
    );
    Ok(())
}
