//! The decision for each packet, with no I/O (tested without devices or clocks): lost, dropped at the
//! full queue, or delivered at a computed instant.

use std::time::{Duration, Instant};

use crate::profile::{Loss, Profile};

/// What becomes of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver it at this instant.
    Deliver(Instant),
    /// Lost on the link.
    Lost,
    /// Dropped at the tail of the full queue.
    QueueFull,
}

/// What one direction of a link did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets that entered the link.
    pub packets: u64,
    /// Packets lost on the link.
    pub lost: u64,
    /// Packets dropped because the queue was full.
    pub queue_drops: u64,
    /// Packets delivered (or due for delivery).
    pub delivered: u64,
    /// Bytes of the delivered packets, IP headers included.
    pub delivered_bytes: u64,
}

/// Totals of several links.
impl std::ops::Add for Stats {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        Self {
            packets: self.packets.saturating_add(other.packets),
            lost: self.lost.saturating_add(other.lost),
            queue_drops: self.queue_drops.saturating_add(other.queue_drops),
            delivered: self.delivered.saturating_add(other.delivered),
            delivered_bytes: self.delivered_bytes.saturating_add(other.delivered_bytes),
        }
    }
}

/// One direction of a link: applies a [`Profile`] to a stream of packets.
#[derive(Debug)]
pub struct Shaper {
    profile: Profile,
    rng: Rng,
    bad: bool,
    /// When the rate cap has finished sending everything accepted so far.
    busy_until: Option<Instant>,
    /// Deliveries stay in arrival order, whatever the jitter.
    last_delivery: Option<Instant>,
    stats: Stats,
}

impl Shaper {
    /// A shaper for `profile`, its randomness seeded by `seed` so runs repeat.
    pub fn new(profile: Profile, seed: u64) -> Self {
        Self { profile, rng: Rng(seed | 1), bad: false, busy_until: None, last_delivery: None, stats: Stats::default() }
    }

    /// Decides the fate of a packet of `len` bytes that arrived at `now`.
    pub fn on_packet(&mut self, now: Instant, len: usize) -> Verdict {
        self.stats.packets += 1;
        if self.lose() {
            self.stats.lost += 1;
            return Verdict::Lost;
        }
        let sent = match self.profile.rate {
            None => now,
            Some(rate) => {
                let start = self.busy_until.filter(|&t| t > now).unwrap_or(now);
                let backlog = (start - now).as_secs_f64() * rate as f64 / 8.0;
                if backlog + len as f64 > self.profile.queue as f64 {
                    self.stats.queue_drops += 1;
                    return Verdict::QueueFull;
                }
                let done = start + Duration::from_secs_f64(len as f64 * 8.0 / rate as f64);
                self.busy_until = Some(done);
                done
            }
        };
        let jitter = self.profile.jitter.mul_f64(self.rng.unit());
        let at = (sent + self.profile.delay + jitter).max(self.last_delivery.unwrap_or(now));
        self.last_delivery = Some(at);
        self.stats.delivered += 1;
        self.stats.delivered_bytes += len as u64;
        Verdict::Deliver(at)
    }

    /// What the shaper did so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    fn lose(&mut self) -> bool {
        match self.profile.loss {
            Loss::Random(p) => self.rng.unit() < p,
            Loss::Bursts { good_to_bad, bad_to_good, loss_good, loss_bad } => {
                let switch = if self.bad { bad_to_good } else { good_to_bad };
                if self.rng.unit() < switch {
                    self.bad = !self.bad;
                }
                self.rng.unit() < if self.bad { loss_bad } else { loss_good }
            }
        }
    }
}

/// xorshift64*: fast, seedable, good enough for drawing losses.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    /// A number in `0.0..1.0`.
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn delay_only_keeps_spacing() {
        let mut s = Shaper::new(Profile::delay(25 * MS), 1);
        let t0 = Instant::now();
        assert_eq!(s.on_packet(t0, 100), Verdict::Deliver(t0 + 25 * MS));
        assert_eq!(s.on_packet(t0 + MS, 100), Verdict::Deliver(t0 + 26 * MS));
    }

    #[test]
    fn rate_cap_serialises_and_tail_drops() {
        // 8 Mbit/s: 1,000 bytes take 1 ms; the queue holds 3,000 bytes.
        let profile = Profile { rate: Some(8_000_000), queue: 3_000, ..Profile::delay(10 * MS) };
        let mut s = Shaper::new(profile, 1);
        let t0 = Instant::now();
        let verdicts: Vec<_> = (0..5).map(|_| s.on_packet(t0, 1_000)).collect();
        assert_eq!(verdicts[0], Verdict::Deliver(t0 + 11 * MS));
        assert_eq!(verdicts[2], Verdict::Deliver(t0 + 13 * MS));
        assert_eq!(verdicts[3..], [Verdict::QueueFull, Verdict::QueueFull]);
        // Once the queue drained, packets pass again.
        assert_eq!(s.on_packet(t0 + 3 * MS, 1_000), Verdict::Deliver(t0 + 14 * MS));
        assert_eq!(s.stats().queue_drops, 2);
    }

    #[test]
    fn jitter_never_reorders() {
        let profile = Profile { jitter: 20 * MS, ..Profile::delay(5 * MS) };
        let mut s = Shaper::new(profile, 7);
        let t0 = Instant::now();
        let mut last = t0;
        for i in 0..1_000 {
            let Verdict::Deliver(at) = s.on_packet(t0 + i * Duration::from_micros(100), 100) else { panic!() };
            assert!(at >= last);
            last = at;
        }
    }

    #[test]
    fn losses_follow_the_probabilities() {
        let rate = |loss| {
            let mut s = Shaper::new(Profile { loss, ..Profile::delay(MS) }, 42);
            let t0 = Instant::now();
            (0..100_000).filter(|_| s.on_packet(t0, 100) == Verdict::Lost).count() as f64 / 100_000.0
        };
        assert!((rate(Loss::Random(0.03)) - 0.03).abs() < 0.003);
        // Stationary bad share 0.01 / (0.01 + 0.1) = 9 %, all lost there: 9 % overall, in bursts.
        let bursts = Loss::Bursts { good_to_bad: 0.01, bad_to_good: 0.1, loss_good: 0.0, loss_bad: 1.0 };
        assert!((rate(bursts) - 0.0909).abs() < 0.01);
    }
}
