//! An upload rate cap shared by every connection of a node: a token bucket that lets a sender run into
//! debt and then makes it wait the debt off, so pieces of any size are paced to the rate.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most a node may send at once after an idle spell: a short burst, then the rate.
const BURST: Duration = Duration::from_millis(50);

/// Paces bytes to a rate.
#[derive(Debug)]
pub(crate) struct Throttle {
    bytes_per_sec: f64,
    /// Bytes that may be sent now (negative: owed) and when that was computed.
    state: Mutex<(f64, Instant)>,
}

impl Throttle {
    pub(crate) fn new(bytes_per_sec: u64) -> Self {
        Self { bytes_per_sec: bytes_per_sec.max(1) as f64, state: Mutex::new((0.0, Instant::now())) }
    }

    /// Takes `n` bytes from the bucket, waiting first if the bucket is in debt.
    pub(crate) async fn take(&self, n: usize) {
        let wait = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let burst = self.bytes_per_sec * BURST.as_secs_f64();
            let refilled = state.0 + now.duration_since(state.1).as_secs_f64() * self.bytes_per_sec;
            *state = (refilled.min(burst) - n as f64, now);
            Duration::from_secs_f64((-state.0).max(0.0) / self.bytes_per_sec)
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn paces_to_the_rate() {
        let throttle = Throttle::new(10 * 1024 * 1024);
        let started = Instant::now();
        for _ in 0..20 {
            throttle.take(256 * 1024).await;
        }
        // 5 MiB at 10 MiB/s: half a second, less the first burst.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
    }
}
