#!/usr/bin/env python3
"""The performance figures in one table, each beside its baseline from the same run, with the target.

  - cold hashing of a 2 GiB file by `serve` against `b3sum` (hashing.py; needs root to drop the page
    cache, and b3sum);
  - loopback `get` of 1 GiB over tcp against `cat FILE | nc` into a file, and over quic against tcp, with
    `get`'s peak RSS (loopback.py's measures; downloads into --out, default /dev/shm);
  - a node sharing 10,000 and 100,000 files: time to ready, RSS, idle CPU, catalogue size, `ls` time, and
    how soon a new file shows in another node's `ls` (many_files.py);
  - with --huge DIR: `get`'s peak RSS for a file of 16 MiB chunks (17 GiB, sparse at the source, written
    into DIR, which needs 17 GiB free);
  - with --lossy: QUIC's goodput on the `poor` and `bad` emulated links against their rate
    (`cargo bench -p bench`, needs root for the link emulation; several minutes).
Medians over --runs runs. Builds p2pnode in release mode.

usage: bench/figures.py [--runs 3] [--out /dev/shm] [--counts 10000,100000] [--huge DIR] [--lossy]
"""
import argparse, os, re, shutil, socket, statistics, subprocess, tempfile

import hashing, many_files
from benchlib import ROOT, free_port, prepare
from loopback import get_rate, nc_rate, serve


def median(values):
    return statistics.median(values)


