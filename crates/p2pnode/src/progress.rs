//! What `get` shows while it works. On a terminal: a spinner while the LAN is asked, then one bar for the
//! whole run (every file of it), sized to the terminal, with the rate and ETA of the last few seconds and
//! each source's name and rate; log lines and results print above it. With --json: one event per step.
//! Otherwise: one line per file and a summary.

use std::collections::{HashMap, VecDeque};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use console::Term;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};
use node::{DownloadEvent, Escaped, FileId, Hashing, NodeId, escape};

use crate::events::Event;

/// The rate shown is over this much of the recent past: it follows a source that drops or slows within
/// seconds, yet does not jump with each chunk.
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// The message is rebuilt at most this often (indicatif limits the drawing itself).
const REFRESH: Duration = Duration::from_millis(100);
/// The longest a name may take on the bar (a file's, or a source's).
const NAME_ROOM: usize = 16;
/// Terminals this wide or wider show the bar itself and the byte counts; narrower ones keep the rate,
/// ETA and sources.
const WIDE: u16 = 100;

/// The bar or spinner on the terminal now, if any (one at a time): [`above`] prints past it.
static SHOWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// `bar`, drawn on stderr (narrowed: [`Narrowed`]) as the one shown.
fn show(bar: ProgressBar) -> ProgressBar {
    bar.set_draw_target(ProgressDrawTarget::term_like(Box::new(Narrowed(Term::buffered_stderr()))));
    *shown() = Some(bar.clone());
    bar
}

/// Takes `bar` off the terminal: cleared, or left as it was on a line of its own.
fn unshow(bar: &ProgressBar, clear: bool) {
    shown().take();
    if clear {
        bar.finish_and_clear();
    } else {
        // What is printed next (an error, the resume hint) starts below it.
        bar.abandon();
        eprintln!();
    }
}

fn shown() -> std::sync::MutexGuard<'static, Option<ProgressBar>> {
    SHOWN.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Stderr as the bars see it: a column narrower than the terminal, so that no line reaches the last
/// column. There a terminal holds the cursor until the next character (or wraps at once), and a line of
/// exactly the terminal's width can push every later redraw a row down.
#[derive(Debug)]
struct Narrowed(Term);

impl TermLike for Narrowed {
    fn width(&self) -> u16 {
        self.0.size().1.saturating_sub(1)
    }

