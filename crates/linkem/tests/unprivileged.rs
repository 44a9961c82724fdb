//! linkem without root: a process with no capabilities makes a user namespace and network namespaces of its
//! own and carries real traffic through an emulated link.
//!
//! Run by root (as in CI), the test runs itself again as user `nobody`. Where /dev/net/tun is root's only
//! (mode 0600, as on some VMs; most distributions ship it 0666), that run gets a node of the same device
//! owned by `nobody` to mount over it: everything else is what an unprivileged user gets.
//!
//! It has its own `main`, not libtest's: the kernel moves only a single-threaded process into a new user
//! namespace, and libtest starts threads before any test runs.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use linkem::{Privileges, Profile, Star};

/// Set for the run as `nobody`: the device node to mount over /dev/net/tun.
const TUN_NODE: &str = "LINKEM_TEST_TUN_NODE";
const NOBODY: u32 = 65_534;
const TEST: &str = "unprivileged_user_namespace";

fn main() {
    // As libtest does for a test marked `#[ignore = "needs root"]`: listed and run only when ignored tests
    // are asked for (cargo-nextest lists with `--list`).
    let args: Vec<String> = std::env::args().collect();
    let ignored = args.iter().any(|a| a == "--ignored" || a == "--include-ignored");
    if args.iter().any(|a| a == "--list") {
        if ignored {
            println!("{TEST}: test");
        }
        return;
    }
    if std::env::var_os(TUN_NODE).is_some() {
        return emulate_without_privileges();
    }
    if !ignored {
        return println!("test {TEST} ... ignored, needs root (it runs itself again as nobody)");
    }
    assert_eq!(std::fs::metadata("/proc/self").expect("/proc").uid(), 0, "{TEST} needs root");
    run_as_nobody();
}

/// Runs this test's binary again as `nobody`, from a directory `nobody` can reach.
fn run_as_nobody() {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    let exe = dir.path().join("unprivileged");
    std::fs::copy(std::env::current_exe().expect("own path"), &exe).expect("copy the test binary");
    let tun = dir.path().join("tun");
    let made = Command::new("mknod").args(["-m", "600"]).arg(&tun).args(["c", "10", "200"]).status();
    assert!(made.expect("mknod").success(), "mknod of the TUN device");
    std::os::unix::fs::chown(&tun, Some(NOBODY), Some(NOBODY)).expect("chown");
    let status = Command::new(&exe).env(TUN_NODE, &tun).uid(NOBODY).gid(NOBODY).status().expect("run as nobody");
    assert!(status.success(), "the run as nobody failed: {status}");
}

fn emulate_without_privileges() {
    let privileges = linkem::ensure_privileges().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(privileges, Privileges::UserNamespace, "the process had no capabilities of its own");
    if let Some(node) = std::env::var_os(TUN_NODE) {
        mount_over_tun(Path::new(&node));
    }
    let star = Star::new(1, Profile::delay(Duration::from_millis(10)))
        .unwrap_or_else(|e| panic!("star in the user namespace: {e}"));
    common::assert_delay(&common::round_trips(&star, 20), Duration::from_millis(10));
    println!("test {TEST} ... ok");
}

/// Mounts `node` over /dev/net/tun, in a mount namespace of the process's own so that nobody else sees it.
fn mount_over_tun(node: &Path) {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("a mount namespace");
    let mounted = Command::new("mount").arg("--bind").arg(node).arg("/dev/net/tun").status();
    assert!(mounted.expect("mount").success(), "bind mount over /dev/net/tun");
}
