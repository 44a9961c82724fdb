//! The systemd user unit (crates/p2pnode/systemd/p2pnode.service), its command run as systemd would run
//! it: no terminal, `%h` and `%S` in a home folder of the test's own. It serves, says so in sentences on
//! its output (what the journal keeps), tells each file sent, and stops cleanly on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{free_udp_port, p2pnode, run};

const UNIT: &str = include_str!("../systemd/p2pnode.service");

/// The unit's command, its specifiers filled in for `home`.
fn exec_start(home: &std::path::Path) -> Vec<String> {
    let line = UNIT.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("an ExecStart line");
    let (home, state) = (home.to_str().expect("utf-8"), home.join(".local/state"));
    let state = state.to_str().expect("utf-8");
    let binary = env!("CARGO_BIN_EXE_p2pnode");
    let words = line.split_whitespace().map(|w| w.replace("%h/.cargo/bin/p2pnode", binary));
    words.map(|w| w.replace("%h", home).replace("%S", state)).collect()
}

#[test]
fn the_systemd_unit_serves_and_tells_the_journal_in_sentences() {
    let home = tempfile::tempdir().expect("home");
    std::fs::create_dir_all(home.path().join("Public")).expect("~/Public");
    std::fs::write(home.path().join("Public/notes.txt"), b"meeting at noon").expect("write");
    let port = free_udp_port();
    let command = exec_start(home.path());
    // The unit's own arguments, then this test's isolation (options may follow the subcommand).
    let mut serve = Command::new(&command[0])
        .args(&command[1..])
        .args(["--discovery-port", &port.to_string(), "--broadcast", "127.255.255.255", "--port", "0"])
        .env("HOME", home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the unit's command starts");
    let (lines, said) = mpsc::channel();
    let stdout = BufReader::new(serve.stdout.take().expect("stdout"));
    std::thread::spawn(move || stdout.lines().map_while(Result::ok).for_each(|l| _ = lines.send(l)));
    let wait_for = |what: &str| loop {
        let line = said.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("no line with {what:?}"));
        assert!(!line.contains('\x1b'), "a terminal's escapes in the journal: {line:?}");
        if line.contains(what) {
            return line;
        }
    };
    let ready = wait_for("ready: ");
    assert!(ready.contains("1 file(s) shared"), "{ready}");

    let into = tempfile::tempdir().expect("out");
    let got = run(p2pnode(port).args(["get", "notes.txt", "--no-upload", "-o", into.path().to_str().expect("utf-8")]));
    assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
    wait_for("sent notes.txt");

    assert!(home.path().join(".local/state/p2pnode").is_dir(), "state in %S/p2pnode, not in the shared folder");
    assert!(home.path().join("Downloads/p2pnode").is_dir(), "downloads in ~/Downloads/p2pnode");
    // `systemctl --user stop` sends SIGTERM: the node ends cleanly.
    let stopped = Command::new("kill").args(["-TERM", &serve.id().to_string()]).status().expect("kill");
    assert!(stopped.success());
    let status = serve.wait().expect("ends");
    assert!(status.success(), "a stopped service exits 0, not {status}");
}
