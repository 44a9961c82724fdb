//! The command line (README "Command line"), parsed by clap.

use std::collections::HashSet;
use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::builder::PossibleValuesParser;
use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use node::{NetConfig, ServeConfig};

/// Share files with everyone on your LAN: peers find each other by UDP broadcast and mDNS and download
/// each file chunk by chunk from every peer that has it, verifying every byte.
#[derive(Debug, Parser)]
#[command(name = "p2pnode", version, arg_required_else_help = true, disable_help_subcommand = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The options of [`Global`] (by id), grouped by what they are about.
const FOLDERS: &[&str] = &["dir", "downloads", "state_dir"];
const NODE: &[&str] = &["name", "port", "announce_interval", "tcp_congestion"];
const FETCHING: &[&str] = &["transport", "tcp_congestion"];
const FINDING: &[&str] =
    &["discovery", "discovery_port", "peers", "broadcast", "timeout", "group", "group_file", "trust", "trust_file"];
const OUTPUT: &[&str] = &["json", "log_file", "verbose", "quiet"];

/// The options each subcommand takes: its help lists these alone. The others are still accepted (an
/// option may come before or after the subcommand) and change nothing there.
const TAKES: [(&str, &[&[&str]]); 8] = [
    ("serve", &[FOLDERS, NODE, FINDING, OUTPUT]),
    ("send", &[FETCHING, &["state_dir", "name"], FINDING, OUTPUT]),
    ("peers", &[FINDING, OUTPUT]),
    ("ls", &[FETCHING, FINDING, OUTPUT]),
    ("get", &[FETCHING, FOLDERS, NODE, FINDING, OUTPUT]),
    ("completions", &[]),
    ("man", &[]),
    ("help", &[]),
];

/// The command line as clap knows it, each subcommand's help cut to the options it takes ([`TAKES`]).
pub(crate) fn command() -> clap::Command {
    let mut cli = Cli::command();
    let global: Vec<clap::Arg> = cli.get_arguments().filter(|a| a.is_global_set()).cloned().collect();
    for (name, takes) in TAKES {
        cli = cli.mut_subcommand(name, |mut sub| {
            // A hidden copy in the subcommand keeps clap from giving it the shown global one.
            let taken = |arg: &&clap::Arg| takes.iter().any(|group| group.contains(&arg.get_id().as_str()));
            for arg in global.iter().filter(|a| !taken(a)) {
                sub = sub.arg(arg.clone().hide(true));
            }
            sub
        });
    }
    cli
}

/// Parses the process's arguments.
pub(crate) fn parse() -> Result<Cli, clap::Error> {
    let mut cmd = command();
    cmd.build();
    let args = own_options_after_subcommand(&cmd, std::env::args_os().collect());
    Cli::from_arg_matches(&cmd.try_get_matches_from_mut(args)?)
}

