//! A userspace link emulator, for kernels without the netem qdisc.
//!
//! It owns the emulated network of the benches and tests: network namespaces ([`Namespace`]) joined by
//! TUN devices through a forwarding loop ([`Link`]) that applies, per direction, a one-way delay with
//! jitter, random or bursty (Gilbert-Elliott) loss, and a rate cap behind a bounded FIFO queue with tail
//! drop ([`Profile`]), and counts what it did ([`Stats`]). Working on IP packets, it gives TCP and QUIC
//! exactly the same link. [`Star`] is the benches' topology: a downloader joined to each source by a link
//! of its own. The decisions are made by [`Shaper`], plain logic tested without devices or clocks.
//!
//! It needs CAP_SYS_ADMIN and CAP_NET_ADMIN, which root has and which [`ensure_privileges`] gives an
//! unprivileged process in a user namespace of its own, read-write access to /dev/net/tun, and `ip` from
//! iproute2. Its namespaces are anonymous: they and their devices vanish when dropped or when the process
//! ends, however it ends.
//!
//! # Example
//! ```no_run
//! use std::time::Duration;
//! use linkem::{Profile, Star};
//!
//! linkem::ensure_privileges()?; // first thing in main, before any thread starts
//! // Two sources, each behind 20 Mbit/s, 20 ms one way and 1 % loss.
//! let star = Star::new(2, Profile::shaped(20, Duration::from_millis(20), 0.01))?;
//! // A socket made on a namespace's thread lives in that namespace: here a source on spoke 0.
//! let source = star.spokes[0].spawn(|| std::net::TcpListener::bind((Star::spoke_addr(0), 5001)))?;
//! let _listener = source.join().expect("thread")??;
//! println!("spoke 0 to hub, hub to spoke 0: {:?}", star.stats(0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod link;
mod netns;
mod privileges;
mod profile;
mod shaper;
mod star;

pub use link::Link;
pub use netns::Namespace;
pub use privileges::{Privileges, ensure_privileges};
pub use profile::{Loss, Profile};
pub use shaper::{Shaper, Stats, Verdict};
pub use star::Star;

/// Why the emulated network could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// A command (`ip ...`) failed; the message quotes it.
    #[error("`{command}` failed: {stderr} (linkem needs iproute2)")]
    Command {
        /// The command line.
        command: String,
        /// What it printed.
        stderr: String,
    },
    /// A TUN device could not be made.
    #[error("cannot create a TUN device: {0} (linkem needs /dev/net/tun readable and writable by this user)")]
    Tun(String),
    /// A network namespace could not be made or entered: the capabilities are missing.
    #[error("cannot create or enter a network namespace: {0} (run as root, or call linkem::ensure_privileges)")]
    Namespace(std::io::Error),
    /// The process could not get the privileges linkem needs.
    #[error("linkem cannot run unprivileged: {0}")]
    Unprivileged(String),
    /// A system call failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
