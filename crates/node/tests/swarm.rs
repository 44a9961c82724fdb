//! A crowd of swarming downloads over real sockets: they trade chunks, and complete from each other once
//! the seed is gone.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use common::{bytes, free_udp_port, net, serve_capped, temp};
use node::{DownloadEvent, Identity, StateKey, Survey, Swarm, Transport, download};

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
            let client = transport::builtin::client(lan.transport, lan.transport_config(), identity).expect("client");
            let client: Arc<dyn Transport> = Arc::new(transport::Reuse::new(client));
            let discoveries = vec![lan.udp(id, true)];
            let swarm = Swarm::bind(id, format!("get{i}"), 0, &lan, &serving, discoveries, vec![client.clone()]);
            let swarm = swarm.await.expect("the swarm binds");
            let offer = swarm.offer();
            let uploading = tokio::spawn(swarm.run());
            let mut survey = Survey::new(&lan, vec![client], vec![lan.udp(id, false)]).expect("survey");
            let (file, _, sources) = survey.find("crowd.bin").await.expect("the seed lists it");
            let key = StateKey::random();
            let fetched = download(file, &sources, out.path(), lan.timeout, &key, Some(&offer), |e| {
                if let DownloadEvent::Chunk { index, peer, .. } = e
                    && *peer == seed_id
                {
                    let mut left = left.lock().expect("lock");
                    left.0.insert(*index);
                    if left.0.len() == CHUNKS as usize
                        && let Some(stop) = left.1.take()
                    {
                        stop();
                    }
                }
            });
            let path = fetched.await.expect("completes without the seed");
            // It serves the others until all are done.
            (path, out, uploading)
        });
    }
    let mut done = Vec::new();
    while let Some(joined) = downloads.join_next().await {
        done.push(joined.expect("a download panicked"));
    }
    assert!(left.lock().expect("lock").1.is_none(), "the seed was stopped before the crowd completed");
    for (path, _out, uploading) in done {
        assert!(std::fs::read(path).expect("read") == data, "the bytes differ from the seed's");
        uploading.abort();
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
