//! Multicast DNS discovery (RFC 6762/6763, with the mdns-sd crate), for LANs that drop broadcast: each
//! serving node registers a service `_p2pnode._udp.local.` whose TXT record carries what a broadcast
//! announcement does, and every node browses for that service.
//!
//! TXT keys: `v` (record version), `id` (node id, hex), `in` (instance), `n` (name), `t` (transports as
//! `name:port,...`), `cv` (catalogue version), `fc` (file count), `iv` (announce interval), `dp` (the
//! discovery port). Records with another `dp` are ignored, so nodes isolated by discovery port stay apart
//! as they do over broadcast. Everything is parsed with the limits of [`proto::Datagram`] and goes through
//! the same bounded [`PeerCache`]; mDNS itself reports departures (goodbye packets, record expiry), and
//! peers it still holds are refreshed at each interval.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use mdns_sd::{ServiceDaemon, ServiceEvent, ServiceInfo};
use proto::{Announcement, MAX_NODE_NAME, MAX_TRANSPORT_NAME, NodeId, is_transport_name};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use crate::datagrams::sleep_until;
use crate::{Discovery, MAX_CLAIMS, PeerCache, PeerEvent};

/// The DNS-SD service type of p2pnode.
pub const SERVICE: &str = "_p2pnode._udp.local.";
/// The version of the TXT record layout.
const RECORD_VERSION: &str = "2";
/// Pending commands and undelivered events.
const QUEUE: usize = 256;
/// Transports one record lists at most, as an announcement does.
const MAX_PORTS: usize = 8;

/// How to discover over mDNS.
#[derive(Clone, Debug)]
pub struct MdnsConfig {
    /// This node's id: its own record is ignored.
    pub local: NodeId,
    /// The discovery port of the LAN: records of nodes with another one are ignored.
    pub discovery_port: u16,
    /// How often peers still held by mDNS are refreshed in the cache.
    pub interval: Duration,
}

/// Why mDNS could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start mDNS: {0}")]
pub struct MdnsError(#[from] mdns_sd::Error);

/// A running mDNS discovery; dropping it unregisters this node and stops the daemon.
pub struct MdnsDiscovery {
    commands: mpsc::Sender<Command>,
    events: mpsc::Receiver<PeerEvent>,
}

enum Command {
    Announce(Box<Announcement>),
    Query,
}

impl MdnsDiscovery {
    /// Starts the mDNS daemon (its own thread and sockets) and browses for peers.
    pub fn start(config: MdnsConfig) -> Result<Self, MdnsError> {
        let daemon = ServiceDaemon::new()?;
        let browse = daemon.browse(SERVICE)?;
        let (commands, rx) = mpsc::channel(QUEUE);
        let (tx, events) = mpsc::channel(QUEUE);
        let cache = PeerCache::new(config.local);
        // Distinct per daemon, so that a node started again (or a test's next node with the same id) never
        // shares its predecessor's service name, nor has that one's goodbye taken for its own.
        let label_suffix = RandomState::new().build_hasher().finish() as u32;
        let (held, registered) = (HashMap::new(), None);
        let task = Task { config, daemon, browse, cache, held, registered, label_suffix, commands: rx, events: tx };
        tokio::spawn(task.run());
        Ok(Self { commands, events })
    }
}

#[async_trait]
impl Discovery for MdnsDiscovery {
    fn announce(&self, record: Announcement) {
        let _ = self.commands.try_send(Command::Announce(Box::new(record)));
    }

    fn query(&self) {
        let _ = self.commands.try_send(Command::Query);
    }

    async fn next_event(&mut self) -> Option<PeerEvent> {
        self.events.recv().await
    }
}

struct Task {
    config: MdnsConfig,
    daemon: ServiceDaemon,
    browse: mdns_sd::Receiver<ServiceEvent>,
    cache: PeerCache,
    /// The services mDNS holds now, by full name: refreshed in the cache at each interval.
    held: HashMap<String, (IpAddr, Announcement)>,
    /// The full name of our own service, once registered.
    registered: Option<String>,
    /// Ends our service's name (`p2pnode-ID-SUFFIX`).
    label_suffix: u32,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<PeerEvent>,
}

impl Task {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(self.config.interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let deadline = self.cache.next_deadline().map(Instant::from_std);
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Announce(record)) => self.register(&record),
                    Some(Command::Query) => match self.daemon.browse(SERVICE) {
                        Ok(browse) => self.browse = browse,
                        Err(e) => tracing::debug!(error = %e, "mDNS query failed"),
                    },
                    None => break,
                },
                event = self.browse.recv_async() => match event {
                    Ok(event) => self.on_service_event(event).await,
                    Err(_) => break,
                },
                _ = tick.tick() => {
                    let now = Instant::now().into_std();
                    for (ip, record) in self.held.values() {
                        // Known and unchanged: no event, only a later expiry.
                        let _ = self.cache.on_announcement(now, *ip, record.clone());
                    }
                }
                () = sleep_until(deadline) => {
                    for event in self.cache.expire(Instant::now().into_std()) {
                        self.emit(event).await;
                    }
                }
            }
        }
        if let Some(fullname) = &self.registered {
            let _ = self.daemon.unregister(fullname);
        }
        let _ = self.daemon.shutdown();
    }

    fn register(&mut self, record: &Announcement) {
        let properties = txt_of(record, self.config.discovery_port);
        let label = format!("p2pnode-{}-{:08x}", &record.node.to_string()[..16], self.label_suffix);
        let host = format!("{label}.local.");
        let port = record.ports.first().map_or(0, |(_, port)| *port);
        match ServiceInfo::new(SERVICE, &label, &host, "", port, &properties[..]) {
            Ok(info) => {
                let fullname = info.get_fullname().to_string();
                match self.daemon.register(info.enable_addr_auto()) {
                    Ok(()) => self.registered = Some(fullname),
                    Err(e) => tracing::warn!(error = %e, "mDNS registration failed"),
                }
            }
            Err(e) => tracing::warn!(error = %e, "mDNS record not made"),
        }
    }

    async fn on_service_event(&mut self, event: ServiceEvent) {
        match event {
            ServiceEvent::ServiceResolved(info) => {
                let Some((ip, record)) = record_of(&info, self.config.discovery_port) else { return };
                let fullname = info.get_fullname().to_string();
                if self.held.len() >= MAX_CLAIMS && !self.held.contains_key(&fullname) {
                    return;
                }
                if let Some((old_ip, old)) = self.held.insert(fullname, (ip, record.clone()))
                    && (old_ip != ip || old.node != record.node)
                {
                    self.forget_unless_held(old.node, old_ip).await;
                }
                for event in self.cache.on_announcement(Instant::now().into_std(), ip, record) {
                    self.emit(event).await;
                }
            }
            ServiceEvent::ServiceRemoved(_, fullname) => {
                if let Some((ip, record)) = self.held.remove(&fullname) {
                    self.forget_unless_held(record.node, ip).await;
                }
            }
            _ => {}
        }
    }

    /// Lets node `node` at `ip` go, unless another service mDNS holds still claims it (a node that
    /// restarted: its old service's goodbye comes after its new service).
    async fn forget_unless_held(&mut self, node: NodeId, ip: IpAddr) {
        if !self.held.values().any(|(held_ip, r)| (*held_ip, r.node) == (ip, node))
            && let Some(gone) = self.cache.forget(node, ip)
        {
            self.emit(gone).await;
        }
    }

    async fn emit(&self, event: PeerEvent) {
        let _ = self.events.send(event).await;
    }
}

