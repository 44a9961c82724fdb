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
    // Listing the way libtest does, for runners such as cargo-nextest: one test, none ignored.
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        if !args.iter().any(|a| a == "--ignored") {
            println!("{TEST}: test");
        }
        return;
    }
    let root = std::fs::metadata("/proc/self").expect("/proc").uid() == 0;
    if root && std::env::var_os(TUN_NODE).is_none() {
        run_as_nobody();
    } else {
        emulate_without_privileges();
    }
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
    let median = common::median_round_trip(&star, 20).as_secs_f64() * 1000.0;
    assert!((median - 20.0).abs() <= 1.0, "median round trip {median} ms through 2 x 10 ms");
    println!("test {TEST} ... ok");
}

/// Mounts `node` over /dev/net/tun, in a mount namespace of the process's own so that nobody else sees it.
fn mount_over_tun(node: &Path) {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("a mount namespace");
    let mounted = Command::new("mount").arg("--bind").arg(node).arg("/dev/net/tun").status();
    assert!(mounted.expect("mount").success(), "bind mount over /dev/net/tun");
}
