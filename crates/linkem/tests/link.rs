//! Real traffic between namespaces through the emulator: delay, loss and rate each land within 5 % of the
//! settings, and the emulator's own counts match what the receiver saw.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::spoke;
use linkem::{Loss, Profile, Star};

/// A UDP socket bound inside the spoke that receives for `window` and returns (bytes, arrival times).
fn receive(star: &Star, window: Duration) -> std::thread::JoinHandle<Result<Vec<(usize, Instant)>, linkem::LinkError>> {
    star.spokes[0]
        .spawn(move || {
            let socket = UdpSocket::bind(spoke()).expect("bind in the spoke");
            // Room for the bursts the sender makes while this thread waits for a core.
            socket2::SockRef::from(&socket).set_recv_buffer_size(8 << 20).expect("buffer");
            socket.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
            let mut got = Vec::new();
            let mut buf = [0u8; 2048];
            let end = Instant::now() + window;
            while Instant::now() < end {
                if let Ok(n) = socket.recv(&mut buf) {
                    got.push((n, Instant::now()));
                }
            }
            got
        })
        .expect("spawn")
}

/// Sends `count` datagrams of `len` bytes from the hub to the spoke, `burst` at a time every `every`.
fn send(star: &Star, count: usize, len: usize, burst: usize, every: Duration) {
    star.hub
        .spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
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
}

#[test]
fn delay_is_applied_each_way() {
    let star = Star::new(1, Profile::delay(Duration::from_millis(25))).expect("star (needs root)");
    let median = common::median_round_trip(&star, 40).as_secs_f64() * 1000.0;
    assert!((median - 50.0).abs() <= 2.5, "median round trip {median} ms through 2 x 25 ms");
}

#[test]
fn loss_matches_the_probability() {
    let profile = Profile { loss: Loss::Random(0.10), ..Profile::delay(Duration::from_millis(1)) };
    let star = Star::new(1, profile).expect("star (needs root)");
    let receiver = receive(&star, Duration::from_secs(3));
    // 25,000 packets a second: well within what the sockets and the emulator absorb.
    let sent = 50_000;
    send(&star, sent, 100, 50, Duration::from_millis(2));
    let got = receiver.join().expect("receiver").expect("entered").len();
    let lost = 1.0 - got as f64 / sent as f64;
    let [_, to_spoke] = star.stats(0);
    eprintln!("10 % loss: {:.3} % lost ({got} of {sent} arrived), stats {to_spoke:?}", lost * 100.0);
    assert!((lost - 0.10).abs() <= 0.005, "lost {lost} for 0.10");
    assert_eq!(to_spoke.delivered, got as u64, "every packet the emulator delivered arrived");
}

#[test]
fn rate_cap_holds_and_the_queue_tail_drops() {
    let mbit = 20;
    let star = Star::new(1, Profile::shaped(mbit, Duration::from_millis(2), 0.0)).expect("star (needs root)");
    let receiver = receive(&star, Duration::from_secs(3));
    // Twice the cap: 1,400-byte datagrams, 35 every 10 ms is about 40 Mbit/s, for 2 s.
    send(&star, 35 * 200, 1_400, 35, Duration::from_millis(10));
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
