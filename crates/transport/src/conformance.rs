//! The conformance suite of a transport: what the node relies on, checked over real exchanges. A third
//! party runs it on its own transport with one call, in a test of its own crate (feature `conformance`):
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread")]
//! async fn my_transport_conforms() {
//!     let passed = transport::conformance::run(|| my_subject()).await;
//!     assert_eq!(passed, transport::conformance::CASES);
//! }
//! ```
//!
//! Each case gets a fresh [`Subject`] from the closure and panics, naming the case and the transport,
//! when the transport breaks a rule.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use proto::{NodeId, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::frame_io::{read_request, read_response, write_request, write_response};
use crate::{Authenticated, Connection, Incoming, Transport, TransportError};

/// How many cases [`run`] runs.
pub const CASES: usize = 10;

/// A transport under test: a server side and a client side, who they are, and where to reach.
pub struct Subject {
    /// The transport a server binds with.
    pub server: Arc<dyn Transport>,
    /// The node id the server's transport proves (any id, for one that does not authenticate).
    pub server_id: NodeId,
    /// The transport a client connects with: the server's, or one it [`Transport::also_serves`].
    pub client: Arc<dyn Transport>,
    /// The node id the client's transport proves.
    pub client_id: NodeId,
    /// Where the server binds, with port 0 (the transport picks one).
    pub bind: SocketAddr,
    /// An address where nothing listens.
    pub unreachable: SocketAddr,
    /// The client transport's connect timeout.
    pub connect_timeout: Duration,
}

/// Runs every case, each on a fresh subject from `make`; returns how many passed (all of them, [`CASES`],
/// or it panics).
pub async fn run(make: impl Fn() -> Subject) -> usize {
    let mut passed = 0;
    macro_rules! cases {
        ($($case:ident),* $(,)?) => {$(
            let subject = make();
            tracing::info!(case = stringify!($case), transport = subject.client.name(), "conformance case");
            $case(subject).await;
            passed += 1;
        )*};
    }
    cases!(
        names_itself_as_the_wire_allows,
        binds_a_real_port,
        exchanges_round_trip_on_one_connection,
        many_exchanges_run_at_once,
        the_largest_chunk_arrives_whole,
        a_peer_closing_mid_answer_is_an_error,
        a_silent_peer_is_bounded_by_the_callers_timeout,
        an_abandoned_exchange_leaves_the_connection_usable,
        nothing_listening_fails_within_the_connect_timeout,
        identity_is_proven_or_never_claimed,
    );
    passed
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

/// A server answering as `behaviour` says; each accepted connection's proof goes to the receiver.
async fn spawn_server(
    s: &Subject,
    behaviour: Behaviour,
) -> (SocketAddr, mpsc::UnboundedReceiver<Option<Authenticated>>) {
    let name = s.server.name().to_string();
    let mut listener = s.server.bind(s.bind).await.unwrap_or_else(|e| panic!("{name}: bind {}: {e}", s.bind));
    let addr = listener.local_addr();
    let (proofs, received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(incoming) = listener.accept().await {
            let _ = proofs.send(incoming.authenticated());
            tokio::spawn(serve(incoming, behaviour));
        }
    });
    (addr, received)
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
            let written = async {
                write_response(&mut stream, &Response::Ok { len: u64::from(len) }).await?;
                stream.write_all(sent).await?;
                stream.flush().await?;
                Ok::<_, TransportError>(())
            };
            if written.await.is_ok() && behaviour == Behaviour::Serve {
                stream.finish();
            }
        });
    }
}

/// One exchange: ask for `len` bytes, read them all.
async fn fetch(conn: &dyn Connection, len: u32) -> Result<Vec<u8>, TransportError> {
    let mut stream = conn.open().await?;
    write_request(&mut stream, &Request::Chunk { file: proto::FileId([0; 32]), index: 0, offset: 0, len }).await?;
    let Response::Ok { len: announced } = read_response(&mut stream).await? else {
        return Err(std::io::Error::other("the server refused").into());
    };
    let mut body = vec![0u8; announced as usize];
    stream.read_exact(&mut body).await?;
    stream.finish();
    Ok(body)
}

async fn connect(s: &Subject, behaviour: Behaviour) -> Arc<dyn Connection> {
    let (addr, _) = spawn_server(s, behaviour).await;
    s.client.connect(addr, s.server_id).await.unwrap_or_else(|e| panic!("{}: connect: {e}", s.client.name()))
}

async fn names_itself_as_the_wire_allows(s: Subject) {
    let name = s.server.name();
    assert!(proto::is_transport_name(name), "'{name}' is not a transport name (1-16 of a-z, 0-9, -)");
    let others = s.server.also_serves();
    for other in &others {
        assert!(proto::is_transport_name(other) && other != name, "{name}: also serves '{other}'");
    }
    let client = s.client.name();
    assert!(client == name || others.iter().any(|o| o == client), "{name}'s server does not take {client} clients");
}

async fn binds_a_real_port(s: Subject) {
    let listener = s.server.bind(s.bind).await.expect("bind");
    assert_ne!(listener.local_addr().port(), 0, "{}: bound to port 0 but reports no port", s.server.name());
}

