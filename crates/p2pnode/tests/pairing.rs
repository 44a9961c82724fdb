//! Pairing as two people do it, each with a home of their own, on loopback: the right code files each
//! node's id in the other's trust list under the name it gave, and `--trust NAME` then works; a wrong
//! code stores nothing on either side, and the waiting side makes a new code.

mod common;

use std::path::Path;
use std::time::Instant;

use common::{as_user, free_udp_port, json_lines, next_event, run, serving, spawned};

fn node_id(port: u16, home: &Path) -> String {
    let out = run(as_user(port, home, home).args(["--json", "id"]));
    json_lines(&out)[0]["id"].as_str().expect("an id").to_string()
}

fn trust_list(home: &Path) -> String {
    std::fs::read_to_string(home.join("state/p2pnode").join(node::TRUST_LIST_FILE)).unwrap_or_default()
}

#[test]
fn the_right_code_pairs_both_ways_and_trust_by_name_works_over_tls() {
    the_right_code_pairs_both_ways_and_trust_by_name_works("tls");
}

#[test]
fn the_right_code_pairs_both_ways_and_trust_by_name_works_over_quic() {
    the_right_code_pairs_both_ways_and_trust_by_name_works("quic");
}

fn the_right_code_pairs_both_ways_and_trust_by_name_works(transport: &str) {
    let port = free_udp_port();
    let (alice_home, bob_home) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let (alice_home, bob_home) = (alice_home.path(), bob_home.path());
    let (alice_id, bob_id) = (node_id(port, alice_home), node_id(port, bob_home));

    let (mut alice, mut said) = spawned(as_user(port, alice_home, alice_home).args([
        "--name",
        "alice",
        "--transport",
        transport,
        "--json",
        "pair",
    ]));
    let code = next_event(&mut said)["code"].as_str().expect("a code").to_string();
    let started = Instant::now();
    let (mut bob, mut bob_said) = spawned(as_user(port, bob_home, bob_home).args([
        "--name",
        "bob",
        "--transport",
        transport,
        "--json",
        "pair",
        &code,
    ]));
    // Both have filed the other once both say so (their processes may end a moment later).
    let to_bob = next_event(&mut bob_said);
    let to_alice = next_event(&mut said);
    eprintln!("{transport}: pair {code}: both sides trusted within {:?}", started.elapsed());
    assert!(bob.wait().expect("ends").success() && alice.wait().expect("ends").success());
    assert_eq!((to_bob["name"].as_str(), to_bob["id"].as_str()), (Some("alice"), Some(alice_id.as_str())));
    assert_eq!((to_alice["name"].as_str(), to_alice["id"].as_str()), (Some("bob"), Some(bob_id.as_str())));
    assert_eq!(trust_list(alice_home), format!("{bob_id} bob\n"));
    assert_eq!(trust_list(bob_home), format!("{alice_id} alice\n"));

    // Now each trusts the other by name: alice serves bob alone, and bob fetches from alice.
    let shared = tempfile::tempdir().expect("dir");
    std::fs::write(shared.path().join("notes.txt"), b"for bob").expect("write");
    let (mut serve, _, _said) = serving(as_user(port, alice_home, alice_home).args([
        "--dir",
        shared.path().to_str().expect("utf-8"),
        "--trust",
        "bob",
        "--port",
        "0",
        "--json",
        "serve",
    ]));
    // Someone else calls itself alice: bob sees the paired alice by the name he filed her under (and the
    // one she announces), and is warned of the other.
    let (impostor_home, impostor_dir) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let (mut impostor, _, _said) = serving(as_user(port, impostor_home.path(), impostor_home.path()).args([
        "--dir",
        impostor_dir.path().to_str().expect("utf-8"),
        "--name",
        "alice",
        "--port",
        "0",
        "--json",
        "serve",
    ]));
    let peers = run(as_user(port, bob_home, bob_home).args(["--timeout", "3", "peers"]));
    let (table, warned) = (String::from_utf8_lossy(&peers.stdout), String::from_utf8_lossy(&peers.stderr));
    let names: Vec<&str> = table.lines().skip(1).filter_map(|l| l.split("  ").next()).collect();
    assert!(names.iter().any(|n| n.starts_with("alice (")), "the paired alice, with the name she announces: {table}");
    assert!(warned.contains("warning: alice announces a new id "), "{warned}");
    assert!(warned.contains("pair again if alice reinstalled"), "{warned}");
    impostor.kill().expect("kill");
    impostor.wait().expect("ends");
    let into = tempfile::tempdir().expect("dir");
    let got =
        run(as_user(port, bob_home, bob_home).args(["--trust", "alice", "get", "notes.txt", "-o"]).arg(into.path()));
    assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
    assert_eq!(std::fs::read(into.path().join("notes.txt")).expect("fetched"), b"for bob");
    serve.kill().expect("kill");
    serve.wait().expect("ends");
}

#[test]
fn a_wrong_code_stores_nothing_and_the_waiting_side_makes_a_new_one_over_tls() {
    a_wrong_code_stores_nothing_and_the_waiting_side_makes_a_new_one("tls");
}

#[test]
fn a_wrong_code_stores_nothing_and_the_waiting_side_makes_a_new_one_over_quic() {
    a_wrong_code_stores_nothing_and_the_waiting_side_makes_a_new_one("quic");
}

