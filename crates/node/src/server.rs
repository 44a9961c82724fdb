//! Answering peers: the catalogue, manifests, and chunk bytes streamed from disk.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use proto::{ErrorCode, FileId, Request, Response};
use store::{FileStamp, Library, PositionedIo, SharedFile};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use transport::frame_io::read_request;
use transport::{Incoming, Stream, TransportError};

use crate::blocking;
use crate::grants::Grants;
use crate::throttle::Throttle;

/// Exchanges served at once on one connection.
const MAX_STREAMS_PER_CONNECTION: usize = 16;
/// How long the rest of a request frame (at most 4 KiB) may take once its first byte arrived: a peer that
/// dribbles bytes (slowloris) loses its exchange long before the idle timeout.
const SLOW_SENDER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection over the limits gets to ask, and to take its busy answer.
const BUSY_ANSWER_TIME: Duration = Duration::from_secs(2);
/// Bytes read from disk, or written to the peer, per step: each step must complete within the idle
/// timeout, so a peer that stops reading is cut off whatever it asked for.
const READ_PIECE: usize = 256 * 1024;
/// What every exchange of a node together may hold in buffers (chunk pieces read from disk, encoded
/// manifests) at once: bounds the server's memory whatever number of peers stop reading.
pub(crate) const SEND_BUDGET: usize = 16 * 1024 * 1024;
/// The part of [`SEND_BUDGET`] the exchanges of one peer address may hold: hosts that stop reading
/// leave the rest to everyone else (a reading peer gives each piece back within milliseconds).
pub(crate) const PEER_SEND_BUDGET: usize = SEND_BUDGET / 8;

/// What the node shares right now; replaced as a whole when a rescan finds changes.
#[derive(Debug, Default)]
pub(crate) struct Shares {
    pub(crate) version: u64,
    pub(crate) files: Arc<HashMap<FileId, SharedFile>>,
    /// The encoded catalogue, built once per version rather than per request.
    pub(crate) catalogue: Vec<u8>,
}

impl Shares {
    pub(crate) fn of(library: &Library, version: u64) -> Self {
        Self { version, files: library.files().clone(), catalogue: library.catalogue().encode() }
    }
}

/// What every exchange of a node needs.
#[derive(Clone)]
pub(crate) struct ServeContext {
    pub(crate) shares: watch::Receiver<Arc<Shares>>,
    /// How long a connection may wait for its next request.
    pub(crate) idle: Duration,
    /// The node's upload cap, shared by all its connections.
    pub(crate) throttle: Option<Arc<Throttle>>,
    /// Wakes the rescan task when a shared file turns out to have changed since it was hashed.
    pub(crate) rescan: Arc<Notify>,
    /// Buffer bytes left to the exchanges of the node ([`SEND_BUDGET`]).
    pub(crate) buffers: Arc<Semaphore>,
    /// The part of it left to this connection's peer address ([`PEER_SEND_BUDGET`]).
    pub(crate) peer_buffers: Arc<Semaphore>,
    /// Told of every request, and of exchanges in progress: a `get` seeds until its peers stop asking.
    pub(crate) activity: Arc<Activity>,
    /// A seed's record of which chunk went to whom ([`Spread`]); `None` for a downloader.
    pub(crate) spread: Option<Arc<Spread>>,
    /// The files served to given peers alone, unlisted.
    pub(crate) grants: Grants,
}

impl ServeContext {
    /// What the exchanges of a node serving `shares` need: at most `max_upload_rate` bytes a second in
    /// all where given, and super-seeding where the node is a `seed` (not a downloader).
    pub(crate) fn new(
        shares: watch::Receiver<Arc<Shares>>,
        idle: Duration,
        max_upload_rate: Option<u64>,
        seed: bool,
    ) -> Self {
        ServeContext {
            shares,
            idle,
            throttle: max_upload_rate.map(|rate| Arc::new(Throttle::new(rate))),
            rescan: Arc::default(),
            buffers: Arc::new(Semaphore::new(SEND_BUDGET)),
            // Each connection gets its address's share when accepted (see `PeerSlots`).
            peer_buffers: Arc::new(Semaphore::new(0)),
            activity: Arc::default(),
            spread: seed.then(Arc::default),
            grants: Grants::default(),
        }
    }
}

