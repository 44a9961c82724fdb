//! What a node and a survey are told by the command line.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use proto::TransportKind;
use transport::TransportConfig;

/// How to reach the LAN: shared by serving, surveying and downloading.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// The transport used to connect to peers.
    pub transport: TransportKind,
    /// The discovery port of the LAN.
    pub discovery_port: u16,
    /// How often a serving node announces itself (peers expire it after three intervals).
    pub announce_interval: Duration,
    /// Where to broadcast; `None`: every interface's broadcast address.
    pub broadcast: Option<Vec<Ipv4Addr>>,
    /// Discovery addresses of peers beyond broadcast reach.
    pub static_peers: Vec<SocketAddr>,
    /// The longest wait for a peer: to appear, to connect, to answer one request.
    pub timeout: Duration,
    /// The congestion control of TCP connections (`None`: the system default).
    pub tcp_congestion: Option<String>,
    /// How long a serving node keeps a connection that asks nothing, and waits for a peer to take each
    /// piece of an answer ([`IDLE_TIMEOUT`] unless a test wants it shorter).
    pub idle_timeout: Duration,
}

/// The usual [`NetConfig::idle_timeout`].
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

impl NetConfig {
    /// The transport settings that follow from these.
    pub fn transport_config(&self) -> TransportConfig {
        TransportConfig {
            connect_timeout: self.timeout.min(Duration::from_secs(5)),
            idle_timeout: self.idle_timeout,
            tcp_congestion: self.tcp_congestion.clone(),
        }
    }
}

/// What a serving node shares and where it listens.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// How to reach the LAN.
    pub net: NetConfig,
    /// The display name announced.
    pub name: String,
    /// The shared folder.
    pub dir: PathBuf,
    /// The downloads folder, shared as well.
    pub downloads: PathBuf,
    /// Where the node keeps its identity and hash cache.
    pub state_dir: PathBuf,
    /// The transfer port (0: any free port).
    pub port: u16,
    /// The most bytes per second the node uploads, over all peers.
    pub max_upload_rate: Option<u64>,
}
