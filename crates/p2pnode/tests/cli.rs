//! The `p2pnode` binary as a user runs it: real processes on loopback, one discovery port per test.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::{Server, free_udp_port, json_lines, p2pnode, run};

/// An error is one line on stderr and a failing exit status.
fn assert_one_line_error(out: &Output, code: i32, contains: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(contains), "{stderr:?} should contain {contains:?}");
}

#[test]
fn peers_ls_and_get_across_processes() {
    let port = free_udp_port();
    let (a, b, c) =
        (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(a.path().join("video.mp4"), &data).expect("write");
    std::fs::write(b.path().join("video.mp4"), &data).expect("write");
    let _servers = [Server::start(port, a.path(), "alpha", &[], &[]), Server::start(port, b.path(), "beta", &[], &[])];

    let peers = json_lines(&run(p2pnode(port).args(["--json", "peers"])));
    let mut names: Vec<_> = peers.iter().map(|p| p["name"].as_str().expect("name").to_string()).collect();
    names.sort();
    assert_eq!(names, ["alpha", "beta"]);

    let files = json_lines(&run(p2pnode(port).args(["--json", "ls"])));
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["name"], "video.mp4");
    assert_eq!(files[0]["hosts"].as_array().map(Vec::len), Some(2));

    for transport in ["tcp", "quic"] {
        let into = c.path().join(transport);
        let args = ["--transport", transport, "get", "video.mp4", "-o", into.to_str().expect("utf-8")];
        let out = run(p2pnode(port).args(args));
        assert!(out.status.success(), "{transport}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(std::fs::read(into.join("video.mp4")).expect("downloaded") == data, "{transport}");
    }
}

#[test]
fn usage_and_lookup_errors_are_one_line() {
    let port = free_udp_port();
    let shared = tempfile::tempdir().expect("dir");
    std::fs::write(shared.path().join("report.pdf"), b"%PDF").expect("write");

    let pigeon = run(p2pnode(port).args(["--transport", "carrier-pigeon", "ls"]));
    assert_one_line_error(
        &pigeon,
        2,
        "invalid value 'carrier-pigeon' for '--transport <NAME>' [possible values: tls, tcp, quic]",
    );
    assert_one_line_error(&run(p2pnode(port).args(["--timeout", "0.5", "get", "x"])), 1, "no peer answered within");
    assert_one_line_error(&run(p2pnode(port).args(["--dir", "/nonexistent/p2pnode", "serve"])), 1, "does not exist");

    let taken = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("bind");
    let taken_port = taken.local_addr().expect("addr").port().to_string();
    let dir = shared.path().to_str().expect("utf-8");
    // Each serve of the test has a state folder of its own: the default is the user's, and other tests
    // of this process (the same user) serve meanwhile.
    let state = format!("{dir}/.p2pnode");
    assert_one_line_error(
        &run(p2pnode(port).args(["--dir", dir, "--state-dir", &state, "--port", &taken_port, "serve"])),
        1,
        "pass --port 0 for any free port",
    );

    let blocker = shared.path().join("a-file");
    std::fs::write(&blocker, b"not a folder").expect("write");
    let inside_a_file = blocker.join("downloads");
    let args = ["--timeout", "0.5", "get", "x", "-o", inside_a_file.to_str().expect("utf-8")];
    assert_one_line_error(&run(p2pnode(port).args(args)), 1, "a-file is a file, not a folder");
    let file = blocker.to_str().expect("utf-8");
    let args = ["--dir", file, "--state-dir", &state, "serve"];
    assert_one_line_error(&run(p2pnode(port).args(args)), 1, "is a file, not a folder (pass");
    let args = ["--dir", dir, "--state-dir", &state, "--downloads", file, "--port", "0", "serve"];
    assert_one_line_error(&run(p2pnode(port).args(args)), 1, "downloads folder");

    // A get that fails creates no folder: neither -o's nor the default downloads folder.
    let empty = tempfile::tempdir().expect("dir");
    let (into, home) = (empty.path().join("new/deeper"), empty.path().to_str().expect("utf-8"));
    let args = ["--dir", home, "--timeout", "0.5", "get", "x", "-o", into.to_str().expect("utf-8")];
    assert_one_line_error(&run(p2pnode(port).args(args)), 1, "no peer answered");
    assert_one_line_error(&run(p2pnode(port).args(["--dir", home, "--timeout", "0.5", "get", "x"])), 1, "no peer");
    let left: Vec<_> = std::fs::read_dir(empty.path()).expect("list").collect();
    assert!(left.is_empty(), "a failed get left {left:?}");

    let server = Server::start(port, shared.path(), "alpha", &[], &[]);
    assert_one_line_error(&run(p2pnode(port).args(["get", "reprot.pdf"])), 1, "close names: report.pdf");
    let two = run(p2pnode(port).args(["get", "reprot.pdf", "nothere"]));
    assert_one_line_error(&two, 1, "no peer hosts 'reprot.pdf'; close names: report.pdf; no peer hosts 'nothere'");
    let second = run(p2pnode(port).args(["--dir", dir, "--state-dir", &state, "--port", "0", "serve"]));
    assert_one_line_error(&second, 1, &format!("another p2pnode (pid {}) is already serving", server.pid()));
}

#[test]
fn usage_mistakes_are_explained_with_what_to_type() {
    let bare = run(&mut std::process::Command::new(env!("CARGO_BIN_EXE_p2pnode")));
    let help = String::from_utf8_lossy(&bare.stderr);
    assert_eq!(bare.status.code(), Some(2), "{help}");
    assert!(help.contains("Commands:") && help.contains("serve") && help.contains("Options:"), "the help: {help}");

    let port = free_udp_port();
    assert_one_line_error(
        &run(p2pnode(port).arg("get")),
        2,
        "not provided: <FILE>... (usage: p2pnode get [OPTIONS] <FILE>...)",
    );
    assert_one_line_error(&run(p2pnode(port).arg("serv")), 2, "similar subcommand exists: 'serve'");
    assert_one_line_error(
        &run(p2pnode(port).args(["--tiemout", "1", "ls"])),
        2,
        "similar argument exists: '--timeout'",
    );
    for timeout in ["0", "-1", "soon"] {
        let out = run(p2pnode(port).args(["--timeout", timeout, "ls"]));
        assert_one_line_error(
            &out,
            2,
            &format!("invalid value '{timeout}' for '--timeout <SECS>': a number of seconds"),
        );
    }
    assert_one_line_error(&run(p2pnode(port).args(["--name", "", "peers"])), 2, "a name cannot be empty");
    let before = run(p2pnode(port).args(["-o", "/nonexistent/p2pnode-out", "--timeout", "0.5", "get", "x"]));
    assert_one_line_error(&before, 1, "no peer answered");
}

#[test]
fn completions_and_man_page_are_printed() {
    let port = free_udp_port();
    for (shell, expected) in [
        ("bash", "complete -F _p2pnode"),
        ("zsh", "#compdef p2pnode"),
        ("fish", "complete -c p2pnode"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = run(p2pnode(port).args(["completions", shell]));
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && script.contains(expected), "{shell}: {script:.200}");
        assert!(script.contains("get") && script.contains("transport"), "{shell} completes commands and options");
        assert!(script.contains("tls") && script.contains("quic") && script.contains("mdns"), "{shell}: fixed values");
    }
    let out = run(p2pnode(port).arg("man"));
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && page.contains(".TH p2pnode"), "{page:.200}");
    assert!(page.contains("completions") && page.contains("\\-\\-transport"), "the page lists commands and options");
    for own in [
        "\\-\\-output",
        "\\-\\-force",
        "\\-\\-seed\\-for",
        "\\-\\-no\\-upload",
        "\\-\\-max\\-upload\\-rate",
        "\\-\\-tree",
    ] {
        assert!(page.contains(own), "each subcommand's own options: {own} missing");
    }
    assert!(page.contains(".SH EXAMPLES") && !page.contains("p2pnode\\-serve(1)"), "examples, no pages never written");
    let help = run(p2pnode(port).args(["help", "--help"]));
    assert!(help.status.success(), "help has help: {}", String::from_utf8_lossy(&help.stderr));
    let get = run(p2pnode(port).args(["help", "get"]));
    let get = String::from_utf8_lossy(&get.stdout);
    assert!(get.contains("Get options:") && get.contains("--seed-for"), "get's own options apart: {get}");
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    for args in [&["completions", "bash"][..], &["man"]] {
        let mut child = p2pnode(0).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("runs");
        // The reader is gone before the command writes anything (as `| head -c0` would be).
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("ends");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.is_empty() && out.status.code() == Some(1), "{args:?}: {:?} {stderr}", out.status);
    }
}

