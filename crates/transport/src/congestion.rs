//! QUIC congestion control sized by what the path delivers: the window is a multiple of the measured
//! bottleneck bandwidth times the lowest round-trip time (the bandwidth-delay product, BDP), and random
//! loss does not shrink it.
//!
//! Why not one of quinn's controllers: Cubic and NewReno halve their window at every loss, and the random
//! loss of Wi-Fi and VPN links keeps them far below the link rate. quinn's BBR ignores loss, but quinn
//! paces at 1.25 windows per smoothed RTT rather than at BBR's pacing rate, so BBR's window of two BDPs
//! (2.89 in startup) keeps a whole BDP queued at the bottleneck: behind a router queue of one BDP (the
//! `poor` bench link) a third of its packets were tail-dropped and goodput stayed near 80 %.
//!
//! Here a window of [`GAIN`] BDPs keeps half a BDP queued: the link stays busy through ack delays and
//! lost packets, and the sender can deliver half as much again as its estimate wherever the path has
//! more to give, which raises the estimate (the probe for more bandwidth is built in). Startup grows the
//! window by at most what is acknowledged, to [`STARTUP_GAIN`] BDPs: it doubles per round trip until the
//! bandwidth stops growing (at once if the RTT shows a queue building, so the overshoot is one round trip).
//!
//! The logic is sans-IO like quinn-proto's: [`BdpControl`] takes times and sizes (tests drive it with a
//! simulated link) and the [`Controller`] impl is its thin adapter. Known limit: the lowest RTT is the
//! connection's lowest ever (there is no probe of it as BBR has), so a path whose RTT grows for good is
//! under-used until the connection is made again.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn_proto::RttEstimator;
use quinn_proto::congestion::{Controller, ControllerFactory, ControllerMetrics};

/// The steady window, in bandwidth-delay products.
const GAIN: f64 = 1.5;
/// The window's ceiling during startup, in bandwidth-delay products.
const STARTUP_GAIN: f64 = 2.89;
/// Startup ends after [`FLAT_ROUNDS`] round trips that did not raise the bandwidth by this factor, or
/// after one such round trip if the round-trip time shows a queue building ([`QUEUE_BUILDING`]).
const GROWTH: f64 = 1.25;
const FLAT_ROUNDS: u32 = 3;
/// A smoothed round-trip time this many times the lowest means packets wait in a queue.
const QUEUE_BUILDING: f64 = 1.25;
/// The bandwidth estimate is the highest delivery rate of this many periods, each one round trip long
/// but at least [`MIN_PERIOD`]: ten round trips of a LAN are a few milliseconds, and one stall of the
/// receiving process would wipe the estimate.
const BANDWIDTH_PERIODS: usize = 10;
const MIN_PERIOD: Duration = Duration::from_millis(25);
/// The round-trip time the window is sized by is at least this: on a LAN the lowest measured RTT is a
/// fraction of a millisecond and, on a busy host, measured too low (quinn stamps a batch of packets
/// with one time), so that a window sized by it could not keep the link busy and would shrink with
/// every rate it then measured.
const RTT_FLOOR: Duration = Duration::from_millis(1);
/// The window never falls below this many packets.
const MIN_WINDOW_PACKETS: u64 = 4;

/// Builds a [`BdpControl`] for each connection.
#[derive(Clone, Copy, Debug)]
pub struct BdpConfig {
    /// Bytes the first round trip may carry.
    pub initial_window: u64,
}

impl Default for BdpConfig {
    /// 32 full packets, as Google's QUIC starts: the RFC 9002 default of ten costs two more round trips
    /// of slow start, a tenth of a one-second download over a 50 ms path. quinn paces the window
    /// over the round trip measured in the handshake, so it does not leave as one burst.
    fn default() -> Self {
        Self { initial_window: 32 * 1_472 }
    }
}

impl ControllerFactory for BdpConfig {
    fn build(self: Arc<Self>, now: Instant, current_mtu: u16) -> Box<dyn Controller> {
        Box::new(BdpControl::new(now, u64::from(current_mtu), self.initial_window))
    }
}

/// Round-trip times of the path.
#[derive(Clone, Copy, Debug)]
pub struct RoundTrip {
    /// The lowest seen: the path's own delay, without queues.
    pub min: Duration,
    /// The recent average.
    pub smoothed: Duration,
}

