#!/usr/bin/env python3
"""Many small files: `p2pnode get FOLDER` against `tar c | nc | tar x` of the same folder, on loopback, in
the same run (the bar: within 2x of tar|nc).

A folder of --files files of --size-kib KiB (default 10,000 of 4 KiB) is shared by one `serve`; each run
times `get` of the folder into a fresh directory (survey included), then tar through nc into another.
Needs nc (netcat-openbsd) and tar; builds p2pnode in release mode.

usage: bench/small_files.py [--files 10000] [--size-kib 4] [--runs 3] [--transport tls] [--out DIR]
"""
import argparse, json, os, shutil, socket, subprocess, sys, tempfile, time

from benchlib import BIN, free_port, own_folders, prepare, until_ready


def tar_nc(src_parent, folder, out):
    port = free_port()
    os.makedirs(out)
    # Each tool starts with the disk quiet: the previous run's writeback would slow whichever came next.
    os.sync()
    rx = subprocess.Popen(f"nc -l 127.0.0.1 {port} | tar x -C {out}", shell=True)
    time.sleep(0.3)
    t = time.perf_counter()
    subprocess.run(f"tar c -C {src_parent} {folder} | nc -N 127.0.0.1 {port}", shell=True, check=True)
    rx.wait()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--size-kib", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--transport", default="tls")
    ap.add_argument("--out", help="where both tools write (a tmpfs such as /dev/shm takes the disk out)")
    opts = ap.parse_args()
    prepare("small_files.py", {"nc": "netcat-openbsd", "tar": "tar"})
    work = tempfile.mkdtemp(prefix="p2pnode-small-", dir=opts.out)
    try:
        shared = os.path.join(work, "shared")
        folder = os.path.join(shared, "many")
        os.makedirs(folder)
        for i in range(opts.files):
            with open(os.path.join(folder, f"f{i:05d}.bin"), "wb") as f:
                f.write(os.urandom(opts.size_kib * 1024))
        disc = free_port(socket.SOCK_DGRAM)
        base = [BIN, "--discovery-port", str(disc), "--broadcast", "127.255.255.255"]
        started = time.perf_counter()
        server = subprocess.Popen(base + ["--dir", shared, *own_folders(shared), "--name", "bench", "--port", "0",
                                          "--json", "serve"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        until_ready(server)
        print(f"serve hashed {opts.files} files and was ready in {time.perf_counter() - started:.1f} s")
        try:
            print("| run | tar \\| nc s | p2pnode get s | ratio |\n|---|---|---|---|")
            for run in range(opts.runs):
                tar = tar_nc(shared, "many", os.path.join(work, f"tar{run}"))
                out = os.path.join(work, f"get{run}")
                state = ["--state-dir", out + "-state"]
                os.sync()
                t = time.perf_counter()
                r = subprocess.run(base + state + ["--transport", opts.transport, "-q", "get", "many", "-o", out],
                                   capture_output=True, text=True)
                got = time.perf_counter() - t
                if r.returncode != 0:
                    sys.exit(f"get failed: {r.stderr.strip()}")
                fetched = sum(len(files) for _, _, files in os.walk(os.path.join(out, "many")))
                if fetched != opts.files:
                    sys.exit(f"get fetched {fetched} of {opts.files} files")
                print(f"| {run} | {tar:.2f} | {got:.2f} | {got / tar:.1f}x |")
                shutil.rmtree(out), shutil.rmtree(out + "-state", ignore_errors=True)
                shutil.rmtree(os.path.join(work, f"tar{run}"))
        finally:
            server.terminate()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
