//! Super-seeding: a seed spreads each chunk to one downloader at a time, so the swarm passes it on.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use proto::FileId;

/// A seed's memory of where each chunk went lately, for super-seeding: a chunk sent to one downloader
/// within [`SPREAD_WINDOW`] is refused to another, once, with [`ErrorCode::Elsewhere`], so the swarm
/// passes it on and the seed's uplink carries chunks nobody has yet. Asked again, it is sent: a
/// downloader with no other source loses a round trip, never the chunk.
#[derive(Debug, Default)]
pub(crate) struct Spread(std::sync::Mutex<SpreadState>);

#[derive(Debug, Default)]
struct SpreadState {
    /// Each chunk's last receiver and when it was sent.
    sent: HashMap<(FileId, u32), (Downloader, tokio::time::Instant)>,
    /// The refusals given, each once, and when.
    refused: HashMap<(Downloader, FileId, u32), tokio::time::Instant>,
}

/// A downloader as a seed tells them apart: by the id its transport proved, else by its address (one
/// address may then be several downloaders, never told apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Downloader {
    Proven(proto::NodeId),
    Address(IpAddr),
}

/// How long a chunk sent to one downloader is refused to others: a few of the swarm's refresh intervals.
const SPREAD_WINDOW: Duration = Duration::from_secs(2);
/// The most chunks and refusals a seed remembers; past these, what is older than the window is forgotten.
const SPREAD_MEMORY: usize = 1 << 16;

impl Spread {
    /// Whether chunk `index` of `file` goes to `to` now; `false`: refuse it as sent elsewhere.
    pub(super) fn send(&self, to: Downloader, file: FileId, index: u32) -> bool {
        let now = tokio::time::Instant::now();
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if state.sent.len() + state.refused.len() > SPREAD_MEMORY {
            state.sent.retain(|_, (_, at)| now - *at < SPREAD_WINDOW);
            state.refused.retain(|_, at| now - *at < SPREAD_WINDOW * 4);
        }
        let elsewhere = state.sent.get(&(file, index)).is_some_and(|(who, at)| *who != to && now - *at < SPREAD_WINDOW);
        if elsewhere
            && state.refused.len() < SPREAD_MEMORY
            && let std::collections::hash_map::Entry::Vacant(slot) = state.refused.entry((to, file, index))
        {
            slot.insert(now);
            return false;
        }
        state.sent.insert((file, index), (to, now));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_seed_refuses_a_chunk_it_just_sent_elsewhere_once_per_downloader() {
        let spread = Spread::default();
        let [a, b, c] = [1, 2, 3].map(|i| Downloader::Address(IpAddr::from([10, 0, 0, i])));
        let (file, other) = (FileId([1; 32]), FileId([2; 32]));
        assert!(spread.send(a, file, 0));
        assert!(spread.send(a, file, 0), "the same downloader asks again: a retry");
        assert!(!spread.send(b, file, 0), "just sent to a");
        assert!(spread.send(b, file, 1) && spread.send(b, other, 0), "other chunks go");
        assert!(spread.send(b, file, 0), "asked again: b may have no other source");
        tokio::time::advance(SPREAD_WINDOW).await;
        assert!(spread.send(c, file, 0), "long enough ago");
    }
}
