//! What the linkem tests share: a ping through a star's first link.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use linkem::Star;

const PORT: u16 = 7000;

/// Spoke 0's test address.
pub(crate) fn spoke() -> SocketAddr {
    (Star::spoke_addr(0), PORT).into()
}

/// Round trips of UDP pings through a link: the fastest and the median.
pub(crate) struct RoundTrips {
    pub(crate) min: Duration,
    pub(crate) median: Duration,
}

/// `count` UDP pings from the hub to an echo in spoke 0, one at a time, sent once the echo is bound.
pub(crate) fn round_trips(star: &Star, count: usize) -> RoundTrips {
    let (bound_tx, bound) = std::sync::mpsc::channel();
    let echo = star.spokes[0]
        .spawn(move || {
            let socket = UdpSocket::bind(spoke()).expect("bind");
            bound_tx.send(()).expect("the pinger waits");
            let mut buf = [0u8; 64];
            for _ in 0..count {
                let (n, from) = socket.recv_from(&mut buf).expect("ping");
                socket.send_to(&buf[..n], from).expect("pong");
            }
        })
        .expect("spawn");
    bound.recv_timeout(Duration::from_secs(10)).expect("the echo binds");
    let mut rtts = star
        .hub
        .spawn(move || {
            let socket = UdpSocket::bind((Star::hub_addr(0), 0)).expect("bind");
            let mut buf = [0u8; 64];
            (0..count)
                .map(|_| {
                    let sent = Instant::now();
                    socket.send_to(b"ping", spoke()).expect("send");
                    socket.recv(&mut buf).expect("pong");
                    sent.elapsed()
                })
                .collect::<Vec<_>>()
        })
        .expect("spawn")
        .join()
        .expect("pinger")
        .expect("entered");
    echo.join().expect("echo").expect("entered");
    rtts.sort();
    eprintln!("{count} round trips: min {:?}, median {:?}, max {:?}", rtts[0], rtts[count / 2], rtts[count - 1]);
    RoundTrips { min: rtts[0], median: rtts[count / 2] }
}

/// Checks a round trip through two links of `one_way` each: none faster (the delay is applied), and the
/// median close to it (within 20 %: room for a loaded machine's scheduling, none for a missing delay).
pub(crate) fn assert_delay(rtts: &RoundTrips, one_way: Duration) {
    let expected = 2 * one_way;
    assert!(rtts.min + Duration::from_micros(200) >= expected, "a round trip of {:?} beat {expected:?}", rtts.min);
    assert!(rtts.median <= expected + expected / 5, "median round trip {:?} through {expected:?}", rtts.median);
}
