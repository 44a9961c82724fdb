//! The conformance suite on mDNS, inside a network namespace of the test's own whose only LAN is a veth
//! pair (mDNS must never multicast on the host's interfaces). Every node of a case joins the multicast
//! group on the same interface, and multicast loopback carries each one's packets to the others.

use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use discovery::conformance::{CASES, Join, run};
use discovery::mdns::{MdnsConfig, MdnsDiscovery};
use linkem::Namespace;

#[test]
#[ignore = "needs root"]
fn mdns_conforms() {
    let lan = Namespace::create().expect("a network namespace");
    lan.ip(&["link", "add", "lan0", "type", "veth", "peer", "name", "lan1"]).expect("veth pair");
    lan.ip(&["addr", "add", "10.77.0.1/24", "dev", "lan0"]).expect("address");
    for device in ["lan0", "lan1"] {
        lan.ip(&["link", "set", device, "multicast", "on", "up"]).expect("link up");
    }
    let suite = lan.spawn(|| {
        // The runtime's threads, and the mDNS daemons' threads they start, are born inside the namespace.
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
        // Each case on a discovery port of its own: a case's nodes ignore the records of the last case's,
        // whose daemons may still answer for a moment after they are dropped.
        let ports = AtomicU16::new(5000);
        runtime.block_on(run(|| -> Join {
            let discovery_port = ports.fetch_add(1, Ordering::Relaxed);
            Box::new(move |local, _listen| {
                let config = MdnsConfig { local, discovery_port, interval: Duration::from_secs(1) };
                Box::new(MdnsDiscovery::start(config).expect("mDNS"))
            })
        }))
    });
    let passed = suite.expect("thread").join().expect("the suite panicked").expect("entered the namespace");
    assert_eq!(passed, CASES);
}
