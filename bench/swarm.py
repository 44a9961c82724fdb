#!/usr/bin/env python3
"""Multi-source numbers of p2pnode on loopback, per transport.

  - aggregate rate from 3 sources each capped at the same upload rate, against 1 such source
    (the bar: >= 2.5x);
  - time lost when one of 3 sources is killed (kill -9) right after the first chunk arrives
    (the bar: < 2 s), and when one is frozen (SIGSTOP) instead.

usage: bench/swarm.py [--size-mib 96] [--rate 16M] [--transports tcp,quic]
"""
import argparse, json, os, shutil, signal, socket, subprocess, tempfile, time

from benchlib import ROOT
from loopback import BIN, base_args, free_port, own_folders, until_ready


def serve(disc, d, name, rate):
    args = base_args(disc) + ["--dir", d, *own_folders(d), "--name", name, "--port", "0", "--json", "serve",
                              "--max-upload-rate", rate]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    until_ready(p)
    return p


def timed_get(disc, transport, out, fault=None, victim=None):
    """Seconds from the first chunk to the end of `get`; `fault` is sent to `victim` at the first chunk."""
    shutil.rmtree(out, ignore_errors=True)
    args = base_args(disc) + ["--transport", transport, "--json", "get", "big.bin", "-o", out]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    first = None
    for line in p.stdout:
        if '"event":"chunk"' in line and first is None:
            first = time.perf_counter()
            if fault:
                victim.send_signal(fault)
    if p.wait() != 0:
        raise SystemExit("get failed")
    return time.perf_counter() - first


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=96)
    ap.add_argument("--rate", default="16M")
    ap.add_argument("--transports", default="tcp,quic")
    opts = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "p2pnode"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="p2pnode-swarm-")
    try:
        data = os.urandom(opts.size_mib * 2**20)
        dirs = []
        for i in range(3):
            d = os.path.join(work, f"src{i}")
            os.makedirs(d)
            open(os.path.join(d, "big.bin"), "wb").write(data)
            dirs.append(d)
        print(f"{opts.size_mib} MiB, each source capped at {opts.rate}/s\n")
        print("| transport | 1 source s | 3 sources s | speed-up | one killed s | lost s | one frozen s | lost s |")
        print("|---|---|---|---|---|---|---|---|")
        for t in opts.transports.split(","):
            row = [t]
            disc = free_port(socket.SOCK_DGRAM)
            one = [serve(disc, dirs[0], "solo", opts.rate)]
            single = timed_get(disc, t, os.path.join(work, "out"))
            for p in one:
                p.kill()
            disc = free_port(socket.SOCK_DGRAM)
            three = [serve(disc, d, f"s{i}", opts.rate) for i, d in enumerate(dirs)]
            triple = timed_get(disc, t, os.path.join(work, "out"))
            killed = timed_get(disc, t, os.path.join(work, "out"), signal.SIGKILL, three[0])
            for p in three:
                p.kill()
            disc = free_port(socket.SOCK_DGRAM)
            three = [serve(disc, d, f"s{i}", opts.rate) for i, d in enumerate(dirs)]
            frozen = timed_get(disc, t, os.path.join(work, "out"), signal.SIGSTOP, three[0])
            for p in three:
                p.send_signal(signal.SIGCONT)
                p.kill()
            row += [f"{single:.2f}", f"{triple:.2f}", f"{single / triple:.2f}x", f"{killed:.2f}", f"{killed - triple:.2f}", f"{frozen:.2f}", f"{frozen - triple:.2f}"]
            print("| " + " | ".join(row) + " |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
