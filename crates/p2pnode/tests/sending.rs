//! `send` as people use it, on loopback, each node with a state folder of its own: to a peer that trusts
//! the sender, files, a folder and a text land in its downloads folder with every byte as sent; a peer
//! that does not trust the sender, with no terminal to ask, refuses, as does one that takes no offers,
//! and nothing lands; plain tcp is refused before anything is offered.

mod common;

use std::path::Path;
use std::process::Output;

use common::{Server, free_udp_port, json_lines, p2pnode, run};
use serde_json::Value;

fn node_id(port: u16, state: &Path) -> String {
    let out = run(p2pnode(port).args(["--state-dir", state.to_str().expect("utf-8"), "--json", "id"]));
    json_lines(&out)[0]["id"].as_str().expect("an id").to_string()
}

/// Bob's serve, trusting the ids of `trusts` by name, with `serve_args`.
fn bob(port: u16, dir: &Path, trusts: &[(&str, &str)], serve_args: &[&str]) -> Server {
    std::fs::create_dir_all(dir.join(".p2pnode")).expect("state folder");
    let list: String = trusts.iter().map(|(id, name)| format!("{id} {name}\n")).collect();
    std::fs::write(dir.join(".p2pnode").join(node::TRUST_LIST_FILE), list).expect("trust list");
    Server::start(port, dir, "bob", &[], serve_args)
}

/// `p2pnode send` as alice (state in `state`) over `transport`, with `args` after `send`.
fn send(port: u16, state: &Path, transport: &str, args: &[&str]) -> Output {
    let state = state.to_str().expect("utf-8");
    run(p2pnode(port)
        .args(["--state-dir", state, "--name", "alice", "--transport", transport, "--timeout", "3"])
        .arg("send")
        .args(args))
}

