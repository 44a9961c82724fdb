//! The docker-compose demo, as docs/testing.md shows it: four peers up with whichever Compose is
//! installed (the `docker compose` plugin, or `docker-compose` v1), `ls` and a `get` through `exec`,
//! the bytes checked, and everything brought down again.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

#[test]
fn the_compose_demo_lists_and_downloads() -> anyhow::Result<()> {
    harness::ready()?;
    let demo = Demo::up()?;
    let started = Instant::now();
    loop {
        let listed = demo.exec(&["ls"])?;
        let text = String::from_utf8_lossy(&listed.stdout);
        if ["welcome.txt", "notes.md", "recipe.txt"].iter().all(|f| text.contains(f)) {
            break;
        }
        ensure!(started.elapsed() < Duration::from_secs(20), "ls never listed every demo file: {text}");
    }
    let got = demo.exec(&["get", "recipe.txt"])?;
    ensure!(got.status.success(), "get failed: {}", String::from_utf8_lossy(&got.stderr));
    let expected = std::fs::read(demo.dir.join("demo/peer3/recipe.txt"))?;
    let downloaded = std::fs::read(demo.downloads.join("recipe.txt")).context("the download")?;
    ensure!(downloaded == expected, "downloaded bytes differ");
    Ok(())
}

/// The demo brought up under a project name of this process; brought down (and its download removed)
/// when dropped.
struct Demo {
    compose: Vec<&'static str>,
    project: String,
    dir: PathBuf,
    downloads: PathBuf,
}

impl Demo {
    fn up() -> anyhow::Result<Self> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker").canonicalize()?;
        let compose = if succeeds(Command::new("docker").args(["compose", "version"])) {
            vec!["docker", "compose"]
        } else if succeeds(Command::new("docker-compose").arg("version")) {
            vec!["docker-compose"]
        } else {
            bail!("neither `docker compose` nor `docker-compose` is installed");
        };
        let demo = Self {
            compose,
            project: format!("p2pnode-demo-{}", std::process::id()),
            downloads: dir.join("demo/peer4/P2PDownloadFolder"),
            dir,
        };
        let up = demo.run(&["up", "-d"])?;
        ensure!(up.status.success(), "compose up: {}", String::from_utf8_lossy(&up.stderr));
        Ok(demo)
    }

    /// `p2pnode --dir /share ARGS` inside peer4.
    fn exec(&self, args: &[&str]) -> anyhow::Result<Output> {
        self.run(&[&["exec", "-T", "peer4", "/p2pnode", "--dir", "/share"], args].concat())
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<Output> {
        let file = self.dir.join("docker-compose.yml");
        let mut cmd = Command::new(self.compose[0]);
        cmd.args(&self.compose[1..]).arg("-f").arg(file).args(["-p", &self.project]).args(args);
        cmd.output().with_context(|| format!("cannot run {}", self.compose.join(" ")))
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.run(&["down", "-t", "1"]);
        let _ = std::fs::remove_file(self.downloads.join("recipe.txt"));
    }
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.output().is_ok_and(|o| o.status.success())
}
