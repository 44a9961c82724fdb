//! Multi-peer LANs in containers, each scenario once per transport.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use harness::{Lan, bytes, docker};

const CHUNK: usize = 256 * 1024;
/// Sources cap their upload so that a download lasts long enough to be interrupted mid-way.
const CAPPED: [&str; 2] = ["--max-upload-rate", "8M"];

/// Runs each scenario on one transport, in a module named after it.
macro_rules! on_transport {
    ($t:ident: $($scenario:ident),*) => {
        mod $t {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $scenario() -> anyhow::Result<()> {
                super::$scenario(stringify!($t)).await
            })*
        }
    };
}

/// Runs each scenario once per transport.
macro_rules! on_every_transport {
    ($($scenario:ident),* $(,)?) => {
        on_transport!(tls: $($scenario),*);
        on_transport!(tcp: $($scenario),*);
        on_transport!(quic: $($scenario),*);
    };
}

on_every_transport!(discovery, chunk_fallback, corrupted_file, timeouts, reshare, static_peers);

/// A crowd that trades chunks: on the transports a seed tells downloaders apart by (tls and quic prove
/// ids; plain tcp downloaders behind one address look alike), and on every one it completes.
mod swarms {
    use super::swarm;
    on_transport!(tls: swarm);
    on_transport!(quic: swarm);
}

/// Private groups need a transport that authenticates: tls and quic.
mod groups {
    use super::private_groups;
    on_transport!(tls: private_groups);
    on_transport!(quic: private_groups);
}

/// Pairing and sending need a transport that proves ids: tls and quic.
mod sending {
    use super::pair_and_send;
    on_transport!(tls: pair_and_send);
    on_transport!(quic: pair_and_send);
}

/// Every peer lists every other peer and its files within 2 s of the last start.
async fn discovery(t: &str) -> anyhow::Result<()> {
    let lan = Lan::new("discovery", t)?;
    let mut peers = Vec::new();
    for i in 0..4 {
        let file = format!("file{i}.txt");
        peers.push(lan.peer(0, &format!("peer{i}"), &[(&file, &bytes(1000 + i, i as u64))], &[], &[]).await?);
    }
    let started = Instant::now();
    let names: BTreeSet<String> = (0..4).map(|i| format!("peer{i}")).collect();
    let files: BTreeSet<String> = (0..4).map(|i| format!("file{i}.txt")).collect();
    for p in &peers {
        loop {
            let seen = p.p2pnode(&["--transport", t, "peers"], async |_| {}).await?.names();
            let shared = p.p2pnode(&["--transport", t, "ls"], async |_| {}).await?.names();
            if seen == names && shared == files {
                break;
            }
            ensure!(started.elapsed() < Duration::from_secs(2), "{}: sees {seen:?} sharing {shared:?}", p.name);
        }
    }
    // No broadcast beyond the container: peer1 is reached only by its host name, which the static binary
    // in its FROM scratch image resolves through Docker's DNS.
    let by_name = ["--broadcast", "127.255.255.255", "--peer", &lan.host_name("peer1"), "--transport", t, "peers"];
    let run = peers[0].p2pnode(&by_name, async |_| {}).await?;
    let seen = run.names();
    ensure!(seen.contains("peer1") && !seen.contains("peer2"), "--peer by name: sees {seen:?}: {}", run.stderr);
    Ok(())
}

