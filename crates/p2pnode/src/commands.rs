//! One function per subcommand.

use std::io::{ErrorKind, IsTerminal};
use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::CommandFactory;
use node::{Identity, Node, NodeError, Survey};
use transport::TransportError;

use crate::cli::{Cli, Command, Global};
use crate::progress::Progress;
use crate::{output, plugins};

/// Runs the parsed command.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    let g = &cli.global;
    match &cli.command {
        Command::Serve { max_upload_rate } => serve(g, *max_upload_rate).await,
        Command::Peers => {
            let peers = survey(g)?.peers().await?;
            output::peers(&peers, g.json);
            Ok(())
        }
        Command::Ls => {
            let mut survey = survey(g)?;
            let peers = survey.peers().await?;
            let dictionary = survey.dictionary().await?;
            output::files(&dictionary, &peers, g.json);
            Ok(())
        }
        Command::Get { file, output, delete_incomplete, keep_incomplete, force } => {
            let incomplete = match (delete_incomplete, keep_incomplete) {
                (true, _) => Incomplete::Delete,
                (_, true) => Incomplete::Keep,
                _ => Incomplete::Ask,
            };
            get(g, file, output.as_deref(), incomplete, *force).await
        }
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "p2pnode", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => Ok(clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?),
    }
}

/// A survey over `--transport` and `--discovery`, proving an identity made for this run.
fn survey(g: &Global) -> anyhow::Result<Survey> {
    let net = g.net()?;
    let identity = Identity::generate()?;
    let transport = plugins::client_transport(&g.transport, net.transport_config(), identity.clone())?;
    let discoveries = plugins::discoveries(g, &net, identity.node_id(), false)?;
    Ok(Survey::new(&net, vec![transport], discoveries)?)
}

async fn serve(g: &Global, max_upload_rate: Option<u64>) -> anyhow::Result<()> {
    let config = g.serve(max_upload_rate)?;
    let mut builder = Node::builder(config.clone())?;
    let (identity, net) = (builder.identity().clone(), &config.net);
    for transport in plugins::serving_transports(net.transport_config(), &identity) {
        builder = builder.transport(transport);
    }
    for discovery in plugins::discoveries(g, net, identity.node_id(), true)? {
        builder = builder.discovery(discovery);
    }
    let node = builder.bind().await.map_err(port_hint)?;
    output::serving(&config, &node, g.json);
    node.run(shutdown_signal()).await?;
    Ok(())
}

/// What to do with the verified part of a download that cannot complete.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Incomplete {
    Keep,
    Delete,
    /// Ask on a terminal; keep when nobody can answer.
    Ask,
}

async fn get(g: &Global, file: &str, output: Option<&Path>, incomplete: Incomplete, force: bool) -> anyhow::Result<()> {
    let net = g.net()?;
    let dir: PathBuf = output.map_or_else(|| g.downloads(), Path::to_path_buf);
    node::check_writable(&dir)?;
    let mut survey = survey(g)?;
    let (id, entry, sources) = survey.find(file).await?;
    // A file's id covers its name, not the folders it sits in.
    let file_name = entry.name.rsplit('/').next().unwrap_or(&entry.name);
    if !force && let Some(copy) = node::find_copy(&dir, id, file_name, entry.size, &g.state_dir()).await {
        output::already_have(&entry.name, &copy, id, g.json);
        return Ok(());
    }
    if sources.is_empty() {
        bail!("the peers hosting '{}' do not serve --transport {}", entry.name, g.transport);
    }
    let mut progress = Progress::new(g.json);
    let key = g.state_key();
    let path = node::download(id, &sources, &dir, net.timeout, &key, |e| progress.on(e)).await;
    progress.end(path.as_ref().ok(), id);
    if let Err(NodeError::Incomplete { part, .. }) = &path
        && decide(incomplete, part)
    {
        node::discard_part(part)?;
        eprintln!("deleted {}", part.display());
    }
    path?;
    Ok(())
}

/// A taken transfer port, with what to do about it.
fn port_hint(e: NodeError) -> anyhow::Error {
    match &e {
        NodeError::Transport(TransportError::Bind { source, .. }) if source.kind() == ErrorKind::AddrInUse => {
            anyhow::anyhow!("{e}: another p2pnode or program listens there; pass --port 0 for any free port")
        }
        _ => e.into(),
    }
}

/// Whether to delete the verified part: as the flags say, or as the user answers on a terminal (the
/// original tool's prompt). Without a terminal the part is kept.
fn decide(incomplete: Incomplete, part: &Path) -> bool {
    match incomplete {
        Incomplete::Keep => false,
        Incomplete::Delete => true,
        Incomplete::Ask if !std::io::stdin().is_terminal() => false,
        Incomplete::Ask => {
            eprint!("download incomplete; delete the verified part {}? [y/N] ", part.display());
            let mut answer = String::new();
            std::io::stdin().read_line(&mut answer).is_ok() && answer.trim().eq_ignore_ascii_case("y")
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminated() => {}
    }
    tracing::info!("shutting down");
}

/// Completes on SIGTERM (what `docker stop` and service managers send).
#[cfg(unix)]
async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => _ = term.recv().await,
        Err(_) => std::future::pending().await,
    }
}

/// Elsewhere Ctrl-C (or the console closing) is the only signal.
#[cfg(not(unix))]
async fn terminated() {
    std::future::pending().await
}
