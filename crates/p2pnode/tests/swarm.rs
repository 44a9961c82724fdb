//! `get` passes on what it fetches, run as a user runs it (real processes on loopback): a download that
//! seeds after it is done serves a later one with the source gone, on both transports.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::{Server, free_udp_port, get_streaming, p2pnode, shared_copies};
use serde_json::Value;

#[test]
fn tls() {
    a_seeding_get_passes_the_file_on_once_the_source_is_gone("tls")
}

#[test]
fn quic() {
    a_seeding_get_passes_the_file_on_once_the_source_is_gone("quic")
}

/// The first `get` says it is done at completion and keeps serving (`--seed-for`); the source is
/// killed; a second `get` fetches every chunk from the first.
fn a_seeding_get_passes_the_file_on_once_the_source_is_gone(transport: &str) {
    let port = free_udp_port();
    let (shared, data) = shared_copies(1, "film.bin", 40 * 256 * 1024 + 3);
    let source = Server::start(port, shared[0].path(), "source", &[], &[]);
    let (first, second) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let mut seeder = p2pnode(port)
        .args(["--name", "seeder", "--port", "0", "--transport", transport, "--json", "get", "film.bin"])
        .args(["--seed-for", "60", "-o", first.path().to_str().expect("utf-8")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("get starts");
    let mut lines = BufReader::new(seeder.stdout.take().expect("stdout")).lines();
    let done = lines.find_map(|l| {
        let event: Value = serde_json::from_str(&l.expect("a line")).expect("json");
        (event["event"] == "done").then_some(event)
    });
    assert!(done.is_some(), "the first get ended without a done event");
    assert!(seeder.try_wait().expect("status").is_none(), "done is told at completion, and the get seeds on");
    let source_id = source.id.clone();
    drop(source);

    let fetched = get_streaming(
        p2pnode(port)
            .args(["--transport", transport, "--json", "get", "film.bin", "--no-upload"])
            .args(["-o", second.path().to_str().expect("utf-8")]),
        |_| {},
    );
    let _ = seeder.kill();
    let _ = seeder.wait();
    assert!(fetched.status.success(), "{}", fetched.stderr);
    assert!(std::fs::read(second.path().join("film.bin")).expect("read") == data);
    let chunks: Vec<&Value> = fetched.events.iter().filter(|e| e["event"] == "chunk").collect();
    assert_eq!(chunks.len(), 41);
    assert!(chunks.iter().all(|c| c["peer"] != source_id.as_str()), "a chunk came from the killed source");
}

/// A `serve` shares a download into its downloads folder while it runs, each chunk as soon as it is
/// verified (not at its next rescan): the download is stopped half-way and its source killed, and a
/// second download takes every verified chunk from the serve.
#[test]
fn a_serve_shares_each_chunk_of_a_download_in_its_folder_at_once() {
    let port = free_udp_port();
    let (shared, _) = shared_copies(1, "film.bin", 40 * 256 * 1024);
    let source = Server::start(port, shared[0].path(), "source", &[], &["--max-upload-rate", "2M"]);
    let node = tempfile::tempdir().expect("dir");
    let sharer = Server::start(port, node.path(), "sharer", &[], &[]);
    let mut verified = 0;
    let mut first = p2pnode(port)
        .args(["--dir", node.path().to_str().expect("utf-8"), "--json", "get", "film.bin", "--no-upload"])
        .args(["--downloads", node.path().join("P2PDownloadFolder").to_str().expect("utf-8")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("get starts");
    for line in BufReader::new(first.stdout.take().expect("stdout")).lines() {
        let event: Value = serde_json::from_str(&line.expect("a line")).expect("json");
        verified += usize::from(event["event"] == "chunk");
        if verified == 20 {
            break;
        }
    }
    let _ = first.kill();
    let _ = first.wait();
    drop(source);

    let into = tempfile::tempdir().expect("dir");
    let fetched = get_streaming(
        p2pnode(port)
            .args(["--json", "--timeout", "3", "get", "film.bin", "--keep-incomplete", "--no-upload"])
            .args(["-o", into.path().to_str().expect("utf-8")]),
        |_| {},
    );
    assert!(!fetched.status.success(), "the sharer has only part of the file");
    let from_sharer = fetched.events.iter().filter(|e| e["event"] == "chunk" && e["peer"] == sharer.id.as_str());
    assert!(from_sharer.count() >= 20, "{:?}", fetched.events);
}
