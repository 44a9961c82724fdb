//! What a link does to packets: delay, jitter, loss, rate and queue, with the named profiles of the benches.

use std::time::Duration;

/// How packets are lost.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Loss {
    /// Each packet lost with this probability, independently.
    Random(f64),
    /// Gilbert-Elliott bursts: a good and a bad state, each with its own loss probability, switching with
    /// the given probabilities per packet.
    Bursts {
        /// Probability of moving from good to bad, per packet.
        good_to_bad: f64,
        /// Probability of moving from bad to good, per packet.
        bad_to_good: f64,
        /// Loss probability in the good state.
        loss_good: f64,
        /// Loss probability in the bad state.
        loss_bad: f64,
    },
}

/// The behaviour of one direction of a link.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Profile {
    /// One-way delay added to every packet.
    pub delay: Duration,
    /// Uniform jitter in `0..=jitter` added to the delay; packets still leave in order.
    pub jitter: Duration,
    /// Packet loss.
    pub loss: Loss,
    /// Rate cap in bits per second, counting whole IP packets; `None` for no cap.
    pub rate: Option<u64>,
    /// Bytes the queue in front of the rate cap holds; packets beyond it are dropped (tail drop).
    pub queue: usize,
}

const MBIT: u64 = 1_000_000;

impl Profile {
    /// A link that only delays.
    pub fn delay(delay: Duration) -> Self {
        Self { delay, jitter: Duration::ZERO, loss: Loss::Random(0.0), rate: None, queue: usize::MAX }
    }

    /// A link of `mbit` Mbit/s, `one_way_ms` delay and `loss` random loss, with a queue of one
    /// bandwidth-delay product of its round trip (at least 64 KiB), as a router in front of a slow link has.
    pub fn shaped(mbit: u64, one_way: Duration, loss: f64) -> Self {
        let rate = mbit * MBIT;
        let bdp = (rate as f64 / 8.0 * 2.0 * one_way.as_secs_f64()) as usize;
        Self {
            delay: one_way,
            jitter: Duration::ZERO,
            loss: Loss::Random(loss),
            rate: Some(rate),
            queue: bdp.max(64 * 1024),
        }
    }

    /// The named profiles of the benches: `lan`, `wifi`, `poor`, `bad`.
    pub fn named(name: &str) -> Option<Self> {
        let ms = Duration::from_micros;
        Some(match name {
            "lan" => Self::shaped(1_000, ms(500), 0.0),
            "wifi" => Self::shaped(50, ms(5_000), 0.005),
            "poor" => Self::shaped(20, ms(25_000), 0.01),
            "bad" => Self::shaped(10, ms(50_000), 0.03),
            _ => return None,
        })
    }

    /// Every named profile, best first.
    pub const NAMES: [&'static str; 4] = ["lan", "wifi", "poor", "bad"];
}
