//! Multi-peer scenarios of p2pnode in Docker containers, run by `cargo test -p harness`.
//!
//! Every peer is a container of the image `p2pnode:test` (built FROM scratch around the static binary by
//! `docker/build.sh`, once per test run) on a user-defined bridge network that the scenario creates for
//! itself, so UDP broadcast discovery and transfers use real container addresses. testcontainers starts
//! the peers and removes them, and the networks with them, when a scenario ends, failed or not. Faults
//! are the real thing: `docker kill`, `docker pause`, files replaced with `docker cp`.
//!
//! [`Lan`] is one scenario's network; [`Peer`] one running node on it; [`Peer::get`] runs `p2pnode get`
//! inside a peer and hands each JSON progress event to the scenario as it is printed.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, bail};
use serde_json::Value;
use testcontainers::core::{ExecCommand, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio::io::AsyncBufReadExt;

/// The image every peer runs.
pub const IMAGE: (&str, &str) = ("p2pnode", "test");
/// The folder each peer shares; downloads go to its `P2PDownloadFolder`.
pub const SHARE: &str = "/share";
/// Where a peer keeps its state: beside what it shares, never shared.
pub const STATE: &str = "/share/.p2pnode";

/// Checks that a Docker engine answers and builds the image, once per test process. Every scenario calls
/// it first, so a machine without Docker fails each scenario with one clear line instead of hanging.
pub fn ready() -> anyhow::Result<()> {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    READY.get_or_init(|| prepare().map_err(|e| format!("{e:#}"))).clone().map_err(anyhow::Error::msg)
}

fn prepare() -> anyhow::Result<()> {
    let version = Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]).output();
    match version {
        Ok(out) if out.status.success() => {}
        Ok(out) => bail!("no Docker engine answers: {}", String::from_utf8_lossy(&out.stderr).trim()),
        Err(e) => bail!("no Docker engine answers: cannot run docker: {e}"),
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker/build.sh");
    let out = Command::new(&script).output().with_context(|| format!("cannot run {}", script.display()))?;
    if !out.status.success() {
        bail!("building the image failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// One scenario's bridge network (or several), named after the scenario and this process.
pub struct Lan {
    prefix: String,
}

impl Lan {
    /// A LAN for the scenario `name` on transport `transport`.
    pub fn new(name: &str, transport: &str) -> anyhow::Result<Self> {
        ready()?;
        Ok(Self { prefix: format!("p2pnode-{name}-{transport}-{}", std::process::id()) })
    }

    /// The name of this LAN's network `n` (created by the first peer that joins it).
    pub fn network(&self, n: usize) -> String {
        format!("{}-net{n}", self.prefix)
    }

    /// The container (and host) name of the peer named `name`, which other containers on its network
    /// resolve through Docker's DNS.
    pub fn host_name(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// Starts a serving peer named `name` on network `net`, sharing `files`, with extra global arguments
    /// `args` (before `serve`) and `serve_args` after it.
    pub async fn peer(
        &self,
        net: usize,
        name: &str,
        files: &[(&str, &[u8])],
        args: &[&str],
        serve_args: &[&str],
    ) -> anyhow::Result<Peer> {
        // The node's own state folder, named: one serve per state folder (the container has no home
        // folder, so the default is the same; the commands run in it beside the node share it).
        let mut cmd: Vec<String> = ["--dir", SHARE, "--state-dir", STATE, "--name", name].map(String::from).to_vec();
        cmd.extend(args.iter().map(|a| a.to_string()));
        cmd.push("serve".into());
        cmd.extend(serve_args.iter().map(|a| a.to_string()));
        // The shared folder is a folder of this host, mounted: files can then be changed in place behind
        // the node's back (see `Peer::replace_file`).
        let share = tempfile::tempdir()?;
        for (file, bytes) in files {
            let path = share.path().join(file);
            if let Some(folder) = path.parent() {
                std::fs::create_dir_all(folder)?;
            }
            std::fs::write(path, bytes)?;
        }
        let host_share = share.path().to_str().context("temporary folder path is not UTF-8")?;
        let request = GenericImage::new(IMAGE.0, IMAGE.1)
            .with_wait_for(WaitFor::message_on_stdout("Ctrl-C stops"))
            .with_cmd(cmd)
            .with_network(self.network(net))
            .with_container_name(self.host_name(name))
            .with_mount(Mount::bind_mount(host_share, SHARE));
        let container = request.start().await.with_context(|| format!("starting peer {name}"))?;
        Ok(Peer { container, name: name.into(), share })
    }
}

/// A running peer.
pub struct Peer {
    container: ContainerAsync<GenericImage>,
    /// Its display name.
    pub name: String,
    /// The host folder mounted as its shared folder.
    share: tempfile::TempDir,
}

/// A finished `p2pnode get` (or any command) run inside a peer.
#[derive(Debug)]
pub struct Run {
    /// The exit status.
    pub code: Option<i64>,
    /// Every JSON line printed on stdout.
    pub events: Vec<Value>,
    /// Stderr.
    pub stderr: String,
}

impl Run {
    /// The `name` of every event that has one (the peers of `peers`, the files of `ls`).
    pub fn names(&self) -> BTreeSet<String> {
        self.events.iter().filter_map(|e| e["name"].as_str().map(String::from)).collect()
    }

    /// How many events of this kind were printed.
    pub fn count(&self, event: &str) -> usize {
        self.events.iter().filter(|e| e["event"] == event).count()
    }
}

impl Peer {
    /// The container id, for docker commands.
    pub fn id(&self) -> &str {
        self.container.id()
    }

    /// Runs `p2pnode ARGS` inside the peer, with `--json`, calling `on_event` with each line of stdout
    /// as it is printed.
    pub async fn p2pnode(&self, args: &[&str], mut on_event: impl AsyncFnMut(&Value)) -> anyhow::Result<Run> {
        let mut cmd = vec!["/p2pnode", "--dir", SHARE, "--state-dir", STATE, "--json"];
        cmd.extend_from_slice(args);
        let mut exec = self.container.exec(ExecCommand::new(cmd)).await.context("docker exec")?;
        let mut events = Vec::new();
        let mut lines = exec.stdout().lines();
        while let Some(line) = lines.next_line().await? {
            let event: Value = serde_json::from_str(&line).with_context(|| format!("not JSON: {line}"))?;
            on_event(&event).await;
            events.push(event);
        }
        drop(lines);
        let stderr = String::from_utf8_lossy(&exec.stderr_to_vec().await?).into_owned();
        let mut code = exec.exit_code().await?;
        while code.is_none() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            code = exec.exit_code().await?;
        }
        Ok(Run { code, events, stderr })
    }

    /// `p2pnode get NAME` inside the peer, into its downloads folder.
    pub async fn get(
        &self,
        transport: &str,
        name: &str,
        extra: &[&str],
        on_event: impl AsyncFnMut(&Value),
    ) -> anyhow::Result<Run> {
        let mut args = vec!["--transport", transport, "get", name];
        args.extend_from_slice(extra);
        self.p2pnode(&args, on_event).await
    }

    /// The bytes of a file inside the peer, `None` if it does not exist.
    pub async fn file(&self, path: &str) -> Option<Vec<u8>> {
        self.container.copy_file_from(path, Vec::new()).await.ok()
    }

    /// The bytes of a downloaded file.
    pub async fn downloaded(&self, name: &str) -> Option<Vec<u8>> {
        self.file(&format!("{SHARE}/P2PDownloadFolder/{name}")).await
    }

    /// Overwrites a shared file's bytes in place behind the running node's back, keeping its size, inode
    /// and modification time: bit rot, which only the receivers' hash checks can catch.
    pub fn replace_file(&self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        use std::os::unix::fs::FileExt;
        let path = self.share.path().join(name);
        let mtime = std::fs::metadata(&path)?.modified()?;
        let file = std::fs::File::options().write(true).open(&path)?;
        file.write_all_at(bytes, 0)?;
        file.set_modified(mtime)?;
        Ok(())
    }

    /// `docker kill`: the node dies at once.
    pub async fn kill(&self) -> anyhow::Result<()> {
        Ok(self.container.stop_with_timeout(Some(0)).await?)
    }

    /// `docker pause`: the node freezes, its sockets stay open.
    pub async fn pause(&self) -> anyhow::Result<()> {
        Ok(self.container.pause().await?)
    }

    /// `docker unpause`.
    pub async fn unpause(&self) -> anyhow::Result<()> {
        Ok(self.container.unpause().await?)
    }

    /// The peer's address on network `network`.
    pub fn ip(&self, network: &str) -> anyhow::Result<String> {
        let format = format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
        docker(&["inspect", "-f", &format, self.id()]).map(|s| s.trim().to_string())
    }

    /// Connects the peer to a second network too, until the returned link is dropped (a network still in
    /// use could not be removed when the scenario ends).
    pub fn connect(&self, network: &str) -> anyhow::Result<Link> {
        docker(&["network", "connect", network, self.id()])?;
        Ok(Link { network: network.into(), container: self.id().into() })
    }

    /// The process id of the peer's node on the host, to enter its network namespace.
    pub fn host_pid(&self) -> anyhow::Result<String> {
        docker(&["inspect", "-f", "{{.State.Pid}}", self.id()]).map(|s| s.trim().to_string())
    }
}

/// A peer's connection to a further network, undone when dropped.
pub struct Link {
    network: String,
    container: String,
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = docker(&["network", "disconnect", "-f", &self.network, &self.container]);
    }
}

/// Runs a docker command, returning its stdout.
pub fn docker(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("docker").args(args).output().context("cannot run docker")?;
    if !out.status.success() {
        bail!("docker {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub use testdata::bytes;
