//! What `get` shows while it works. On a terminal: a spinner while the LAN is asked, then one bar for the
//! whole run (every file of it), sized to the terminal, with the rate and ETA of the last few seconds and
//! each source's name and rate; log lines and results print above it. With --json: one event per step.
//! Otherwise: a line per file for the first few, then a count every few seconds, and a summary.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::time::{Duration, Instant};

use console::Term;
use indicatif::ProgressBar;
use node::{DownloadEvent, Escaped, FileId, NodeId, escape};

use crate::events::Event;
use crate::terminal::{REFRESH, WIDE, above, drawn, show, style, unshow};
use crate::words::{already_there, cut, distinct, fit_list, human_bytes};

/// The rate shown is over this much of the recent past: it follows a source that drops or slows within
/// seconds, yet does not jump with each chunk.
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// How often the bar is drawn again while nothing arrives.
pub(crate) const TICK: Duration = Duration::from_millis(500);
/// The longest a name may take on the bar (a file's, or a source's).
const NAME_ROOM: usize = 16;

/// The progress of one `get`: all its files together.
pub(crate) struct Progress {
    json: bool,
    bar: Option<ProgressBar>,
    /// Peers' names by node id, as they announce them (escaped wherever shown).
    names: HashMap<NodeId, String>,
    files: usize,
    finished: usize,
    /// Bytes of every file of the run.
    total: u64,
    /// Bytes the destination held before this run: whole files it had, verified parts it resumes.
    there: u64,
    /// Bytes this run fetched.
    fetched: u64,
    started: Instant,
    recent: Window,
    sources: HashMap<NodeId, Window>,
    refreshed: Option<Instant>,
    /// Whether the bar has its [`WIDE`] layout (`None` before the first drawing).
    wide: Option<bool>,
    /// The per-file lines held back past the first few.
    quiet: Quieted,
}

/// One file of the run, as its download goes.
pub(crate) struct FileProgress {
    id: FileId,
    /// Its name as its peers give it: escaped wherever it is shown.
    name: String,
    size: u64,
    /// Bytes verified before this run (a resume).
    resumed: u64,
    done: u64,
    started: Instant,
}

impl FileProgress {
    pub(crate) fn new(id: FileId, name: &str, size: u64) -> Self {
        let (name, started) = (name.to_string(), Instant::now());
        Self { id, name, size, resumed: 0, done: 0, started }
    }
}

impl Progress {
    /// The progress of fetching `files` of `total` bytes together from peers named in `names`.
    pub(crate) fn new(json: bool, verbose: bool, files: usize, total: u64, names: HashMap<NodeId, String>) -> Self {
        let bar = drawn(json).then(|| show(ProgressBar::new(total)));
        let now = Instant::now();
        let (recent, sources) = (Window::new(now), HashMap::new());
        let (finished, there, fetched, refreshed, wide) = (0, 0, 0, None, None);
        let (started, names) = (now, distinct(names));
        let quiet = Quieted { verbose, told: 0, since: 0, bytes: 0, at: now };
        Self {
            json,
            bar,
            names,
            files,
            finished,
            total,
            there,
            fetched,
            started,
            recent,
            sources,
            refreshed,
            wide,
            quiet,
        }
    }

