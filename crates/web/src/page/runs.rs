//! The fetches started from the page: each a run of the client's [`Fetch`], its events folded into a
//! state the page draws (per file and for the whole run: bytes, rate, ETA, sources), told to every open
//! page as it changes, at most every [`TOLD_EVERY`] while bytes flow and not at all while nothing does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use node::{Client, DownloadEvent, FetchError, FetchEvent, FetchOptions, NodeId};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

/// How often a run in progress tells the pages how it goes.
pub(crate) const TOLD_EVERY: Duration = Duration::from_millis(250);
/// The runs kept once ended, for the pages opened later to show.
const KEPT_ENDED: usize = 20;
/// Runs in progress at once: each holds connections and file handles.
pub(crate) const MAX_RUNNING: usize = 8;
/// Updates a slow page may fall behind by before it is told to load everything again.
const UPDATES_BUFFERED: usize = 256;

/// Every run of this page, and the channel that tells the pages of them.
pub(crate) struct Runs {
    runs: Mutex<BTreeMap<u64, Run>>,
    next: AtomicU64,
    pub(crate) updates: broadcast::Sender<Value>,
}

/// One run as the page draws it.
#[derive(Serialize)]
struct Run {
    id: u64,
    queries: Vec<String>,
    /// `looking`, `fetching`, `done`, `failed`, `cancelled`.
    state: &'static str,
    error: Option<String>,
    files: Vec<FileRow>,
    total: u64,
    bytes: u64,
    /// Bytes a second over the last few seconds.
    rate: f64,
    /// The names of the peers sending now.
    sources: Vec<String>,
    #[serde(skip)]
    cancel: watch::Sender<bool>,
    /// Files changed since the pages were last told.
    #[serde(skip)]
    changed: HashSet<usize>,
}

/// One file of a run.
#[derive(Clone, Serialize)]
struct FileRow {
    to: String,
    size: u64,
    got: u64,
    /// `waiting`, `fetching`, `done`, `have`, `failed`.
    state: &'static str,
    error: Option<String>,
}

/// Why a run was not started.
#[derive(Debug)]
pub(crate) enum StartError {
    Busy,
    NoQuery,
}

impl Runs {
    pub(crate) fn new() -> Self {
        let (updates, _) = broadcast::channel(UPDATES_BUFFERED);
        Self { runs: Mutex::default(), next: AtomicU64::new(1), updates }
    }

    /// Every run, as the page draws them.
    pub(crate) fn snapshot(&self) -> Value {
        let runs = self.lock();
        json!(runs.values().collect::<Vec<_>>())
    }

    /// Starts fetching what `queries` name into `dest`; returns the run's id.
    pub(crate) fn start(
        self: &Arc<Self>,
        client: &Client,
        queries: Vec<String>,
        dest: PathBuf,
    ) -> Result<u64, StartError> {
        if queries.is_empty() {
            return Err(StartError::NoQuery);
        }
        let (cancel, cancelled) = watch::channel(false);
        let id = {
            let mut runs = self.lock();
            if runs.values().filter(|r| matches!(r.state, "looking" | "fetching")).count() >= MAX_RUNNING {
                return Err(StartError::Busy);
            }
            let id = self.next.fetch_add(1, Ordering::Relaxed);
            let run = Run::new(id, queries.clone(), cancel);
            runs.insert(id, run);
            let ended: Vec<u64> = runs.values().filter(|r| r.ended()).map(|r| r.id).collect();
            for old in ended.iter().take(ended.len().saturating_sub(KEPT_ENDED)) {
                runs.remove(old);
            }
            id
        };
        self.tell_whole(id);
        // The page's runs pass nothing on themselves: the node serves its downloads folder.
        let options = FetchOptions::default().upload(false);
        let fetch = client.fetch(queries, dest, options);
        tokio::spawn(self.clone().drive(id, fetch, cancelled));
        Ok(id)
    }

    /// Cancels run `id`; whether there was one in progress.
    pub(crate) fn cancel(&self, id: u64) -> bool {
        let runs = self.lock();
        runs.get(&id).filter(|r| !r.ended()).map(|r| r.cancel.send_replace(true)).is_some()
    }

    /// Reads the fetch's events into the run, telling the pages every [`TOLD_EVERY`] while it runs.
    async fn drive(self: Arc<Self>, id: u64, mut fetch: node::Fetch, mut cancelled: watch::Receiver<bool>) {
        let mut rate = Rate::default();
        let mut every = tokio::time::interval(TOLD_EVERY);
        let mut names: HashMap<NodeId, String> = HashMap::new();
        loop {
            tokio::select! {
                event = fetch.next_event() => match event {
                    Some(event) => self.on(id, event, &mut names, &mut rate),
                    None => break,
                },
                _ = cancelled.changed() => fetch.cancel(),
                _ = every.tick() => self.tell_progress(id, &mut rate),
            }
        }
        let outcome = fetch.finish().await;
        if let Some(run) = self.lock().get_mut(&id) {
            (run.state, run.error, run.rate, run.sources) = match outcome {
                Ok(()) => ("done", None, 0.0, Vec::new()),
                Err(FetchError::Cancelled) => ("cancelled", None, 0.0, Vec::new()),
                Err(e) => ("failed", Some(e.to_string()), 0.0, Vec::new()),
            };
        }
        self.tell_whole(id);
    }

