//! The public conformance suite on every transport of this crate, plus what only a transport's own
//! packets can show (garbage on the wire, a black hole).

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use proto::GroupKey;
use proto::{Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use transport::conformance::{CASES, Subject, run};
use transport::frame_io::{read_request, read_response, write_request, write_response};
use transport::memory::MemoryNetwork;
use transport::quic::QuicTransport;
use transport::tcp::TcpTransport;
use transport::tls::TlsTransport;
use transport::{GroupTransport, Identity, Transport, TransportConfig, TransportError, TrustTransport};

const CONNECT_TIMEOUT: Duration = Duration::from_millis(800);

fn config() -> TransportConfig {
    TransportConfig::default().connect_timeout(CONNECT_TIMEOUT).idle_timeout(Duration::from_secs(5))
}

fn identities() -> (Identity, Identity) {
    (Identity::generate().expect("identity"), Identity::generate().expect("identity"))
}

/// A loopback port where nothing listens, on TCP or UDP.
fn closed_port() -> SocketAddr {
    let socket = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let addr = socket.local_addr().expect("addr");
    drop(socket);
    addr
}

/// A subject over loopback sockets: `make` builds a transport proving an identity.
fn loopback<T: Transport>(make: impl Fn(Identity) -> T) -> Subject {
    let (server, client) = identities();
    Subject {
        server_id: server.node_id(),
        client_id: client.node_id(),
        server: Arc::new(make(server)),
        client: Arc::new(make(client)),
        bind: (Ipv4Addr::LOCALHOST, 0).into(),
        unreachable: closed_port(),
        connect_timeout: CONNECT_TIMEOUT,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_conforms() {
    assert_eq!(run(|| loopback(|_| TcpTransport::new(config()))).await, CASES);
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_conforms() {
    assert_eq!(run(|| loopback(|identity| TlsTransport::new(config(), identity))).await, CASES);
}

/// `plain` with its client's connections kept and handed out again, which must behave as fresh ones.
fn reused(plain: Subject) -> Subject {
    Subject { client: Arc::new(transport::Reuse::new(plain.client.clone())), ..plain }
}

#[tokio::test(flavor = "multi_thread")]
async fn reused_tls_conforms() {
    assert_eq!(run(|| reused(loopback(|identity| TlsTransport::new(config(), identity)))).await, CASES);
}

#[tokio::test(flavor = "multi_thread")]
async fn reused_quic_conforms() {
    assert_eq!(run(|| reused(loopback(|identity| QuicTransport::new(config(), identity)))).await, CASES);
}

/// Plain TCP clients of a TLS listener that takes them too, on its port.
#[tokio::test(flavor = "multi_thread")]
async fn tcp_on_a_shared_tls_port_conforms() {
    let subject = || Subject {
        server: Arc::new(TlsTransport::new(config(), Identity::generate().expect("identity")).with_plain_tcp()),
        client: Arc::new(TcpTransport::new(config())),
        ..loopback(|_| TcpTransport::new(config()))
    };
    assert_eq!(run(subject).await, CASES);
}

#[tokio::test(flavor = "multi_thread")]
async fn quic_conforms() {
    assert_eq!(run(|| loopback(|identity| QuicTransport::new(config(), identity))).await, CASES);
}

/// The in-memory network, on a paused clock: timeouts take no real time.
#[tokio::test(start_paused = true)]
async fn memory_conforms() {
    let subject = || {
        let network = MemoryNetwork::default();
        let (server, client) = identities();
        Subject {
            server_id: server.node_id(),
            client_id: client.node_id(),
            server: Arc::new(network.transport([10, 0, 0, 1].into(), &server)),
            client: Arc::new(network.transport([10, 0, 0, 2].into(), &client)),
            bind: (Ipv4Addr::UNSPECIFIED, 0).into(),
            unreachable: (Ipv4Addr::new(10, 0, 0, 9), 1).into(),
            connect_timeout: CONNECT_TIMEOUT,
        }
    };
    assert_eq!(run(subject).await, CASES);
}

/// A TLS listener hands plain clients over only when told to take them; otherwise it closes on them.
#[tokio::test(flavor = "multi_thread")]
async fn a_tls_port_takes_plain_clients_only_when_told() {
    for plain in [false, true] {
        let tls = TlsTransport::new(config(), Identity::generate().expect("identity"));
        let tls = if plain { tls.with_plain_tcp() } else { tls };
        let mut listener = tls.bind((Ipv4Addr::LOCALHOST, 0).into()).await.expect("bind");
        let conn = TcpTransport::new(config()).connect(listener.local_addr(), transport::NodeId([0; 32])).await;
        let mut stream = conn.expect("tcp connects").open().await.expect("open");
        stream.write_all(&proto::Request::Catalogue.encode()).await.expect("request");
        let handed_over = tokio::time::timeout(Duration::from_secs(2), listener.accept()).await.is_ok();
        assert_eq!(handed_over, plain, "plain clients taken: {plain}");
        if !plain {
            let mut rest = Vec::new();
            let closed = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut rest)).await;
            assert!(closed.is_ok(), "a refused plain client is closed on");
        }
    }
}

/// Garbage where a handshake or frame belongs: the server drops that client and serves the next.
#[tokio::test(flavor = "multi_thread")]
async fn garbage_bytes_do_not_stop_a_server() {
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    let subjects = [
        loopback(|_| TcpTransport::new(config())),
        loopback(|identity| TlsTransport::new(config(), identity).with_plain_tcp()),
        loopback(|identity| QuicTransport::new(config(), identity)),
    ];
    for s in subjects {
        let mut listener = s.server.bind(s.bind).await.expect("bind");
        let addr = listener.local_addr();
        tokio::spawn(async move {
            while let Ok(mut incoming) = listener.accept().await {
                tokio::spawn(async move {
                    while let Ok(Some(mut stream)) = incoming.accept_stream().await {
                        let Ok(Some(_)) = read_request(&mut stream).await else { return };
                        let _ = write_response(&mut stream, &Response::Ok { len: 0 }).await;
                        stream.finish();
                    }
                });
            }
        });
        if s.server.name() == "quic" {
            let raw = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind");
            for chunk in garbage.chunks(1200) {
                raw.send_to(chunk, addr).await.expect("send");
            }
        } else {
            let mut raw = tokio::net::TcpStream::connect(addr).await.expect("connect");
            // A TLS record header, then garbage: the server may close before it has all of it.
            let _ = raw.write_all(&[0x16]).await;
            let _ = raw.write_all(&garbage).await;
            let mut sink = Vec::new();
            let closed = tokio::time::timeout(Duration::from_secs(3), raw.read_to_end(&mut sink)).await;
            assert!(closed.is_ok(), "{}: a connection that speaks garbage is closed", s.server.name());
        }
        let conn = s.client.connect(addr, s.server_id).await.expect("connect after garbage");
        let mut stream = conn.open().await.expect("open");
        write_request(&mut stream, &Request::Catalogue).await.expect("request");
        let answer = read_response(&mut stream).await;
        assert!(matches!(answer, Ok(Response::Ok { len: 0 })), "{}: {answer:?}", s.server.name());
    }
}

/// A UDP socket that never answers: QUIC gives up within its connect timeout.
#[tokio::test(flavor = "multi_thread")]
async fn quic_gives_up_on_a_black_hole_within_the_connect_timeout() {
    let s = loopback(|identity| QuicTransport::new(config(), identity));
    let black_hole = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let started = tokio::time::Instant::now();
    let result = s.client.connect(black_hole.local_addr().expect("addr"), s.server_id).await;
    assert!(matches!(result, Err(TransportError::Timeout { .. })), "{:?}", result.err());
    assert!(started.elapsed() < CONNECT_TIMEOUT + Duration::from_millis(500));
}

#[tokio::test(flavor = "multi_thread")]
async fn reuse_hands_out_one_connection_per_peer_until_it_fails() {
    let server = TcpTransport::new(config());
    let listener = server.bind((Ipv4Addr::LOCALHOST, 0).into()).await.expect("bind");
    let (addr, id) = (listener.local_addr(), identities().0.node_id());
    let reuse = transport::Reuse::new(Arc::new(TcpTransport::new(config())));
    let (a, b) = (reuse.connect(addr, id).await.expect("a"), reuse.connect(addr, id).await.expect("b"));
    assert!(Arc::ptr_eq(&a, &b), "the second connect reuses the first connection");
    drop(listener);
    // The socket dialled at connect is spent; the next stream needs a dial, which fails now.
    drop(a.open().await);
    assert!(a.open().await.is_err(), "nothing listens any more");
    assert!(reuse.connect(addr, id).await.is_err(), "a connection that failed is not handed out again");
}

#[tokio::test(flavor = "multi_thread")]
async fn reuse_reconnects_anew_and_keeps_the_new_connection() {
    let listener = TcpTransport::new(config()).bind((Ipv4Addr::LOCALHOST, 0).into()).await.expect("bind");
    let (addr, id) = (listener.local_addr(), identities().0.node_id());
    let reuse = transport::Reuse::new(Arc::new(TcpTransport::new(config())));
    let old = reuse.connect(addr, id).await.expect("connected");
    let new = reuse.reconnect(addr, id).await.expect("connected again");
    assert!(!Arc::ptr_eq(&old, &new), "a reconnect dials, where a quic connection to a peer gone still opens streams");
    assert!(Arc::ptr_eq(&new, &reuse.connect(addr, id).await.expect("kept")), "the new connection is the one kept");
    drop(listener);
    assert!(reuse.reconnect(addr, id).await.is_err(), "nothing answers any more");
}

/// `plain` with both ends in the group of `key`.
fn grouped(plain: Subject, key: u8) -> Subject {
    let group = |t: Arc<dyn Transport>| -> Arc<dyn Transport> {
        Arc::new(GroupTransport::new(t, GroupKey::from_bytes([key; 32])).expect("authenticates"))
    };
    Subject { server: group(plain.server.clone()), client: group(plain.client.clone()), ..plain }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_over_tls_conforms() {
    assert_eq!(run(|| grouped(loopback(|identity| TlsTransport::new(config(), identity)), 1)).await, CASES);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_over_quic_conforms() {
    assert_eq!(run(|| grouped(loopback(|identity| QuicTransport::new(config(), identity)), 1)).await, CASES);
}

/// A member answers only members: a client of another group, or of none, gets its channel closed without
/// an answer; a group over a transport that does not authenticate is refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_group_answers_members_alone() {
    type Make = fn(Identity) -> Arc<dyn Transport>;
    let tls: Make = |id| Arc::new(TlsTransport::new(config(), id));
    let quic: Make = |id| Arc::new(QuicTransport::new(config(), id));
    let group = |t: Arc<dyn Transport>, key: u8| -> Arc<dyn Transport> {
        Arc::new(GroupTransport::new(t, GroupKey::from_bytes([key; 32])).expect("authenticates"))
    };
    let someone = || identities().0;
    for make in [tls, quic] {
        let server = someone();
        let id = server.node_id();
        let addr = answer_every_request(group(make(server), 1)).await;
        for (client, who) in [(group(make(someone()), 2), "another group"), (make(someone()), "no group")] {
            assert!(catalogue(&*client, addr, id).await.is_none(), "{who} got an answer");
        }
        assert!(catalogue(&*group(make(someone()), 1), addr, id).await.is_some(), "a member is answered");
    }
    let tcp: Arc<dyn Transport> = Arc::new(TcpTransport::new(config()));
    assert!(GroupTransport::new(tcp, GroupKey::from_bytes([1; 32])).is_err(), "tcp proves no channel");
}

/// Binds `server` on loopback and answers every request with an empty `Ok`; returns where.
async fn answer_every_request(server: Arc<dyn Transport>) -> SocketAddr {
    let mut listener = server.bind((Ipv4Addr::LOCALHOST, 0).into()).await.expect("bind");
    let addr = listener.local_addr();
    tokio::spawn(async move {
        while let Ok(mut incoming) = listener.accept().await {
            tokio::spawn(async move {
                while let Ok(Some(mut s)) = incoming.accept_stream().await {
                    if let Ok(Some(_)) = read_request(&mut s).await
                        && write_response(&mut s, &Response::Ok { len: 0 }).await.is_ok()
                    {
                        s.finish();
                    }
                }
            });
        }
    });
    addr
}

/// The answer to a catalogue request over `client`, if one comes within 3 s.
async fn catalogue(client: &dyn Transport, addr: SocketAddr, id: proto::NodeId) -> Option<Response> {
    let answer = async {
        let mut s = client.connect(addr, id).await.ok()?.open().await.ok()?;
        write_request(&mut s, &Request::Catalogue).await.ok()?;
        read_response(&mut s).await.ok()
    };
    tokio::time::timeout(Duration::from_secs(3), answer).await.ok().flatten()
}

/// A trust list admits the ids on it alone, each proven by its certificate, and answers any other `not
/// trusted`; a client asks only them.
#[tokio::test(flavor = "multi_thread")]
async fn a_trust_list_admits_its_ids_alone() {
    type Make = fn(Identity) -> Arc<dyn Transport>;
    let tls: Make = |id| Arc::new(TlsTransport::new(config(), id));
    let quic: Make = |id| Arc::new(QuicTransport::new(config(), id));
    let (server, friend, stranger) = (identities().0, identities().0, identities().0);
    let only = |t: Arc<dyn Transport>, id: &Identity| TrustTransport::new(t, HashSet::from([id.node_id()]));
    for make in [tls, quic] {
        let listener = only(make(server.clone()), &friend).expect("authenticates");
        let addr = answer_every_request(Arc::new(listener)).await;
        assert!(catalogue(&*make(friend.clone()), addr, server.node_id()).await.is_some(), "the trusted id");
        let refused = catalogue(&*make(stranger.clone()), addr, server.node_id()).await;
        assert!(
            matches!(refused, Some(Response::Err { code: proto::ErrorCode::NotTrusted, .. })),
            "another id is answered not trusted: {refused:?}"
        );
        let asking = only(make(friend.clone()), &stranger).expect("authenticates");
        let refused = asking.connect(addr, server.node_id()).await;
        assert!(matches!(refused, Err(TransportError::NotTrusted(_))), "a client asks trusted nodes alone");
    }
    let tcp: Arc<dyn Transport> = Arc::new(TcpTransport::new(config()));
    assert!(only(tcp, &friend).is_err(), "tcp proves no id");
}
