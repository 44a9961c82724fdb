//! `get` as a person sees it: the binary runs in a pseudo-terminal of 60 and of 120 columns, and what it
//! draws is replayed on a terminal emulator (vt100) to read the screen as it would look. The bar stays on
//! one row without wrapping, a warning (a source killed mid-download) prints above it, Ctrl-C leaves the
//! resume hint, and the next run says how much it resumes; where the only source dies, the rate on the
//! bar falls as bytes stop and the run ends after the timeout saying how to resume.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, free_udp_port, p2pnode, shared_copies};
use expectrl::{Session, WaitStatus};

const ROWS: u16 = 24;
/// Two sources at this rate take about 6 s for the file: long enough to interrupt.
const RATE: &str = "4M";
const SIZE: usize = 48 << 20;

#[test]
fn at_60_columns() {
    the_bar_fits_warnings_print_above_it_and_ctrl_c_resumes(60);
}

#[test]
fn at_120_columns() {
    the_bar_fits_warnings_print_above_it_and_ctrl_c_resumes(120);
}

fn the_bar_fits_warnings_print_above_it_and_ctrl_c_resumes(cols: u16) {
    let port = free_udp_port();
    let (dirs, _) = shared_copies(2, "big.bin", SIZE);
    let dest = tempfile::tempdir().expect("dest");
    let state = tempfile::tempdir().expect("state");
    let alice = Server::start(port, dirs[0].path(), "alice", &[], &["--max-upload-rate", RATE]);
    let bob = Server::start(port, dirs[1].path(), "bob", &[], &["--max-upload-rate", RATE]);

    let mut get = Screen::get(cols, p2pnode(port), dest.path(), state.path());
    // Bob is killed once both sources have delivered (the bar has named each at some point: with its
    // rate, or where rates do not fit, by name alone after `from ` or `, `).
    get.wait_for("the bar", |s| bar_rows(s).len() == 1);
    get.wait_for_sources("both sources on the bar", &["alice", "bob"]);
    bob.signal("KILL");
    let warning = "bob is gone (";
    // The bar is drawn again just after the warning is printed above it: wait for both.
    get.wait_for("the warning of the dropped source", |s| s.contains(warning) && !bar_rows(s).is_empty());
    let spinner = String::from_utf8_lossy(&get.drawn).contains("looking for peers");
    assert!(spinner, "a spinner says what the survey waits for");
    let screen = get.text();
    let (warning, bar) = (row_of(&screen, warning), bar_rows(&screen));
    assert_eq!(bar.len(), 1, "the bar takes one row:\n{screen}");
    assert!(warning < bar[0], "the warning prints above the bar:\n{screen}");
    get.assert_bar_unwrapped(bar[0]);
    get.ctrl_c();
    get.wait_for("the resume hint", |s| s.contains("interrupted; run the same command to resume"));
    assert_eq!(get.exit_code(), 130);
    println!("{cols} columns, after Ctrl-C:\n{}", get.text());

    let mut again = Screen::get(cols, p2pnode(port), dest.path(), state.path());
    again.wait_for("the resume line", |s| s.contains("resuming big.bin: ") && s.contains("% already verified"));
    again.wait_for("the bar", |s| bar_rows(s).len() == 1);
    again.assert_bar_unwrapped(bar_rows(&again.text())[0]);
    again.ctrl_c();
    assert_eq!(again.exit_code(), 130);
    drop(alice);
}

#[test]
fn the_only_source_dies() {
    let port = free_udp_port();
    let (dirs, _) = shared_copies(1, "big.bin", SIZE);
    let (dest, state) = (tempfile::tempdir().expect("dest"), tempfile::tempdir().expect("state"));
    let alice = Server::start(port, dirs[0].path(), "alice", &[], &["--max-upload-rate", RATE]);
    let mut get = Screen::get(120, p2pnode(port), dest.path(), state.path());
    get.wait_for("a rate on the bar", |s| rate_on_bar(s).is_some_and(|rate| rate > 0.0));
    get.wait_for_sources("alice on the bar", &["alice"]);
    let before = rate_on_bar(&get.text()).expect("a rate");
    alice.signal("KILL");
    let warning = "alice is gone (";
    get.wait_for("the warning", |s| s.contains(warning) && s.contains("; waiting up to 10 s for another host"));
    // Nothing arrives any more: the bar says so within seconds, while the run waits for another host.
    get.wait_for("the rate falling", |s| rate_on_bar(s).is_some_and(|rate| rate < before / 2.0));
    get.wait_for("the question", |s| s.contains("delete the verified part"));
    get.session.send(b"\n").expect("answered");
    assert_eq!(get.exit_code(), 1);
    let screen = get.text();
    for said in ["every host of big.bin is gone", "is kept in", "run the same command when a host is back"] {
        assert!(screen.replace('\n', "").contains(said), "'{said}' not said:\n{screen}");
    }
    assert!(dest.path().join("big.bin.part").exists(), "the verified part is kept");
}

