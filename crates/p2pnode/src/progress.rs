//! Progress of `get`: a bar on a terminal, JSON-lines events with --json, one summary line otherwise.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use node::{DownloadEvent, FileId, NodeId};

use crate::events::Event;

use crate::output::human_bytes;

/// The bar is redrawn at most this often.
const REDRAW: Duration = Duration::from_millis(100);
const BAR_WIDTH: usize = 24;

pub(crate) struct Progress {
    json: bool,
    bar: bool,
    id: FileId,
    /// The file's name as its peers give it: escaped wherever it is shown.
    name: String,
    size: u64,
    /// Bytes verified before this run (a resume): excluded from the rate.
    resumed: u64,
    done: u64,
    sources: HashSet<NodeId>,
    started: Instant,
    drawn: Option<Instant>,
}

impl Progress {
    /// The progress of file `id`, drawn as a bar where `bar` allows it and stderr is a terminal.
    pub(crate) fn new(json: bool, id: FileId, bar: bool) -> Self {
        Self {
            json,
            bar: bar && !json && std::io::stderr().is_terminal(),
            id,
            name: String::new(),
            size: 0,
            resumed: 0,
            done: 0,
            sources: HashSet::new(),
            started: Instant::now(),
            drawn: None,
        }
    }

    pub(crate) fn on(&mut self, event: &DownloadEvent) {
        match event {
            DownloadEvent::Started { name, size, have_bytes, .. } => {
                // The name is the peer's: shown escaped (JSON events carry it exactly).
                (self.name, self.size, self.resumed, self.done) = (name.clone(), *size, *have_bytes, *have_bytes);
                self.started = Instant::now();
            }
            DownloadEvent::Chunk { bytes, peer, .. } => {
                self.done += u64::from(*bytes);
                self.sources.insert(*peer);
            }
            DownloadEvent::SourceDropped { peer, .. } => {
                self.sources.remove(peer);
            }
            DownloadEvent::ChunkFailed { .. } => {}
        }
        if self.json {
            event_json(event, self.id, self.done).print();
        } else if self.bar && self.drawn.is_none_or(|t| t.elapsed() >= REDRAW) {
            self.draw();
        }
    }

    fn rate(&self) -> f64 {
        (self.done - self.resumed) as f64 / self.started.elapsed().as_secs_f64().max(1e-3)
    }

    fn draw(&mut self) {
        self.drawn = Some(Instant::now());
        let fraction = if self.size == 0 { 1.0 } else { self.done as f64 / self.size as f64 };
        let filled = (fraction * BAR_WIDTH as f64) as usize;
        let rate = self.rate();
        let eta =
            if rate > 0.0 { format!("{:.0}s", self.size.saturating_sub(self.done) as f64 / rate) } else { "?".into() };
        let name: String = node::escape(&self.name).chars().take(30).collect();
        eprint!(
            "\r\x1b[2K{name} [{}{}] {:>3.0}% {}/{} {}/s ETA {eta} {} sources",
            "#".repeat(filled),
            " ".repeat(BAR_WIDTH - filled.min(BAR_WIDTH)),
            fraction * 100.0,
            human_bytes(self.done),
            human_bytes(self.size),
            human_bytes(rate as u64),
            self.sources.len(),
        );
        let _ = std::io::stderr().flush();
    }

    /// Prints the outcome; errors themselves are printed by main.
    pub(crate) fn end(&mut self, path: Option<&PathBuf>) {
        if self.bar {
            self.draw();
            eprintln!();
        }
        let Some(path) = path else { return };
        let secs = self.started.elapsed().as_secs_f64();
        if self.json {
            let (id, path, size, bytes_per_second) = (self.id.to_string(), path.clone(), self.size, self.rate());
            Event::Done { id, path, size, seconds: secs, bytes_per_second }.print();
        } else {
            // The name was taken (by another file, or the same one with --force): the file went beside it.
            let wanted = node::safe_file_name(&self.name);
            let taken = path.file_name().is_some_and(|n| *n != *wanted);
            println!(
                "downloaded {} ({}) in {secs:.1}s ({}/s) to {}{}",
                node::Escaped(&self.name),
                human_bytes(self.size),
                human_bytes(self.rate() as u64),
                node::Escaped(&path.display().to_string()),
                if taken { format!(" ({} is taken there)", node::Escaped(&wanted)) } else { String::new() }
            );
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
