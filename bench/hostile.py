#!/usr/bin/env python3
"""What hostile hosts on loopback cost a p2pnode (release build; run `cargo build --release` first).

  - flood: one host (127.0.0.5) announces 40,000 distinct node ids to a serving node; the node's extra
    RSS and CPU time, and whether a genuine node started during the flood is still seen
    (targets: < 5 MiB, < 1 s CPU, seen);
  - survey: one host (127.0.0.6) claims 9 node ids, each listing a 30 MB catalogue; the peak RSS of
    `ls` (target: < 64 MiB) and its wall time;
  - stuck: two hosts (127.0.0.7, 127.0.0.8) fill every connection slot a serving node gives them (48
    each) with 32 chunk requests per connection whose answers they never read; the node's peak RSS
    while they hold on (target: < 64 MiB), whether another host still gets the file, and how many of
    the stuck connections the node has closed after its idle timeout;
  - forged: one host (127.0.0.9) sends --forged random datagrams per second (as long as announcements,
    sealed-looking) for 10 s to the discovery port of a node in a private group; the node's CPU (share
    of a core) and RSS meanwhile, and how long a member's `get` of 16 MiB takes during the flood against
    before it (it must keep serving members).

usage: bench/hostile.py [--flood 40000] [--forged 10000] [--only survey|flood|stuck|forged]
"""
import argparse, json, os, socket, struct, subprocess, tempfile, threading, time

from loopback import BIN, base_args, free_port, own_folders, until_ready


def announcement(node_id, name, port, version=1):
    body = b"P2PD\x01\x01" + node_id + struct.pack(">Q", 7) + struct.pack(">H", len(name)) + name
    body += b"\x02" + b"\x01" + struct.pack(">H", port) + b"\x02" + struct.pack(">H", port)
    return body + struct.pack(">QIH", version, 1, 1)


def proc_stats(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return rss / 1024, cpu


def serve(disc, d, name, stderr=subprocess.DEVNULL, extra=()):
    args = base_args(disc) + ["--dir", d, *own_folders(d), "--name", name, "--port", "0", "--json", *extra, "serve"]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr, text=True)
    until_ready(p)
    return p


def flood(count):
    disc = free_port(socket.SOCK_DGRAM)
    with tempfile.TemporaryDirectory() as victim_dir, tempfile.TemporaryDirectory() as genuine_dir:
        log = tempfile.TemporaryFile("w+")
        victim = serve(disc, victim_dir, "victim", stderr=log)
        time.sleep(0.5)
        rss0, cpu0 = proc_stats(victim.pid)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.5", 0))
        genuine, started = None, time.time()
        for i in range(count):
            s.sendto(announcement(struct.pack(">I", i + 1) + bytes(28), b"flood", 1), ("127.0.0.1", disc))
            if i == count // 2:
                genuine = serve(disc, genuine_dir, "genuine")
        sent = time.time() - started
        time.sleep(2)
        rss1, cpu1 = proc_stats(victim.pid)
        log.flush()
        log.seek(0)
        text = log.read()
        seen = "name=genuine" in text
        lines = text.count("\n")
        for p in (victim, genuine):
            p.kill()
            p.wait()
        print(f"flood: {count} ids from one host in {sent:.1f} s: victim RSS {rss0:.1f} -> {rss1:.1f} MiB "
              f"(+{rss1 - rss0:.1f}), CPU +{cpu1 - cpu0:.2f} s, {lines} log lines, genuine seen: {seen}")


def catalogue(entries):
    out = bytearray(b"P2PC\x02" + struct.pack(">I", entries))  # magic, catalogue version 2
    for i in range(entries):
        name = (b"%06d-" % i) + b"n" * 248
        out += struct.pack(">I", i) + bytes(28) + struct.pack(">H", len(name)) + name + struct.pack(">Q", 1) + b"\x00"
    return bytes(out)


def catalogue_server(encoded):
    listener = socket.socket()
    listener.bind(("127.0.0.6", 0))
    listener.listen(64)
    ok = b"P2PF\x01\x00" + struct.pack(">Q", len(encoded))
    frame = struct.pack(">I", len(ok)) + ok

    def answer(conn):
        with conn:
            try:
                conn.recv(64)
                conn.sendall(frame + encoded)
                conn.recv(1)
            except OSError:
                pass

    def accept():
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1]


def survey():
    disc = free_port(socket.SOCK_DGRAM)
    encoded = catalogue(100_000)
    port = catalogue_server(encoded)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.6", 0))
    peer = f"127.0.0.6:{s.getsockname()[1]}"

    def answer_queries():
        while True:
            _, asker = s.recvfrom(2048)
            for i in range(9):
                s.sendto(announcement(bytes([i + 1]) * 32, b"big%d" % i, port), asker)

    threading.Thread(target=answer_queries, daemon=True).start()
    started = time.time()
    # /usr/bin/time measures the command alone (a child forked from here starts with this process's memory).
    args = ["/usr/bin/time", "-f", "%M"] + base_args(disc) + ["--peer", peer, "--timeout", "10", "ls"]
    out = subprocess.run(args, capture_output=True, text=True)
    wall = time.time() - started
    peak = int(out.stderr.strip().splitlines()[-1]) / 1024
    files = max(len(out.stdout.splitlines()) - 1, 0)
    print(f"survey: 9 ids x {len(encoded) / 1e6:.0f} MB catalogues from one host: `ls` peak RSS {peak:.1f} MiB, "
          f"{wall:.1f} s, {files} files listed, exit {out.returncode}")


