//! Real UDP discovery between several nodes on one host, over the loopback broadcast address only.

use std::net::Ipv4Addr;
use std::time::Duration;

use discovery::udp::{UdpConfig, UdpDiscovery};
use discovery::{Discovery, PeerEvent};
use proto::{Announcement, NodeId, TransportKind};

fn config(node: u8, port: u16, listen: bool) -> UdpConfig {
    UdpConfig {
        local: NodeId([node; 32]),
        port,
        listen,
        interval: Duration::from_secs(1),
        broadcast: Some(vec![Ipv4Addr::new(127, 255, 255, 255)]),
        static_peers: vec![],
    }
}

fn record(node: u8) -> Announcement {
    Announcement {
        node: NodeId([node; 32]),
        instance: 7,
        name: format!("node{node}"),
        ports: vec![(TransportKind::Tcp, 6000 + u16::from(node))],
        catalogue_version: 1,
        file_count: 0,
        interval_secs: 1,
    }
}

/// Collects `Seen` events until `n` distinct nodes were seen or the deadline passes.
async fn seen(d: &mut UdpDiscovery, n: usize, within: Duration) -> Vec<NodeId> {
    let mut ids = Vec::new();
    let _ = tokio::time::timeout(within, async {
        while ids.len() < n {
            if let Some(PeerEvent::Seen(p)) = d.next_event().await {
                ids.push(p.id());
            }
        }
    })
    .await;
    ids.sort();
    ids
}

fn test_port(offset: u16) -> u16 {
    20_000 + (std::process::id() % 20_000) as u16 + offset
}

#[tokio::test]
async fn three_nodes_on_one_host_see_each_other_and_a_client_sees_all() {
    let port = test_port(0);
    let mut nodes: Vec<_> = (1..=3).map(|i| UdpDiscovery::start(config(i, port, true)).expect("start")).collect();
    for (i, n) in nodes.iter().enumerate() {
        n.announce(record(i as u8 + 1));
    }
    for (i, n) in nodes.iter_mut().enumerate() {
        let others: Vec<_> = (1..=3u8).filter(|j| *j != i as u8 + 1).map(|j| NodeId([j; 32])).collect();
        assert_eq!(seen(n, 2, Duration::from_secs(1)).await, others, "node {}", i + 1);
    }

    let mut client = UdpDiscovery::start(config(9, port, false)).expect("client");
    client.query();
    let all: Vec<_> = (1..=3u8).map(|j| NodeId([j; 32])).collect();
    assert_eq!(seen(&mut client, 3, Duration::from_secs(1)).await, all);
}

#[tokio::test]
async fn static_peer_is_found_without_broadcast() {
    let port = test_port(1);
    let mut server_config = config(1, port, true);
    server_config.broadcast = Some(vec![]);
    let server = UdpDiscovery::start(server_config).expect("start");
    server.announce(record(1));

    let mut client_config = config(2, test_port(2), false);
    client_config.broadcast = Some(vec![]);
    client_config.static_peers = vec![(Ipv4Addr::LOCALHOST, port).into()];
    let mut client = UdpDiscovery::start(client_config).expect("client");
    client.query();
    let found = seen(&mut client, 1, Duration::from_secs(1)).await;
    assert_eq!(found, vec![NodeId([1; 32])]);
}

#[tokio::test]
async fn expired_after_three_missed_intervals() {
    let port = test_port(3);
    let mut watcher = UdpDiscovery::start(config(1, port, true)).expect("start");
    let leaver = UdpDiscovery::start(config(2, port, true)).expect("start");
    leaver.announce(record(2));
    assert_eq!(seen(&mut watcher, 1, Duration::from_secs(1)).await, vec![NodeId([2; 32])]);
    drop(leaver);
    let expired = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(PeerEvent::Expired(p)) = watcher.next_event().await {
                return p.id();
            }
        }
    })
    .await;
    assert_eq!(expired.ok(), Some(NodeId([2; 32])));
}
