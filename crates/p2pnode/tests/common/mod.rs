//! Helpers for tests that run the `p2pnode` binary: real processes on loopback, one discovery port per
//! test, broadcasts on 127.255.255.255 only.

#![allow(dead_code, unreachable_pub, unused_imports)]

use std::io::{BufRead, BufReader, Lines};
use std::net::{Ipv4Addr, UdpSocket};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

pub fn free_udp_port() -> u16 {
    UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|s| s.local_addr()).map(|a| a.port()).expect("free port")
}

/// `p2pnode` on the test's own discovery port, broadcasting on loopback only, run in a folder of this
/// test process's own that is its home too: what a default puts in the current or the home folder
/// (`./.p2pnode`, `~/.local/state`) lands there, never in the source tree or the real home.
pub fn p2pnode(discovery_port: u16) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_p2pnode"));
    cmd.args(["--discovery-port", &discovery_port.to_string(), "--broadcast", "127.255.255.255"]);
    let home = scratch();
    // A serve's page on any free port, never the remembered 5080 of the user's own.
    cmd.current_dir(home).env("HOME", home).env("P2PNODE_WEB", "127.0.0.1:0");
    for (var, folder) in [("XDG_STATE_HOME", "state"), ("XDG_DATA_HOME", "data"), ("XDG_CONFIG_HOME", "config")] {
        cmd.env(var, home.join(folder));
    }
    cmd
}

/// `p2pnode` as the user whose home is `home` (its XDG folders inside), run in `cwd`.
pub fn as_user(discovery_port: u16, home: &Path, cwd: &Path) -> Command {
    let mut cmd = p2pnode(discovery_port);
    cmd.current_dir(cwd).env("HOME", home);
    for (var, folder) in [("XDG_STATE_HOME", "state"), ("XDG_DATA_HOME", "data"), ("XDG_CONFIG_HOME", "config")] {
        cmd.env(var, home.join(folder));
    }
    cmd
}

/// This test process's scratch folder (in the system's temporary folder), made on first use.
fn scratch() -> &'static Path {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("p2pnode-test-{}", std::process::id()));
        // Made afresh: one of an earlier process of the same pid would pass its state on.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch folder");
        dir
    })
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("p2pnode runs")
}

/// What a spawned command prints on stdout, line by line.
pub type Said = Lines<BufReader<ChildStdout>>;

/// `cmd` spawned, its stdout read line by line (its stderr dropped).
pub fn spawned(cmd: &mut Command) -> (Child, Said) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("p2pnode starts");
    let said = BufReader::new(child.stdout.take().expect("stdout")).lines();
    (child, said)
}

/// The next line of `said`, a JSON event.
pub fn next_event(said: &mut Said) -> Value {
    serde_json::from_str(&said.next().expect("a line").expect("read")).expect("json")
}

/// `cmd`, a `serve --json`, spawned and ready: its `serving` event, and the rest of what it says (kept
/// open for it).
pub fn serving(cmd: &mut Command) -> (Child, Value, Said) {
    let (serve, mut said) = spawned(cmd);
    let serving = next_event(&mut said);
    assert_eq!(serving["event"], "serving");
    while next_event(&mut said)["event"] != "ready" {}
    (serve, serving, said)
}

/// A `serve` process, killed when dropped.
pub struct Server {
    child: Child,
    /// Its node id, from the line it prints once serving.
    pub id: String,
    /// That line.
    pub serving: Value,
    /// The events it printed since, read as they come (a full pipe would stall it).
    events: Arc<Mutex<Vec<Value>>>,
}

impl Server {
    /// Starts `serve` sharing `dir`, with `extra` arguments before `serve` and
    /// `serve_args` after it.
    pub fn start(discovery_port: u16, dir: &Path, name: &str, extra: &[&str], serve_args: &[&str]) -> Self {
        Self::spawn(discovery_port, dir, name, extra, serve_args, Stdio::null())
    }

    /// Starts `serve` sharing `dir`, with `extra` arguments before `serve`, its log kept for [`Self::log`].
    pub fn start_logged(discovery_port: u16, dir: &Path, name: &str, extra: &[&str]) -> Self {
        Self::spawn(discovery_port, dir, name, extra, &[], Stdio::piped())
    }

    /// Stops the node and returns what it logged (started with [`Self::start_logged`]).
    pub fn log(mut self) -> String {
        let _ = self.child.kill();
        let mut log = String::new();
        std::io::Read::read_to_string(&mut self.child.stderr.take().expect("a logged server"), &mut log).expect("log");
        log
    }

