//! One function per subcommand.

use std::io::{ErrorKind, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::bail;
use futures_util::{FutureExt, StreamExt};
use node::{Identity, Node, NodeError, Survey, Swarm, Transport};
use transport::TransportError;

use crate::cli::{self, Cli, Command, Global};
use crate::progress::{self, FileProgress, Progress, Spinner};
use crate::{output, plugins};

/// Files one `get` fetches at once (each from all its peers): enough to hide each file's round trips.
const FILES_AT_ONCE: usize = 8;

/// Runs the parsed command.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    let in_group = cli.global.group_key.is_some();
    command(&cli).await.map_err(|e| match e.downcast_ref::<NodeError>() {
        // Members with another secret hear nothing at all: the one thing a wrong secret looks like.
        Some(NodeError::NoPeers(_)) if in_group => {
            anyhow::anyhow!("no peer of this group answered (check the group secret)")
        }
        _ => e,
    })
}

async fn command(cli: &Cli) -> anyhow::Result<()> {
    let g = &cli.global;
    match &cli.command {
        Command::Serve { max_upload_rate } => serve(g, *max_upload_rate).await,
        Command::Peers => {
            let spinner = Spinner::new(g.json, "looking for peers");
            let peers = survey(g, &identity(g)?)?.0.peers().await?;
            drop(spinner);
            output::peers(&peers, g.json, g.trusted.as_ref());
            Ok(())
        }
        Command::Ls { pattern, tree } => {
            let (mut survey, _) = survey(g, &identity(g)?)?;
            let spinner = Spinner::new(g.json, "looking for peers");
            let peers = survey.peers().await?;
            spinner.say(&format!("asking {} peer(s) what they share", peers.len()));
            let dictionary = survey.dictionary().await?;
            drop(spinner);
            let selected = match pattern {
                Some(p) => Some(dictionary.select(p).map_err(|e| node::unresolved(p, e))?),
                None => None,
            };
            let selected = selected.map(|files| files.into_iter().map(|(id, _)| id).collect());
            output::files(&dictionary, &peers, g.json, selected.as_ref(), *tree);
            Ok(())
        }
        Command::Get { files, output, delete_incomplete, keep_incomplete, force, seed_for, no_upload } => {
            let incomplete = match (delete_incomplete, keep_incomplete) {
                (true, _) => Incomplete::Delete,
                (_, true) => Incomplete::Keep,
                _ => Incomplete::Ask,
            };
            let seed = match (no_upload, seed_for) {
                (true, _) => None,
                (false, Some(secs)) => Some(Seed::For(Duration::from_secs(*secs))),
                (false, None) => Some(Seed::UntilQuiet),
            };
            get(g, files, output.as_deref(), incomplete, *force, seed).await
        }
        Command::Completions { shell } => {
            // Written whole at the end: clap_complete panics where stdout fails (`| head`); we return it.
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut cli::command(), "p2pnode", &mut script);
            Ok(std::io::Write::write_all(&mut std::io::stdout(), &script)?)
        }
        Command::Man => Ok(clap_mangen::Man::new(cli::command()).render(&mut std::io::stdout())?),
    }
}

/// The identity a client proves: one made for this run, or with a trust list its own (trusting peers
/// accept only the ids they know).
fn identity(g: &Global) -> anyhow::Result<Identity> {
    Ok(match g.trusted {
        Some(_) => node::stored_identity(&g.state_dir())?,
        None => Identity::generate()?,
    })
}

/// A survey over `--transport` and `--discovery`, proving `identity`; and that transport, its connections
/// reused: the catalogues and every file of the run share one connection per peer, no handshake per file.
fn survey(g: &Global, identity: &Identity) -> anyhow::Result<(Survey, Arc<dyn Transport>)> {
    let net = g.net()?;
    let transport = plugins::client_transport(g, net.transport_config(), identity.clone())?;
    let transport: Arc<dyn Transport> = Arc::new(transport::Reuse::new(transport));
    let discoveries = plugins::discoveries(g, &net, identity.node_id(), false)?;
    Ok((Survey::new(&net, vec![transport.clone()], discoveries)?, transport))
}

