//! The benches' test bed: real p2pnode nodes serving a file and a real download of it, over loopback or
//! over links emulated by `linkem`, so that what is measured is the code a user runs (transport, store,
//! verification, scheduler); only discovery is skipped, the sources being given to the download.
//!
//! Every party (each source node, the downloader) runs on its own thread with its own runtime, inside its
//! own network namespace when a link is emulated: sockets belong to the namespace of the thread that made
//! them.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

pub use linkem::Stats;
use linkem::{Namespace, Profile, Star};
use node::{DownloadOptions, FileId, Identity, NetConfig, Node, ServeConfig, Source, download};
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use transport::TransportConfig;

/// Errors at the edge of a bench: setup problems are reported as text.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

const FILE: &str = "payload.bin";

/// One case: where the bytes go and how.
#[derive(Clone, Debug)]
pub struct Case {
    /// The link profile of every source's link (see [`Profile::named`]); `None` for plain loopback.
    pub profile: Option<&'static str>,
    /// The transport of the download.
    pub transport: &'static str,
    /// TCP congestion control of every node (`None`: the system's).
    pub congestion: Option<&'static str>,
    /// How many sources, each behind its own link.
    pub sources: usize,
    /// The file size.
    pub size: u64,
}

impl Case {
    /// `profile/transport[-cc][/xN]`, as criterion names it.
    pub fn name(&self) -> String {
        let mut name = format!("{}/{}", self.profile.unwrap_or("loopback"), self.transport_label());
        if self.sources > 1 {
            name += &format!("/x{}", self.sources);
        }
        name
    }

    /// The transport with its congestion control: `tcp-cubic`, `quic`.
    pub fn transport_label(&self) -> String {
        match self.congestion {
            Some(cc) => format!("{}-{cc}", self.transport),
            None => self.transport.to_string(),
        }
    }

    /// The bits per second the links carry in all (`None` on loopback).
    pub fn link_rate(&self) -> Option<u64> {
        let rate = Profile::named(self.profile?)?.rate?;
        Some(rate * self.sources as u64)
    }
}

/// Sources serving the case's file and a downloader, ready to download it again and again.
pub struct Bed {
    downloader: Party,
    sources: Vec<Source>,
    id: FileId,
    case: Case,
    out: tempfile::TempDir,
    // Dropped last: the parties (declared above) stop first, then the links and namespaces go.
    _servers: Vec<Party>,
    /// The shared data, then each source's own folder.
    _dirs: Vec<tempfile::TempDir>,
    star: Option<Star>,
}

impl Bed {
    /// Builds the network (when a profile is given), writes the file and starts one node per source.
    pub fn new(case: &Case) -> Result<Self, Error> {
        let data = tempfile::tempdir()?;
        let data_dir = data.path().to_path_buf();
        let path = data_dir.join(FILE);
        write_random(&path, case.size)?;
        let id = store::hash_file(&path, FILE.into())?.id();
        let star = match case.profile {
            Some(name) => Some(Star::new(case.sources, Profile::named(name).ok_or("unknown profile")?)?),
            None => None,
        };
        let namespace = |i: usize| star.as_ref().map(|s| &s.spokes[i]);
        let mut servers = Vec::new();
        let mut sources = Vec::new();
        let mut dirs = vec![data];
        for i in 0..case.sources {
            let party = Party::start(namespace(i))?;
            let own = tempfile::tempdir()?;
            let config = serve_config(&data_dir, own.path(), i);
            dirs.push(own);
            let node = party.run(bind(config, transport_config(case)))??;
            let port = node.local_addrs()[0].1.port();
            let ip = if star.is_some() { IpAddr::V4(Star::spoke_addr(i)) } else { IpAddr::V4(Ipv4Addr::LOCALHOST) };
            let identity = Identity::generate().map_err(|e| e.to_string())?;
            let transport = transport::builtin::client(case.transport, transport_config(case), identity)
                .ok_or("unknown transport")?;
            sources.push(Source { node: node.id(), addr: SocketAddr::new(ip, port), has: None, transport });
            party.serve(node);
            servers.push(party);
        }
        let downloader = Party::start(star.as_ref().map(|s| &s.hub))?;
        let out = tempfile::tempdir()?;
        Ok(Self { downloader, sources, id, case: case.clone(), out, _servers: servers, _dirs: dirs, star })
    }

