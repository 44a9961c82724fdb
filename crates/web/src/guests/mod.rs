//! The guest page: browsers on the LAN (phones, machines without p2pnode) that know the PIN shown at the
//! serving terminal download the node's complete shared files, resumably (HTTP ranges), each chunk
//! checked against its hash before it is sent; with uploads allowed, they put files into an inbox that is
//! never shared. Guests see nothing else: no peers, no other node's files, no state.
//!
//! A session is a cookie (HttpOnly, SameSite=Strict) bound to the guest's address; an upload also
//! needs the session's token in the `x-p2pnode-guest` header, which a page of another site cannot send.
//! The Host must be an address literal with this port (DNS rebinding). Plain HTTP: anyone on the
//! network reads what guests fetch.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use node::{FileId, SharedFiles};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;

use crate::WebError;
use crate::assets;
use crate::http::{self, ClientAddr, error};

pub mod door;
mod range;
mod upload;

use door::{Door, Tried};
pub use upload::Uploads;

/// The cookie that holds a guest's session.
const COOKIE: &str = "p2pguest";
/// The header an upload carries the session's token in.
pub const TOKEN_HEADER: &str = "x-p2pnode-guest";
/// The largest body of a request that is not an upload (a PIN).
const MAX_FORM_BODY: usize = 1024;

/// What a guest did that the serving terminal shows.
#[derive(Clone, Debug)]
pub enum GuestEvent {
    /// Too many wrong PINs: this is the PIN now, the old one no longer works.
    NewPin(String),
    /// A guest at this address entered the PIN.
    Admitted(IpAddr),
    /// A guest uploaded a file, now here.
    Uploaded {
        /// The guest's address.
        from: IpAddr,
        /// Where the file is.
        path: std::path::PathBuf,
        /// Its bytes.
        bytes: u64,
    },
}

/// What the guest page serves, and where it listens.
pub struct GuestConfig {
    /// Where to listen: the LAN (`0.0.0.0:PORT`), or one address.
    pub addr: SocketAddr,
    /// Where uploads go and how much they may take; `None`: guests only download.
    pub uploads: Option<Uploads>,
}

/// The guest page bound to its port: [`Guests::run`] serves it.
pub struct Guests {
    listener: TcpListener,
    router: Router,
    door: Arc<Mutex<Door>>,
}

/// What every handler reads.
struct Shared {
    files: SharedFiles,
    door: Arc<Mutex<Door>>,
    uploads: Option<Uploads>,
    told: Box<dyn Fn(GuestEvent) + Send + Sync>,
}

impl Guests {
    /// Binds the guest page over the node's `files`; `told` hears what guests do.
    pub async fn bind(
        config: GuestConfig,
        files: SharedFiles,
        told: impl Fn(GuestEvent) + Send + Sync + 'static,
    ) -> Result<Self, WebError> {
        let listener =
            TcpListener::bind(config.addr).await.map_err(|source| WebError::GuestBind { addr: config.addr, source })?;
        let port = listener.local_addr().map_err(|source| WebError::GuestBind { addr: config.addr, source })?.port();
        if let Some(uploads) = &config.uploads {
            uploads.prepare()?;
        }
        let door = Arc::new(Mutex::new(Door::new().map_err(|e| WebError::Random(e.to_string()))?));
        let shared = Arc::new(Shared { files, door: door.clone(), uploads: config.uploads, told: Box::new(told) });
        let api = Router::new()
            .route("/guest/pin", post(pin).layer(DefaultBodyLimit::max(MAX_FORM_BODY)))
            .route("/guest/files", get(list))
            .route("/guest/files/{id}", get(download))
            .route("/guest/upload", post(upload::upload).layer(DefaultBodyLimit::disable()))
            .with_state(shared);
        let allowed: Arc<dyn Fn(&str) -> bool + Send + Sync> = Arc::new(move |host| http::is_address_host(host, port));
        let router = assets::guest_routes()
            .merge(api)
            .layer(middleware::from_fn(move |request, next| http::guard(allowed.clone(), request, next)));
        Ok(Self { listener, router, door })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// The PIN now.
    pub fn pin(&self) -> String {
        self.door.lock().unwrap_or_else(PoisonError::into_inner).pin().to_string()
    }

    /// Serves the guest page until the future is dropped.
    pub async fn run(self) {
        http::serve(self.listener, self.router).await
    }
}

impl Shared {
    fn door(&self) -> std::sync::MutexGuard<'_, Door> {
        self.door.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The session token of the request, if it is a session of its address.
    fn session(&self, headers: &HeaderMap, from: IpAddr) -> Option<String> {
        let token = session_cookie(headers)?;
        self.door().admits(&token, from, Instant::now()).then_some(token)
    }
}

/// The value of the session cookie, where the request has one.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get_all(header::COOKIE).into_iter().filter_map(|c| c.to_str().ok());
    cookies.flat_map(|c| c.split(';')).find_map(|c| c.trim().strip_prefix(&format!("{COOKIE}="))).map(str::to_string)
}

