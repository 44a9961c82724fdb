//! A link between two namespaces: a TUN device in each, and per direction a reader that decides each
//! packet's fate (the [`Shaper`]) and a writer that hands it to the other side when it is due.
//!
//! Each device is made by a thread inside its namespace, so it is born there. Drops happen here, on the
//! receiving side of the sender's device, never on the sender's own egress: a drop there would return an
//! error to the sending socket, and TCP small queues would hold packets back from a sender-side rate cap
//! so that it never dropped.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::netns::Namespace;
use crate::shaper::{Shaper, Stats, Verdict};
use crate::{LinkError, Profile};

/// How often idle threads look whether the link is being torn down.
const POLL: Duration = Duration::from_millis(50);
/// A writer sleeps until this long before a packet is due and spins for the rest: the VM's timers
/// oversleep by about 0.2 ms, which would stretch a 0.5 ms delay by 40 %.
const SPIN: Duration = Duration::from_micros(250);
/// The largest packet a device hands over (no offloads: at most the MTU).
const MAX_PACKET: usize = 65_536;
const MTU: &str = "1500";

type Device = Arc<tun::Device>;

/// A running link; dropping it stops its threads and removes its devices.
pub struct Link {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    shapers: [Arc<Mutex<Shaper>>; 2],
}

impl Link {
    /// Joins namespace `a` (address `a_ip`) to `b` (address `b_ip`) point to point; packets from `a` to
    /// `b` go through `a_to_b`, the others through `b_to_a`.
    pub fn join(
        (a, a_ip): (&Namespace, Ipv4Addr),
        (b, b_ip): (&Namespace, Ipv4Addr),
        a_to_b: Profile,
        b_to_a: Profile,
    ) -> Result<Self, LinkError> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dev_a = device(format!("lk{n}a"), a, a_ip, b_ip)?;
        let dev_b = device(format!("lk{n}b"), b, b_ip, a_ip)?;
        let stop = Arc::new(AtomicBool::new(false));
        let seed = u64::from(n) << 1;
        let shapers =
            [Arc::new(Mutex::new(Shaper::new(a_to_b, seed))), Arc::new(Mutex::new(Shaper::new(b_to_a, seed + 1)))];
        let mut threads = Vec::new();
        threads.extend(forward(dev_a.clone(), dev_b.clone(), shapers[0].clone(), stop.clone()));
        threads.extend(forward(dev_b, dev_a, shapers[1].clone(), stop.clone()));
        Ok(Self { stop, threads, shapers })
    }

    /// What each direction did so far: `a` to `b`, then `b` to `a`.
    pub fn stats(&self) -> [Stats; 2] {
        self.shapers.each_ref().map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).stats())
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A TUN device named `name` in `ns`, with address `local` and peer `remote`, up.
fn device(name: String, ns: &Namespace, local: Ipv4Addr, remote: Ipv4Addr) -> Result<Device, LinkError> {
    let mut config = tun::Configuration::default();
    config.tun_name(&name).layer(tun::Layer::L3);
    let dev = ns.inside(move || tun::create(&config).map_err(|e| LinkError::Tun(e.to_string())))?;
    let (local, remote) = (local.to_string(), format!("{remote}/32"));
    ns.ip(&["addr", "add", &local, "peer", &remote, "dev", &name])?;
    ns.ip(&["link", "set", &name, "mtu", MTU, "txqueuelen", "10000", "up"])?;
    Ok(Arc::new(dev))
}

/// The two threads of one direction: `from`'s packets, shaped, written into `to`.
fn forward(from: Device, to: Device, shaper: Arc<Mutex<Shaper>>, stop: Arc<AtomicBool>) -> [JoinHandle<()>; 2] {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let reading = stop.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; MAX_PACKET];
        while !reading.load(Ordering::Relaxed) {
            let len = match from.recv_timeout(&mut buf, POLL) {
                Ok(len) => len,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
                Err(e) => return tracing::warn!(error = %e, "link device read failed"),
            };
            let verdict = shaper.lock().unwrap_or_else(|p| p.into_inner()).on_packet(Instant::now(), len);
            if let Verdict::Deliver(at) = verdict
                && tx.send((at, buf[..len].to_vec())).is_err()
            {
                return;
            }
        }
    });
    let writer = std::thread::spawn(move || {
        let _ = nix::sys::prctl::set_timerslack(1);
        loop {
            let (at, packet) = match rx.recv_timeout(POLL) {
                Ok(due) => due,
                Err(mpsc::RecvTimeoutError::Timeout) if !stop.load(Ordering::Relaxed) => continue,
                Err(_) => return,
            };
            sleep_until(at);
            // A full device queue on the receiving side drops the packet, as a real link would.
            let _ = to.send(&packet);
        }
    });
    [reader, writer]
}

fn sleep_until(at: Instant) {
    let now = Instant::now();
    if at > now + SPIN {
        std::thread::sleep(at - now - SPIN);
    }
    while Instant::now() < at {
        std::hint::spin_loop();
    }
}