    fn on(&self, id: u64, event: FetchEvent, names: &mut HashMap<NodeId, String>, rate: &mut Rate) {
        let mut runs = self.lock();
        let Some(run) = runs.get_mut(&id) else { return };
        match event {
            FetchEvent::Planned { files, peers } => {
                names.extend(peers.iter().map(|p| (p.id(), p.announcement.name.clone())));
                run.total = files.iter().map(|f| f.size).sum();
                run.files = files.into_iter().map(|f| FileRow::new(f.to, f.size)).collect();
                run.state = "fetching";
                drop(runs);
                self.tell_whole(id);
            }
            FetchEvent::Download { file, event } => run.on_download(file, event, names, rate),
            FetchEvent::AlreadyHave { file, .. } => run.set(file, "have", None),
            FetchEvent::Done { file, .. } => run.set(file, "done", None),
            FetchEvent::Failed { file, error, .. } => run.set(file, "failed", Some(error)),
            _ => {}
        }
    }

    /// Tells the pages what changed in run `id` since the last time, if anything did.
    fn tell_progress(&self, id: u64, rate: &mut Rate) {
        let mut runs = self.lock();
        let Some(run) = runs.get_mut(&id) else { return };
        let now = rate.now(run.bytes);
        if run.changed.is_empty() && now == run.rate {
            return;
        }
        run.rate = now;
        let mut changed: Vec<usize> = run.changed.drain().collect();
        changed.sort_unstable();
        let files: Vec<Value> = changed.iter().map(|&i| json!([i, run.files[i]])).collect();
        let update = json!({"kind": "progress", "id": id, "bytes": run.bytes, "rate": run.rate,
            "sources": run.sources, "files": files});
        let _ = self.updates.send(update);
    }

    fn tell_whole(&self, id: u64) {
        let mut runs = self.lock();
        if let Some(run) = runs.get_mut(&id) {
            run.changed.clear();
            let _ = self.updates.send(json!({"kind": "run", "run": run}));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Run>> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Run {
    fn new(id: u64, queries: Vec<String>, cancel: watch::Sender<bool>) -> Self {
        let (files, sources, changed) = (Vec::new(), Vec::new(), HashSet::new());
        Self {
            id,
            queries,
            state: "looking",
            error: None,
            files,
            total: 0,
            bytes: 0,
            rate: 0.0,
            sources,
            cancel,
            changed,
        }
    }

    fn ended(&self) -> bool {
        matches!(self.state, "done" | "failed" | "cancelled")
    }

    fn on_download(&mut self, file: usize, event: DownloadEvent, names: &HashMap<NodeId, String>, rate: &mut Rate) {
        let Some(row) = self.files.get_mut(file) else { return };
        match event {
            DownloadEvent::Started { have_bytes, .. } => {
                (row.got, row.state) = (have_bytes, "fetching");
                self.bytes += have_bytes;
                rate.skip(have_bytes);
            }
            DownloadEvent::Chunk { bytes, peer, .. } => {
                row.got += u64::from(bytes);
                self.bytes += u64::from(bytes);
                let name = names.get(&peer).cloned().unwrap_or_else(|| peer.short());
                if !self.sources.contains(&name) {
                    self.sources.push(name);
                }
            }
            DownloadEvent::SourceDropped { peer, .. } => {
                let name = names.get(&peer).cloned().unwrap_or_else(|| peer.short());
                self.sources.retain(|n| *n != name);
            }
            _ => return,
        }
        self.changed.insert(file);
    }

    fn set(&mut self, file: usize, state: &'static str, error: Option<String>) {
        let Some(row) = self.files.get_mut(file) else { return };
        if state == "have" {
            self.bytes += row.size - row.got;
        }
        (row.state, row.error) = (state, error);
        if state != "failed" {
            row.got = row.size;
        }
        self.changed.insert(file);
    }
}

impl FileRow {
    fn new(to: String, size: u64) -> Self {
        Self { to, size, got: 0, state: "waiting", error: None }
    }
}

/// The rate over the last few seconds, from the byte counts seen at each tick.
#[derive(Default)]
struct Rate {
    /// (when, bytes fetched then, less those found already there).
    seen: Vec<(Instant, u64)>,
    /// Bytes that were there already (a resume, a file already had): not counted as fetched.
    skipped: u64,
}

impl Rate {
    const OVER: Duration = Duration::from_secs(3);

    fn skip(&mut self, bytes: u64) {
        self.skipped += bytes;
    }

    /// Bytes a second, with `bytes` counted now.
    fn now(&mut self, bytes: u64) -> f64 {
        let (now, fetched) = (Instant::now(), bytes.saturating_sub(self.skipped));
        self.seen.retain(|(when, _)| now - *when <= Self::OVER);
        self.seen.push((now, fetched));
        let (first_at, first) = self.seen[0];
        let secs = (now - first_at).as_secs_f64();
        if secs < 0.2 { 0.0 } else { fetched.saturating_sub(first) as f64 / secs }
    }
}