/// `args` with the options of the subcommand typed before it moved after it, so that every option may
/// come before or after the subcommand (clap takes a subcommand's own options after it alone). `cmd` is
/// built (it knows which options take values).
fn own_options_after_subcommand(cmd: &clap::Command, args: Vec<OsString>) -> Vec<OsString> {
    let takes_value = |arg: &clap::Arg| arg.get_num_args().is_some_and(|n| n.takes_values());
    let named = |arg: &clap::Arg, token: &str| {
        let name = token.split('=').next().unwrap_or_default();
        arg.get_long().is_some_and(|l| name.strip_prefix("--") == Some(l))
            || arg.get_short().is_some_and(|c| token.len() == 2 && token.strip_prefix('-') == Some(&c.to_string()))
    };
    let (mut kept, mut moved): (Vec<OsString>, Vec<(String, Vec<OsString>)>) = (Vec::new(), Vec::new());
    let mut rest = args.into_iter();
    kept.extend(rest.next());
    while let Some(arg) = rest.next() {
        let token = arg.to_string_lossy().into_owned();
        if let Some(sub) = cmd.find_subcommand(&token) {
            let is_own = |name: &str| sub.get_arguments().any(|a| !a.is_global_set() && named(a, name));
            let (own, others): (Vec<_>, Vec<_>) = moved.into_iter().partition(|(name, _)| is_own(name));
            kept.extend(others.into_iter().flat_map(|(_, words)| words));
            kept.push(arg);
            kept.extend(own.into_iter().flat_map(|(_, words)| words));
            kept.extend(rest);
            return kept;
        }
        if token == "--" || !token.starts_with('-') {
            kept.push(arg);
            continue;
        }
        let global = cmd.get_arguments().find(|a| named(a, &token));
        let own =
            cmd.get_subcommands().flat_map(|s| s.get_arguments()).find(|a| !a.is_global_set() && named(a, &token));
        let Some(option) = global.or(own) else {
            kept.push(arg);
            continue;
        };
        let mut words = vec![arg];
        if takes_value(option) && !token.contains('=') {
            words.extend(rest.next());
        }
        match global {
            Some(_) => kept.extend(words),
            None => moved.push((token, words)),
        }
    }
    kept.extend(moved.into_iter().flat_map(|(_, words)| words));
    kept
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Share --dir and --downloads, announce this node, answer requests until Ctrl-C.
    #[command(next_help_heading = "Serve options")]
    Serve {
        /// Cap on upload bandwidth over all peers, bytes per second; K, M and G multiply by 1024.
        #[arg(long, value_name = "RATE", value_parser = parse_rate)]
        max_upload_rate: Option<u64>,
        /// Which offers of files and texts (`p2pnode send`) to take into --downloads. ask: from trusted
        /// peers (paired, or in the trust list) at once, from others as the person at this terminal
        /// answers (without a terminal, none from others); trusted: from trusted peers alone; none: no
        /// offers at all.
        #[arg(long, value_enum, default_value = "ask", value_name = "WHOM")]
        accept: AcceptArg,
        #[command(flatten)]
        pages: PagesArgs,
    },
    /// Offer files and folders, or a text, to one peer's serve, which fetches them into its downloads
    /// folder: at once where it trusts this node (`pair` first), else as its person answers. Waits until
    /// the peer has everything (over tls or quic: only those prove who fetches).
    #[command(next_help_heading = "Send options")]
    Send {
        /// Files and folders to send (a folder goes whole, under its own name, but for hidden files and links).
        #[arg(value_name = "PATH", help_heading = "Arguments", required_unless_present = "text")]
        paths: Vec<PathBuf>,
        /// Who to send to: a name from `pair`, a node's name, or an id prefix (4 hex digits or more).
        #[arg(long, value_name = "PEER")]
        to: String,
        /// A message to send, with the files or alone (up to 64 KiB).
        #[arg(long, value_name = "TEXT")]
        text: Option<String>,
    },
    /// Print this node's name, id and fingerprint (what to read to someone who wants to recognise it).
    Id,
    /// Pair with another person's node by a short code: without CODE, show one and wait for it; with
    /// CODE, join the node that shows it. Each side then trusts the other under the name it gave.
    Pair {
        /// The code the other side shows, as 7-tiger-umbrella.
        #[arg(help_heading = "Arguments")]
        code: Option<String>,
    },
    /// Query the LAN and print the peers (name, id, address, files).
    Peers,
    /// Print the files on the LAN: path, size, id, hosting peers.
    #[command(next_help_heading = "Ls options")]
    Ls {
        /// Only these: a file's path or name, a folder, or a glob (`*.jpg`, `photos/*`, `**/*.jpg`).
        #[arg(help_heading = "Arguments")]
        pattern: Option<String>,
        /// Show files by path under their folders.
        #[arg(long)]
        tree: bool,
    },
    /// Download files or folders into --downloads, as `cp -r` would copy them.
    #[command(next_help_heading = "Get options")]
    Get {
        /// What to fetch: a file's path, name, full id or id prefix (8 hex digits or more); a folder's path
        /// (fetched whole, below a folder of its name); or a glob matched as a shell does from the top of
        /// the shares (`*` within a folder, `**` any depth: `*.jpg`, `photos/*`, `**/*.jpg`), each match
        /// placed by its path below the glob's folders (a folder matched is fetched whole).
        #[arg(required = true, value_name = "FILE", help_heading = "Arguments")]
        files: Vec<String>,
        /// Download into this folder instead of --downloads.
        #[arg(short = 'o', long = "output", value_name = "DIR")]
        output: Option<PathBuf>,
        /// If the download cannot complete, delete the verified part instead of asking.
        #[arg(long, conflicts_with = "keep_incomplete")]
        delete_incomplete: bool,
        /// If the download cannot complete, keep the verified part for a later resume, without asking.
        #[arg(long)]
        keep_incomplete: bool,
        /// Download even if the destination already holds the file (the copy gets a free name).
        #[arg(long)]
        force: bool,
        /// Once done, keep serving the other downloaders for SECS seconds (0: not at all) [default: until
        /// none has asked anything for a second, at most 10 s].
        #[arg(long, value_name = "SECS", conflicts_with = "no_upload")]
        seed_for: Option<u64>,
        /// Serve nothing to other downloaders: no transfer port, no announcement.
        #[arg(long)]
        no_upload: bool,
        /// Fetch even where the destination has less free space than the files need (--force does not
        /// skip this check).
        #[arg(long)]
        no_space_check: bool,
    },
    /// Print a shell completion script (README "Command line" says where each shell looks for it).
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `p2pnode man > ~/.local/share/man/man1/p2pnode.1`.
    Man,
    /// Print the help of p2pnode, or of one of its commands.
    Help {
        /// The command.
        command: Option<String>,
    },
}