    /// Takes one step of `file`'s download.
    pub(crate) fn on(&mut self, file: &mut FileProgress, event: &DownloadEvent) {
        let now = Instant::now();
        match event {
            DownloadEvent::Started { manifest, have_bytes, earlier_version, part, .. } => {
                let size = manifest.size();
                (file.size, file.resumed, file.done, file.started) = (size, *have_bytes, *have_bytes, now);
                self.there += have_bytes;
                let share = *have_bytes as f64 * 100.0 / size.max(1) as f64;
                let name = Escaped(&file.name);
                if *earlier_version && !self.json {
                    let part = Escaped(&part.display().to_string()).to_string();
                    self.note(&format!(
                        "{name} changed since {part} was begun: the part now downloads the new version, keeping \
                         the {share:.0} % that is the same"
                    ));
                } else if *have_bytes > 0 && !self.json {
                    self.note(&format!("resuming {name}: {share:.0} % already verified"));
                }
            }
            DownloadEvent::Chunk { bytes, peer, .. } => {
                file.done += u64::from(*bytes);
                self.fetched += u64::from(*bytes);
                self.recent.add(now, u64::from(*bytes));
                self.sources.entry(*peer).or_insert_with(|| Window::new(now)).add(now, u64::from(*bytes));
            }
            DownloadEvent::SourceDropped { peer, why, waiting } => {
                self.sources.remove(peer);
                let waiting = match waiting {
                    Some(wait) => format!("; waiting up to {} s for another host", wait.as_secs_f64()),
                    None => String::new(),
                };
                tracing::warn!("{} {why}{waiting}", self.name_of(peer));
            }
            DownloadEvent::ChunkFailed { index, peer, corrupt: true, .. } => {
                tracing::warn!("chunk {index} of {} from {} was corrupt; asked again", file.name, self.name_of(peer));
            }
            DownloadEvent::ChunkFailed { .. } => {}
        }
        if self.json {
            event_json(event, file.id, file.done).print();
        }
        self.refresh(now, file);
    }

    /// Counts a file the destination holds already (at `path`), and says so.
    pub(crate) fn already_have(&mut self, file: &FileProgress, path: &Path) {
        self.finished += 1;
        self.there += file.size;
        if self.json {
            let (id, name, path) = (file.id.to_string(), file.name.clone(), path.to_path_buf());
            Event::AlreadyHave { id, name, path }.print();
        } else {
            let path = path.display().to_string();
            above(|| say!("already have {} ({})", Escaped(&file.name), Escaped(&path)));
        }
        self.refresh(Instant::now(), file);
    }

    /// Says that `file` is complete at `path`.
    pub(crate) fn done(&mut self, file: &FileProgress, path: &Path) {
        self.finished += 1;
        let secs = file.started.elapsed().as_secs_f64();
        let rate = (file.done - file.resumed) as f64 / secs.max(1e-3);
        if self.json {
            let (id, path, size) = (file.id.to_string(), path.to_path_buf(), file.size);
            Event::Done { id, path, size, seconds: secs, bytes_per_second: rate }.print();
            return;
        }
        // A name the destination does not take, or may not be given, is saved as another, and said so
        // even where lines are counted; one taken (by another file, or the same with --force) went beside.
        let (wanted, renamed) = node::saved_as(&file.name, node::NameRules::of(path.parent().unwrap_or(path)));
        let saved = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut why: Vec<String> = renamed.into_iter().collect();
        if saved != wanted {
            why.push(format!("{} is taken there", Escaped(&wanted)));
        }
        if why.is_empty() && self.quiet.quiets(file.size) {
            self.refresh(Instant::now(), file);
            return;
        }
        let line = format!(
            "downloaded {} ({}) in {secs:.1}s ({}/s{}) to {}{}",
            Escaped(&file.name),
            human_bytes(file.size),
            human_bytes(rate as u64),
            already_there(file.resumed, file.size),
            Escaped(&path.display().to_string()),
            match why.is_empty() {
                true => String::new(),
                false => format!(" (saved as {}: {})", Escaped(&saved), why.join("; ")),
            }
        );
        above(|| say!("{line}"));
        self.refresh(Instant::now(), file);
    }

    /// Draws the bar as it stands now: with nothing arriving, its rate and ETA fall. `file`: the first of
    /// the run (named on the bar where it is the only one).
    pub(crate) fn tick(&mut self, file: &FileProgress) {
        self.refresh(Instant::now(), file);
    }

    /// Prints a line above the bar (stderr).
    pub(crate) fn note(&self, line: &str) {
        above(|| eprintln!("{line}"));
    }

