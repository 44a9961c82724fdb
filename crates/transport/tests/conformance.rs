//! One conformance suite, written once and run against every transport over loopback.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::{NodeId, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use transport::frames::{read_request, read_response, write_request, write_response};
use transport::quic::QuicTransport;
use transport::tcp::TcpTransport;
use transport::{Connection, Identity, Incoming, Transport, TransportConfig, TransportError};

const CONNECT_TIMEOUT: Duration = Duration::from_millis(800);

/// A transport under test: the server side (with an identity where the transport needs one), the client
/// side, and the id the server proves.
struct Backend {
    server: Arc<dyn Transport>,
    client: Arc<dyn Transport>,
    id: NodeId,
}

fn backends() -> Vec<Backend> {
    let config = TransportConfig {
        connect_timeout: CONNECT_TIMEOUT,
        idle_timeout: Duration::from_secs(5),
        tcp_congestion: None,
    };
    let identity = Identity::generate().expect("identity");
    let id = identity.node_id();
    vec![
        Backend {
            server: Arc::new(TcpTransport::new(config.clone())),
            client: Arc::new(TcpTransport::new(config.clone())),
            id,
        },
        Backend {
            server: Arc::new(QuicTransport::new(config.clone(), Some(identity))),
            client: Arc::new(QuicTransport::new(config, None)),
            id,
        },
    ]
}

/// How the test server answers a chunk request of `len` bytes.
#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    /// `len` bytes of [`pattern`].
    Serve,
    /// Announces `len` bytes, sends half, abandons the stream.
    HalfThenClose,
    /// Reads the request and never answers.
    Silent,
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

async fn spawn_server(t: &Arc<dyn Transport>, behaviour: Behaviour) -> SocketAddr {
    let mut listener = t.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await.expect("bind");
    let addr = listener.local_addr();
    tokio::spawn(async move {
        while let Ok(incoming) = listener.accept().await {
            tokio::spawn(serve(incoming, behaviour));
        }
    });
    addr
}

async fn serve(mut incoming: Box<dyn Incoming>, behaviour: Behaviour) {
    while let Ok(Some(mut stream)) = incoming.accept_stream().await {
        tokio::spawn(async move {
            let Ok(Some(Request::Chunk { len, .. })) = read_request(&mut stream).await else { return };
            if behaviour == Behaviour::Silent {
                return std::future::pending().await;
            }
            let data = pattern(len as usize);
            let sent = if behaviour == Behaviour::Serve { &data[..] } else { &data[..data.len() / 2] };
            write_response(&mut stream, &Response::Ok { len: u64::from(len) }).await.expect("header");
            stream.write_all(sent).await.expect("body");
            stream.flush().await.expect("flush");
            if behaviour == Behaviour::Serve {
                stream.finish();
            }
        });
    }
}

/// One exchange: ask for `len` bytes, read them all.
async fn fetch(conn: &dyn Connection, len: u32) -> Result<Vec<u8>, TransportError> {
    let mut stream = conn.open().await?;
    write_request(&mut stream, &Request::Chunk { file: proto::FileId([0; 32]), index: 0, offset: 0, len }).await?;
    let Response::Ok { len: announced } = read_response(&mut stream).await? else { panic!("server refused") };
    let mut body = vec![0u8; announced as usize];
    stream.read_exact(&mut body).await?;
    stream.finish();
    Ok(body)
}

