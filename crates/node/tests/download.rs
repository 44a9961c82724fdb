//! End-to-end downloads between real nodes on loopback.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{bytes, free_udp_port, net, serve, serve_capped, temp};
use node::{DownloadEvent, DownloadOptions, ListError, NodeError, PeersError, Source, StateKey, download};

const CHUNK: usize = 256 * 1024;

/// Runs each scenario once per transport.
macro_rules! on_every_transport {
    ($($scenario:ident),* $(,)?) => {
        mod tcp {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $scenario() {
                super::$scenario("tcp").await
            })*
        }
        mod tls {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $scenario() {
                super::$scenario("tls").await
            })*
        }
        mod quic {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $scenario() {
                super::$scenario("quic").await
            })*
        }
    };
}

on_every_transport!(
    a_download_in_progress_is_shared,
    three_nodes_are_discovered,
    files_of_every_shape_arrive_identical,
    an_existing_file_is_never_overwritten,
    source_dying_midway_keeps_the_verified_part_and_resume_fetches_only_the_rest,
    a_name_nobody_hosts_fails_with_close_names,
    no_peer_is_a_timeout_error,
    downloads_are_shared_again,
    a_file_changed_or_deleted_after_hashing_is_refused_then_rehashed,
    a_file_touched_rewritten_alike_or_replaced_is_still_served,
    many_downloads_from_one_busy_seed_all_complete
);

/// Downloads `name` through a fresh survey of the LAN into `into`.
async fn get(
    net: &common::Lan,
    name: &str,
    into: &std::path::Path,
    on_event: impl FnMut(&DownloadEvent),
) -> Result<std::path::PathBuf, Box<dyn std::error::Error + Send + Sync>> {
    let survey = net.survey()?;
    let (id, _, sources) = survey.find(name).await?;
    Ok(download(id, &sources, into, &DownloadOptions::new(key_for(into)).timeout(net.timeout), on_event).await?)
}

/// The state key that a node serving `into` as its downloads folder uses (see `common::serve`), so that it
/// shares what lands there; for any other folder, one kept beside it, so that a second get resumes.
fn key_for(into: &std::path::Path) -> StateKey {
    let state = if into.ends_with("downloads") { into.with_file_name(".p2pnode") } else { into.join(".p2pnode") };
    StateKey::load_or_create(&state).expect("state key")
}

async fn three_nodes_are_discovered(kind: &'static str) {
    let net = net(kind, free_udp_port());
    let dirs = [temp(), temp(), temp()];
    let mut nodes = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        nodes.push(serve(&net, d.path(), &format!("node{i}")).await);
    }
    let mut expected: Vec<_> = nodes.iter().map(|n| n.id).collect();
    expected.sort();
    // A survey settles once answers pause for a moment; on a loaded machine a node that has just started
    // can answer after that pause, so ask again, within a bound, until every node was seen.
    let give_up = std::time::Instant::now() + Duration::from_secs(15);
    let mut found = Vec::new();
    while found != expected && std::time::Instant::now() < give_up {
        let peers = net.survey().expect("survey").peers().await.expect("peers");
        found = peers.iter().map(|p| p.id()).collect();
        found.sort();
    }
    assert_eq!(found, expected);
    for n in nodes {
        n.stop().await;
    }
}

async fn files_of_every_shape_arrive_identical(kind: &'static str) {
    let net = net(kind, free_udp_port());
    let (shared, out) = (temp(), temp());
    let files = [
        ("empty", 0),
        ("one-byte", 1),
        ("exact-chunks", 2 * CHUNK),
        ("chunk-and-a-bit", CHUNK + 1),
        ("fifty-mib", 50 * 1024 * 1024),
    ];
    for (i, (name, len)) in files.iter().enumerate() {
        std::fs::write(shared.path().join(name), bytes(*len, i as u64)).expect("write");
    }
    let server = serve(&net, shared.path(), "server").await;
    for (name, _) in files {
        let path = get(&net, name, out.path(), |_| {}).await.expect("download");
        assert_eq!(path, out.path().join(name));
        assert!(
            std::fs::read(&path).expect("read") == std::fs::read(shared.path().join(name)).expect("read"),
            "{name}"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(out.path())
        .expect("ls")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".part"))
        .collect();
    assert!(leftovers.is_empty(), "no .part files left: {leftovers:?}");
    server.stop().await;
}