/// Broadcast dropped inside every container (iptables in each one's network namespace): a fresh `peers`
/// finds every peer by mDNS alone within a generous bound, and `get` fetches from them. Prints how long
/// into its survey each `peers` heard the last peer (from its own `-vv` log), and the command's wall time
/// (docker exec, and the survey's quiet period after the last answer, included).
#[tokio::test(flavor = "multi_thread")]
async fn mdns_without_broadcast() -> anyhow::Result<()> {
    let lan = Lan::new("mdns", "tls")?;
    let files: Vec<(String, Vec<u8>)> = (0..3).map(|i| (format!("file{i}.txt"), bytes(1000 + i, i as u64))).collect();
    let mut peers = Vec::new();
    for (i, (file, data)) in files.iter().enumerate() {
        peers.push(lan.peer(0, &format!("peer{i}"), &[(file, data)], &[], &[]).await?);
    }
    for p in &peers {
        for chain in ["INPUT", "OUTPUT"] {
            let rule = ["iptables", "-A", chain, "-m", "addrtype", "--dst-type", "BROADCAST", "-j", "DROP"];
            in_netns(&p.host_pid()?, &rule)?;
        }
    }
    let by_broadcast = peers[0].p2pnode(&["--discovery", "broadcast", "--timeout", "2", "peers"], async |_| {}).await?;
    ensure!(by_broadcast.names().is_empty(), "broadcast is not dropped: {:?}", by_broadcast.names());

    let everyone: BTreeSet<String> = (0..3).map(|i| format!("peer{i}")).collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    for p in &peers {
        loop {
            let started = Instant::now();
            let run = p.p2pnode(&["-vv", "peers"], async |_| {}).await?;
            if run.names() == everyone {
                let (heard, took) = (last_answer_ms(&run.stderr)?, started.elapsed().as_millis());
                eprintln!("mdns: {}: every peer heard {heard} ms into the survey; `peers` took {took} ms", p.name);
                break;
            }
            ensure!(Instant::now() < deadline, "{}: mDNS finds only {:?}: {}", p.name, run.names(), run.stderr);
        }
    }
    let run = peers[1].get("tls", "file0.txt", &[], async |_| {}).await?;
    ensure!(run.code == Some(0), "get over peers found by mDNS failed: {}", run.stderr);
    ensure!(peers[1].downloaded("file0.txt").await.as_deref() == Some(&files[0].1[..]), "bytes differ");
    Ok(())
}

/// The latest `after_ms` of the "peer answered" lines of a `-vv` log.
fn last_answer_ms(log: &str) -> anyhow::Result<u64> {
    let answers = log.lines().filter(|l| l.contains("peer answered"));
    let after = answers.filter_map(|l| l.split("after_ms=").nth(1)?.split_whitespace().next()?.parse().ok());
    after.max().context("no 'peer answered' line in the log")
}

/// The file on 3 peers, one killed mid-download: the download completes from the others.
async fn chunk_fallback(t: &str) -> anyhow::Result<()> {
    let lan = Lan::new("fallback", t)?;
    let data = bytes(96 * CHUNK, 1);
    let mut sources = Vec::new();
    for i in 0..3 {
        sources.push(lan.peer(0, &format!("src{i}"), &[("movie.bin", &data)], &[], &CAPPED).await?);
    }
    let downloader = lan.peer(0, "downloader", &[], &[], &[]).await?;
    let mut killed = false;
    let run = downloader
        .get(t, "movie.bin", &[], async |e| {
            if e["event"] == "chunk" && !killed {
                killed = true;
                sources[0].kill().await.expect("docker kill");
            }
        })
        .await?;
    ensure!(run.code == Some(0), "get failed: {}", run.stderr);
    ensure!(killed, "the download ended before a source could be killed");
    ensure!(downloader.downloaded("movie.bin").await.as_deref() == Some(&data[..]), "bytes differ");
    Ok(())
}

