//! One function per subcommand: parse, call the node crate's client or node, render.

use std::cell::RefCell;
use std::io::{ErrorKind, IsTerminal};
use std::path::{Path, PathBuf};
use std::time::Duration;

use node::{Client, FetchError, FetchEvent, FetchOptions, Identity, ListError, Node, NodeError, PeersError, Seed};
use transport::TransportError;

use crate::cli::{self, Cli, Command, Global};
use crate::progress::{self, FileProgress, Progress};
use crate::terminal::{self, Spinner};
use crate::words::known_names;
use crate::{output, plugins};

/// Runs the parsed command; errors get what to do about them in this command line's terms.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    command(&cli).await.map_err(hint)
}

async fn command(cli: &Cli) -> anyhow::Result<()> {
    let g = &cli.global;
    match &cli.command {
        Command::Serve { max_upload_rate, accept, pages } => serve(g, *max_upload_rate, *accept, pages).await,
        Command::Send { paths, to, text } => crate::sending::send(g, paths, to, text.as_deref()).await,
        Command::Pair { code } => crate::pairing::pair(g, code.as_deref()).await,
        Command::Id => {
            let identity = node::StateDir::open(&g.state_dir())?.identity()?;
            output::id(&g.node_name()?, identity.node_id(), &g.state_dir(), g.json);
            Ok(())
        }
        Command::Peers => {
            let client = client(g, Role::Ask)?;
            let spinner = Spinner::new(g.json, "looking for peers");
            let peers = client.peers().await?;
            drop(spinner);
            output::peers(&peers, &known_names(&peers, &g.trust_list()), g.json, g.trusted.as_ref());
            Ok(())
        }
        Command::Ls { pattern, tree } => {
            let client = client(g, Role::Ask)?;
            let spinner = Spinner::new(g.json, "looking for peers");
            let peers = client.peers().await?;
            spinner.say(&format!("asking {} peer(s) what they share", peers.len()));
            let listing = client.list(pattern.as_slice()).await?;
            drop(spinner);
            let names = known_names(&listing.peers, &g.trust_list());
            output::files(&listing.dictionary, &names, g.json, listing.selected.as_ref(), *tree);
            Ok(())
        }
        Command::Get {
            files,
            output,
            delete_incomplete,
            keep_incomplete,
            force,
            seed_for,
            no_upload,
            no_space_check,
        } => {
            let incomplete = match (delete_incomplete, keep_incomplete) {
                (true, _) => Incomplete::Delete,
                (_, true) => Incomplete::Keep,
                _ => Incomplete::Ask,
            };
            let seed = seed_for.map_or(Seed::UntilQuiet, |secs| Seed::For(Duration::from_secs(secs)));
            let options = FetchOptions::default()
                .force(*force)
                .delete_incomplete(incomplete == Incomplete::Delete)
                .upload(!no_upload)
                .seed(seed)
                .space_check(!no_space_check);
            let dest: PathBuf = output.as_ref().map_or_else(|| g.downloads(), PathBuf::clone);
            get(g, files, dest, options, incomplete).await
        }
        Command::Completions { shell } => {
            // Written whole at the end: clap_complete panics where stdout fails (`| head`); we return it.
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut cli::command(), "p2pnode", &mut script);
            Ok(std::io::Write::write_all(&mut std::io::stdout(), &script)?)
        }
        Command::Man => Ok(crate::manual::render(cli::command(), &mut std::io::stdout())?),
        Command::Help { command } => {
            let mut cli = cli::command();
            cli.build();
            let help = match command.as_deref().map(|name| cli.find_subcommand_mut(name)) {
                None => cli.render_long_help(),
                Some(Some(sub)) => sub.render_long_help(),
                Some(None) => anyhow::bail!(
                    "help: no command {:?}; the commands: {}",
                    command.as_deref().unwrap_or_default(),
                    names(&cli)
                ),
            };
            say!("{help}");
            Ok(())
        }
    }
}

/// What a client is for: it decides the identity the client proves and whether it listens.
#[derive(Clone, Copy)]
pub(crate) enum Role<'a> {
    /// `peers` and `ls`: they only ask.
    Ask,
    /// A `get`, fetching with these options.
    Get(&'a FetchOptions),
    /// A `send`: it proves the user's node and serves its offer on a port of its own.
    Send,
}

/// The identity a client proves: the user's node for a `send`, or with a trust list (trusting peers
/// accept only the ids they know); else one made for this run.
fn identity(g: &Global, role: Role) -> anyhow::Result<Identity> {
    Ok(match (role, &g.trusted) {
        (Role::Send, _) | (_, Some(_)) => node::StateDir::open(&g.state_dir())?.identity()?,
        _ => Identity::generate()?,
    })
}