fn not_in() -> Response {
    error(StatusCode::UNAUTHORIZED, "enter the PIN shown where p2pnode serves")
}

#[derive(Deserialize)]
struct PinForm {
    pin: String,
}

async fn pin(
    State(guests): State<Arc<Shared>>,
    Extension(from): Extension<ClientAddr>,
    Json(form): Json<PinForm>,
) -> Response {
    let ip = from.0.ip();
    let tried = guests.door().try_pin(&form.pin, ip, Instant::now());
    match tried {
        Ok(Tried::Admitted(token)) => {
            (guests.told)(GuestEvent::Admitted(ip));
            let cookie = format!(
                "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
                door::SESSION_LIFE.as_secs()
            );
            let mut response = Json(json!({"token": token, "upload": guests.uploads.is_some()})).into_response();
            if let Ok(cookie) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Ok(Tried::Wrong { left }) => {
            let what = format!("wrong PIN; {left} more wrong tries and it is replaced");
            error(StatusCode::FORBIDDEN, &what)
        }
        Ok(Tried::Wait(left)) => {
            let what = format!("too many wrong PINs: try again in {} s, with the PIN shown now", left.as_secs() + 1);
            error(StatusCode::TOO_MANY_REQUESTS, &what)
        }
        Ok(Tried::Replaced(new)) => {
            (guests.told)(GuestEvent::NewPin(new));
            error(
                StatusCode::FORBIDDEN,
                "wrong PIN; too many wrong tries: ask for the new PIN shown where p2pnode serves",
            )
        }
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "no random numbers on this system"),
    }
}

/// The complete files this node shares.
async fn list(
    State(guests): State<Arc<Shared>>,
    Extension(from): Extension<ClientAddr>,
    headers: HeaderMap,
) -> Response {
    if guests.session(&headers, from.0.ip()).is_none() {
        return not_in();
    }
    let files: Vec<_> = guests
        .files
        .list()
        .into_iter()
        .map(|f| json!({"id": f.id.to_string(), "path": f.path, "size": f.size}))
        .collect();
    Json(json!({"files": files, "upload": guests.uploads.is_some()})).into_response()
}