/// The upload side of a `get`: every transport on `--port` (any free port where it is taken), announced
/// as node `identity`; the peers that join are reached over `client`.
async fn swarm(g: &Global, identity: &Identity, client: Arc<dyn Transport>) -> anyhow::Result<Swarm> {
    let net = g.net()?;
    let transports = plugins::serving_transports(g, net.transport_config(), identity)?;
    let discoveries = plugins::discoveries(g, &net, identity.node_id(), true)?;
    let (id, name) = (identity.node_id(), g.node_name()?);
    Ok(Swarm::bind(id, name, g.port, &net, &transports, discoveries, vec![client]).await?)
}

/// How long a `get` keeps serving the other downloaders once it is done.
#[derive(Clone, Copy)]
enum Seed {
    /// This long.
    For(Duration),
    /// Until none has asked anything for [`SEED_QUIET`], at most [`SEED_MOST`].
    UntilQuiet,
}

/// How long no downloader must ask anything before a `get` stops serving them (by default): two of
/// their bitmap refreshes, so that one that still lacks chunks has asked again.
const SEED_QUIET: Duration = Duration::from_secs(1);
/// The longest a `get` serves the others once done (by default), whatever they ask.
const SEED_MOST: Duration = Duration::from_secs(10);

async fn serve(g: &Global, max_upload_rate: Option<u64>) -> anyhow::Result<()> {
    let config = g.serve(max_upload_rate)?;
    let mut builder = Node::builder(config.clone())?;
    let (identity, net) = (builder.identity().clone(), &config.net);
    for transport in plugins::serving_transports(g, net.transport_config(), &identity)? {
        builder = builder.transport(transport);
    }
    for discovery in plugins::discoveries(g, net, identity.node_id(), true)? {
        builder = builder.discovery(discovery);
    }
    output::starting(&config, g.json);
    let node = builder.bind().await.map_err(port_hint)?;
    output::serving(&config, &node, g.json);
    let teller = output::teller(&node, g.json);
    node.on_event(teller).run(shutdown_signal()).await?;
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

async fn get(
    g: &Global,
    files: &[String],
    output: Option<&Path>,
    incomplete: Incomplete,
    force: bool,
    seed: Option<Seed>,
) -> anyhow::Result<()> {
    let dest: PathBuf = output.map_or_else(|| g.downloads(), Path::to_path_buf);
    node::check_writable(&dest)?;
    let identity = identity(g)?;
    let (survey, client) = survey(g, &identity)?;
    let swarm = match seed {
        Some(_) => Some(swarm(g, &identity, client).await?),
        None => None,
    };
    let (offer, requests) = (swarm.as_ref().map(Swarm::offer), swarm.as_ref().map(Swarm::requests));
    // Fused: once stopped, it is pending for good.
    let serving = async {
        match swarm {
            Some(swarm) => swarm.run().await,
            None => std::future::pending().await,
        }
    }
    .fuse();
    tokio::pin!(serving);
    let fetched = fetch(g, files, dest, incomplete, force, survey, offer);
    tokio::pin!(fetched);
    tokio::select! {
        fetched = &mut fetched => fetched?,
        // The downloads go on: passing chunks on is a service to others, not what the user asked for.
        stopped = &mut serving => {
            tracing::warn!("no longer passing chunks on to other downloaders: {stopped}");
            fetched.await?
        }
    }
    let (Some(seed), Some(requests)) = (seed, requests) else { return Ok(()) };
    if matches!(seed, Seed::For(Duration::ZERO)) {
        return Ok(());
    }
    let seeding = async {
        match seed {
            Seed::For(time) => tokio::time::sleep(time).await,
            Seed::UntilQuiet => _ = tokio::time::timeout(SEED_MOST, requests.quiet_for(SEED_QUIET)).await,
        }
    };
    tokio::pin!(seeding);
    // Said only where it waits: a download nobody asked anything of for a second ends with its last chunk.
    if (&mut seeding).now_or_never().is_some() {
        return Ok(());
    }
    if !g.json && std::io::stderr().is_terminal() {
        eprintln!("passing chunks on to the other downloaders a moment longer (Ctrl-C stops)");
    }
    // Done already: whatever stops the serving, the download stands.
    tokio::select! {
        () = seeding => {}
        _ = &mut serving => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

/// Fetches what `files` name into `dest`, offering each file's verified chunks to the swarm as they come
/// where there is one.
async fn fetch(
    g: &Global,
    files: &[String],
    dest: PathBuf,
    incomplete: Incomplete,
    force: bool,
    mut survey: Survey,
    offer: Option<node::Offer>,
) -> anyhow::Result<()> {
    let net = g.net()?;
    let (wanted, peers) = {
        let spinner = Spinner::new(g.json, "looking for peers");
        let peers = survey.peers().await?;
        spinner.say(&format!("asking {} peer(s) what they share", peers.len()));
        (survey.select(files).await?, peers)
    };
    let names = peers.into_iter().map(|p| (p.id(), p.announcement.name)).collect();
    let total = wanted.iter().map(|w| w.entry.size).sum();
    let progress = Mutex::new(Progress::new(g.json, wanted.len(), total, names));
    let copies = Mutex::new((!force).then(|| node::copies(&g.state_dir())));
    let mut run = GetRun { g, dest, net, key: g.state_key(), incomplete, copies, progress, offer };
    // Several files: no questions (their parts are kept).
    if wanted.len() > 1 && run.incomplete == Incomplete::Ask {
        run.incomplete = Incomplete::Keep;
    }
    let (run, several) = (&run, wanted.len() > 1);
    let fetches = wanted.iter().map(|file| async move {
        let fetched = run.one(file).await;
        if let (Err(e), true) = (&fetched, several) {
            let line = format!("error: {}: {}", node::Escaped(&file.to), node::Escaped(&format!("{e:#}")));
            progress::above(|| eprintln!("{line}"));
        }
        fetched
    });
    let fetched = futures_util::stream::iter(fetches).buffer_unordered(FILES_AT_ONCE).collect::<Vec<_>>();
    let results = tokio::select! {
        results = fetched => results,
        _ = tokio::signal::ctrl_c() => return Err(Interrupted.into()),
    };
    lock(&run.progress).finish();
    let mut failed: Vec<anyhow::Error> = results.into_iter().filter_map(Result::err).collect();
    match failed.pop() {
        None => Ok(()),
        // One file: its own error says it all.
        Some(e) if wanted.len() == 1 => Err(e),
        Some(_) => bail!(
            "{} of {} files could not be fetched (run the same get again to resume them)",
            failed.len() + 1,
            wanted.len()
        ),
    }
}

/// A `get` stopped by Ctrl-C: what it verified is kept, and the same command resumes it.
#[derive(Debug)]
pub(crate) struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted; run the same command to resume")
    }
}

impl std::error::Error for Interrupted {}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the files of one `get` share.
struct GetRun<'a> {
    g: &'a Global,
    dest: PathBuf,
    net: node::NetConfig,
    key: node::StateKey,
    incomplete: Incomplete,
    /// What the destination holds already (`None` with --force).
    copies: Mutex<Option<node::Copies>>,
    progress: Mutex<Progress>,
    /// Where the verified chunks are offered to other downloaders (`None` with --no-upload).
    offer: Option<node::Offer>,
}

