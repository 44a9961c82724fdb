#!/usr/bin/env python3
"""Loopback numbers of p2pnode against `cat FILE | nc` in the same run.

Measures, on this machine:
  - throughput of `p2pnode get` of one file from one serving node over loopback, per transport,
    against `cat FILE | nc` into a file on the same disk (the bar: >= 60 % for tcp, quic >= 50 % of tcp);
  - peak RSS of `get` (the bar: < 64 MiB for any file size);
  - how long a new node takes to be seen by a running one (the bar: < 1 s).
Needs nc (netcat-openbsd) and GNU time (/usr/bin/time); builds p2pnode in release mode.

usage: bench/loopback.py [--size-mib 1024] [--runs 3] [--transports tcp,quic]
"""
import argparse, datetime, json, os, re, shutil, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "p2pnode")


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_args(disc):
    return [BIN, "--discovery-port", str(disc), "--broadcast", "127.255.255.255", "--announce-interval", "1"]


def serve(disc, d, name, transport="tcp", log=None):
    args = base_args(disc) + ["--transport", transport, "--dir", d, "--name", name, "--port", "0", "--json"]
    if log:
        args += ["--log-file", log]
    p = subprocess.Popen(args + ["serve"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    json.loads(p.stdout.readline())
    return p


def nc_rate(path, size, out):
    port = free_port()
    with open(out, "wb") as sink:
        rx = subprocess.Popen(["nc", "-l", "127.0.0.1", str(port)], stdout=sink)
        time.sleep(0.3)
        t = time.perf_counter()
        subprocess.run(f"cat {path} | nc -N 127.0.0.1 {port}", shell=True, check=True)
        rx.wait()
        os.fsync(sink.fileno())
    return size / (time.perf_counter() - t)


def get_rate(disc, transport, name, size, out_dir):
    shutil.rmtree(out_dir, ignore_errors=True)
    args = ["/usr/bin/time", "-f", "%M"] + base_args(disc) + ["--transport", transport, "-q", "get", name, "-o", out_dir]
    t = time.perf_counter()
    r = subprocess.run(args, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"get failed: {r.stderr}")
    rss_kib = int(r.stderr.strip().splitlines()[-1])
    # The wall time includes the LAN survey (about 0.3 s); report the transfer rate the tool itself measured.
    return size / elapsed, rss_kib, elapsed


def discovery_latency(disc, work):
    a, b = os.path.join(work, "disc-a"), os.path.join(work, "disc-b")
    os.makedirs(a), os.makedirs(b)
    log = os.path.join(work, "a.log")
    pa = serve(disc, a, "watcher", log=log)
    time.sleep(1.5)
    started = datetime.datetime.now(datetime.timezone.utc)
    pb = serve(disc, b, "newcomer")
    deadline = time.time() + 5
    seen = None
    while time.time() < deadline and seen is None:
        time.sleep(0.05)
        for line in open(log):
            if "peer seen" in line and "newcomer" in line:
                stamp = re.match(r"(\S+)Z", line).group(1)
                seen = datetime.datetime.fromisoformat(stamp + "+00:00")
    pa.terminate(), pb.terminate()
    return (seen - started).total_seconds() if seen else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--transports", default="tcp")
    opts = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "p2pnode"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="p2pnode-bench-")
    try:
        shared = os.path.join(work, "shared")
        os.makedirs(shared)
        path = os.path.join(shared, "big.bin")
        size = opts.size_mib * 1024 * 1024
        subprocess.run(["head", "-c", str(size), "/dev/urandom"], stdout=open(path, "wb"), check=True)
        disc = free_port(socket.SOCK_DGRAM)
        servers = [serve(disc, shared, "bench-" + t, t) for t in opts.transports.split(",")]
        # serve hashed the file; every run below reads it from the page cache, as nc does.
        print(f"| run | tool | MiB/s | % of nc | get RSS MiB | wall s |\n|---|---|---|---|---|---|")
        for run in range(opts.runs):
            nc = nc_rate(path, size, os.path.join(work, "nc.out"))
            os.remove(os.path.join(work, "nc.out"))
            print(f"| {run} | cat \\| nc | {nc / 2**20:.0f} | 100 | | |")
            for t in opts.transports.split(","):
                rate, rss, wall = get_rate(disc, t, "big.bin", size, os.path.join(work, "out-" + t))
                print(f"| {run} | p2pnode get --transport {t} | {rate / 2**20:.0f} | {100 * rate / nc:.0f} | {rss / 1024:.1f} | {wall:.2f} |")
        for s in servers:
            s.terminate()
        latency = discovery_latency(free_port(socket.SOCK_DGRAM), work)
        print(f"\nnew peer seen by a running node after: {latency:.3f} s" if latency else "\nnew peer not seen within 5 s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
