//! The one place where the command line's `--transport` and `--discovery` become plug-ins: the node
//! crate takes them as traits and never names a concrete one.

use std::sync::Arc;

use anyhow::Context;
use discovery::mdns::{MdnsConfig, MdnsDiscovery};
use discovery::udp::{self, UdpConfig};
use node::{Discovery, Identity, NetConfig, NodeId, Transport};
use transport::TransportConfig;

use crate::cli::Global;

/// The transports a client may pick, the default first.
pub(crate) use transport::builtin::NAMES as TRANSPORTS;
/// The discoveries that may be named.
pub(crate) const DISCOVERIES: [&str; 2] = ["broadcast", "mdns"];

/// The transport a client connects with (named by `--transport`, checked when parsed), proving
/// `identity` where it authenticates.
pub(crate) fn client_transport(
    name: &str,
    config: TransportConfig,
    identity: Identity,
) -> anyhow::Result<Arc<dyn Transport>> {
    transport::builtin::client(name, config, identity).with_context(|| format!("--transport {name}: unknown"))
}

/// What a serving node listens on: every transport, on one port number.
pub(crate) fn serving_transports(config: TransportConfig, identity: &Identity) -> Vec<Arc<dyn Transport>> {
    transport::builtin::serving(config, identity)
}

/// The discoveries of node `local` (`listen`: a serving node, which hears announcements), as
/// `--discovery` names them, or by default broadcast plus mDNS, but mDNS only where the node is not
/// isolated by `--broadcast` or a `--discovery-port` of its own (tests and scripts isolate themselves that
/// way, and must never multicast on the host's interfaces).
pub(crate) fn discoveries(
    g: &Global,
    net: &NetConfig,
    local: NodeId,
    listen: bool,
) -> anyhow::Result<Vec<Box<dyn Discovery>>> {
    let isolated = !g.broadcast.is_empty() || g.discovery_port != udp::DEFAULT_PORT;
    let names: Vec<&str> = match &g.discovery {
        Some(names) => names.iter().map(String::as_str).collect(),
        None if isolated => vec!["broadcast"],
        None => vec!["broadcast", "mdns"],
    };
    let mut made: Vec<Box<dyn Discovery>> = Vec::new();
    for name in names {
        made.push(match name {
            "mdns" => {
                let config = MdnsConfig { local, discovery_port: g.discovery_port, interval: net.announce_interval };
                Box::new(MdnsDiscovery::start(config).context("--discovery mdns")?)
            }
            _ => {
                let config = UdpConfig {
                    local,
                    port: g.discovery_port,
                    listen,
                    interval: net.announce_interval,
                    broadcast: (!g.broadcast.is_empty()).then(|| g.broadcast.clone()),
                    static_peers: g.static_peers()?,
                };
                Box::new(udp::start(config)?)
            }
        });
    }
    Ok(made)
}