/// `serve`'s web page and guest page.
#[derive(Debug, Args)]
pub(crate) struct PagesArgs {
    /// Where the web page on this machine listens: a loopback address (127.0.0.1:PORT; port 0 for
    /// any free one), or off. By default where it listened last time (first 127.0.0.1:5080, or any
    /// free port), kept with its key in --state-dir so that a bookmark keeps working.
    #[arg(long, value_name = "ADDR|off", value_parser = parse_web, env = "P2PNODE_WEB")]
    pub(crate) web: Option<WebArg>,
    /// Also serve a page for guests on the LAN (phones, machines without p2pnode), opened by the PIN
    /// shown here: download (this node's complete shared files) or upload (files into --guest-inbox
    /// too). Plain HTTP; not with --group or --trust.
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "download", value_name = "WHAT")]
    pub(crate) guests: Option<GuestsArg>,
    /// Where the guest page listens.
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:5081")]
    pub(crate) guest_address: SocketAddr,
    /// Where guests' uploads go (never shared) [default: the Downloads folder's p2pnode-guests].
    #[arg(long, value_name = "DIR")]
    pub(crate) guest_inbox: Option<PathBuf>,
    /// The largest file a guest may upload; K, M and G multiply by 1024.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "4G")]
    pub(crate) guest_max_upload: u64,
    /// What guests may upload in all while this serve runs.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "16G")]
    pub(crate) guest_max_total: u64,
}

/// Where `serve`'s web page listens.
#[derive(Clone, Copy, Debug)]
pub(crate) enum WebArg {
    Off,
    At(SocketAddr),
}

fn parse_web(s: &str) -> Result<WebArg, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(WebArg::Off);
    }
    match s.parse::<SocketAddr>() {
        Ok(addr) if addr.ip().is_loopback() => Ok(WebArg::At(addr)),
        Ok(addr) => Err(format!("{addr} is not a loopback address: the page listens on 127.0.0.1 or ::1 only")),
        Err(_) => Err(format!("'{s}' is not an address such as 127.0.0.1:5080, or off")),
    }
}

/// What guests may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum GuestsArg {
    Download,
    Upload,
}

/// Which offers `serve` takes.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum AcceptArg {
    Trusted,
    Ask,
    None,
}