fn a_wrong_code_stores_nothing_and_the_waiting_side_makes_a_new_one(transport: &str) {
    let port = free_udp_port();
    let (alice_home, mallory_home) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let (mut alice, mut said) =
        spawned(as_user(port, alice_home.path(), alice_home.path()).args(["--transport", transport, "--json", "pair"]));
    let code = next_event(&mut said)["code"].as_str().expect("a code").to_string();
    // The number is seen on the LAN (it is in the beacon); the words are guessed.
    let (nameplate, words) = code.split_once('-').expect("a number first");
    let guess = if words == "apple-apple" { "acorn-acorn" } else { "apple-apple" };
    let mut mallory = as_user(port, mallory_home.path(), mallory_home.path());
    let wrong = run(mallory.args(["--transport", transport, "pair", &format!("{nameplate}-{guess}")]));
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(wrong.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end(), "error: the code was wrong: nothing was stored on either side");
    let again = next_event(&mut said);
    assert_eq!(again["event"], "pair_code", "a new code after a wrong attempt");
    assert_ne!(again["code"].as_str(), Some(code.as_str()), "the guessed code is dead");
    alice.kill().expect("kill");
    alice.wait().expect("ends");
    assert_eq!((trust_list(alice_home.path()), trust_list(mallory_home.path())), (String::new(), String::new()));
}

/// In a private group, a waiting `pair` seals its beacon as the group seals discovery: an outsider
/// hearing the discovery port reads no id, port or code number, and a member pairs as anywhere.
#[test]
fn in_a_private_group_the_beacon_is_sealed_and_members_pair() {
    let port = free_udp_port();
    let (alice_home, bob_home) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let alice_id = node_id(port, alice_home.path());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let outsider = runtime.block_on(async { discovery::udp::socket(port) }).expect("the discovery port");
    let group = ["--group", "pairing in a group"];
    let (mut alice, mut said) = spawned(
        as_user(port, alice_home.path(), alice_home.path()).args(group).args(["--name", "alice", "--json", "pair"]),
    );
    let code = next_event(&mut said)["code"].as_str().expect("a code").to_string();
    let heard = runtime.block_on(async {
        let mut heard = Vec::new();
        let mut buf = [0u8; 2048];
        let until = tokio::time::Instant::now() + std::time::Duration::from_millis(1500);
        while let Ok(Ok((len, _))) = tokio::time::timeout_at(until, outsider.recv_from(&mut buf)).await {
            heard.push(buf[..len].to_vec());
        }
        heard
    });
    assert!(!heard.is_empty(), "alice beacons");
    let id_bytes: Vec<u8> =
        (0..64).step_by(2).map(|i| u8::from_str_radix(&alice_id[i..i + 2], 16).expect("hex")).collect();
    for datagram in &heard {
        assert!(!datagram.starts_with(b"P2PP"), "a plain beacon in a private group");
        assert!(!datagram.windows(32).any(|w| w == id_bytes), "alice's id readable by an outsider");
    }
    let bob = run(as_user(port, bob_home.path(), bob_home.path()).args(group).args(["--name", "bob", "pair", &code]));
    assert!(bob.status.success(), "{}", String::from_utf8_lossy(&bob.stderr));
    assert!(alice.wait().expect("ends").success());
    assert!(trust_list(bob_home.path()).ends_with(" alice\n"));
}

/// A peer that serves only the ids it trusts is asked again as the user (whose node it may trust): Bob
/// fetches from Alice's `--trust bob serve` without a trust list of his own; Carol, whom Alice does not
/// trust, is told so and gets nothing.
#[test]
fn a_peer_that_serves_only_trusted_ids_is_asked_as_the_user() {
    let port = free_udp_port();
    let homes = [(); 3].map(|()| tempfile::tempdir().expect("dir"));
    let [alice_home, bob_home, carol_home] = homes.each_ref().map(|d| d.path());
    let (bob_id, _carol_id) = (node_id(port, bob_home), node_id(port, carol_home));
    std::fs::create_dir_all(alice_home.join("state/p2pnode")).expect("state");
    std::fs::write(alice_home.join("state/p2pnode").join(node::TRUST_LIST_FILE), format!("{bob_id} bob\n"))
        .expect("alice's trust list");
    let shared = tempfile::tempdir().expect("dir");
    std::fs::write(shared.path().join("notes.txt"), b"for bob").expect("write");
    let dir = shared.path().to_str().expect("utf-8");
    let (mut serve, _, _said) = serving(
        as_user(port, alice_home, alice_home).args(["--dir", dir, "--trust", "bob", "--port", "0", "--json", "serve"]),
    );
    let got = run(as_user(port, bob_home, bob_home).args(["--timeout", "3", "get", "notes.txt"]));
    assert!(got.status.success(), "bob, trusted, fetches: {}", String::from_utf8_lossy(&got.stderr));
    assert_eq!(std::fs::read(bob_home.join("Downloads/p2pnode/notes.txt")).expect("fetched"), b"for bob");
    let listed = run(as_user(port, carol_home, carol_home).args(["--timeout", "3", "ls"]));
    let (table, said) = (String::from_utf8_lossy(&listed.stdout), String::from_utf8_lossy(&listed.stderr));
    assert!(!table.contains("notes.txt"), "carol lists nothing of alice's: {table}");
    assert!(said.contains("shares only with the peers it trusts, and this node is not one of them"), "{said}");
    serve.kill().expect("kill");
    serve.wait().expect("ends");
}