/// One file, whole or the range asked for, each chunk checked against its hash as it is read.
async fn download(
    State(guests): State<Arc<Shared>>,
    Extension(from): Extension<ClientAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if guests.session(&headers, from.0.ip()).is_none() {
        return not_in();
    }
    let Some((id, name)) = id.parse::<FileId>().ok().and_then(|id| {
        let entry = guests.files.list().into_iter().find(|f| f.id == id)?;
        Some((id, entry.path.rsplit('/').next().unwrap_or_default().to_string()))
    }) else {
        return error(StatusCode::NOT_FOUND, "no such shared file");
    };
    let reader = match guests.files.open(id).await {
        Ok(reader) => reader,
        Err(node::SharedError::NotShared) => return error(StatusCode::NOT_FOUND, "no such shared file"),
        Err(e) => return error(StatusCode::CONFLICT, &format!("not sent: {e}")),
    };
    let size = reader.size();
    let asked = headers.get(header::RANGE).and_then(|r| r.to_str().ok());
    let (status, bytes) = match range::requested(asked, size) {
        None => (StatusCode::OK, 0..size),
        Some(Ok(bytes)) => (StatusCode::PARTIAL_CONTENT, bytes),
        Some(Err(())) => {
            let mut response = error(StatusCode::RANGE_NOT_SATISFIABLE, "that range is past the end of the file");
            if let Ok(whole) = HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, whole);
            }
            return response;
        }
    };
    let mut response = Response::new(Body::from_stream(verified_bytes(reader, bytes.clone())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set(headers, header::CONTENT_LENGTH, (bytes.end - bytes.start).to_string());
    set(headers, header::CONTENT_TYPE, "application/octet-stream".into());
    set(headers, header::ACCEPT_RANGES, "bytes".into());
    set(headers, header::CONTENT_DISPOSITION, attachment(&name));
    if status == StatusCode::PARTIAL_CONTENT {
        set(headers, header::CONTENT_RANGE, format!("bytes {}-{}/{size}", bytes.start, bytes.end - 1));
    }
    response
}

/// The bytes `range` of the file, chunk by chunk, each checked before it is sent: a chunk that no longer
/// matches its hash ends the body short (the browser sees a failed download, never wrong bytes).
fn verified_bytes(
    reader: node::SharedReader,
    range: std::ops::Range<u64>,
) -> impl futures_util::Stream<Item = Result<Bytes, node::SharedError>> {
    let chunk_size = u64::from(reader.manifest().chunk_size());
    let first = if range.is_empty() { 0 } else { (range.start / chunk_size) as u32 };
    futures_util::stream::try_unfold((reader, first, range), move |(reader, index, range)| async move {
        let (start, len) = reader.manifest().chunk_span(index);
        let end = start + u64::from(len);
        if range.is_empty() || start >= range.end || len == 0 {
            return Ok(None);
        }
        let chunk = reader.chunk(index).await?;
        let from = range.start.max(start) - start;
        let to = range.end.min(end) - start;
        let piece = Bytes::from(chunk).slice(from as usize..to as usize);
        Ok(Some((piece, (reader, index + 1, range))))
    })
}

/// A Content-Disposition that saves the file as `name`: the name percent-encoded (RFC 6266), and a
/// plain ASCII one for old browsers.
fn attachment(name: &str) -> String {
    let plain: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "._- ()".contains(c) { c } else { '_' }).collect();
    let encoded: String = name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect();
    format!("attachment; filename=\"{plain}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_name_is_saved_as_text() {
        let header = attachment("<img src=x onerror=alert(1)>\".txt");
        assert!(HeaderValue::from_str(&header).is_ok());
        assert_eq!(header.matches('"').count(), 2, "{header}");
        assert!(header.ends_with("%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E%22.txt"), "{header}");
    }

    proptest::proptest! {
        /// Whatever Cookie headers a browser sends, the session is found without a panic, and only where
        /// it is named.
        #[test]
        fn any_cookie_header_is_read_safely(cookies in proptest::collection::vec("[ -~]{0,80}", 0..4)) {
            let mut headers = HeaderMap::new();
            for cookie in &cookies {
                if let Ok(value) = HeaderValue::from_str(cookie) {
                    headers.append(header::COOKIE, value);
                }
            }
            if session_cookie(&headers).is_some() {
                proptest::prop_assert!(cookies.iter().any(|c| c.contains("p2pguest=")));
            }
        }
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; p2pguest=abc; b=2"));
        assert_eq!(session_cookie(&headers).as_deref(), Some("abc"));
    }
}
