//! Network namespaces made with `ip netns`, entered by threads, deleted when dropped.

use std::fs::File;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;

use nix::sched::{CloneFlags, setns};

use crate::LinkError;

/// Namespaces of this process are named `lk-PID-N`, so leftovers of a killed run can be recognised.
const PREFIX: &str = "lk-";
const NETNS_DIR: &str = "/run/netns";

/// A network namespace of our own, with its loopback up.
#[derive(Debug)]
pub struct Namespace {
    name: String,
    handle: File,
}

impl Namespace {
    /// Creates a fresh namespace (and removes those left by runs that were killed).
    pub fn create() -> Result<Self, LinkError> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        remove_leftovers();
        let name = format!("{PREFIX}{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        run("ip", &["netns", "add", &name])?;
        let handle = File::open(format!("{NETNS_DIR}/{name}")).map_err(LinkError::Io)?;
        let ns = Self { name, handle };
        ns.ip(&["link", "set", "lo", "up"])?;
        // IPv4 only: no IPv6 router or neighbour solicitations on the links, so every packet counted is
        // the traffic under test. /proc/sys/net shows the namespace of the thread that opens it.
        ns.spawn(|| std::fs::write("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1"))?
            .join()
            .map_err(|_| LinkError::Io(std::io::Error::other("sysctl thread panicked")))??
            .map_err(LinkError::Io)?;
        Ok(ns)
    }

    /// Its name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip` inside the namespace.
    pub fn ip(&self, args: &[&str]) -> Result<(), LinkError> {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Moves the calling thread into the namespace: sockets it creates from now on live there (and stay
    /// there whichever thread uses them later), and threads it spawns start there.
    pub fn enter(&self) -> Result<(), LinkError> {
        setns(&self.handle, CloneFlags::CLONE_NEWNET).map_err(|e| LinkError::Io(e.into()))
    }

    /// Runs `f` on a new thread inside the namespace.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<JoinHandle<Result<T, LinkError>>, LinkError> {
        let handle = self.handle.try_clone().map_err(LinkError::Io)?;
        Ok(std::thread::spawn(move || {
            setns(&handle, CloneFlags::CLONE_NEWNET).map_err(|e| LinkError::Io(e.into()))?;
            Ok(f())
        }))
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Err(e) = run("ip", &["netns", "del", &self.name]) {
            tracing::warn!(namespace = %self.name, error = %e, "namespace not removed");
        }
    }
}

/// Deletes the namespaces of processes that no longer run (a bench killed before it cleaned up).
fn remove_leftovers() {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else { return };
    for name in entries.flatten().filter_map(|e| e.file_name().into_string().ok()) {
        let pid = name.strip_prefix(PREFIX).and_then(|rest| rest.split('-').next());
        if pid.is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = run("ip", &["netns", "del", &name]);
        }
    }
}

/// Runs a command, turning a failure into an error that quotes it and its stderr.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<(), LinkError> {
    let command = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| LinkError::Command { command: command.clone(), stderr: e.to_string() })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(LinkError::Command { command, stderr })
}