impl From<AcceptArg> for node::Accept {
    fn from(accept: AcceptArg) -> Self {
        match accept {
            AcceptArg::Trusted => node::Accept::Trusted,
            AcceptArg::Ask => node::Accept::Ask,
            AcceptArg::None => node::Accept::None,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct Global {
    /// Transport of ls, peers, get and send: tls (encrypted, authenticated), tcp (plain), or quic (lossy links);
    /// serve listens on all three.
    #[arg(long, global = true, default_value = "tls", value_name = "NAME",
        value_parser = PossibleValuesParser::new(transport::builtin::NAMES))]
    pub(crate) transport: String,
    /// How to find peers, comma-separated: broadcast, mdns [default: broadcast,mdns; broadcast alone with
    /// --broadcast or a non-default --discovery-port].
    #[arg(long, global = true, value_name = "NAMES", value_delimiter = ',',
        value_parser = PossibleValuesParser::new(DISCOVERIES))]
    pub(crate) discovery: Option<Vec<String>>,
    /// The folder serve shares [default: ~/Public, where it exists].
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
    /// Where get and serve put downloads (serve shares them too) [default: ~/Downloads/p2pnode;
    /// DIR/P2PDownloadFolder where there is no home folder].
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) downloads: Option<PathBuf>,
    /// Where the node keeps its identity, trust list and hash cache; one serve per state folder
    /// [default: ~/.local/state/p2pnode (the platform's state folder); DIR/.p2pnode where one of an
    /// earlier version exists, or where there is no home folder].
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) state_dir: Option<PathBuf>,
    /// Name shown to other peers [default: the host name].
    #[arg(long, global = true, value_parser = parse_name)]
    pub(crate) name: Option<String>,
    /// Transfer port to listen on (0: any free port).
    #[arg(long, global = true, default_value_t = 5001)]
    pub(crate) port: u16,
    /// UDP port for discovery, the same on every peer of the LAN.
    #[arg(long, global = true, default_value_t = discovery::udp::DEFAULT_PORT)]
    pub(crate) discovery_port: u16,
    /// Seconds between announcements; peers drop a node after three missed ones.
    #[arg(long, global = true, default_value_t = 5, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) announce_interval: u64,
    /// A peer beyond broadcast reach (VPN, other subnet), as HOST:PORT of its discovery port; repeatable.
    #[arg(long = "peer", global = true, value_name = "HOST:PORT")]
    pub(crate) peers: Vec<String>,
    /// Broadcast to this address instead of every interface's broadcast address; repeatable.
    #[arg(long, global = true, value_name = "IPV4")]
    pub(crate) broadcast: Vec<Ipv4Addr>,
    /// TCP congestion control (Linux), such as bbr for lossy links [default: the system's].
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) tcp_congestion: Option<String>,
    /// A private group: see and serve only nodes with this secret (sealed discovery, members-only
    /// transfers over tls or quic). Prefer P2PNODE_GROUP or --group-file: a command line shows in `ps`.
    #[arg(long, global = true, value_name = "SECRET", env = "P2PNODE_GROUP", hide_env_values = true)]
    pub(crate) group: Option<String>,
    /// The group secret, read from this file (its first line).
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "group")]
    pub(crate) group_file: Option<PathBuf>,
    /// The key derived from the group secret (at start, once).
    #[arg(skip)]
    pub(crate) group_key: Option<node::GroupKey>,
    /// Accept only this node (its full id, as `peers --json` and `serve` show it, or its name in the
    /// state folder's trust list), proven by its certificate; repeatable. ls, peers and get then prove
    /// this node's own id (from --state-dir).
    #[arg(long = "trust", global = true, value_name = "ID|NAME")]
    pub(crate) trust: Vec<String>,
    /// Accept only the nodes listed in this file: one full id per line (`#` starts a comment).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) trust_file: Option<PathBuf>,
    /// The trusted ids of --trust and --trust-file together; `None`: everyone is.
    #[arg(skip)]
    pub(crate) trusted: Option<HashSet<node::NodeId>>,
    /// Seconds to wait for peers to appear, connect and answer.
    #[arg(long, global = true, default_value_t = 10.0, value_name = "SECS", allow_negative_numbers = true,
        value_parser = parse_timeout)]
    pub(crate) timeout: f64,
    /// Machine-readable output: one JSON object per line.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Also write a detailed log (every chunk served or downloaded) to this file.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) log_file: Option<PathBuf>,
    /// More log output on stderr (repeatable).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Less log output on stderr (repeatable).
    #[arg(short, long, global = true, action = ArgAction::Count, conflicts_with = "verbose")]
    pub(crate) quiet: u8,
}

