//! Hostile peers: a running node meets random datagrams, garbage and truncated frames, oversized lengths,
//! requests for files it does not share and half-open connections, and still serves a valid download; a
//! downloader meets a server whose file names try to escape the downloads folder.

mod common;

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{bytes, free_udp_port, net, serve, temp};
use node::{
    DownloadOptions, FileId, Identity, MAX_CONNECTIONS, MAX_CONNECTIONS_PER_PEER, Node, NodeId, ServeConfig, StateKey,
    download,
};
use proto::{ErrorCode, Manifest, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use transport::TrustTransport;
use transport::frame_io::{read_request, read_response, write_request, write_response};

#[tokio::test(flavor = "multi_thread")]
async fn tcp_node_survives_hostile_bytes() {
    survives_hostile_bytes("tcp").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn quic_node_survives_hostile_bytes() {
    survives_hostile_bytes("quic").await;
}

async fn survives_hostile_bytes(kind: &'static str) {
    let net = net(kind, free_udp_port());
    let dir = temp();
    let data = bytes(3 * 256 * 1024 + 5, 7);
    std::fs::write(dir.path().join("target.bin"), &data).expect("write");
    let node = serve(&net, dir.path(), "victim").await;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, node.port));

    random_datagrams(net.discovery_port).await;
    random_datagrams(node.port).await;
    for attack in [garbage(), oversized_length(), truncated_frame(), wrong_magic()] {
        let closed = send_and_wait_for_close(addr, &attack).await;
        assert!(closed, "{kind}: the node closes a connection that sent {} bad bytes", attack.len());
    }
    assert_refused(addr, &Request::Manifest(FileId([9; 32])), ErrorCode::NotFound).await;
    a_newer_peer_asking_an_unknown_request_is_answered_bad_request_and_falls_back(addr).await;
    assert_refused(addr, &Request::Chunk { file: FileId([9; 32]), index: 0, offset: 0, len: 1 }, ErrorCode::NotFound)
        .await;
    let (held, refused) = half_open_connections(2, addr, MAX_CONNECTIONS_PER_PEER + 8, 8).await;
    assert_eq!(refused, 8, "{kind}: connections beyond the per-peer limit are closed");

    // While the slow host holds its connections, everyone else still gets the file.
    let out = temp();
    let survey = net.survey().expect("survey");
    let (id, _, sources) = survey.find("target.bin").await.expect("still listed");
    let path =
        download(id, &sources, out.path(), &DownloadOptions::new(StateKey::random()).timeout(net.timeout), |_| {})
            .await
            .expect("still serves");
    assert!(std::fs::read(path).expect("read") == data);
    drop(held);
    node.stop().await;
}

/// Datagrams of random length and content, and a valid header followed by junk.
async fn random_datagrams(port: u16) {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("udp");
    for i in 0..300u64 {
        let mut datagram = bytes((i as usize * 37) % 1600, i + 1);
        if i % 3 == 0 {
            datagram.splice(0..0, *b"P2PD\x01\x01");
        }
        let _ = socket.send_to(&datagram, (Ipv4Addr::LOCALHOST, port)).await;
    }
}

fn garbage() -> Vec<u8> {
    bytes(64 * 1024, 99)
}

fn oversized_length() -> Vec<u8> {
    u32::MAX.to_be_bytes().to_vec()
}

/// A frame that announces 100 bytes and stops after 10 (slowloris); the node gives up on it in seconds.
fn truncated_frame() -> Vec<u8> {
    let mut frame = 100u32.to_be_bytes().to_vec();
    frame.extend_from_slice(b"P2PF\x01\x03abcd");
    frame
}

fn wrong_magic() -> Vec<u8> {
    let mut frame = Request::Catalogue.encode();
    frame[4] ^= 0xff;
    frame
}

/// Sends `bytes` on a fresh connection and reports whether the node then closed it within 10 s (well
/// below its idle timeout).
async fn send_and_wait_for_close(addr: SocketAddr, bytes: &[u8]) -> bool {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let _ = s.write_all(bytes).await;
    let mut sink = [0u8; 1024];
    let read_to_end = async {
        while let Ok(n) = s.read(&mut sink).await {
            if n == 0 {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read_to_end).await.is_ok()
}

/// A well-formed frame with a request tag this build does not know: answered `bad request`, and the
/// connection goes on, so the asker falls back to a request of wire version 2 on it.
async fn a_newer_peer_asking_an_unknown_request_is_answered_bad_request_and_falls_back(addr: SocketAddr) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut unknown = Request::Catalogue.encode();
    unknown[9] = 0xee;
    s.write_all(&unknown).await.expect("request");
    match read_response(&mut s).await.expect("an answer, not a closed connection") {
        Response::Err { code, .. } => assert_eq!(code, ErrorCode::BadRequest),
        other => panic!("an unknown request answered {other:?}"),
    }
    write_request(&mut s, &Request::Catalogue).await.expect("the fallback request");
    let answer = read_response(&mut s).await.expect("the fallback answered on the same connection");
    assert!(matches!(answer, Response::Ok { .. }), "the fallback answered {answer:?}");
}

async fn assert_refused(addr: SocketAddr, request: &Request, expected: ErrorCode) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    write_request(&mut s, request).await.expect("request");
    match read_response(&mut s).await.expect("response") {
        Response::Err { code, .. } => assert_eq!(code, expected, "{request:?}"),
        other => panic!("{request:?} answered {other:?}"),
    }
}

