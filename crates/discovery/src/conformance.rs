//! The conformance suite of a discovery: seen, updated, expired, queries answered, own record ignored,
//! the largest record intact, and input bounded. A third party runs it with one call (feature
//! `conformance`), handing a function that makes a fresh LAN: a function joining nodes to it.
//!
//! ```ignore
//! let passed = discovery::conformance::run(|| Box::new(|local, listen| my_discovery(local, listen))).await;
//! assert_eq!(passed, discovery::conformance::CASES);
//! ```
//!
//! Waits are bounded by [`WITHIN`] (and expiry by three announce intervals of 1 s); each case panics
//! naming what broke.

use std::collections::HashSet;
use std::time::Duration;

use proto::{Announcement, MAX_NODE_NAME, MAX_TRANSPORT_NAME, NodeId};

use crate::{Discovery, MAX_IDS_PER_ADDRESS, PeerEvent};

/// How many cases [`run`] runs.
pub const CASES: usize = 7;
/// The longest wait for an event that must come.
pub const WITHIN: Duration = Duration::from_secs(15);

/// Joins a node (`local`: its id; `listen`: whether it serves and hears announcements, or only asks)
/// to one LAN.
pub type Join = Box<dyn Fn(NodeId, bool) -> Box<dyn Discovery>>;

/// Runs every case, each on a fresh LAN from `lan`; returns how many passed (all, or it panics).
pub async fn run(lan: impl Fn() -> Join) -> usize {
    let mut passed = 0;
    macro_rules! cases {
        ($($case:ident),* $(,)?) => {$(
            tracing::info!(case = stringify!($case), "discovery conformance case");
            $case(lan()).await;
            passed += 1;
        )*};
    }
    cases!(
        an_announcement_is_seen,
        a_query_is_answered,
        a_change_is_an_update,
        a_node_that_leaves_expires,
        its_own_record_is_never_seen,
        the_largest_record_arrives_intact,
        a_flood_of_ids_is_bounded,
    );
    passed
}

/// A record of node `id`, announced every second.
pub fn record(id: u8) -> Announcement {
    Announcement {
        node: NodeId([id; 32]),
        instance: 7,
        name: format!("node{id}"),
        ports: vec![("tls".into(), 6000 + u16::from(id))],
        catalogue_version: 1,
        file_count: 3,
        interval_secs: 1,
    }
}

/// The first event `wanted` takes, within [`WITHIN`].
async fn until(d: &mut Box<dyn Discovery>, what: &str, wanted: impl Fn(&PeerEvent) -> bool) -> PeerEvent {
    let found = tokio::time::timeout(WITHIN, async {
        loop {
            match d.next_event().await {
                Some(event) if wanted(&event) => return event,
                Some(_) => {}
                None => panic!("discovery stopped while waiting for {what}"),
            }
        }
    });
    found.await.unwrap_or_else(|_| panic!("no {what} within {WITHIN:?}"))
}

fn seen(id: NodeId) -> impl Fn(&PeerEvent) -> bool {
    move |e| matches!(e, PeerEvent::Seen(p) if p.id() == id)
}

async fn an_announcement_is_seen(join: Join) {
    let mut watcher = join(NodeId([1; 32]), true);
    let announcer = join(NodeId([2; 32]), true);
    announcer.announce(record(2));
    let PeerEvent::Seen(peer) = until(&mut watcher, "Seen of an announcer", seen(NodeId([2; 32]))).await else {
        unreachable!()
    };
    assert_eq!(peer.announcement, record(2), "the record arrived changed");
}

async fn a_query_is_answered(join: Join) {
    let server = join(NodeId([2; 32]), true);
    server.announce(record(2));
    let mut asker = join(NodeId([9; 32]), false);
    asker.query();
    until(&mut asker, "an answer to a query", seen(NodeId([2; 32]))).await;
}

async fn a_change_is_an_update(join: Join) {
    let mut watcher = join(NodeId([1; 32]), true);
    let announcer = join(NodeId([2; 32]), true);
    announcer.announce(record(2));
    until(&mut watcher, "Seen of an announcer", seen(NodeId([2; 32]))).await;
    let changed = Announcement { catalogue_version: 2, file_count: 4, ..record(2) };
    announcer.announce(changed.clone());
    let update = until(&mut watcher, "Updated after a change", |e| matches!(e, PeerEvent::Updated(_))).await;
    assert_eq!(update.peer().announcement, changed);
}

async fn a_node_that_leaves_expires(join: Join) {
    let mut watcher = join(NodeId([1; 32]), true);
    let leaver = join(NodeId([2; 32]), true);
    leaver.announce(record(2));
    until(&mut watcher, "Seen of the leaver", seen(NodeId([2; 32]))).await;
    drop(leaver);
    until(
        &mut watcher,
        "Expired of a node that left",
        |e| matches!(e, PeerEvent::Expired(p) if p.id() == NodeId([2; 32])),
    )
    .await;
}

async fn its_own_record_is_never_seen(join: Join) {
    let mut node = join(NodeId([1; 32]), true);
    let other = join(NodeId([2; 32]), true);
    node.announce(record(1));
    other.announce(record(2));
    let first = until(&mut node, "Seen of the other node", |e| matches!(e, PeerEvent::Seen(_))).await;
    assert_eq!(first.peer().id(), NodeId([2; 32]), "a node saw its own record");
}

async fn the_largest_record_arrives_intact(join: Join) {
    let mut watcher = join(NodeId([1; 32]), true);
    let announcer = join(NodeId([2; 32]), true);
    let largest = Announcement {
        name: "é".repeat(MAX_NODE_NAME / 2),
        ports: (0..8).map(|i| (format!("{i}").repeat(MAX_TRANSPORT_NAME), 6000 + i)).collect(),
        catalogue_version: u64::MAX,
        file_count: u32::MAX,
        instance: u64::MAX,
        ..record(2)
    };
    announcer.announce(largest.clone());
    let event = until(&mut watcher, "Seen of the largest record", seen(NodeId([2; 32]))).await;
    assert_eq!(event.peer().announcement, largest);
}

async fn a_flood_of_ids_is_bounded(join: Join) {
    let mut watcher = join(NodeId([1; 32]), true);
    let flooder = join(NodeId([2; 32]), true);
    let ids = (0..=255u8).filter(|i| *i != 1);
    for id in ids {
        flooder.announce(record(id));
        tokio::task::yield_now().await;
    }
    let (mut live, mut seen) = (HashSet::new(), 0);
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        while let Some(event) = watcher.next_event().await {
            match event {
                PeerEvent::Seen(p) => {
                    seen += 1;
                    live.insert(p.id())
                }
                PeerEvent::Expired(p) => live.remove(&p.id()),
                PeerEvent::Updated(_) => false,
            };
            assert!(live.len() <= MAX_IDS_PER_ADDRESS, "{} ids of one address held at once", live.len());
        }
    })
    .await;
    // Counted as they come, not at the end: the flood's ids expire after three missed intervals, which
    // may fall right at the end of the wait.
    assert!(seen > 0, "the flood drowned every announcement");
}
