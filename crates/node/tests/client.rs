//! The client API over real sockets: the embedding example of the crate's front page (examples/fetch.rs)
//! against a node, and a long-lived client beside a serving node in one process.

mod common;
#[allow(dead_code)]
#[path = "../examples/fetch.rs"]
mod example;

use std::net::Ipv4Addr;

use common::{bytes, free_udp_port, net, serve, temp};
use node::{Client, ClientConfig, FetchOptions};

#[tokio::test(flavor = "multi_thread")]
async fn the_front_page_example_fetches_a_file_from_a_serving_node() {
    let lan = net("tls", free_udp_port());
    let (shared, out) = (temp(), temp());
    let data = bytes(3 * 256 * 1024 + 17, 3);
    std::fs::write(shared.path().join("report.pdf"), &data).expect("write");
    let node = serve(&lan, shared.path(), "seed").await;
    let loopback = Some(vec![Ipv4Addr::new(127, 255, 255, 255)]);
    let path = example::fetch("report.pdf", out.path().into(), lan.discovery_port, loopback).await.expect("fetched");
    assert_eq!(path, out.path().join("report.pdf"));
    assert!(std::fs::read(&path).expect("read") == data, "the bytes differ from the node's");
    node.stop().await;
}

/// A serving process's client: it reads the node's peer table (no discoveries of its own), lists from it,
/// and runs two fetches at once into the node's downloads folder.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_beside_a_serving_node_shares_its_peer_table_and_fetches_at_once() {
    let lan = net("tls", free_udp_port());
    let (seed_dir, home_dir) = (temp(), temp());
    let (a, b) = (bytes(600 * 1024, 1), bytes(900 * 1024, 2));
    std::fs::write(seed_dir.path().join("a.bin"), &a).expect("write");
    std::fs::write(seed_dir.path().join("b.bin"), &b).expect("write");
    let seed = serve(&lan, seed_dir.path(), "seed").await;
    let home = serve(&lan, home_dir.path(), "home").await;
    let config = ClientConfig::default().net(lan.config.clone());
    let client = Client::builder(config).transport(lan.client()).peers(home.peers.clone()).build().expect("client");

    let listing = client.list(&["*.bin".to_string()]).await.expect("listed");
    assert_eq!(listing.selected.map(|ids| ids.len()), Some(2), "both files of the seed");
    assert!(listing.peers.iter().any(|p| p.id() == seed.id), "the seed is in the node's table");
    let (to, options) = (home.downloads.clone(), FetchOptions::default().upload(false));
    let (one, two) = (
        client.fetch(vec!["a.bin".into()], to.clone(), options),
        client.fetch(vec!["b.bin".into()], to.clone(), options),
    );
    let (one, two) = tokio::join!(one.finish(), two.finish());
    one.expect("a.bin fetched");
    two.expect("b.bin fetched");
    assert!(std::fs::read(to.join("a.bin")).expect("read") == a && std::fs::read(to.join("b.bin")).expect("read") == b);
    home.stop().await;
    seed.stop().await;
}