/// Whether peers are asking: how many exchanges are in progress, since when none is, and a wake at each
/// start and end.
#[derive(Debug)]
pub(crate) struct Activity {
    busy: std::sync::atomic::AtomicUsize,
    /// When an exchange last started or ended (or the node started).
    last: std::sync::Mutex<tokio::time::Instant>,
    changed: Notify,
}

impl Default for Activity {
    fn default() -> Self {
        let last = std::sync::Mutex::new(tokio::time::Instant::now());
        Self { busy: Default::default(), last, changed: Notify::new() }
    }
}

impl Activity {
    /// Counts an exchange in progress until the guard drops.
    fn begin(self: &Arc<Self>) -> impl Drop {
        self.busy.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.touch();
        Busy(self.clone())
    }

    fn touch(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = tokio::time::Instant::now();
        self.changed.notify_one();
    }

    /// Completes once no exchange has been in progress for `quiet` (at once where none has been for that
    /// long already).
    pub(crate) async fn quiet_for(&self, quiet: Duration) {
        loop {
            let idle = self.busy.load(std::sync::atomic::Ordering::SeqCst) == 0;
            let since = self.last.lock().unwrap_or_else(|p| p.into_inner()).elapsed();
            match idle {
                true if since >= quiet => return,
                true => _ = tokio::time::timeout(quiet - since, self.changed.notified()).await,
                false => self.changed.notified().await,
            }
        }
    }
}

struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.0.touch();
    }
}

/// A seed's memory of where each chunk went lately, for super-seeding: a chunk sent to one downloader
/// within [`SPREAD_WINDOW`] is refused to another, once, with [`ErrorCode::Elsewhere`], so the swarm
/// passes it on and the seed's uplink carries chunks nobody has yet. Asked again, it is sent: a
/// downloader with no other source loses a round trip, never the chunk.
#[derive(Debug, Default)]
pub(crate) struct Spread(std::sync::Mutex<SpreadState>);

#[derive(Debug, Default)]
struct SpreadState {
    /// Each chunk's last receiver and when it was sent.
    sent: HashMap<(FileId, u32), (Downloader, tokio::time::Instant)>,
    /// The refusals given, each once, and when.
    refused: HashMap<(Downloader, FileId, u32), tokio::time::Instant>,
}

/// A downloader as a seed tells them apart: by the id its transport proved, else by its address (one
/// address may then be several downloaders, never told apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Downloader {
    Proven(proto::NodeId),
    Address(IpAddr),
}

/// How long a chunk sent to one downloader is refused to others: a few of the swarm's refresh intervals.
const SPREAD_WINDOW: Duration = Duration::from_secs(2);
/// The most chunks and refusals a seed remembers; past these, what is older than the window is forgotten.
const SPREAD_MEMORY: usize = 1 << 16;

impl Spread {
    /// Whether chunk `index` of `file` goes to `to` now; `false`: refuse it as sent elsewhere.
    fn send(&self, to: Downloader, file: FileId, index: u32) -> bool {
        let now = tokio::time::Instant::now();
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if state.sent.len() + state.refused.len() > SPREAD_MEMORY {
            state.sent.retain(|_, (_, at)| now - *at < SPREAD_WINDOW);
            state.refused.retain(|_, at| now - *at < SPREAD_WINDOW * 4);
        }
        let elsewhere = state.sent.get(&(file, index)).is_some_and(|(who, at)| *who != to && now - *at < SPREAD_WINDOW);
        if elsewhere
            && state.refused.len() < SPREAD_MEMORY
            && let std::collections::hash_map::Entry::Vacant(slot) = state.refused.entry((to, file, index))
        {
            slot.insert(now);
            return false;
        }
        state.sent.insert((file, index), (to, now));
        true
    }
}

/// Chunk bytes of one file sent in full (by one exchange, or summed over several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sent {
    pub(crate) file: FileId,
    /// The file's name and size, as its manifest gives them.
    pub(crate) name: String,
    pub(crate) size: u64,
    pub(crate) bytes: u64,
}

