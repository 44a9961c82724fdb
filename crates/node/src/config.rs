//! The settings of a node and a client: how they behave on the LAN and what a node shares.

use std::path::PathBuf;
use std::time::Duration;

use transport::TransportConfig;

/// How to behave on the LAN: shared by serving, surveying and downloading (which transports and
/// discoveries to use is the plug-ins' business: see [`crate::NodeBuilder`] and [`crate::ClientBuilder`]).
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// How often a serving node announces itself (peers expire it after three intervals).
    pub announce_interval: Duration,
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

impl Default for NetConfig {
    /// Announcements every 5 s, a 10 s timeout, the system's congestion control, [`IDLE_TIMEOUT`].
    fn default() -> Self {
        let (announce_interval, timeout) = (Duration::from_secs(5), Duration::from_secs(10));
        Self { announce_interval, timeout, tcp_congestion: None, idle_timeout: IDLE_TIMEOUT }
    }
}

impl NetConfig {
    /// The settings of the transports a binary makes from these.
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
