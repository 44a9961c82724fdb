//! The one place where the command line's `--transport` and `--discovery` become plug-ins: the node
//! crate takes them as traits and never names a concrete one.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use discovery::mdns::{MdnsConfig, MdnsDiscovery};
use discovery::udp::{self, UdpConfig};
use node::{Discovery, Identity, NetConfig, NodeId, Transport};
use transport::TransportConfig;

use crate::cli::Global;

/// The settings of the transports `--timeout` and `--tcp-congestion` ask for.
pub(crate) fn transport_config(g: &Global, net: &NetConfig) -> anyhow::Result<TransportConfig> {
    let congestion = g.tcp_congestion.as_deref().map(check_congestion).transpose()?;
    let config = TransportConfig::default().connect_timeout(net.timeout.min(Duration::from_secs(5)));
    Ok(config.idle_timeout(net.idle_timeout).tcp_congestion(congestion))
}

fn check_congestion(name: &str) -> anyhow::Result<String> {
    const AVAILABLE: &str = "/proc/sys/net/ipv4/tcp_available_congestion_control";
    match std::fs::read_to_string(AVAILABLE) {
        Ok(list) if !list.split_whitespace().any(|n| n == name) => {
            bail!("--tcp-congestion {name}: not offered by this kernel (available: {})", list.trim())
        }
        _ => Ok(name.to_string()),
    }
}

/// The transport a client connects with (named by `--transport`, checked when parsed), proving
/// `identity` where it authenticates; in a private group, to members alone.
pub(crate) fn client_transport(
    g: &Global,
    config: TransportConfig,
    identity: Identity,
) -> anyhow::Result<Arc<dyn Transport>> {
    let name = &g.transport;
    let made =
        transport::builtin::client(name, config, identity).with_context(|| format!("--transport {name}: unknown"))?;
    private(g, made).with_context(|| format!("--transport {name}"))
}

/// What a serving node listens on: every transport, on one port number; in a private group or with a
/// trust list, those that authenticate (tls, quic), to members and trusted nodes alone.
pub(crate) fn serving_transports(
    g: &Global,
    config: TransportConfig,
    identity: &Identity,
) -> anyhow::Result<Vec<Arc<dyn Transport>>> {
    let open = g.group_key.is_none() && g.trusted.is_none();
    // Asked of each transport, never by name; the wrappers announce no plain fallback either.
    let taken = transport::builtin::serving(config, identity).into_iter().filter(|t| open || t.authenticates());
    taken.map(|made| private(g, made)).collect()
}

/// `made`, open to the group's members alone where there is a group, and to trusted nodes alone where
/// there is a trust list (both refused for a transport that does not authenticate).
fn private(g: &Global, made: Arc<dyn Transport>) -> anyhow::Result<Arc<dyn Transport>> {
    let made: Arc<dyn Transport> = match &g.group_key {
        Some(key) => Arc::new(transport::GroupTransport::new(made, key.clone())?),
        None => made,
    };
    Ok(match &g.trusted {
        Some(ids) => Arc::new(transport::TrustTransport::new(made, ids.clone())?),
        None => made,
    })
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
        // mDNS records are readable by anyone on the LAN: a group keeps to its sealed datagrams.
        None if isolated || g.group_key.is_some() => vec!["broadcast"],
        None => vec!["broadcast", "mdns"],
    };
    if g.group_key.is_some() && names.contains(&"mdns") {
        bail!("--discovery mdns: off in a private group (its records would show every member's name and ports)");
    }
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
                    group: g.group_key.clone(),
                };
                Box::new(udp::start(config)?)
            }
        });
    }
    Ok(made)
}