async fn an_existing_file_is_never_overwritten(kind: &'static str) {
    let net = net(kind, free_udp_port());
    let (shared, out) = (temp(), temp());
    std::fs::write(shared.path().join("notes.txt"), b"from the peer").expect("write");
    std::fs::write(out.path().join("notes.txt"), b"mine").expect("write");
    let server = serve(&net, shared.path(), "server").await;
    let path = get(&net, "notes.txt", out.path(), |_| {}).await.expect("download");
    assert_eq!(path, out.path().join("notes (1).txt"));
    assert_eq!(std::fs::read(out.path().join("notes.txt")).expect("read"), b"mine");
    assert_eq!(std::fs::read(path).expect("read"), b"from the peer");
    server.stop().await;
}

async fn source_dying_midway_keeps_the_verified_part_and_resume_fetches_only_the_rest(kind: &'static str) {
    let mut net = net(kind, free_udp_port());
    net.timeout = Duration::from_secs(2);
    let (shared, out) = (temp(), temp());
    let data = bytes(40 * 1024 * 1024, 7);
    std::fs::write(shared.path().join("big.bin"), &data).expect("write");
    let mut server = serve(&net, shared.path(), "server").await;

    let mut stop = Some(server.stopper());
    let mut verified = 0u32;
    let failed = get(&net, "big.bin", out.path(), |e| {
        if let DownloadEvent::Chunk { .. } = e {
            verified += 1;
            if let Some(stop) = stop.take() {
                stop();
            }
        }
    })
    .await;
    server.stop().await;
    let failed = failed.expect_err("the only source stopped");
    let Some(NodeError::SourcesGone { part, verified: bytes, size, .. }) = failed.downcast_ref() else {
        panic!("expected every source gone, got {failed}")
    };
    assert!(!out.path().join("big.bin").exists(), "no final file from an incomplete download");
    assert_eq!((*bytes, *size), (u64::from(verified) * CHUNK as u64, data.len() as u64), "the verified part told");
    let missing = 160 - verified;
    let on_disk = std::fs::read(part).expect("part kept");
    assert_eq!(on_disk.len(), data.len());

    // The same node comes back; the rerun fetches only what was missing.
    let server = serve(&net, shared.path(), "server").await;
    let mut fetched = 0u32;
    let path = get(&net, "big.bin", out.path(), |e| fetched += u32::from(matches!(e, DownloadEvent::Chunk { .. })))
        .await
        .expect("resumed download");
    assert_eq!(fetched, missing);
    assert!(std::fs::read(path).expect("read") == data);
    assert!(!part.exists());
    server.stop().await;
}

async fn a_name_nobody_hosts_fails_with_close_names(kind: &'static str) {
    let net = net(kind, free_udp_port());
    let shared = temp();
    std::fs::write(shared.path().join("holiday.jpg"), b"jpeg").expect("write");
    let server = serve(&net, shared.path(), "server").await;
    let err = get(&net, "holiday.jgp", temp().path(), |_| {}).await.expect_err("not hosted");
    let err = err.downcast_ref::<ListError>().expect("a listing error");
    assert!(matches!(err, ListError::NotHosted { close, .. } if close == &["holiday.jpg"]), "{err}");
    server.stop().await;
}

async fn no_peer_is_a_timeout_error(kind: &'static str) {
    let mut net = net(kind, free_udp_port());
    net.timeout = Duration::from_millis(600);
    let err = get(&net, "anything", temp().path(), |_| {}).await.expect_err("nobody there");
    let err = err.downcast_ref::<ListError>().expect("a listing error");
    assert!(matches!(err, ListError::Peers(PeersError::NoneAnswered(_))), "{err}");
}

async fn downloads_are_shared_again(kind: &'static str) {
    let net = net(kind, free_udp_port());
    let (a_dir, b_dir) = (temp(), temp());
    std::fs::write(a_dir.path().join("song.ogg"), bytes(300_000, 3)).expect("write");
    let a = serve(&net, a_dir.path(), "a").await;
    let b = serve(&net, b_dir.path(), "b").await;
    get(&net, "song.ogg", &b.downloads, |_| {}).await.expect("b downloads");
    a.stop().await;
    // B picks the download up at its next rescan (1 s here) and serves it to C.
    let c_dir = temp();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match get(&net, "song.ogg", c_dir.path(), |_| {}).await {
            Ok(path) => {
                assert!(std::fs::read(path).expect("read") == bytes(300_000, 3));
                break;
            }
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(error = %e, "not yet shared");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => panic!("B never re-shared the download: {e}"),
        }
    }
    b.stop().await;
}

