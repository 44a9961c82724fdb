//! `serve`'s web page and guest page over real HTTP, as a browser, another site's page and a neighbour
//! on the LAN would use them: the key, the Host check (DNS rebinding), CSRF, the CSP, bounded bodies,
//! names kept as text, the guests' PIN and its limit, ranges, and uploads within their caps.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, free_udp_port, p2pnode, run};
use serde_json::Value;

const XSS: &str = "<img src=x onerror=alert(1)>.txt";

/// One answer: its status, its headers (names lowercased), its body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("JSON: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Sends `method path` to `addr` with `headers` (Host is `addr` unless given) and `body`; reads the whole
/// answer (the connection closes after it).
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let mut request = format!("{method} {path} HTTP/1.1\r\nconnection: close\r\ncontent-length: {}\r\n", body.len());
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        request += &format!("host: {addr}\r\n");
    }
    for (name, value) in headers {
        request += &format!("{name}: {value}\r\n");
    }
    stream.write_all(format!("{request}\r\n").as_bytes()).expect("request");
    // A server that refuses a body early may close before it is all sent.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP answer");
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer { status, headers, body: raw[end + 4..].to_vec() }
}

/// The page's address and key, from the `serving` event.
fn page_of(server: &Server) -> (String, String) {
    let url = server.serving["page"].as_str().expect("the page's address").to_string();
    let (addr, key) = url.strip_prefix("http://").and_then(|u| u.split_once("/#k=")).expect("http://ADDR/#k=KEY");
    (addr.to_string(), key.to_string())
}

