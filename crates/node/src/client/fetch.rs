//! A fetch: the files some queries name, downloaded into a destination several at once, each from every
//! peer that has it; told as typed events, cancellable, and (where the client uploads) passing verified
//! chunks on to other downloaders, for a while after it is done too.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use discovery::Peer;
use futures_util::StreamExt;
use proto::FileId;
use store::{Copies, StateKey};
use tokio::sync::{mpsc, watch};

use crate::NodeError;
use crate::client::{Client, Wanted};
use crate::download::{DownloadEvent, DownloadOptions, download, download_joined};
use crate::error::FetchError;
use crate::state_dir::StateDir;
use crate::swarm::Offer;

/// How long no downloader must ask anything before a fetch stops serving them (by default): two of
/// their bitmap refreshes, so that one that still lacks chunks has asked again.
const SEED_QUIET: Duration = Duration::from_secs(1);
/// The longest a fetch serves the others once done (by default), whatever they ask.
const SEED_MOST: Duration = Duration::from_secs(10);

/// How a fetch goes about it. `Default`, then the setters.
#[derive(Clone, Copy, Debug)]
pub struct FetchOptions {
    force: bool,
    delete_incomplete: bool,
    upload: bool,
    seed: Seed,
    space_check: bool,
}

/// How long a fetch keeps serving the other downloaders once it is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seed {
    /// This long (zero: not at all).
    For(Duration),
    /// Until none has asked anything for a second, at most ten.
    UntilQuiet,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self { force: false, delete_incomplete: false, upload: true, seed: Seed::UntilQuiet, space_check: true }
    }
}

impl FetchOptions {
    /// Fetch even where the destination holds the file already (the copy gets a free name).
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// Delete the verified part of a file that cannot complete, rather than keep it for a resume.
    pub fn delete_incomplete(mut self, delete: bool) -> Self {
        self.delete_incomplete = delete;
        self
    }

    /// Pass verified chunks on to other downloaders of the same files (where the client can upload).
    pub fn upload(mut self, upload: bool) -> Self {
        self.upload = upload;
        self
    }

    /// Whether the fetch passes verified chunks on.
    pub fn uploads(&self) -> bool {
        self.upload
    }

    /// How long to serve the others once done, where uploading.
    pub fn seed(mut self, seed: Seed) -> Self {
        self.seed = seed;
        self
    }

    /// Whether a file whose destination has less free space than it needs is refused before anything is
    /// fetched (by default it is; forcing does not change that).
    pub fn space_check(mut self, check: bool) -> Self {
        self.space_check = check;
        self
    }
}

/// A file a fetch plans to fetch: the events of a fetch name files by their place in the plan.
#[derive(Clone, Debug)]
pub struct Planned {
    /// Its id.
    pub id: FileId,
    /// Its name as its hosts give it.
    pub name: String,
    /// Where it goes below the destination (folders, then its name).
    pub to: String,
    /// Its size in bytes.
    pub size: u64,
}

/// What a fetch tells as it goes, in order.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum FetchEvent {
    /// The queries are resolved: these files are fetched, from among these peers. Told first.
    Planned {
        /// The files.
        files: Vec<Planned>,
        /// The peers that answered.
        peers: Vec<Peer>,
    },
    /// A file's download goes on: started, a chunk, a failed request, a source dropped.
    Download {
        /// The file, by its place in the plan.
        file: usize,
        /// What happened.
        event: DownloadEvent,
    },
    /// The destination holds the file already: nothing fetched.
    AlreadyHave {
        /// The file.
        file: usize,
        /// Where it is.
        path: PathBuf,
    },
    /// A file is complete, verified and in its place.
    Done {
        /// The file.
        file: usize,
        /// Where it is.
        path: PathBuf,
    },
    /// A file failed; the others go on.
    Failed {
        /// The file.
        file: usize,
        /// Why (its message, as [`NodeError`] says it).
        error: String,
        /// Where its verified part is kept, if it is (a resume starts from it).
        part: Option<PathBuf>,
    },
    /// Every file is there, and the fetch serves the other downloaders a while longer (told only where
    /// it waits: a fetch nobody asked anything of ends with its last file).
    Seeding,
}