/// The TXT properties of `record`.
fn txt_of(record: &Announcement, discovery_port: u16) -> Vec<(&'static str, String)> {
    let transports: Vec<String> = record.ports.iter().map(|(name, port)| format!("{name}:{port}")).collect();
    vec![
        ("v", RECORD_VERSION.into()),
        ("id", record.node.to_string()),
        ("in", record.instance.to_string()),
        ("n", record.name.clone()),
        ("t", transports.join(",")),
        ("cv", record.catalogue_version.to_string()),
        ("fc", record.file_count.to_string()),
        ("iv", record.interval_secs.to_string()),
        ("dp", discovery_port.to_string()),
    ]
}

/// The announcement a resolved service carries, and its address; `None` for a record of another version
/// or discovery port, or one that breaks a limit.
fn record_of(info: &ServiceInfo, discovery_port: u16) -> Option<(IpAddr, Announcement)> {
    let get = |key| info.get_property_val_str(key);
    if get("v")? != RECORD_VERSION || get("dp")?.parse::<u16>().ok()? != discovery_port {
        return None;
    }
    let name = get("n")?;
    if name.len() > MAX_NODE_NAME {
        return None;
    }
    let mut ports = Vec::new();
    for entry in get("t")?.split(',').filter(|e| !e.is_empty()).take(MAX_PORTS) {
        let (transport, port) = entry.split_once(':')?;
        if transport.len() <= MAX_TRANSPORT_NAME && is_transport_name(transport) {
            ports.push((transport.to_string(), port.parse().ok()?));
        }
    }
    let ip = info.get_addresses_v4().into_iter().min().map(|v4| IpAddr::V4(*v4))?;
    let record = Announcement {
        node: get("id")?.parse().ok()?,
        instance: get("in")?.parse().ok()?,
        name: name.to_string(),
        ports,
        catalogue_version: get("cv")?.parse().ok()?,
        file_count: get("fc")?.parse().ok()?,
        interval_secs: get("iv")?.parse().ok()?,
    };
    Some((ip, record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_txt_and_foreign_ones_are_ignored() {
        let record = Announcement {
            node: NodeId([7; 32]),
            instance: 42,
            name: "é".repeat(MAX_NODE_NAME / 2),
            ports: vec![("tls".into(), 5001), ("quic".into(), 5001)],
            catalogue_version: 3,
            file_count: 9,
            interval_secs: 5,
        };
        let properties = txt_of(&record, 5000);
        let info = ServiceInfo::new(SERVICE, "x", "x.local.", "10.0.0.2", 5001, &properties[..]).expect("info");
        assert_eq!(record_of(&info, 5000), Some((IpAddr::from([10, 0, 0, 2]), record)));
        assert_eq!(record_of(&info, 5999), None, "another discovery port");
        let mut bad = properties.clone();
        bad[3].1 = "n".repeat(MAX_NODE_NAME + 1);
        let info = ServiceInfo::new(SERVICE, "x", "x.local.", "10.0.0.2", 5001, &bad[..]).expect("info");
        assert_eq!(record_of(&info, 5000), None, "a name over the limit");
    }
}