/// The rate the bar shows for the whole run, in bytes per second.
fn rate_on_bar(screen: &str) -> Option<f64> {
    let row = screen.lines().find(|row| row.contains("/s ETA"))?;
    let head = &row[..row.find("/s ETA")?];
    let mut words = head.split_whitespace().rev();
    let (unit, value) = (words.next()?, words.next()?.parse::<f64>().ok()?);
    let power = ["B", "KiB", "MiB", "GiB"].iter().position(|u| *u == unit)?;
    Some(value * 1024f64.powi(power as i32))
}

/// `ls` at 60 columns: a long name is cut with an ellipsis rather than every row wrapping, and names
/// of double-width characters keep the columns aligned.
#[test]
fn ls_fits_60_columns() {
    let port = free_udp_port();
    let shared = tempfile::tempdir().expect("dir");
    let long = "a-very-long-file-name-that-would-wrap-every-single-row-of-the-listing.txt";
    for name in [long, "日本語のファイル.txt", "short.txt"] {
        std::fs::write(shared.path().join(name), name.as_bytes()).expect("write");
    }
    let _server = Server::start(port, shared.path(), "alpha", &[], &[]);
    let mut ls = p2pnode(port);
    ls.arg("ls");
    let mut screen = Screen::spawn(60, ls);
    assert_eq!(screen.exit_code(), 0, "{}", screen.text());
    let text = screen.text();
    let rows: Vec<&str> = text.lines().filter(|row| !row.trim().is_empty()).collect();
    assert_eq!(rows.len(), 4, "a header and three files, one row each:\n{text}");
    assert!(rows.iter().any(|row| row.starts_with("a-very-long") && row.contains('…')), "{text}");
    let wrapped = (0..ROWS).filter(|&row| screen.terminal.screen().row_wrapped(row)).count();
    assert_eq!(wrapped, 0, "no row wraps:\n{text}");
    // The SIZE column starts at one screen column on every row, whatever the name's characters.
    let size_at = |row: u16| {
        let cells = screen.terminal.screen();
        (0..60).find(|&col| {
            cells
                .cell(row, col)
                .is_some_and(|c| c.contents() == "S" || c.contents().starts_with(|d: char| d.is_ascii_digit()))
                && (col == 0
                    || cells.cell(row, col - 1).is_some_and(|c| c.contents().is_empty() || c.contents() == " "))
        })
    };
    let columns: Vec<_> = (0..4).map(size_at).collect();
    assert!(columns.windows(2).all(|w| w[0] == w[1]), "SIZE at {columns:?}:\n{text}");
}

/// The rows of the screen that show the bar.
fn bar_rows(screen: &str) -> Vec<usize> {
    screen.lines().enumerate().filter(|(_, row)| row.contains("ETA")).map(|(i, _)| i).collect()
}

fn row_of(screen: &str, text: &str) -> usize {
    screen.lines().position(|row| row.contains(text)).unwrap_or_else(|| panic!("no '{text}' on screen:\n{screen}"))
}

/// A `get` in a pseudo-terminal, and the screen it draws.
struct Screen {
    session: Session,
    terminal: vt100::Parser,
    /// Everything drawn, for what shows only for a moment.
    drawn: Vec<u8>,
}

impl Screen {
    /// `get` of big.bin into `dest` with state in `state`, in a terminal of `cols` columns.
    fn get(cols: u16, p2pnode: Command, dest: &Path, state: &Path) -> Self {
        let mut get = p2pnode;
        get.args([
            "--state-dir",
            state.to_str().expect("utf-8"),
            "get",
            "big.bin",
            "-o",
            dest.to_str().expect("utf-8"),
        ]);
        Self::spawn(cols, get)
    }

