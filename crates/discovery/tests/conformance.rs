//! The public conformance suite on this crate's discoveries that run here: UDP broadcast on loopback
//! (each case on a discovery port of its own), and the in-memory LAN on a paused clock. mDNS multicasts
//! on the host's interfaces, so it runs in the harness's containers instead.

use std::net::Ipv4Addr;
use std::time::Duration;

use discovery::conformance::{CASES, Join, run};
use discovery::memory::MemoryLan;
use discovery::udp::{self, UdpConfig};

/// A free UDP port for one case's LAN.
fn free_port() -> u16 {
    std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|s| s.local_addr()).map(|a| a.port()).expect("port")
}

#[tokio::test(flavor = "multi_thread")]
async fn udp_broadcast_conforms() {
    let lan = || -> Join {
        let port = free_port();
        Box::new(move |local, listen| {
            let config = UdpConfig {
                local,
                port,
                listen,
                interval: Duration::from_secs(1),
                broadcast: Some(vec![Ipv4Addr::new(127, 255, 255, 255)]),
                static_peers: vec![],
                group: None,
            };
            Box::new(udp::start(config).expect("udp discovery"))
        })
    };
    assert_eq!(run(lan).await, CASES);
}

#[tokio::test(start_paused = true)]
async fn memory_lan_conforms() {
    let lan = || -> Join {
        let lan = MemoryLan::default();
        let next = std::sync::atomic::AtomicU8::new(1);
        Box::new(move |local, listen| {
            let host = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Box::new(lan.join([10, 0, 0, host].into(), local, listen))
        })
    };
    assert_eq!(run(lan).await, CASES);
}
