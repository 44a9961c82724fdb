//! Offers as hostile peers make them, against a real node on loopback, and an offer's files as the
//! sender serves them: to the recipient's proven id alone, listed to nobody.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{free_udp_port, net, temp};
use discovery::Peer;
use node::{Accept, Ask, Client, ClientConfig, Identity, Node, NodeEvent, NodeId, Outgoing, SendError, ServeConfig};
use proto::{Announcement, Catalogue, CatalogueEntry, ErrorCode, FileId, Offer, OfferId, Request, Response};
use tokio::sync::{mpsc, oneshot};
use transport::frame_io::{read_request, read_response, write_request, write_response};

const KIND: &str = "tls";

/// A serving node that takes offers as `accept` says (asking through `ask`), trusting `trusts`; its id,
/// port, events, and what stops it.
async fn recipient(
    dir: &Path,
    accept: Accept,
    ask: Option<Ask>,
    trusts: &[NodeId],
) -> (NodeId, u16, mpsc::UnboundedReceiver<NodeEvent>, oneshot::Sender<()>) {
    let lan = net(KIND, free_udp_port());
    std::fs::create_dir_all(dir.join(".p2pnode")).expect("state folder");
    let list: String = trusts.iter().map(|id| format!("{id} friend\n")).collect();
    std::fs::write(dir.join(".p2pnode").join(node::TRUST_LIST_FILE), list).expect("trust list");
    let config = ServeConfig::new(dir).net(lan.config.clone()).name("bob").accept(accept);
    let mut builder = Node::builder(config).expect("folders");
    let identity = builder.identity().clone();
    for transport in transport::builtin::serving(lan.transport_config(), &identity) {
        builder = builder.transport(transport);
    }
    if let Some(ask) = ask {
        builder = builder.ask(ask);
    }
    let node = builder.discovery(lan.udp(identity.node_id(), true)).bind().await.expect("binds");
    let (id, port) = (node.id(), node.local_addrs()[0].1.port());
    let (tell, events) = mpsc::unbounded_channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let node = node.on_event(move |event| _ = tell.send(event.clone()));
    let _running = node.spawn_ready(async { _ = stopped.await }).await;
    (id, port, events, stop)
}

fn an_offer(files: u32, port: u16) -> Offer {
    let id = OfferId(rand_bytes());
    let (transport, title, name) = (KIND.to_string(), "things".to_string(), "eve".to_string());
    Offer { id, transport, port, files, bytes: 10, text: 0, title, name }
}

fn rand_bytes() -> [u8; 16] {
    Identity::generate().expect("id").node_id().0[..16].try_into().expect("16 bytes")
}

/// One request over `kind` as `who` to the node `to` at `port`: its answer.
async fn ask_as(kind: &str, who: &Identity, (to, port): (NodeId, u16), request: &Request) -> Response {
    let config = transport::TransportConfig::default().connect_timeout(Duration::from_secs(3));
    let transport = transport::builtin::client(kind, config, who.clone()).expect("built in");
    let conn = transport.connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), to).await.expect("connects");
    let mut stream = conn.open().await.expect("a stream");
    write_request(&mut stream, request).await.expect("asked");
    read_response(&mut stream).await.expect("answered")
}