    fn height(&self) -> u16 {
        self.0.size().0
    }

    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_up(n)
    }

    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_down(n)
    }

    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_right(n)
    }

    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_left(n)
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.0.write_line(s)
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.0.write_str(s)
    }

    fn clear_line(&self) -> std::io::Result<()> {
        self.0.clear_line()
    }

    fn flush(&self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Runs `print` with the bars lifted off the terminal, so that what it prints lands above them.
pub(crate) fn above<R>(print: impl FnOnce() -> R) -> R {
    // Cloned out of the lock: what `print` prints may log, which comes back here.
    let bar = shown().clone();
    match bar {
        Some(bar) => bar.suspend(print),
        None => print(),
    }
}

/// Whether progress is drawn: for people at a terminal, never with --json.
fn drawn(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

/// A spinner saying what the command waits for, where progress is drawn; cleared when dropped.
pub(crate) struct Spinner(Option<ProgressBar>);

impl Spinner {
    pub(crate) fn new(json: bool, waiting_for: &str) -> Self {
        let spinner = drawn(json).then(|| {
            let style = ProgressStyle::with_template("{spinner} {wide_msg} {elapsed}").expect("a valid template");
            let bar = show(ProgressBar::new_spinner().with_style(style));
            bar.enable_steady_tick(REFRESH);
            bar
        });
        let this = Self(spinner);
        this.say(waiting_for);
        this
    }

    /// Says what the command waits for now.
    pub(crate) fn say(&self, waiting_for: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(waiting_for.to_string());
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            unshow(&bar, true);
        }
    }
}

/// `serve`'s hashing of new and changed files, where progress is drawn: a bar while it lasts.
pub(crate) struct HashingBar {
    drawn: bool,
    bar: Option<ProgressBar>,
}

impl HashingBar {
    pub(crate) fn new(json: bool) -> Self {
        Self { drawn: drawn(json), bar: None }
    }

    /// Shows how far the hashing has come; the bar goes once every file is hashed.
    pub(crate) fn show(&mut self, h: Hashing) {
        if !self.drawn {
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let wide = Term::stderr().size().1 >= WIDE;
            show(ProgressBar::new(h.bytes_total).with_style(style(wide)).with_prefix("hashing"))
        });
        let (done, total) = (human_bytes(h.bytes), human_bytes(h.bytes_total));
        bar.set_message(format!("{}/{} files, {done} of {total}; shared as hashed", h.files, h.files_total));
        bar.set_length(h.bytes_total.max(1));
        bar.set_position(h.bytes);
        if h.files == h.files_total {
            self.finish();
        }
    }

    pub(crate) fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            unshow(&bar, true);
        }
    }
}

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
            DownloadEvent::Started { size, have_bytes, .. } => {
                (file.size, file.resumed, file.done, file.started) = (*size, *have_bytes, *have_bytes, now);
                self.there += have_bytes;
                if *have_bytes > 0 && !self.json {
                    let share = *have_bytes as f64 * 100.0 / (*size).max(1) as f64;
                    self.note(&format!("resuming {}: {share:.0} % already verified", Escaped(&file.name)));
                }
            }
            DownloadEvent::Chunk { bytes, peer, .. } => {
                file.done += u64::from(*bytes);
                self.fetched += u64::from(*bytes);
                self.recent.add(now, u64::from(*bytes));
                self.sources.entry(*peer).or_insert_with(|| Window::new(now)).add(now, u64::from(*bytes));
            }
            DownloadEvent::SourceDropped { peer, reason } => {
                self.sources.remove(peer);
                tracing::warn!("{} no longer asked for {}: {reason}", self.name_of(peer), file.name);
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
        // The name was taken (by another file, or the same one with --force): the file went beside it.
        let wanted = node::safe_file_name(&file.name);
        let taken = path.file_name().is_some_and(|n| *n != *wanted);
        if self.quiet.quiets(file.size) {
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
            if taken { format!(" ({} is taken there)", Escaped(&wanted)) } else { String::new() }
        );
        above(|| say!("{line}"));
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
        let names: Vec<String> = rates.iter().map(|(_, peer)| cut(&escape(&self.name_of(peer)), NAME_ROOM)).collect();
        let from = match sources.join(", ") {
            all if sources.is_empty() => all + "nobody yet",
            all if console::measure_text_width(&all) <= room => all,
            _ => fit_list(&names, room),
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

/// The bar's layout: with the bar itself where the terminal is [`WIDE`]. What does not fit is cut at
/// the right edge (`wide_msg`): the line never wraps.
fn style(wide: bool) -> ProgressStyle {
    let template = match wide {
        true => "{prefix} [{bar:20}] {percent:>3}% {wide_msg}",
        false => "{prefix} {percent:>3}% {wide_msg}",
    };
    ProgressStyle::with_template(template).expect("a valid template").progress_chars("=> ")
}

/// `; 65 % was already here` where part of `size` was.
fn already_there(there: u64, size: u64) -> String {
    match there {
        0 => String::new(),
        _ => format!("; {:.0} % was already here", there as f64 * 100.0 / size.max(1) as f64),
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

/// The names of `peers`, those that two or more peers announce told apart by their short ids
/// (`vm (1a2b3c4d)`).
pub(crate) fn distinct(peers: HashMap<NodeId, String>) -> HashMap<NodeId, String> {
    let mut count: HashMap<String, usize> = HashMap::new();
    peers.values().for_each(|name| *count.entry(name.clone()).or_default() += 1);
    let told_apart = |(id, name): (NodeId, String)| match count[&name] {
        1 => (id, name),
        _ => (id, format!("{name} ({})", id.short())),
    };
    peers.into_iter().map(told_apart).collect()
}

/// `items` joined by `, ` as far as they fit `room` display columns, whole; the rest counted (`+2 more`).
fn fit_list(items: &[String], room: usize) -> String {
    let mut shown = String::new();
    for (i, item) in items.iter().enumerate() {
        let more = match items.len() - i - 1 {
            0 => String::new(),
            n => format!(", +{n} more"),
        };
        let with = if shown.is_empty() { item.clone() } else { format!("{shown}, {item}") };
        if console::measure_text_width(&with) + console::measure_text_width(&more) > room {
            return match shown.is_empty() {
                true => format!("{} peers", items.len()),
                false => format!("{shown}, +{} more", items.len() - i),
            };
        }
        shown = with;
    }
    shown
}

/// `text` cut to `room` characters, the cut marked.
fn cut(text: &str, room: usize) -> String {
    match text.char_indices().nth(room) {
        Some(_) => format!("{}…", text.chars().take(room - 1).collect::<String>()),
        None => text.to_string(),
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
        DownloadEvent::Started { name, size, chunks, have, sources, part, .. } => Event::Started {
            id,
            name: name.clone(),
            size: *size,
            chunks: *chunks,
            have: *have,
            sources: *sources,
            part: part.clone(),
        },
        DownloadEvent::Chunk { index, bytes, peer } => {
            Event::Chunk { id, index: *index, bytes: *bytes, peer: peer.to_string(), done_bytes }
        }
        DownloadEvent::ChunkFailed { index, peer, error, corrupt } => {
            Event::ChunkFailed { id, index: *index, peer: peer.to_string(), error: error.clone(), corrupt: *corrupt }
        }
        DownloadEvent::SourceDropped { peer, reason } => {
            Event::SourceDropped { id, peer: peer.to_string(), reason: reason.clone() }
        }
    }
}

/// `1536` -> `1.5 KiB`.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_on_the_bar_are_whole_names_and_namesakes_are_told_apart() {
        let items: Vec<String> = ["alice 2.0 MiB/s", "bob 1.0 MiB/s", "carol 10 KiB/s"].map(String::from).into();
        assert_eq!(fit_list(&items, 80), "alice 2.0 MiB/s, bob 1.0 MiB/s, carol 10 KiB/s");
        assert_eq!(fit_list(&items, 30), "alice 2.0 MiB/s, +2 more", "never cut mid-name");
        assert_eq!(fit_list(&items, 5), "3 peers");
        let (a, b, c) = (NodeId([1; 32]), NodeId([2; 32]), NodeId([3; 32]));
        let names = distinct([(a, "vm".to_string()), (b, "vm".to_string()), (c, "laptop".to_string())].into());
        assert_eq!((names[&a].as_str(), names[&c].as_str()), ("vm (01010101)", "laptop"));
        assert_ne!(names[&a], names[&b]);
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(1 << 30), "1.0 GiB");
    }

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

    #[test]
    fn names_are_cut_to_fit() {
        assert_eq!(cut("short", 16), "short");
        assert_eq!(cut("a-very-long-file-name.iso", 8), "a-very-…");
    }
}
