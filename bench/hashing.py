#!/usr/bin/env python3
"""Cold hashing of a shared file by `serve` against `b3sum` of the same file, in the same run (the bar:
>= 85 % of b3sum's rate).

A file of --size-mib MiB (default 2,048) of random bytes; before each timed tool the page cache is dropped
(needs root: /proc/sys/vm/drop_caches), so both read the disk. `serve` is timed from its start until it
prints `ready` (every file hashed), with a fresh state folder each run so nothing is cached.
Needs b3sum (apt-get install b3sum); builds p2pnode in release mode.

usage: bench/hashing.py [--size-mib 2048] [--runs 3]
"""
import argparse, os, shutil, socket, subprocess, tempfile, time

from benchlib import BIN, free_port, prepare, until_ready


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def measure(size_mib, runs):
    """(b3sum MiB/s, serve MiB/s) of each run, cold, on one file of `size_mib` MiB."""
    work = tempfile.mkdtemp(prefix="p2pnode-hash-")
    try:
        shared = os.path.join(work, "shared")
        os.makedirs(shared)
        path, size = os.path.join(shared, "big.bin"), size_mib << 20
        subprocess.run(["head", "-c", str(size), "/dev/urandom"], stdout=open(path, "wb"), check=True)
        rates = []
        for run in range(runs):
            drop_caches()
            t = time.perf_counter()
            subprocess.run(["b3sum", path], check=True, capture_output=True)
            b3 = size / (time.perf_counter() - t) / 2**20
            drop_caches()
            state = os.path.join(work, f"state{run}")
            args = [BIN, "--discovery-port", str(free_port(socket.SOCK_DGRAM)), "--broadcast", "127.255.255.255",
                    "--dir", shared, "--state-dir", state, "--port", "0", "--json", "serve"]
            t = time.perf_counter()
            server = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            until_ready(server)
            rates.append((b3, size / (time.perf_counter() - t) / 2**20))
            server.terminate(), server.wait()
            shutil.rmtree(state)
        return rates
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=2048)
    ap.add_argument("--runs", type=int, default=3)
    opts = ap.parse_args()
    prepare("hashing.py", {"b3sum": "b3sum"})
    print("| run | b3sum MiB/s | serve hashing MiB/s | % of b3sum |\n|---|---|---|---|")
    for run, (b3, ours) in enumerate(measure(opts.size_mib, opts.runs)):
        print(f"| {run} | {b3:.0f} | {ours:.0f} | {100 * ours / b3:.0f} |")


if __name__ == "__main__":
    main()