async fn exchanges_round_trip_on_one_connection(s: Subject) {
    let conn = connect(&s, Behaviour::Serve).await;
    for len in [0, 1, 1000, 300_000, 1000] {
        let got = fetch(&*conn, len).await.unwrap_or_else(|e| panic!("{}: {len} bytes: {e}", s.client.name()));
        assert!(got == pattern(len as usize), "{}: {len} bytes came back changed", s.client.name());
    }
}

async fn many_exchanges_run_at_once(s: Subject) {
    let conn = connect(&s, Behaviour::Serve).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..32u32 {
        let conn = conn.clone();
        tasks.spawn(async move { fetch(&*conn, 65_536 + i).await.map(|d| d == pattern(65_536 + i as usize)) });
    }
    while let Some(done) = tasks.join_next().await {
        let same = done.expect("task").unwrap_or_else(|e| panic!("{}: concurrent exchange: {e}", s.client.name()));
        assert!(same, "{}: a concurrent exchange came back changed", s.client.name());
    }
}

async fn the_largest_chunk_arrives_whole(s: Subject) {
    let conn = connect(&s, Behaviour::Serve).await;
    let len = proto::MAX_CHUNK_SIZE;
    let got = fetch(&*conn, len).await.unwrap_or_else(|e| panic!("{}: largest chunk: {e}", s.client.name()));
    assert!(got == pattern(len as usize), "{}: the largest chunk came back changed", s.client.name());
}

async fn a_peer_closing_mid_answer_is_an_error(s: Subject) {
    let conn = connect(&s, Behaviour::HalfThenClose).await;
    let result = tokio::time::timeout(Duration::from_secs(5), fetch(&*conn, 1_000_000)).await;
    assert!(matches!(result, Ok(Err(_))), "{}: a cut answer must fail, not hang or succeed", s.client.name());
}

async fn a_silent_peer_is_bounded_by_the_callers_timeout(s: Subject) {
    let conn = connect(&s, Behaviour::Silent).await;
    let result = tokio::time::timeout(Duration::from_millis(500), fetch(&*conn, 1000)).await;
    assert!(result.is_err(), "{}: nothing may arrive from a silent peer", s.client.name());
}

async fn an_abandoned_exchange_leaves_the_connection_usable(s: Subject) {
    let conn = connect(&s, Behaviour::Serve).await;
    let mut stream = conn.open().await.expect("open");
    let ask = Request::Chunk { file: proto::FileId([0; 32]), index: 0, offset: 0, len: 4_000_000 };
    write_request(&mut stream, &ask).await.expect("request");
    read_response(&mut stream).await.expect("response header");
    let mut some = vec![0u8; 1000];
    stream.read_exact(&mut some).await.expect("first bytes");
    drop(stream);
    let got = fetch(&*conn, 5000).await.unwrap_or_else(|e| panic!("{}: after an abandoned one: {e}", s.client.name()));
    assert!(got == pattern(5000), "{}: an exchange after an abandoned one came back changed", s.client.name());
}

async fn nothing_listening_fails_within_the_connect_timeout(s: Subject) {
    let started = Instant::now();
    let result = s.client.connect(s.unreachable, s.server_id).await;
    let elapsed = started.elapsed();
    assert!(
        matches!(result, Err(TransportError::Refused { .. } | TransportError::Timeout { .. })),
        "{}: connecting where nothing listens must be refused or time out, got {:?}",
        s.client.name(),
        result.err()
    );
    assert!(elapsed <= s.connect_timeout + Duration::from_secs(1), "{}: took {elapsed:?}", s.client.name());
}

async fn identity_is_proven_or_never_claimed(s: Subject) {
    let name = s.client.name().to_string();
    let (addr, mut proofs) = spawn_server(&s, Behaviour::Serve).await;
    let conn = s.client.connect(addr, s.server_id).await.expect("connect");
    let mut stream = conn.open().await.expect("open");
    write_request(&mut stream, &Request::Chunk { file: proto::FileId([0; 32]), index: 0, offset: 0, len: 10 })
        .await
        .expect("request");
    read_response(&mut stream).await.expect("answer");
    let server_saw = proofs.recv().await.expect("the server accepted");
    let client_saw = stream.authenticated();
    if !s.client.authenticates() {
        assert_eq!((server_saw, client_saw), (None, None), "{name}: claims proofs it says it does not make");
        return;
    }
    let (server_saw, client_saw) = (server_saw.expect("server's proof"), client_saw.expect("client's proof"));
    assert_eq!(server_saw.peer, s.client_id, "{name}: the server learnt the wrong client id");
    assert_eq!(client_saw.peer, s.server_id, "{name}: the client's stream names the wrong server");
    assert_eq!(server_saw.binding, client_saw.binding, "{name}: the two ends export different keying material");
    let impostor = NodeId([0x42; 32]);
    let refused = s.client.connect(addr, impostor).await;
    assert!(
        matches!(refused, Err(TransportError::IdentityMismatch { expected, .. }) if expected == impostor),
        "{name}: a server that is not the announced node must be refused, got {:?}",
        refused.err()
    );
}
