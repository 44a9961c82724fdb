//! Hosts that lie in discovery: one that claims a genuine node's id, one that re-announces without end,
//! one that claims many ids whose servers stall. Each answers a survey's query from another loopback
//! address (127.0.0.3, another host), reached as a static peer.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::{bytes, free_udp_port, net, serve, temp};
use node::{DownloadOptions, NodeId, StateKey, download};
use proto::{Announcement, Catalogue, CatalogueEntry, Datagram, FileId, Request, Response};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use transport::frame_io::{read_request, write_response};

const OTHER_HOST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

#[tokio::test(flavor = "multi_thread")]
async fn tcp_an_impostor_does_not_hide_the_genuine_node() {
    an_impostor_does_not_hide_the_genuine_node("tcp").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn quic_an_impostor_does_not_hide_the_genuine_node() {
    an_impostor_does_not_hide_the_genuine_node("quic").await;
}

/// The impostor answers every query just after the genuine node, with the genuine node's id and the port
/// of a real node of another identity (a decoy that shares nothing): before, its claim replaced the
/// genuine one, and `get` asked only the decoy.
async fn an_impostor_does_not_hide_the_genuine_node(kind: &'static str) {
    let mut net = net(kind, free_udp_port());
    let (genuine_dir, decoy_dir) = (temp(), temp());
    let data = bytes(3 * 256 * 1024 + 11, 5);
    std::fs::write(genuine_dir.path().join("plans.pdf"), &data).expect("write");
    let genuine = serve(&net, genuine_dir.path(), "genuine").await;
    let decoy = serve(&net, decoy_dir.path(), "decoy").await;
    let (impostor, _answering) =
        lying_peer(Duration::from_millis(50), move |_| vec![announcement(genuine.id, "genuine", decoy.port, 1)]).await;
    net.static_peers = vec![impostor];

    let survey = net.survey().expect("survey");
    let peers = survey.peers().await.expect("peers");
    let claims: Vec<_> = peers.iter().filter(|p| p.id() == genuine.id).map(|p| p.ip).collect();
    assert_eq!(claims.len(), 2, "{kind}: both claims to the id are kept: {claims:?}");
    let (id, _, sources) = survey.find("plans.pdf").await.expect("listed");
    let out = temp();
    let path =
        download(id, &sources, out.path(), &DownloadOptions::new(StateKey::random()).timeout(net.timeout), |_| {})
            .await
            .expect("the genuine node serves despite the impostor");
    assert!(std::fs::read(path).expect("read") == data);
    genuine.stop().await;
    decoy.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_survey_settles_within_its_timeout_whatever_a_peer_announces() {
    let mut net = net("tcp", free_udp_port());
    net.timeout = Duration::from_secs(2);
    // A peer that answers the query, then announces a new catalogue version every 20 ms for a minute.
    let (chatty, _answering) = lying_peer(Duration::ZERO, |_| {
        (1..3_000).map(|version| announcement(NodeId([4; 32]), "chatty", 1, version)).collect()
    })
    .await;
    net.static_peers = vec![chatty];
    let started = tokio::time::Instant::now();
    let survey = net.survey().expect("survey");
    let settled = tokio::time::timeout(4 * net.timeout, survey.peers()).await;
    assert!(settled.is_ok(), "the survey never settled");
    assert_eq!(settled.expect("settled").expect("peers").len(), 1);
    eprintln!("settled after {:?} with --timeout {:?}", started.elapsed(), net.timeout);
}

/// Eight ids on one host whose servers list the file but never answer for its manifest: the manifest is
/// asked of several sources at once, so they cost one timeout together, not one each (12 s before, with
/// a 1.5 s timeout).
#[tokio::test(flavor = "multi_thread")]
async fn stalling_hosts_cost_one_timeout_together() {
    let mut net = net("tcp", free_udp_port());
    net.timeout = Duration::from_millis(1500);
    let dir = temp();
    let data = bytes(300_000, 9);
    std::fs::write(dir.path().join("report.txt"), &data).expect("write");
    let genuine = serve(&net, dir.path(), "genuine").await;
    let listed = net.survey().expect("survey").find("report.txt").await.expect("listed").1;
    let entry = CatalogueEntry { id: FileId([0; 32]), name: listed.name, size: listed.size, have: None };
    let survey = net.survey().expect("survey");
    let id = survey.find("report.txt").await.expect("listed").0;
    let staller = stalling_server(Catalogue { entries: vec![CatalogueEntry { id, ..entry }] }).await;
    let (host, _answering) = lying_peer(Duration::ZERO, move |_| {
        (1..=8u8).map(|i| announcement(NodeId([i; 32]), "staller", staller.port(), 1)).collect()
    })
    .await;
    net.static_peers = vec![host];

    let survey = net.survey().expect("survey");
    let (id, _, sources) = survey.find("report.txt").await.expect("listed");
    assert_eq!(sources.len(), 9, "the genuine node and eight stalling ids");
    let started = tokio::time::Instant::now();
    let (out, key) = (temp(), StateKey::random());
    let options = DownloadOptions::new(key.clone()).timeout(net.timeout);
    let fetch = download(id, &sources, out.path(), &options, |_| {});
    let path = tokio::time::timeout(4 * net.timeout, fetch).await.expect("not one timeout per staller");
    assert!(path.is_ok(), "{path:?}");
    eprintln!("downloaded past 8 stalling hosts in {:?} with --timeout {:?}", started.elapsed(), net.timeout);
    genuine.stop().await;
}

fn announcement(node: NodeId, name: &str, port: u16, catalogue_version: u64) -> Announcement {
    Announcement {
        node,
        instance: 7,
        name: name.into(),
        ports: vec![("tcp".into(), port), ("quic".into(), port)],
        catalogue_version,
        file_count: 1,
        interval_secs: 1,
    }
}

/// A discovery peer on [`OTHER_HOST`] that answers each query, after `delay`, with the announcements
/// `answer` makes (20 ms apart); returns its discovery address.
async fn lying_peer(
    delay: Duration,
    answer: impl Fn(SocketAddr) -> Vec<Announcement> + Send + 'static,
) -> (SocketAddr, JoinHandle<()>) {
    let socket = UdpSocket::bind((OTHER_HOST, 0)).await.expect("bind 127.0.0.3");
    let addr = socket.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut buf = [0u8; proto::MAX_DATAGRAM];
        while let Ok((len, asker)) = socket.recv_from(&mut buf).await {
            if !matches!(Datagram::decode(&buf[..len]), Ok(Datagram::Query { .. })) {
                continue;
            }
            tokio::time::sleep(delay).await;
            for a in answer(asker) {
                let bytes = Datagram::Announce(a).encode().expect("encodes");
                let _ = socket.send_to(&bytes, asker).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    (addr, task)
}

/// A TCP server on [`OTHER_HOST`] that answers catalogue requests with `catalogue` and never answers any
/// other request.
async fn stalling_server(catalogue: Catalogue) -> SocketAddr {
    let listener = TcpListener::bind((OTHER_HOST, 0)).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let encoded = catalogue.encode();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let encoded = encoded.clone();
            tokio::spawn(async move {
                while let Ok(Some(request)) = read_request(&mut s).await {
                    if request != Request::Catalogue {
                        return std::future::pending().await;
                    }
                    let ok = Response::Ok { len: encoded.len() as u64 };
                    if write_response(&mut s, &ok).await.is_err() || s.write_all(&encoded).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}