/// What was true when a packet was sent, to measure the delivery rate when it is acknowledged.
#[derive(Clone, Copy, Debug)]
struct Sent {
    at: Instant,
    /// Bytes acknowledged before it was sent, and when the last of them were.
    delivered: u64,
    delivered_at: Instant,
    /// When the packet acknowledged last before it was sent had been sent.
    first_sent: Instant,
}

/// The controller of one connection.
#[derive(Clone, Debug)]
pub struct BdpControl {
    mtu: u64,
    initial_window: u64,
    window: u64,
    rtt: Option<RoundTrip>,
    /// Bytes acknowledged so far, when the last were, and when the newest of them had been sent.
    delivered: u64,
    delivered_at: Instant,
    last_acked_sent: Instant,
    /// Packets in flight, oldest first; one entry per send instant.
    in_flight: VecDeque<Sent>,
    /// The round trip ends when a packet sent after `round_end` bytes were delivered is acknowledged.
    round_end: u64,
    new_round: bool,
    /// The highest delivery rate (bytes/s) of each recent period, the current one's at `period`.
    rates: [u64; BANDWIDTH_PERIODS],
    period: usize,
    period_start: Instant,
    /// During startup: the bandwidth it last grew to, and the round trips since.
    startup: Option<(u64, u32)>,
    acked_in_batch: u64,
}

impl BdpControl {
    /// A controller starting with `initial_window` bytes, for packets of up to `mtu` bytes.
    pub fn new(now: Instant, mtu: u64, initial_window: u64) -> Self {
        Self {
            mtu,
            initial_window,
            window: initial_window.max(MIN_WINDOW_PACKETS * mtu),
            rtt: None,
            delivered: 0,
            delivered_at: now,
            last_acked_sent: now,
            in_flight: VecDeque::new(),
            round_end: 0,
            new_round: false,
            rates: [0; BANDWIDTH_PERIODS],
            period: 0,
            period_start: now,
            startup: Some((0, 0)),
            acked_in_batch: 0,
        }
    }

    /// The bottleneck bandwidth estimate, in bytes per second.
    pub fn bandwidth(&self) -> u64 {
        self.rates.iter().copied().max().unwrap_or(0)
    }

    /// Bytes sent at `now`.
    pub fn sent(&mut self, now: Instant) {
        if self.in_flight.back().is_some_and(|s| s.at == now) {
            return;
        }
        let (delivered, delivered_at, first_sent) = (self.delivered, self.delivered_at, self.last_acked_sent);
        self.in_flight.push_back(Sent { at: now, delivered, delivered_at, first_sent });
    }

    /// A packet of `bytes` sent at `sent` was acknowledged at `now`.
    pub fn acked(&mut self, now: Instant, sent: Instant, bytes: u64, app_limited: bool, rtt: RoundTrip) {
        self.delivered += bytes;
        self.delivered_at = now;
        self.acked_in_batch += bytes;
        if !rtt.min.is_zero() {
            self.rtt = Some(rtt);
        }
        let i = self.in_flight.partition_point(|s| s.at < sent);
        let Some(&packet) = self.in_flight.get(i).filter(|s| s.at == sent) else { return };
        self.last_acked_sent = self.last_acked_sent.max(sent);
        if packet.delivered >= self.round_end {
            self.round_end = self.delivered;
            self.new_round = true;
            if now.duration_since(self.period_start) >= MIN_PERIOD {
                self.period += 1;
                self.period_start = now;
                self.rates[self.period % BANDWIDTH_PERIODS] = 0;
            }
        }
        // The slower of the ack and send intervals: a burst of acks must not look like a fast path.
        let interval = now.duration_since(packet.delivered_at).max(sent.duration_since(packet.first_sent));
        let Some(rate) = (self.delivered - packet.delivered).checked_mul(1_000_000_000) else { return };
        let Some(rate) = u64::try_from(interval.as_nanos()).ok().and_then(|ns| rate.checked_div(ns)) else {
            return;
        };
        // A sender short of data measures its own pace, not the path's: only a higher rate counts.
        if !app_limited || rate > self.bandwidth() {
            let slot = &mut self.rates[self.period % BANDWIDTH_PERIODS];
            *slot = (*slot).max(rate);
        }
    }

