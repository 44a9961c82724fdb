//! A download as a state machine: the state one download keeps, and one handler per event that moves
//! it on (a chunk fetched or failed, a bitmap answered, a peer joined or connected, a deadline passed, a
//! refresh due). [`Download::run`] only waits for the next event and hands it to its handler; the
//! sans-IO [`Scheduler`] decides what to ask of whom.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use proto::{Bitmap, ErrorCode, FileId, Manifest, Request};
use store::{PartFile, StateKey};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::{Instant, Interval};
use transport::{Connection, TransportError};

use super::chunk::{Buffers, ChunkError, fetch_chunk};
use super::connect::{connect_all, fetch_manifest};
use super::event::{DownloadEvent, Dropped, report_failure};
use super::folder::check_writable;
use super::options::{DownloadOptions, HAVE_REFRESH};
use super::scheduler::{Assignment, Failure, Limits, Scheduler, Status};
use super::source::{Joins, Source, SourceIndex};
use crate::exchange::{ExchangeError, request};
use crate::{NodeError, blocking};

/// Chunk bytes a download keeps in flight from one peer, and in all: the pipelining depth, and what
/// bounds memory whatever the file size.
const PEER_WINDOW: u64 = 8 * 1024 * 1024;
const TOTAL_WINDOW: u64 = 32 * 1024 * 1024;

/// A source as the scheduler knows it: whether it is *not* the one whose manifest was taken (so that,
/// among peers alike, the one known to answer is asked first), and its index.
type Ranked = (bool, SourceIndex);

/// Source `i` as the scheduler knows it, where source `answered` gave the manifest.
fn ranked(answered: SourceIndex, i: SourceIndex) -> Ranked {
    (i != answered, i)
}

/// One download under way.
pub(super) struct Download<E> {
    id: FileId,
    manifest: Arc<Manifest>,
    part: Arc<PartFile>,
    scheduler: Scheduler<Ranked>,
    /// Every source by index, those that joined included.
    sources: Vec<Source>,
    /// The sources connected to, by index.
    conns: HashMap<SourceIndex, Arc<dyn Connection>>,
    /// The source whose manifest was taken.
    answered: SourceIndex,
    joins: Joins,
    /// The sources asked for their bitmap and not answered yet.
    refreshing: HashSet<SourceIndex>,
    /// Requests in flight, connections being made, bitmaps asked for.
    tasks: JoinSet<Done>,
    /// The chunk requests in flight, to cancel the losers of an endgame race and those that expired.
    running: HashMap<Assignment<Ranked>, AbortHandle>,
    buffers: Buffers,
    /// How long a download without sources waits for another.
    timeout: std::time::Duration,
    on_event: E,
}

/// What a task of a download brings back.
enum Done {
    /// A chunk request's outcome.
    Chunk(Assignment<Ranked>, Result<u32, ChunkError>),
    /// A source's bitmap, or why not.
    Have(SourceIndex, Result<Vec<u8>, ExchangeError>),
    /// A connection to a peer that joined the swarm, or made again to a source that failed.
    Connected(SourceIndex, Result<Arc<dyn Connection>, TransportError>),
}

/// What a download waits for.
enum Event {
    Task(Done),
    /// The scheduler's next deadline passed.
    Deadline,
    /// Time to ask the partial sources what they have now.
    Refresh,
    /// The swarm reports a peer.
    Joining(Source),
}