    /// Ends the display; several files get a summary line.
    pub(crate) fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            unshow(&bar, true);
        }
        if !self.json {
            self.quiet.tell_now();
        }
        if !self.json {
            self.quiet.tell_now();
        }
        if self.files > 1 && !self.json && self.fetched == 0 && self.finished == self.files {
            say!("all {} files ({}) were already here", self.files, human_bytes(self.total));
        } else if self.files > 1 && !self.json {
            let secs = self.started.elapsed().as_secs_f64();
            say!(
                "{} of {} files ({}) in {secs:.1}s ({}/s{})",
                self.finished,
                self.files,
                human_bytes(self.total),
                human_bytes((self.fetched as f64 / secs.max(1e-3)) as u64),
                already_there(self.there, self.total),
            );
        }
    }

    /// A peer as people know it: by the name it announces (logs escape it), else by its short id.
    fn name_of(&self, peer: &NodeId) -> String {
        self.names.get(peer).cloned().unwrap_or_else(|| peer.short())
    }

    /// Rebuilds the bar's text, at most every [`REFRESH`]; `file`: the one that moved.
    fn refresh(&mut self, now: Instant, file: &FileProgress) {
        let Some(bar) = &self.bar else { return };
        if self.refreshed.is_some_and(|t| now - t < REFRESH) {
            return;
        }
        self.refreshed = Some(now);
        // The terminal may have been resized since.
        let wide = Term::stderr().size().1 >= WIDE;
        if self.wide != Some(wide) {
            self.wide = Some(wide);
            bar.set_style(style(wide));
        }
        bar.set_position(self.there + self.fetched);
        bar.set_prefix(match self.files {
            1 => cut(&escape(&file.name), NAME_ROOM),
            n => format!("{}/{n} files", self.finished),
        });
        let rate = self.recent.rate(now);
        let left = self.total.saturating_sub(self.there + self.fetched);
        let eta = if rate >= 1.0 { format!("{:.0}s", left as f64 / rate) } else { "?".into() };
        let mut rates: Vec<(f64, NodeId)> = self.sources.iter_mut().map(|(p, w)| (w.rate(now), *p)).collect();
        rates.retain(|(rate, _)| *rate > 0.0);
        rates.sort_by(|a, b| b.0.total_cmp(&a.0));
        let sources: Vec<String> = rates
            .iter()
            .map(|(rate, peer)| {
                format!("{} {}/s", cut(&escape(&self.name_of(peer)), NAME_ROOM), human_bytes(*rate as u64))
            })
            .collect();
        let bytes = format!("{}/{} ", human_bytes(self.there + self.fetched), human_bytes(self.total));
        let head = format!("{}/s ETA {eta} {}from ", human_bytes(rate as u64), if wide { bytes.as_str() } else { "" });
        // What the line has before the message: the prefix, the bar where wide, the percentage.
        let before = console::measure_text_width(&bar.prefix()) + if wide { 23 } else { 0 } + 6;
        let room = usize::from(Term::stderr().size().1).saturating_sub(before + console::measure_text_width(&head));
        // Each source with its rate where all fit; else by name alone, as many as fit.
        let from = match sources.join(", ") {
            all if sources.is_empty() => all + "nobody yet",
            all if console::measure_text_width(&all) <= room => all,
            _ => {
                let names: Vec<String> =
                    rates.iter().map(|(_, peer)| cut(&escape(&self.name_of(peer)), NAME_ROOM)).collect();
                fit_list(&names, room)
            }
        };
        bar.set_message(format!("{head}{from}"));
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            unshow(&bar, false);
        }
    }
}

/// Files told one line each, past which `get` tells a line every [`QUIET_EVERY`] instead (-v: all).
const FILES_TOLD: usize = 5;
const QUIET_EVERY: Duration = Duration::from_secs(5);

/// The per-file `downloaded` lines of a `get` of many files: the first [`FILES_TOLD`], then the files
/// done since, counted, in a line every [`QUIET_EVERY`] and at the end.
struct Quieted {
    verbose: bool,
    /// Files told one by one.
    told: usize,
    /// Files done since the last line, and their bytes.
    since: usize,
    bytes: u64,
    at: Instant,
}

