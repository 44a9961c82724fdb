//! Real nodes on loopback for the integration tests: each test gets its own discovery port and
//! broadcasts only on 127.255.255.255.

#![allow(dead_code, unreachable_pub, unused_imports)]

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use discovery::udp::{self, UdpConfig};
use node::{
    Client, ClientConfig, Discovery, Identity, NetConfig, Node, NodeError, NodeId, ServeConfig, Source, Transport,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use transport::TransportConfig;

/// A free UDP port for a test's discovery (the OS picks it; the socket is released at once).
pub fn free_udp_port() -> u16 {
    UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|s| s.local_addr()).map(|a| a.port()).expect("free port")
}

/// A test's LAN: its discovery port on loopback broadcast, and the transport its clients use.
#[derive(Clone, Debug)]
pub struct Lan {
    pub config: NetConfig,
    pub discovery_port: u16,
    pub transport: &'static str,
    /// Discovery addresses of peers beyond broadcast reach.
    pub static_peers: Vec<SocketAddr>,
}

impl Deref for Lan {
    type Target = NetConfig;
    fn deref(&self) -> &NetConfig {
        &self.config
    }
}

impl DerefMut for Lan {
    fn deref_mut(&mut self) -> &mut NetConfig {
        &mut self.config
    }
}

pub fn net(transport: &'static str, discovery_port: u16) -> Lan {
    let config = NetConfig::default().announce_interval(Duration::from_secs(1)).timeout(Duration::from_secs(3));
    Lan { config, discovery_port, transport, static_peers: vec![] }
}

impl Lan {
    /// The settings of this LAN's transports: connections made within the timeout.
    pub fn transport_config(&self) -> TransportConfig {
        TransportConfig::default().connect_timeout(self.timeout).idle_timeout(self.idle_timeout)
    }

    /// UDP discovery of node `local` on this LAN.
    pub fn udp(&self, local: NodeId, listen: bool) -> Box<dyn Discovery> {
        let config = UdpConfig {
            local,
            port: self.discovery_port,
            listen,
            interval: self.announce_interval,
            broadcast: Some(vec![Ipv4Addr::new(127, 255, 255, 255)]),
            static_peers: self.static_peers.clone(),
            group: None,
        };
        Box::new(udp::start(config).expect("udp discovery"))
    }

    /// A client of this LAN's transport, with an identity of its own.
    pub fn client(&self) -> Arc<dyn Transport> {
        client(self.transport, self)
    }

    /// A client of this LAN over its transport, with a peer table of its own.
    pub fn survey(&self) -> Result<Client, NodeError> {
        let identity = Identity::generate().expect("identity");
        let builder = Client::builder(ClientConfig::default().net(self.config.clone()));
        builder.transport(client(self.transport, self)).discovery(self.udp(identity.node_id(), false)).build()
    }

    /// A source at `addr` claiming `node`, over this LAN's transport.
    pub fn source(&self, node: NodeId, addr: SocketAddr) -> Source {
        Source { node, addr, has: None, transport: self.client() }
    }
}

/// A client of the transport `name`, with an identity of its own.
pub fn client(name: &str, lan: &Lan) -> Arc<dyn Transport> {
    let identity = Identity::generate().expect("identity");
    transport::builtin::client(name, lan.transport_config(), identity).expect("a transport of this crate")
}

/// A serving node; dropping `stop` (or sending on it) shuts it down.
pub struct Running {
    pub id: NodeId,
    /// The transfer port (the same number for every transport).
    pub port: u16,
    pub dir: PathBuf,
    pub downloads: PathBuf,
    /// The files it serves to given peers alone.
    pub grants: node::Grants,
    /// Its peer table, for a client in the same process.
    pub peers: node::PeerTable,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), NodeError>>,
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

pub async fn serve(net: &Lan, dir: &Path, name: &str) -> Running {
    serve_capped(net, dir, name, None).await
}

/// A serving node whose upload is capped at `rate` bytes per second.
pub async fn serve_capped(net: &Lan, dir: &Path, name: &str, rate: Option<u64>) -> Running {
    let downloads = dir.join("downloads");
    let config = ServeConfig::new(dir).net(net.config.clone()).name(name).max_upload_rate(rate);
    let builder = Node::builder(config).expect("node checks its folders");
    let identity = builder.identity().clone();
    let mut builder = builder.discovery(net.udp(identity.node_id(), true));
    for transport in transport::builtin::serving(net.transport_config(), &identity) {
        builder = builder.transport(transport);
    }
    let node = builder.bind().await.expect("node binds");
    let (id, grants, peers) = (node.id(), node.grants(), node.peer_table().clone());
    let port = node.local_addrs()[0].1.port();
    let (tx, rx) = oneshot::channel::<()>();
    let task = node
        .spawn_ready(async {
            let _ = rx.await;
        })
        .await;
    Running { id, port, dir: dir.to_path_buf(), downloads, grants, peers, stop: Some(tx), task }
}

pub use testdata::bytes;

pub fn temp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}
