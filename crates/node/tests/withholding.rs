//! Peers that take a connection slot and withhold: readers that ask for a chunk and never read it, QUIC
//! connections that never ask anything. Each loses its slot within the idle timeout, so the same host's
//! next connection is answered instead of being turned away for good.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Lan, bytes, free_udp_port, net, serve, temp};
use node::{DownloadOptions, MAX_CONNECTIONS_PER_PEER, NodeId, StateKey, download};
use proto::{Request, Response};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};
use transport::Connection;
use transport::frame_io::{read_response, write_request};

/// The serving node's idle timeout in these tests, short so they end quickly.
const IDLE: Duration = Duration::from_secs(1);
/// How long a test waits for a withheld slot to come back (the idle timeout and then some).
const BOUND: Duration = Duration::from_secs(15);
/// Chunks each withholding reader asks for: 8 MiB of answers.
const ASKED: usize = 32;
/// The host withholding connections come from.
const WITHHOLDER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 4);

fn quick_net(kind: &'static str) -> Lan {
    let mut net = net(kind, free_udp_port());
    net.idle_timeout = IDLE;
    net
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_readers_that_never_read_lose_their_answers_and_slots() {
    let net = quick_net("tcp");
    let dir = temp();
    std::fs::write(dir.path().join("big.bin"), bytes(1 << 20, 3)).expect("write");
    let node = serve(&net, dir.path(), "victim").await;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, node.port));
    let (file, entry, _) = net.survey().expect("survey").find("big.bin").await.expect("listed");
    let len = node::chunk_size_for(entry.size);

    let mut readers = withhold(addr, WITHHOLDER, Request::Chunk { file, index: 0, offset: 0, len }).await;
    let answered = wait_until_answered(|| tcp_catalogue(addr)).await;
    assert!(answered, "the host's slots stayed taken by readers that never read");
    // The slot that came back was one the node cut; which one depends on scheduling, and a reader read
    // before the node cut it gets everything, so each is read until one shows the cut.
    let asked = ASKED * len as usize;
    let mut sent = Vec::new();
    for reader in &mut readers {
        sent.push(read_all(reader).await);
        if sent.last().is_some_and(|got| *got < asked) {
            break;
        }
    }
    assert!(sent.iter().any(|got| *got < asked), "the node gave up on no stalled answer ({sent:?} of {asked} bytes)");
    node.stop().await;
}

/// Two hosts that hold every slot they get with answers they never read (more than the node's whole send
/// buffer budget) leave enough of it to everyone else: a download from a third host completes at once,
/// not after the idle timeout.
#[tokio::test(flavor = "multi_thread")]
async fn readers_that_never_read_leave_buffers_to_other_hosts() {
    let net = net("tcp", free_udp_port());
    let dir = temp();
    let data = bytes(4 << 20, 5);
    std::fs::write(dir.path().join("big.bin"), &data).expect("write");
    let node = serve(&net, dir.path(), "victim").await;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, node.port));
    let (file, entry, sources) = net.survey().expect("survey").find("big.bin").await.expect("listed");
    let request = Request::Chunk { file, index: 0, offset: 0, len: node::chunk_size_for(entry.size) };
    let _first = withhold(addr, WITHHOLDER, request.clone()).await;
    let _second = withhold(addr, Ipv4Addr::new(127, 0, 0, 6), request).await;

    let out = temp();
    let path =
        download(file, &sources, out.path(), &DownloadOptions::new(StateKey::random()).timeout(net.timeout), |_| {})
            .await
            .expect("another host downloads while two hold their slots");
    assert!(std::fs::read(path).expect("read") == data);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn quic_connections_that_ask_nothing_lose_their_slots() {
    let net = quick_net("quic");
    let dir = temp();
    let node = serve(&net, dir.path(), "victim").await;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, node.port));

    // Every slot of this host, held by clients that keep their connections alive and never open a stream.
    let mut silent = Vec::new();
    for _ in 0..MAX_CONNECTIONS_PER_PEER {
        let transport = common::client("quic", &net);
        silent.push((transport.connect(addr, node.id).await.expect("connect"), transport));
    }

    let answered = wait_until_answered(|| quic_catalogue(&net, addr, node.id)).await;
    assert!(answered, "the host's slots stayed taken by connections that ask nothing");
    node.stop().await;
}

/// Takes every connection slot `host` gets at `addr`, each asking [`ASKED`] times for `request`, more than
/// the kernel's buffers hold (at most 4 MiB each way), through a tiny receive buffer it never reads.
async fn withhold(addr: SocketAddr, host: Ipv4Addr, request: Request) -> Vec<TcpStream> {
    let mut readers = Vec::new();
    for _ in 0..MAX_CONNECTIONS_PER_PEER {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("small receive buffer");
        socket.bind((host, 0).into()).expect("bind");
        let mut s = socket.connect(addr).await.expect("connect");
        for _ in 0..ASKED {
            write_request(&mut s, &request).await.expect("request");
        }
        readers.push(s);
    }
    readers
}

/// Asks `exchange` until it succeeds, for at most [`BOUND`].
async fn wait_until_answered<F: Future<Output = bool>>(mut exchange: impl FnMut() -> F) -> bool {
    let start = Instant::now();
    while start.elapsed() < BOUND {
        if exchange().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// Whether a new connection from the withholding host gets the catalogue.
async fn tcp_catalogue(addr: SocketAddr) -> bool {
    let Ok(socket) = TcpSocket::new_v4() else { return false };
    if socket.bind((WITHHOLDER, 0).into()).is_err() {
        return false;
    }
    let Ok(Ok(mut s)) = tokio::time::timeout(IDLE, socket.connect(addr)).await else { return false };
    catalogue_over(&mut s).await
}

/// Whether a new QUIC connection (from the same host as the silent ones) gets the catalogue.
async fn quic_catalogue(net: &common::Lan, addr: SocketAddr, id: NodeId) -> bool {
    let transport = common::client("quic", net);
    let Ok(connection): Result<Arc<dyn Connection>, _> = transport.connect(addr, id).await else { return false };
    let Ok(mut s) = connection.open().await else { return false };
    catalogue_over(&mut s).await
}

async fn catalogue_over<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(s: &mut S) -> bool {
    let exchange = async {
        write_request(s, &Request::Catalogue).await.ok()?;
        read_response(s).await.ok()
    };
    matches!(tokio::time::timeout(IDLE, exchange).await, Ok(Some(Response::Ok { .. })))
}

/// Reads what the node sent on `s` until it closed the connection.
async fn read_all(s: &mut TcpStream) -> usize {
    let mut got = Vec::new();
    let _ = tokio::time::timeout(BOUND, s.read_to_end(&mut got)).await;
    got.len()
}
