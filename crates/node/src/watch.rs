//! File-system notifications (inotify, FSEvents, ReadDirectoryChangesW through the notify crate) that
//! wake the rescan as soon as a shared folder changes, so a new, changed or deleted file reaches other
//! nodes' `ls` within a moment rather than at the next periodic rescan, which stays as the fallback.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::Notify;

/// Watches `folders` (recursively) and wakes `changed` on any change but the node's own bookkeeping:
/// the state folder, hidden files, and downloads in progress once they exist (their chunks land many
/// times a second: a new one is told at once, its progress at the periodic rescan). `None` where the
/// platform offers no watcher (the periodic rescan then does it all).
pub(crate) fn watch(folders: &[PathBuf], state_dir: &Path, changed: Arc<Notify>) -> Option<RecommendedWatcher> {
    let state_dir = state_dir.to_path_buf();
    let relevant = move |path: &Path, kind: &EventKind| {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let bookkeeping = path.starts_with(&state_dir) || name.starts_with('.');
        !bookkeeping && (!store::is_download_artifact(name) || matches!(kind, EventKind::Create(_)))
    };
    let on_event = move |event: notify::Result<notify::Event>| match event {
        Ok(event) if event.paths.iter().any(|p| relevant(p, &event.kind)) && !event.kind.is_access() => {
            changed.notify_one()
        }
        Ok(_) => {}
        // Events were lost (a queue overflowed): rescan to be sure.
        Err(_) => changed.notify_one(),
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
