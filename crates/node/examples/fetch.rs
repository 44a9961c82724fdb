//! Embedding p2pnode: a program that finds a file on the LAN and fetches it, every chunk verified, from
//! every peer that has it. `cargo run -p node --example fetch -- NAME [DEST]`.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use discovery::udp::{self, UdpConfig};
use node::{Client, ClientConfig, FetchEvent, FetchOptions, Identity};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let name = args.next().ok_or("usage: fetch NAME [DEST]")?;
    let dest = PathBuf::from(args.next().unwrap_or_else(|| ".".into()));
    // Every interface's broadcast address, on the usual discovery port.
    let path = fetch(&name, dest, udp::DEFAULT_PORT, None).await?;
    println!("fetched {}", path.display());
    Ok(())
}

/// Fetches the file `name` into `dest` over TLS, finding peers by UDP broadcast on `port` (to
/// `broadcast`, or every interface's broadcast address); returns where the file landed.
pub(crate) async fn fetch(
    name: &str,
    dest: PathBuf,
    port: u16,
    broadcast: Option<Vec<Ipv4Addr>>,
) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let identity = Identity::generate()?;
    let id = identity.node_id();
    let config = ClientConfig::default().timeout(Duration::from_secs(5));
    let tls = transport::builtin::client("tls", Default::default(), identity).ok_or("no tls transport")?;
    let interval = Duration::from_secs(5);
    let (static_peers, group) = (Vec::new(), None);
    let lan = udp::start(UdpConfig { local: id, port, listen: false, interval, broadcast, static_peers, group })?;
    let client = Client::builder(config).transport(tls).discovery(Box::new(lan)).build()?;

    let mut fetch = client.fetch(vec![name.into()], dest, FetchOptions::default());
    let mut landed = None;
    while let Some(event) = fetch.next_event().await {
        match event {
            FetchEvent::Planned { files, peers } => println!("{} file(s) from {} peer(s)", files.len(), peers.len()),
            FetchEvent::Done { path, .. } | FetchEvent::AlreadyHave { path, .. } => landed = Some(path),
            _ => {}
        }
    }
    fetch.finish().await?;
    Ok(landed.ok_or("nothing fetched")?)
}
