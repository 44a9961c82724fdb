//! The sender's side of an offer: what it sends hashed and granted to the recipient alone, served on a
//! port of its own, offered, then served until the recipient tells the end.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use discovery::Peer;
use proto::{Catalogue, CatalogueEntry, ErrorCode, MAX_OFFER_TEXT, NodeId, Offer, OfferId, Request};

use super::files::{OutFile, gather};
use super::inbox::ASK_WITHIN;
use super::outbox::Outbox;
use crate::download::Source;
use crate::exchange::{ExchangeError, request};
use crate::peers::reach;
use crate::server::accepting::{Listening, bind_all};
use crate::server::context::{Activity, ServeContext, Shares};
use crate::{Client, Grants, NodeError, SendError};

/// How often the bytes taken so far are told.
const TOLD_EVERY: Duration = Duration::from_millis(500);
/// The longest the recipient's last request may take to be answered once the send is over.
const LAST_ANSWER: Duration = Duration::from_secs(1);
/// How long a recipient that accepted may ask nothing before the sender gives up on it.
const SILENT: Duration = crate::IDLE_TIMEOUT;

/// What to send: files and folders, a text, or both.
#[derive(Clone, Debug, Default)]
pub struct Outgoing {
    /// Files, and folders sent whole under their own names.
    pub paths: Vec<PathBuf>,
    /// A message (at most [`MAX_OFFER_TEXT`] bytes).
    pub text: Option<String>,
}

/// What a send tells as it goes, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendEvent {
    /// The files are hashed and offered: the recipient is asked.
    Offered {
        /// How many files.
        files: u32,
        /// Their bytes in all.
        bytes: u64,
    },
    /// The recipient accepted and fetches.
    Accepted,
    /// Chunk bytes the recipient has taken so far (what it had already it does not take).
    Taken(u64),
}

impl Client {
    /// Offers `outgoing` to `to`, and serves it to `to` alone until `to` has all of it (`Ok`), declined it,
    /// or stopped fetching (the errors). Needs the upload transports of [`crate::ClientBuilder::upload`]
    /// (the offer is served on one of them) and a transport that proves ids.
    pub async fn send(
        &self,
        to: &Peer,
        outgoing: Outgoing,
        mut on_event: impl FnMut(SendEvent),
    ) -> Result<(), SendError> {
        // The peer's words, escaped once for every message that names it.
        let name = proto::escape(&to.announcement.name);
        let source = reach(&self.inner().transports, to).ok_or_else(|| SendError::NoTransport { to: name.clone() })?;
        if !source.transport.authenticates() {
            return Err(SendError::Unproven { transport: source.transport.name().to_string() });
        }
        let listen = self.upload_transports().iter().find(|t| t.name() == source.transport.name()).cloned();
        let listen = listen.ok_or(SendError::Listen(NodeError::NoPlugin("transport to serve an offer on")))?;
        let (files, text) = prepare(outgoing).await?;
        let (grants, entries) = grant(&files, to.id()).await?;
        let bytes = entries.iter().map(|e| e.size).sum();
        let (id, outbox) = (OfferId(crate::random_id().0[..16].try_into().unwrap_or_default()), Outbox::default());
        let ended = outbox.add(id, to.id(), Catalogue { entries }.encode(), text.clone());
        let listeners = bind_all(&[listen], 0, true).await.map_err(SendError::Listen)?;
        let port = listeners.first().map(|(_, l)| l.local_addr().port()).unwrap_or_default();
        let empty =
            Arc::new(Shares { version: 1, catalogue: Catalogue { entries: Vec::new() }.encode(), ..Shares::default() });
        let idle = self.inner().config.net.idle_timeout;
        let context = ServeContext {
            grants,
            outbox,
            ..ServeContext::new(tokio::sync::watch::channel(empty).1, idle, None, false)
        };
        let activity = context.activity.clone();
        let mut listening = Listening::start(listeners);
        let serving = async {
            let names = HashMap::new();
            while listening.next(&context, &names).await.is_ok() {}
            tracing::warn!("the offer is no longer served");
        };
        let offer = Offer {
            id,
            transport: source.transport.name().to_string(),
            port,
            files: files.len() as u32,
            bytes,
            text: text.len() as u32,
            title: title(&files.iter().map(|f| f.to.as_str()).collect::<Vec<_>>(), &text),
            name: self.inner().config.name.clone(),
        };
        on_event(SendEvent::Offered { files: offer.files, bytes });
        let taken = async {
            self.offer(&source, offer, &name).await?;
            on_event(SendEvent::Accepted);
            taken(ended, &activity, &name, &mut on_event).await
        };
        let outcome = tokio::select! {
            outcome = taken => outcome,
            () = serving => Err(SendError::Failed { to: name.clone() }),
        };
        // The recipient's last request is answered before the port closes (it waits for that answer).
        let _ = tokio::time::timeout(LAST_ANSWER, activity.quiet_for(Duration::ZERO)).await;
        listening.shutdown().await;
        outcome
    }

