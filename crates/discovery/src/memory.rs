//! An in-memory LAN: discoveries in one process hear each other's datagrams through it, with no socket,
//! so node tests run on tokio's paused clock (announce intervals and expiry take no real time). The
//! datagrams are the real encoded ones, through the same loop as [`crate::udp`].

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use proto::NodeId;
use tokio::sync::mpsc;

use crate::datagrams::{DatagramDiscovery, Medium};

/// Datagrams waiting for a member; more are dropped, as a full socket buffer drops them.
const INBOX: usize = 1_024;
/// How often members announce.
const INTERVAL: Duration = Duration::from_secs(1);

/// The members of one LAN; clone it to give every node the same one.
#[derive(Clone, Debug, Default)]
pub struct MemoryLan {
    members: Arc<Mutex<Vec<Member>>>,
}

#[derive(Debug)]
struct Member {
    addr: SocketAddr,
    listens: bool,
    inbox: mpsc::Sender<(Vec<u8>, SocketAddr)>,
}

impl MemoryLan {
    /// A discovery of node `local` at `ip` on this LAN; `listen`: whether it hears broadcasts (a serving
    /// node) or only answers to its own queries. It announces every second.
    pub fn join(&self, ip: IpAddr, local: NodeId, listen: bool) -> DatagramDiscovery {
        let (inbox, received) = mpsc::channel(INBOX);
        let mut members = self.members.lock().unwrap_or_else(|p| p.into_inner());
        members.retain(|m| !m.inbox.is_closed());
        // Above every live member's port: after members leave, their count would name a live one.
        let port = members.iter().map(|m| m.addr.port()).max().unwrap_or(0).wrapping_add(1);
        let addr = SocketAddr::new(ip, port);
        members.push(Member { addr, listens: listen, inbox });
        let medium = Attached { lan: self.clone(), addr, received };
        DatagramDiscovery::start(medium, local, INTERVAL, Vec::new(), None)
    }

    fn deliver(&self, bytes: &[u8], from: SocketAddr, to: impl Fn(&Member) -> bool) {
        let members = self.members.lock().unwrap_or_else(|p| p.into_inner());
        for member in members.iter().filter(|m| to(m)) {
            let _ = member.inbox.try_send((bytes.to_vec(), from));
        }
    }
}

/// One member's end of the LAN.
struct Attached {
    lan: MemoryLan,
    addr: SocketAddr,
    received: mpsc::Receiver<(Vec<u8>, SocketAddr)>,
}

#[async_trait]
impl Medium for Attached {
    async fn recv(&mut self) -> std::io::Result<(Vec<u8>, SocketAddr)> {
        match self.received.recv().await {
            Some(datagram) => Ok(datagram),
            None => std::future::pending().await,
        }
    }

    async fn broadcast(&self, bytes: &[u8]) {
        self.lan.deliver(bytes, self.addr, |m| m.listens);
    }

    async fn send_to(&self, bytes: &[u8], to: SocketAddr) {
        self.lan.deliver(bytes, self.addr, |m| m.addr == to);
    }
}