    /// A batch of acknowledgements was processed: the window follows the new estimates.
    pub fn end_acks(&mut self, app_limited: bool) {
        // Packets sent before the newest one acknowledged are acknowledged or lost by now.
        while self.in_flight.front().is_some_and(|s| s.at < self.last_acked_sent) {
            self.in_flight.pop_front();
        }
        let bandwidth = self.bandwidth();
        if let Some((grown_to, flat)) = &mut self.startup
            && self.new_round
            && !app_limited
        {
            if bandwidth as f64 >= *grown_to as f64 * GROWTH {
                (*grown_to, *flat) = (bandwidth, 0);
            } else {
                *flat += 1;
            }
            let queue_building =
                self.rtt.is_some_and(|r| r.smoothed.as_secs_f64() > r.min.as_secs_f64() * QUEUE_BUILDING);
            if *flat >= FLAT_ROUNDS || *flat > 0 && queue_building {
                self.startup = None;
            }
        }
        self.new_round = false;
        let acked = std::mem::take(&mut self.acked_in_batch);
        let Some(rtt) = self.rtt.filter(|_| bandwidth > 0) else { return };
        let gain = if self.startup.is_some() { STARTUP_GAIN } else { GAIN };
        let target = (bandwidth as f64 * rtt.min.max(RTT_FLOOR).as_secs_f64() * gain) as u64;
        // Grow by at most what was acknowledged (no bursts), fall at once (drain a queue); startup
        // never falls below where it began.
        let mut window = target.min(self.window + acked);
        if self.startup.is_some() {
            window = window.max(self.window).max(self.initial_window);
        }
        self.window = window.max(self.min_window());
    }

    /// Every packet over a long stretch was lost: start again from the minimum.
    pub fn persistent_congestion(&mut self) {
        self.rates = [0; BANDWIDTH_PERIODS];
        self.startup = Some((0, 0));
        self.window = self.min_window();
    }

    fn min_window(&self) -> u64 {
        MIN_WINDOW_PACKETS * self.mtu
    }
}

impl Controller for BdpControl {
    fn on_sent(&mut self, now: Instant, _bytes: u64, _last_packet_number: u64) {
        self.sent(now);
    }

    fn on_ack(&mut self, now: Instant, sent: Instant, bytes: u64, app_limited: bool, rtt: &RttEstimator) {
        self.acked(now, sent, bytes, app_limited, RoundTrip { min: rtt.min(), smoothed: rtt.get() });
    }

    fn on_end_acks(&mut self, _now: Instant, _in_flight: u64, app_limited: bool, _largest_acked: Option<u64>) {
        self.end_acks(app_limited);
    }

    /// Loss alone is not taken for congestion: on the links this is for, most of it is random. A full
    /// queue shows as a delivery rate that stops growing.
    fn on_congestion_event(&mut self, _now: Instant, _sent: Instant, persistent: bool, _lost_bytes: u64) {
        if persistent {
            self.persistent_congestion();
        }
    }

    fn on_mtu_update(&mut self, new_mtu: u16) {
        self.mtu = u64::from(new_mtu);
        self.window = self.window.max(self.min_window());
    }

    fn window(&self) -> u64 {
        self.window
    }