/// The future of a fetch.
type Running = Pin<Box<dyn Future<Output = Result<(), FetchError>> + Send>>;

/// A fetch in progress: its events, its cancellation and its outcome. It runs as it is read, in the task
/// that reads it ([`Fetch::next_event`], [`Fetch::drive`], [`Fetch::finish`]): its events reach the
/// reader with no hop between threads (a fetch of 10,000 small files tells 30,000). Run several at once by
/// reading each in a task of its own. Dropping it cancels the fetch.
pub struct Fetch {
    events: mpsc::UnboundedReceiver<FetchEvent>,
    cancel: watch::Sender<bool>,
    /// The fetch itself, until it has ended.
    running: Option<Running>,
    outcome: Option<Result<(), FetchError>>,
}

impl Fetch {
    /// The next event; `None` once the fetch has ended (then [`Fetch::finish`] says how).
    pub async fn next_event(&mut self) -> Option<FetchEvent> {
        loop {
            let Some(running) = self.running.as_mut() else { return self.events.recv().await };
            tokio::select! {
                // Events first: those told before the end are read before it.
                biased;
                event = self.events.recv() => return event,
                outcome = running => {
                    self.outcome = Some(outcome);
                    // Its teller goes with it: the events left are read, then `None`.
                    self.running = None;
                }
            }
        }
    }

    /// Stops the fetch: downloads in progress end at once, their verified parts kept; a fetch that
    /// is done and only serving others ends successfully.
    pub fn cancel(&self) {
        self.cancel.send_replace(true);
    }

    /// Runs the fetch to its end, its events handed to `on_event`, cancelling it once `stop` completes
    /// (what a front end's Ctrl-C or stop button is).
    pub async fn drive(
        mut self,
        stop: impl std::future::Future<Output = ()>,
        mut on_event: impl FnMut(FetchEvent),
    ) -> Result<(), FetchError> {
        tokio::pin!(stop);
        let mut stopped = false;
        loop {
            tokio::select! {
                event = self.next_event() => match event {
                    Some(event) => on_event(event),
                    None => return self.finish().await,
                },
                () = &mut stop, if !stopped => {
                    stopped = true;
                    self.cancel();
                }
            }
        }
    }

    /// Runs the fetch to its end, its events dropped.
    pub async fn finish(mut self) -> Result<(), FetchError> {
        self.events.close();
        match self.running.take() {
            Some(running) => running.await,
            None => self.outcome.take().unwrap_or(Ok(())),
        }
    }
}

impl Client {
    /// Fetches what `queries` name into `dest`: see [`Fetch`] for its events and cancellation.
    pub fn fetch(&self, queries: Vec<String>, dest: PathBuf, options: FetchOptions) -> Fetch {
        self.start(Plan::Queries(queries), dest, options)
    }

    /// Fetches `wanted`, from the sources each names, into `dest`: a [`Client::fetch`] whose files were
    /// chosen already (what a peer offered, say).
    pub fn fetch_given(&self, wanted: Vec<Wanted>, dest: PathBuf, options: FetchOptions) -> Fetch {
        self.start(Plan::Given(wanted), dest, options)
    }

    fn start(&self, plan: Plan, dest: PathBuf, options: FetchOptions) -> Fetch {
        let (tell, events) = mpsc::unbounded_channel();
        let (cancel, cancelled) = watch::channel(false);
        let running = Box::pin(run(self.clone(), plan, dest, options, Teller(tell), cancelled));
        Fetch { events, cancel, running: Some(running), outcome: None }
    }
}

/// What a fetch fetches: what queries name in the peers' catalogues, or files chosen already.
enum Plan {
    Queries(Vec<String>),
    Given(Vec<Wanted>),
}

/// Tells events to whoever reads them; nobody reading is fine.
#[derive(Clone)]
struct Teller(mpsc::UnboundedSender<FetchEvent>);