impl<E: FnMut(&DownloadEvent)> Download<E> {
    /// Connects to the sources, takes the manifest of `id` and opens its `.part` file in `dir` (resuming
    /// what is there): a download ready to run.
    pub(super) async fn start(
        id: FileId,
        sources: &[Source],
        dir: &Path,
        options: &DownloadOptions,
        mut on_event: E,
    ) -> Result<Self, NodeError> {
        // A folder to be made is proven makeable first; an existing one proves itself with the `.part`
        // (a probe file per download costs a create and an unlink each: thousands for a folder of small files).
        let new_folder = !dir.is_dir();
        if new_folder {
            check_writable(dir)?;
        }
        let conns = connect_all(sources, &mut on_event).await?;
        let (manifest, answered) = fetch_manifest(&conns, sources, id, options.timeout).await?;
        let manifest = Arc::new(manifest);
        // A folder to be made holds no download to resume: the whole file must fit, before the folder is.
        if new_folder {
            check_space(&manifest, dir, manifest.size(), options)?;
        }
        // Only now, with something to write, does the folder come into being.
        std::fs::create_dir_all(dir).map_err(|source| NodeError::NotWritable { dir: dir.into(), source })?;
        let part = Arc::new(open_part(dir, &manifest, &options.key).await?);
        let progress = part.progress();
        // In a folder that was there, a part may resume: what is left to fetch must fit.
        let fits = match new_folder {
            true => Ok(()),
            false => check_space(&manifest, dir, manifest.size() - progress.bytes, options),
        };
        if let Err(e) = fits {
            // A part with nothing verified is nothing to resume: not left behind.
            if progress.chunks == 0 {
                let _ = store::discard_part(part.part_path());
            }
            return Err(e);
        }
        let chunk = u64::from(manifest.chunk_size());
        let limits = Limits {
            chunk_size: manifest.chunk_size(),
            per_peer: (PEER_WINDOW / chunk).clamp(2, 16) as usize,
            total: (TOTAL_WINDOW / chunk).max(2) as usize,
            timeout_ceiling: options.timeout,
        };
        let shuffle = u64::from_be_bytes(crate::random_id().0[..8].try_into().unwrap_or_default());
        let mut scheduler = Scheduler::new(part.missing(), [], limits).shuffled(shuffle);
        for &i in conns.keys() {
            scheduler.add_peer(ranked(answered, i), sources[i].has.clone(), now());
        }
        let mut this = Self {
            id,
            manifest,
            part,
            scheduler,
            sources: sources.to_vec(),
            conns,
            answered,
            joins: Joins::of(sources),
            refreshing: HashSet::new(),
            tasks: JoinSet::new(),
            running: HashMap::new(),
            buffers: Buffers::default(),
            timeout: options.timeout,
            on_event,
        };
        this.tell_started();
        Ok(this)
    }

    /// Runs the download to its end, asking the peers `joining` reports too. Returns the final path; on
    /// failure the verified part stays for a later resume.
    pub(super) async fn run(mut self, mut joining: impl Stream<Item = Source> + Unpin) -> Result<PathBuf, NodeError> {
        let mut refresh = tokio::time::interval(HAVE_REFRESH);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut joined_all = false;
        loop {
            self.ask_for_chunks();
            if self.scheduler.status(now()) != Status::Running
                || self.tasks.is_empty() && self.scheduler.next_deadline(now()).is_none()
            {
                break;
            }
            match self.next_event(&mut refresh, &mut joining, &mut joined_all).await {
                Some(Event::Task(Done::Chunk(job, Ok(bytes)))) => self.on_chunk(job, bytes),
                Some(Event::Task(Done::Chunk(job, Err(e)))) => self.on_chunk_failed(job, e)?,
                Some(Event::Task(Done::Have(i, answer))) => self.on_have(i, answer),
                Some(Event::Task(Done::Connected(i, conn))) => self.on_connected(i, conn),
                Some(Event::Deadline) => self.on_deadline(),
                Some(Event::Refresh) => self.on_refresh(),
                Some(Event::Joining(source)) => self.on_joining(source),
                None => {}
            }
        }
        self.finish().await
    }