async fn connect(b: &Backend, behaviour: Behaviour) -> Arc<dyn Connection> {
    let addr = spawn_server(&b.server, behaviour).await;
    b.client.connect(addr, b.id).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread")]
async fn exchanges_round_trip_on_one_connection() {
    for b in backends() {
        let conn = connect(&b, Behaviour::Serve).await;
        for len in [0, 1, 1000, 300_000] {
            assert!(fetch(&*conn, len).await.expect("fetch") == pattern(len as usize), "{:?} {len}", b.client.kind());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn many_concurrent_exchanges() {
    for b in backends() {
        let conn = connect(&b, Behaviour::Serve).await;
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..32u32 {
            let conn = conn.clone();
            tasks.spawn(async move { fetch(&*conn, 65_536 + i).await.map(|d| d == pattern(65_536 + i as usize)) });
        }
        while let Some(done) = tasks.join_next().await {
            assert!(done.expect("task").expect("fetch"), "{:?}", b.client.kind());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn largest_chunk_arrives_whole() {
    for b in backends() {
        let conn = connect(&b, Behaviour::Serve).await;
        let len = proto::MAX_CHUNK_SIZE;
        assert!(fetch(&*conn, len).await.expect("fetch") == pattern(len as usize), "{:?}", b.client.kind());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn peer_closing_mid_chunk_is_an_error() {
    for b in backends() {
        let conn = connect(&b, Behaviour::HalfThenClose).await;
        let result = tokio::time::timeout(Duration::from_secs(5), fetch(&*conn, 1_000_000)).await;
        assert!(matches!(result, Ok(Err(_))), "{:?}: a cut exchange must fail, not hang or succeed", b.client.kind());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_peer_is_bounded_by_the_callers_timeout() {
    for b in backends() {
        let conn = connect(&b, Behaviour::Silent).await;
        let started = Instant::now();
        let result = tokio::time::timeout(Duration::from_millis(500), fetch(&*conn, 1000)).await;
        assert!(result.is_err(), "{:?}: nothing may arrive from a silent peer", b.client.kind());
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_peers_fail_within_the_connect_timeout() {
    for b in backends() {
        // A port where nothing listens (refused), and one whose socket never answers (black hole).
        let closed = {
            let s = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
            let port = s.local_addr().expect("addr").port();
            drop(s);
            let tcp = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port));
            drop(tcp);
            SocketAddr::from((Ipv4Addr::LOCALHOST, port))
        };
        let black_hole = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let silent_udp = black_hole.local_addr().expect("addr");
        for addr in [closed, silent_udp] {
            let started = Instant::now();
            let result = b.client.connect(addr, b.id).await;
            let elapsed = started.elapsed();
            match (&result, b.client.kind()) {
                (Err(TransportError::Refused { .. }), proto::TransportKind::Tcp) => {}
                (Err(TransportError::Timeout { .. }), proto::TransportKind::Quic) => {}
                (other, kind) => panic!(
                    "{kind:?} to {addr}: expected refused (tcp) or timeout (quic), got {:?}",
                    other.as_ref().err()
                ),
            }
            assert!(elapsed < CONNECT_TIMEOUT + Duration::from_millis(500), "{elapsed:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_bytes_do_not_stop_the_server() {
    for b in backends() {
        let addr = spawn_server(&b.server, Behaviour::Serve).await;
        let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
        match b.client.kind() {
            proto::TransportKind::Tcp => {
                let mut raw = tokio::net::TcpStream::connect(addr).await.expect("connect");
                raw.write_all(&garbage).await.expect("write");
                let mut sink = Vec::new();
                let closed = tokio::time::timeout(Duration::from_secs(2), raw.read_to_end(&mut sink)).await;
                assert!(closed.is_ok(), "the server closes a connection that speaks garbage");
            }
            proto::TransportKind::Quic => {
                let raw = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind");
                for chunk in garbage.chunks(1200) {
                    raw.send_to(chunk, addr).await.expect("send");
                }
            }
        }
        let conn = b.client.connect(addr, b.id).await.expect("connect after garbage");
        assert!(fetch(&*conn, 5000).await.expect("fetch") == pattern(5000), "{:?}", b.client.kind());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn quic_refuses_a_peer_whose_certificate_is_not_its_id() {
    let b = backends().pop().expect("quic backend");
    let addr = spawn_server(&b.server, Behaviour::Serve).await;
    let impostor_claim = NodeId([0x42; 32]);
    let result = b.client.connect(addr, impostor_claim).await;
    assert!(matches!(result, Err(TransportError::IdentityMismatch { expected, .. }) if expected == impostor_claim));
}
