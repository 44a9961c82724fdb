//! The folders a user need not name: state, downloads and the shared folder are the user's own, whatever
//! folder a command runs in, and `id` prints who this node is. Each test runs as a user of its own: a
//! temporary home, its XDG folders inside.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{as_user, free_udp_port, json_lines, run, serving, spawned};
use serde_json::Value;

fn id(cmd: &mut Command) -> Value {
    let out = run(cmd.args(["--json", "id"]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    json_lines(&out).remove(0)
}

/// Whatever is left in `dir` of what a command may put in the current folder.
fn left_in(dir: &Path) -> Vec<String> {
    let names = std::fs::read_dir(dir).expect("list").map(|e| e.expect("entry").file_name().to_string_lossy().into());
    names.filter(|n: &String| n == ".p2pnode" || n == "P2PDownloadFolder").collect()
}

#[test]
fn one_identity_and_the_users_folders_whatever_the_current_folder() {
    let port = free_udp_port();
    let (home, here, there) =
        (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let home = home.path();
    std::fs::create_dir(home.join("Public")).expect("~/Public");
    std::fs::write(home.join("Public/a.txt"), b"shared from ~/Public").expect("write");

    let (first, second) = (id(&mut as_user(port, home, here.path())), id(&mut as_user(port, home, there.path())));
    assert_eq!(first["id"], second["id"], "one identity, whatever the folder");
    assert_eq!(first["state_dir"], home.join("state/p2pnode").to_str().expect("utf-8"));
    let fingerprint = first["fingerprint"].as_str().expect("a fingerprint");
    let groups: Vec<&str> = fingerprint.split('-').collect();
    assert!(groups.len() == 4 && groups.iter().all(|g| g.len() == 5), "{fingerprint}");
    let text = run(as_user(port, home, here.path()).arg("id"));
    let said = String::from_utf8_lossy(&text.stdout);
    let labels: Vec<&str> = said.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(labels, ["name", "id", "fingerprint", "state"], "{said}");
    assert!(said.contains(first["id"].as_str().expect("id")) && said.contains(fingerprint), "{said}");

    // serve without --dir shares ~/Public, as the same node.
    let (mut serve, serving, _said) =
        serving(as_user(port, home, here.path()).args(["--port", "0", "--json", "serve"]));
    assert_eq!(serving["id"], first["id"], "serve is the node id prints");

    // get without -o lands in ~/Downloads/p2pnode; neither leaves anything in its current folder.
    let got = run(as_user(port, home, there.path()).args(["get", "a.txt"]));
    assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
    assert_eq!(std::fs::read(home.join("Downloads/p2pnode/a.txt")).expect("downloaded"), b"shared from ~/Public");
    let listed = run(as_user(port, home, there.path()).arg("ls"));
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    serve.kill().expect("kill");
    serve.wait().expect("ends");
    assert_eq!((left_in(here.path()), left_in(there.path())), (vec![], vec![]), "nothing in the current folders");
}

#[test]
fn serve_needs_a_folder_to_share_and_warns_of_a_home_folder() {
    let port = free_udp_port();
    let (home, cwd) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let out = run(as_user(port, home.path(), cwd.path()).arg("serve"));
    let said = String::from_utf8_lossy(&out.stderr);
    let public = home.path().join("Public");
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert_eq!(
        said.trim_end(),
        format!("error: nothing to share: pass --dir FOLDER, or make {} (shared by default)", public.display())
    );

    let mut serve = as_user(port, home.path(), cwd.path())
        .args(["--dir", home.path().to_str().expect("utf-8"), "--port", "0", "serve"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let mut warning = String::new();
    BufReader::new(serve.stderr.take().expect("stderr")).read_line(&mut warning).expect("a line");
    serve.kill().expect("kill");
    serve.wait().expect("ends");
    let expected =
        format!("warning: {} holds your home folder: everyone on the LAN can list and fetch", home.path().display());
    assert!(warning.starts_with(&expected), "{warning}");
}

#[test]
fn an_earlier_versions_state_folder_keeps_working_and_is_named() {
    let port = free_udp_port();
    let (home, cwd) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let earlier = cwd.path().join(".p2pnode");
    let made = id(as_user(port, home.path(), cwd.path()).args(["--state-dir", earlier.to_str().expect("utf-8")]));
    let out = run(as_user(port, home.path(), cwd.path()).args(["--json", "id"]));
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(json_lines(&out)[0]["id"], made["id"], "the earlier identity is the one used");
    let note = format!("note: state in {}, an earlier version's; new ones go to ", earlier.display());
    assert!(said.starts_with(&note), "{said}");
}

/// A `get` that proves the user's own id (it has a trust list) while the user's `serve` runs announces
/// nothing: peers keep one claim per id and address, so its announcement would stand in for the serve's
/// (its port, its files) on every peer that heard it last.
#[test]
fn a_get_that_proves_the_users_id_never_stands_in_for_the_users_serve() {
    let port = free_udp_port();
    let (home, bob_dir) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let home = home.path();
    std::fs::create_dir(home.join("Public")).expect("~/Public");
    std::fs::write(home.join("Public/a.txt"), b"alice's").expect("write");
    std::fs::write(bob_dir.path().join("b.bin"), vec![7u8; 3 << 20]).expect("write");
    let bob = common::Server::start(port, bob_dir.path(), "bob", &[], &[]);
    let (mut serve, serving, _said) =
        serving(as_user(port, home, home).args(["--name", "alice", "--port", "0", "--json", "serve"]));

    let (mut get, mut said) = spawned(as_user(port, home, home).args([
        "--name",
        "alice",
        "--trust",
        &bob.id,
        "--json",
        "get",
        "b.bin",
        "--seed-for",
        "3",
    ]));
    assert!(said.any(|l| l.expect("read").contains(r#""event":"done""#)), "the get completes");
    // While the get would pass its chunks on, the LAN sees alice as her serve alone.
    for _ in 0..3 {
        let peers = run(common::p2pnode(port).args(["--json", "--timeout", "2", "peers"]));
        for peer in json_lines(&peers).iter().filter(|p| p["id"] == serving["id"]) {
            assert_eq!(peer["ports"], serving["ports"], "alice is her serve: {peer}");
        }
    }
    get.wait().expect("ends");
    serve.kill().expect("kill");
    serve.wait().expect("ends");
}