    /// Asks `to` (named `name`) to take `offer`: `Ok` once it has.
    async fn offer(&self, to: &Source, offer: Offer, name: &str) -> Result<(), SendError> {
        let within = ASK_WITHIN + self.inner().config.net.timeout;
        let answered = tokio::time::timeout(within, async {
            let conn = to.transport.connect(to.addr, to.node).await.map_err(ExchangeError::from)?;
            request(&*conn, &Request::Offer(offer), 0, Vec::new()).await
        });
        match answered.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(refused(name, e)),
            Err(_) => Err(SendError::Declined { to: name.to_string(), why: "nobody answered in time".into() }),
        }
    }
}

/// The files below `outgoing`'s paths, and its text, within an offer's bounds.
async fn prepare(outgoing: Outgoing) -> Result<(Vec<OutFile>, String), SendError> {
    let text = outgoing.text.unwrap_or_default();
    if text.len() > MAX_OFFER_TEXT as usize {
        return Err(SendError::TextTooLong { max: MAX_OFFER_TEXT });
    }
    let files = crate::blocking(move || gather(&outgoing.paths)).await?;
    if files.is_empty() && text.is_empty() {
        return Err(SendError::Nothing);
    }
    Ok((files, text))
}

/// `files` hashed and granted to `to` alone; the offer's list of them.
async fn grant(files: &[OutFile], to: NodeId) -> Result<(Grants, Vec<CatalogueEntry>), SendError> {
    let (grants, recipient) = (Grants::default(), HashSet::from([to]));
    let mut entries = Vec::with_capacity(files.len());
    for file in files {
        let (id, size) = grants.grant(&file.path, recipient.clone()).await.map_err(SendError::Hashing)?;
        entries.push(CatalogueEntry { id, name: file.to.clone(), size, have: None });
    }
    Ok((grants, entries))
}

/// Tells the bytes the recipient (named `name`) has taken while it fetches, until it tells the end
/// (`ended`) or asks nothing for [`SILENT`].
async fn taken(
    mut ended: tokio::sync::watch::Receiver<Option<bool>>,
    activity: &Activity,
    name: &str,
    on_event: &mut impl FnMut(SendEvent),
) -> Result<(), SendError> {
    let accepted = tokio::time::Instant::now();
    let mut tell = tokio::time::interval(TOLD_EVERY);
    loop {
        tokio::select! {
            Ok(()) = ended.changed() => match *ended.borrow() {
                Some(true) => return Ok(()),
                Some(false) => return Err(SendError::Failed { to: name.to_string() }),
                None => {}
            },
            _ = tell.tick() => {
                on_event(SendEvent::Taken(activity.sent()));
                if accepted.elapsed() >= SILENT && activity.idle_for() >= SILENT {
                    return Err(SendError::Silent { to: name.to_string(), within: SILENT });
                }
            }
        }
    }
}

/// What an offer is, in a few words: its first path (a folder's name with a slash) and how many more,
/// or the start of its text.
fn title(paths: &[&str], text: &str) -> String {
    let mut tops: Vec<String> = Vec::new();
    for path in paths {
        let top = match path.split_once('/') {
            Some((folder, _)) => format!("{folder}/"),
            None => path.to_string(),
        };
        if !tops.contains(&top) {
            tops.push(top);
        }
    }
    match tops.len() {
        0 => format!("a message: {}", proto::text::cut(text, 60)),
        1 => tops.remove(0),
        n => format!("{} and {} more", tops[0], n - 1),
    }
}

/// The error of an offer the recipient `to` did not take.
fn refused(to: &str, e: ExchangeError) -> SendError {
    let to = to.to_string();
    match e {
        ExchangeError::Refused { code: ErrorCode::Declined, message } => {
            SendError::Declined { to, why: proto::escape(&message) }
        }
        ExchangeError::Refused { code: ErrorCode::NotTrusted, .. } => SendError::NotTrusted { to },
        ExchangeError::Refused { code: ErrorCode::Busy, message } => {
            SendError::Busy { to, why: proto::escape(&message) }
        }
        ExchangeError::Refused { code: ErrorCode::BadRequest, .. } => SendError::TakesNoOffers { to },
        e => SendError::Unreached { to, why: proto::escape(&e.to_string()) },
    }
}