/// Asks until `done` takes the answer, for at most 20 s.
fn until(mut ask: impl FnMut() -> Answer, done: impl Fn(&Answer) -> bool) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = ask();
        if done(&answer) || Instant::now() > deadline {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_page_answers_with_its_key_at_its_own_address_and_fetches_a_folder() {
    let port = free_udp_port();
    let (bob_dir, alice_dir) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    std::fs::create_dir(bob_dir.path().join("photos")).expect("mkdir");
    let photo = testdata::bytes(300_000, 7);
    std::fs::write(bob_dir.path().join("photos/beach.jpg"), &photo).expect("write");
    std::fs::write(bob_dir.path().join(XSS), b"text").expect("write");
    let big = testdata::bytes(3_000_000, 8);
    std::fs::write(bob_dir.path().join("big.bin"), &big).expect("write");
    // Slow enough that a fetch of big.bin is caught in progress.
    let _bob = Server::start(port, bob_dir.path(), "bob", &[], &["--max-upload-rate", "1M"]);
    let alice = Server::start(port, alice_dir.path(), "alice", &[], &[]);
    let (addr, key) = page_of(&alice);
    let with_key = [("x-p2pnode-key", key.as_str())];

    // The page itself asks for the key; it runs no inline script and loads nothing from elsewhere.
    let page = http(&addr, "GET", "/", &[], b"");
    assert_eq!(page.status, 200);
    let html = String::from_utf8_lossy(&page.body).to_string();
    assert!(html.contains("needs its key"), "{html}");
    assert_eq!(html.matches("<script").count(), html.matches("<script src=\"/").count(), "only the page's own scripts");
    assert!(
        !html.contains("style=") && !html.contains("src=\"http") && !html.contains("href=\"http"),
        "no inline styles, nothing from elsewhere"
    );
    let csp = page.header("content-security-policy").expect("a CSP");
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe"), "{csp}");
    assert_eq!(page.header("x-frame-options"), Some("DENY"));

    // Nothing else without the key, a wrong one, or under another name (DNS rebinding).
    assert_eq!(http(&addr, "GET", "/api/peers", &[], b"").status, 401);
    assert_eq!(http(&addr, "GET", "/api/peers", &[("x-p2pnode-key", &"0".repeat(64))], b"").status, 401);
    let port_of = addr.rsplit(':').next().expect("port");
    let rebound = [("host", format!("evil.example:{port_of}")), ("x-p2pnode-key", key.clone())];
    let rebound: Vec<(&str, &str)> = rebound.iter().map(|(n, v)| (*n, v.as_str())).collect();
    assert_eq!(http(&addr, "GET", "/api/peers", &rebound, b"").status, 421);
    let localhost = format!("localhost:{port_of}");
    assert_eq!(http(&addr, "GET", "/api/peers", &[("host", &localhost), with_key[0]], b"").status, 200);
    // A form another site posts carries no key (CSRF); a body past the bound is refused unread.
    let form = http(&addr, "POST", "/api/fetch", &[("content-type", "application/json")], br#"{"queries":["photos"]}"#);
    assert_eq!(form.status, 401);
    let huge = format!(r#"{{"queries":["{}"]}}"#, "a".repeat(100_000));
    let json = [with_key[0], ("content-type", "application/json")];
    assert_eq!(http(&addr, "POST", "/api/fetch", &json, huge.as_bytes()).status, 413);
    assert_eq!(http(&addr, "POST", "/api/fetch", &json, b"{\"queries\": 7}").status / 100, 4);

    // The peers and every file, names exactly as their hosts give them.
    let peers =
        until(|| http(&addr, "GET", "/api/peers", &with_key, b""), |a| a.json()["peers"].to_string().contains("bob"));
    assert_eq!(peers.json()["me"]["name"], "alice");
    let files = until(
        || http(&addr, "GET", "/api/files", &with_key, b""),
        |a| a.json()["files"].as_array().is_some_and(|f| f.len() == 3),
    );
    let paths: Vec<String> =
        files.json()["files"].as_array().expect("files").iter().map(|f| f["path"].to_string()).collect();
    assert!(paths.contains(&format!("\"{XSS}\"")), "{paths:?}");
    let filtered = http(&addr, "GET", "/api/files?q=photos", &with_key, b"").json();
    let picked: Vec<&Value> =
        filtered["files"].as_array().expect("files").iter().filter(|f| f["selected"] == true).collect();
    assert_eq!(picked.len(), 1, "{filtered}");

    // A folder fetched into alice's downloads, its run told whole.
    let started = http(&addr, "POST", "/api/fetch", &json, br#"{"queries":["photos"]}"#);
    assert_eq!(started.status, 200, "{}", String::from_utf8_lossy(&started.body));
    let run = started.json()["run"].clone();
    let runs = until(
        || http(&addr, "GET", "/api/runs", &with_key, b""),
        |a| a.json().as_array().into_iter().flatten().any(|r| r["id"] == run && r["state"] == "done"),
    );
    let done = runs.json().as_array().expect("runs").iter().find(|r| r["id"] == run).cloned().expect("the run");
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["bytes"], photo.len());
    let fetched = alice_dir.path().join("P2PDownloadFolder/photos/beach.jpg");
    assert_eq!(std::fs::read(fetched).expect("fetched"), photo);
    assert_eq!(http(&addr, "POST", &format!("/api/runs/{run}/cancel"), &with_key, b"").status, 404, "ended");

    // A fetch cancelled in progress keeps its verified part, and the same fetch again resumes it.
    let run_of = |id: &Value| {
        let runs = http(&addr, "GET", "/api/runs", &with_key, b"").json();
        runs.as_array().into_iter().flatten().find(|r| r["id"] == *id).cloned().unwrap_or_default()
    };
    let slow = http(&addr, "POST", "/api/fetch", &json, br#"{"queries":["big.bin"]}"#).json()["run"].clone();
    until(
        || http(&addr, "GET", "/api/runs", &with_key, b""),
        |_| run_of(&slow)["bytes"].as_u64().is_some_and(|b| b > 0),
    );
    assert_eq!(http(&addr, "POST", &format!("/api/runs/{slow}/cancel"), &with_key, b"").status, 200);
    until(|| http(&addr, "GET", "/api/runs", &with_key, b""), |_| run_of(&slow)["state"] == "cancelled");
    assert_eq!(run_of(&slow)["state"], "cancelled");
    let part = alice_dir.path().join("P2PDownloadFolder/big.bin.part");
    assert!(part.exists(), "the verified part is kept");
    let again = http(&addr, "POST", "/api/fetch", &json, br#"{"queries":["big.bin"]}"#).json()["run"].clone();
    until(|| http(&addr, "GET", "/api/runs", &with_key, b""), |_| run_of(&again)["state"] == "done");
    assert_eq!(run_of(&again)["state"], "done", "{}", run_of(&again));
    assert_eq!(std::fs::read(alice_dir.path().join("P2PDownloadFolder/big.bin")).expect("resumed"), big);
}

/// Starts a serve with guests allowed to upload into `inbox`, up to 100 KiB each; returns it with the
/// guest page's address and PIN.
fn serve_guests(port: u16, dir: &Path, inbox: &Path) -> (Server, String, String) {
    let inbox = inbox.to_str().expect("utf-8");
    let args =
        ["--guests", "upload", "--guest-address", "127.0.0.1:0", "--guest-inbox", inbox, "--guest-max-upload", "100K"];
    let server = Server::start(port, dir, "carol", &[], &args);
    let guests = server.wait_for_event(|e| e["event"] == "guests");
    let url = guests["urls"][0].as_str().expect("url");
    let addr = url.trim_start_matches("http://").trim_end_matches('/').to_string();
    (server, addr, guests["pin"].as_str().expect("pin").to_string())
}

/// Enters `pin`; the session cookie and token where it is right.
fn enter(addr: &str, pin: &str) -> Result<(String, String), Answer> {
    let answer = http(
        addr,
        "POST",
        "/guest/pin",
        &[("content-type", "application/json")],
        format!(r#"{{"pin":"{pin}"}}"#).as_bytes(),
    );
    match answer.status {
        200 => {
            let cookie = answer.header("set-cookie").expect("a session cookie").to_string();
            assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
            let cookie = cookie.split(';').next().expect("name=value").to_string();
            Ok((cookie, answer.json()["token"].as_str().expect("token").to_string()))
        }
        _ => Err(answer),
    }
}

#[test]
fn guests_need_the_pin_and_five_wrong_ones_replace_it() {
    let port = free_udp_port();
    let (dir, inbox) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let (server, addr, pin) = serve_guests(port, dir.path(), &inbox.path().join("in"));
    assert_eq!(http(&addr, "GET", "/guest/files", &[], b"").status, 401);
    assert_eq!(http(&addr, "GET", "/", &[("host", "rebound.example:80")], b"").status, 421);

    let wrong = format!("{:06}", (pin.parse::<u32>().expect("digits") + 1) % 1_000_000);
    for _ in 0..5 {
        assert_eq!(enter(&addr, &wrong).err().map(|a| a.status), Some(403));
    }
    let new = server.wait_for_event(|e| e["event"] == "guest_pin")["pin"].as_str().expect("pin").to_string();
    // No PIN at all is taken for a while (the door's unit tests take the new one after it), so guessing
    // goes at 5 tries a half minute.
    for tried in [&pin, &new] {
        assert_eq!(enter(&addr, tried).err().map(|a| a.status), Some(429), "cooling down");
    }
    assert_eq!(http(&addr, "GET", "/guest/files", &[("cookie", "p2pguest=0000")], b"").status, 401);
}

#[test]
fn a_guest_downloads_ranges_of_hashed_files_and_uploads_within_the_caps() {
    let port = free_udp_port();
    let (dir, other, inbox) =
        (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let movie = testdata::bytes(3_000_000, 11);
    std::fs::write(dir.path().join("movie.bin"), &movie).expect("write");
    std::fs::write(other.path().join("secret.txt"), b"another node's").expect("write");
    let _bob = Server::start(port, other.path(), "bob", &[], &[]);
    let inbox = inbox.path().join("in");
    let (_carol, addr, pin) = serve_guests(port, dir.path(), &inbox);
    let (cookie, token) = enter(&addr, &pin).unwrap_or_else(|a| panic!("PIN: {}", a.status));
    let session = [("cookie", cookie.as_str())];

    // This node's files alone: never another node's.
    let listed = http(&addr, "GET", "/guest/files", &session, b"").json();
    let files = listed["files"].as_array().expect("files");
    assert_eq!(files.len(), 1, "{listed}");
    let id = files[0]["id"].as_str().expect("id").to_string();
    let path = format!("/guest/files/{id}");

    let whole = http(&addr, "GET", &path, &session, b"");
    assert_eq!((whole.status, whole.body == movie), (200, true));
    assert!(whole.header("content-disposition").is_some_and(|d| d.contains("movie.bin")));
    let resumed = http(&addr, "GET", &path, &[session[0], ("range", "bytes=1048570-")], b"");
    assert_eq!(resumed.status, 206);
    assert_eq!(resumed.header("content-range"), Some("bytes 1048570-2999999/3000000"));
    assert_eq!(resumed.body, movie[1_048_570..]);
    assert_eq!(http(&addr, "GET", &path, &[session[0], ("range", "bytes=3000000-")], b"").status, 416);

    // Uploads: the token in a header (another site's form has none), a safe name, within the cap.
    let upload = |name: &str, headers: &[(&str, &str)], body: &[u8]| {
        http(&addr, "POST", &format!("/guest/upload?name={name}"), headers, body)
    };
    assert_eq!(upload("note.txt", &session, b"hello").status, 403);
    let with_token = [session[0], ("x-p2pnode-guest", token.as_str())];
    let saved = upload("..%2F..%2Fescape.txt", &with_token, b"hello");
    assert_eq!(saved.status, 200, "{}", String::from_utf8_lossy(&saved.body));
    assert_eq!(std::fs::read(inbox.join("escape.txt")).expect("saved in the inbox"), b"hello");
    let again = upload("escape.txt", &with_token, b"again");
    assert_eq!(again.json()["saved"], "escape (1).txt", "an existing file is never replaced");
    assert_eq!(upload("big.bin", &with_token, &vec![0u8; 200 * 1024]).status, 413);
    let mut left: Vec<String> = std::fs::read_dir(&inbox)
        .expect("inbox")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["escape (1).txt", "escape.txt"], "nothing of the refused upload is left");

    // A file changed since it was hashed is refused, as peers are refused.
    std::fs::write(dir.path().join("movie.bin"), testdata::bytes(3_000_000, 12)).expect("rewrite");
    let changed = http(&addr, "GET", &path, &session, b"");
    assert_ne!(changed.status, 200);
}

#[test]
fn guests_are_refused_with_a_private_node_and_the_page_with_a_lan_address() {
    let port = free_udp_port();
    let dir = tempfile::tempdir().expect("dir");
    let dir = dir.path().to_str().expect("utf-8");
    let grouped = run(p2pnode(port).args(["--dir", dir, "--group", "a long enough group secret", "serve", "--guests"]));
    let said = String::from_utf8_lossy(&grouped.stderr);
    assert!(!grouped.status.success() && said.contains("--guests is refused with --group"), "{said}");
    let lan = run(p2pnode(port).args(["--dir", dir, "serve", "--web", "0.0.0.0:5080"]));
    let said = String::from_utf8_lossy(&lan.stderr);
    assert!(!lan.status.success() && said.contains("not a loopback address"), "{said}");
}

#[test]
fn connections_are_bounded_per_address_and_a_silent_one_is_closed() {
    let port = free_udp_port();
    let dir = tempfile::tempdir().expect("dir");
    let alice = Server::start(port, dir.path(), "alice", &[], &[]);
    let (addr, _) = page_of(&alice);
    // 16 connections held by one address; the 17th is closed at once, unanswered.
    let held: Vec<TcpStream> = (0..16).map(|_| TcpStream::connect(&addr).expect("connect")).collect();
    assert!(!answered(&addr), "the 17th connection of one address is answered");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !answered(&addr) && Instant::now() < deadline {}
    // A request line and then silence: the connection is closed within the header timeout.
    let mut silent = TcpStream::connect(&addr).expect("connect");
    silent.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    silent.write_all(b"GET / HTTP/1.1\r\n").expect("a request line");
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = silent.read_to_end(&mut rest);
    assert!(started.elapsed() < Duration::from_secs(40), "closed after {:?}", started.elapsed());
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "closed at once ({:?}): not by the timeout",
        started.elapsed()
    );
    assert_eq!(http(&addr, "GET", "/", &[], b"").status, 200, "the slots are free again");
}

/// Whether a request on a new connection to `addr` gets any answer.
fn answered(addr: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.write_all(format!("GET / HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").as_bytes());
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    !answer.is_empty()
}