/// A client over `--transport` and `--discovery`, for `role`: a `get` with its state folder, and where it
/// uploads (with an identity of its own: no trust list), listening on every transport on `--port`,
/// announced as `--name` (its discovery then hears announcements); a `send` named `--name`, with
/// transports to serve its offer on.
pub(crate) fn client(g: &Global, role: Role) -> anyhow::Result<Client> {
    let (net, identity) = (g.net()?, identity(g, role)?);
    let (id, transport) = (identity.node_id(), plugins::transport_config(g, &net)?);
    let mut config = node::ClientConfig::default().net(net.clone()).private_group(g.group_key.is_some());
    match role {
        Role::Get(_) => config = config.name(g.node_name()?).port(g.port).state_dir(g.state_dir()),
        Role::Send => config = config.name(g.node_name()?),
        Role::Ask => {}
    }
    // A get that proves the user's own id (it has a trust list) passes nothing on: its announcement would
    // carry the id of the user's serve, and peers keep one claim per id and address.
    let uploads = matches!(role, Role::Get(options) if options.uploads()) && g.trusted.is_none();
    let mut builder = Client::builder(config);
    if uploads || matches!(role, Role::Send) {
        builder = builder.upload(id, plugins::serving_transports(g, transport.clone(), &identity)?);
    }
    builder = builder.transport(plugins::client_transport(g, transport.clone(), identity)?);
    // Without a trust list the client is a stranger to everyone; a peer that serves only the ids it trusts
    // is asked again as the user, whose node it may have paired with (an identity never made here).
    if g.trusted.is_none()
        && !matches!(role, Role::Send)
        && let Some(user) = node::StateDir::existing_identity(&g.state_dir())
    {
        builder = builder.prove_with(plugins::client_transport(g, transport, user)?);
    }
    for discovery in plugins::discoveries(g, &net, id, uploads)? {
        builder = builder.discovery(discovery);
    }
    Ok(builder.build()?)
}

async fn serve(
    g: &Global,
    max_upload_rate: Option<u64>,
    accept: cli::AcceptArg,
    pages: &cli::PagesArgs,
) -> anyhow::Result<()> {
    crate::pages::check(g, pages)?;
    let config = g.serve(max_upload_rate, accept)?;
    let mut builder = Node::builder(config.clone())?;
    if let (node::Accept::Ask, Some(ask)) = (config.accept, crate::sending::asker()) {
        builder = builder.ask(ask);
    }
    let (identity, net) = (builder.identity().clone(), &config.net);
    let identity = &identity;
    for transport in plugins::serving_transports(g, plugins::transport_config(g, net)?, identity)? {
        builder = builder.transport(transport);
    }
    for discovery in plugins::discoveries(g, net, identity.node_id(), true)? {
        builder = builder.discovery(discovery);
    }
    output::starting(&config, g.json);
    let node = builder.bind().await?;
    let started = crate::pages::start(g, pages, &config, (&node, identity)).await?;
    output::serving(&config, &node, started.page.as_deref(), g.json);
    crate::pages::tell_guests(&started, g.json);
    let teller = output::teller(&node, &config, started.page.clone(), (g.json, g.verbose > 0));
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

/// Fetches what `files` name into `dest`, drawing the progress; Ctrl-C cancels (what is verified is
/// kept) or, once done, ends the passing on of chunks.
async fn get(
    g: &Global,
    files: &[String],
    dest: PathBuf,
    options: FetchOptions,
    incomplete: Incomplete,
) -> anyhow::Result<()> {
    let client = client(g, Role::Get(&options))?;
    let mut spinner = Some(Spinner::new(g.json, "looking for peers"));
    let shown = RefCell::new(Shown { g, incomplete, progress: None, files: Vec::new(), places: Vec::new() });
    let fetch = client.fetch(files.to_vec(), dest, options);
    let fetching = fetch.drive(async { _ = tokio::signal::ctrl_c().await }, |event| {
        if let FetchEvent::Planned { .. } = event {
            spinner.take();
        }
        shown.borrow_mut().on(event)
    });
    // The bar is drawn again while nothing arrives too: its rate and ETA fall as bytes stop.
    let ticking = async {
        let mut every = tokio::time::interval(progress::TICK);
        loop {
            every.tick().await;
            shown.borrow_mut().tick();
        }
    };
    let fetched = tokio::select! {
        fetched = fetching => fetched,
        () = ticking => unreachable!("the bar ticks until the fetch ends"),
    };
    let mut shown = shown.into_inner();
    if let Some(progress) = &mut shown.progress {
        progress.finish();
    }
    fetched.map_err(|e| match e {
        FetchError::Cancelled => Interrupted.into(),
        e => e.into(),
    })
}

/// What a `get` shows of its fetch.
struct Shown<'a> {
    g: &'a Global,
    incomplete: Incomplete,
    progress: Option<Progress>,
    files: Vec<FileProgress>,
    /// Where each file goes below the destination.
    places: Vec<String>,
}

