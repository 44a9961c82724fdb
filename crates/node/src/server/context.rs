//! What every exchange of a serving node shares: the files shared now, the buffer budgets, the upload
//! cap, the record of who asks, and what was sent to whom.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use proto::FileId;
use store::{Library, SharedFile};
use tokio::sync::{Notify, Semaphore, watch};

use super::grants::Grants;
use super::spread::Spread;
use super::throttle::Throttle;
use crate::send::inbox::Inbox;
use crate::send::outbox::Outbox;

/// What every exchange of a node together may hold in buffers (chunk pieces read from disk, encoded
/// manifests) at once: bounds the server's memory whatever number of peers stop reading.
pub(crate) const SEND_BUDGET: usize = 16 * 1024 * 1024;
/// The part of [`SEND_BUDGET`] the exchanges of one peer address may hold: hosts that stop reading
/// leave the rest to everyone else (a reading peer gives each piece back within milliseconds).
pub(crate) const PEER_SEND_BUDGET: usize = SEND_BUDGET / 8;

/// What the node shares right now; replaced as a whole when a rescan finds changes.
#[derive(Debug, Default)]
pub(crate) struct Shares {
    pub(crate) version: u64,
    pub(crate) files: Arc<HashMap<FileId, SharedFile>>,
    /// The encoded catalogue, built once per version rather than per request.
    pub(crate) catalogue: Vec<u8>,
}

impl Shares {
    pub(crate) fn of(library: &Library, version: u64) -> Self {
        Self { version, files: library.files().clone(), catalogue: library.catalogue().encode() }
    }
}

/// What every exchange of a node needs.
#[derive(Clone)]
pub(crate) struct ServeContext {
    pub(crate) shares: watch::Receiver<Arc<Shares>>,
    /// How long a connection may wait for its next request.
    pub(crate) idle: Duration,
    /// The node's upload cap, shared by all its connections.
    pub(crate) throttle: Option<Arc<Throttle>>,
    /// Wakes the rescan task when a shared file turns out to have changed since it was hashed.
    pub(crate) rescan: Arc<Notify>,
    /// Buffer bytes left to the exchanges of the node ([`SEND_BUDGET`]).
    pub(crate) buffers: Arc<Semaphore>,
    /// The part of it left to this connection's peer address ([`PEER_SEND_BUDGET`]).
    pub(crate) peer_buffers: Arc<Semaphore>,
    /// Told of every request, and of exchanges in progress: a `get` seeds until its peers stop asking.
    pub(crate) activity: Arc<Activity>,
    /// A seed's record of which chunk went to whom ([`Spread`]); `None` for a downloader.
    pub(crate) spread: Option<Arc<Spread>>,
    /// The files served to given peers alone, unlisted.
    pub(crate) grants: Grants,
    /// The offers this process made, for their recipients to ask about.
    pub(crate) outbox: Outbox,
    /// Where offers to this node arrive (`None`: it takes none).
    pub(crate) inbox: Option<Arc<Inbox>>,
}

impl ServeContext {
    /// What the exchanges of a node serving `shares` need: at most `max_upload_rate` bytes a second in
    /// all where given, and super-seeding where the node is a `seed` (not a downloader).
    pub(crate) fn new(
        shares: watch::Receiver<Arc<Shares>>,
        idle: Duration,
        max_upload_rate: Option<u64>,
        seed: bool,
    ) -> Self {
        ServeContext {
            shares,
            idle,
            throttle: max_upload_rate.map(|rate| Arc::new(Throttle::new(rate))),
            rescan: Arc::default(),
            buffers: Arc::new(Semaphore::new(SEND_BUDGET)),
            // Each connection gets its address's share when accepted (see `PeerSlots`).
            peer_buffers: Arc::new(Semaphore::new(0)),
            activity: Arc::default(),
            spread: seed.then(Arc::default),
            grants: Grants::default(),
            outbox: Outbox::default(),
            inbox: None,
        }
    }
}