def loopback(runs, out_root):
    """Medians of (cat | nc, tcp, quic) MiB/s, per-run quic % of tcp, and the largest `get` RSS in MiB."""
    work = tempfile.mkdtemp(prefix="p2pnode-figures-")
    try:
        shared = os.path.join(work, "shared")
        os.makedirs(shared)
        path, size = os.path.join(shared, "big.bin"), 1 << 30
        subprocess.run(["head", "-c", str(size), "/dev/urandom"], stdout=open(path, "wb"), check=True)
        disc = free_port(socket.SOCK_DGRAM)
        server = serve(disc, shared, "figures")
        out = tempfile.mkdtemp(prefix="p2pnode-figures-out-", dir=out_root)
        rates, rss = {"nc": [], "tcp": [], "quic": []}, []
        try:
            for _ in range(runs):
                rates["nc"].append(nc_rate(path, size, os.path.join(out, "nc.out")) / 2**20)
                os.remove(os.path.join(out, "nc.out"))
                for t in ("tcp", "quic"):
                    rate, kib, _, _ = get_rate(disc, t, "big.bin", size, os.path.join(out, t), server)
                    rates[t].append(rate / 2**20)
                    rss.append(kib / 1024)
        finally:
            server.terminate()
            shutil.rmtree(out, ignore_errors=True)
        ratios = [100 * q / t for q, t in zip(rates["quic"], rates["tcp"])]
        return {k: median(v) for k, v in rates.items()}, ratios, max(rss)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def huge_rss(out_root):
    """`get`'s peak RSS in MiB over tcp and quic for a file of 16 MiB chunks (17 GiB, sparse at the
    source; the download is written to `out_root`, on disk by default: it needs 17 GiB free)."""
    work = tempfile.mkdtemp(prefix="p2pnode-figures-huge-")
    try:
        shared = os.path.join(work, "shared")
        os.makedirs(shared)
        size = 17 << 30
        with open(os.path.join(shared, "huge.bin"), "wb") as f:
            f.truncate(size)
        disc = free_port(socket.SOCK_DGRAM)
        server = serve(disc, shared, "figures-huge")
        try:
            out = tempfile.mkdtemp(prefix="p2pnode-figures-huge-out-", dir=out_root)
            rss = {t: get_rate(disc, t, "huge.bin", size, os.path.join(out, t), server)[1] / 1024 for t in ("tcp", "quic")}
            shutil.rmtree(out, ignore_errors=True)
            return rss
        finally:
            server.terminate()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def lossy():
    """QUIC's goodput as % of the link rate on `poor` and `bad`, from the bench's Markdown table."""
    r = subprocess.run(["cargo", "bench", "-q", "-p", "bench", "--", "(poor|bad)/quic$"], cwd=ROOT,
                       capture_output=True, text=True, check=True)
    shares = {}
    for m in re.finditer(r"^\| (poor|bad) \| quic \| 1 \| [^|]+\| [^|]+\| (\d+) % \|", r.stdout, re.M):
        shares[m.group(1)] = int(m.group(2))
    return shares


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default="/dev/shm")
    ap.add_argument("--counts", default="10000,100000")
    ap.add_argument("--lossy", action="store_true")
    ap.add_argument("--huge", metavar="DIR", help="also a download of 16 MiB chunks (17 GiB) into DIR")
    opts = ap.parse_args()
    prepare("figures.py", {"b3sum": "b3sum", "nc": "netcat-openbsd", "/usr/bin/time": "time"})
    rows = []
    hashed = hashing.measure(2048, opts.runs)
    b3, ours = median([b for b, _ in hashed]), median([o for _, o in hashed])
    rows.append(("cold hashing, 2 GiB", f"{ours:.0f} MiB/s", f"b3sum {b3:.0f} MiB/s",
                 f"{100 * ours / b3:.0f} %", ">= 85 %"))
    rates, ratios, rss = loopback(opts.runs, opts.out)
    rows.append(("loopback get 1 GiB, tcp", f"{rates['tcp']:.0f} MiB/s", f"cat \\| nc {rates['nc']:.0f} MiB/s",
                 f"{100 * rates['tcp'] / rates['nc']:.0f} %", "> 100 %"))
    rows.append(("loopback get 1 GiB, quic", f"{rates['quic']:.0f} MiB/s", f"tcp {rates['tcp']:.0f} MiB/s",
                 f"{median(ratios):.0f} % (runs: {', '.join(f'{r:.0f}' for r in ratios)})", ">= 60 %"))
    rows.append(("get peak RSS, tcp and quic", f"{rss:.1f} MiB", "", "", "< 64 MiB"))
    work = tempfile.mkdtemp(prefix="p2pnode-figures-many-")
    try:
        for count in map(int, opts.counts.split(",")):
            # Over two periodic rescans (30 s apart where folders are watched).
            m = many_files.measure(count, 65, work)
            n = f"{count:,} files"
            rows.append((f"{n}: idle CPU", f"{m['idle % of a core']:.2f} % of a core", "", "", "< 1 %"))
            rows.append((f"{n}: time to ready (restart)", f"{m['ready s']:.2f} s ({m['restart ready s']:.2f} s)", "", "", ""))
            rows.append((f"{n}: RSS, catalogue", f"{m['RSS MiB']:.0f} MiB, {m['catalogue KiB']:.0f} KiB", "", "", ""))
            rows.append((f"{n}: ls (survey included)", f"{m['ls s']:.2f} s", "", "", ""))
            rows.append((f"{n}: RSS after a restart", f"{m['restart RSS MiB']:.0f} MiB", "", "", ""))
            published = m["new file published s"]
            rows.append((f"{n}: new file published", "not seen" if published is None else f"{published:.2f} s",
                         "", "", ""))
            seen = m["new file seen s"]
            rows.append((f"{n}: new file in another node's ls", "not seen" if seen is None else f"{seen:.2f} s",
                         "", "", "< 1.5 s"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if opts.huge:
        rss = huge_rss(opts.huge)
        rows.append(("get peak RSS, 16 MiB chunks (17 GiB)", f"tcp {rss['tcp']:.1f}, quic {rss['quic']:.1f} MiB", "", "",
                     "< 64 MiB"))
    if opts.lossy:
        for link, share in lossy().items():
            rows.append((f"quic on `{link}`", f"{share} % of the link rate", "", "",
                         ">= 95 %" if link == "poor" else ">= 93 %"))
    print("| figure | p2pnode | baseline | ratio | target |\n|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
