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
//! Here a window of `GAIN` BDPs keeps half a BDP queued: the link stays busy through ack delays and
//! lost packets, and the sender can deliver half as much again as its estimate wherever the path has
//! more to give, which raises the estimate (the probe for more bandwidth is built in). Startup grows the
//! window by at most what is acknowledged, to `STARTUP_GAIN` BDPs: it doubles per round trip until the
//! bandwidth stops growing (at once if the RTT shows a queue building, so the overshoot is one round trip).
//!
//! The lowest RTT is that of the last `MIN_RTT_WINDOW`: when it has not been seen again for so long,
//! the window drops to half a BDP until the queue drains and for `PROBE_TIME` more (as BBR's ProbeRTT),
//! and what the path then shows is its delay; the window grows back by what is acknowledged. Without
//! that, a path whose delay grew for good (a Wi-Fi client roaming, a VPN rerouted) would get a window
//! sized for the old delay, deliver less, measure less and shrink the window again, down to the minimum.
//!
//! The logic is sans-IO like quinn-proto's: [`BdpControl`] takes times and sizes (tests drive it with a
//! simulated link) and the [`Controller`] impl is its thin adapter.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn_proto::RttEstimator;
use quinn_proto::congestion::{Controller, ControllerFactory, ControllerMetrics};

/// The steady window, in bandwidth-delay products.
const GAIN: f64 = 1.5;
/// The window's ceiling during startup, in bandwidth-delay products: at most one BDP beyond the pipe,
/// what a router queue of one BDP holds. BBR's 2.89 overflowed such a queue at the end of every startup
/// (93 packets dropped per 16 MiB download on the emulated `poor` link, 2 with this).
const STARTUP_GAIN: f64 = 2.0;
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
/// How long the lowest RTT is believed without being seen again.
const MIN_RTT_WINDOW: Duration = Duration::from_secs(10);
/// The window while probing the path's delay, in bandwidth-delay products: it drains the half BDP queued.
const PROBE_GAIN: f64 = 0.5;
/// How long a probe holds the drained window, or one round trip if that is longer: it costs about 1 % of
/// the link's capacity every `MIN_RTT_WINDOW`.
const PROBE_TIME: Duration = Duration::from_millis(200);

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

/// The stages of a probe of the path's delay.
#[derive(Clone, Copy, Debug)]
enum Probe {
    /// The window is down to half a BDP; the queue drains.
    Draining,
    /// The queue has drained; what is measured until then is the path's delay.
    Holding(Instant),
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
    /// The smoothed round-trip time, as the transport measures it.
    smoothed_rtt: Option<Duration>,
    /// The lowest round-trip time seen in the last `MIN_RTT_WINDOW` (or since the last probe), and when.
    min_rtt: Option<(Duration, Instant)>,
    /// Whether the path's delay is being probed.
    probe: Option<Probe>,
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
            smoothed_rtt: None,
            min_rtt: None,
            probe: None,
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

    /// A packet of `bytes` sent at `sent` was acknowledged at `now`; the transport's smoothed RTT is
    /// `smoothed_rtt`.
    pub fn acked(&mut self, now: Instant, sent: Instant, bytes: u64, app_limited: bool, smoothed_rtt: Duration) {
        self.delivered += bytes;
        self.delivered_at = now;
        self.acked_in_batch += bytes;
        self.smoothed_rtt = Some(smoothed_rtt).filter(|rtt| !rtt.is_zero()).or(self.smoothed_rtt);
        self.sample_rtt(now, now.saturating_duration_since(sent), app_limited);
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
        // A sender short of data, or holding back to probe the delay, measures its own pace, not the
        // path's: only a higher rate counts.
        if !(app_limited || self.probe.is_some()) || rate > self.bandwidth() {
            let slot = &mut self.rates[self.period % BANDWIDTH_PERIODS];
            *slot = (*slot).max(rate);
        }
    }

    /// Keeps the lowest round-trip time of the last `MIN_RTT_WINDOW`; when it is that old, takes the
    /// sample at hand and, if the sender keeps a queue (not short of data), probes for a lower one.
    fn sample_rtt(&mut self, now: Instant, sample: Duration, app_limited: bool) {
        let expired = self.min_rtt.is_some_and(|(_, at)| now.duration_since(at) > MIN_RTT_WINDOW);
        if expired || self.min_rtt.is_none_or(|(min, _)| sample <= min) {
            self.min_rtt = Some((sample, now));
        }
        if expired && !app_limited && self.startup.is_none() && self.probe.is_none() {
            self.probe = Some(Probe::Draining);
        }
    }

