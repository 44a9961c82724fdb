//! One connection of a serving node: its exchanges, each a request read within bounds and answered.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use proto::ErrorCode;
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument;
use transport::frame_io::{read_request, refuse_connection};
use transport::{Incoming, Stream, TransportError};

use super::answer::{answer, refuse};
use super::context::{Sent, ServeContext};
use super::spread::Downloader;

/// Exchanges served at once on one connection.
const MAX_STREAMS_PER_CONNECTION: usize = 16;
/// How long the rest of a request frame (at most 4 KiB) may take once its first byte arrived: a peer that
/// dribbles bytes (slowloris) loses its exchange long before the idle timeout.
const SLOW_SENDER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection over the limits gets to ask, and to take its busy answer.
const BUSY_ANSWER_TIME: Duration = Duration::from_secs(2);
/// Serves the exchanges of one connection until the peer is done with it or it idles out: a connection
/// with no exchange in progress that opens none within the idle timeout is closed, whatever the transport
/// does to keep it alive. Returns what its exchanges sent.
pub(crate) async fn serve_connection(incoming: Box<dyn Incoming>, context: ServeContext) -> Vec<Sent> {
    let peer = incoming.remote_addr();
    let who = incoming.authenticated().map_or(Downloader::Address(peer.ip()), |a| Downloader::Proven(a.peer));
    let proven = match who {
        Downloader::Proven(id) => id.short(),
        Downloader::Address(_) => "-".into(),
    };
    let span = tracing::info_span!(target: "p2pnode::server", "connection", %peer, id = %proven);
    serve_exchanges(incoming, context, peer, who).instrument(span).await
}

async fn serve_exchanges(
    mut incoming: Box<dyn Incoming>,
    context: ServeContext,
    peer: SocketAddr,
    who: Downloader,
) -> Vec<Sent> {
    let mut sent = Vec::new();
    let mut count = |done: Result<Option<Sent>, tokio::task::JoinError>| sent.extend(done.ok().flatten());
    let limit = Arc::new(Semaphore::new(MAX_STREAMS_PER_CONNECTION));
    // Dropping the set (when the connection ends or the node shuts down) aborts exchanges in progress.
    let mut exchanges = JoinSet::new();
    loop {
        let Ok(permit) = limit.clone().acquire_owned().await else { break };
        let accepted = if exchanges.is_empty() {
            tokio::time::timeout(context.idle, incoming.accept_stream()).await
        } else {
            Ok(incoming.accept_stream().await)
        };
        let stream = match accepted {
            Ok(Ok(Some(stream))) => stream,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "connection ended");
                break;
            }
            Err(_) => {
                tracing::debug!(%peer, "idle connection closed");
                break;
            }
        };
        let context = context.clone();
        let exchange = async move {
            let _permit = permit;
            serve_exchange(stream, (peer, who), &context).await
        };
        exchanges.spawn(exchange.instrument(tracing::Span::current()));
        while let Some(done) = exchanges.try_join_next() {
            count(done);
        }
    }
    while let Some(done) = exchanges.join_next().await {
        count(done);
    }
    sent
}

/// Answers the first request of a connection over the node's limits with [`ErrorCode::Busy`] and closes
/// it, so the client can tell a busy node (ask again later, with fewer requests at once) from a dead one.
/// The answer must go out within [`BUSY_ANSWER_TIME`]; the caller bounds how many are given at once.
pub(crate) async fn answer_busy(incoming: Box<dyn Incoming>) {
    let message = "connection limit reached; ask again soon";
    refuse_connection(incoming, ErrorCode::Busy, message, BUSY_ANSWER_TIME).await;
}

/// Answers one request; returns the chunk bytes it sent, if it sent a chunk.
async fn serve_exchange(
    mut stream: Box<dyn Stream>,
    (peer, who): (SocketAddr, Downloader),
    context: &ServeContext,
) -> Option<Sent> {
    let mut first = [0u8; 1];
    match tokio::time::timeout(context.idle, stream.read(&mut first)).await {
        Ok(Ok(0)) => return None,
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return debug_none(peer, &e.to_string(), "connection failed"),
        Err(_) => return debug_none(peer, "", "idle connection closed"),
    }
    let request =
        match tokio::time::timeout(SLOW_SENDER_TIMEOUT, read_request(&mut (&first[..]).chain(&mut stream))).await {
            Ok(Ok(Some(request))) => request,
            Ok(Ok(None)) => return None,
            // A whole frame that names a request this build does not know (a newer peer's): answered
            // `bad request`, so that the asker falls back (the crate proto's "Growing the wire").
            Ok(Err(TransportError::Protocol(e @ proto::DecodeError::UnknownTag { what: "request", .. }))) => {
                let refused = refuse(&mut stream, ErrorCode::BadRequest, &e.to_string(), context).await;
                stream.finish();
                return debug_none(peer, &format!("{e} ({refused:?})"), "bad request answered");
            }
            Ok(Err(e)) => return debug_none(peer, &e.to_string(), "bad request"),
            Err(_) => return debug_none(peer, "", "request frame too slow, connection closed"),
        };
    let _busy = context.activity.begin();
    let span = tracing::debug_span!(target: "p2pnode::server", "exchange", request = request.kind());
    // What is shared as the request arrives: a stream of tcp or tls is there long before its request
    // (a pooled connection), and a bitmap from then would refuse chunks verified since.
    let shares = context.shares.borrow().clone();
    match answer(&mut stream, &request, &shares, (peer, who), context).instrument(span).await {
        Ok(sent) => {
            stream.finish();
            if let Some(sent) = &sent {
                context.activity.add_sent(sent.bytes);
            }
            sent
        }
        Err(e) => debug_none(peer, &format!("{request:?}: {e}"), "exchange failed"),
    }
}

/// Logs why an exchange ended without an answer, at debug level: peers cause these at will.
fn debug_none<T>(peer: SocketAddr, error: &str, what: &str) -> Option<T> {
    tracing::debug!(%peer, error, "{what}");
    None
}
