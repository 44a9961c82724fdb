//! Network namespaces of our own: anonymous, held by a file descriptor, entered by threads.
//!
//! Nothing names them (no `ip netns`, no /run/netns), so nothing needs cleaning up: the kernel frees a
//! namespace and its devices once the last descriptor, socket and thread in it are gone, when the
//! [`Namespace`] is dropped or however the process ends. That also lets them live inside a user namespace
//! of an unprivileged process, where /run is not writable.

use std::fs::File;
use std::process::Command;
use std::thread::JoinHandle;

use nix::sched::{CloneFlags, setns, unshare};

use crate::LinkError;

/// A network namespace of our own, with its loopback up.
#[derive(Debug)]
pub struct Namespace {
    handle: File,
}

impl Namespace {
    /// Creates a fresh namespace (needs CAP_SYS_ADMIN and CAP_NET_ADMIN: see [`crate::ensure_privileges`]).
    pub fn create() -> Result<Self, LinkError> {
        // A thread that leaves for a new namespace and hands back its handle; the process stays where it is.
        let handle = joined(std::thread::spawn(|| {
            unshare(CloneFlags::CLONE_NEWNET).map_err(|e| LinkError::Namespace(e.into()))?;
            File::open("/proc/thread-self/ns/net").map_err(LinkError::Io)
        }))?;
        let ns = Self { handle };
        ns.ip(&["link", "set", "lo", "up"])?;
        // IPv4 only: no IPv6 router or neighbour solicitations on the links, so every packet counted is
        // the traffic under test. /proc/sys/net shows the namespace of the thread that opens it.
        ns.inside(|| std::fs::write("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1").map_err(LinkError::Io))?;
        Ok(ns)
    }

    /// Runs `ip` inside the namespace (a child process starts in the namespace of the thread forking it).
    pub fn ip(&self, args: &[&str]) -> Result<(), LinkError> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        self.inside(move || ip(&args))
    }

    /// Runs `f` on a new thread inside the namespace: sockets it creates live there (and stay there
    /// whichever thread uses them later), and threads it spawns start there.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<JoinHandle<Result<T, LinkError>>, LinkError> {
        let handle = self.handle.try_clone().map_err(LinkError::Io)?;
        Ok(std::thread::spawn(move || {
            setns(&handle, CloneFlags::CLONE_NEWNET).map_err(|e| LinkError::Namespace(e.into()))?;
            Ok(f())
        }))
    }

    /// Runs `f` inside the namespace and waits for what it returns.
    pub(crate) fn inside<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, LinkError> + Send + 'static,
    ) -> Result<T, LinkError> {
        joined(self.spawn(f)?)?
    }
}

/// What a thread returned; its panic, as an error.
fn joined<T>(thread: JoinHandle<Result<T, LinkError>>) -> Result<T, LinkError> {
    thread.join().map_err(|_| LinkError::Io(std::io::Error::other("a linkem setup thread panicked")))?
}

/// Runs `ip` in the calling thread's namespace; a failure quotes the command and what it printed.
pub(crate) fn ip(args: &[String]) -> Result<(), LinkError> {
    let command = format!("ip {}", args.join(" "));
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| LinkError::Command { command: command.clone(), stderr: e.to_string() })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(LinkError::Command { command, stderr })
}
