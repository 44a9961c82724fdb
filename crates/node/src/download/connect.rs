//! The start of a download: every source connected to at once, and the manifest taken from the first
//! whose copy hashes to the id.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use proto::{ErrorCode, FileId, Manifest, Request};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use transport::Connection;

use super::event::{DownloadEvent, Dropped};
use super::source::{Source, SourceIndex};
use crate::NodeError;
use crate::exchange::{ExchangeError, request_within};

/// Manifest requests in flight at once, to different sources, one address after another: the first valid
/// answer wins, so peers that stall cost one timeout in all, not one each.
const MANIFEST_PARALLEL: usize = 32;
/// The manifest bytes the requests in flight may hold together (the largest manifest is 32 MiB); a request
/// that finds it used up fails and gives its bytes back.
const MANIFEST_BUDGET: usize = 40 * 1024 * 1024;
/// Connects to every source at once; those that fail are reported and left out. Returns the connections by
/// source index.
pub(super) async fn connect_all(
    sources: &[Source],
    on_event: &mut impl FnMut(&DownloadEvent),
) -> Result<HashMap<SourceIndex, Arc<dyn Connection>>, NodeError> {
    let mut attempts = JoinSet::new();
    for (index, source) in sources.iter().cloned().enumerate() {
        attempts.spawn(async move { (index, source.transport.connect(source.addr, source.node).await) });
    }
    let mut conns = HashMap::new();
    let mut last_error = None;
    while let Some(joined) = attempts.join_next().await {
        match joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())) {
            (index, Ok(conn)) => {
                conns.insert(index, conn);
            }
            (index, Err(e)) => {
                let (peer, why) = (sources[index].node, Dropped::Gone(e.to_string()));
                on_event(&DownloadEvent::SourceDropped { peer, why, waiting: None });
                last_error = Some(e);
            }
        }
    }
    match (conns.is_empty(), last_error) {
        (true, Some(e)) => Err(e.into()),
        _ => Ok(conns),
    }
}

/// The manifest of `id` from the first source whose copy hashes to `id`, asked of up to
/// [`MANIFEST_PARALLEL`] sources at once, each given what is left of `timeout`; and that source. Sources
/// are asked one address after another, so the ids of one host that all stall fill no more than their
/// share of the requests.
pub(super) async fn fetch_manifest(
    conns: &HashMap<SourceIndex, Arc<dyn Connection>>,
    sources: &[Source],
    id: FileId,
    timeout: Duration,
) -> Result<(Manifest, SourceIndex), NodeError> {
    const MAX_MANIFEST: u64 = 64 + proto::MAX_FILE_NAME as u64 + 32 * proto::MAX_CHUNKS as u64;
    let deadline = Instant::now() + timeout;
    let budget = Arc::new(Semaphore::new(MANIFEST_BUDGET));
    let mut order: Vec<SourceIndex> = conns.keys().copied().collect();
    order.sort_unstable();
    let mut seen_at: HashMap<IpAddr, usize> = HashMap::new();
    let mut ranked: Vec<(usize, SourceIndex)> = order
        .into_iter()
        .map(|i| {
            let earlier = seen_at.entry(sources[i].addr.ip()).or_default();
            *earlier += 1;
            (*earlier, i)
        })
        .collect();
    ranked.sort_unstable();
    let mut waiting = ranked.into_iter().map(|(_, i)| (i, conns[&i].clone(), budget.clone()));
    let mut asked = JoinSet::new();
    loop {
        while asked.len() < MANIFEST_PARALLEL {
            let Some((index, conn, budget)) = waiting.next() else { break };
            asked.spawn(async move {
                let ask = Request::Manifest(id);
                let answer = ask_until_not_busy(&*conn, &ask, MAX_MANIFEST, &budget);
                (index, tokio::time::timeout_at(deadline, answer).await)
            });
        }
        let Some(joined) = asked.join_next().await else { break };
        let (index, fetched) = joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        let peer = format!("node {} at {}", sources[index].node.short(), sources[index].addr);
        match fetched.map(|r| r.map(|bytes| Manifest::decode(&bytes))) {
            Ok(Ok(Ok(m))) if m.id() == id => return Ok((m, index)),
            Ok(Ok(Ok(_))) => tracing::warn!("{peer} sent the manifest of another file than {id}"),
            Ok(Ok(Err(e))) => tracing::warn!("{peer} sent a manifest that does not decode: {e}"),
            Ok(Err(e)) => tracing::warn!("{peer} sent no manifest: {e}"),
            Err(_) => tracing::warn!("{peer} sent no manifest in time"),
        }
    }
    Err(NodeError::NoManifest(id.to_string()))
}

/// Asks `request` of `conn`, again after a pause (doubling from 250 ms to 2 s) for as long as the peer
/// answers that it is busy: a busy peer is there, only full for now.
async fn ask_until_not_busy(
    conn: &dyn Connection,
    request: &Request,
    max_len: u64,
    budget: &Semaphore,
) -> Result<Vec<u8>, ExchangeError> {
    let mut pause = Duration::from_millis(250);
    loop {
        match request_within(conn, request, max_len, budget).await {
            Err(ExchangeError::Refused { code: ErrorCode::Busy, .. }) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            answer => return answer,
        }
    }
}
