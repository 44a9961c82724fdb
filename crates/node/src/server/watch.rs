//! File-system notifications (inotify, FSEvents, ReadDirectoryChangesW through the notify crate) that
//! wake the rescan as soon as a shared folder changes, so a new, changed or deleted file reaches other
//! nodes' `ls` within a moment rather than at the next periodic rescan, which stays as the fallback.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::Notify;

/// Paths told beyond which the rescan reads every folder anyway (a copy of a whole tree, say).
const MOST_PATHS: usize = 10_000;

/// What the watcher saw since the rescan last took it, and what wakes the rescan.
#[derive(Default)]
pub(crate) struct Changes {
    seen: Mutex<Seen>,
    pub(crate) wake: Notify,
}

#[derive(Default)]
struct Seen {
    paths: HashSet<PathBuf>,
    /// Events were lost, or too many paths came to tell them apart: every folder is read again.
    everything: bool,
}

impl Changes {
    fn add(&self, paths: &[PathBuf]) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.paths.extend(paths.iter().cloned());
        if seen.paths.len() > MOST_PATHS {
            *seen = Seen { paths: HashSet::new(), everything: true };
        }
        self.wake.notify_one();
    }

    fn lost(&self) {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Seen { paths: HashSet::new(), everything: true };
        self.wake.notify_one();
    }

    /// The paths seen since the last call, or `None` where every folder is to be read again.
    pub(crate) fn take(&self) -> Option<Vec<PathBuf>> {
        let seen = std::mem::take(&mut *self.seen.lock().unwrap_or_else(|p| p.into_inner()));
        (!seen.everything).then(|| seen.paths.into_iter().collect())
    }
}

/// Watches `folders` (recursively; canonical, as the library reads them) and tells `changed` of every
/// change but the node's own bookkeeping: the state folder, hidden files, and downloads in progress
/// once they exist (their chunks land many times a second: a new one is told at once, its progress at
/// the periodic rescan). `None` where the platform offers no watcher (the periodic rescan then does it
/// all).
pub(crate) fn watch(folders: &[PathBuf], state_dir: &Path, changed: Arc<Changes>) -> Option<RecommendedWatcher> {
    let state_dir = state_dir.to_path_buf();
    let relevant = move |path: &Path, kind: &EventKind| {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let bookkeeping = path.starts_with(&state_dir) || name.starts_with('.');
        !bookkeeping && (!store::is_download_artifact(name) || matches!(kind, EventKind::Create(_)))
    };
    let on_event = move |event: notify::Result<notify::Event>| match event {
        Ok(event) if event.paths.iter().any(|p| relevant(p, &event.kind)) && !event.kind.is_access() => {
            changed.add(&event.paths)
        }
        Ok(_) => {}
        // Events were lost (a queue overflowed): rescan everything to be sure.
        Err(_) => changed.lost(),
    };
    let mut watcher = notify::recommended_watcher(on_event)
        .inspect_err(|e| tracing::warn!(error = %e, "no file-system notifications; changes show at the next rescan"))
        .ok()?;
    for folder in folders {
        if let Err(e) = watcher.watch(folder, RecursiveMode::Recursive) {
            tracing::warn!(folder = %folder.display(), error = %e, "not watched; its changes show at the next rescan");
        }
    }
    Some(watcher)
}
