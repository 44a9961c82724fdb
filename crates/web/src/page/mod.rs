//! The page on this machine: served on a loopback address only, opened by a secret that the node prints
//! once (in the address's fragment, which browsers never send), and written on the client API alone:
//! the peers, every file on the LAN, fetches into the node's downloads folder with live progress.
//!
//! Every request but the page's own files needs the secret in the `x-p2pnode-key` header: a page of
//! another site can neither send that header without the browser asking this one first (which it never
//! allows) nor read an answer. The Host must be this loopback address (DNS rebinding).

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use node::{Client, NodeId, SharedFiles};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

use crate::WebError;
use crate::assets;
use crate::http::{self, error, same_secret};

pub mod place;
mod runs;

pub use place::{DEFAULT_PAGE_ADDR, PAGE_FILE, PageAt};
use runs::{Runs, StartError};

/// The header that carries the page's secret.
pub const KEY_HEADER: &str = "x-p2pnode-key";
/// The largest request body the page takes (a fetch's queries).
pub const MAX_BODY: usize = 64 * 1024;
/// The most queries one fetch names, and the longest query.
const MAX_QUERIES: usize = 1000;
const MAX_QUERY_LEN: usize = 4096;

/// What the page serves: the node's client, its own files, where fetches go.
pub struct PageConfig {
    /// The node's state folder: the page's address and secret are kept there, the trust list read.
    pub state_dir: PathBuf,
    /// Where the page listens.
    pub at: PageAt,
    /// Where fetches go: the node's downloads folder.
    pub downloads: PathBuf,
    /// The node's name and id.
    pub me: (String, NodeId),
}

/// The page, bound to its port: [`Page::run`] serves it.
pub struct Page {
    listener: TcpListener,
    secret: String,
    router: Router,
}

/// What every handler reads.
struct Shared {
    client: Client,
    files: SharedFiles,
    runs: Arc<Runs>,
    config: PageConfig,
}

impl Page {
    /// Binds the page (see [`PageAt`]) over `client` (one sharing the node's peer table) and the node's
    /// `files`.
    pub async fn bind(config: PageConfig, client: Client, files: SharedFiles) -> Result<Self, WebError> {
        let bound = place::bind(&config.state_dir, config.at).await?;
        let port = bound.listener.local_addr().map_err(|source| WebError::Bind { addr: DEFAULT_PAGE_ADDR, source })?;
        let shared = Arc::new(Shared { client, files, runs: Arc::new(Runs::new()), config });
        let secret = bound.secret.clone();
        let api = Router::new()
            .route("/api/peers", get(peers))
            .route("/api/files", get(files_of_lan))
            .route("/api/fetch", post(fetch))
            .route("/api/runs", get(runs))
            .route("/api/runs/{id}/cancel", post(cancel))
            .route("/api/events", get(events))
            .layer(middleware::from_fn_with_state(Arc::new(secret.clone()), with_key))
            .with_state(shared);
        let port = port.port();
        let allowed: Arc<dyn Fn(&str) -> bool + Send + Sync> =
            Arc::new(move |host| http::is_address_host(host, port) || host == format!("localhost:{port}"));
        let router = assets::routes()
            .merge(api)
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .layer(middleware::from_fn(move |request, next| http::guard(allowed.clone(), request, next)));
        Ok(Self { listener: bound.listener, secret, router })
    }

    /// The address with the secret, to open the page: `http://127.0.0.1:5080/#k=...`.
    pub fn url(&self) -> String {
        let addr = self.listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        format!("http://{addr}/#k={}", self.secret)
    }

    /// Serves the page until the future is dropped.
    pub async fn run(self) {
        http::serve(self.listener, self.router).await
    }
}

/// Answers only requests that carry the secret.
async fn with_key(State(secret): State<Arc<String>>, request: Request, next: Next) -> Response {
    let key = request.headers().get(KEY_HEADER).and_then(|k| k.to_str().ok());
    match key {
        Some(key) if same_secret(key, &secret) => next.run(request).await,
        _ => error(StatusCode::UNAUTHORIZED, "open the address with its key that p2pnode serve printed"),
    }
}

/// This node, its shares, and the peers on the LAN.
async fn peers(State(page): State<Arc<Shared>>) -> Json<Value> {
    let trust = node::StateDir::open(&page.config.state_dir).and_then(|s| s.trust_list()).unwrap_or_default();
    let (name, id) = &page.config.me;
    let shares: Vec<Value> = page.files.list().iter().map(|f| json!({"path": f.path, "size": f.size})).collect();
    let peers: Vec<Value> = page
        .client
        .peer_table()
        .now()
        .iter()
        .filter(|p| p.id() != *id)
        .map(|p| {
            let a = &p.announcement;
            let transports: Vec<&str> = a.ports.iter().map(|(name, _)| name.as_str()).collect();
            json!({"name": a.name, "id": p.id().to_string(), "short": p.id().short(), "ip": p.ip.to_string(),
                "trusted": trust.name_of(p.id()), "transports": transports, "files": a.file_count})
        })
        .collect();
    Json(json!({"me": {"name": name, "id": id.to_string(), "short": id.short(), "shares": shares}, "peers": peers}))
}

