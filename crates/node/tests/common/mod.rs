//! Real nodes on loopback for the integration tests: each test gets its own discovery port and
//! broadcasts only on 127.255.255.255.

#![allow(dead_code, unreachable_pub, unused_imports)]

use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use node::{NetConfig, Node, NodeId, ServeConfig, TransportKind};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A free UDP port for a test's discovery (the OS picks it; the socket is released at once).
pub fn free_udp_port() -> u16 {
    UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|s| s.local_addr()).map(|a| a.port()).expect("free port")
}

pub fn net(transport: TransportKind, discovery_port: u16) -> NetConfig {
    NetConfig {
        transport,
        discovery_port,
        announce_interval: Duration::from_secs(1),
        broadcast: Some(vec![Ipv4Addr::new(127, 255, 255, 255)]),
        static_peers: vec![],
        timeout: Duration::from_secs(3),
        tcp_congestion: None,
        idle_timeout: node::IDLE_TIMEOUT,
    }
}

/// A serving node; dropping `stop` (or sending on it) shuts it down.
pub struct Running {
    pub id: NodeId,
    /// The transfer port (the same number for every transport).
    pub port: u16,
    pub dir: PathBuf,
    pub downloads: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    /// Stops the node and waits until every connection is closed.
    pub async fn stop(mut self) {
        self.stop.take();
        let _ = (&mut self.task).await;
    }

    /// A closure that stops the node from a synchronous callback.
    pub fn stopper(&mut self) -> impl FnOnce() + use<> {
        let stop = self.stop.take();
        move || drop(stop)
    }
}

pub async fn serve(net: &NetConfig, dir: &Path, name: &str) -> Running {
    serve_capped(net, dir, name, None).await
}

/// A serving node whose upload is capped at `rate` bytes per second.
pub async fn serve_capped(net: &NetConfig, dir: &Path, name: &str, rate: Option<u64>) -> Running {
    let downloads = dir.join("downloads");
    let config = ServeConfig {
        net: net.clone(),
        name: name.into(),
        dir: dir.to_path_buf(),
        downloads: downloads.clone(),
        state_dir: dir.join(".p2pnode"),
        port: 0,
        max_upload_rate: rate,
    };
    let node = Node::bind(config).await.expect("node binds");
    let id = node.id();
    let port = node.local_addrs()[0].1.port();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        node.run(async {
            let _ = rx.await;
        })
        .await
        .expect("node runs");
    });
    Running { id, port, dir: dir.to_path_buf(), downloads, stop: Some(tx), task }
}

pub use testdata::bytes;

pub fn temp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}