fn refused(response: &Response) -> Option<ErrorCode> {
    match response {
        Response::Err { code, .. } => Some(*code),
        Response::Ok { .. } => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_offer_over_plain_tcp_proves_nobody_and_is_refused() {
    let dir = temp();
    let eve = Identity::generate().expect("id");
    // Even eve's own id in the trust list: plain tcp proves nothing.
    let (bob, port, _events, _stop) = recipient(dir.path(), Accept::Trusted, None, &[eve.node_id()]).await;
    let answer = ask_as("tcp", &eve, (bob, port), &Request::Offer(an_offer(1, 1))).await;
    assert_eq!(refused(&answer), Some(ErrorCode::NotTrusted), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_offers_from_one_id_is_answered_busy_after_ten_a_minute() {
    let dir = temp();
    let (bob, port, _events, _stop) = recipient(dir.path(), Accept::None, None, &[]).await;
    let eve = Identity::generate().expect("id");
    let mut codes = Vec::new();
    for _ in 0..12 {
        codes.push(refused(&ask_as(KIND, &eve, (bob, port), &Request::Offer(an_offer(1, 1))).await));
    }
    assert_eq!(codes[..10], [Some(ErrorCode::Declined); 10]);
    assert_eq!(codes[10..], [Some(ErrorCode::Busy); 2]);
    // Another id is still heard.
    let other = Identity::generate().expect("id");
    let answer = ask_as(KIND, &other, (bob, port), &Request::Offer(an_offer(1, 1))).await;
    assert_eq!(refused(&answer), Some(ErrorCode::Declined));
}

#[tokio::test(flavor = "multi_thread")]
async fn one_question_at_a_time_the_others_are_answered_busy() {
    let dir = temp();
    let (asked, mut questions) = mpsc::unbounded_channel();
    let ask: Ask = Arc::new(move |question| {
        let (answer, answered) = oneshot::channel::<bool>();
        let _ = asked.send((question, answer));
        Box::pin(async move { answered.await.unwrap_or(false) })
    });
    let (bob, port, _events, _stop) = recipient(dir.path(), Accept::Ask, Some(ask), &[]).await;
    let (eve, mallory) = (Identity::generate().expect("id"), Identity::generate().expect("id"));
    let first = tokio::spawn(async move { ask_as(KIND, &eve, (bob, port), &Request::Offer(an_offer(3, 1))).await });
    let (question, answer) = tokio::time::timeout(Duration::from_secs(5), questions.recv())
        .await
        .expect("asked in time")
        .expect("a question");
    assert_eq!((question.files, question.bytes, question.from.announced.as_deref()), (3, 10, Some("eve")));
    let second = ask_as(KIND, &mallory, (bob, port), &Request::Offer(an_offer(1, 1))).await;
    assert_eq!(refused(&second), Some(ErrorCode::Busy), "a second question while one is open: {second:?}");
    answer.send(false).expect("still asking");
    assert_eq!(refused(&first.await.expect("answered")), Some(ErrorCode::Declined));
    assert!(questions.try_recv().is_err(), "mallory was never asked");
}

/// A sender that lists more than it offered gets nothing fetched, and is told so; the recipient tells
/// its own user at once, whether or not the sender answers.
#[tokio::test(flavor = "multi_thread")]
async fn a_sender_whose_list_outgrows_its_offer_gets_nothing_fetched() {
    let dir = temp();
    let alice = Identity::generate().expect("id");
    let (bob, port, mut events, _stop) = recipient(dir.path(), Accept::Trusted, None, &[alice.node_id()]).await;
    let config = transport::TransportConfig::default();
    let serving = transport::builtin::serving(config, &alice).remove(0);
    let mut listener = serving.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await.expect("binds");
    let offer = an_offer(1, listener.local_addr().port());
    let (ended, mut ending) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok(mut incoming) = listener.accept().await else { return };
            let ended = ended.clone();
            tokio::spawn(async move {
                while let Ok(Some(mut stream)) = incoming.accept_stream().await {
                    let entry =
                        |n: u8| CatalogueEntry { id: FileId([n; 32]), name: format!("f{n}"), size: 1, have: None };
                    let answer = match read_request(&mut stream).await {
                        Ok(Some(Request::OfferList(_))) => Catalogue { entries: vec![entry(1), entry(2)] }.encode(),
                        // Told the end, the sender never answers (a sender gone at once looks so).
                        Ok(Some(Request::OfferEnded { fetched, .. })) => {
                            let _ = ended.send(fetched);
                            std::future::pending::<()>().await;
                            return;
                        }
                        _ => return,
                    };
                    write_response(&mut stream, &Response::Ok { len: answer.len() as u64 }).await.expect("answer");
                    tokio::io::AsyncWriteExt::write_all(&mut stream, &answer).await.expect("bytes");
                    stream.finish();
                }
            });
        }
    });
    let answer = ask_as(KIND, &alice, (bob, port), &Request::Offer(offer)).await;
    assert_eq!(answer, Response::Ok { len: 0 }, "a trusted sender's offer is taken");
    // Told at once, not once the sender has answered the end (which this one never does).
    let received = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if let Some(NodeEvent::Received { files, error, .. }) = events.recv().await {
                return (files, error);
            }
        }
    });
    let (files, error) = received.await.expect("told in time");
    assert!(files.is_empty(), "{files:?}");
    assert_eq!(error.as_deref(), Some("the sender listed more than it offered"));
    assert_eq!(tokio::time::timeout(Duration::from_secs(5), ending.recv()).await, Ok(Some(false)));
    assert!(std::fs::read_dir(dir.path().join("downloads")).expect("downloads").next().is_none(), "nothing landed");
}