impl GetRun<'_> {
    /// Fetches one file into its place below the destination, unless it is already there.
    async fn one(&self, file: &node::Wanted) -> anyhow::Result<()> {
        // Folders as the dictionary gives them (safe components), each made a valid name on this system.
        let mut folders: Vec<&str> = file.to.split('/').collect();
        let name = folders.pop().unwrap_or_default();
        let dir = folders.iter().fold(self.dest.clone(), |dir, folder| dir.join(node::safe_file_name(folder)));
        let (id, entry) = (file.id, &file.entry);
        let mut mine = FileProgress::new(id, &entry.name, entry.size);
        // Hashing what is there already is file work: off the async threads' hands.
        let found = tokio::task::block_in_place(|| {
            lock(&self.copies).as_mut().and_then(|c| c.find(&dir, id, name, entry.size))
        });
        if let Some(copy) = found {
            lock(&self.progress).already_have(&mine, &copy);
            return Ok(());
        }
        if file.sources.is_empty() {
            bail!("the peers hosting '{}' do not serve --transport {}", entry.name, self.g.transport);
        }
        let on_event = |e: &node::DownloadEvent| lock(&self.progress).on(&mut mine, e);
        let offer = self.offer.as_ref();
        let path = node::download(id, &file.sources, &dir, self.net.timeout, &self.key, offer, on_event).await;
        match &path {
            Ok(path) => lock(&self.progress).done(&mine, path),
            Err(NodeError::Incomplete { part, .. }) if progress::above(|| decide(self.incomplete, part)) => {
                node::discard_part(part)?;
                lock(&self.progress).note(&format!("deleted {}", part.display()));
            }
            Err(_) => {}
        }
        path?;
        Ok(())
    }
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