/// Opens `count` connections from loopback address 127.0.0.`host` (another host) that send nothing;
/// returns those the node kept open and how many it closed, once it has closed `expected` (or after 10 s).
async fn half_open_connections(host: u8, addr: SocketAddr, count: usize, expected: usize) -> (Vec<TcpStream>, usize) {
    let mut open = Vec::new();
    for _ in 0..count {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.bind((Ipv4Addr::new(127, 0, 0, host), 0).into()).expect("bind a loopback address");
        let stream = socket.connect(addr).await.expect("connect");
        // The first byte of a plain frame, so the shared TLS port hands the connection to the node.
        stream.try_write(&[0]).expect("first byte");
        open.push(stream);
    }
    let closed = |open: &[TcpStream]| open.iter().filter(|s| matches!(s.try_read(&mut [0u8; 1]), Ok(0))).count();
    let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
    while closed(&open) < expected && tokio::time::Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let held: Vec<TcpStream> = open.into_iter().filter(|s| !matches!(s.try_read(&mut [0u8; 1]), Ok(0))).collect();
    let refused = count - held.len();
    (held, refused)
}

/// Three hosts that hold every connection slot lock nobody out: a fourth is served, a connection of the
/// host that holds the most closed in its place.
#[tokio::test(flavor = "multi_thread")]
async fn hosts_holding_every_slot_lock_nobody_out() {
    let net = net("tcp", free_udp_port());
    let dir = temp();
    std::fs::write(dir.path().join("a.bin"), b"still served").expect("write");
    let node = serve(&net, dir.path(), "victim").await;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, node.port));
    let mut held = Vec::new();
    for host in [2, 3] {
        held.extend(half_open_connections(host, addr, MAX_CONNECTIONS_PER_PEER, 0).await.0);
    }
    // The third host fills the node; past it, each of its connections takes the place of one of the others.
    let over = 3 * MAX_CONNECTIONS_PER_PEER - MAX_CONNECTIONS;
    held.extend(half_open_connections(4, addr, MAX_CONNECTIONS_PER_PEER, 0).await.0);
    let evicted = || held.iter().filter(|s| matches!(s.try_read(&mut [0u8; 1]), Ok(0))).count();
    let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
    while evicted() < over && tokio::time::Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(evicted(), over, "as many closed (evicted, or answered busy) as the node had no room for");

    // A fourth host, full node or not, is served.
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind((Ipv4Addr::new(127, 0, 0, 5), 0).into()).expect("bind 127.0.0.5");
    let mut fourth = socket.connect(addr).await.expect("connect");
    write_request(&mut fourth, &Request::Catalogue).await.expect("request");
    let answer = read_response(&mut fourth).await.expect("an answer");
    assert!(matches!(answer, Response::Ok { .. }), "the fourth host was answered {answer:?}");
    drop(held);
    node.stop().await;
}

/// A QUIC connection over the per-address limit is answered `busy`, as tcp and tls ones are, rather than
/// closed before its answer goes out.
#[tokio::test(flavor = "multi_thread")]
async fn quic_connections_over_the_limit_are_answered_busy() {
    let net = net("quic", free_udp_port());
    let dir = temp();
    let node = serve(&net, dir.path(), "victim").await;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, node.port));
    let client = net.client();
    let catalogue = |conn: Arc<dyn transport::Connection>| async move {
        let mut stream = conn.open().await.expect("a stream");
        write_request(&mut stream, &Request::Catalogue).await.expect("request");
        read_response(&mut stream).await.expect("an answer, not a closed connection")
    };
    let mut held = Vec::new();
    for _ in 0..MAX_CONNECTIONS_PER_PEER {
        let conn = client.connect(addr, node.id).await.expect("connect");
        // Answered: the node holds it.
        assert!(matches!(catalogue(conn.clone()).await, Response::Ok { .. }));
        held.push(conn);
    }
    let over = client.connect(addr, node.id).await.expect("connect");
    match catalogue(over).await {
        Response::Err { code, .. } => assert_eq!(code, ErrorCode::Busy),
        other => panic!("a connection over the limit answered {other:?}"),
    }
    drop(held);
    node.stop().await;
}