    fn spawn(cols: u16, command: Command) -> Self {
        // The binary starts once the terminal has its size, as a window has it. The size is set from
        // this side, after the spawn: the pty crate sets a default size of its own once the child runs,
        // and a size set by the child could come before that and be undone.
        let wait_for_size =
            format!("while [ \"$(stty size)\" != '{ROWS} {cols}' ]; do sleep 0.01; done; exec \"$0\" \"$@\"");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &wait_for_size, command.get_program().to_str().expect("utf-8")]);
        cmd.args(command.get_args());
        cmd.envs(command.get_envs().filter_map(|(var, value)| Some((var, value?))));
        if let Some(dir) = command.get_current_dir() {
            cmd.current_dir(dir);
        }
        cmd.env("TERM", "xterm-256color");
        let mut session = Session::spawn(cmd).expect("a pseudo-terminal");
        session.get_process_mut().set_window_size(cols, ROWS).expect("a terminal size");
        Self { session, terminal: vt100::Parser::new(ROWS, cols, 0), drawn: Vec::new() }
    }

    /// Reads what the binary draws until `ready` holds for the screen, for at most 30 s.
    fn wait_for(&mut self, what: &str, ready: impl Fn(&str) -> bool) {
        self.wait_until(what, |screen| ready(&screen.text()));
    }

    /// Reads what the binary draws until every source of `sources` was named on the bar at some point,
    /// for at most 30 s.
    fn wait_for_sources(&mut self, what: &str, sources: &[&str]) {
        self.wait_until(what, |screen| {
            let drawn = String::from_utf8_lossy(&screen.drawn);
            sources.iter().all(|name| ["from ", ", "].iter().any(|before| drawn.contains(&format!("{before}{name}"))))
        });
    }

    fn wait_until(&mut self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done(self) {
            assert!(Instant::now() < deadline, "no {what} within 30 s; the screen:\n{}", self.text());
            assert!(self.read(), "the binary ended before {what}; the screen:\n{}", self.text());
        }
    }

    /// Takes in what the binary drew since the last call, waiting a moment if nothing; false once it
    /// closed the terminal.
    fn read(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        match self.session.try_read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.terminal.process(&buf[..n]);
                self.drawn.extend_from_slice(&buf[..n]);
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
                true
            }
            // Linux answers EIO once the other side of the terminal is closed.
            Err(_) => false,
        }
    }

    fn text(&self) -> String {
        let (_, cols) = self.terminal.screen().size();
        self.terminal.screen().rows(0, cols).collect::<Vec<_>>().join("\n")
    }

    /// The bar's row neither runs past the right edge nor continues the row above.
    fn assert_bar_unwrapped(&self, bar: usize) {
        let screen = self.terminal.screen();
        let wrapped = |row: usize| u16::try_from(row).is_ok_and(|row| screen.row_wrapped(row));
        assert!(!wrapped(bar) && (bar == 0 || !wrapped(bar - 1)), "the bar wraps:\n{}", self.text());
    }

    fn ctrl_c(&mut self) {
        self.session.send([3u8]).expect("Ctrl-C sent");
    }

    /// Reads the rest of the output, then the exit code.
    fn exit_code(&mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.read() {
            assert!(Instant::now() < deadline, "the binary did not end within 30 s:\n{}", self.text());
        }
        match self.session.get_process().wait().expect("the binary ends") {
            WaitStatus::Exited(_, code) => code,
            other => panic!("the binary did not exit: {other:?}"),
        }
    }
}

/// `serve` at a terminal (by default, `--accept ask`): an offer from a peer it does not trust is a question naming who
/// (its name and full id), what and how much; `y` takes it, anything else declines it, and the sender is
/// told so.
#[test]
fn serve_asks_about_an_offer_from_a_stranger() {
    let port = free_udp_port();
    let (bob, eve, files) =
        (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let note = files.path().join("note.txt");
    std::fs::write(&note, b"from eve").expect("write");
    let path = |d: &Path, below: &str| d.join(below).to_str().expect("utf-8").to_string();
    let mut serve = p2pnode(port);
    serve.args(["--dir", &path(bob.path(), ""), "--state-dir", &path(bob.path(), ".p2pnode")]);
    serve.args(["--downloads", &path(bob.path(), "in"), "--name", "bob", "--port", "0", "serve"]);
    let mut screen = Screen::spawn(120, serve);
    screen.wait_for("serve ready", |s| s.contains("Ctrl-C stops"));
    let send = |answer: &'static str, screen: &mut Screen| {
        let mut cmd = p2pnode(port);
        cmd.args(["--state-dir", &path(eve.path(), "state"), "--name", "eve", "send", note.to_str().expect("utf-8")]);
        let sending = std::thread::spawn(move || cmd.args(["--to", "bob"]).output().expect("send runs"));
        let asked = if answer == "y" { 1 } else { 2 };
        screen.wait_until("the question", |s| {
            String::from_utf8_lossy(&s.drawn).matches("accept? [y/N]").count() == asked
        });
        screen.session.send(format!("{answer}\n")).expect("answered");
        sending.join().expect("the send ends")
    };
    let taken = send("y", &mut screen);
    assert!(taken.status.success(), "{}", String::from_utf8_lossy(&taken.stderr));
    assert_eq!(std::fs::read(bob.path().join("in/note.txt")).expect("landed"), b"from eve");
    let fingerprint = eve_fingerprint(port, &path(eve.path(), "state"));
    let text = screen.text();
    let question =
        format!("eve (fingerprint {fingerprint}, not paired) sends note.txt (1 file(s), 8 B); accept? [y/N]");
    assert!(text.contains(&question), "{text}");
    let declined = send("n", &mut screen);
    assert!(!declined.status.success());
    assert!(String::from_utf8_lossy(&declined.stderr).contains("error: bob declined\n"), "{declined:?}");
    let told = "declined an offer of note.txt from eve";
    screen.wait_until("the refusal told", |s| String::from_utf8_lossy(&s.drawn).contains(told));
}

/// The fingerprint of the node whose state is in `state`.
fn eve_fingerprint(port: u16, state: &str) -> String {
    let out = p2pnode(port).args(["--state-dir", state, "--json", "id"]).output().expect("id runs");
    let id: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    id["fingerprint"].as_str().expect("a fingerprint").to_string()
}
