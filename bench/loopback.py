#!/usr/bin/env python3
"""Loopback numbers of p2pnode against `cat FILE | nc` in the same run.

Measures, on this machine:
  - throughput of `p2pnode get` of one file from one serving node (which serves every transport) over
    loopback, per transport, against `cat FILE | nc` into a file on the same disk (the bars: tcp >= 60 % of
    nc, tls >= 90 % of tcp, quic >= 50 % of tcp);
  - peak RSS of `get` (the bar: < 64 MiB for any file size), and the CPU time `get` and `serve` spent on
    it (steadier than the rates on a noisy machine);
  - how long a new node takes to be seen by a running one (the bar: < 1 s), plain and in a private group;
  - with `tls+group` or `quic+group` among the transports: a download between members of a private group
    (a second `serve` with --group shares the same file), as % of the same transport without a group in
    the same run (the bar: >= 95 %).
Needs nc (netcat-openbsd) and GNU time (/usr/bin/time); builds p2pnode in release mode.

usage: bench/loopback.py [--size-mib 1024] [--runs 3] [--transports tcp,tls,quic,tls+group] [--out DIR]

--out puts the downloads (and nc's copy) in DIR, for example a tmpfs such as /dev/shm: the disk, which
on a VM is the noisiest part, is then out of the comparison of transports.
"""
import argparse, datetime, json, os, re, shutil, socket, subprocess, sys, tempfile, time

from benchlib import BIN, free_port, own_folders, prepare, until_ready


GROUP = ["--group", "loopback bench secret"]


def base_args(disc):
    return [BIN, "--discovery-port", str(disc), "--broadcast", "127.255.255.255", "--announce-interval", "1"]


def serve(disc, d, name, log=None, extra=()):
    args = base_args(disc) + ["--dir", d, *own_folders(d), "--name", name, "--port", "0", "--json", *extra]
    if log:
        args += ["--log-file", log]
    p = subprocess.Popen(args + ["serve"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    until_ready(p)
    return p


def nc_rate(path, size, out):
    port = free_port()
    os.sync()
    with open(out, "wb") as sink:
        rx = subprocess.Popen(["nc", "-l", "127.0.0.1", str(port)], stdout=sink)
        time.sleep(0.3)
        t = time.perf_counter()
        subprocess.run(f"cat {path} | nc -N 127.0.0.1 {port}", shell=True, check=True)
        rx.wait()
        os.fsync(sink.fileno())
    return size / (time.perf_counter() - t)


def cpu_seconds(pid):
    """User plus system CPU time the process `pid` has used so far."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def get_rate(disc, transport, name, size, out_dir, server, extra=()):
    # Every run starts with no dirty pages: the kernel's writeback of an earlier run's 1 GiB would
    # otherwise slow whichever tool comes next.
    os.sync()
    # Its own state folder: `get` keeps a key there, and the default (./.p2pnode) is wherever this runs.
    state = ["--state-dir", out_dir + "-state"]
    args = ["/usr/bin/time", "-f", "%M %U %S"] + base_args(disc) + state + [*extra, "--transport", transport, "-q", "get", name, "-o", out_dir]
    served_before, t = cpu_seconds(server.pid), time.perf_counter()
    r = subprocess.run(args, capture_output=True, text=True)
    elapsed, served = time.perf_counter() - t, cpu_seconds(server.pid) - served_before
    shutil.rmtree(out_dir, ignore_errors=True)
    shutil.rmtree(out_dir + "-state", ignore_errors=True)
    if r.returncode != 0:
        sys.exit(f"get failed: {r.stderr}")
    rss_kib, user, system = r.stderr.strip().splitlines()[-1].split()
    # The rate of the whole command as a user waits for it: the LAN survey (about 0.3 s) included.
    return size / elapsed, int(rss_kib), elapsed, float(user) + float(system) + served


def discovery_latency(disc, work, extra=()):
    a, b = tempfile.mkdtemp(dir=work), tempfile.mkdtemp(dir=work)
    log = os.path.join(a, "a.log")
    pa = serve(disc, a, "watcher", log=log, extra=extra)
    time.sleep(1.5)
    started = datetime.datetime.now(datetime.timezone.utc)
    pb = serve(disc, b, "newcomer", extra=extra)
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
    ap.add_argument("--transports", default="tcp,tls,quic")
    ap.add_argument("--out", help="where downloads go (default: a temporary folder beside the shared file)")
    opts = ap.parse_args()
    prepare("loopback.py", {"nc": "netcat-openbsd", "/usr/bin/time": "time"})
    work = tempfile.mkdtemp(prefix="p2pnode-bench-")
    try:
        shared = os.path.join(work, "shared")
        os.makedirs(shared)
        path = os.path.join(shared, "big.bin")
        size = opts.size_mib * 1024 * 1024
        subprocess.run(["head", "-c", str(size), "/dev/urandom"], stdout=open(path, "wb"), check=True)
        disc, group_disc = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
        server = serve(disc, shared, "bench")
        # Members of a group: a second node on the same file, with a state folder of its own.
        grouped = any(t.endswith("+group") for t in opts.transports.split(","))
        member = grouped and serve(group_disc, shared, "member", extra=GROUP + ["--state-dir", os.path.join(work, "member")])
        out = tempfile.mkdtemp(prefix="p2pnode-bench-out-", dir=opts.out or work)
        try:
            # serve hashed the file; every run below reads it from the page cache, as nc does.
            print(f"| run | tool | MiB/s | % of nc | % of tcp | get RSS MiB | wall s | CPU s (get + serve) |\n|---|---|---|---|---|---|---|---|")
            of_tcp, of_plain = {}, {}
            for run in range(opts.runs):
                nc = nc_rate(path, size, os.path.join(out, "nc.out"))
                os.remove(os.path.join(out, "nc.out"))
                print(f"| {run} | cat \\| nc | {nc / 2**20:.0f} | 100 | | | | |")
                rates = {}
                for t in opts.transports.split(","):
                    plain = t.removesuffix("+group")
                    how = (group_disc, member, GROUP) if t != plain else (disc, server, ())
                    rate, rss, wall, cpu = get_rate(how[0], plain, "big.bin", size, os.path.join(out, "out-" + plain), how[1], how[2])
                    rates[t] = rate
                    vs_tcp = f"{100 * rate / rates['tcp']:.0f}" if "tcp" in rates else ""
                    of_tcp.setdefault(t, []).append(vs_tcp)
                    if t != plain and plain in rates:
                        of_plain.setdefault(t, []).append(f"{100 * rate / rates[plain]:.0f}")
                    print(f"| {run} | p2pnode get --transport {t} | {rate / 2**20:.0f} | {100 * rate / nc:.0f} | {vs_tcp} | {rss / 1024:.1f} | {wall:.2f} | {cpu:.2f} |")
        finally:
            for p in (server, member):
                p and p.terminate()
            shutil.rmtree(out, ignore_errors=True)
        for t, ratios in of_tcp.items():
            if t != "tcp" and all(ratios):
                print(f"{t} as % of tcp, per run: {', '.join(ratios)}")
        for t, ratios in of_plain.items():
            print(f"{t} as % of {t.removesuffix('+group')} without a group, per run: {', '.join(ratios)}")
        for label, extra in (("", ()), (" in a private group", GROUP)):
            latency = discovery_latency(free_port(socket.SOCK_DGRAM), work, extra)
            seen = f"after: {latency:.3f} s" if latency else "not within 5 s"
            print(f"new peer seen by a running node{label} {seen}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
