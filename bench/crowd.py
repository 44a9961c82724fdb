#!/usr/bin/env python3
"""A flash crowd on loopback: one seed capped at --rate, --downloaders `get`s of one file started together.

Per transport it prints the time until the last downloader has the file, as a ratio to one download alone
from the same seed (the bar: <= 1.6x; without a swarm it is about the number of downloaders), and the
seed's upload bytes per file byte (the bar: <= 1.3), counted from the `chunk` events of the downloaders.

With --containers, the seed and every downloader run in containers of the image docker/build.sh makes,
on a bridge network of their own (times then include each container's start). With --faults, two more
crowds per transport: one whose first downloader is killed half-way, one whose first is frozen (SIGSTOP).

usage: bench/crowd.py [--size-mib 48] [--rate 8M] [--downloaders 6] [--transports tls,quic] [--no-upload]
                      [--containers] [--faults]
"""
import argparse, json, os, shutil, signal, socket, subprocess, tempfile, threading, time

from benchlib import BIN, ROOT, free_port, own_folders, prepare, until_ready

IMAGE = "p2pnode:test"


def base(disc):
    return [BIN, "--discovery-port", str(disc), "--broadcast", "127.255.255.255"]


def local_get(disc, work):
    """The command line of the `i`-th downloader on loopback, each in a folder of its own."""
    def command(i, transport, extra):
        d = os.path.join(work, f"get{i}")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        return base(disc) + ["--dir", d, *own_folders(d), "--port", "0", "--announce-interval", "1", "--name", f"get{i}",
                             "--transport", transport, "--json", "get", "crowd.bin", "-o", os.path.join(d, "out"),
                             *extra]
    return command


def container_get(network):
    """The command line of the `i`-th downloader, a container of its own on `network`."""
    def command(i, transport, extra):
        return ["docker", "run", "--rm", "--network", network, IMAGE, "--dir", "/share", "--announce-interval", "1",
                "--name", f"get{i}", "--transport", transport, "--json", "get", "crowd.bin", *extra]
    return command


def crowd(command, transport, n, seed_id, extra, fault=None):
    """Starts `n` gets together; returns (seconds until the last `done`, chunk bytes the seed sent).

    With a `fault` (a signal and a byte count), the first downloader gets the signal once it has that many
    bytes, and the others' last `done` is timed."""
    procs, finished, from_seed = [], [None] * n, [0] * n
    started = time.perf_counter()
    for i in range(n):
        procs.append(subprocess.Popen(command(i, transport, extra), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))

    def read(i):
        chunks = 0
        for line in procs[i].stdout:
            event = json.loads(line)
            chunks += event["event"] == "chunk"
            if event["event"] == "chunk" and event["peer"] == seed_id:
                from_seed[i] += event["bytes"]
            elif event["event"] == "done":
                finished[i] = time.perf_counter() - started
            if i == 0 and fault and event["event"] == "chunk" and event["done_bytes"] >= fault[1]:
                procs[0].send_signal(fault[0])
                break


    readers = [threading.Thread(target=read, args=(i,)) for i in range(n)]
    for r in readers:
        r.start()
    for p in procs[1 if fault else 0:]:
        if p.wait() != 0:
            raise SystemExit(f"a get failed: {p.stderr.read().strip()}")
    if fault:
        procs[0].kill()
        procs[0].wait()
    for r in readers:
        r.join()
    return max(finished[1 if fault else 0:]), sum(from_seed)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=48)
    ap.add_argument("--rate", default="8M")
    ap.add_argument("--downloaders", type=int, default=6)
    ap.add_argument("--transports", default="tls,quic")
    ap.add_argument("--no-upload", action="store_true", help="the crowd without a swarm, for comparison")
    ap.add_argument("--containers", action="store_true", help="seed and downloaders in containers")
    ap.add_argument("--faults", action="store_true",
                    help="also a crowd whose first downloader is killed, and one whose first is frozen, half-way")
    opts = ap.parse_args()
    prepare("crowd.py", {"docker": "docker.io"} if opts.containers else {})
    work = tempfile.mkdtemp(prefix="p2pnode-crowd-")
    size = opts.size_mib * 2**20
    extra = ["--no-upload"] if opts.no_upload else []
    network = f"p2pnode-crowd-{os.getpid()}"
    try:
        seed_dir = os.path.join(work, "seed")
        os.makedirs(seed_dir)
        with open(os.path.join(seed_dir, "crowd.bin"), "wb") as f:
            f.write(os.urandom(size))
        serve = ["--announce-interval", "1", "--name", "seed", "--json", "serve", "--max-upload-rate", opts.rate]
        if opts.containers:
            subprocess.run([os.path.join(ROOT, "docker", "build.sh")], check=True, stdout=subprocess.DEVNULL)
            subprocess.run(["docker", "network", "create", network], check=True, stdout=subprocess.DEVNULL)
            seed = subprocess.Popen(["docker", "run", "--rm", "--name", f"{network}-seed", "--network", network,
                                     "-v", f"{seed_dir}:/share", IMAGE, "--dir", "/share", *serve],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            command = container_get(network)
        else:
            disc = free_port(socket.SOCK_DGRAM)
            seed = subprocess.Popen(base(disc) + ["--dir", seed_dir, *own_folders(seed_dir), "--port", "0", *serve],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            command = local_get(disc, work)
        seed_id = until_ready(seed)["id"]
        threading.Thread(target=lambda: [None for _ in seed.stdout], daemon=True).start()
        where = "in containers" if opts.containers else "on loopback"
        print(f"{opts.size_mib} MiB from one seed capped at {opts.rate}/s; {opts.downloaders} downloaders {where}"
              f"{' without a swarm' if opts.no_upload else ''}\n")
        print("| transport | one download s | crowd: last done s | ratio | seed bytes per file byte |")
        print("|---|---|---|---|---|")
        rows = []
        for t in opts.transports.split(","):
            one, _ = crowd(command, t, 1, seed_id, extra)
            last, sent = crowd(command, t, opts.downloaders, seed_id, extra)
            print(f"| {t} | {one:.1f} | {last:.1f} | {last / one:.2f}x | {sent / size:.2f} |", flush=True)
            for name, fault in [("killed", signal.SIGKILL), ("frozen", signal.SIGSTOP)] if opts.faults else []:
                faulty, _ = crowd(command, t, opts.downloaders, seed_id, extra, (fault, size // 2))
                rows.append((t, name, last, faulty))
        if rows:
            print("\n| transport | one downloader half-way | the others' last done s | lost s |")
            print("|---|---|---|---|")
            for t, name, last, faulty in rows:
                print(f"| {t} | {name} | {faulty:.1f} | {faulty - last:+.1f} |")
    finally:
        if opts.containers:
            subprocess.run(["docker", "rm", "-f", f"{network}-seed"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            subprocess.run(["docker", "network", "rm", network], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            seed.terminate()
            seed.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