impl Teller {
    fn tell(&self, event: FetchEvent) {
        let _ = self.0.send(event);
    }
}

async fn run(
    client: Client,
    plan: Plan,
    dest: PathBuf,
    options: FetchOptions,
    teller: Teller,
    mut cancelled: watch::Receiver<bool>,
) -> Result<(), FetchError> {
    crate::check_writable(&dest).map_err(FetchError::Destination)?;
    let uploading = match options.upload {
        true => client.uploading().await,
        false => None,
    };
    let fetched = async {
        let wanted = match plan {
            Plan::Queries(queries) => client.select(&queries).await?,
            Plan::Given(wanted) => wanted,
        };
        let peers = client.peer_table().now();
        let files = wanted.iter().map(|w| Planned {
            id: w.id,
            name: w.entry.name.clone(),
            to: w.to.clone(),
            size: w.entry.size,
        });
        teller.tell(FetchEvent::Planned { files: files.collect(), peers });
        fetch_all(&client, &wanted, &dest, options, uploading.map(|u| u.offer()), &teller).await
    };
    tokio::select! {
        fetched = fetched => fetched?,
        _ = cancelled.wait_for(|c| *c) => return Err(FetchError::Cancelled),
    }
    let Some(uploading) = uploading else { return Ok(()) };
    let seeding = async {
        match options.seed {
            Seed::For(time) => tokio::time::sleep(time).await,
            Seed::UntilQuiet => _ = tokio::time::timeout(SEED_MOST, uploading.quiet_for(SEED_QUIET)).await,
        }
    };
    tokio::pin!(seeding);
    // Told only where it waits: a fetch nobody asked anything of for a second ends with its last file.
    if futures_util::FutureExt::now_or_never(&mut seeding).is_some() {
        return Ok(());
    }
    teller.tell(FetchEvent::Seeding);
    // Done already: whatever ends the seeding, the fetch stands.
    tokio::select! {
        () = seeding => {}
        () = uploading.stopped() => {}
        _ = cancelled.wait_for(|c| *c) => {}
    }
    Ok(())
}

/// Fetches `wanted` into `dest`, several files at once.
async fn fetch_all(
    client: &Client,
    wanted: &[Wanted],
    dest: &Path,
    options: FetchOptions,
    offer: Option<Offer>,
    teller: &Teller,
) -> Result<(), FetchError> {
    let config = &client.inner().config;
    // Opened only now, with files to fetch: a fetch that finds nothing leaves no state folder behind.
    let state = config.state_dir.as_deref().map(StateDir::open).transpose().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "no state folder; this download cannot be resumed later");
        None
    });
    let key = state.as_ref().and_then(|s| s.key().inspect_err(|e| tracing::warn!(error = %e, "no state key")).ok());
    let copies = state.as_ref().filter(|_| !options.force).map(|s| Arc::new(Mutex::new(s.copies())));
    let (client, dest, teller) = (client.clone(), dest.to_path_buf(), teller.clone());
    let download = DownloadOptions::new(key.unwrap_or_else(StateKey::random)).timeout(config.net.timeout);
    let download = download.space_check(options.space_check);
    let run = Arc::new(OneFile { client, dest, download, options, offer, teller, copies });
    // Each file's future made as its turn comes (10,000 made at once cost a fetch of small files 10 %),
    // and owning what it uses: a stream over borrowing closures is not provably `Send`
    // (rust-lang/rust#102211).
    let files = wanted.iter().cloned().enumerate().map(|(index, file)| {
        let run = run.clone();
        async move { run.one(index, &file).await }
    });
    let results: Vec<_> = futures_util::stream::iter(files).buffer_unordered(config.files_at_once).collect().await;
    let failed: Vec<NodeError> = results.into_iter().filter_map(Result::err).collect();
    match failed.len() {
        0 => Ok(()),
        // One file: its own error says it all.
        _ if wanted.len() == 1 => Err(FetchError::File(failed.into_iter().next().expect("one failure"))),
        n => Err(FetchError::Files { failed: n, of: wanted.len() }),
    }
}