/// What a peer took of one shared file, told when the peer's last connection ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The peer's address.
    pub peer: IpAddr,
    /// The name it announces, where its transport proved its id and the id is a known peer.
    pub peer_name: Option<String>,
    /// The file.
    pub file: FileId,
    /// Its name.
    pub name: String,
    /// Its size.
    pub size: u64,
    /// Chunk bytes sent to the peer.
    pub bytes: u64,
}

/// Serves the exchanges of one connection until the peer is done with it or it idles out: a connection
/// with no exchange in progress that opens none within the idle timeout is closed, whatever the transport
/// does to keep it alive. Returns what its exchanges sent.
pub(crate) async fn serve_connection(mut incoming: Box<dyn Incoming>, context: ServeContext) -> Vec<Sent> {
    let peer = incoming.remote_addr();
    let who = incoming.authenticated().map_or(Downloader::Address(peer.ip()), |a| Downloader::Proven(a.peer));
    let mut sent = Vec::new();
    let mut count = |done: Result<Option<Sent>, tokio::task::JoinError>| sent.extend(done.ok().flatten());
    let limit = Arc::new(Semaphore::new(MAX_STREAMS_PER_CONNECTION));
    // Dropping the set (when the connection ends or the node shuts down) aborts exchanges in progress.
    let mut exchanges = JoinSet::new();
    loop {
        let Ok(permit) = limit.clone().acquire_owned().await else { break };
        let accepted = if exchanges.is_empty() {
            tokio::time::timeout(context.idle, incoming.accept_stream()).await
        } else {
            Ok(incoming.accept_stream().await)
        };
        let stream = match accepted {
            Ok(Ok(Some(stream))) => stream,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "connection ended");
                break;
            }
            Err(_) => {
                tracing::debug!(%peer, "idle connection closed");
                break;
            }
        };
        let context = context.clone();
        exchanges.spawn(async move {
            let _permit = permit;
            serve_exchange(stream, (peer, who), &context).await
        });
        while let Some(done) = exchanges.try_join_next() {
            count(done);
        }
    }
    while let Some(done) = exchanges.join_next().await {
        count(done);
    }
    sent
}

/// Answers the first request of a connection over the node's limits with [`ErrorCode::Busy`] and closes
/// it, so the client can tell a busy node (ask again later, with fewer requests at once) from a dead one.
/// The answer must go out within [`BUSY_ANSWER_TIME`]; the caller bounds how many are given at once.
pub(crate) async fn answer_busy(mut incoming: Box<dyn Incoming>) {
    let answer = async {
        let mut stream = incoming.accept_stream().await.ok()??;
        read_request(&mut stream).await.ok()??;
        let busy = Response::Err { code: ErrorCode::Busy, message: "connection limit reached; ask again soon".into() };
        stream.write_all(&busy.encode()).await.ok()?;
        stream.flush().await.ok()?;
        stream.finish();
        Some(())
    };
    let _ = tokio::time::timeout(BUSY_ANSWER_TIME, answer).await;
}

/// Answers one request; returns the chunk bytes it sent, if it sent a chunk.
async fn serve_exchange(
    mut stream: Box<dyn Stream>,
    (peer, who): (SocketAddr, Downloader),
    context: &ServeContext,
) -> Option<Sent> {
    let mut first = [0u8; 1];
    match tokio::time::timeout(context.idle, stream.read(&mut first)).await {
        Ok(Ok(0)) => return None,
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return debug_none(peer, &e.to_string(), "connection failed"),
        Err(_) => return debug_none(peer, "", "idle connection closed"),
    }
    let request =
        match tokio::time::timeout(SLOW_SENDER_TIMEOUT, read_request(&mut (&first[..]).chain(&mut stream))).await {
            Ok(Ok(Some(request))) => request,
            Ok(Ok(None)) => return None,
            // A whole frame that names a request this build does not know (a newer peer's): answered
            // `bad request`, so that the asker falls back (the crate proto's "Growing the wire").
            Ok(Err(TransportError::Protocol(e @ proto::DecodeError::UnknownTag { what: "request", .. }))) => {
                let refused = refuse(&mut stream, ErrorCode::BadRequest, &e.to_string(), context).await;
                stream.finish();
                return debug_none(peer, &format!("{e} ({refused:?})"), "bad request answered");
            }
            Ok(Err(e)) => return debug_none(peer, &e.to_string(), "bad request"),
            Err(_) => return debug_none(peer, "", "request frame too slow, connection closed"),
        };
    let _busy = context.activity.begin();
    // What is shared as the request arrives: a stream of tcp or tls is there long before its request
    // (a pooled connection), and a bitmap from then would refuse chunks verified since.
    let shares = context.shares.borrow().clone();
    match answer(&mut stream, &request, &shares, (peer, who), context).await {
        Ok(sent) => {
            stream.finish();
            sent
        }
        Err(e) => debug_none(peer, &format!("{request:?}: {e}"), "exchange failed"),
    }
}

