//! The recipient's side of offers: whether to take one (its policy, the trust list, a person asked one
//! offer at a time, rates), then the fetch of what it holds from its sender, with the download machinery
//! of any file, and the end told back to the sender.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use proto::{Catalogue, ErrorCode, NodeId, Offer, Request};
use tokio::sync::{Semaphore, mpsc};

use super::{Accept, Ask, OfferAsk, OfferFrom};
use crate::client::dictionary::DictEntry;
use crate::exchange::request;
use crate::server::spread::Downloader;
use crate::state_dir::StateDir;
use crate::{Client, FetchEvent, FetchOptions, NodeEvent, Source, Wanted};

/// How long a person has to answer an offer; no answer declines it (the sender waits this long).
pub const ASK_WITHIN: Duration = Duration::from_secs(60);
/// Offers taken in from one id a minute; more are answered busy.
const PER_PEER_A_MINUTE: u32 = 10;
/// Offers taken in from everyone a minute (ids are cheap to make).
const ALL_A_MINUTE: u32 = 60;
/// Accepted offers fetched at once; more are answered busy.
const FETCHING_AT_ONCE: usize = 4;
/// Bytes of an offer's list per file at most: the id, a path, a size, a bitmap flag.
const LIST_BYTES_PER_FILE: u64 = 32 + 2 + proto::MAX_PATH as u64 + 8 + 1;

/// Where offers arrive on a serving node: shared by all its connections.
pub(crate) struct Inbox {
    accept: Accept,
    ask: Option<Ask>,
    state: PathBuf,
    downloads: PathBuf,
    client: Client,
    told: mpsc::UnboundedSender<NodeEvent>,
    /// One person, one question at a time.
    prompt: Semaphore,
    fetching: Arc<Semaphore>,
    rates: Mutex<Rates>,
}

/// Offers taken in during the current minute.
#[derive(Default)]
struct Rates {
    since: Option<tokio::time::Instant>,
    all: u32,
    /// At most [`ALL_A_MINUTE`] ids: each counted one is counted in `all` too.
    per_peer: HashMap<NodeId, u32>,
}

impl Rates {
    /// Whether one more offer from `from` is taken in this minute.
    fn allow(&mut self, from: NodeId) -> bool {
        let now = tokio::time::Instant::now();
        if self.since.is_none_or(|since| now - since >= Duration::from_secs(60)) {
            *self = Rates { since: Some(now), ..Rates::default() };
        }
        let from_peer = self.per_peer.get(&from).copied().unwrap_or(0);
        if self.all >= ALL_A_MINUTE || from_peer >= PER_PEER_A_MINUTE {
            return false;
        }
        self.all += 1;
        self.per_peer.insert(from, from_peer + 1);
        true
    }
}