/// One peer's copy has flipped bytes: the download completes from good peers, the corruption reported.
/// Every copy of chunk 3 flipped: the download fails naming chunk 3, and leaves no final file.
async fn corrupted_file(t: &str) -> anyhow::Result<()> {
    let lan = Lan::new("corrupt", t)?;
    let (photo, doc) = (bytes(64 * CHUNK, 2), bytes(16 * CHUNK, 3));
    // A long interval: the damaged peers do not rescan, and keep serving the copies they hashed.
    let slow = ["--announce-interval", "60"];
    let mut sources = Vec::new();
    for i in 0..3 {
        let files: &[(&str, &[u8])] =
            if i < 2 { &[("photo.raw", &photo), ("doc.pdf", &doc)] } else { &[("photo.raw", &photo)] };
        sources.push(lan.peer(0, &format!("src{i}"), files, &slow, &CAPPED).await?);
    }
    let flip = |data: &[u8], chunks: &[usize]| {
        let mut bad = data.to_vec();
        chunks.iter().for_each(|c| bad[c * CHUNK + 99] ^= 0xff);
        bad
    };
    sources[2].replace_file("photo.raw", &flip(&photo, &(0..64).collect::<Vec<_>>()))?;
    for s in &sources[..2] {
        s.replace_file("doc.pdf", &flip(&doc, &[3]))?;
    }
    let downloader = lan.peer(0, "downloader", &[], &[], &[]).await?;

    let run = downloader.get(t, "photo.raw", &[], async |_| {}).await?;
    ensure!(run.code == Some(0), "get failed: {}", run.stderr);
    ensure!(run.events.iter().any(|e| e["event"] == "chunk_failed" && e["corrupt"] == true), "corruption reported");
    ensure!(downloader.downloaded("photo.raw").await.as_deref() == Some(&photo[..]), "bytes differ");

    let run = downloader.get(t, "doc.pdf", &["--keep-incomplete"], async |_| {}).await?;
    ensure!(run.code == Some(1), "expected failure, got {:?}: {}", run.code, run.stderr);
    ensure!(run.stderr.contains("(chunks 3)"), "the error names chunk 3: {}", run.stderr);
    ensure!(downloader.downloaded("doc.pdf").await.is_none(), "no final file");
    ensure!(downloader.downloaded("doc.pdf.part").await.is_some(), "the verified part is kept");
    Ok(())
}

/// A source paused mid-download: the download moves on to the others. The only source paused: `get`
/// fails with its timeout error within its bound.
async fn timeouts(t: &str) -> anyhow::Result<()> {
    let lan = Lan::new("timeouts", t)?;
    let (movie, solo) = (bytes(96 * CHUNK, 4), bytes(64 * CHUNK, 5));
    let mut sources = Vec::new();
    for i in 0..3 {
        sources.push(lan.peer(0, &format!("src{i}"), &[("movie.bin", &movie)], &[], &CAPPED).await?);
    }
    let lonely = lan.peer(0, "lonely", &[("solo.bin", &solo)], &[], &CAPPED).await?;
    let downloader = lan.peer(0, "downloader", &[], &[], &[]).await?;

    let mut paused = false;
    let run = downloader
        .get(t, "movie.bin", &["--timeout", "20"], async |e| {
            if e["event"] == "chunk" && !paused {
                paused = true;
                sources[0].pause().await.expect("docker pause");
            }
        })
        .await?;
    sources[0].unpause().await?;
    ensure!(run.code == Some(0), "get failed: {}", run.stderr);
    ensure!(downloader.downloaded("movie.bin").await.as_deref() == Some(&movie[..]), "bytes differ");

    let started = Instant::now();
    let mut paused = false;
    let bound = Duration::from_secs(30);
    let run = tokio::time::timeout(
        bound,
        downloader.get(t, "solo.bin", &["--timeout", "3", "--keep-incomplete"], async |e| {
            if e["event"] == "chunk" && !paused {
                paused = true;
                lonely.pause().await.expect("docker pause");
            }
        }),
    )
    .await
    .context("get hung with its only source paused")??;
    lonely.unpause().await?;
    ensure!(run.code == Some(1), "expected a timeout failure, got {:?}: {}", run.code, run.stderr);
    ensure!(run.stderr.contains("every host of solo.bin is gone"), "{}", run.stderr);
    eprintln!("{t}: only source paused: get gave up after {:?}", started.elapsed());
    Ok(())
}

