//! The embedding example of the crate's front page (examples/fetch.rs), run against a real node on
//! loopback: the bytes it fetches are the node's.

mod common;
#[allow(dead_code)]
#[path = "../examples/fetch.rs"]
mod example;

use std::net::Ipv4Addr;

use common::{bytes, free_udp_port, net, serve, temp};

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
