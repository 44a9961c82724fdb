//! What both pages share: the accept loop (bounded connections, slow clients cut off), the Host check
//! against DNS rebinding, the security headers every answer carries, and the one-line JSON errors.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::idle::{IDLE, Idle};

/// Connections served at once, from every address.
pub const MAX_CONNECTIONS: usize = 64;
/// Connections served at once to one address: a browser opens six; the rest wait their turn.
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 16;
/// How long a client may take to send a request's headers (a slow one holds a connection).
const HEADER_WITHIN: Duration = Duration::from_secs(10);
/// The most header bytes read of one request.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The Content-Security-Policy of every answer: the page's own files only, no inline script or style,
/// no frames, forms or plug-ins.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The address of the client of a request, put there by [`serve`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClientAddr(pub(crate) SocketAddr);

/// Serves `router` on `listener` until the task is dropped: at most [`MAX_CONNECTIONS`] at once (and
/// [`MAX_CONNECTIONS_PER_ADDRESS`] per address; those over are closed at once), headers within
/// [`HEADER_WITHIN`] and [`MAX_HEADER_BYTES`], and each connection closed once idle for [`IDLE`].
pub(crate) async fn serve(listener: TcpListener, router: Router) {
    let all = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let per_address: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    loop {
        let Ok(permit) = all.clone().acquire_owned().await else { return };
        let (stream, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, say: wait rather than spin.
                tracing::warn!(error = %e, "web: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = AddressSlot::take(&per_address, addr.ip()) else { continue };
        let router = router.clone();
        tokio::spawn(async move {
            let (_permit, _slot) = (permit, slot);
            let service = tower_service(router, addr);
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new()).header_read_timeout(HEADER_WITHIN).max_buf_size(MAX_HEADER_BYTES);
            let stream = Idle::new(stream, IDLE);
            if let Err(e) = http.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(error = %e, %addr, "web: connection ended");
            }
        });
    }
}

/// `router` with the client's address in each request's extensions.
fn tower_service(router: Router, addr: SocketAddr) -> TowerToHyperService<Router> {
    TowerToHyperService::new(router.layer(axum::Extension(ClientAddr(addr))))
}

/// One address's share of the connections, given back when the connection ends.
struct AddressSlot {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl AddressSlot {
    fn take(counts: &Arc<Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr) -> Option<Self> {
        let mut held = counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(ip).or_default();
        if *count >= MAX_CONNECTIONS_PER_ADDRESS {
            return None;
        }
        *count += 1;
        Some(Self { counts: counts.clone(), ip })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut held = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

/// Answers only requests whose Host header `allowed` takes (a page reached under another name is a DNS
/// rebinding attack, or a mistake), and puts the security headers on every answer.
pub(crate) async fn guard(allowed: Arc<dyn Fn(&str) -> bool + Send + Sync>, request: Request, next: Next) -> Response {
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok());
    let mut response = match host {
        Some(host) if allowed(host) => next.run(request).await,
        _ => error(StatusCode::MISDIRECTED_REQUEST, "this page answers only at its own address"),
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Whether `host` (a Host header) is `ip:port` with an IP address literal and this `port`: names are
/// refused, so a page of another site that a name now points here cannot read anything.
pub(crate) fn is_address_host(host: &str, port: u16) -> bool {
    host.parse::<SocketAddr>().is_ok_and(|addr| addr.port() == port)
}

/// An error answer: `{"error": what}`.
pub(crate) fn error(status: StatusCode, what: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": what }))).into_response()
}

/// 32 random bytes as 64 hex digits: the page's secret, a guest's session.
pub(crate) fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether two secrets are equal, in time that does not depend on where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_address_literals_with_the_port_are_hosts() {
        assert!(is_address_host("127.0.0.1:5080", 5080));
        assert!(is_address_host("[::1]:5080", 5080));
        assert!(is_address_host("192.168.1.20:5081", 5081));
        assert!(!is_address_host("evil.example:5080", 5080));
        assert!(!is_address_host("localhost:5080", 5080));
        assert!(!is_address_host("127.0.0.1:80", 5080));
        assert!(!is_address_host("127.0.0.1", 5080));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