fn said(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn sent_to_a_trusted_peer_lands_whole(transport: &str) {
    let port = free_udp_port();
    let (alice, bob_dir, files) =
        (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let alice_id = node_id(port, alice.path());
    let bob = bob(port, bob_dir.path(), &[(&alice_id, "alice")], &[]);
    let big: Vec<u8> = (0..2_700_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(files.path().join("big.bin"), &big).expect("write");
    std::fs::create_dir_all(files.path().join("album/deep")).expect("folders");
    std::fs::write(files.path().join("album/one.txt"), b"one").expect("write");
    std::fs::write(files.path().join("album/deep/two.txt"), b"two").expect("write");
    // Hidden inside the folder: left out, as a shared folder never lists it.
    std::fs::write(files.path().join("album/.thumbnails"), b"private").expect("write");
    let (big_path, album) = (files.path().join("big.bin"), files.path().join("album"));
    let text = "hello bob\nthe photos \u{1b}[31m";
    let args =
        [big_path.to_str().expect("utf-8"), album.to_str().expect("utf-8"), "--to", "bob", "--text", text, "--json"];
    let out = send(port, alice.path(), transport, &args);
    assert!(out.status.success(), "{transport}: the send fails: {}", said(&out));
    let events = json_lines(&out);
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(names, ["offered", "sent"], "{transport}");
    assert_eq!((events[0]["files"].as_u64(), events[0]["bytes"].as_u64()), (Some(3), Some(big.len() as u64 + 6)));

    // Landed as `get` lands files: in the downloads folder, the folder whole under its name.
    let downloads = bob_dir.path().join("P2PDownloadFolder");
    assert!(std::fs::read(downloads.join("big.bin")).expect("big.bin landed") == big, "{transport}: bytes differ");
    assert_eq!(std::fs::read(downloads.join("album/deep/two.txt")).expect("two.txt"), b"two");
    assert_eq!(std::fs::read(downloads.join("album/one.txt")).expect("one.txt"), b"one");
    assert!(!downloads.join("album/thumbnails").exists() && !downloads.join("album/.thumbnails").exists());
    let offer = bob.wait_for_event(|e| e["event"] == "offer");
    assert_eq!((offer["accepted"].as_bool(), offer["paired"].as_str()), (Some(true), Some("alice")), "{offer}");
    assert_eq!(bob.wait_for_event(|e| e["event"] == "text")["text"], Value::from(text), "the text arrives whole");
    let received = bob.wait_for_event(|e| e["event"] == "received");
    assert_eq!(received["files"].as_array().map(Vec::len), Some(3), "{received}");
    assert!(received["error"].is_null(), "{received}");

    // Sent again: bob has it, so nothing is fetched twice and no second copy lands.
    let again = send(port, alice.path(), transport, &[big_path.to_str().expect("utf-8"), "--to", "bob"]);
    assert!(again.status.success(), "{transport}: the second send fails: {}", said(&again));
    let landed: Vec<_> =
        std::fs::read_dir(&downloads).expect("downloads").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(landed.len(), 2, "{transport}: big.bin and album/ alone: {landed:?}");
}

#[test]
fn sent_to_a_trusted_peer_lands_whole_over_tls() {
    sent_to_a_trusted_peer_lands_whole("tls");
}

#[test]
fn sent_to_a_trusted_peer_lands_whole_over_quic() {
    sent_to_a_trusted_peer_lands_whole("quic");
}

#[test]
fn a_peer_that_does_not_trust_the_sender_and_has_no_terminal_refuses() {
    let port = free_udp_port();
    let (alice, bob_dir, files) =
        (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    // The default (ask), but nobody to ask: the serve's stdin is no terminal.
    let bob = bob(port, bob_dir.path(), &[], &[]);
    std::fs::write(files.path().join("note.txt"), b"unasked for").expect("write");
    let note = files.path().join("note.txt");
    let out = send(port, alice.path(), "tls", &[note.to_str().expect("utf-8"), "--to", "bob"]);
    assert!(!out.status.success());
    let err = said(&out);
    assert!(err.contains("bob accepts offers only from the peers it trusts (run p2pnode pair"), "{err}");
    let offer = bob.wait_for_event(|e| e["event"] == "offer");
    assert_eq!(offer["accepted"].as_bool(), Some(false), "{offer}");
    assert!(!bob_dir.path().join("P2PDownloadFolder/note.txt").exists(), "nothing lands");
}

#[test]
fn a_peer_that_takes_no_offers_declines_even_a_trusted_one() {
    let port = free_udp_port();
    let (alice, bob_dir) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let alice_id = node_id(port, alice.path());
    let _bob = bob(port, bob_dir.path(), &[(&alice_id, "alice")], &["--accept", "none"]);
    let out = send(port, alice.path(), "quic", &["--text", "hello?", "--to", "bob"]);
    assert!(!out.status.success());
    assert!(said(&out).contains("bob declined: it takes no offers"), "{}", said(&out));
}

#[test]
fn plain_tcp_is_refused_before_anything_is_offered() {
    let port = free_udp_port();
    let (alice, bob_dir) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let alice_id = node_id(port, alice.path());
    let bob = bob(port, bob_dir.path(), &[(&alice_id, "alice")], &[]);
    let out = send(port, alice.path(), "tcp", &["--text", "hello?", "--to", "bob"]);
    assert!(!out.status.success());
    assert!(
        said(&out).contains("tcp proves nobody's id: sending needs tls or quic (pass --transport tls or quic)"),
        "{}",
        said(&out)
    );
    assert!(bob.events().iter().all(|e| e["event"] != "offer"), "bob was offered nothing");
}

#[test]
fn a_recipient_nobody_is_named_is_a_clear_error() {
    let port = free_udp_port();
    let (alice, bob_dir) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let _bob = bob(port, bob_dir.path(), &[], &[]);
    let out = send(port, alice.path(), "tls", &["--text", "hello?", "--to", "carol"]);
    assert!(!out.status.success());
    assert!(said(&out).contains("no peer is named carol"), "{}", said(&out));
}
