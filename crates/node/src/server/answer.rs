//! Answering one request: the catalogue, a manifest, a bitmap, or chunk bytes streamed from disk, each
//! write within the idle timeout and each buffer within the node's budgets.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use proto::{Bitmap, ErrorCode, FileId, Request, Response};
use store::{FileStamp, Partial, PositionedIo, SharedFile};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use transport::{Stream, TransportError};

use super::context::{PEER_SEND_BUDGET, SEND_BUDGET, Sent, ServeContext, Shares};
use super::spread::Downloader;
use crate::blocking;

/// Bytes read from disk, or written to the peer, per step: each step must complete within the idle
/// timeout, so a peer that stops reading is cut off whatever it asked for.
const READ_PIECE: usize = 256 * 1024;
/// Answers `request` of the peer at `peer`, proven as `who`, from `shares`; returns the chunk bytes sent.
pub(super) async fn answer(
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
                let bits = have_now(&file).await.unwrap_or_else(|| Bitmap::full(file.manifest.chunk_count()));
                send_bytes(stream, bits.as_bytes(), context).await.map(|()| None)
            }
            None => refuse(stream, ErrorCode::NotFound, "file not shared", context).await.map(|()| None),
        },
        Request::Offer(offer) => {
            let taken = match &context.inbox {
                Some(inbox) => inbox.offer(who, peer, offer.clone()).await,
                None => Err((ErrorCode::BadRequest, "this node takes no offers")),
            };
            match taken {
                Ok(()) => send_bytes(stream, &[], context).await.map(|()| None),
                Err((code, why)) => refuse(stream, code, why, context).await.map(|()| None),
            }
        }
        Request::OfferList(id) => match context.outbox.list(who, *id) {
            Some(list) => send_bytes(stream, &list, context).await.map(|()| None),
            None => refuse(stream, ErrorCode::NotFound, "no such offer", context).await.map(|()| None),
        },
        Request::OfferText(id) => match context.outbox.text(who, *id) {
            Some(text) => send_bytes(stream, text.as_bytes(), context).await.map(|()| None),
            None => refuse(stream, ErrorCode::NotFound, "no such offer", context).await.map(|()| None),
        },
        Request::OfferEnded { offer, fetched } => match context.outbox.ended(who, *offer, *fetched) {
            true => send_bytes(stream, &[], context).await.map(|()| None),
            false => refuse(stream, ErrorCode::NotFound, "no such offer", context).await.map(|()| None),
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
            Ok(Some(Sent { file: *file, path: shared.path.clone(), name, size, bytes: u64::from(*len) }))
        }
    }
}

/// The chunks `shared` has now: `None` for a whole file; for a download of this process, what it has
/// verified, from memory; for another's, what its state file says now (the shares were made before the
/// chunks verified since), and at least what the shares say.
async fn have_now(shared: &SharedFile) -> Option<Bitmap> {
    match shared.have.as_ref()? {
        Partial::InMemory(verified) => Some(verified.bits()),
        on_disk => {
            let (on_disk, path, manifest) = (on_disk.clone(), shared.path.clone(), shared.manifest.clone());
            Some(blocking(move || on_disk.now(&path, &manifest)).await)
        }
    }
}

/// Whether `shared` has chunk `index` now (see [`have_now`]): a chunk request of a download of this
/// process asks its memory alone.
async fn has_now(shared: &SharedFile, index: u32) -> bool {
    match &shared.have {
        None => true,
        Some(Partial::InMemory(verified)) => verified.has(index),
        Some(Partial::OnDisk(_)) => have_now(shared).await.is_some_and(|bits| bits.has(index)),
    }
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
    if !has_now(shared, index).await {
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

/// Answers `code` with `message`.
pub(super) async fn refuse(
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
pub(crate) async fn open_current(
    shared: &SharedFile,
    shares: &watch::Receiver<Arc<Shares>>,
    rescan: &Notify,
    idle: Duration,
) -> Option<Arc<std::fs::File>> {
    let id = shared.manifest.id();
    let mut latest = shares.clone();
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
        rescan.notify_one();
        tokio::time::timeout(idle, latest.changed()).await.ok()?.ok()?;
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
    let Some(file) = open_current(shared, &context.shares, &context.rescan, context.idle).await else {
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

    const CHUNK: usize = proto::MIN_CHUNK_SIZE as usize;

    #[tokio::test]
    async fn a_download_of_this_process_is_served_from_memory_never_from_its_state_file() {
        let dir = tempfile::tempdir().expect("dir");
        let data: Vec<u8> = (0..3 * CHUNK).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("src"), &data).expect("write");
        let manifest = Arc::new(store::hash_file(&dir.path().join("src"), "film.mkv".into()).expect("hash"));
        let into = dir.path().join("downloads");
        std::fs::create_dir(&into).expect("mkdir");
        let part = store::PartFile::open(&into, manifest.clone(), &store::StateKey::random()).expect("open");
        part.write_chunk(1, &data[CHUNK..2 * CHUNK]).expect("chunk 1");
        // Its state file emptied (deleted, Windows would keep it while the part holds it open): whatever
        // is answered now comes from memory.
        let state =
            std::fs::read_dir(&into).expect("list").flatten().find(|e| e.path().to_string_lossy().ends_with(".state"));
        std::fs::write(state.expect("a state file").path(), b"").expect("empty");
        let have = Some(Partial::InMemory(part.verified().clone()));
        let shared = SharedFile { path: part.part_path().to_path_buf(), manifest, stamp: None, have };
        let on_disk = SharedFile { have: Some(Partial::OnDisk(Bitmap::empty(3))), ..shared.clone() };
        assert!(!has_now(&on_disk, 1).await, "another process's download is read from its state file, empty here");
        assert!(has_now(&shared, 1).await && !has_now(&shared, 0).await);
        part.write_chunk(0, &data[..CHUNK]).expect("chunk 0");
        assert!(has_now(&shared, 0).await, "a chunk verified since is served at once");
        assert_eq!(have_now(&shared).await.map(|bits| bits.count()), Some(2));
    }
}
