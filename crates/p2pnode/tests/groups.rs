//! Private groups and trust lists as users run them (real processes on loopback): nodes of one group see,
//! list and fetch only each other; plain nodes see only plain ones; a node with a trust list serves and
//! asks only the ids on it; a wrong secret, a transport that does not authenticate and mDNS in a group
//! each fail with one clear line.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::{Server, free_udp_port, json_lines, p2pnode, run};

fn names(cmd: &mut Command) -> BTreeSet<String> {
    json_lines(&run(cmd.arg("--json"))).iter().filter_map(|e| e["name"].as_str().map(String::from)).collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn each_group_sees_lists_and_fetches_only_its_own() {
    let port = free_udp_port();
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().expect("dir")).collect();
    for (dir, file) in dirs.iter().zip(["red1.txt", "red2.txt", "blue.txt", "plain.txt"]) {
        std::fs::write(dir.path().join(file), file.as_bytes()).expect("write");
    }
    let secret_file = dirs[3].path().join("red.secret");
    std::fs::write(&secret_file, "red team secret\n").expect("write");
    let red = ["--group", "red team secret"];
    let _nodes = [
        Server::start(port, dirs[0].path(), "red1", &red, &[]),
        // The same secret from a file (and from the environment, below) makes the same group.
        Server::start(port, dirs[1].path(), "red2", &["--group-file", secret_file.to_str().expect("utf-8")], &[]),
        Server::start(port, dirs[2].path(), "blue", &["--group", "blue team secret"], &[]),
        Server::start(port, dirs[3].path(), "plain", &[], &[]),
    ];

    assert_eq!(names(p2pnode(port).args(red).arg("peers")), set(&["red1", "red2"]));
    assert_eq!(names(p2pnode(port).env("P2PNODE_GROUP", "red team secret").arg("ls")), set(&["red1.txt", "red2.txt"]));
    assert_eq!(names(p2pnode(port).args(["--group", "blue team secret", "ls"])), set(&["blue.txt"]));
    assert_eq!(names(p2pnode(port).arg("peers")), set(&["plain"]), "plain nodes see plain ones only");

    let into = tempfile::tempdir().expect("dir");
    for transport in ["tls", "quic"] {
        let to = into.path().join(transport);
        let args = ["--transport", transport, "get", "red2.txt", "-o", to.to_str().expect("utf-8")];
        let got = run(p2pnode(port).args(red).args(args));
        assert!(got.status.success(), "{transport}: {}", String::from_utf8_lossy(&got.stderr));
        assert_eq!(std::fs::read(to.join("red2.txt")).expect("fetched"), b"red2.txt");
    }

    for (args, says) in [
        (
            &["--group", "green team secret", "--timeout", "2", "peers"][..],
            "no peer of this group answered (check the group secret)",
        ),
        (&["--group", "red team secret", "--transport", "tcp", "ls"], "does not authenticate peers"),
        (&["--group", "red team secret", "--discovery", "mdns", "peers"], "off in a private group"),
        (&["--group", "  ", "peers"], "the group secret is empty"),
    ] {
        let out = run(p2pnode(port).args(args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.trim_end().lines().count() == 1 && stderr.contains(says), "{args:?}: {stderr}");
    }
    let short = run(p2pnode(port).args(["--group", "a", "--timeout", "0.5", "peers"]));
    let stderr = String::from_utf8_lossy(&short.stderr);
    assert!(stderr.starts_with("warning: the group secret is only 1 characters long"), "{stderr}");
}

#[test]
fn only_trusted_nodes_are_served_and_asked() {
    let port = free_udp_port();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    std::fs::write(dirs[0].path().join("a.txt"), b"from a").expect("write");
    // A first start makes each node's identity; the second starts with the others' ids.
    let ids: Vec<String> =
        ["a", "b", "c"].iter().zip(&dirs).map(|(n, d)| Server::start(port, d.path(), n, &[], &[]).id.clone()).collect();
    let state = |i: usize| dirs[i].path().join(".p2pnode").to_str().expect("utf-8").to_string();
    let (a, b) = (ids[0].as_str(), ids[1].as_str());
    let node_a = Server::start_logged(port, dirs[0].path(), "a", &["--trust", b]);
    let _nodes = [
        Server::start(port, dirs[1].path(), "b", &["--trust", a], &[]),
        Server::start(port, dirs[2].path(), "c", &[], &[]),
    ];

    let into = tempfile::tempdir().expect("dir");
    let get = |args: &[&str]| {
        let out = run(p2pnode(port).args(args).args([
            "--timeout",
            "3",
            "get",
            "a.txt",
            "-o",
            into.path().to_str().expect("utf-8"),
        ]));
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // b knows a by name, from its state folder's trust list.
    std::fs::write(dirs[1].path().join(".p2pnode").join(node::TRUST_LIST_FILE), format!("{a} alice\n")).expect("write");
    let (fetched, stderr) = get(&["--trust", "alice", "--state-dir", &state(1)]);
    assert!(fetched, "b, trusted by a, fetches: {stderr}");
    assert_eq!(std::fs::read(into.path().join("a.txt")).expect("fetched"), b"from a");
    std::fs::remove_file(into.path().join("a.txt")).expect("remove");
    assert!(!get(&["--trust", a, "--state-dir", &state(2)]).0, "c proves its id, which a does not trust");
    // Refused, not failed: said once as a note naming a, in a sentence; a logs the refusal once a minute.
    let (fetched, stderr) = get(&[]);
    assert!(!fetched, "an anonymous get is not served by a");
    let note = format!("note: a ({} at ", &a[..8]);
    let refused: Vec<&str> = stderr.lines().filter(|l| l.starts_with(&note)).collect();
    assert_eq!(refused.len(), 1, "{stderr}");
    assert!(refused[0].ends_with("shares only with the peers it trusts, and this node is not one of them"), "{stderr}");
    assert!(!stderr.contains('='), "sentences, not key=value: {stderr}");
    assert!(!get(&[]).0, "asked again, refused again");

    let listed = json_lines(&run(p2pnode(port).args(["--json", "--trust", a, "--state-dir", &state(1), "peers"])));
    let trusted: BTreeSet<(String, bool)> = listed
        .iter()
        .map(|p| (p["name"].as_str().expect("name").into(), p["trusted"].as_bool().expect("trusted")))
        .collect();
    assert_eq!(trusted, BTreeSet::from([("a".into(), true), ("c".into(), false)]), "b does not list itself");

    for (args, code, says) in [
        (&["--trust", "abcdef0123", "peers"][..], 1, "--trust abcdef0123: give a full id"),
        (&["--trust", "carol", "--state-dir", &state(1), "peers"], 1, "--trust carol: no peer of that name in"),
        (&["--trust", a, "--transport", "tcp", "ls"], 1, "does not authenticate peers"),
    ] {
        let out = run(p2pnode(port).args(args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.code() == Some(code) && stderr.contains(says), "{args:?}: {stderr}");
    }
    let log = node_a.log();
    let refusals: Vec<&str> = log.lines().filter(|l| l.contains("refused node ")).collect();
    // c, then the anonymous gets (one id each), each once however often it asked.
    assert!(!refusals.is_empty() && refusals.iter().all(|l| l.contains("it is not trusted here")), "{log}");
    let mut nodes: Vec<&str> =
        refusals.iter().filter_map(|l| l.split("refused node ").nth(1)?.split(' ').next()).collect();
    let told = nodes.len();
    nodes.sort();
    nodes.dedup();
    assert_eq!(nodes.len(), told, "one line per node: {log}");
}
