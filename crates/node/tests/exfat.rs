//! Downloads onto a file system without hard links: exFAT through FUSE, as on a USB stick. The finished
//! file is put in place by a rename that replaces nothing, beside a file of the same name left untouched.
//! Needs root, FUSE, `losetup`, `mkfs.exfat` (exfatprogs) and `mount.exfat-fuse` (exfat-fuse).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{bytes, free_udp_port, net, serve, temp};
use node::{DownloadOptions, StateKey, download};

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root and FUSE (exfatprogs, exfat-fuse)"]
async fn a_download_lands_on_exfat_beside_a_file_of_the_same_name() {
    let stick = ExfatStick::mount();
    let existing = stick.path().join("photo.raw");
    std::fs::write(&existing, b"the user's own photo").expect("write on exFAT");
    assert!(std::fs::hard_link(&existing, stick.path().join("link")).is_err(), "exFAT has no hard links");

    let net = net("tcp", free_udp_port());
    let shared = temp();
    let data = bytes(3 * 256 * 1024 + 11, 8);
    std::fs::write(shared.path().join("photo.raw"), &data).expect("write");
    let server = serve(&net, shared.path(), "server").await;
    let (id, _, sources) = net.survey().expect("survey").find("photo.raw").await.expect("listed");
    let path =
        download(id, &sources, stick.path(), &DownloadOptions::new(StateKey::random()).timeout(net.timeout), |_| {})
            .await
            .expect("downloads onto exFAT");

    assert_eq!(path, stick.path().join("photo (1).raw"));
    assert!(std::fs::read(&path).expect("read") == data);
    assert_eq!(std::fs::read(&existing).expect("read"), b"the user's own photo");
    let mut left: Vec<_> =
        std::fs::read_dir(stick.path()).expect("list").map(|e| e.expect("entry").file_name()).collect();
    left.sort();
    assert_eq!(left, ["photo (1).raw", "photo.raw"], "no .part or state left behind");
    server.stop().await;
}

/// A name with `"` lands whole where the file system takes it, and with `_` for `"` on exFAT, which
/// rejects it: judged by the destination's type, not by the rules of every system at once.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root and FUSE (exfatprogs, exfat-fuse)"]
async fn only_the_characters_exfat_rejects_are_replaced() {
    let stick = ExfatStick::mount();
    assert_eq!(node::NameRules::of(stick.path()), node::NameRules::windows("this FUSE file system"));
    let net = net("tcp", free_udp_port());
    let shared = temp();
    let name = "it's \"quoted\".txt";
    std::fs::write(shared.path().join(name), b"quoted").expect("write");
    let server = serve(&net, shared.path(), "server").await;
    let (id, _, sources) = net.survey().expect("survey").find(name).await.expect("listed");
    let options = DownloadOptions::new(StateKey::random()).timeout(net.timeout);
    let on_stick = download(id, &sources, stick.path(), &options, |_| {}).await.expect("onto exFAT");
    assert_eq!(on_stick, stick.path().join("it's _quoted_.txt"));
    let here = temp();
    let on_disk = download(id, &sources, here.path(), &options, |_| {}).await.expect("onto this disk");
    assert_eq!(on_disk, here.path().join(name), "a file system that takes \" keeps the name");
    server.stop().await;
}

/// A 64 MiB exFAT image on a loop device, mounted through FUSE; unmounted and detached when dropped.
struct ExfatStick {
    _dir: tempfile::TempDir,
    device: String,
    mount: PathBuf,
}

impl ExfatStick {
    fn mount() -> Self {
        let dir = temp();
        let (image, mount) = (dir.path().join("stick.img"), dir.path().join("stick"));
        std::fs::File::create(&image).and_then(|f| f.set_len(64 << 20)).expect("image");
        std::fs::create_dir(&mount).expect("mount point");
        run("mkfs.exfat", &[image.as_os_str()]);
        let device = run("losetup", &["-f".as_ref(), "--show".as_ref(), image.as_os_str()]);
        run("mount.exfat-fuse", &[device.as_ref(), mount.as_os_str()]);
        Self { _dir: dir, device, mount }
    }

    fn path(&self) -> &Path {
        &self.mount
    }
}

impl Drop for ExfatStick {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }
}

/// Runs `program` and returns its output's first line, failing the test with its stderr if it fails.
fn run(program: &str, args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().trim().to_string()
}