#[derive(Deserialize)]
struct Filter {
    q: Option<String>,
}

/// Every file on the LAN, with its hosts; with `q`, which of them the query names (as `get` reads it).
async fn files_of_lan(State(page): State<Arc<Shared>>, Query(filter): Query<Filter>) -> Response {
    let queries: Vec<String> = filter.q.into_iter().filter(|q| !q.trim().is_empty()).collect();
    if queries.iter().any(|q| q.len() > MAX_QUERY_LEN) {
        return error(StatusCode::BAD_REQUEST, "the filter is too long");
    }
    let (listing, filter_error) = match page.client.list(&queries).await {
        Ok(listing) => (listing, None),
        // A filter that names nothing shows nothing, and why; the files are listed all the same.
        Err(e) if !queries.is_empty() => match page.client.list(&[]).await {
            Ok(listing) => (node::Listing { selected: Some(Default::default()), ..listing }, Some(e.to_string())),
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        },
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let name = |node: NodeId| {
        let peer = listing.peers.iter().find(|p| p.id() == node);
        peer.map_or_else(|| node.short(), |p| p.announcement.name.clone())
    };
    let mut files = Vec::new();
    for (id, entry) in listing.dictionary.entries() {
        let hosts: Vec<String> = entry.hosts.iter().map(|h| name(h.node)).collect();
        let partial: Vec<Value> = entry
            .partial
            .iter()
            .map(|(host, bits)| json!({"name": name(host.node), "percent": percent(bits.count(), bits.chunks())}))
            .collect();
        let selected = listing.selected.as_ref().is_none_or(|s| s.contains(&id));
        for path in &entry.paths {
            files.push(json!({"id": id.to_string(), "path": path, "size": entry.size, "hosts": hosts,
                "partial": partial, "selected": selected}));
        }
    }
    Json(json!({"files": files, "error": filter_error})).into_response()
}

fn percent(have: u32, of: u32) -> u32 {
    if of == 0 { 100 } else { (u64::from(have) * 100 / u64::from(of)) as u32 }
}

#[derive(Deserialize)]
struct FetchRequest {
    queries: Vec<String>,
}

/// Starts fetching what the queries name (ids, paths, folders, globs) into the downloads folder.
async fn fetch(State(page): State<Arc<Shared>>, Json(request): Json<FetchRequest>) -> Response {
    let queries = request.queries;
    if queries.len() > MAX_QUERIES || queries.iter().any(|q| q.len() > MAX_QUERY_LEN) {
        return error(StatusCode::BAD_REQUEST, "too many queries, or one too long");
    }
    match page.runs.start(&page.client, queries, page.config.downloads.clone()) {
        Ok(id) => Json(json!({"run": id})).into_response(),
        Err(StartError::NoQuery) => error(StatusCode::BAD_REQUEST, "name what to fetch"),
        Err(StartError::Busy) => error(StatusCode::TOO_MANY_REQUESTS, "too many fetches at once; wait for one to end"),
    }
}

/// Every fetch of this page, in progress or ended (the latest few).
async fn runs(State(page): State<Arc<Shared>>) -> Json<Value> {
    Json(page.runs.snapshot())
}

async fn cancel(State(page): State<Arc<Shared>>, Path(id): Path<u64>) -> Response {
    match page.runs.cancel(id) {
        true => Json(json!({"cancelled": id})).into_response(),
        false => error(StatusCode::NOT_FOUND, "no such fetch in progress"),
    }
}

/// The page's live updates: every run at once, then each change, and `peers` when the peers change.
async fn events(State(page): State<Arc<Shared>>) -> Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>> {
    let hello = json!({"kind": "hello", "runs": page.runs.snapshot()});
    let (updates, peer_events) = (page.runs.updates.subscribe(), page.client.peer_table().subscribe());
    let stream = futures_util::stream::unfold(
        (Some(hello), updates, peer_events),
        |(mut first, mut updates, mut peer_events)| async move {
            let next = match first.take() {
                Some(hello) => hello,
                None => tokio::select! {
                    update = updates.recv() => match update {
                        Ok(update) => update,
                        Err(broadcast::error::RecvError::Lagged(_)) => json!({"kind": "reload"}),
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                    event = peer_events.recv() => match event {
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => json!({"kind": "peers"}),
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                },
            };
            Some((Ok(Event::default().data(next.to_string())), (first, updates, peer_events)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}