/// The shortest group secret that gets no warning: guessing is offline once a sealed datagram is heard,
/// and each guess costs the memory-hard derivation alone.
const SAFE_GROUP_SECRET: usize = 12;

/// Seconds above 0, at most a day.
fn parse_timeout(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs <= 86_400.0 => Ok(secs),
        _ => Err("a number of seconds above 0 and at most 86400".into()),
    }
}

/// A name other peers can show: 1 to [`node::MAX_NODE_NAME`] bytes.
fn parse_name(s: &str) -> Result<String, String> {
    match s.len() {
        0 => Err("a name cannot be empty".into()),
        n if n > node::MAX_NODE_NAME => Err(format!("at most {} bytes, got {n}", node::MAX_NODE_NAME)),
        _ => Ok(s.to_string()),
    }
}

/// The discoveries that may be named.
const DISCOVERIES: [&str; 2] = ["broadcast", "mdns"];

/// `20M` -> 20 MiB/s; a bare number is bytes per second.
fn parse_rate(s: &str) -> Result<u64, String> {
    parse_amount(s, "a rate such as 500K or 20M")
}

fn parse_size(s: &str) -> Result<u64, String> {
    parse_amount(s, "a size such as 500M or 4G")
}

/// A number of bytes with an optional K, M or G (times 1024), described as `such` in errors.
fn parse_amount(s: &str, such: &str) -> Result<u64, String> {
    let (digits, unit) = match s.trim().char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => s.trim().split_at(i),
        None => (s.trim(), ""),
    };
    let shift = match unit.to_ascii_uppercase().trim_end_matches("/S").trim_end_matches('B').trim_end_matches('I') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        _ => return Err(format!("unknown unit in '{s}' (use K, M or G)")),
    };
    let value: f64 = digits.parse().map_err(|_| format!("'{s}' is not {such}"))?;
    if !(value.is_finite() && value > 0.0) {
        return Err(format!("'{s}' must be above 0"));
    }
    Ok((value * (1u64 << shift) as f64) as u64)
}

/// A congestion control the kernel offers (checked now, rather than at the first connection).
impl Global {
    /// The network settings, validated.
    pub(crate) fn net(&self) -> anyhow::Result<NetConfig> {
        let net = NetConfig::default().announce_interval(Duration::from_secs(self.announce_interval));
        Ok(net.timeout(Duration::from_secs_f64(self.timeout)))
    }

    /// The discovery addresses of `--peer`s.
    pub(crate) fn static_peers(&self) -> anyhow::Result<Vec<SocketAddr>> {
        self.peers.iter().map(|p| self.resolve_peer(p)).collect()
    }

    /// `HOST:PORT`, or `HOST` alone for the discovery port; the first IPv4 address of HOST.
    fn resolve_peer(&self, peer: &str) -> anyhow::Result<SocketAddr> {
        let with_port = if peer.contains(':') { peer.to_string() } else { format!("{peer}:{}", self.discovery_port) };
        let addrs = with_port.to_socket_addrs().with_context(|| format!("--peer {peer}: cannot resolve"))?;
        let mut addrs = addrs.filter(SocketAddr::is_ipv4);
        addrs.next().with_context(|| format!("--peer {peer}: no IPv4 address"))
    }