    /// A batch of acknowledgements was processed with `in_flight` bytes left in flight: the window
    /// follows the new estimates.
    pub fn end_acks(&mut self, now: Instant, in_flight: u64, app_limited: bool) {
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
            let queue_building = self
                .smoothed_rtt
                .zip(self.min_rtt)
                .is_some_and(|(smoothed, (min, _))| smoothed.as_secs_f64() > min.as_secs_f64() * QUEUE_BUILDING);
            if *flat >= FLAT_ROUNDS || *flat > 0 && queue_building {
                self.startup = None;
            }
        }
        self.new_round = false;
        let acked = std::mem::take(&mut self.acked_in_batch);
        if bandwidth > 0 {
            let gain = match (self.startup, self.probe) {
                (Some(_), _) => STARTUP_GAIN,
                (None, Some(_)) => PROBE_GAIN,
                (None, None) => GAIN,
            };
            // Grow by at most what was acknowledged (no bursts), fall at once (drain a queue); startup
            // never falls below where it began.
            let mut window = self.bdp_times(gain).min(self.window + acked);
            if self.startup.is_some() {
                window = window.max(self.window).max(self.initial_window);
            }
            self.window = window.max(self.min_window());
        }
        self.probe_step(now, in_flight);
    }

    /// A probe holds its window from when the queue has drained (what is in flight fits the window) for
    /// `PROBE_TIME` or a round trip; then the lowest RTT it saw is the path's, for another
    /// `MIN_RTT_WINDOW`.
    fn probe_step(&mut self, now: Instant, in_flight: u64) {
        let Some((min, _)) = self.min_rtt else { return };
        match self.probe {
            Some(Probe::Draining) if in_flight <= self.window => {
                self.probe = Some(Probe::Holding(now + PROBE_TIME.max(min)));
            }
            Some(Probe::Holding(end)) if now >= end => {
                self.probe = None;
                self.min_rtt = Some((min, now));
            }
            _ => {}
        }
    }

    /// `gain` bandwidth-delay products, in bytes, by the current estimates.
    fn bdp_times(&self, gain: f64) -> u64 {
        let min_rtt = self.min_rtt.map_or(RTT_FLOOR, |(min, _)| min.max(RTT_FLOOR));
        (self.bandwidth() as f64 * min_rtt.as_secs_f64() * gain) as u64
    }

    /// Every packet over a long stretch was lost: start again from the minimum.
    pub fn persistent_congestion(&mut self) {
        self.rates = [0; BANDWIDTH_PERIODS];
        self.startup = Some((0, 0));
        self.probe = None;
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
        self.acked(now, sent, bytes, app_limited, rtt.get());
    }

    fn on_end_acks(&mut self, now: Instant, in_flight: u64, app_limited: bool, _largest_acked: Option<u64>) {
        self.end_acks(now, in_flight, app_limited);
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
                control.acked(now, sent_at, MTU, false, now - sent_at);
                control.end_acks(now, in_flight, false);
            }
        }
        (delivered, queue_drops, now)
    }

    fn bdp(path: &Path) -> f64 {
        path.rate as f64 * path.rtt.as_secs_f64()
    }

    /// The window is [`GAIN`] BDPs of `path`, within -10 % and +15 %.
    fn assert_window_at_gain(control: &BdpControl, path: &Path, context: &str) {
        let share = control.window() as f64 / bdp(path);
        assert!((GAIN * 0.9..GAIN * 1.15).contains(&share), "window {share:.2} BDP{context}");
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
        assert_window_at_gain(&control, &path, "");
        assert!(delivered as f64 > 0.98 * 4.0 * path.rate as f64, "delivered {delivered}");
        assert_eq!(drops, 0, "tail drops behind a one-BDP queue after startup");
    }

    /// Startup doubles the window while the bandwidth grows, yet no further than what the pipe and a
    /// router queue of one BDP hold together: at most the odd packet at that edge is dropped (BBR's
    /// ceiling, 2.89 BDP, dropped 94 here, as on the emulated `poor` link).
    #[test]
    fn startup_does_not_overflow_a_queue_of_one_bdp() {
        let path = poor();
        let mut control = BdpControl::new(Instant::now(), MTU, 32 * MTU);
        let (_, drops, _) = drive(&mut control, &path, Instant::now(), Duration::ZERO, Duration::from_secs(3));
        assert!(drops <= 2, "{drops} tail drops during startup");
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
    fn a_path_whose_delay_grew_gets_a_window_for_its_new_delay() {
        let near = Path { rtt: Duration::from_millis(20), queue: 250_000, ..poor() };
        let far = Path { rtt: Duration::from_millis(100), ..near };
        let mut control = BdpControl::new(Instant::now(), MTU, 14_720);
        let (_, _, now) = drive(&mut control, &near, Instant::now(), Duration::ZERO, Duration::from_secs(3));
        let (delivered, _, _) = drive(&mut control, &far, now, Duration::from_secs(12), Duration::from_secs(15));
        assert_window_at_gain(&control, &far, " of the longer path");
        assert!(delivered as f64 > 0.95 * 3.0 * far.rate as f64, "delivered {delivered} in the last 3 s");
    }

    #[test]
    fn probing_the_delay_costs_little() {
        let path = poor();
        let start = Instant::now();
        let mut control = BdpControl::new(start, MTU, 14_720);
        let (delivered, drops, _) = drive(&mut control, &path, start, Duration::from_secs(2), Duration::from_secs(25));
        let probed = control.min_rtt.map(|(_, at)| at - start);
        assert!(probed.is_some_and(|at| at > 2 * MIN_RTT_WINDOW), "last probe at {probed:?}");
        assert_window_at_gain(&control, &path, ": the queue is not taken for delay");
        assert!(delivered as f64 > 0.97 * 23.0 * path.rate as f64, "delivered {delivered} in 23 s");
        assert_eq!(drops, 0, "tail drops after startup");
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
