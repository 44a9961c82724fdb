//! The privileges linkem needs, and how an unprivileged process gets them: a user namespace of its own.
//!
//! Making namespaces and TUN devices takes CAP_SYS_ADMIN and CAP_NET_ADMIN, but only in the user
//! namespace that owns the network namespace acted on. So a process without them makes a user namespace in
//! which it is root (its own user id mapped to 0) and a network namespace owned by that, as
//! `unshare --user --map-root-user --net` does; every namespace linkem makes afterwards belongs to it too.
//! The kernel moves only a single-threaded process into a new user namespace, so this is done in place,
//! first thing in `main`, rather than by a thread later.

use nix::sched::{CloneFlags, unshare};

use crate::LinkError;

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

/// How this process holds the privileges linkem needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Privileges {
    /// It had them already: root, or given CAP_SYS_ADMIN and CAP_NET_ADMIN.
    Held,
    /// It is now root of a user namespace of its own, in a network namespace of its own (loopback up).
    UserNamespace,
}

/// Makes sure this process can build emulated networks: if it lacks the capabilities, moves it into a user
/// namespace and a network namespace of its own. Call it before any thread starts (before a runtime,
/// criterion or a test harness). The host's network is out of reach afterwards, which is what a test of
/// emulated links wants; files are still read and written as the user who ran it.
pub fn ensure_privileges() -> Result<Privileges, LinkError> {
    let status = Status::read()?;
    if status.capable() {
        return Ok(Privileges::Held);
    }
    if status.threads > 1 {
        return Err(LinkError::Unprivileged(format!(
            "the process already runs {} threads; call linkem::ensure_privileges first thing in main",
            status.threads
        )));
    }
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET).map_err(|e| {
        LinkError::Unprivileged(format!(
            "cannot create a user namespace: {e} (unprivileged user namespaces may be disabled: sysctl \
             user.max_user_namespaces, or kernel.apparmor_restrict_unprivileged_userns on Ubuntu)"
        ))
    })?;
    // An unprivileged process may map only its own ids, and only a group id once it gave up setgroups.
    std::fs::write("/proc/self/uid_map", format!("0 {} 1", status.uid))?;
    std::fs::write("/proc/self/setgroups", "deny")?;
    std::fs::write("/proc/self/gid_map", format!("0 {} 1", status.gid))?;
    crate::netns::ip(&["link", "set", "lo", "up"].map(String::from))?;
    Ok(Privileges::UserNamespace)
}

/// What /proc/self/status says of the process's ids, capabilities and threads.
#[derive(Debug, PartialEq)]
struct Status {
    uid: u32,
    gid: u32,
    capabilities: u64,
    threads: u32,
}

impl Status {
    fn read() -> Result<Self, LinkError> {
        let text = std::fs::read_to_string("/proc/self/status")?;
        Self::parse(&text).ok_or_else(|| LinkError::Unprivileged("cannot read /proc/self/status".into()))
    }

    /// The effective ids (the second of each line) and capabilities, which the kernel checks.
    fn parse(text: &str) -> Option<Self> {
        let field = |name: &str, column: usize| {
            let line = text.lines().find_map(|l| l.strip_prefix(name))?;
            line.split_whitespace().nth(column)
        };
        Some(Self {
            uid: field("Uid:", 1)?.parse().ok()?,
            gid: field("Gid:", 1)?.parse().ok()?,
            capabilities: u64::from_str_radix(field("CapEff:", 0)?, 16).ok()?,
            threads: field("Threads:", 0)?.parse().ok()?,
        })
    }

    fn capable(&self) -> bool {
        [CAP_NET_ADMIN, CAP_SYS_ADMIN].iter().all(|cap| self.capabilities & (1 << cap) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tbench\nUid:\t1000\t1001\t1001\t1001\nGid:\t100\t101\t101\t101\n\
                          Threads:\t1\nCapEff:\t0000000000001000\n";

    #[test]
    fn reads_the_effective_ids_and_capabilities() {
        let status = Status::parse(STATUS).expect("parses");
        assert_eq!(status, Status { uid: 1001, gid: 101, capabilities: 1 << CAP_NET_ADMIN, threads: 1 });
        assert!(!status.capable(), "CAP_NET_ADMIN without CAP_SYS_ADMIN is not enough");
        let root = Status { capabilities: 0x1ff_feff_ffff, ..status };
        assert!(root.capable());
        assert_eq!(Status::parse("Uid:\t0\n"), None);
    }
}