    /// Settles the folders the command line left out, once, as absolute paths (see their options): the
    /// shared folder (`serving`: ~/Public, or an error saying what to do), the state folder (an earlier
    /// version's `DIR/.p2pnode` where one exists, said in a note) and the downloads folder. None of them
    /// lands in the current folder unless there is no home folder (a container's).
    pub(crate) fn settle_folders(&mut self, serving: bool) -> anyhow::Result<()> {
        let home = home();
        if serving && self.dir.is_none() {
            let public = home.as_ref().map(|home| dirs::public_dir().unwrap_or_else(|| home.join("Public")));
            match public {
                Some(public) if public.is_dir() => self.dir = Some(public),
                Some(public) => {
                    bail!("nothing to share: pass --dir FOLDER, or make {} (shared by default)", public.display())
                }
                None => bail!("nothing to share: pass --dir FOLDER"),
            }
        }
        let base = self.dir.clone().unwrap_or_else(|| PathBuf::from("."));
        let earlier = base.join(".p2pnode");
        let user_state = || Some(dirs::state_dir().or_else(dirs::data_local_dir)?.join("p2pnode"));
        let state = match (self.state_dir.take(), home.as_ref().and_then(|_| user_state())) {
            (Some(given), _) => given,
            (None, Some(user)) if earlier.is_dir() => {
                let earlier = absolute(&earlier);
                eprintln!(
                    "note: state in {}, an earlier version's; new ones go to {}",
                    earlier.display(),
                    user.display()
                );
                earlier
            }
            (None, Some(user)) => user,
            (None, None) => earlier,
        };
        let downloads = match (self.downloads.take(), &home) {
            (Some(given), _) => given,
            (None, Some(home)) => dirs::download_dir().unwrap_or_else(|| home.join("Downloads")).join("p2pnode"),
            (None, None) => base.join("P2PDownloadFolder"),
        };
        (self.state_dir, self.downloads) = (Some(absolute(&state)), Some(absolute(&downloads)));
        self.dir = self.dir.as_deref().map(absolute);
        Ok(())
    }

    /// Derives the group key ([`node::GroupKey::derive`]) from `--group`, `P2PNODE_GROUP` or
    /// `--group-file`, if one is given.
    pub(crate) fn settle_group(&mut self) -> anyhow::Result<()> {
        let secret = match (&self.group, &self.group_file) {
            (Some(secret), _) => secret.clone(),
            (None, Some(file)) => {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("--group-file {}: cannot read the group secret", file.display()))?;
                text.lines().next().unwrap_or_default().to_string()
            }
            (None, None) => return Ok(()),
        };
        let key = node::GroupKey::derive(&secret).map_err(|e| match e {
            node::GroupSecretError::Empty => {
                anyhow::anyhow!("the group secret is empty: give --group, P2PNODE_GROUP or --group-file a secret")
            }
            e => e.into(),
        })?;
        let length = secret.chars().count();
        if length < SAFE_GROUP_SECRET {
            tracing::warn!(
                "the group secret is only {length} characters long: whoever guesses it joins the group; use \
                 {SAFE_GROUP_SECRET} or more (four random words, say)"
            );
        }
        self.group_key = Some(key);
        Ok(())
    }

    /// Gathers `--trust` and `--trust-file` into the trust list, if either is given.
    pub(crate) fn settle_trust(&mut self) -> anyhow::Result<()> {
        let mut trusted: HashSet<node::NodeId> = HashSet::new();
        // Names are looked up in the state folder's trust list, read once and only for a name.
        let mut known: Option<node::TrustList> = None;
        for given in &self.trust {
            let id = match given.parse::<node::NodeId>() {
                Ok(id) => id,
                Err(_) if node::looks_like_id(given) => {
                    bail!("--trust {given}: give a full id (64 hex digits) or a name")
                }
                Err(_) => {
                    let list = match &known {
                        Some(list) => list,
                        None => known.insert(node::StateDir::open(&self.state_dir())?.trust_list()?),
                    };
                    let Some(id) = list.id_of(given) else {
                        bail!(
                            "--trust {given}: no peer of that name in {}; give its full id",
                            self.state_dir().join(node::TRUST_LIST_FILE).display()
                        );
                    };
                    id
                }
            };
            trusted.insert(id);
        }
        if let Some(file) = &self.trust_file {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("--trust-file {}: cannot read the trusted ids", file.display()))?;
            let list =
                node::TrustList::parse(&text).map_err(|e| anyhow::anyhow!("--trust-file {}: {e}", file.display()))?;
            trusted.extend(list.ids());
        }
        if !trusted.is_empty() || self.trust_file.is_some() {
            self.trusted = Some(trusted);
        }
        Ok(())
    }

    /// The downloads folder ([`Self::settle_folders`] settled it).
    pub(crate) fn downloads(&self) -> PathBuf {
        self.downloads.clone().unwrap_or_default()
    }

    /// The node's state folder ([`Self::settle_folders`] settled it).
    pub(crate) fn state_dir(&self) -> PathBuf {
        self.state_dir.clone().unwrap_or_default()
    }

    /// The state folder's trust list, as pairing wrote it; empty where there is none (read, never made:
    /// `ls` and `peers` create nothing).
    pub(crate) fn trust_list(&self) -> node::TrustList {
        let file = std::fs::read_to_string(self.state_dir().join(node::TRUST_LIST_FILE)).unwrap_or_default();
        node::TrustList::parse(&file).unwrap_or_default()
    }

    /// The shared folder ([`Self::settle_folders`] settled it for serve).
    pub(crate) fn shared_dir(&self) -> PathBuf {
        self.dir.clone().unwrap_or_default()
    }

    /// The name this node announces: `--name`, or the host name.
    pub(crate) fn node_name(&self) -> anyhow::Result<String> {
        let name = self.name.clone().unwrap_or_else(host_name);
        if name.is_empty() || name.len() > node::MAX_NODE_NAME {
            bail!("--name must be 1 to {} bytes long", node::MAX_NODE_NAME);
        }
        Ok(name)
    }

    /// The settings of `serve`.
    pub(crate) fn serve(&self, max_upload_rate: Option<u64>, accept: AcceptArg) -> anyhow::Result<ServeConfig> {
        let config = ServeConfig::new(self.shared_dir()).net(self.net()?).name(self.node_name()?);
        Ok(config
            .downloads(self.downloads())
            .state_dir(self.state_dir())
            .port(self.port)
            .max_upload_rate(max_upload_rate)
            .accept(accept.into()))
    }
}