    fn spawn(discovery_port: u16, dir: &Path, name: &str, extra: &[&str], serve_args: &[&str], log: Stdio) -> Self {
        // Each node has a state and a downloads folder of its own (one serve per state folder): beside
        // what it shares, as nodes before the user-wide defaults kept them.
        let (state, downloads) = (dir.join(".p2pnode"), dir.join("P2PDownloadFolder"));
        let mut child = p2pnode(discovery_port)
            .args(["--dir", dir.to_str().expect("utf-8 path"), "--name", name])
            .args(["--state-dir", state.to_str().expect("utf-8 path")])
            .args(["--downloads", downloads.to_str().expect("utf-8 path")])
            .args(["--port", "0", "--json"])
            .args(extra)
            .arg("serve")
            .args(serve_args)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("serve starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("serving line");
        let v: Value = serde_json::from_str(&line).expect("json line");
        assert_eq!(v["event"], "serving");
        let events = Arc::new(Mutex::new(Vec::new()));
        let collected = events.clone();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let event =
                    serde_json::from_str(&line).unwrap_or_else(|_| panic!("serve printed a non-JSON line: {line}"));
                collected.lock().expect("events").push(event);
            }
        });
        let server = Self { child, id: v["id"].as_str().expect("id").to_string(), serving: v, events };
        // Its files are shared once hashed.
        server.wait_for_event(|e| e["event"] == "ready");
        server
    }

    /// Waits up to 10 s for the first event that `matches` among those printed since serving.
    pub fn wait_for_event(&self, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(event) = self.events.lock().expect("events").iter().find(|e| matches(e)) {
                return event.clone();
            }
            assert!(Instant::now() < deadline, "no such event within 10 s: {:?}", self.events.lock().expect("events"));
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The events it printed since serving, so far.
    pub fn events(&self) -> Vec<Value> {
        self.events.lock().expect("events").clone()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`KILL`, `STOP`, `CONT`).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([&format!("-{signal}"), &self.pid().to_string()]).status();
        assert!(status.expect("kill runs").success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("json line")).collect()
}

/// A finished `get --json`: its exit status, every event it printed, and its stderr.
pub struct GetRun {
    pub status: ExitStatus,
    pub events: Vec<Value>,
    pub stderr: String,
}

impl GetRun {
    pub fn count(&self, event: &str) -> usize {
        self.events.iter().filter(|e| e["event"] == event).count()
    }
}

/// Runs `cmd` (a `get --json`), calling `on_event` with each event as it is printed.
pub fn get_streaming(cmd: &mut Command, mut on_event: impl FnMut(&Value)) -> GetRun {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("get starts");
    let mut events = Vec::new();
    for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
        let event: Value = serde_json::from_str(&line.expect("line")).expect("json event");
        on_event(&event);
        events.push(event);
    }
    let out = child.wait_with_output().expect("get ends");
    GetRun { status: out.status, events, stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
}

pub use testdata::bytes;

/// Flips one byte in chunk `index` (of `chunk` bytes) of the file at `path`, in place, keeping its size
/// and modification time: bit rot, which only the receivers' hash checks can catch.
pub fn corrupt_chunk(path: &Path, chunk: usize, index: usize) {
    use std::os::unix::fs::FileExt;
    // In place and at once, size, inode and modification time kept: bit rot, which the node's file-system
    // notifications report but its rescan cannot see (the stamp is unchanged), so it keeps its hash.
    let file = std::fs::File::options().read(true).write(true).open(path).expect("open");
    let mtime = file.metadata().and_then(|m| m.modified()).expect("mtime");
    let at = (index * chunk + 17) as u64;
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, at).expect("read");
    file.write_all_at(&[byte[0] ^ 0xff], at).expect("write");
    file.set_modified(mtime).expect("keep mtime");
}

/// `count` folders each sharing the same `len` bytes as `name`.
pub fn shared_copies(count: usize, name: &str, len: usize) -> (Vec<TempDir>, Vec<u8>) {
    let data = bytes(len, len as u64);
    let dirs: Vec<TempDir> = (0..count).map(|_| tempfile::tempdir().expect("dir")).collect();
    for d in &dirs {
        std::fs::write(d.path().join(name), &data).expect("write");
    }
    (dirs, data)
}