async fn a_download_in_progress_is_shared(kind: &'static str) {
    let net = net(kind, free_udp_port());
    let (a_dir, b_dir, c_dir) = (temp(), temp(), temp());
    let data = bytes(32 * CHUNK, 11);
    std::fs::write(a_dir.path().join("film.bin"), &data).expect("write");
    let a = serve_capped(&net, a_dir.path(), "a", Some(4 << 20)).await;
    let b = serve(&net, b_dir.path(), "b").await;

    // B downloads slowly from A, in the background, into the folder it shares.
    let (tx, mut verified) = tokio::sync::mpsc::unbounded_channel();
    let b_downloads = b.downloads.clone();
    let b_net = net.clone();
    let b_download = tokio::spawn(async move {
        get(&b_net, "film.bin", &b_downloads, move |e| {
            if let DownloadEvent::Chunk { .. } = e {
                let _ = tx.send(());
            }
        })
        .await
    });
    for _ in 0..8 {
        verified.recv().await.expect("B progresses");
    }

    // B's next rescan (1 s) lists its verified chunks; C finds B as a partial host.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let sources = loop {
        let (_, entry, sources) = net.survey().expect("survey").find("film.bin").await.expect("found");
        if entry.partial.keys().any(|h| h.node == b.id) {
            break sources;
        }
        assert!(tokio::time::Instant::now() < deadline, "B never shared its partial download");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let id = net.survey().expect("survey").find("film.bin").await.expect("found").0;
    let mut from_b = 0;
    let path =
        download(id, &sources, c_dir.path(), &DownloadOptions::new(key_for(c_dir.path())).timeout(net.timeout), |e| {
            from_b += u32::from(matches!(e, DownloadEvent::Chunk { peer, .. } if *peer == b.id));
        })
        .await
        .expect("C downloads");
    assert!(from_b > 0, "C fetched chunks from B's download in progress");
    assert!(std::fs::read(path).expect("read") == data);
    b_download.await.expect("joined").expect("B completes");
    a.stop().await;
    b.stop().await;
}

async fn a_file_changed_or_deleted_after_hashing_is_refused_then_rehashed(kind: &'static str) {
    let mut net = net(kind, free_udp_port());
    // No periodic rescan during the test: only the server noticing the change can trigger one.
    net.announce_interval = Duration::from_secs(60);
    net.timeout = Duration::from_secs(2);
    let (shared, out) = (temp(), temp());
    let report = shared.path().join("report.txt");
    std::fs::write(&report, bytes(600_000, 1)).expect("write");
    std::fs::write(shared.path().join("gone.txt"), b"soon deleted").expect("write");
    let server = serve(&net, shared.path(), "server").await;
    let survey = net.survey().expect("survey");
    let (old_id, _, sources) = survey.find("report.txt").await.expect("listed");
    let (gone_id, _, _) = survey.find("gone.txt").await.expect("listed");

    // Same size, new bytes, a new mtime: what an editor saving in place does.
    let new = bytes(600_000, 2);
    std::fs::write(&report, &new).expect("rewrite");
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options().write(true).open(&report).and_then(|f| f.set_modified(later)).expect("mtime");
    std::fs::remove_file(shared.path().join("gone.txt")).expect("delete");
    for id in [old_id, gone_id] {
        let result =
            download(id, &sources, out.path(), &DownloadOptions::new(StateKey::random()).timeout(net.timeout), |_| {})
                .await;
        assert!(result.is_err(), "{kind}: the old content is refused, got {result:?}");
    }
    assert!(!out.path().join("report.txt").exists() && !out.path().join("gone.txt").exists());

    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let new_id = loop {
        let survey = net.survey().expect("survey");
        match survey.find("report.txt").await {
            Ok((id, _, _)) if id != old_id => break id,
            _ if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
            other => panic!("{kind}: the server never rehashed the changed file: {other:?}"),
        }
    };
    let survey = net.survey().expect("survey");
    assert!(survey.find("gone.txt").await.is_err(), "{kind}: a deleted file is no longer listed");
    let (_, _, sources) = survey.find("report.txt").await.expect("listed");
    let path =
        download(new_id, &sources, out.path(), &DownloadOptions::new(StateKey::random()).timeout(net.timeout), |_| {})
            .await
            .expect("new content");
    assert!(std::fs::read(path).expect("read") == new);
    server.stop().await;
}

