//! `serve`'s web page on this machine and its guest page on the LAN: made by the web crate over the
//! node's client and shared files; their addresses, the page's key and the guests' PIN (with a QR code
//! of the address) told here.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::bail;
use node::{Client, ClientConfig, Identity, Node, ServeConfig};
use web::{GuestConfig, GuestEvent, Guests, Page, PageAt, PageConfig, Uploads};

use crate::cli::{Global, GuestsArg, PagesArgs, WebArg};
use crate::events::Event;
use crate::plugins;
use crate::words::human_bytes;

/// Refuses what cannot go together, before anything is bound: guests with a private node.
pub(crate) fn check(g: &Global, args: &PagesArgs) -> anyhow::Result<()> {
    if args.guests.is_some() {
        if g.group_key.is_some() {
            bail!("--guests is refused with --group: outsiders must see nothing of a private group's node");
        }
        if g.trusted.is_some() {
            bail!(
                "--guests is refused with --trust: outsiders must see nothing of a node that serves only the peers it trusts"
            );
        }
    }
    Ok(())
}

/// The pages started beside a node.
pub(crate) struct Started {
    /// The page's address with its key.
    pub(crate) page: Option<String>,
    /// Where guests open their page, and with what PIN, told once the node says it serves.
    guests: Option<GuestsAt>,
}

struct GuestsAt {
    urls: Vec<String>,
    pin: String,
    inbox: Option<PathBuf>,
}