/// What a sender offers is served to the recipient's proven id alone: another id sees an empty
/// catalogue, no list and no file; the recipient gets the list.
#[tokio::test(flavor = "multi_thread")]
async fn an_offer_is_served_to_its_recipient_alone_and_listed_to_nobody() {
    let (alice, bob, carol) =
        (Identity::generate().expect("id"), Identity::generate().expect("id"), Identity::generate().expect("id"));
    // Bob as a bare listener: it takes the offer down and answers only once the test has looked.
    let config = transport::TransportConfig::default();
    let mut listener = transport::builtin::serving(config.clone(), &bob)
        .remove(0)
        .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .expect("binds");
    let bob_port = listener.local_addr().port();
    let (offered, mut offers) = mpsc::unbounded_channel();
    let (release, released) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut incoming = listener.accept().await.expect("the offer comes");
        let mut stream = incoming.accept_stream().await.expect("a stream").expect("one");
        let Ok(Some(Request::Offer(offer))) = read_request(&mut stream).await else { panic!("not an offer") };
        offered.send(offer).expect("told");
        let _ = released.await;
        let refusal = Response::Err { code: ErrorCode::Declined, message: "no \u{1b}[2J thanks".into() };
        write_response(&mut stream, &refusal).await.expect("answered");
        tokio::io::AsyncWriteExt::flush(&mut stream).await.expect("flushed");
        stream.finish();
        let _ = incoming.accept_stream().await;
    });
    let files = temp();
    let data = common::bytes(700_000, 5);
    std::fs::write(files.path().join("secret.bin"), &data).expect("write");
    let manifest = store::hash_file(&files.path().join("secret.bin"), "secret.bin".into()).expect("hashed");

    let lan = net(KIND, free_udp_port());
    let alice_id = alice.node_id();
    let client = Client::builder(ClientConfig::default().net(lan.config.clone()))
        .upload(alice_id, transport::builtin::serving(config.clone(), &alice))
        .transport(transport::builtin::client(KIND, config.clone(), alice).expect("built in"))
        .discovery(lan.udp(alice_id, false))
        .build()
        .expect("client");
    let announcement = Announcement {
        node: bob.node_id(),
        instance: 1,
        name: "bob".into(),
        ports: vec![(KIND.into(), bob_port)],
        catalogue_version: 1,
        file_count: 0,
        interval_secs: 1,
    };
    let to = Peer { ip: Ipv4Addr::LOCALHOST.into(), announcement };
    let outgoing = Outgoing { paths: vec![files.path().join("secret.bin")], text: None };
    let sending = tokio::spawn(async move { client.send(&to, outgoing, |_| {}).await });
    let offer = tokio::time::timeout(Duration::from_secs(10), offers.recv()).await.expect("offered").expect("an offer");
    assert_eq!((offer.files, offer.bytes, offer.title.as_str()), (1, data.len() as u64, "secret.bin"));

    let at = (alice_id, offer.port);
    let catalogue = ask_as(KIND, &carol, at, &Request::Catalogue).await;
    assert_eq!(
        catalogue,
        Response::Ok { len: Catalogue { entries: vec![] }.encode().len() as u64 },
        "listed to nobody"
    );
    for request in [Request::OfferList(offer.id), Request::Manifest(manifest.id()), Request::OfferText(offer.id)] {
        let answer = ask_as(KIND, &carol, at, &request).await;
        assert_eq!(refused(&answer), Some(ErrorCode::NotFound), "{request:?} to another id: {answer:?}");
    }
    let ended = Request::OfferEnded { offer: offer.id, fetched: true };
    assert_eq!(refused(&ask_as(KIND, &carol, at, &ended).await), Some(ErrorCode::NotFound), "only bob ends it");
    let list = ask_as(KIND, &bob, at, &Request::OfferList(offer.id)).await;
    assert!(matches!(list, Response::Ok { len } if len > 0), "bob gets the list: {list:?}");
    assert!(matches!(ask_as(KIND, &bob, at, &Request::Manifest(manifest.id())).await, Response::Ok { .. }));

    release.send(()).expect("bob still there");
    let sent = sending.await.expect("the send ends");
    match sent {
        Err(SendError::Declined { to, why }) => {
            assert_eq!((to.as_str(), why.as_str()), ("bob", "no \\x1b[2J thanks"))
        }
        other => panic!("{other:?}"),
    }
}
