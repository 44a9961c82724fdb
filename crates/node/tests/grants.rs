//! A file granted to one peer: served to that proven id alone, by its id, and listed to nobody.

mod common;

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};

use common::{bytes, free_udp_port, net, serve, temp};
use node::{DownloadOptions, Identity, NodeError, Source, StateKey, download};

async fn a_granted_file_is_served_to_its_recipient_alone(kind: &'static str) {
    let lan = net(kind, free_udp_port());
    let (shared, elsewhere) = (temp(), temp());
    std::fs::write(shared.path().join("listed.txt"), b"for everyone").expect("write");
    let data = bytes(2 * 256 * 1024 + 3, 11);
    let secret = elsewhere.path().join("for-bob.bin");
    std::fs::write(&secret, &data).expect("write");
    let node = serve(&lan, shared.path(), "alice").await;
    let (bob, eve) = (Identity::generate().expect("id"), Identity::generate().expect("id"));
    let id = node.grants.grant(&secret, HashSet::from([bob.node_id()])).await.expect("granted").0;

    let listing = lan.survey().expect("client").list(&[]).await.expect("listed");
    assert!(listing.dictionary.entry(&id).is_none(), "{kind}: a granted file is listed to nobody");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, node.port));
    let from = |who: Identity| {
        let transport = transport::builtin::client(kind, lan.transport_config(), who).expect("built in");
        [Source { node: node.id, addr, has: None, transport }]
    };
    let (to_bob, to_eve) = (temp(), temp());
    let path =
        download(id, &from(bob), to_bob.path(), &DownloadOptions::new(StateKey::random()).timeout(lan.timeout), |_| {})
            .await;
    assert!(std::fs::read(path.expect("bob fetches it")).expect("read") == data, "{kind}: the bytes differ");
    let refused =
        download(id, &from(eve), to_eve.path(), &DownloadOptions::new(StateKey::random()).timeout(lan.timeout), |_| {})
            .await;
    assert!(matches!(refused, Err(NodeError::NoManifest(_))), "{kind}: another id gets nothing: {refused:?}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tls() {
    a_granted_file_is_served_to_its_recipient_alone("tls").await
}

#[tokio::test(flavor = "multi_thread")]
async fn quic() {
    a_granted_file_is_served_to_its_recipient_alone("quic").await
}

/// Plain tcp proves no id: a granted file is served to nobody over it.
#[tokio::test(flavor = "multi_thread")]
async fn tcp_proves_nobody() {
    let lan = net("tcp", free_udp_port());
    let (shared, elsewhere) = (temp(), temp());
    let secret = elsewhere.path().join("for-bob.bin");
    std::fs::write(&secret, bytes(1000, 2)).expect("write");
    let node = serve(&lan, shared.path(), "alice").await;
    let bob = Identity::generate().expect("id");
    let id = node.grants.grant(&secret, HashSet::from([bob.node_id()])).await.expect("granted").0;
    let transport = transport::builtin::client("tcp", lan.transport_config(), bob).expect("built in");
    let source =
        [Source { node: node.id, addr: SocketAddr::from((Ipv4Addr::LOCALHOST, node.port)), has: None, transport }];
    let refused =
        download(id, &source, temp().path(), &DownloadOptions::new(StateKey::random()).timeout(lan.timeout), |_| {})
            .await;
    assert!(matches!(refused, Err(NodeError::NoManifest(_))), "{refused:?}");
    node.stop().await;
}