/// The user's home folder, where there is one: not `/`, a container's stand-in.
pub(crate) fn home() -> Option<PathBuf> {
    dirs::home_dir().filter(|home| home.is_dir() && home.parent().is_some())
}

/// `path` from the root, as people should see where things are (`.` tells nothing in a log).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The host name from the kernel (never resolved: that is what fails on many laptops), cut to fit.
fn host_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let mut name = name.trim().to_string();
    let mut end = name.len().min(node::MAX_NODE_NAME);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.truncate(end);
    if name.is_empty() { "p2pnode".into() } else { name }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moved(args: &[&str]) -> Vec<String> {
        let (args, mut cmd) = (args.iter().map(OsString::from).collect(), command());
        cmd.build();
        own_options_after_subcommand(&cmd, args).into_iter().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn a_subcommands_options_may_come_before_it() {
        let serve = moved(&["p2pnode", "--dir", "D", "--max-upload-rate", "40M", "serve", "-v"]);
        assert_eq!(serve, ["p2pnode", "--dir", "D", "serve", "--max-upload-rate", "40M", "-v"]);
        let get = moved(&["p2pnode", "-o", "out", "--force", "--name", "serve", "get", "x"]);
        assert_eq!(get, ["p2pnode", "--name", "serve", "get", "-o", "out", "--force", "x"], "a value is no subcommand");
        let other = moved(&["p2pnode", "--tree", "get", "x"]);
        assert_eq!(other, ["p2pnode", "--tree", "get", "x"], "another subcommand's option stays, for clap to refuse");
        let matches =
            command().try_get_matches_from(moved(&["p2pnode", "--seed-for", "3", "get", "x"])).expect("parses");
        let parsed = Cli::from_arg_matches(&matches).expect("a command line");
        assert!(matches!(parsed.command, Command::Get { seed_for: Some(3), .. }));
    }

    #[test]
    fn rates_read_like_people_write_them() {
        assert_eq!(parse_rate("500"), Ok(500));
        assert_eq!(parse_rate("500K"), Ok(500 * 1024));
        assert_eq!(parse_rate("20M"), Ok(20 << 20));
        assert_eq!(parse_rate("1.5MiB/s"), Ok(3 << 19));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("3T").is_err());
    }
}