/// Logs why an exchange ended without an answer, at debug level: peers cause these at will.
fn debug_none<T>(peer: SocketAddr, error: &str, what: &str) -> Option<T> {
    tracing::debug!(%peer, error, "{what}");
    None
}

async fn answer(
    stream: &mut Box<dyn Stream>,
    request: &Request,
    shares: &Shares,
    (peer, who): (SocketAddr, Downloader),
    context: &ServeContext,
) -> Result<Option<Sent>, TransportError> {
    // A file listed, or one granted to this peer alone.
    let find =
        |id: &FileId| shares.files.get(id).map(Cow::Borrowed).or_else(|| context.grants.find(who, id).map(Cow::Owned));
    match request {
        Request::Catalogue => send_bytes(stream, &shares.catalogue, context).await.map(|()| None),
        Request::Manifest(id) => match find(id) {
            Some(file) => {
                let _buffer = take_buffer(context, file.manifest.encoded_len()).await?;
                send_bytes(stream, &file.manifest.encode(), context).await.map(|()| None)
            }
            None => refuse(stream, ErrorCode::NotFound, "file not shared", context).await.map(|()| None),
        },
        Request::Have(id) => match find(id) {
            Some(file) => {
                let all = || vec![0xff; file.manifest.chunk_count().div_ceil(8) as usize];
                send_bytes(stream, &have_now(&file).await.unwrap_or_else(all), context).await.map(|()| None)
            }
            None => refuse(stream, ErrorCode::NotFound, "file not shared", context).await.map(|()| None),
        },
        Request::Chunk { file, index, offset, len } => {
            let Some(shared) = find(file) else {
                return refuse(stream, ErrorCode::NotFound, "file not shared", context).await.map(|()| None);
            };
            let start = match find_range(&shared, *index, *offset, *len).await {
                Ok(start) => start,
                Err((code, why)) => return refuse(stream, code, why, context).await.map(|()| None),
            };
            if context.spread.as_ref().is_some_and(|spread| !spread.send(who, *file, *index)) {
                let why = "sent to another downloader moments ago; ask the swarm";
                return refuse(stream, ErrorCode::Elsewhere, why, context).await.map(|()| None);
            }
            if !send_file_range(stream, &shared, start, *len, context).await? {
                return Ok(None);
            }
            tracing::debug!(target: "p2pnode::server", file = shared.manifest.name(), chunk = index, %peer, "sent chunk");
            let (name, size) = (shared.manifest.name().to_string(), shared.manifest.size());
            Ok(Some(Sent { file: *file, name, size, bytes: u64::from(*len) }))
        }
    }
}

/// The chunks `shared` has now: `None` for a whole file; for a download in progress, what its state file
/// says now (the shares were made before the chunks verified since), and at least what the shares say.
async fn have_now(shared: &SharedFile) -> Option<Vec<u8>> {
    let listed = shared.have.clone()?;
    let (path, manifest) = (shared.path.clone(), shared.manifest.clone());
    let now = blocking(move || store::bits_now(&path, &manifest)).await.unwrap_or_default();
    Some(listed.iter().zip(now.iter().chain(std::iter::repeat(&0))).map(|(l, n)| l | n).collect())
}