    /// The next event; `None` for a task cancelled (its result no longer wanted).
    async fn next_event(
        &mut self,
        refresh: &mut Interval,
        joining: &mut (impl Stream<Item = Source> + Unpin),
        joined_all: &mut bool,
    ) -> Option<Event> {
        let deadline = self.scheduler.next_deadline(now()).map(Instant::from_std);
        tokio::select! {
            joined = self.tasks.join_next(), if !self.tasks.is_empty() => match joined? {
                Ok(done) => Some(Event::Task(done)),
                Err(e) if e.is_cancelled() => None,
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            },
            () = sleep_until(deadline) => Some(Event::Deadline),
            _ = refresh.tick() => Some(Event::Refresh),
            source = joining.next(), if !*joined_all => match source {
                Some(source) => Some(Event::Joining(source)),
                None => {
                    *joined_all = true;
                    None
                }
            },
        }
    }

    /// Hands out every request the scheduler allows now.
    fn ask_for_chunks(&mut self) {
        while let Some(job) = self.scheduler.next_request(now()) {
            let (conn, part, buffers) = (self.conns[&job.peer.1].clone(), self.part.clone(), self.buffers.clone());
            let id = self.id;
            let fetched = async move { Done::Chunk(job, fetch_chunk(&*conn, &part, id, job.chunk, &buffers).await) };
            self.running.insert(job, self.tasks.spawn(fetched));
        }
    }

    /// A chunk arrived verified and written. A request settled already (its endgame twin won, or it
    /// expired) may still complete before it could be cancelled: the scheduler answers `None`, and its
    /// chunk counts once, as settled.
    fn on_chunk(&mut self, job: Assignment<Ranked>, bytes: u32) {
        self.running.remove(&job);
        let Some(losers) = self.scheduler.on_success(now(), job.peer, job.chunk, bytes) else { return };
        for loser in losers {
            self.running.remove(&loser).inspect(AbortHandle::abort);
        }
        let peer = self.sources[job.peer.1].node;
        tracing::debug!(target: "p2pnode::download", chunk = job.chunk, peer = %peer.short(), "chunk verified");
        (self.on_event)(&DownloadEvent::Chunk { index: job.chunk, bytes, peer });
    }

    /// A chunk request failed: the chunk goes back to the queue, and the peer may be dropped. Our own
    /// disk failing ends the download.
    fn on_chunk_failed(&mut self, job: Assignment<Ranked>, error: ChunkError) -> Result<(), NodeError> {
        self.running.remove(&job);
        if let ChunkError::Store(e) = error {
            return Err(NodeError::PartWrite(e));
        }
        let failure = error.failure();
        let Some(dropped) = self.scheduler.on_failure(now(), job.peer, job.chunk, failure) else { return Ok(()) };
        if failure != Failure::Elsewhere {
            let peer = self.sources[job.peer.1].node;
            let corrupt = failure == Failure::Corrupt;
            report_failure(&mut self.on_event, &self.manifest, peer, job.chunk, &error.to_string(), corrupt);
        }
        if dropped {
            self.report_drop(job.peer.1, error.dropped());
        } else if matches!(failure, Failure::Broken | Failure::Timeout) {
            self.redial(job.peer.1);
        }
        Ok(())
    }

    /// Source `i` said which chunks it has (or why not): a joining peer becomes a source, a known one
    /// may have grown.
    fn on_have(&mut self, i: SourceIndex, answer: Result<Vec<u8>, ExchangeError>) {
        self.refreshing.remove(&i);
        // Known: a live source (or one banned for corrupt chunks); else one joining, or coming back.
        let (peer, known) = (ranked(self.answered, i), self.is_source(i));
        match (answer.map(|bytes| Bitmap::decode(&bytes, self.manifest.chunk_count())), known) {
            (Ok(Err(_)), _) => {
                self.scheduler.drop_peer(peer, now());
                let chunks = self.manifest.chunk_count();
                self.report_drop(i, Dropped::Broken(format!("a bitmap of another length than {chunks} chunks take")));
            }
            (Ok(Ok(bits)), true) => _ = self.scheduler.set_has(peer, whole_or(bits), now()),
            (Ok(Ok(bits)), false) => self.scheduler.add_peer(peer, whole_or(bits), now()),
            // A joining peer without the file (yet: it is asked again when it announces a change) is no
            // source, and nothing to tell.
            (Err(_), false) => {}
            (Err(ExchangeError::Refused { code: ErrorCode::NotFound, .. }), true) => {
                self.scheduler.drop_peer(peer, now());
                self.report_drop(i, Dropped::NotFound);
            }
            // Chunk requests tell a peer that is gone; the next refresh asks again.
            (Err(_), true) => {}
        }
    }

