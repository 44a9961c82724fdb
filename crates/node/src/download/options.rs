//! How a download runs.

use std::time::Duration;

use store::StateKey;

/// How often a download asks its partial sources which chunks they have now.
pub const HAVE_REFRESH: Duration = Duration::from_millis(500);

/// How a download runs: how long each request may wait, and the key that authenticates its `.part`
/// file's state (a state file under another key is never resumed).
#[derive(Clone, Debug)]
pub struct DownloadOptions {
    pub(super) timeout: Duration,
    pub(super) key: StateKey,
    pub(super) space_check: bool,
}

impl DownloadOptions {
    /// Options with `key`, each request waiting at most the default timeout of [`crate::NetConfig`].
    pub fn new(key: StateKey) -> Self {
        Self { timeout: crate::NetConfig::default().timeout, key, space_check: true }
    }

    /// Whether a download whose destination has less free space than the file needs is refused before
    /// it fetches anything (by default it is).
    pub fn space_check(mut self, check: bool) -> Self {
        self.space_check = check;
        self
    }

    /// Each request waits at most `timeout` (the scheduler adapts it below that to each peer's rate).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}