impl Quieted {
    /// Whether a file done of `size` bytes goes untold (counted for the next line, which is said now
    /// where one is due).
    fn quiets(&mut self, size: u64) -> bool {
        if self.verbose || self.told < FILES_TOLD {
            self.told += 1;
            return false;
        }
        (self.since, self.bytes) = (self.since + 1, self.bytes + size);
        if self.at.elapsed() >= QUIET_EVERY {
            self.tell_now();
        }
        true
    }

    /// Says the files done since the last line, if any.
    fn tell_now(&mut self) {
        if self.since > 0 {
            let (files, bytes) = (self.since, human_bytes(self.bytes));
            above(|| say!("downloaded {files} more file(s) ({bytes}); -v lists each"));
        }
        (self.since, self.bytes, self.at) = (0, 0, Instant::now());
    }
}

/// Bytes counted over the last [`RATE_WINDOW`]: their rate now.
struct Window {
    /// (when, bytes counted until then), oldest first; the first is the baseline, at most one sample
    /// older than the window.
    samples: VecDeque<(Instant, u64)>,
    total: u64,
}

impl Window {
    fn new(now: Instant) -> Self {
        Self { samples: VecDeque::from([(now, 0)]), total: 0 }
    }

    fn add(&mut self, now: Instant, bytes: u64) {
        self.total += bytes;
        self.samples.push_back((now, self.total));
        self.forget(now);
    }

    /// Bytes per second since the baseline: it falls while nothing arrives.
    fn rate(&mut self, now: Instant) -> f64 {
        self.forget(now);
        let (since, base) = self.samples.front().copied().unwrap_or((now, self.total));
        // Not less than a second: the first chunks of a source must not read as a burst of gigabytes.
        (self.total - base) as f64 / (now - since).as_secs_f64().max(1.0)
    }

    /// Drops samples that the next one replaces as the baseline.
    fn forget(&mut self, now: Instant) {
        while self.samples.get(1).is_some_and(|(t, _)| now.saturating_duration_since(*t) >= RATE_WINDOW) {
            self.samples.pop_front();
        }
    }
}

fn event_json(event: &DownloadEvent, id: FileId, done_bytes: u64) -> Event {
    let id = id.to_string();
    match event {
        DownloadEvent::Started { manifest, have, sources, part, earlier_version, .. } => Event::Started {
            id,
            name: manifest.name().to_string(),
            size: manifest.size(),
            chunks: manifest.chunk_count(),
            have: *have,
            sources: *sources,
            part: part.clone(),
            earlier_version: *earlier_version,
        },
        DownloadEvent::Chunk { index, bytes, peer } => {
            Event::Chunk { id, index: *index, bytes: *bytes, peer: peer.to_string(), done_bytes }
        }
        DownloadEvent::ChunkFailed { index, peer, error, corrupt } => {
            Event::ChunkFailed { id, index: *index, peer: peer.to_string(), error: error.clone(), corrupt: *corrupt }
        }
        DownloadEvent::SourceDropped { peer, why, waiting } => Event::SourceDropped {
            id,
            peer: peer.to_string(),
            reason: why.to_string(),
            waiting_seconds: waiting.map(|t| t.as_secs_f64()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_follows_the_last_seconds() {
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let mut window = Window::new(start);
        for s in 1..=10 {
            window.add(at(s), 10 << 20);
        }
        assert!((window.rate(at(10)) - f64::from(10 << 20)).abs() < 1.0, "steady 10 MiB/s");
        // The source drops: the rate falls to nothing within the window, not over the whole run.
        assert!(window.rate(at(12)) < f64::from(10 << 20) * 0.7);
        assert_eq!(window.rate(at(10) + RATE_WINDOW), 0.0);
    }

    #[test]
    fn a_first_chunk_is_no_burst() {
        let start = Instant::now();
        let mut window = Window::new(start);
        window.add(start + Duration::from_millis(1), 1 << 20);
        assert!(window.rate(start + Duration::from_millis(1)) <= f64::from(1 << 20));
    }
}
