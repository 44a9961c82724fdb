//! `p2pnode pair [CODE]`: without a code, shows one and waits for the other person to type it (a new code
//! after a wrong attempt); with one, finds the waiting side and pairs. Either way the other node's id goes
//! into this node's trust list under the name it gave, for `--trust NAME`. Beacons go to the discovery
//! port by broadcast (and to each `--peer`), as announcements do.

use std::net::SocketAddr;
use std::time::Duration;

use node::pair::{Me, PairCode, PairError, Pairing, Rendezvous};
use node::{Escaped, StateDir};
use tokio::net::UdpSocket;
use transport::async_trait;

use crate::cli::Global;
use crate::events::Event;
use crate::plugins;

/// How long a code is good for, and how long the joining side looks for it.
const CODE_LIFETIME: Duration = Duration::from_secs(120);

/// Pairs with the node that waits with `code`, or waits with a code of its own; files the other node's
/// id in the trust list.
pub(crate) async fn pair(g: &Global, code: Option<&str>) -> anyhow::Result<()> {
    let state = StateDir::open(&g.state_dir())?;
    let identity = state.identity()?;
    let config = plugins::transport_config(g, &g.net()?)?;
    let transport = transport::builtin::client(&g.transport, config, identity.clone())
        .ok_or_else(|| anyhow::anyhow!("--transport {}: unknown", g.transport))?;
    let name = g.node_name()?;
    let me = Me { id: identity.node_id(), name: &name };
    let paired = match code {
        Some(code) => {
            let code: PairCode = code.parse()?;
            let mut lan = Lan::hearing(g)?;
            Pairing { transport, rendezvous: &mut lan, code: &code, me, within: CODE_LIFETIME }.join().await?
        }
        None => {
            let mut lan = Lan::announcing(g)?;
            loop {
                let code = PairCode::random();
                tell_code(&code, g.json);
                let waiting = Pairing {
                    transport: transport.clone(),
                    rendezvous: &mut lan,
                    code: &code,
                    me,
                    within: CODE_LIFETIME,
                };
                match waiting.wait().await {
                    Err(PairError::WrongCode) => {
                        eprintln!("someone typed a wrong code: nothing was stored; a new code")
                    }
                    other => break other?,
                }
            }
        }
    };
    let mut list = state.trust_list()?;
    let saved_as = list.add(paired.id, &paired.name);
    state.save_trust_list(&list)?;
    let (id, fingerprint) = (paired.id.to_string(), paired.id.fingerprint());
    if g.json {
        Event::Paired { name: saved_as, id, fingerprint }.print();
    } else {
        let file = state.path().join(node::TRUST_LIST_FILE);
        say!(
            "paired with {} (fingerprint {fingerprint}): --trust {} trusts it; rename it in {}",
            Escaped(&saved_as),
            Escaped(&saved_as),
            file.display()
        );
    }
    // Filed and told; the channel's last words may still be on their way to the other side.
    paired.ended().await;
    Ok(())
}

fn tell_code(code: &PairCode, json: bool) {
    match json {
        true => Event::PairCode { code: code.to_string(), seconds: CODE_LIFETIME.as_secs() }.print(),
        false => say!(
            "your code: {code}\non the other machine, within {} minutes: p2pnode pair {code}",
            CODE_LIFETIME.as_secs() / 60
        ),
    }
}

/// The LAN as pairing uses it: a socket that hears the discovery port, or one that broadcasts to it; in a
/// private group, beacons sealed as the group's discovery datagrams are (outsiders learn no id or port).
struct Lan {
    socket: UdpSocket,
    port: u16,
    broadcast: Option<Vec<std::net::Ipv4Addr>>,
    peers: Vec<SocketAddr>,
    seal: Option<discovery::Seal>,
}

impl Lan {
    fn hearing(g: &Global) -> anyhow::Result<Self> {
        Self::on(g, discovery::udp::socket(g.discovery_port))
    }

    fn announcing(g: &Global) -> anyhow::Result<Self> {
        Self::on(g, discovery::udp::socket(0))
    }

    fn on(g: &Global, socket: std::io::Result<UdpSocket>) -> anyhow::Result<Self> {
        let socket = socket.map_err(|e| anyhow::anyhow!("cannot use discovery port {}: {e}", g.discovery_port))?;
        let broadcast = (!g.broadcast.is_empty()).then(|| g.broadcast.clone());
        let seal = g.group_key.as_ref().map(discovery::Seal::new);
        Ok(Self { socket, port: g.discovery_port, broadcast, peers: g.static_peers()?, seal })
    }
}

#[async_trait]
impl Rendezvous for Lan {
    async fn announce(&self, beacon: &[u8]) {
        let sealed = self.seal.as_ref().and_then(|seal| seal.seal(beacon));
        let beacon = sealed.as_deref().unwrap_or(beacon);
        discovery::udp::broadcast_to(&self.socket, beacon, self.port, self.broadcast.as_deref()).await;
        for peer in &self.peers {
            let _ = self.socket.send_to(beacon, peer).await;
        }
    }

    async fn hear(&mut self) -> std::io::Result<(Vec<u8>, SocketAddr)> {
        let mut buf = [0u8; 1_200];
        loop {
            let (len, from) = self.socket.recv_from(&mut buf).await?;
            match &self.seal {
                // Another group's, or plain: not for a member.
                Some(seal) => match seal.open(&buf[..len]) {
                    Some(beacon) => return Ok((beacon, from)),
                    None => continue,
                },
                None => return Ok((buf[..len].to_vec(), from)),
            }
        }
    }
}
