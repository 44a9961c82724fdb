//! Guests' uploads: into an inbox folder that is never shared, each within a cap and all of them within
//! another, under a name made safe by the store's rules and never over an existing file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use super::{GuestEvent, Shared, TOKEN_HEADER, not_in};
use crate::WebError;
use crate::http::{ClientAddr, error, random_token, same_secret};

/// Uploads taken at once, from every guest.
const UPLOADS_AT_ONCE: usize = 4;

/// Where guests' uploads go, and how much they may take.
pub struct Uploads {
    /// The inbox: never one of the shared folders, nor inside one.
    pub dir: PathBuf,
    /// The largest upload.
    pub max_file: u64,
    /// The most bytes all uploads of this run may take in all.
    pub max_total: u64,
    taken: Arc<AtomicU64>,
    at_once: Arc<Semaphore>,
}

impl Uploads {
    /// Uploads into `dir`, each at most `max_file` bytes, `max_total` in all.
    pub fn new(dir: PathBuf, max_file: u64, max_total: u64) -> Self {
        let (taken, at_once) = (Arc::default(), Arc::new(Semaphore::new(UPLOADS_AT_ONCE)));
        Self { dir, max_file, max_total, taken, at_once }
    }

    /// Makes the inbox.
    pub(super) fn prepare(&self) -> Result<(), WebError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| WebError::State { path: self.dir.clone(), source })
    }

    /// Takes `bytes` of the total; false where that would pass it.
    fn reserve(&self, bytes: u64) -> bool {
        self.taken
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |taken| {
                taken.checked_add(bytes).filter(|&after| after <= self.max_total)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: u64) {
        self.taken.fetch_sub(bytes, Ordering::SeqCst);
    }
}

#[derive(Deserialize)]
pub(super) struct Named {
    name: String,
}

/// One file, the request's body, saved into the inbox as `name` made safe.
pub(super) async fn upload(
    State(guests): State<Arc<Shared>>,
    Extension(from): Extension<ClientAddr>,
    Query(named): Query<Named>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(token) = guests.session(&headers, from.0.ip()) else { return not_in() };
    let sent = headers.get(TOKEN_HEADER).and_then(|t| t.to_str().ok()).unwrap_or_default();
    if !same_secret(sent, &token) {
        return error(StatusCode::FORBIDDEN, "uploads need the session's token in their header");
    }
    let Some(uploads) = &guests.uploads else {
        return error(StatusCode::FORBIDDEN, "this node takes no uploads from guests");
    };
    let length = headers.get(header::CONTENT_LENGTH).and_then(|l| l.to_str().ok()?.parse::<u64>().ok());
    if length.is_some_and(|l| l > uploads.max_file) {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("larger than the {} a guest may upload", node::human_bytes(uploads.max_file)),
        );
    }
    let Ok(_turn) = uploads.at_once.clone().try_acquire_owned() else {
        return error(StatusCode::TOO_MANY_REQUESTS, "other guests are uploading; try again in a moment");
    };
    let name = node::safe_file_name(&named.name, node::NameRules::of(&uploads.dir));
    match receive(uploads, body, &name).await {
        Ok((path, bytes)) => {
            (guests.told)(GuestEvent::Uploaded { from: from.0.ip(), path: path.clone(), bytes });
            let saved = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            Json(json!({"saved": saved, "bytes": bytes})).into_response()
        }
        Err(Refused(status, what)) => error(status, &what),
    }
}

struct Refused(StatusCode, String);

/// Writes the body into a hidden file of the inbox within the caps, then puts it in place as `name`.
async fn receive(uploads: &Uploads, body: Body, name: &str) -> Result<(PathBuf, u64), Refused> {
    let failed = |e: std::io::Error| Refused(StatusCode::INTERNAL_SERVER_ERROR, format!("not saved: {e}"));
    let token = random_token().map_err(|e| failed(std::io::Error::other(e.to_string())))?;
    let temporary = uploads.dir.join(format!(".guest-upload-{}", &token[..16]));
    let mut file = tokio::fs::OpenOptions::new().write(true).create_new(true).open(&temporary).await.map_err(failed)?;
    let mut stream = body.into_data_stream();
    let mut written = 0u64;
    let outcome = async {
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(|e| Refused(StatusCode::BAD_REQUEST, format!("upload cut short: {e}")))?;
            let len = piece.len() as u64;
            if written + len > uploads.max_file {
                let cap = node::human_bytes(uploads.max_file);
                return Err(Refused(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("larger than the {cap} a guest may upload"),
                ));
            }
            if !uploads.reserve(len) {
                let cap = node::human_bytes(uploads.max_total);
                return Err(Refused(
                    StatusCode::INSUFFICIENT_STORAGE,
                    format!("guests' uploads are at their {cap} in all"),
                ));
            }
            written += len;
            file.write_all(&piece).await.map_err(failed)?;
        }
        file.sync_all().await.map_err(failed)?;
        let (from, dir, name) = (temporary.clone(), uploads.dir.clone(), name.to_string());
        let placed = tokio::task::spawn_blocking(move || node::put_in_place(&from, &dir, &name)).await;
        placed.map_err(|e| failed(std::io::Error::other(e.to_string())))?.map_err(failed)
    }
    .await;
    match outcome {
        Ok(path) => Ok((path, written)),
        Err(refused) => {
            uploads.give_back(written);
            remove(&temporary).await;
            Err(refused)
        }
    }
}

async fn remove(path: &Path) {
    if let Err(e) = tokio::fs::remove_file(path).await {
        tracing::warn!(error = %e, path = %path.display(), "an upload's unfinished file was not removed");
    }
}