def stuck():
    disc = free_port(socket.SOCK_DGRAM)
    with tempfile.TemporaryDirectory() as d, tempfile.TemporaryDirectory() as out:
        with open(os.path.join(d, "big.bin"), "wb") as f:
            f.write(os.urandom(64 << 20))
        victim = subprocess.Popen(base_args(disc) + ["--dir", d, *own_folders(d), "--name", "victim", "--port", "0",
                                                     "--json", "serve"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        port = until_ready(victim)["ports"]["tcp"]
        listing = subprocess.run(base_args(disc) + ["--json", "ls"], capture_output=True, text=True, check=True)
        file_id = bytes.fromhex(json.loads(listing.stdout.splitlines()[0])["id"])
        rss0, _ = proc_stats(victim.pid)
        held = []
        for host in ("127.0.0.7", "127.0.0.8"):
            for i in range(48):
                c = socket.socket()
                c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                c.bind((host, 0))
                c.connect(("127.0.0.1", port))
                for j in range(32):
                    body = b"P2PF\x01\x03" + file_id + struct.pack(">III", (i * 32 + j) % 256, 0, 256 * 1024)
                    c.sendall(struct.pack(">I", len(body)) + body)
                held.append(c)
        peak, started = rss0, time.time()
        get = subprocess.Popen(base_args(disc) + ["--downloads", out, "get", "big.bin"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while time.time() - started < 40:
            peak = max(peak, proc_stats(victim.pid)[0])
            time.sleep(0.1)
        got = get.wait() == 0 and os.path.getsize(os.path.join(out, "big.bin")) == 64 << 20
        closed = 0
        for c in held:
            # A connection the node gave up on ends after what was already in the kernel's buffers; one it
            # still serves keeps delivering and then waits for the next request.
            c.settimeout(2)
            try:
                while c.recv(1 << 20):
                    pass
            except socket.timeout:
                continue
            except OSError:
                pass
            closed += 1
        victim.kill()
        victim.wait()
        print(f"stuck: 96 connections x 32 unread 256 KiB chunks from two hosts: serve RSS {rss0:.1f} -> peak "
              f"{peak:.1f} MiB over 40 s, another host's get complete: {got}, stuck connections closed: {closed}/96")


def forged(rate, secs=10):
    disc, group = free_port(socket.SOCK_DGRAM), ["--group", "hostile bench secret"]
    with tempfile.TemporaryDirectory() as victim_dir, tempfile.TemporaryDirectory() as into:
        with open(os.path.join(victim_dir, "file.bin"), "wb") as f:
            f.write(os.urandom(16 << 20))
        victim = serve(disc, victim_dir, "victim", extra=group)

        def member_get(n):
            out = os.path.join(into, str(n))
            t = time.perf_counter()
            r = subprocess.run(base_args(disc) + group + ["--state-dir", out + "-state", "get", "file.bin", "-o", out],
                               capture_output=True, text=True)
            return time.perf_counter() - t, r.returncode == 0 and os.path.getsize(os.path.join(out, "file.bin")) == 16 << 20

        quiet, _ = member_get(0)
        rss0, cpu0 = proc_stats(victim.pid)
        sent, stop = [0], threading.Event()

        def flood_forged():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.9", 0))
            start = time.perf_counter()
            while not stop.is_set() and time.perf_counter() - start < secs:
                # Paced in 10 ms steps: `rate` per second, each datagram random bytes of 100-1,200.
                for _ in range(rate // 100):
                    s.sendto(os.urandom(100 + sent[0] % 1100), ("127.0.0.1", disc))
                    sent[0] += 1
                behind = sent[0] / rate - (time.perf_counter() - start)
                if behind > 0:
                    time.sleep(behind)

        flooder = threading.Thread(target=flood_forged)
        started = time.perf_counter()
        flooder.start()
        time.sleep(1)
        during, ok = member_get(1)
        flooder.join()
        took = time.perf_counter() - started
        rss1, cpu1 = proc_stats(victim.pid)
        victim.kill()
        victim.wait()
        print(f"forged: {sent[0]} random datagrams in {took:.1f} s ({sent[0] / took:.0f}/s) to a group node: "
              f"its CPU +{cpu1 - cpu0:.2f} s ({100 * (cpu1 - cpu0) / took:.0f} % of a core), RSS {rss0:.1f} -> "
              f"{rss1:.1f} MiB; a member's get of 16 MiB during it: {'ok' if ok else 'FAILED'} in {during:.2f} s "
              f"({quiet:.2f} s before the flood)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--flood", type=int, default=40_000)
    parser.add_argument("--forged", type=int, default=10_000)
    parser.add_argument("--only", choices=["survey", "flood", "stuck", "forged"])
    args = parser.parse_args()
    cases = {"survey": survey, "flood": lambda: flood(args.flood), "stuck": stuck, "forged": lambda: forged(args.forged)}
    for name, case in cases.items():
        if args.only in (None, name):
            case()