/// Why an offer is refused: the code and the words its sender sees.
type Refusal = (ErrorCode, &'static str);

/// What of an offer taken is here: every file, or those that are and why the rest are not.
type Received = Result<Vec<PathBuf>, (Vec<PathBuf>, String)>;

impl Inbox {
    pub(crate) fn new(
        (accept, ask): (Accept, Option<Ask>),
        (state, downloads): (PathBuf, PathBuf),
        client: Client,
        told: mpsc::UnboundedSender<NodeEvent>,
    ) -> Self {
        let (prompt, fetching) = (Semaphore::new(1), Arc::new(Semaphore::new(FETCHING_AT_ONCE)));
        Self { accept, ask, state, downloads, client, told, prompt, fetching, rates: Mutex::default() }
    }

    /// Takes `offer` from `who` at `peer`, or says why not; once taken, it is fetched in a task of its own.
    pub(crate) async fn offer(
        self: &Arc<Self>,
        who: Downloader,
        peer: SocketAddr,
        offer: Offer,
    ) -> Result<(), Refusal> {
        let Downloader::Proven(id) = who else {
            return Err((ErrorCode::NotTrusted, "offers are taken only over a transport that proves who sends them"));
        };
        if !self.rates.lock().unwrap_or_else(PoisonError::into_inner).allow(id) {
            return Err((ErrorCode::Busy, "too many offers; try again in a minute"));
        }
        let from = self.from(id, &offer.name);
        let decided = self.decide(&from, &offer).await;
        let accepted = decided.map_err(|(_, why)| why.to_string());
        let told = NodeEvent::Offered {
            from: from.clone(),
            title: offer.title.clone(),
            files: offer.files,
            bytes: offer.bytes,
            accepted: accepted.clone(),
        };
        let _ = self.told.send(told);
        decided?;
        let Ok(slot) = self.fetching.clone().try_acquire_owned() else {
            return Err((ErrorCode::Busy, "receiving too many offers at once; try again soon"));
        };
        let inbox = self.clone();
        tokio::spawn(async move {
            let (source, outcome) = inbox.receive(&from, peer, &offer).await;
            let fetched = outcome.is_ok();
            let _ = inbox.told.send(match outcome {
                Ok(files) => NodeEvent::Received { from, files, error: None },
                Err((files, error)) => NodeEvent::Received { from, files, error: Some(error) },
            });
            drop(slot);
            // Told last: a sender that has gone (it ends once it reads this) never holds up the above.
            if let Some(source) = source {
                inbox.tell_end(&source, Request::OfferEnded { offer: offer.id, fetched }).await;
            }
        });
        Ok(())
    }

    /// Whether to take `offer` from `from`: at once from a trusted peer, else as the policy says.
    async fn decide(&self, from: &OfferFrom, offer: &Offer) -> Result<(), Refusal> {
        let only_trusted = (ErrorCode::NotTrusted, "accepts offers only from the peers it trusts");
        match (self.accept, from.paired.is_some(), &self.ask) {
            (Accept::None, ..) => Err((ErrorCode::Declined, "it takes no offers")),
            (_, true, _) => Ok(()),
            (Accept::Trusted, false, _) | (Accept::Ask, false, None) => Err(only_trusted),
            (Accept::Ask, false, Some(ask)) => {
                let Ok(_asking) = self.prompt.try_acquire() else {
                    return Err((ErrorCode::Busy, "is answering another offer; try again soon"));
                };
                let question = OfferAsk {
                    from: from.clone(),
                    title: offer.title.clone(),
                    files: offer.files,
                    bytes: offer.bytes,
                    text: offer.text,
                };
                match tokio::time::timeout(ASK_WITHIN, ask(question)).await {
                    Ok(true) => Ok(()),
                    // A person's no needs no words.
                    Ok(false) => Err((ErrorCode::Declined, "")),
                    Err(_) => Err((ErrorCode::Declined, "nobody answered in time")),
                }
            }
        }
    }

    /// Who `id` is to this node: its name in the trust list, the name it announces (or else `gives`).
    fn from(&self, id: NodeId, gives: &str) -> OfferFrom {
        let trusted = StateDir::open(&self.state).and_then(|state| state.trust_list());
        let trusted = trusted.inspect_err(|e| tracing::warn!(error = %e, "trust list unreadable")).unwrap_or_default();
        let paired = trusted.ids().any(|t| t == id).then(|| trusted.name_of(id).unwrap_or("").to_string());
        let announced = self.client.peer_table().now().into_iter().find(|p| p.id() == id).map(|p| p.announcement.name);
        let announced = announced.or_else(|| (!gives.is_empty()).then(|| gives.to_string()));
        OfferFrom { id, paired, announced }
    }

    /// Fetches what `offer` holds from its sender at `peer`: the sender as a source (`None` where it
    /// cannot be reached), and the files that are here, or those and why the rest are not.
    async fn receive(&self, from: &OfferFrom, peer: SocketAddr, offer: &Offer) -> (Option<Source>, Received) {
        let transport = self.client.inner().transports.iter().find(|t| t.name() == offer.transport).cloned();
        let Some(transport) = transport else {
            let why = format!("offered over {}, which this node does not use", offer.transport);
            return (None, Err((Vec::new(), why)));
        };
        // Only where the offer came from, and only to the id that made it.
        let source = Source { node: from.id, addr: SocketAddr::new(peer.ip(), offer.port), has: None, transport };
        let outcome = self.fetch(from, &source, offer).await;
        (Some(source), outcome)
    }

    /// Tells the sender at `source` the end of its offer, within the timeout.
    async fn tell_end(&self, source: &Source, ended: Request) {
        let timeout = self.client.inner().config.net.timeout;
        let told = tokio::time::timeout(timeout, async {
            let conn = source.transport.connect(source.addr, source.node).await.map_err(|e| e.to_string())?;
            request(&*conn, &ended, 0, Vec::new()).await.map_err(|e| e.to_string())
        });
        match told.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "the end of an offer not told to its sender"),
            Err(_) => tracing::debug!("the end of an offer not told to its sender: no answer"),
        }
    }

    async fn fetch(&self, from: &OfferFrom, source: &Source, offer: &Offer) -> Received {
        let failed = |e: &dyn std::fmt::Display| (Vec::new(), e.to_string());
        let timeout = self.client.inner().config.net.timeout;
        let asked = tokio::time::timeout(timeout, async {
            let conn = source.transport.connect(source.addr, source.node).await.map_err(|e| failed(&e))?;
            let text = match offer.text {
                0 => None,
                len => {
                    let bytes = request(&*conn, &Request::OfferText(offer.id), len.into(), Vec::new()).await;
                    let bytes = bytes.map_err(|e| failed(&e))?;
                    Some(String::from_utf8(bytes).map_err(|_| failed(&"the offered text is not UTF-8"))?)
                }
            };
            let list = match offer.files {
                0 => Catalogue { entries: Vec::new() },
                files => {
                    let max = u64::from(files) * LIST_BYTES_PER_FILE;
                    let bytes = request(&*conn, &Request::OfferList(offer.id), max, Vec::new()).await;
                    Catalogue::decode(&bytes.map_err(|e| failed(&e))?).map_err(|e| failed(&e))?
                }
            };
            Ok::<_, (Vec<PathBuf>, String)>((text, list))
        });
        let (text, list) = asked.await.map_err(|_| failed(&"the sender did not answer in time"))??;
        if let Some(text) = text {
            let _ = self.told.send(NodeEvent::Text { from: from.clone(), text });
        }
        let bytes: u64 = list.entries.iter().map(|e| e.size).sum();
        if list.entries.len() > offer.files as usize || bytes > offer.bytes {
            return Err(failed(&"the sender listed more than it offered"));
        }
        let wanted = list.entries.into_iter().map(|e| {
            let paths = BTreeSet::from([e.name.clone()]);
            let entry =
                DictEntry { name: e.name.clone(), paths, size: e.size, hosts: Vec::new(), partial: HashMap::new() };
            Wanted { id: e.id, entry, to: e.name, sources: vec![source.clone()] }
        });
        let options = FetchOptions::default().upload(false);
        let mut fetch = self.client.fetch_given(wanted.collect(), self.downloads.clone(), options);
        let mut here = Vec::new();
        while let Some(event) = fetch.next_event().await {
            if let FetchEvent::Done { path, .. } | FetchEvent::AlreadyHave { path, .. } = event {
                here.push(path);
            }
        }
        match fetch.finish().await {
            Ok(()) => Ok(here),
            Err(e) => Err((here, e.to_string())),
        }
    }
}