async fn a_file_touched_rewritten_alike_or_replaced_is_still_served(kind: &'static str) {
    let mut net = net(kind, free_udp_port());
    // No periodic rescan during the test: only the server noticing the change can trigger one.
    net.announce_interval = Duration::from_secs(60);
    let shared = temp();
    let (report, data) = (shared.path().join("report.txt"), bytes(600_000, 4));
    std::fs::write(&report, &data).expect("write");
    let server = serve(&net, shared.path(), "server").await;
    let (id, _, sources) = net.survey().expect("survey").find("report.txt").await.expect("listed");
    let touch = || {
        let later = std::time::SystemTime::now() + Duration::from_secs(60);
        std::fs::File::options().write(true).open(&report).and_then(|f| f.set_modified(later)).expect("touch");
    };
    let rewrite = || std::fs::write(&report, &data).expect("rewrite");
    let replace = || {
        let saved = shared.path().join(".report.txt.tmp");
        std::fs::write(&saved, &data).expect("write");
        std::fs::rename(&saved, &report).expect("rename over");
    };
    let alike: [(&str, &dyn Fn()); 3] = [("touch", &touch), ("identical rewrite", &rewrite), ("replace", &replace)];
    for (what, change) in alike {
        change();
        let out = temp();
        let path =
            download(id, &sources, out.path(), &DownloadOptions::new(StateKey::random()).timeout(net.timeout), |_| {})
                .await
                .unwrap_or_else(|e| panic!("{kind}: served after {what}: {e}"));
        assert!(std::fs::read(path).expect("read") == data, "{kind}: {what}");
    }

    std::fs::rename(&report, shared.path().join("renamed.txt")).expect("rename");
    let out = temp();
    let result =
        download(id, &sources, out.path(), &DownloadOptions::new(StateKey::random()).timeout(net.timeout), |_| {})
            .await;
    assert!(result.is_err(), "{kind}: a renamed file is a new file (its name is in its id)");
    let path = get(&net, "renamed.txt", out.path(), |_| {}).await.expect("the renamed file is listed and served");
    assert!(std::fs::read(path).expect("read") == data);
    server.stop().await;
}

/// Sixteen downloads at once from one host, of a seed whose upload is capped: together they ask for more
/// connections than the seed gives one address, and every request waits behind the others. The seed is
/// busy, not dead: each download must complete.
async fn many_downloads_from_one_busy_seed_all_complete(kind: &'static str) {
    const DOWNLOADS: usize = 16;
    let net = net(kind, free_udp_port());
    let shared = temp();
    let data = bytes(4 * CHUNK, 6);
    std::fs::write(shared.path().join("popular.bin"), &data).expect("write");
    let seed = serve_capped(&net, shared.path(), "seed", Some(8 << 20)).await;
    let (id, _, sources) = net.survey().expect("survey").find("popular.bin").await.expect("listed");
    let mut downloads = tokio::task::JoinSet::new();
    let outs: Vec<_> = (0..DOWNLOADS).map(|_| temp()).collect();
    let drops = Arc::new(std::sync::Mutex::new(Vec::new()));
    for (i, out) in outs.iter().enumerate() {
        // Sixteen downloaders, each with connections of its own (a client's are pooled for all its files).
        let sources: Vec<_> = sources.iter().map(|s| Source { transport: net.client(), ..s.clone() }).collect();
        let out = out.path().to_path_buf();
        let (timeout, drops) = (net.timeout, drops.clone());
        let on_event = move |e: &DownloadEvent| {
            if let DownloadEvent::SourceDropped { why, .. } = e {
                drops.lock().expect("drops").push(why.to_string());
            }
        };
        let options = DownloadOptions::new(StateKey::random()).timeout(timeout);
        downloads.spawn(async move { (i, download(id, &sources, &out, &options, on_event).await) });
    }
    while let Some(joined) = downloads.join_next().await {
        let (i, done) = joined.expect("download task");
        let path = done.unwrap_or_else(|e| panic!("{kind}: download {i} of {DOWNLOADS}: {e}"));
        assert!(std::fs::read(path).expect("read") == data, "{kind}: download {i}");
    }
    // A seed at its limits answers busy: no drop, no fault.
    assert_eq!(*drops.lock().expect("drops"), Vec::<String>::new(), "{kind}: the busy seed was never dropped");
    seed.stop().await;
}