impl Shown<'_> {
    fn on(&mut self, event: FetchEvent) {
        match event {
            FetchEvent::Planned { files, peers } => {
                let names = known_names(&peers, &self.g.trust_list());
                let total = files.iter().map(|f| f.size).sum();
                self.progress = Some(Progress::new(self.g.json, self.g.verbose > 0, files.len(), total, names));
                self.files = files.iter().map(|f| FileProgress::new(f.id, &f.name, f.size)).collect();
                // Several files: no questions (their parts are kept).
                if files.len() > 1 && self.incomplete == Incomplete::Ask {
                    self.incomplete = Incomplete::Keep;
                }
                self.places = files.into_iter().map(|f| f.to).collect();
            }
            FetchEvent::Seeding => {
                if !self.g.json && std::io::stderr().is_terminal() {
                    eprintln!("passing chunks on to the other downloaders a moment longer (Ctrl-C stops)");
                }
            }
            event => self.on_file(event),
        }
    }

    /// Draws the bar again (its rate falls while nothing arrives).
    fn tick(&mut self) {
        if let (Some(progress), Some(file)) = (&mut self.progress, self.files.first()) {
            progress.tick(file);
        }
    }

    fn on_file(&mut self, event: FetchEvent) {
        let (Some(progress), files) = (&mut self.progress, &mut self.files) else { return };
        match event {
            FetchEvent::Download { file, event } => progress.on(&mut files[file], &event),
            FetchEvent::AlreadyHave { file, path } => progress.already_have(&files[file], &path),
            FetchEvent::Done { file, path } => progress.done(&files[file], &path),
            FetchEvent::Failed { file, error, part } => {
                if files.len() > 1 {
                    let line = format!("error: {}: {}", node::Escaped(&self.places[file]), node::Escaped(&error));
                    terminal::above(|| eprintln!("{line}"));
                }
                if let Some(part) = part
                    && terminal::above(|| ask_delete(self.incomplete, &part))
                {
                    match node::discard_part(&part) {
                        Ok(()) => progress.note(&format!("deleted {}", part.display())),
                        Err(e) => progress.note(&format!("{} not deleted: {e}", part.display())),
                    }
                }
            }
            _ => {}
        }
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

/// The node crate's errors with what to do about them on this command line (its messages name no flag).
fn hint(e: anyhow::Error) -> anyhow::Error {
    match what_to_do(&e) {
        Some(what_to_do) => anyhow::anyhow!("{e} ({what_to_do})"),
        None => e,
    }
}

/// What to do about `e`, in flags, where there is something to say.
fn what_to_do(e: &anyhow::Error) -> Option<&'static str> {
    if let Some(e) = e.downcast_ref::<NodeError>() {
        return node_hint(e);
    }
    if let Some(e) = e.downcast_ref::<FetchError>() {
        return match e {
            FetchError::Files { .. } => Some("run the same get again to resume them"),
            FetchError::Destination(e) | FetchError::File(e) => node_hint(e),
            FetchError::List(e) => list_hint(e),
            _ => None,
        };
    }
    if let Some(e) = e.downcast_ref::<ListError>() {
        return list_hint(e);
    }
    if let Some(e) = e.downcast_ref::<node::SendError>() {
        return match e {
            node::SendError::NotTrusted { .. } => Some("run p2pnode pair with them first"),
            node::SendError::Unproven { .. } => Some("pass --transport tls or quic"),
            node::SendError::Failed { .. } | node::SendError::Silent { .. } => {
                Some("run the same send again: what they have is not sent twice")
            }
            _ => None,
        };
    }
    e.downcast_ref::<PeersError>().and_then(peers_hint)
}

fn node_hint(e: &NodeError) -> Option<&'static str> {
    Some(match e {
        NodeError::MissingFolder(_) => "create it with mkdir -p, or pass another --dir",
        NodeError::NotAFolder(_) => "pass the folder to share with --dir",
        NodeError::NotWritable { .. } => "choose another with --downloads or -o",
        NodeError::AlreadyServing { .. } => "stop it, or give this one its own --state-dir",
        NodeError::PartWrite(_) => "make room and run the same get again to resume",
        NodeError::SourcesGone { .. } => "run the same command when a host is back",
        NodeError::NoSpace { .. } => "make room there, choose another folder with -o, or pass --no-space-check",
        NodeError::Transport(TransportError::Bind { source, .. }) if source.kind() == ErrorKind::AddrInUse => {
            "another p2pnode or program listens there; pass --port 0 for any free port"
        }
        _ => return None,
    })
}

fn list_hint(e: &ListError) -> Option<&'static str> {
    match e {
        ListError::Peers(e) => peers_hint(e),
        _ => None,
    }
}

fn peers_hint(e: &PeersError) -> Option<&'static str> {
    match e {
        PeersError::NoneAnswered(_) => {
            Some("is `p2pnode serve` running on the LAN? for other subnets or VPNs use --peer HOST:PORT")
        }
        _ => None,
    }
}

/// Whether to delete the verified part: as the user answers on a terminal (the original tool's prompt).
/// Without a terminal, or with --keep-incomplete, the part is kept; --delete-incomplete deleted it already.
fn ask_delete(incomplete: Incomplete, part: &Path) -> bool {
    match incomplete {
        Incomplete::Keep | Incomplete::Delete => false,
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

/// The names of the commands, comma-separated.
fn names(cli: &clap::Command) -> String {
    cli.get_subcommands().map(|s| s.get_name()).collect::<Vec<_>>().join(", ")
}
