//! Downloading one file from every peer that hosts it: a state machine ([`machine`]) over the sans-IO
//! [`Scheduler`], fed by the sources connected at the start ([`connect`]) and those that join the swarm
//! while it runs ([`source`]), each chunk fetched and verified on its own ([`chunk`]).

mod chunk;
mod connect;
mod event;
mod folder;
mod machine;
mod options;
pub(crate) mod scheduler;
mod source;

use std::path::{Path, PathBuf};

use futures_util::Stream;
use proto::FileId;
use tracing::Instrument;

pub use event::{DownloadEvent, Dropped};
pub use folder::check_writable;
pub use options::{DownloadOptions, HAVE_REFRESH};
pub use source::Source;

use crate::NodeError;
#[cfg(doc)]
use scheduler::Scheduler;

/// Downloads file `id` from `sources` (each over its own transport) into `dir`, each chunk verified before
/// it is written to the `.part` file, which is renamed when complete. Returns the final path; on failure
/// the verified part is kept for a later resume. Partial sources are asked for their bitmaps every
/// [`HAVE_REFRESH`].
///
/// Several sources may claim the same node id: each is connected to and scheduled on its own, so an
/// impostor costs at most the fallback from a failing source, and an authenticating transport refuses it
/// at the handshake.
pub async fn download(
    id: FileId,
    sources: &[Source],
    dir: &Path,
    options: &DownloadOptions,
    on_event: impl FnMut(&DownloadEvent),
) -> Result<PathBuf, NodeError> {
    download_joined(id, sources, dir, options, futures_util::stream::empty(), on_event).await
}

/// [`download`], asking the peers that `joining` reports as they come (the swarm of a fetch: other
/// downloaders, who have some chunks already).
pub(crate) async fn download_joined(
    id: FileId,
    sources: &[Source],
    dir: &Path,
    options: &DownloadOptions,
    joining: impl Stream<Item = Source> + Unpin,
    on_event: impl FnMut(&DownloadEvent),
) -> Result<PathBuf, NodeError> {
    let span = tracing::info_span!(target: "p2pnode::download", "download", file = %id.short());
    async {
        let download = machine::Download::start(id, sources, dir, options, on_event).await?;
        download.run(joining).await
    }
    .instrument(span)
    .await
}