/// Starts the page (unless `--web off`) and the guest page (with `--guests`) beside `node`. A
/// remembered page port that is taken is a warning: the node serves on.
pub(crate) async fn start(
    g: &Global,
    args: &PagesArgs,
    config: &ServeConfig,
    (node, identity): (&Node, &Identity),
) -> anyhow::Result<Started> {
    let page = match args.web {
        Some(WebArg::Off) => None,
        at => {
            let at = match at {
                Some(WebArg::At(addr)) => PageAt::Chosen(addr),
                _ => PageAt::Remembered,
            };
            let me = (config.name.clone(), node.id());
            let page_config =
                PageConfig { state_dir: config.state_dir.clone(), at, downloads: config.downloads.clone(), me };
            match Page::bind(page_config, page_client(g, node, identity)?, node.shared_files()).await {
                Ok(page) => {
                    let url = page.url();
                    tokio::spawn(page.run());
                    Some(url)
                }
                Err(e @ web::WebError::Bind { .. }) if at == PageAt::Remembered => {
                    tracing::warn!("{e}; serving without it (pass --web 127.0.0.1:PORT for another port)");
                    None
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let guests = match args.guests {
        Some(what) => Some(start_guests(g, args, what, config, node).await?),
        None => None,
    };
    Ok(Started { page, guests })
}

/// Tells where guests open their page, with the PIN and a QR code of the address.
pub(crate) fn tell_guests(started: &Started, json: bool) {
    let Some(GuestsAt { urls, pin, inbox }) = &started.guests else { return };
    tracing::warn!("guests use plain HTTP: anyone on this network can read what they fetch");
    if json {
        return Event::Guests { urls: urls.clone(), pin: pin.clone(), inbox: inbox.clone() }.print();
    }
    say!("guests: open {} and enter the PIN {pin}", urls.join(" or "));
    if let Some(inbox) = &inbox {
        say!("guests' uploads go to {}", node::Escaped(&inbox.display().to_string()));
    }
    if let Some(first) = urls.first() {
        say!("{}", qr(first));
    }
}

/// A client beside the node: its peer table, its id, fetching into its downloads folder.
fn page_client(g: &Global, node: &Node, identity: &Identity) -> anyhow::Result<Client> {
    let net = g.net()?;
    let transport = plugins::transport_config(g, &net)?;
    let config = ClientConfig::default().net(net).private_group(g.group_key.is_some()).state_dir(g.state_dir());
    let builder = Client::builder(config).peers(node.peer_table().clone());
    Ok(builder.transport(plugins::client_transport(g, transport, identity.clone())?).build()?)
}

async fn start_guests(
    g: &Global,
    args: &PagesArgs,
    what: GuestsArg,
    config: &ServeConfig,
    node: &Node,
) -> anyhow::Result<GuestsAt> {
    let uploads = match what {
        GuestsArg::Download => None,
        GuestsArg::Upload => {
            let inbox = args.guest_inbox.clone().unwrap_or_else(|| default_inbox(&config.downloads));
            check_unshared(&inbox, config)?;
            Some(Uploads::new(inbox, args.guest_max_upload, args.guest_max_total))
        }
    };
    let (json, inbox) = (g.json, uploads.as_ref().map(|u| u.dir.clone()));
    let guest_config = GuestConfig { addr: args.guest_address, uploads };
    let guests = Guests::bind(guest_config, node.shared_files(), move |event| told(&event, json)).await;
    let guests = guests.map_err(|e| match e {
        web::WebError::GuestBind { .. } => anyhow::anyhow!("{e} (choose another port with --guest-address)"),
        e => e.into(),
    })?;
    let addr = guests.local_addr().unwrap_or(args.guest_address);
    let urls: Vec<String> =
        addresses(addr).iter().map(|a| format!("http://{}/", SocketAddr::new(*a, addr.port()))).collect();
    let pin = guests.pin();
    tokio::spawn(guests.run());
    Ok(GuestsAt { urls, pin, inbox })
}

/// The guests' inbox by default: `p2pnode-guests` beside the downloads folder's default.
fn default_inbox(downloads: &std::path::Path) -> PathBuf {
    match crate::cli::home() {
        Some(home) => dirs::download_dir().unwrap_or_else(|| home.join("Downloads")).join("p2pnode-guests"),
        None => downloads.with_file_name("p2pnode-guests"),
    }
}

/// An inbox inside a shared folder (or holding one) would share what strangers upload.
fn check_unshared(inbox: &std::path::Path, config: &ServeConfig) -> anyhow::Result<()> {
    let full = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let inbox = full(inbox);
    for shared in [&config.dir, &config.downloads].map(|d| full(d)) {
        if inbox.starts_with(&shared) || shared.starts_with(&inbox) {
            bail!(
                "--guest-inbox {} is in a shared folder ({}): what guests upload would be shared; choose another",
                inbox.display(),
                shared.display()
            );
        }
    }
    Ok(())
}

/// The addresses guests reach `addr` at: every LAN address of this machine where it listens on all.
fn addresses(addr: SocketAddr) -> Vec<IpAddr> {
    if !addr.ip().is_unspecified() {
        return vec![addr.ip()];
    }
    let lan: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| ip.is_ipv4() && !ip.is_loopback())
        .collect();
    if lan.is_empty() { vec![IpAddr::from([127, 0, 0, 1])] } else { lan }
}

/// A QR code of `url` in block characters, two rows of modules a line, with its quiet zone.
fn qr(url: &str) -> String {
    match qrcode::QrCode::new(url.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .build(),
        Err(_) => String::new(),
    }
}

/// What guests do, told on the terminal (or as JSON).
fn told(event: &GuestEvent, json: bool) {
    crate::terminal::above(|| match (event, json) {
        (GuestEvent::NewPin(pin), true) => Event::GuestPin { pin: pin.clone() }.print(),
        (GuestEvent::NewPin(pin), false) => {
            say!("too many wrong PINs: the guests' PIN is now {pin} (the old one no longer opens the page)")
        }
        (GuestEvent::Admitted(ip), true) => Event::GuestIn { ip: ip.to_string() }.print(),
        (GuestEvent::Admitted(ip), false) => say!("a guest at {ip} entered the PIN"),
        (GuestEvent::Uploaded { from, path, bytes }, true) => {
            Event::GuestUpload { ip: from.to_string(), path: path.clone(), bytes: *bytes }.print()
        }
        (GuestEvent::Uploaded { from, path, bytes }, false) => {
            say!("a guest at {from} uploaded {} ({})", node::Escaped(&path.display().to_string()), human_bytes(*bytes))
        }
    });
}