/// Where in `shared` the range a chunk request asks for starts; or the refusal. The chunks a download in
/// progress has are read last, once the request is known to be well formed.
async fn find_range(shared: &SharedFile, index: u32, offset: u32, len: u32) -> Result<u64, (ErrorCode, &'static str)> {
    if index >= shared.manifest.chunk_count() {
        return Err((ErrorCode::NotFound, "no such chunk"));
    }
    let (start, chunk_len) = shared.manifest.chunk_span(index);
    if offset.checked_add(len).is_none_or(|end| end > chunk_len) {
        return Err((ErrorCode::BadRequest, "range outside the chunk"));
    }
    if have_now(shared).await.is_some_and(|bits| !store::bit(&bits, index)) {
        return Err((ErrorCode::NotFound, "chunk not downloaded yet"));
    }
    Ok(start + u64::from(offset))
}

/// Sends an ok response with `bytes`, piece by piece, each within the idle timeout.
async fn send_bytes(stream: &mut Box<dyn Stream>, bytes: &[u8], context: &ServeContext) -> Result<(), TransportError> {
    write_within(stream, &Response::Ok { len: bytes.len() as u64 }.encode(), context).await?;
    for piece in bytes.chunks(READ_PIECE) {
        write_within(stream, piece, context).await?;
    }
    stream.flush().await?;
    Ok(())
}

async fn refuse(
    stream: &mut Box<dyn Stream>,
    code: ErrorCode,
    message: &str,
    context: &ServeContext,
) -> Result<(), TransportError> {
    write_within(stream, &Response::Err { code, message: message.into() }.encode(), context).await?;
    stream.flush().await?;
    Ok(())
}

/// Writes `bytes` (at most a piece), giving up when the peer does not take them within the idle timeout:
/// every write of a response goes through here, so no peer holds an exchange by not reading.
async fn write_within(
    stream: &mut Box<dyn Stream>,
    bytes: &[u8],
    context: &ServeContext,
) -> Result<(), TransportError> {
    tokio::time::timeout(context.idle, stream.write_all(bytes))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "peer stopped reading"))??;
    Ok(())
}

/// `len` bytes of the peer's and of the node's buffer budgets, waited for at most the idle timeout (a
/// budget is full only while peers hold exchanges without reading, and each of those is cut off within
/// that time).
async fn take_buffer(
    context: &ServeContext,
    len: usize,
) -> Result<(OwnedSemaphorePermit, OwnedSemaphorePermit), TransportError> {
    let take = |budget: &Arc<Semaphore>, most: usize| budget.clone().acquire_many_owned(len.min(most) as u32);
    let both = async {
        Ok::<_, tokio::sync::AcquireError>((
            take(&context.peer_buffers, PEER_SEND_BUDGET).await?,
            take(&context.buffers, SEND_BUDGET).await?,
        ))
    };
    match tokio::time::timeout(context.idle, both).await {
        Ok(Ok(permits)) => Ok(permits),
        _ => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "send buffers exhausted").into()),
    }
}

/// The file of `shared` opened, as it is now on disk: where its stamp no longer matches, from the latest
/// scan, which a rescan (asked for now, awaited within the idle timeout) brings up to date. `None` once
/// the content is no longer shared.
async fn open_current(shared: &SharedFile, context: &ServeContext) -> Option<Arc<std::fs::File>> {
    let id = shared.manifest.id();
    let mut latest = context.shares.clone();
    let mut candidate = shared.clone();
    let mut rescanned = false;
    loop {
        if let Some(file) = open_unchanged(&candidate).await {
            return Some(file);
        }
        // An exchange keeps the shares of when its request came: a rescan since may know the file already.
        let known = latest.borrow_and_update().files.get(&id).cloned()?;
        if (&known.path, known.stamp) != (&candidate.path, candidate.stamp) {
            candidate = known;
            continue;
        }
        if rescanned {
            return None;
        }
        rescanned = true;
        tracing::info!(file = %shared.path.display(), "shared file changed since it was hashed; rescanning");
        context.rescan.notify_one();
        tokio::time::timeout(context.idle, latest.changed()).await.ok()?.ok()?;
    }
}