/// Whether peers are asking: whether any ever did, how many exchanges are in progress, since when none
/// is, and a wake at each start and end.
#[derive(Debug)]
pub(crate) struct Activity {
    asked: std::sync::atomic::AtomicBool,
    busy: std::sync::atomic::AtomicUsize,
    /// Chunk bytes sent, over every exchange.
    sent: std::sync::atomic::AtomicU64,
    /// When an exchange last started or ended (or the node started).
    last: std::sync::Mutex<tokio::time::Instant>,
    changed: Notify,
}

impl Default for Activity {
    fn default() -> Self {
        let last = std::sync::Mutex::new(tokio::time::Instant::now());
        let (asked, busy, sent) = Default::default();
        Self { asked, busy, sent, last, changed: Notify::new() }
    }
}

impl Activity {
    /// Counts an exchange in progress until the guard drops.
    pub(super) fn begin(self: &Arc<Self>) -> impl Drop {
        self.asked.store(true, std::sync::atomic::Ordering::SeqCst);
        self.busy.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.touch();
        Busy(self.clone())
    }

    /// Counts chunk bytes sent.
    pub(crate) fn add_sent(&self, bytes: u64) {
        self.sent.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Chunk bytes sent so far.
    pub(crate) fn sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How long no exchange has been in progress (zero while one is).
    pub(crate) fn idle_for(&self) -> Duration {
        match self.busy.load(std::sync::atomic::Ordering::SeqCst) {
            0 => self.last.lock().unwrap_or_else(|p| p.into_inner()).elapsed(),
            _ => Duration::ZERO,
        }
    }

    fn touch(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = tokio::time::Instant::now();
        self.changed.notify_one();
    }

    /// Completes once no exchange has been in progress for `quiet`: at once where nobody ever asked
    /// anything, or none has for that long already.
    pub(crate) async fn quiet_for(&self, quiet: Duration) {
        if !self.asked.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        loop {
            let idle = self.busy.load(std::sync::atomic::Ordering::SeqCst) == 0;
            let since = self.last.lock().unwrap_or_else(|p| p.into_inner()).elapsed();
            match idle {
                true if since >= quiet => return,
                true => _ = tokio::time::timeout(quiet - since, self.changed.notified()).await,
                false => self.changed.notified().await,
            }
        }
    }
}

struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.0.touch();
    }
}

/// Chunk bytes of one file sent in full (by one exchange, or summed over several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sent {
    pub(crate) file: FileId,
    /// Where it is on this disk.
    pub(crate) path: std::path::PathBuf,
    /// The file's name and size, as its manifest gives them.
    pub(crate) name: String,
    pub(crate) size: u64,
    pub(crate) bytes: u64,
}

/// What a peer took of one shared file, told when the peer's last connection ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The peer's address.
    pub peer: IpAddr,
    /// The name it announces, where its transport proved its id and the id is a known peer.
    pub peer_name: Option<String>,
    /// The file.
    pub file: FileId,
    /// Where it is on this disk.
    pub path: std::path::PathBuf,
    /// Its name.
    pub name: String,
    /// Its size.
    pub size: u64,
    /// Chunk bytes sent to the peer.
    pub bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn quiet_means_no_exchange_for_that_long_counted_from_the_last() {
        let activity = Arc::new(Activity::default());
        let quiet = Duration::from_secs(1);
        let started = tokio::time::Instant::now();
        activity.quiet_for(quiet).await;
        assert_eq!(started.elapsed(), Duration::ZERO, "nobody ever asked: no wait at all");
        let busy = activity.begin();
        let waiting = tokio::spawn({
            let activity = activity.clone();
            async move { activity.quiet_for(quiet).await }
        });
        tokio::time::sleep(quiet * 3).await;
        assert!(!waiting.is_finished(), "an exchange is in progress");
        drop(busy);
        let ended = tokio::time::Instant::now();
        waiting.await.expect("waits");
        assert_eq!(ended.elapsed(), quiet, "a second after the exchange ended");
    }
}