    /// A joining peer was connected to (or not): once it says what it has, it is a source. A source that
    /// failed was connected to again: it goes on over the new connection, or, unreachable now, is gone.
    fn on_connected(&mut self, i: SourceIndex, conn: Result<Arc<dyn Connection>, TransportError>) {
        self.joins.connecting.remove(&i);
        let live = self.is_source(i);
        match conn {
            Ok(conn) => {
                self.conns.insert(i, conn.clone());
                if !live {
                    self.ask_have(i, conn);
                }
            }
            Err(e) if live => {
                self.scheduler.drop_peer(ranked(self.answered, i), now());
                self.report_drop(i, Dropped::Gone(e.to_string()));
            }
            Err(e) => {
                let peer = self.sources[i].node.short();
                tracing::debug!(target: "p2pnode::download", %peer, error = %e, "joining peer unreachable");
            }
        }
    }

    /// Requests expired: their chunks go back to the queue, and their peers may be dropped; a peer that
    /// delivers nothing is connected to again, to tell one that went away from a slow one.
    fn on_deadline(&mut self) {
        for (job, dropped) in self.scheduler.on_timeouts(now()) {
            self.running.remove(&job).inspect(AbortHandle::abort);
            let error = format!("no answer within {:.1?}", self.scheduler.timeout(job.peer));
            let peer = self.sources[job.peer.1].node;
            report_failure(&mut self.on_event, &self.manifest, peer, job.chunk, &error, false);
            if dropped {
                self.report_drop(job.peer.1, Dropped::Silent(error));
            } else if self.scheduler.is_silent(job.peer, now()) {
                self.redial(job.peer.1);
            }
        }
    }

    /// Connects to source `i` again, unless that is under way: a peer that went away refuses (or does not
    /// answer) at once, where requests on the connection it left may fail one by one, or hang.
    fn redial(&mut self, i: SourceIndex) {
        if self.joins.connecting.insert(i) {
            let source = self.sources[i].clone();
            let connect = async move { Done::Connected(i, source.transport.reconnect(source.addr, source.node).await) };
            self.tasks.spawn(connect);
        }
    }

    /// Whether source `i` is one the scheduler keeps: live, or banned for corrupt chunks (not one joining,
    /// nor one that went away and may come back).
    fn is_source(&self, i: SourceIndex) -> bool {
        !self.scheduler.may_join(ranked(self.answered, i))
    }

    /// Tells that source `i` is dropped, once its peer is reached at no other address, and, where it was
    /// the last, how long another is waited for.
    fn report_drop(&mut self, i: SourceIndex, why: Dropped) {
        let (peer, error) = (self.sources[i].node, why.to_string());
        tracing::info!(target: "p2pnode::download", peer = %peer.short(), addr = %self.sources[i].addr, error, "source dropped");
        let elsewhere = (self.conns.keys()).any(|&j| j != i && self.sources[j].node == peer && self.is_source(j));
        if elsewhere {
            return;
        }
        let waiting = self.scheduler.orphaned_until(now()).map(|_| self.timeout);
        (self.on_event)(&DownloadEvent::SourceDropped { peer, why, waiting });
    }

    /// Asks each partial source what it has now, unless it is still answering the last time.
    fn on_refresh(&mut self) {
        let partial: Vec<_> = (self.conns.iter())
            .filter(|(i, _)| self.scheduler.is_partial(ranked(self.answered, **i)) && !self.refreshing.contains(i))
            .map(|(&i, conn)| (i, conn.clone()))
            .collect();
        for (i, conn) in partial {
            self.ask_have(i, conn);
        }
    }