/// A seed and five downloaders started together: the seed is killed once every chunk has left it at
/// least once, and all five complete from each other, with the seed's bytes.
async fn swarm(t: &str) -> anyhow::Result<()> {
    const CHUNKS: usize = 96;
    let lan = Lan::new("swarm", t)?;
    let data = bytes(CHUNKS * CHUNK, 13);
    let fast = ["--announce-interval", "1"];
    let seed = lan.peer(0, "seed", &[("crowd.bin", &data)], &fast, &CAPPED).await?;
    let mut crowd = Vec::new();
    for i in 0..5 {
        crowd.push(lan.peer(0, &format!("d{i}"), &[], &fast, &[]).await?);
    }
    let peers = crowd[0].p2pnode(&["peers"], async |_| {}).await?;
    let seed_id = peers.events.iter().find(|e| e["name"] == "seed").and_then(|e| e["id"].as_str());
    let seed_id = seed_id.context("the seed is listed")?.to_string();
    // The chunks that left the seed, and those the crowd passed on once every chunk had left it (from
    // then on the seed is being killed).
    let (left, after) = (std::sync::Mutex::new(BTreeSet::new()), std::sync::atomic::AtomicUsize::new(0));
    let all_left = tokio::sync::Notify::new();
    let gets = crowd.iter().map(|d| {
        d.get(t, "crowd.bin", &["--timeout", "10"], async |e| {
            if e["event"] != "chunk" {
                return;
            }
            let mut left = left.lock().expect("lock");
            if e["peer"] == seed_id.as_str() {
                left.insert(e["index"].as_u64());
                if left.len() == CHUNKS {
                    all_left.notify_one();
                }
            } else if left.len() == CHUNKS {
                after.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        })
    });
    let kill = async {
        all_left.notified().await;
        seed.kill().await
    };
    let (runs, kill) = tokio::join!(futures_util::future::join_all(gets), kill);
    kill?;
    for (run, d) in runs.into_iter().zip(&crowd) {
        let run = run?;
        ensure!(run.code == Some(0), "{}: get failed: {}", d.name, run.stderr);
        ensure!(d.downloaded("crowd.bin").await.as_deref() == Some(&data[..]), "{}: bytes differ", d.name);
    }
    let after = after.into_inner();
    ensure!(after > 0, "the crowd had every chunk once every chunk had left the seed");
    eprintln!("{t}: {after} chunks passed between downloaders once every chunk had left the seed");
    Ok(())
}

/// Two groups and an outsider on one LAN: each group lists and fetches its own files alone, the outsider
/// sees no member, a wrong secret fails clearly, and a member restarted without the secret is gone for the
/// others.
async fn private_groups(t: &str) -> anyhow::Result<()> {
    let lan = Lan::new("groups", t)?;
    let (red, blue) = (["--group", "red secret"], ["--group", "blue secret"]);
    let notes = bytes(3 * CHUNK, 11);
    let red1 = lan.peer(0, "red1", &[("red1.txt", &notes)], &red, &[]).await?;
    let red2 = lan.peer(0, "red2", &[("red2.txt", b"red two")], &red, &[]).await?;
    let blue1 = lan.peer(0, "blue1", &[("blue1.txt", b"blue one")], &blue, &[]).await?;
    let _blue2 = lan.peer(0, "blue2", &[("blue2.txt", b"blue two")], &blue, &[]).await?;
    let outsider = lan.peer(0, "outsider", &[("outside.txt", b"outside")], &[], &[]).await?;
    let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<BTreeSet<String>>();
    let sees = async |peer: &harness::Peer, group: &[&str], what: &str| -> anyhow::Result<harness::Run> {
        peer.p2pnode(&[group, &["--transport", t, "--timeout", "3", what]].concat(), async |_| {}).await
    };
    for (member, group, peers, files) in [
        (&red1, &red, ["red1", "red2"], ["red1.txt", "red2.txt"]),
        (&blue1, &blue, ["blue1", "blue2"], ["blue1.txt", "blue2.txt"]),
    ] {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (seen, shared) =
                (sees(member, group, "peers").await?.names(), sees(member, group, "ls").await?.names());
            if seen == names(&peers) && shared == names(&files) {
                break;
            }
            ensure!(Instant::now() < deadline, "{}: sees {seen:?} sharing {shared:?}", member.name);
        }
    }
    let run = red2.p2pnode(&[&red[..], &["--transport", t, "get", "red1.txt"]].concat(), async |_| {}).await?;
    ensure!(run.code == Some(0), "a member fetches from a member: {}", run.stderr);
    ensure!(red2.downloaded("red1.txt").await.as_deref() == Some(&notes[..]), "bytes differ");
    // The outsider's own node is the only one it sees.
    let run = outsider.p2pnode(&["--transport", t, "peers"], async |_| {}).await?;
    ensure!(run.names() == names(&["outsider"]), "the outsider sees {:?}", run.names());
    let run = outsider.p2pnode(&["--transport", t, "ls"], async |_| {}).await?;
    ensure!(run.names() == names(&["outside.txt"]), "the outsider lists {:?}", run.names());
    let run = blue1.p2pnode(&["--group", "wrong", "--transport", t, "--timeout", "2", "peers"], async |_| {}).await?;
    ensure!(
        run.code == Some(1) && run.stderr.contains("no peer of this group answered (check the group secret)"),
        "a wrong secret: {:?} {}",
        run.code,
        run.stderr
    );
    red2.kill().await?;
    let _left = lan.peer(0, "red2-left", &[("red2.txt", b"red two")], &[], &[]).await?;
    let seen = sees(&red1, &red, "peers").await?.names();
    ensure!(seen == names(&["red1"]), "a member that left the group is still seen: {seen:?}");
    Ok(())
}

