//! The settings of a node and a client: how they behave on the LAN and what a node shares.

use std::path::PathBuf;
use std::time::Duration;

/// How to behave on the LAN: shared by serving, surveying and downloading (which transports and
/// discoveries to use is the plug-ins' business, and so are their settings: see [`crate::NodeBuilder`]
/// and [`crate::ClientBuilder`]). `Default`, then the setters.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NetConfig {
    /// How often a serving node announces itself (peers expire it after three intervals).
    pub announce_interval: Duration,
    /// The longest wait for a peer: to appear, to connect, to answer one request.
    pub timeout: Duration,
    /// How long a serving node keeps a connection that asks nothing, and waits for a peer to take each
    /// piece of an answer ([`IDLE_TIMEOUT`] unless a test wants it shorter).
    pub idle_timeout: Duration,
}

/// The usual [`NetConfig::idle_timeout`].
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for NetConfig {
    /// Announcements every 5 s, a 10 s timeout, [`IDLE_TIMEOUT`].
    fn default() -> Self {
        let (announce_interval, timeout) = (Duration::from_secs(5), Duration::from_secs(10));
        Self { announce_interval, timeout, idle_timeout: IDLE_TIMEOUT }
    }
}

impl NetConfig {
    /// How often a serving node announces itself.
    pub fn announce_interval(mut self, interval: Duration) -> Self {
        self.announce_interval = interval;
        self
    }

    /// The longest wait for a peer: to appear, to connect, to answer one request.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long a serving node keeps a connection that asks nothing.
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = idle;
        self
    }
}

/// What a serving node shares and where it listens: [`ServeConfig::new`] with the shared folder, then
/// the setters.
#[derive(Clone, Debug)]
#[non_exhaustive]
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
    /// Which offers of files and texts it takes (fetched into the downloads folder).
    pub accept: crate::Accept,
}

impl ServeConfig {
    /// Shares `dir`, with its downloads in `dir/downloads` and its state in `dir/.p2pnode`, announced as
    /// `p2pnode` on any free port, uncapped, with the default [`NetConfig`].
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        let (downloads, state_dir) = (dir.join("downloads"), dir.join(".p2pnode"));
        Self {
            net: NetConfig::default(),
            name: "p2pnode".into(),
            dir,
            downloads,
            state_dir,
            port: 0,
            max_upload_rate: None,
            accept: crate::Accept::default(),
        }
    }

    /// How to reach the LAN.
    pub fn net(mut self, net: NetConfig) -> Self {
        self.net = net;
        self
    }

    /// The display name announced.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The downloads folder, shared as well.
    pub fn downloads(mut self, dir: impl Into<PathBuf>) -> Self {
        self.downloads = dir.into();
        self
    }

    /// The state folder (identity, keys, hash cache).
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = dir.into();
        self
    }

    /// The transfer port (0: any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The most bytes per second the node uploads, over all peers (`None`: no cap).
    pub fn max_upload_rate(mut self, rate: Option<u64>) -> Self {
        self.max_upload_rate = rate;
        self
    }

    /// Which offers of files and texts the node takes ([`crate::Accept::Ask`] unless set).
    pub fn accept(mut self, accept: crate::Accept) -> Self {
        self.accept = accept;
        self
    }
}

/// Files one fetch downloads at once (each from all its peers), unless configured: enough to hide each
/// file's round trips.
const FILES_AT_ONCE: usize = 8;

/// How a client behaves. `Default`, then the setters: `ClientConfig::default().timeout(secs(3))`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    pub(crate) net: NetConfig,
    pub(crate) files_at_once: usize,
    pub(crate) state_dir: Option<PathBuf>,
    pub(crate) name: String,
    pub(crate) port: u16,
    pub(crate) private_group: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        let (files_at_once, state_dir, private_group) = (FILES_AT_ONCE, None, false);
        Self { net: NetConfig::default(), files_at_once, state_dir, name: "p2pnode".into(), port: 0, private_group }
    }
}

impl ClientConfig {
    /// The network settings (timeout, announce interval, idle timeout) as a whole.
    pub fn net(mut self, net: NetConfig) -> Self {
        self.net = net;
        self
    }

    /// The longest wait for a peer: to appear, to connect, to answer one request.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.net.timeout = timeout;
        self
    }

    /// How many files one fetch downloads at once (at least one).
    pub fn files_at_once(mut self, files: usize) -> Self {
        self.files_at_once = files.max(1);
        self
    }

    /// The state folder whose key authenticates download state (so an interrupted fetch resumes in a
    /// later process) and whose hash cache tells the files a destination holds already. Without one, a
    /// fetch resumes only within this process.
    pub fn state_dir(mut self, dir: PathBuf) -> Self {
        self.state_dir = Some(dir);
        self
    }

    /// The name the upload side of a fetch announces.
    pub fn name(mut self, name: String) -> Self {
        self.name = name;
        self
    }

    /// The transfer port the upload side of a fetch listens on (any free one where it is taken).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Whether this client is a member of a private group: a LAN where nobody answers then says so
    /// (the one thing a wrong group secret looks like).
    pub fn private_group(mut self, member: bool) -> Self {
        self.private_group = member;
        self
    }
}