#[test]
fn a_file_already_there_is_not_fetched_again() {
    let port = free_udp_port();
    let (shared, mine) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let data = testdata::bytes(300_000, 11);
    std::fs::write(shared.path().join("song.ogg"), &data).expect("write");
    let _server = Server::start(port, shared.path(), "alpha", &[], &[]);
    let into = mine.path().to_str().expect("utf-8");
    let get = |extra: &[&str]| {
        let out = run(p2pnode(port).args(["get", "song.ogg", "-o", into]).args(extra));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listing = || {
        let mut names: Vec<String> = std::fs::read_dir(mine.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };

    // A copy under another name is found by its content; nothing is fetched.
    std::fs::write(mine.path().join("copy of song.ogg"), &data).expect("write");
    let said = get(&[]);
    assert!(said.starts_with("already have song.ogg (") && said.contains("copy of song.ogg"), "{said}");
    assert_eq!(listing(), ["copy of song.ogg"]);

    // A different file of that name: the download goes beside it, and says why.
    std::fs::remove_file(mine.path().join("copy of song.ogg")).expect("remove");
    std::fs::write(mine.path().join("song.ogg"), testdata::bytes(300_000, 12)).expect("write");
    let said = get(&[]);
    assert!(said.contains("(saved as song (1).ogg: song.ogg is taken there)"), "{said}");
    assert_eq!(std::fs::read(mine.path().join("song (1).ogg")).expect("downloaded"), data);

    // --force fetches another copy even so.
    assert!(get(&[]).starts_with("already have song.ogg ("), "the copy fetched is found next time");
    assert!(get(&["--force"]).contains("song (2).ogg"));
    assert_eq!(listing(), ["song (1).ogg", "song (2).ogg", "song.ogg"]);
}

/// A name lands whole where the destination's file system takes it; one saved under another name says
/// which, and why.
#[test]
fn names_are_kept_where_the_destination_takes_them_and_renames_are_told() {
    let port = free_udp_port();
    let (shared, into) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let quoted = "it's \"quoted\": <1>.txt";
    std::fs::write(shared.path().join(quoted), b"quoted").expect("write");
    std::fs::write(shared.path().join("draft."), b"a name Windows cuts short").expect("write");
    let _server = Server::start(port, shared.path(), "alpha", &[], &[]);
    let out = run(p2pnode(port).args(["get", quoted, "draft.", "-o", into.path().to_str().expect("utf-8")]));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(into.path().join(quoted)).expect("saved as named"), b"quoted", "{said}");
    let line = said.lines().find(|l| l.starts_with("downloaded draft.")).expect("told");
    assert!(line.ends_with("(saved as draft: trailing dots and spaces removed (Windows drops them))"), "{said}");
    assert!(!said.lines().any(|l| l.contains("quoted") && l.contains("saved as")), "{said}");
}

#[test]
fn files_in_subfolders_are_listed_by_path_and_fetched_by_path_or_name() {
    let port = free_udp_port();
    let (shared, into) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    std::fs::create_dir_all(shared.path().join("docs/2024")).expect("mkdir");
    std::fs::write(shared.path().join("docs/2024/q1.pdf"), b"quarter one").expect("write");
    std::fs::write(shared.path().join("docs/notes.txt"), b"notes").expect("write");
    let _server = Server::start(port, shared.path(), "alpha", &[], &[]);

    let files = json_lines(&run(p2pnode(port).args(["--json", "ls"])));
    let mut paths: Vec<&str> = files.iter().filter_map(|f| f["name"].as_str()).collect();
    paths.sort();
    assert_eq!(paths, ["docs/2024/q1.pdf", "docs/notes.txt"]);
    let tree = String::from_utf8_lossy(&run(p2pnode(port).args(["ls", "--tree"])).stdout).into_owned();
    let names: Vec<&str> = tree.lines().skip(1).map(|l| l.split("  ").find(|c| !c.is_empty()).unwrap_or("")).collect();
    let indents: Vec<usize> = tree.lines().skip(1).map(|l| l.len() - l.trim_start().len()).collect();
    assert_eq!((names, indents), (vec!["docs/", "2024/", "q1.pdf", "notes.txt"], vec![0, 2, 4, 2]), "{tree}");
    for (pattern, expected) in
        [("**/*.pdf", "docs/2024/q1.pdf"), ("docs/2024", "docs/2024/q1.pdf"), ("notes.txt", "docs/notes.txt")]
    {
        let listed = json_lines(&run(p2pnode(port).args(["--json", "ls", pattern])));
        let names: Vec<&str> = listed.iter().filter_map(|f| f["name"].as_str()).collect();
        assert_eq!(names, [expected], "ls {pattern}");
    }
    assert_one_line_error(&run(p2pnode(port).args(["ls", "nothing-here"])), 1, "no peer hosts 'nothing-here'");
    let into = into.path();
    for query in ["docs/2024/q1.pdf", "notes.txt"] {
        let out = run(p2pnode(port).args(["get", query, "-o", into.to_str().expect("utf-8")]));
        assert!(out.status.success(), "{query}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(std::fs::read(into.join("q1.pdf")).expect("q1"), b"quarter one", "a file lands as cp would put it");
    assert_eq!(std::fs::read(into.join("notes.txt")).expect("notes"), b"notes");

    // Folders go whole below a folder of their name, beside files and globs in one get; then nothing is new.
    let whole = into.join("whole");
    let get = |args: &[&str]| {
        let out = run(p2pnode(port).arg("get").args(args).args(["-o", whole.to_str().expect("utf-8")]));
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    get(&["docs", "docs/2024", "docs/*.txt"]);
    for (path, bytes) in [
        ("docs/2024/q1.pdf", &b"quarter one"[..]),
        ("docs/notes.txt", b"notes"),
        ("2024/q1.pdf", b"quarter one"),
        ("notes.txt", b"notes"),
    ] {
        assert_eq!(std::fs::read(whole.join(path)).unwrap_or_default(), bytes, "{path}");
    }
    let again = get(&["docs"]);
    assert_eq!(again.lines().filter(|l| l.starts_with("already have")).count(), 2, "{again}");
    assert!(
        again.lines().last().is_some_and(|l| l.starts_with("all 2 files (") && l.ends_with("were already here")),
        "{again}"
    );
}

#[test]
fn serve_tells_people_what_it_does_and_keeps_the_log_for_v() {
    let port = free_udp_port();
    let (shared, into) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    std::fs::write(shared.path().join("notes.txt"), testdata::bytes(700_000, 5)).expect("write");
    let mut serve = p2pnode(port)
        .args(["--dir", shared.path().to_str().expect("utf-8"), "--name", "alpha", "--port", "0"])
        .args(["--state-dir", shared.path().join(".p2pnode").to_str().expect("utf-8"), "serve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let mut lines = BufReader::new(serve.stdout.take().expect("stdout")).lines().map(|l| l.expect("a line"));
    let starting = lines.next().expect("a first line");
    let hashing = "; hashing what is new (shared as it is hashed)";
    assert!(starting.starts_with("sharing ") && starting.contains(" as alpha (state in "), "{starting}");
    assert!(starting.ends_with(hashing), "{starting}");
    let ready = lines.next().expect("a second line");
    assert!(ready.starts_with("ready: 1 file(s) shared as node ") && ready.ends_with("; Ctrl-C stops"), "{ready}");
    let page = lines.next().expect("the page's line");
    assert!(page.starts_with("web page: http://127.0.0.1:") && page.contains("/#k="), "{page}");

    // A get that serves others announces itself, by its name; one with --no-upload does not.
    for (flag, to) in [("--name=beta", "beta (127.0.0.1)"), ("--no-upload", "127.0.0.1")] {
        let into = into.path().to_str().expect("utf-8");
        let got = run(p2pnode(port).args(["get", "notes.txt", flag, "--force", "-o", into]));
        assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
        assert_eq!(lines.next().expect("an upload line"), format!("sent notes.txt (683.6 KiB) to {to}"));
    }

    serve.kill().expect("kill");
    serve.wait().expect("ends");
    let mut log = String::new();
    std::io::Read::read_to_string(&mut serve.stderr.take().expect("stderr"), &mut log).expect("stderr");
    assert!(!log.contains("INFO") && !log.contains("peer seen"), "developer logs need -v: {log}");
}

/// A node answers while it hashes: what it knew is shared at once, and `ready` says when the new files
/// are shared too.
#[test]
fn serve_shares_known_files_at_once_and_says_when_new_ones_are_hashed() {
    let port = free_udp_port();
    let shared = tempfile::tempdir().expect("dir");
    std::fs::write(shared.path().join("film.bin"), testdata::bytes(3 << 20, 8)).expect("write");
    let first = Server::start(port, shared.path(), "alpha", &[], &[]);
    assert_eq!(first.serving["files"], 0, "nothing hashed yet: {}", first.serving);
    let hashed = first.wait_for_event(|e| e["event"] == "hashing" && e["files"] == 1);
    assert_eq!(
        (&hashed["files_total"], &hashed["bytes"], &hashed["bytes_total"]),
        (&1.into(), &(3 << 20).into(), &(3 << 20).into())
    );
    let ready = first.wait_for_event(|e| e["event"] == "ready");
    assert_eq!((&ready["files"], &ready["bytes"]), (&1.into(), &(3 << 20).into()));
    drop(first);

    let again = Server::start(port, shared.path(), "alpha", &[], &[]);
    assert_eq!(again.serving["files"], 1, "known from the hash cache: shared from the start");
    assert!(!again.events().iter().any(|e| e["event"] == "hashing"), "nothing to hash: {:?}", again.events());
}

#[test]
#[ignore = "needs root (a read-only bind mount)"]
fn a_read_only_folder_is_shared_without_extra_flags() {
    let (files, ro, home) =
        (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    std::fs::write(files.path().join("notes.txt"), b"read-only notes").expect("write");
    let _mount = read_only_bind(files.path(), ro.path());
    let port = free_udp_port();
    // Named as `.`, shown by its absolute path.
    let mut serve = p2pnode(port)
        .args(["--dir", ".", "--port", "0", "serve"])
        .current_dir(ro.path())
        .env("HOME", home.path())
        .env("XDG_STATE_HOME", home.path().join("state"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    // State and downloads are the user's, not the shared folder's: nothing to write there.
    let mut lines = BufReader::new(serve.stdout.take().expect("stdout")).lines().map(|l| l.expect("a line"));
    let sharing = lines.next().expect("the sharing line");
    let (downloads, state) = (home.path().join("Downloads/p2pnode"), home.path().join("state/p2pnode"));
    let expected = format!("sharing {} and {} as ", ro.path().display(), downloads.display());
    assert!(
        sharing.starts_with(&expected) && sharing.contains(&format!("(state in {})", state.display())),
        "{sharing}"
    );
    let ready = lines.next().expect("the ready line");
    assert!(ready.starts_with("ready: 1 file(s)"), "{ready}");
    let into = tempfile::tempdir().expect("dir");
    let got = run(p2pnode(port).args(["get", "notes.txt", "-o", into.path().to_str().expect("utf-8")]));
    assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
    assert_eq!(std::fs::read(into.path().join("notes.txt")).expect("fetched"), b"read-only notes");
    serve.kill().expect("kill");
    serve.wait().expect("ends");
}

/// `from` mounted read-only at `at`, unmounted when dropped.
fn read_only_bind(from: &std::path::Path, at: &std::path::Path) -> Unmount {
    let mount = |args: &[&std::ffi::OsStr]| {
        assert!(
            std::process::Command::new("mount").args(args).status().expect("mount runs").success(),
            "mount {args:?}"
        );
    };
    mount(&[from.as_os_str(), at.as_os_str(), "--bind".as_ref()]);
    let unmount = Unmount(at.to_path_buf());
    mount(&["-o".as_ref(), "remount,ro,bind".as_ref(), at.as_os_str()]);
    unmount
}

/// Unmounts a folder when dropped.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn each_subcommand_lists_only_the_options_it_takes() {
    let help = |sub: &str| String::from_utf8_lossy(&run(p2pnode(0).args([sub, "--help"])).stdout).into_owned();
    for (sub, shown, hidden) in [
        (
            "serve",
            &["--dir", "--name", "--max-upload-rate", "--announce-interval"][..],
            &["--transport", "--force"][..],
        ),
        ("peers", &["--discovery", "--timeout", "--json"], &["--transport", "--dir", "--name", "--port"]),
        ("ls", &["--transport", "--tree"], &["--dir", "--name", "--port"]),
        ("get", &["--transport", "--dir", "--force", "--output", "--name", "--port", "--seed-for", "--no-upload"], &[]),
        ("completions", &[], &["--json", "--dir", "--timeout"]),
    ] {
        let help = help(sub);
        for option in shown {
            assert!(
                help.contains(&format!("{option} ")) || help.contains(&format!("{option}\n")),
                "{sub}: {option}: {help}"
            );
        }
        for option in hidden {
            assert!(!help.contains(&format!("{option} ")), "{sub} lists {option}: {help}");
        }
    }
    // Options still go before the subcommand, as they always did.
    let out = run(p2pnode(0).args(["--dir", "/nonexistent-p2pnode-dir", "serve"]));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent-p2pnode-dir"), "{out:?}");
}

#[test]
fn a_new_or_deleted_file_shows_without_waiting_for_the_rescan() {
    let port = free_udp_port();
    let shared = tempfile::tempdir().expect("dir");
    std::fs::write(shared.path().join("old.txt"), b"old").expect("write");
    // Rescans a minute apart: only the file system's notifications can show a change sooner.
    let _server = Server::start(port, shared.path(), "watched", &["--announce-interval", "60"], &[]);
    let listed = || -> BTreeSet<String> {
        let files = json_lines(&run(p2pnode(port).args(["--json", "ls"])));
        files.iter().filter_map(|f| f["name"].as_str().map(String::from)).collect()
    };
    let shows = |expected: &[&str]| {
        let expected: BTreeSet<String> = expected.iter().map(|n| n.to_string()).collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        while listed() != expected {
            assert!(Instant::now() < deadline, "still {:?}, not {expected:?}", listed());
        }
    };
    shows(&["old.txt"]);
    std::fs::write(shared.path().join("new.txt"), b"new").expect("write");
    shows(&["old.txt", "new.txt"]);
    std::fs::remove_file(shared.path().join("old.txt")).expect("remove");
    shows(&["new.txt"]);
}

#[test]
fn rust_log_filters_by_target_and_spans_name_the_connection_exchange_and_download() {
    let port = free_udp_port();
    let (shared, into, logs) =
        (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    std::fs::write(shared.path().join("clip.bin"), vec![7u8; 600_000]).expect("write");
    let log = logs.path().join("serve.log");
    let server = Server::start(port, shared.path(), "alpha", &["--log-file", log.to_str().expect("utf-8")], &[]);
    let out = run(p2pnode(port).env("RUST_LOG", "p2pnode::download=debug").args([
        "get",
        "clip.bin",
        "-o",
        into.path().to_str().expect("utf-8"),
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("chunk verified") && stderr.contains("download{file="), "debug, in its span: {stderr}");
    assert!(!stderr.contains("peer answered"), "other targets stay at their default: {stderr}");
    drop(server);
    let served = std::fs::read_to_string(&log).expect("log");
    assert!(served.contains("connection{peer=") && served.contains("exchange{request="), "{served}");

    let wrong = run(p2pnode(port).env("RUST_LOG", "p2pnode=loudest").arg("peers"));
    assert_one_line_error(&wrong, 1, "RUST_LOG=p2pnode=loudest: not a filter");
}

/// Past a few files, `get` and `serve` say how many in a line rather than a line each; -v lists each,
/// and a file is named by its path below the shared folder.
#[test]
fn many_files_are_counted_past_a_few_and_listed_with_v() {
    let port = free_udp_port();
    let (shared, into) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    std::fs::create_dir_all(shared.path().join("many/deeper")).expect("mkdir");
    for i in 0..12 {
        std::fs::write(shared.path().join(format!("many/f{i:02}.txt")), format!("file {i}")).expect("write");
    }
    std::fs::write(shared.path().join("many/deeper/f00.txt"), b"the other f00").expect("write");
    let mut serve = p2pnode(port)
        .args(["--dir", shared.path().to_str().expect("utf-8"), "--name", "alpha", "--port", "0"])
        .args(["--state-dir", shared.path().join(".p2pnode").to_str().expect("utf-8"), "serve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let mut served = BufReader::new(serve.stdout.take().expect("stdout")).lines().map(|l| l.expect("a line"));
    assert!(served.nth(1).expect("ready").starts_with("ready: 13 file(s)"));

    let get = |verbose: bool, to: &str| {
        let into = into.path().join(to);
        let mut cmd = p2pnode(port);
        cmd.args(["--no-upload", "get", "many", "-o", into.to_str().expect("utf-8")]);
        if verbose {
            cmd.arg("-v");
        }
        let out = run(&mut cmd);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let said = get(false, "quiet");
    let each = said.lines().filter(|l| l.starts_with("downloaded ") && l.contains(" to ")).count();
    assert_eq!(each, 5, "five files told one by one:\n{said}");
    assert!(said.contains("downloaded 8 more file(s) ("), "the rest counted:\n{said}");
    assert_eq!(get(true, "loud").lines().filter(|l| l.starts_with("downloaded ") && l.contains(" to ")).count(), 13);

    let sent = served.find(|l| l.starts_with("sent ")).expect("the uploads told");
    assert!(sent.starts_with("sent 13 files (") && sent.ends_with(" to 127.0.0.1"), "one line for 13 files: {sent}");
    let one = run(p2pnode(port).args([
        "--no-upload",
        "get",
        "many/deeper/f00.txt",
        "-o",
        into.path().to_str().expect("utf-8"),
    ]));
    assert!(one.status.success());
    // The two folder gets' lines first, then the one file's.
    let sent = served.find(|l| l.starts_with("sent ") && !l.starts_with("sent 13 files")).expect("the upload told");
    assert!(sent.starts_with("sent many/deeper/f00.txt (13 B)"), "by its path: {sent}");
    serve.kill().expect("kill");
    serve.wait().expect("ends");
}
