//! Names that peers choose never reach a terminal raw: a node name carrying terminal escapes (a screen
//! clear) goes through `peers`, `ls`, `get`'s output and `serve`'s log, and comes out as visible escapes;
//! JSON keeps it exact. A file name with escapes (an OSC 52 clipboard write, a bidi override) is not shared
//! at all, and the warning that says so shows it escaped.

mod common;

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
    let watcher = Server::start_logged(port, watcher_dir.path(), "watcher", &["-v"]);
    std::fs::write(shared.path().join(FILE_NAME), b"pay me").expect("write");
    std::fs::write(shared.path().join("invoice.pdf"), b"%PDF").expect("write");
    let mallory = Server::start_logged(port, shared.path(), NODE_NAME, &["-v"]);

    let files = json_lines(&run(p2pnode(port).args(["--json", "ls"])));
    assert!(!files.iter().any(|f| f["name"] == FILE_NAME), "a name with escapes is not shared: {files:?}");
    let ours = files.iter().find(|f| f["name"] == "invoice.pdf").expect("the other file is");
    assert!(ours["hosts"].as_array().is_some_and(|h| h.iter().any(|h| h["name"] == NODE_NAME)), "JSON is exact");
    let id = ours["id"].as_str().expect("id").to_string();

    for args in [&["peers"][..], &["ls"]] {
        let shown = String::from_utf8_lossy(&run(p2pnode(port).args(args)).stdout).into_owned();
        assert!(shown.contains("mallory\\x1b[2J"), "{args:?}: {shown}");
        assert!(!raw(&shown), "{args:?} printed a raw control or format character: {shown:?}");
    }

    let got = run(p2pnode(port).args(["get", &id, "-o", out.path().to_str().expect("utf-8")]));
    let (stdout, stderr) = (String::from_utf8_lossy(&got.stdout), String::from_utf8_lossy(&got.stderr));
    assert!(got.status.success(), "{stderr}");
    assert!(!raw(&stdout) && !raw(&stderr), "get printed raw: {stdout:?} {stderr:?}");

    let failed = run(p2pnode(port).args(["--timeout", "2", "get", "invoic"]));
    let error = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success() && error.contains("close names"), "{error}");
    assert!(!raw(&error), "the error line carried a raw name: {error:?}");

    let log = watcher.log();
    assert!(log.contains("peer seen") && log.contains("mallory\\x1b[2J"), "{log}");
    assert!(!raw(&log), "serve logged a raw name: {log:?}");
    // The node that holds the file says why it does not share it, the name escaped.
    let log = mallory.log();
    assert!(log.contains("not shared") && log.contains("invoice\\x1b]52;c;ZXZpbA==\\x07\\u{202e}txt.exe"), "{log}");
    assert!(!raw(&log), "serve logged a raw name: {log:?}");
}
