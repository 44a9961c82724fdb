//! The peers a download fetches from: those it was given, and those that join the swarm while it runs.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

use proto::{Bitmap, NodeId};
use transport::Transport;

/// Sources of one download at most, those that joined mid-download included.
const MAX_SOURCES: usize = 64;

/// A source: its index in the list of sources, since several hosts may claim one node id (one is genuine,
/// the others impostors or stale addresses) and each is tried on its own.
pub(super) type SourceIndex = usize;

/// A peer to download from, and the transport that reaches it.
#[derive(Clone)]
pub struct Source {
    /// Its id, checked by transports that authenticate.
    pub node: NodeId,
    /// Its transfer address.
    pub addr: SocketAddr,
    /// `None` if it has the whole file; else the bitmap of the chunks it has.
    pub has: Option<Bitmap>,
    /// How to reach it.
    pub transport: Arc<dyn Transport>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Source({} at {} over {})", self.node.short(), self.addr, self.transport.name())
    }
}

impl Source {
    /// The host this source is: the id it claims at its address.
    pub fn host(&self) -> crate::Host {
        crate::Host { node: self.node, ip: self.addr.ip() }
    }
}

/// The peers of a download by host, each under one index for good (original sources included), and
/// those being connected to: a peer is asked to join whenever the swarm reports it (again), unless it is
/// a source already or being asked.
pub(super) struct Joins {
    places: HashMap<(NodeId, SocketAddr), SourceIndex>,
    pub(super) connecting: HashSet<SourceIndex>,
}

impl Joins {
    pub(super) fn of(sources: &[Source]) -> Self {
        let places = sources.iter().enumerate().map(|(i, s)| ((s.node, s.addr), i)).collect();
        Self { places, connecting: HashSet::new() }
    }

    /// The index to connect to `source` under, if it is to be asked now: not `asked` already (a source,
    /// or answering what it has), not being connected to, and within [`MAX_SOURCES`].
    pub(super) fn ask(
        &mut self,
        source: Source,
        sources: &mut Vec<Source>,
        asked: impl Fn(SourceIndex) -> bool,
    ) -> Option<SourceIndex> {
        let i = match self.places.get(&(source.node, source.addr)) {
            Some(&i) => i,
            None if sources.len() < MAX_SOURCES => {
                self.places.insert((source.node, source.addr), sources.len());
                sources.push(source);
                sources.len() - 1
            }
            None => return None,
        };
        (!asked(i) && self.connecting.insert(i)).then_some(i)
    }
}