    fn metrics(&self) -> ControllerMetrics {
        let mut metrics = ControllerMetrics::default();
        metrics.congestion_window = self.window;
        metrics.pacing_rate = Some(self.bandwidth() * 8);
        metrics
    }

    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(self.clone())
    }

    fn initial_window(&self) -> u64 {
        self.initial_window
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MTU: u64 = 1_200;

    /// A path: a bottleneck of `rate` bytes/s behind a queue of `queue` bytes, `rtt` of propagation
    /// delay, every `loss_every`-th packet lost.
    #[derive(Clone, Copy)]
    struct Path {
        rate: u64,
        rtt: Duration,
        queue: u64,
        loss_every: u64,
    }

    /// Drives `control` over `path` from `start` for `time`, the sender sending whenever the window
    /// allows. Returns the bytes delivered and the packets dropped at the full queue after `settle`, and
    /// the end time.
    fn drive(
        control: &mut BdpControl,
        path: &Path,
        start: Instant,
        settle: Duration,
        time: Duration,
    ) -> (u64, u64, Instant) {
        let Path { rate, rtt, queue, loss_every } = *path;
        let serialise = Duration::from_nanos(MTU * 1_000_000_000 / rate);
        let (mut now, mut link_free) = (start, start);
        let (mut sent, mut in_flight, mut delivered, mut queue_drops) = (0u64, 0u64, 0u64, 0u64);
        // Per packet in flight: when its ack arrives (or its loss is detected), when it was sent, whether lost.
        let mut fates: VecDeque<(Instant, Instant, bool)> = VecDeque::new();
        while now < start + time {
            if in_flight + MTU <= control.window() {
                control.sent(now);
                sent += 1;
                in_flight += MTU;
                let backlog = link_free.saturating_duration_since(now).as_nanos() as u64 * rate / 1_000_000_000;
                let full = backlog + MTU > queue;
                queue_drops += u64::from(full && now >= start + settle);
                let lost = full || sent % loss_every == 0;
                if !lost {
                    link_free = link_free.max(now) + serialise;
                }
                fates.push_back((link_free.max(now) + rtt, now, lost));
                continue;
            }
            let Some((at, sent_at, lost)) = fates.pop_front() else { break };
            now = at;
            in_flight -= MTU;
            if !lost {
                delivered += if now >= start + settle { MTU } else { 0 };
                control.acked(now, sent_at, MTU, false, RoundTrip { min: rtt, smoothed: now - sent_at });
                control.end_acks(false);
            }
        }
        (delivered, queue_drops, now)
    }

    fn bdp(path: &Path) -> f64 {
        path.rate as f64 * path.rtt.as_secs_f64()
    }

    fn poor() -> Path {
        Path { rate: 2_500_000, rtt: Duration::from_millis(50), queue: 125_000, loss_every: u64::MAX }
    }

    #[test]
    fn settles_at_its_gain_times_the_path_bdp_and_fills_the_link() {
        let path = poor();
        let mut control = BdpControl::new(Instant::now(), MTU, 14_720);
        let (delivered, drops, _) =
            drive(&mut control, &path, Instant::now(), Duration::from_secs(2), Duration::from_secs(6));
        let share = control.window() as f64 / bdp(&path);
        assert!((GAIN * 0.9..GAIN * 1.15).contains(&share), "window {share:.2} BDP");
        assert!(delivered as f64 > 0.98 * 4.0 * path.rate as f64, "delivered {delivered}");
        assert_eq!(drops, 0, "tail drops behind a one-BDP queue after startup");
    }

    #[test]
    fn random_loss_does_not_shrink_the_window() {
        let path = Path { rate: 1_250_000, rtt: Duration::from_millis(100), loss_every: 33, ..poor() };
        let mut control = BdpControl::new(Instant::now(), MTU, 14_720);
        let (delivered, _, _) = drive(&mut control, &path, Instant::now(), Duration::ZERO, Duration::from_secs(6));
        let share = control.window() as f64 / bdp(&path);
        assert!(share > GAIN * 0.85, "window {share:.2} BDP");
        assert!(delivered as f64 > 0.85 * 6.0 * path.rate as f64, "delivered {delivered}");
    }

    #[test]
    fn a_slower_path_lowers_the_window_within_the_estimate_s_memory() {
        let fast = Path { rate: 5_000_000, rtt: Duration::from_millis(20), queue: 200_000, loss_every: u64::MAX };
        let slow = Path { rate: 500_000, ..fast };
        let mut control = BdpControl::new(Instant::now(), MTU, 14_720);
        let (_, _, now) = drive(&mut control, &fast, Instant::now(), Duration::ZERO, Duration::from_secs(2));
        drive(&mut control, &slow, now, Duration::ZERO, Duration::from_secs(3));
        let share = control.window() as f64 / bdp(&slow);
        assert!(share < GAIN * 1.3, "window {share:.2} BDP of the slower path");
    }

    #[test]
    fn persistent_congestion_starts_again_from_the_minimum() {
        let mut control = BdpControl::new(Instant::now(), MTU, 14_720);
        drive(&mut control, &poor(), Instant::now(), Duration::ZERO, Duration::from_secs(2));
        control.persistent_congestion();
        assert_eq!(control.window(), MIN_WINDOW_PACKETS * MTU);
        assert_eq!(control.bandwidth(), 0);
    }
}