/// The file of `shared` opened, if it is still what was hashed.
async fn open_unchanged(shared: &SharedFile) -> Option<Arc<std::fs::File>> {
    let (path, expected) = (shared.path.clone(), shared.stamp);
    let opened = blocking(move || {
        let file = std::fs::File::open(&path)?;
        let stamp = FileStamp::of(&file.metadata()?);
        Ok::<_, std::io::Error>((file, stamp))
    })
    .await;
    match opened {
        Ok((file, stamp)) if expected.is_none_or(|s| s == stamp) => Some(Arc::new(file)),
        _ => None,
    }
}

/// Streams `len` bytes of `shared` from `offset`, one piece at a time, each piece sent within the idle
/// timeout (a peer that stops reading is cut off). A file touched, rewritten or replaced since it was
/// hashed is rescanned at once and served if its content is the same; one changed or deleted is refused.
/// One that changes while being sent delivers bytes that fail the receiver's hash check. Returns whether
/// the bytes were sent (not refused).
async fn send_file_range(
    stream: &mut Box<dyn Stream>,
    shared: &SharedFile,
    offset: u64,
    len: u32,
    context: &ServeContext,
) -> Result<bool, TransportError> {
    let Some(file) = open_current(shared, context).await else {
        refuse(stream, ErrorCode::NotFound, "file changed or deleted since it was hashed", context).await?;
        return Ok(false);
    };
    write_within(stream, &Response::Ok { len: u64::from(len) }.encode(), context).await?;
    let _buffer = take_buffer(context, READ_PIECE.min(len as usize)).await?;
    let mut buf = vec![0u8; READ_PIECE.min(len as usize)];
    let mut sent = 0u64;
    while sent < u64::from(len) {
        let piece = (u64::from(len) - sent).min(READ_PIECE as u64) as usize;
        let (f, at) = (file.clone(), offset + sent);
        let (returned, read) = blocking(move || {
            let read = f.read_exact_at(&mut buf[..piece], at);
            (buf, read)
        })
        .await;
        buf = returned;
        read?;
        if let Some(throttle) = &context.throttle {
            throttle.take(piece).await;
        }
        write_within(stream, &buf[..piece], context).await?;
        sent += piece as u64;
    }
    stream.flush().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn quiet_means_no_exchange_for_that_long_counted_from_the_last() {
        let activity = Arc::new(Activity::default());
        let quiet = Duration::from_secs(1);
        tokio::time::advance(quiet).await;
        let started = tokio::time::Instant::now();
        activity.quiet_for(quiet).await;
        assert_eq!(started.elapsed(), Duration::ZERO, "quiet since it was made");
        let busy = activity.begin();
        let waiting = tokio::spawn({
            let activity = activity.clone();
            async move { activity.quiet_for(quiet).await }
        });
        tokio::time::sleep(quiet * 3).await;
        assert!(!waiting.is_finished(), "an exchange is in progress");
        drop(busy);
        let ended = tokio::time::Instant::now();
        waiting.await.expect("waits");
        assert_eq!(ended.elapsed(), quiet, "a second after the exchange ended");
    }

    #[tokio::test(start_paused = true)]
    async fn a_seed_refuses_a_chunk_it_just_sent_elsewhere_once_per_downloader() {
        let spread = Spread::default();
        let [a, b, c] = [1, 2, 3].map(|i| Downloader::Address(IpAddr::from([10, 0, 0, i])));
        let (file, other) = (FileId([1; 32]), FileId([2; 32]));
        assert!(spread.send(a, file, 0));
        assert!(spread.send(a, file, 0), "the same downloader asks again: a retry");
        assert!(!spread.send(b, file, 0), "just sent to a");
        assert!(spread.send(b, file, 1) && spread.send(b, other, 0), "other chunks go");
        assert!(spread.send(b, file, 0), "asked again: b may have no other source");
        tokio::time::advance(SPREAD_WINDOW).await;
        assert!(spread.send(c, file, 0), "long enough ago");
    }
}
