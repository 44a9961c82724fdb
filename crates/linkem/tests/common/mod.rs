//! What the linkem tests share: a ping through a star's first link.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use linkem::Star;

const PORT: u16 = 7000;

/// Spoke 0's test address.
pub(crate) fn spoke() -> SocketAddr {
    (Star::spoke_addr(0), PORT).into()
}

/// The median round trip of `count` UDP pings from the hub to an echo in spoke 0, one at a time.
pub(crate) fn median_round_trip(star: &Star, count: usize) -> Duration {
    let echo = star.spokes[0]
        .spawn(move || {
            let socket = UdpSocket::bind(spoke()).expect("bind");
            let mut buf = [0u8; 64];
            for _ in 0..count {
                let (n, from) = socket.recv_from(&mut buf).expect("ping");
                socket.send_to(&buf[..n], from).expect("pong");
            }
        })
        .expect("spawn");
    let mut rtts = star
        .hub
        .spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
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
    rtts[count / 2]
}
