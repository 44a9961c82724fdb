//! The topology the benches use: one hub namespace (the downloader) and spokes (the sources), each spoke
//! joined to the hub by a link of its own.

use std::net::Ipv4Addr;

use crate::link::Link;
use crate::netns::Namespace;
use crate::shaper::Stats;
use crate::{LinkError, Profile};

/// A hub and its spokes. Spoke `i` has address `10.77.(i+1).1`; the hub's end of that link is
/// `10.77.(i+1).2`.
pub struct Star {
    // Links go first: their threads stop before the namespaces are released.
    links: Vec<Link>,
    /// The downloader's namespace.
    pub hub: Namespace,
    /// The sources' namespaces.
    pub spokes: Vec<Namespace>,
}

impl Star {
    /// `spokes` namespaces each joined to a hub by a link shaped by `profile` in both directions.
    pub fn new(spokes: usize, profile: Profile) -> Result<Self, LinkError> {
        let hub = Namespace::create()?;
        let mut star = Self { links: Vec::new(), hub, spokes: Vec::new() };
        for i in 0..spokes {
            let spoke = Namespace::create()?;
            let link = Link::join((&spoke, Self::spoke_addr(i)), (&star.hub, Self::hub_addr(i)), profile, profile)?;
            star.spokes.push(spoke);
            star.links.push(link);
        }
        Ok(star)
    }

    /// Spoke `i`'s address.
    pub fn spoke_addr(i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, i as u8 + 1, 1)
    }

    /// The hub's address on spoke `i`'s link.
    pub fn hub_addr(i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, i as u8 + 1, 2)
    }

    /// What spoke `i`'s link did: spoke to hub, then hub to spoke.
    pub fn stats(&self, i: usize) -> [Stats; 2] {
        self.links[i].stats()
    }
}
