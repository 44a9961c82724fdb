//! Several discoveries as one: announcements and queries go to each, and their events come out as one
//! stream in which a peer is seen once, however many discoveries see it, and expires when the last one
//! that saw it lets it go.

use std::collections::HashMap;
use std::future::poll_fn;
use std::net::IpAddr;
use std::task::Poll;

use async_trait::async_trait;
use proto::{Announcement, NodeId};

use crate::{Discovery, PeerEvent};

/// Discoveries run as one ([`Discovery`] itself).
pub struct Merged {
    inner: Vec<Box<dyn Discovery>>,
    /// For each peer, which of the discoveries see it (a bit each). Bounded by the discoveries' own bounds.
    seen_by: HashMap<(NodeId, IpAddr), u64>,
}

impl Merged {
    /// At most 64 discoveries.
    pub fn new(mut inner: Vec<Box<dyn Discovery>>) -> Self {
        inner.truncate(64);
        Self { inner, seen_by: HashMap::new() }
    }

    /// The event the merged stream gives for `event` from discovery `index`, if any.
    fn merge(&mut self, index: usize, event: PeerEvent) -> Option<PeerEvent> {
        let peer = event.peer();
        let key = (peer.id(), peer.ip);
        let bit = 1u64 << index;
        match event {
            PeerEvent::Seen(p) | PeerEvent::Updated(p) => {
                let seers = self.seen_by.entry(key).or_default();
                let first = *seers == 0;
                *seers |= bit;
                Some(if first { PeerEvent::Seen(p) } else { PeerEvent::Updated(p) })
            }
            PeerEvent::Expired(p) => {
                let seers = self.seen_by.get_mut(&key)?;
                *seers &= !bit;
                if *seers != 0 {
                    return None;
                }
                self.seen_by.remove(&key);
                Some(PeerEvent::Expired(p))
            }
        }
    }
}

#[async_trait]
impl Discovery for Merged {
    fn announce(&self, record: Announcement) {
        for d in &self.inner {
            d.announce(record.clone());
        }
    }

    fn query(&self) {
        for d in &self.inner {
            d.query();
        }
    }

    async fn next_event(&mut self) -> Option<PeerEvent> {
        loop {
            let (index, event) = {
                // Every discovery's wait at once; those not first are dropped, which they allow (cancel-safe).
                let mut waits: Vec<_> = self.inner.iter_mut().map(|d| d.next_event()).collect();
                let mut stopped = vec![false; waits.len()];
                poll_fn(|cx| {
                    for (index, wait) in waits.iter_mut().enumerate() {
                        if stopped[index] {
                            continue;
                        }
                        match wait.as_mut().poll(cx) {
                            Poll::Ready(Some(event)) => return Poll::Ready(Some((index, event))),
                            Poll::Ready(None) => stopped[index] = true,
                            Poll::Pending => {}
                        }
                    }
                    if stopped.iter().all(|s| *s) { Poll::Ready(None) } else { Poll::Pending }
                })
                .await?
            };
            if let Some(event) = self.merge(index, event) {
                return Some(event);
            }
        }
    }
}
