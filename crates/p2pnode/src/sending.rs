//! `p2pnode send PATH... --to PEER`: offers files, folders or a text to one peer and serves them to it
//! alone until it has them all, with a bar of what it has taken; and `serve --accept ask`'s question, put
//! to the person at the terminal one offer at a time.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use discovery::Peer;
use indicatif::ProgressBar;
use node::{Escaped, OfferAsk, Outgoing, SendEvent};
use tokio::sync::{Mutex, mpsc};

use crate::cli::Global;
use crate::commands::Role;
use crate::events::Event;
use crate::terminal::{self, Spinner};
use crate::words::human_bytes;

/// Sends `paths` and `text` to the peer `to` names.
pub(crate) async fn send(g: &Global, paths: &[PathBuf], to: &str, text: Option<&str>) -> anyhow::Result<()> {
    let client = crate::commands::client(g, Role::Send)?;
    let spinner = Spinner::new(g.json, "looking for peers");
    let peers = client.peers().await?;
    let peer = recipient(to, &peers, &g.trust_list())?;
    let shown = Escaped(to).to_string();
    spinner.say(&format!("hashing what goes to {shown}"));
    let outgoing = Outgoing { paths: paths.to_vec(), text: text.map(str::to_string) };
    let mut bar: Option<ProgressBar> = None;
    let mut spinner = Some(spinner);
    let sent = client
        .send(&peer, outgoing, |event| match event {
            SendEvent::Offered { files, bytes } => {
                if g.json {
                    Event::Offered { to: peer.id().to_string(), name: peer.announcement.name.clone(), files, bytes }
                        .print();
                }
                if let Some(spinner) = &spinner {
                    spinner.say(&format!("waiting for {shown} to accept {files} file(s), {}", human_bytes(bytes)));
                }
                if terminal::drawn(g.json) {
                    let wide = console::Term::stderr().size().1 >= terminal::WIDE;
                    bar = Some(ProgressBar::new(bytes.max(1)).with_style(terminal::style(wide)).with_prefix("sending"));
                }
            }
            SendEvent::Accepted => {
                spinner.take();
                if let Some(bar) = &mut bar {
                    *bar = terminal::show(bar.clone());
                    bar.set_message(format!("to {shown}"));
                }
            }
            SendEvent::Taken(bytes) => {
                if let Some(bar) = &bar {
                    bar.set_position(bytes);
                    bar.set_message(format!("{} to {shown}", human_bytes(bytes)));
                }
            }
            _ => {}
        })
        .await;
    drop(spinner);
    if let Some(bar) = &bar {
        terminal::unshow(bar, true);
    }
    sent?;
    match g.json {
        true => Event::Sent { to: peer.id().to_string(), name: peer.announcement.name.clone() }.print(),
        false => say!("{shown} has it all"),
    }
    Ok(())
}

/// The peer `to` names: a name from `pair`, then a node's announced name, then an id prefix.
fn recipient(to: &str, peers: &[Peer], trusted: &node::TrustList) -> anyhow::Result<Peer> {
    let shown = Escaped(to);
    if let Some(id) = trusted.id_of(to) {
        return peers.iter().find(|p| p.id() == id).cloned().with_context(|| {
            format!("{shown} is not on the LAN now (is its p2pnode serve running?); `p2pnode peers` lists who is")
        });
    }
    let named: Vec<&Peer> = peers.iter().filter(|p| p.announcement.name == to).collect();
    let by_id: Vec<&Peer> = match to.len() >= 4 && to.chars().all(|c| c.is_ascii_hexdigit()) {
        true => peers.iter().filter(|p| p.id().to_string().starts_with(&to.to_ascii_lowercase())).collect(),
        false => Vec::new(),
    };
    match (named.as_slice(), by_id.as_slice()) {
        ([one], _) | ([], [one]) => Ok((*one).clone()),
        ([], []) => bail!(
            "no peer is named {shown}: `p2pnode peers` lists them; --to takes a paired name, a node's name or an id prefix"
        ),
        (several, _) if several.len() > 1 => bail!(
            "{} peers are named {shown}: pass an id prefix instead ({})",
            several.len(),
            several.iter().map(|p| p.id().short()).collect::<Vec<_>>().join(", ")
        ),
        (_, several) => bail!("the id prefix {shown} fits {} peers: give more of it", several.len()),
    }
}

/// `serve --accept ask`'s question, where stdin is a terminal: one line read for each offer (lines typed
/// while none is asked are dropped). `None` without a terminal: offers from outside the trust list are
/// then refused.
pub(crate) fn asker() -> Option<node::Ask> {
    if !std::io::stdin().is_terminal() {
        return None;
    }
    let (lines, read) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { return };
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let read = Arc::new(Mutex::new(read));
    Some(Arc::new(move |offer: OfferAsk| {
        let read = read.clone();
        Box::pin(async move {
            let mut read = read.lock().await;
            while read.try_recv().is_ok() {}
            terminal::above(|| eprint!("{} [y/N] ", question(&offer)));
            matches!(read.recv().await, Some(answer) if answer.trim().eq_ignore_ascii_case("y"))
        })
    }))
}

/// The question about `offer`: who (the name it gives, escaped, and its id's fingerprint, which `p2pnode
/// id` shows on its machine), what and how much.
fn question(offer: &OfferAsk) -> String {
    let fingerprint = offer.from.id.fingerprint();
    let who = match &offer.from.announced {
        Some(name) => format!("{} (fingerprint {fingerprint}, not paired)", Escaped(name)),
        None => format!("a peer with fingerprint {fingerprint} (not paired)"),
    };
    let text = match offer.text {
        0 => String::new(),
        n => format!(" with a message of {}", human_bytes(n.into())),
    };
    match offer.files {
        0 => format!("{who} sends a message of {}; show it?", human_bytes(offer.text.into())),
        n => {
            format!("{who} sends {} ({n} file(s), {}){text}; accept?", Escaped(&offer.title), human_bytes(offer.bytes))
        }
    }
}