/// What the files of one fetch share.
struct OneFile {
    client: Client,
    dest: PathBuf,
    download: DownloadOptions,
    options: FetchOptions,
    /// Where the verified chunks are offered to other downloaders (`None`: no upload).
    offer: Option<Offer>,
    teller: Teller,
    /// What the destination holds already (`None` when forced, or with no state folder's hash cache).
    copies: Option<Arc<Mutex<Copies>>>,
}

impl OneFile {
    /// Fetches file `index` into its place below the destination, unless it is already there.
    async fn one(&self, index: usize, file: &Wanted) -> Result<(), NodeError> {
        // Folders as the dictionary gives them (safe components), each made a valid name on this system.
        let mut folders: Vec<&str> = file.to.split('/').collect();
        let name = folders.pop().unwrap_or_default();
        let rules = store::NameRules::of(&self.dest);
        let dir =
            folders.iter().fold(self.dest.to_path_buf(), |dir, folder| dir.join(store::safe_file_name(folder, rules)));
        let (id, entry) = (file.id, &file.entry);
        if let Some(path) = self.copy_of(&dir, id, name, entry.size).await {
            self.teller.tell(FetchEvent::AlreadyHave { file: index, path });
            return Ok(());
        }
        let outcome = self.download(index, file, &dir).await;
        match &outcome {
            Ok(path) => self.teller.tell(FetchEvent::Done { file: index, path: path.clone() }),
            Err(error) => {
                let mut part = match error {
                    NodeError::Incomplete { part, .. } | NodeError::SourcesGone { part, .. } => Some(part.clone()),
                    _ => None,
                };
                if self.options.delete_incomplete
                    && let Some(path) = part.take()
                {
                    store::discard_part(&path).map_err(NodeError::from)?;
                }
                self.teller.tell(FetchEvent::Failed { file: index, error: error.to_string(), part });
            }
        }
        outcome.map(drop)
    }

    /// A file at `dir` that holds `id` already (looked up by its `name` and `size` first).
    async fn copy_of(&self, dir: &Path, id: FileId, name: &str, size: u64) -> Option<PathBuf> {
        let copies = self.copies.as_ref()?;
        let find = || copies.lock().unwrap_or_else(PoisonError::into_inner).find(dir, id, name, size);
        // Hashing what is there already is file work, kept off the async threads; in place rather than
        // on the blocking pool: most lookups are one stat, and a hop per file cost a fetch of 10,000
        // small files 15 %. A single-threaded runtime (an embedder's) cannot lend its thread.
        match tokio::runtime::Handle::current().runtime_flavor() {
            tokio::runtime::RuntimeFlavor::CurrentThread => find(),
            _ => tokio::task::block_in_place(find),
        }
    }

    async fn download(&self, index: usize, file: &Wanted, dir: &Path) -> Result<PathBuf, NodeError> {
        if file.sources.is_empty() {
            let transports = self.client.transport_names().into_iter().map(str::to_string).collect();
            return Err(NodeError::NoTransport { name: file.entry.name.clone(), transports });
        }
        let tell = |event: &DownloadEvent| self.teller.tell(FetchEvent::Download { file: index, event: event.clone() });
        let Some(offer) = &self.offer else {
            return download(file.id, &file.sources, dir, &self.download, tell).await;
        };
        // The swarm follows the download: it serves the chunks as they are verified (from memory), then
        // the whole file; the download asks the peers that join.
        let on_event = |event: &DownloadEvent| {
            if let DownloadEvent::Started { manifest, part, verified, .. } = event {
                offer.part(manifest.clone(), part, verified.clone());
            }
            tell(event);
        };
        let outcome = download_joined(file.id, &file.sources, dir, &self.download, offer.joining(), on_event).await;
        match &outcome {
            Ok(path) => offer.finished(file.id, path),
            Err(_) => offer.withdraw(file.id),
        }
        outcome
    }
}