/// Trusted nodes behind one address (a NAT, a VPN gateway) each get the per-peer limit: a node with a
/// trust list counts their connections by proven id, not by address.
#[tokio::test(flavor = "multi_thread")]
async fn trusted_nodes_behind_one_address_each_get_their_own_limit() {
    let lan = net("tls", free_udp_port());
    let (alice, bob) = (Identity::generate().expect("identity"), Identity::generate().expect("identity"));
    let dir = temp();
    let mut builder = Node::builder(ServeConfig::new(dir.path()).net(lan.config.clone())).expect("node");
    let identity = builder.identity().clone();
    builder = builder.discovery(lan.udp(identity.node_id(), true));
    let trusted = HashSet::from([alice.node_id(), bob.node_id()]);
    for serving in transport::builtin::serving(lan.transport_config(), &identity) {
        builder = builder.transport(Arc::new(TrustTransport::new(serving, trusted.clone()).expect("authenticates")));
    }
    let node = builder.bind().await.expect("binds");
    let (id, addr) = (node.id(), SocketAddr::from((Ipv4Addr::LOCALHOST, node.local_addrs()[0].1.port())));
    let running = node.spawn_ready(std::future::pending()).await;
    // A request answered and its stream kept: the node holds the socket.
    let catalogue = |conn: Arc<dyn transport::Connection>| async move {
        let mut stream = conn.open().await.expect("a stream");
        write_request(&mut stream, &Request::Catalogue).await.expect("request");
        (read_response(&mut stream).await.expect("an answer"), stream)
    };
    let client = |identity| transport::builtin::client("tls", lan.transport_config(), identity).expect("tls");
    let (alice, bob) = (client(alice), client(bob));
    let mut held = Vec::new();
    for _ in 0..MAX_CONNECTIONS_PER_PEER {
        let (answer, stream) = catalogue(alice.connect(addr, id).await.expect("connect")).await;
        assert!(matches!(answer, Response::Ok { .. }));
        held.push(stream);
    }
    let (answer, _) = catalogue(bob.connect(addr, id).await.expect("connect")).await;
    assert!(matches!(answer, Response::Ok { .. }), "bob, at alice's address, was answered {answer:?}");
    running.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn names_from_the_network_stay_in_the_downloads_folder() {
    let hostile = ["../../x", "/etc/passwd", "C:\\x", "a/../../b", "..", "nul\0byte", "bell\x07\x1b[31m", "CON"];
    for (i, name) in hostile.into_iter().enumerate() {
        let data = bytes(1000 + i, i as u64);
        let manifest = Manifest::new(name.into(), data.len() as u64, vec![blake3::hash(&data)]).expect("manifest");
        let id = manifest.id();
        let server = fake_server(manifest, data.clone()).await;
        let root = temp();
        let out = root.path().join("downloads");
        let source = net("tcp", 0).source(NodeId([1; 32]), server);
        let path = download(
            id,
            &[source],
            &out,
            &DownloadOptions::new(StateKey::random()).timeout(Duration::from_secs(3)),
            |_| {},
        )
        .await
        .expect("downloads");
        assert_eq!(path.parent(), Some(out.as_path()), "{name:?} landed at {}", path.display());
        let file_name = path.file_name().and_then(|n| n.to_str()).expect("utf-8 name");
        assert!(
            !file_name.chars().any(|c| c.is_control() || c == '/' || c == '\\') && file_name != "..",
            "{name:?} became {file_name:?}"
        );
        assert!(!file_name.eq_ignore_ascii_case("con"), "reserved Windows name {name:?} kept");
        assert!(std::fs::read(&path).expect("read") == data);
        assert_eq!(entries(root.path()), vec!["downloads".to_string()], "{name:?} wrote outside the folder");
    }
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).expect("list").map(|e| e.expect("entry").file_name().to_string_lossy().into()).collect()
}

/// A server that answers with `manifest` for any manifest request and with slices of `data` for chunks:
/// a peer free to name its file anything.
async fn fake_server(manifest: Manifest, data: Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let (manifest, data) = (manifest.clone(), data.clone());
            tokio::spawn(async move {
                while let Ok(Some(request)) = read_request(&mut s).await {
                    let body = match request {
                        Request::Manifest(_) => manifest.encode(),
                        Request::Chunk { offset, len, .. } => data[offset as usize..][..len as usize].to_vec(),
                        _ => return,
                    };
                    let ok = Response::Ok { len: body.len() as u64 };
                    if write_response(&mut s, &ok).await.is_err() || s.write_all(&body).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}