/// Alice and Bob pair by a code, Alice sends Bob a folder, which lands in his downloads folder whole; Eve,
/// not paired, is refused, and nothing of hers lands.
async fn pair_and_send(t: &str) -> anyhow::Result<()> {
    let lan = Lan::new("send", t)?;
    let (photo, note) = (bytes(5 * CHUNK + 7, 21), bytes(1000, 22));
    let album: [(&str, &[u8]); 2] = [("album/beach.jpg", &photo), ("album/notes/day1.txt", &note)];
    let alice = lan.peer(0, "alice", &album, &[], &[]).await?;
    let bob = lan.peer(0, "bob", &[], &[], &[]).await?;
    let eve = lan.peer(0, "eve", &[("eve.txt", b"unasked for")], &[], &[]).await?;
    let (code_tx, code_rx) = tokio::sync::oneshot::channel::<String>();
    let mut code_tx = Some(code_tx);
    let pair = ["--name", "alice", "--transport", t, "pair"];
    let waiting = alice.p2pnode(&pair, async |event| {
        if let (Some(code), Some(tx)) = (event["code"].as_str(), code_tx.take()) {
            let _ = tx.send(code.to_string());
        }
    });
    let joining = async {
        let code = code_rx.await.context("alice showed no code")?;
        bob.p2pnode(&["--name", "bob", "--transport", t, "pair", &code], async |_| {}).await
    };
    let (waited, joined) = tokio::join!(waiting, joining);
    let (waited, joined) = (waited?, joined?);
    ensure!(waited.code == Some(0) && joined.code == Some(0), "pairing: {} / {}", waited.stderr, joined.stderr);
    ensure!(joined.events.iter().any(|e| e["event"] == "paired" && e["name"] == "alice"), "{:?}", joined.events);

    let sent = alice.p2pnode(&["--transport", t, "send", "/share/album", "--to", "bob"], async |_| {}).await?;
    ensure!(sent.code == Some(0) && sent.count("sent") == 1, "alice's send: {:?} {}", sent.code, sent.stderr);
    ensure!(bob.downloaded("album/beach.jpg").await.as_deref() == Some(&photo[..]), "the photo differs");
    ensure!(bob.downloaded("album/notes/day1.txt").await.as_deref() == Some(&note[..]), "the note differs");

    let refused = eve.p2pnode(&["--transport", t, "send", "/share/eve.txt", "--to", "bob"], async |_| {}).await?;
    ensure!(
        refused.code == Some(1) && refused.stderr.contains("bob accepts offers only from the peers it trusts"),
        "an outsider's offer: {:?} {}",
        refused.code,
        refused.stderr
    );
    ensure!(bob.downloaded("eve.txt").await.is_none(), "nothing of eve's lands");
    Ok(())
}

