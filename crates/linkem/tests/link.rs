//! Real traffic between namespaces through the emulator: delay, loss and rate each land within 5 % of the
//! settings, and the emulator's own counts match what the receiver saw.

mod common;

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::spoke;
use linkem::{Loss, Profile, Star};

/// How long the link stays quiet, after the sender is done, before the receiver stops.
const QUIET: Duration = Duration::from_millis(300);

/// A UDP socket bound inside the spoke (bound when this returns) that receives until `sent` is set and the
/// link has been quiet for [`QUIET`], or 30 s at most; returns (bytes, arrival time) of each datagram.
fn receive(star: &Star, sent: Arc<AtomicBool>) -> JoinHandle<Result<Vec<(usize, Instant)>, linkem::LinkError>> {
    let (bound_tx, bound) = std::sync::mpsc::channel();
    let receiver = star.spokes[0]
        .spawn(move || {
            let socket = UdpSocket::bind(spoke()).expect("bind in the spoke");
            // Room for the bursts the sender makes while this thread waits for a core.
            socket2::SockRef::from(&socket).set_recv_buffer_size(8 << 20).expect("buffer");
            socket.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
            bound_tx.send(()).expect("the test waits");
            let (mut got, mut buf) = (Vec::new(), [0u8; 2048]);
            let (give_up, mut last) = (Instant::now() + Duration::from_secs(30), Instant::now());
            while !(sent.load(Ordering::Acquire) && last.elapsed() >= QUIET) && Instant::now() < give_up {
                if let Ok(n) = socket.recv(&mut buf) {
                    last = Instant::now();
                    got.push((n, last));
                }
            }
            got
        })
        .expect("spawn");
    bound.recv_timeout(Duration::from_secs(10)).expect("the receiver binds");
    receiver
}

/// Sends `count` datagrams of `len` bytes from the hub to the spoke, `burst` at a time every `every`; then
/// sets `sent`.
fn send(star: &Star, count: usize, len: usize, burst: usize, every: Duration, sent: &AtomicBool) {
    star.hub
        .spawn(move || {
            let socket = UdpSocket::bind((Star::hub_addr(0), 0)).expect("bind in the hub");
            let payload = vec![7u8; len];
            let start = Instant::now();
            for i in 0..count {
                if i % burst == 0 {
                    let due = start + every * (i / burst) as u32;
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                }
                socket.send_to(&payload, spoke()).expect("send");
            }
        })
        .expect("spawn")
        .join()
        .expect("sender")
        .expect("entered the hub");
    sent.store(true, Ordering::Release);
}

#[test]
#[ignore = "needs root"]
fn delay_is_applied_each_way() {
    let star = Star::new(1, Profile::delay(Duration::from_millis(25))).expect("star");
    common::assert_delay(&common::round_trips(&star, 40), Duration::from_millis(25));
}

#[test]
#[ignore = "needs root"]
fn loss_matches_the_probability() {
    let profile = Profile { loss: Loss::Random(0.10), ..Profile::delay(Duration::from_millis(1)) };
    let star = Star::new(1, profile).expect("star");
    let done = Arc::new(AtomicBool::new(false));
    let receiver = receive(&star, done.clone());
    // 25,000 packets a second: well within what the sockets and the emulator absorb.
    let sent = 50_000;
    send(&star, sent, 100, 50, Duration::from_millis(2), &done);
    let got = receiver.join().expect("receiver").expect("entered").len();
    let lost = 1.0 - got as f64 / sent as f64;
    let [_, to_spoke] = star.stats(0);
    eprintln!("10 % loss: {:.3} % lost ({got} of {sent} arrived), stats {to_spoke:?}", lost * 100.0);
    assert!((lost - 0.10).abs() <= 0.005, "lost {lost} for 0.10");
    assert_eq!(to_spoke.delivered, got as u64, "every packet the emulator delivered arrived");
}

#[test]
#[ignore = "needs root"]
fn rate_cap_holds_and_the_queue_tail_drops() {
    let mbit = 20;
    let star = Star::new(1, Profile::shaped(mbit, Duration::from_millis(2), 0.0)).expect("star");
    let done = Arc::new(AtomicBool::new(false));
    let receiver = receive(&star, done.clone());
    // Twice the cap: 1,400-byte datagrams, 35 every 10 ms is about 40 Mbit/s, for 2 s.
    send(&star, 35 * 200, 1_400, 35, Duration::from_millis(10), &done);
    let got = receiver.join().expect("receiver").expect("entered");
    let (first, last) = (got[0].1, got[got.len() - 1].1);
    // IP packet bytes: payload plus 28 bytes of IP and UDP headers; the first packet opens the window.
    let bytes: usize = got[1..].iter().map(|(n, _)| n + 28).sum();
    let rate = bytes as f64 * 8.0 / (last - first).as_secs_f64() / 1e6;
    let [_, to_spoke] = star.stats(0);
    eprintln!("{mbit} Mbit/s cap: {rate:.2} Mbit/s arrived, stats {to_spoke:?}");
    assert!((rate - mbit as f64).abs() <= mbit as f64 * 0.05, "{rate} Mbit/s through a {mbit} Mbit/s cap");
    assert!(to_spoke.queue_drops > 0, "the excess is dropped at the full queue");
    assert_eq!(to_spoke.lost, 0);
}
