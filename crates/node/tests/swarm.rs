//! A crowd of swarming downloads over real sockets: they trade chunks, and complete from each other once
//! the seed is gone.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{bytes, free_udp_port, net, serve_capped, temp};
use node::{Client, ClientConfig, DownloadEvent, FetchEvent, FetchOptions, Identity, Seed};

/// Downloaders in the crowd.
const CROWD: usize = 3;
/// Chunks of the file (256 KiB each).
const CHUNKS: u32 = 32;

/// The seed (capped, so the crowd needs it a while) is stopped once every chunk has left it once: every
/// downloader still completes, from the others, with the seed's bytes.
async fn a_crowd_completes_from_each_other_once_the_seed_is_gone(transport: &'static str) {
    let lan = net(transport, free_udp_port());
    let dir = temp();
    let data = bytes(CHUNKS as usize * 256 * 1024, 5);
    std::fs::write(dir.path().join("crowd.bin"), &data).expect("write");
    let mut seed = serve_capped(&lan, dir.path(), "seed", Some(4 << 20)).await;
    let seed_id = seed.id;
    // The chunks that left the seed; once all of them have, the seed stops.
    let left = Arc::new(Mutex::new((HashSet::new(), Some(seed.stopper()))));
    let mut downloads = tokio::task::JoinSet::new();
    for i in 0..CROWD {
        let (lan, left, out) = (lan.clone(), left.clone(), temp());
        downloads.spawn(async move {
            let identity = Identity::generate().expect("identity");
            let id = identity.node_id();
            let serving = transport::builtin::serving(lan.transport_config(), &identity);
            let transport =
                transport::builtin::client(lan.transport, lan.transport_config(), identity).expect("client");
            let config = ClientConfig::default().net(lan.config.clone()).name(format!("get{i}"));
            let client = Client::builder(config).transport(transport).discovery(lan.udp(id, true)).upload(id, serving);
            let client = client.build().expect("a client");
            // It serves the others until all are done (the test ends it).
            let options = FetchOptions::default().seed(Seed::For(Duration::from_secs(3600)));
            let mut fetch = client.fetch(vec!["crowd.bin".into()], out.path().to_path_buf(), options);
            loop {
                match fetch.next_event().await.expect("the fetch goes on until done") {
                    FetchEvent::Download { event: DownloadEvent::Chunk { index, peer, .. }, .. } if peer == seed_id => {
                        let mut left = left.lock().expect("lock");
                        left.0.insert(index);
                        if left.0.len() == CHUNKS as usize
                            && let Some(stop) = left.1.take()
                        {
                            stop();
                        }
                    }
                    FetchEvent::Done { path, .. } => return (path, out, fetch),
                    FetchEvent::Failed { error, .. } => panic!("get{i} did not complete without the seed: {error}"),
                    _ => {}
                }
            }
        });
    }
    let mut done = Vec::new();
    while let Some(joined) = downloads.join_next().await {
        done.push(joined.expect("a download panicked"));
    }
    assert!(left.lock().expect("lock").1.is_none(), "the seed was stopped before the crowd completed");
    for (path, _out, fetch) in done {
        assert!(std::fs::read(path).expect("read") == data, "the bytes differ from the seed's");
        fetch.cancel();
        fetch.finish().await.expect("a fetch cancelled while seeding stands");
    }
    seed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tls_crowd_completes_from_each_other_once_the_seed_is_gone() {
    a_crowd_completes_from_each_other_once_the_seed_is_gone("tls").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_quic_crowd_completes_from_each_other_once_the_seed_is_gone() {
    a_crowd_completes_from_each_other_once_the_seed_is_gone("quic").await
}

/// A fetch that nobody downloads from ends with its last file: it tells no seeding and waits for nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_nobody_asked_anything_ends_without_seeding() {
    let lan = net("tls", free_udp_port());
    let dir = temp();
    std::fs::write(dir.path().join("alone.bin"), bytes(300 * 1024, 9)).expect("write");
    let seed = serve_capped(&lan, dir.path(), "seed", None).await;
    let identity = Identity::generate().expect("identity");
    let id = identity.node_id();
    let serving = transport::builtin::serving(lan.transport_config(), &identity);
    let transport = transport::builtin::client(lan.transport, lan.transport_config(), identity).expect("client");
    let config = ClientConfig::default().net(lan.config.clone()).name("alone".to_string());
    let client = Client::builder(config).transport(transport).discovery(lan.udp(id, true)).upload(id, serving);
    let client = client.build().expect("a client");
    let out = temp();
    let mut fetch = client.fetch(vec!["alone.bin".into()], out.path().to_path_buf(), FetchOptions::default());
    let mut events = Vec::new();
    while let Some(event) = fetch.next_event().await {
        events.push(event);
    }
    fetch.finish().await.expect("fetched");
    assert!(events.iter().any(|e| matches!(e, FetchEvent::Done { .. })), "{events:?}");
    assert!(!events.iter().any(|e| matches!(e, FetchEvent::Seeding)), "nobody asked: no seeding");
    seed.stop().await;
}