/// A has a file, B downloads it, A is stopped, C downloads it from B.
async fn reshare(t: &str) -> anyhow::Result<()> {
    let lan = Lan::new("reshare", t)?;
    let song = bytes(40 * CHUNK, 6);
    let fast = ["--announce-interval", "1"];
    let a = lan.peer(0, "a", &[("song.ogg", &song)], &fast, &[]).await?;
    let b = lan.peer(0, "b", &[], &fast, &[]).await?;
    let c = lan.peer(0, "c", &[], &fast, &[]).await?;
    let run = b.get(t, "song.ogg", &[], async |_| {}).await?;
    ensure!(run.code == Some(0), "b: {}", run.stderr);
    a.kill().await?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let run = c.get(t, "song.ogg", &["--timeout", "3"], async |_| {}).await?;
        if run.code == Some(0) {
            break;
        }
        ensure!(Instant::now() < deadline, "c never got the file from b: {}", run.stderr);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    ensure!(c.downloaded("song.ogg").await.as_deref() == Some(&song[..]), "bytes differ");
    Ok(())
}

/// Two peers on two bridge networks, joined only through a third container on both that routes between
/// them (a VPN stand-in): broadcasts do not cross, `--peer` makes them see each other.
async fn static_peers(t: &str) -> anyhow::Result<()> {
    let lan = Lan::new("static", t)?;
    let (net0, net1) = (lan.network(0), lan.network(1));
    let paper = bytes(3 * CHUNK, 7);
    let vpn = lan.peer(0, "vpn", &[], &[], &[]).await?;
    let b = lan.peer(1, "b", &[("paper.pdf", &paper)], &["--announce-interval", "1"], &[]).await?;
    let _link = vpn.connect(&net1)?;
    let (b_ip, vpn0, vpn1) = (b.ip(&net1)?, vpn.ip(&net0)?, vpn.ip(&net1)?);
    let a = lan.peer(0, "a", &[], &["--announce-interval", "1", "--peer", &format!("{b_ip}:5000")], &[]).await?;
    in_netns(&vpn.host_pid()?, &["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"])?;
    in_netns(&a.host_pid()?, &["ip", "route", "add", &subnet(&net1)?, "via", &vpn0])?;
    in_netns(&b.host_pid()?, &["ip", "route", "add", &subnet(&net0)?, "via", &vpn1])?;

    let alone = a.p2pnode(&["--transport", t, "--timeout", "1", "peers"], async |_| {}).await?;
    ensure!(!alone.names().contains("b"), "broadcast alone must not reach b: {:?}", alone.names());
    let peer = format!("{b_ip}:5000");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = a.p2pnode(&["--transport", t, "--peer", &peer, "peers"], async |_| {}).await?;
        if seen.names().contains("b") {
            break;
        }
        ensure!(Instant::now() < deadline, "a never saw b through --peer: {:?} {}", seen.names(), seen.stderr);
    }
    // B learns of A from A's announcements, sent to it by unicast.
    let b_sees =
        b.p2pnode(&["--transport", t, "--peer", &format!("{}:5000", a.ip(&net0)?), "peers"], async |_| {}).await?;
    ensure!(b_sees.names().contains("a"), "b sees {:?}", b_sees.names());
    let run = a.get(t, "paper.pdf", &["--peer", &peer], async |_| {}).await?;
    ensure!(run.code == Some(0), "get across the vpn failed: {}", run.stderr);
    ensure!(a.downloaded("paper.pdf").await.as_deref() == Some(&paper[..]), "bytes differ");
    Ok(())
}

/// Runs a host command inside the network namespace of the process `pid` (a container of this test).
fn in_netns(pid: &str, cmd: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("nsenter").args(["-t", pid, "-n"]).args(cmd).output().context("cannot run nsenter")?;
    if !out.status.success() {
        bail!("nsenter {}: {}", cmd.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn subnet(network: &str) -> anyhow::Result<String> {
    docker(&["network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", network]).map(|s| s.trim().to_string())
}
