//! Nodes on an in-memory network and LAN (no sockets), on tokio's paused clock: timeouts, fallback and
//! expiry run in virtual time, deterministic and fast, through the same node code as over sockets.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use common::{bytes, temp};
use discovery::memory::MemoryLan;
use node::{
    Client, ClientConfig, DownloadEvent, DownloadOptions, Identity, NetConfig, Node, NodeId, ServeConfig, Source,
    StateKey, download,
};
use transport::Transport;
use transport::memory::MemoryNetwork;

const TIMEOUT: Duration = Duration::from_secs(3);

fn config() -> NetConfig {
    NetConfig::default().announce_interval(Duration::from_secs(1)).timeout(TIMEOUT)
}

/// A node at `ip` sharing `dir`, on the memory network and LAN; stops when the returned sender drops.
async fn serve(
    network: &MemoryNetwork,
    lan: &MemoryLan,
    ip: IpAddr,
    dir: &std::path::Path,
) -> (NodeId, SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let serve = ServeConfig::new(dir).net(config()).name(format!("node-{ip}"));
    let builder = Node::builder(serve).expect("builder");
    let identity = builder.identity().clone();
    let transport = Arc::new(network.transport(ip, &identity));
    let node = builder.transport(transport).discovery(Box::new(lan.join(ip, identity.node_id(), true))).bind().await;
    let node = node.expect("binds");
    let (id, addr) = (node.id(), node.local_addrs()[0].1);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    node.spawn_ready(async {
        let _ = stopped.await;
    })
    .await;
    (id, addr, stop)
}

/// A client at `ip` with an identity of its own.
fn client(network: &MemoryNetwork, ip: IpAddr) -> Arc<dyn Transport> {
    Arc::new(network.transport(ip, &Identity::generate().expect("identity")))
}

/// A source that accepts connections and requests and never answers: the download times it out (after
/// the timeout, in virtual time) and completes from the genuine node.
#[tokio::test(start_paused = true)]
async fn a_silent_source_is_timed_out_and_the_others_complete_the_file() {
    let (network, lan, dir, out) = (MemoryNetwork::default(), MemoryLan::default(), temp(), temp());
    let data = bytes(6 * 256 * 1024 + 5, 1);
    std::fs::write(dir.path().join("film.mkv"), &data).expect("write");
    let (genuine, addr, _stop) = serve(&network, &lan, [10, 0, 0, 1].into(), dir.path()).await;
    let silent_identity = Identity::generate().expect("identity");
    let silent = network.transport([10, 0, 0, 9].into(), &silent_identity);
    let mut listener = silent.bind(([0, 0, 0, 0], 0).into()).await.expect("bind");
    let silent_addr = listener.local_addr();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok(mut incoming) = listener.accept().await {
            tokio::spawn(async move {
                while let Ok(Some(stream)) = incoming.accept_stream().await {
                    std::mem::forget(stream)
                }
            });
            held.push(());
        }
    });
    let survey = Client::builder(ClientConfig::default().net(config()))
        .transport(client(&network, [10, 0, 0, 2].into()))
        .discovery(Box::new(lan.join([10, 0, 0, 2].into(), NodeId([2; 32]), false)))
        .build()
        .expect("client");
    let (id, _, mut sources) = survey.find("film.mkv").await.expect("listed");
    assert_eq!(sources.len(), 1);
    assert_eq!((sources[0].node, sources[0].addr), (genuine, addr));
    sources.insert(
        0,
        Source {
            node: silent_identity.node_id(),
            addr: silent_addr,
            has: None,
            transport: client(&network, [10, 0, 0, 2].into()),
        },
    );
    let mut senders = Vec::new();
    let path = download(id, &sources, out.path(), &DownloadOptions::new(StateKey::random()).timeout(TIMEOUT), |e| {
        if let DownloadEvent::Chunk { peer, .. } = e {
            senders.push(*peer);
        }
    })
    .await
    .expect("the genuine node completes the file");
    assert!(std::fs::read(path).expect("read") == data);
    // Whatever the silent source was asked went to the genuine node once its timeout expired (or in the
    // endgame), in virtual time.
    assert!(senders.iter().all(|peer| *peer == genuine), "a chunk came from the silent source");
    assert_eq!(senders.len(), 7);
}

/// A node that stops announcing expires from the LAN after three intervals, in virtual time.
#[tokio::test(start_paused = true)]
async fn a_stopped_node_expires_and_a_new_survey_no_longer_sees_it() {
    let (network, lan, dir) = (MemoryNetwork::default(), MemoryLan::default(), temp());
    let (id, _, stop) = serve(&network, &lan, [10, 0, 0, 1].into(), dir.path()).await;
    let survey = |host: u8| {
        let ip = IpAddr::from([10, 0, 0, host]);
        let builder = Client::builder(ClientConfig::default().net(config())).transport(client(&network, ip));
        builder.discovery(Box::new(lan.join(ip, NodeId([host; 32]), false))).build().expect("client")
    };
    let peers = survey(2).peers().await.expect("peers");
    assert_eq!(peers.iter().map(|p| p.id()).collect::<Vec<_>>(), vec![id]);
    drop(stop);
    let mut watcher = lan.join([10, 0, 0, 3].into(), NodeId([3; 32]), true);
    let gone = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            use node::Discovery;
            if let Some(discovery::PeerEvent::Expired(p)) = watcher.next_event().await
                && p.id() == id
            {
                return;
            }
        }
    });
    // The watcher joined after the node stopped: it sees nothing at all, or sees it expire.
    let _ = gone.await;
    assert!(
        matches!(survey(4).peers().await, Err(node::PeersError::NoneAnswered(_))),
        "a stopped node is still listed"
    );
}
