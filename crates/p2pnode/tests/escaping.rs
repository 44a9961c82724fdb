//! Names that peers choose never reach a terminal raw: a node name and a file name carrying terminal
//! escapes (a screen clear, an OSC 52 clipboard write) and a bidi override go through `peers`, `ls`,
//! `get`'s final line, an error line and `serve`'s log, and come out as visible escapes. JSON keeps them
//! exact.

mod common;

use std::io::Read;
use std::process::Stdio;

use common::{Server, free_udp_port, json_lines, p2pnode, run};

const NODE_NAME: &str = "mallory\x1b[2J";
const FILE_NAME: &str = "invoice\x1b]52;c;ZXZpbA==\x07\u{202e}txt.exe";

/// Whether `text` holds a character a terminal would obey or hide.
fn raw(text: &str) -> bool {
    text.chars()
        .any(|c| (c.is_control() && c != '\n') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
}

#[test]
fn peer_chosen_names_are_escaped_everywhere_but_in_json() {
    let port = free_udp_port();
    let (watcher_dir, shared, out) =
        (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let mut watcher = p2pnode(port)
        .args(["--dir", watcher_dir.path().to_str().expect("utf-8"), "--name", "watcher", "--port", "0", "serve"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("watcher starts");
    std::fs::write(shared.path().join(FILE_NAME), b"pay me").expect("write");
    let _mallory = Server::start(port, shared.path(), NODE_NAME, &[], &[]);

    let files = json_lines(&run(p2pnode(port).args(["--json", "ls"])));
    let ours = files.iter().find(|f| f["name"] == FILE_NAME).expect("JSON carries the name exactly");
    assert!(ours["hosts"].as_array().is_some_and(|h| h.iter().any(|h| h["name"] == NODE_NAME)));
    let id = ours["id"].as_str().expect("id").to_string();

    for args in [&["peers"][..], &["ls"]] {
        let shown = String::from_utf8_lossy(&run(p2pnode(port).args(args)).stdout).into_owned();
        assert!(shown.contains("mallory\\x1b[2J"), "{args:?}: {shown}");
        assert!(!raw(&shown), "{args:?} printed a raw control or format character: {shown:?}");
    }
    let ls = String::from_utf8_lossy(&run(p2pnode(port).arg("ls")).stdout).into_owned();
    assert!(ls.contains("invoice\\x1b]52;c;ZXZpbA==\\x07\\u{202e}txt.exe"), "{ls}");

    let got = run(p2pnode(port).args(["get", &id, "-o", out.path().to_str().expect("utf-8")]));
    let (stdout, stderr) = (String::from_utf8_lossy(&got.stdout), String::from_utf8_lossy(&got.stderr));
    assert!(got.status.success(), "{stderr}");
    assert!(!raw(&stdout) && !raw(&stderr), "get printed raw: {stdout:?} {stderr:?}");
    let on_disk: Vec<String> = std::fs::read_dir(out.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(on_disk.iter().all(|n| !raw(n) && !n.contains('\u{202e}')), "{on_disk:?}");

    let failed = run(p2pnode(port).args(["--timeout", "2", "get", "invoice"]));
    let error = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success() && error.contains("close names"), "{error}");
    assert!(!raw(&error), "the error line carried a raw name: {error:?}");

    let _ = watcher.kill();
    let mut log = String::new();
    watcher.stderr.take().expect("stderr").read_to_string(&mut log).expect("log");
    let _ = watcher.wait();
    assert!(log.contains("peer seen") && log.contains("mallory\\x1b[2J"), "{log}");
    assert!(!raw(&log), "serve logged a raw name: {log:?}");
}
