//! A userspace link emulator, for kernels without the netem qdisc.
//!
//! It owns the emulated network of the benches and tests: network namespaces ([`Namespace`]) joined by
//! TUN devices through a forwarding loop ([`Link`]) that applies, per direction, a one-way delay with
//! jitter, random or bursty (Gilbert-Elliott) loss, and a rate cap behind a bounded FIFO queue with tail
//! drop ([`Profile`]), and counts what it did ([`Stats`]). Working on IP packets, it gives TCP and QUIC
//! exactly the same link. [`Star`] is the benches' topology: a downloader joined to each source by a link
//! of its own. The decisions are made by [`Shaper`], plain logic tested without devices or clocks.
//!
//! It needs CAP_NET_ADMIN (root) and `ip` from iproute2; the namespaces and devices it makes are removed
//! when dropped, and those of a killed run at the next start.

mod link;
mod netns;
mod profile;
mod shaper;
mod star;

pub use link::Link;
pub use netns::Namespace;
pub use profile::{Loss, Profile};
pub use shaper::{Shaper, Stats, Verdict};
pub use star::Star;

/// Why the emulated network could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// A command (`ip ...`) failed; the message quotes it. Usually: not root (CAP_NET_ADMIN needed).
    #[error("`{command}` failed: {stderr} (linkem needs root, or CAP_NET_ADMIN, and iproute2)")]
    Command {
        /// The command line.
        command: String,
        /// What it printed.
        stderr: String,
    },
    /// A TUN device could not be made.
    #[error("cannot create a TUN device: {0} (linkem needs root and /dev/net/tun)")]
    Tun(String),
    /// A system call failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