    /// The swarm reports a peer: connected to unless it is a source already (or banned) or being asked.
    /// A source that went away and announces itself again is asked again.
    fn on_joining(&mut self, source: Source) {
        let (scheduler, answered, refreshing) = (&self.scheduler, self.answered, &self.refreshing);
        let asked = |i| !scheduler.may_join(ranked(answered, i)) || refreshing.contains(&i);
        let Some(i) = self.joins.ask(source, &mut self.sources, asked) else { return };
        let source = self.sources[i].clone();
        self.tasks.spawn(async move { Done::Connected(i, source.transport.connect(source.addr, source.node).await) });
    }

    /// Asks source `i` over `conn` which chunks it has.
    fn ask_have(&mut self, i: SourceIndex, conn: Arc<dyn Connection>) {
        self.refreshing.insert(i);
        let (ask, len) = (Request::Have(self.id), Bitmap::byte_len(self.manifest.chunk_count()) as u64);
        self.tasks.spawn(async move { Done::Have(i, request(&*conn, &ask, len, Vec::new()).await) });
    }

    /// The end: the file renamed into place once every chunk is verified, or why not.
    async fn finish(mut self) -> Result<PathBuf, NodeError> {
        match self.scheduler.status(now()) {
            Status::Done => {
                self.tasks.shutdown().await;
                let part = self.part.clone();
                blocking(move || part.finish()).await.map_err(NodeError::from)
            }
            Status::Stuck { .. } if !self.scheduler.has_hosts() => {
                let (name, part, have) =
                    (self.manifest.name().into(), self.part.part_path().into(), self.part.progress());
                Err(NodeError::SourcesGone { name, part, verified: have.bytes, size: self.manifest.size() })
            }
            Status::Stuck { missing } => {
                Err(NodeError::Incomplete { chunks: missing, part: self.part.part_path().into() })
            }
            Status::Running => unreachable!("a download ends only when nothing is in flight or waited for"),
        }
    }

    fn tell_started(&mut self) {
        let progress = self.part.progress();
        (self.on_event)(&DownloadEvent::Started {
            have: progress.chunks,
            have_bytes: progress.bytes,
            sources: self.conns.len(),
            part: self.part.part_path().to_path_buf(),
            earlier_version: self.part.took_over(),
            manifest: self.manifest.clone(),
            verified: self.part.verified().clone(),
        });
    }
}

/// Refuses a download of `manifest` into `dir` that needs `needs` more bytes than its file system has
/// free (where the options check, and the platform says).
fn check_space(manifest: &Manifest, dir: &Path, needs: u64, options: &DownloadOptions) -> Result<(), NodeError> {
    match store::free_space(dir) {
        Some(free) if options.space_check && free < needs => {
            let (name, dir) = (manifest.name().to_string(), dir.to_path_buf());
            Err(NodeError::NoSpace { name, dir, needs, free })
        }
        _ => Ok(()),
    }
}

/// The `.part` file of `manifest` in `dir`, opened or resumed off the async threads.
async fn open_part(dir: &Path, manifest: &Arc<Manifest>, key: &StateKey) -> Result<PartFile, NodeError> {
    let (dir, manifest, key) = (dir.to_path_buf(), manifest.clone(), key.clone());
    Ok(blocking(move || PartFile::open(&dir, manifest, &key)).await?)
}

/// A bitmap as the scheduler takes it: `None` where every chunk is there.
fn whole_or(bits: Bitmap) -> Option<Bitmap> {
    (!bits.is_full()).then_some(bits)
}

/// The scheduler's clock: tokio's, so that its timeouts and the driver's sleeps agree on a paused clock.
fn now() -> std::time::Instant {
    Instant::now().into_std()
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