    /// Downloads the file once (into an empty folder, removed afterwards) and returns how long it took.
    /// A download that gives up (every source timed out) is run again, resuming, as a user would; the
    /// time counts every attempt.
    pub fn download(&self) -> Result<Duration, Error> {
        let mut took = Duration::ZERO;
        for _ in 0..RESUMES {
            let (id, sources, out) = (self.id, self.sources.clone(), self.out.path().to_path_buf());
            let (elapsed, result) = self.downloader.run(async move {
                let options = DownloadOptions::new(node::StateKey::random()).timeout(net().timeout);
                let started = Instant::now();
                let result = download(id, &sources, &out, &options, |_| {}).await;
                (started.elapsed(), result)
            })?;
            took += elapsed;
            match result {
                Ok(path) => {
                    std::fs::remove_file(path)?;
                    return Ok(took);
                }
                Err(e) => eprintln!("{}: resuming after: {e}", self.case.name()),
            }
        }
        Err(format!("{}: no complete download in {RESUMES} attempts", self.case.name()).into())
    }

    /// What the links did so far, summed over the sources: sources to downloader, then back.
    pub fn link_stats(&self) -> Option<[Stats; 2]> {
        let star = self.star.as_ref()?;
        let mut sum = [Stats::default(); 2];
        for i in 0..self.sources.len() {
            for (total, link) in sum.iter_mut().zip(star.stats(i)) {
                *total = *total + link;
            }
        }
        Some(sum)
    }
}

/// Attempts of one download before the bench gives up.
const RESUMES: usize = 5;

fn net() -> NetConfig {
    NetConfig::default().announce_interval(Duration::from_secs(60)).timeout(Duration::from_secs(20))
}

/// The transports of `case`: its congestion control, connections made within the timeout.
fn transport_config(case: &Case) -> TransportConfig {
    let config = TransportConfig::default().connect_timeout(net().timeout.min(Duration::from_secs(5)));
    config.idle_timeout(net().idle_timeout).tcp_congestion(case.congestion.map(str::to_string))
}

/// A source node on every transport; the bench hands downloads their sources, so discovery is a LAN of
/// its own in memory.
async fn bind(config: ServeConfig, transports: TransportConfig) -> Result<Node, node::NodeError> {
    let builder = Node::builder(config.clone())?;
    let identity = builder.identity().clone();
    let lan = discovery::memory::MemoryLan::default().join(Ipv4Addr::LOCALHOST.into(), identity.node_id(), true);
    let mut builder = builder.discovery(Box::new(lan));
    for transport in transport::builtin::serving(transports, &identity) {
        builder = builder.transport(transport);
    }
    builder.bind().await
}

/// Source `i` shares the common data folder; its downloads and state go to `own`.
fn serve_config(data: &Path, own: &Path, i: usize) -> ServeConfig {
    let config = ServeConfig::new(data).net(net()).name(format!("source{i}"));
    config.downloads(own.join("downloads")).state_dir(own.join("state"))
}

/// Incompressible bytes, written in pieces.
fn write_random(path: &Path, size: u64) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut noise = testdata::Noise::new(size);
    let mut piece = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(piece.len() as u64) as usize;
        piece[..n].iter_mut().zip(&mut noise).for_each(|(b, x)| *b = x);
        out.write_all(&piece[..n])?;
        left -= n as u64;
    }
    out.flush()
}

/// A thread with its own runtime, in a namespace when given; stopped when dropped.
struct Party {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), linkem::LinkError>>>,
}

impl Party {
    fn start(namespace: Option<&Namespace>) -> Result<Self, Error> {
        let (ready, handle) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let body = move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            let Ok(runtime) = runtime else { return };
            let _ = ready.send(runtime.handle().clone());
            let _ = runtime.block_on(stopped);
        };
        let thread = match namespace {
            Some(ns) => ns.spawn(body)?,
            None => std::thread::spawn(move || {
                body();
                Ok(())
            }),
        };
        let handle = handle.recv().map_err(|_| "a party's runtime did not start")?;
        Ok(Self { handle, stop: Some(stop), thread: Some(thread) })
    }

    /// Runs `work` on the party's thread (so its sockets live in the party's namespace), waiting for it.
    fn run<T: Send + 'static>(&self, work: impl Future<Output = T> + Send + 'static) -> Result<T, Error> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.handle.spawn(async move {
            let _ = tx.send(work.await);
        });
        rx.recv().map_err(|_| "a party stopped before finishing its work".into())
    }

    /// Serves with `node` until the party is dropped.
    fn serve(&self, node: Node) {
        self.handle.spawn(async move {
            if let Err(e) = node.run(std::future::pending()).await {
                eprintln!("source node failed: {e}");
            }
        });
    }
}

impl Drop for Party {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
