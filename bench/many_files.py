#!/usr/bin/env python3
"""What a node sharing many files costs: time to ready, RSS, idle CPU, catalogue size, `ls` time and how
soon a new file shows, for each folder size given.

For each count (default 10,000 and 100,000 files of 1 KiB, 100 to a folder), with a fresh state folder:
  - `serve` from its start until `ready` (every file hashed), and again with the hash cache it kept (a
    restart);
  - its RSS once ready, and the CPU it spends idle over --idle seconds (the bar: < 1 % of a core at
    10,000 files);
  - the encoded catalogue's size (from its log), and a second node's `ls` of the LAN (survey included);
  - from writing a new file until the node publishes a new catalogue (its log), and until a second
    node's `ls` lists it (the bar: < 1.5 s; each `ls` of 100,000 files takes about a second itself).
Builds p2pnode in release mode.

usage: bench/many_files.py [--counts 10000,100000] [--idle 30]
"""
import argparse, datetime, json, os, re, shutil, socket, statistics, subprocess, tempfile, time

from benchlib import BIN, free_port, prepare, until_ready

PER_FOLDER = 100


def make_files(root, count):
    for i in range(count):
        folder = os.path.join(root, f"d{i // PER_FOLDER:04}")
        if i % PER_FOLDER == 0:
            os.makedirs(folder)
        with open(os.path.join(folder, f"f{i:06}.txt"), "wb") as f:
            f.write(i.to_bytes(4, "little") * 256)


def proc_stats(pid):
    """RSS in MiB and CPU seconds (user + system) of process `pid` so far."""
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return rss / 1024, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Node:
    """A `serve` of `shared` with its state in `state`, started and timed until ready."""

    def __init__(self, disc, shared, state, log):
        args = [BIN, "--discovery-port", str(disc), "--broadcast", "127.255.255.255", "--dir", shared,
                "--state-dir", state, "--name", "many", "--port", "0", "--json", "-v", "--log-file", log, "serve"]
        started = time.perf_counter()
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        until_ready(self.proc)
        self.ready_s = time.perf_counter() - started

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def ls(disc):
    """Names a second node's `ls` lists, and how long it took."""
    t = time.perf_counter()
    r = subprocess.run([BIN, "--discovery-port", str(disc), "--broadcast", "127.255.255.255", "--json", "ls"],
                       capture_output=True, text=True, check=True)
    return {json.loads(line)["name"] for line in r.stdout.splitlines()}, time.perf_counter() - t


def catalogue_bytes(log):
    sizes = [int(m.group(1)) for m in re.finditer(r"catalogue changed.*?bytes=(\d+)", open(log).read())]
    return sizes[-1] if sizes else None


def published_after(log, since):
    """Seconds from `since` until the node's log says its catalogue changed, or None."""
    for line in open(log):
        if "catalogue changed" in line:
            stamp = datetime.datetime.fromisoformat(re.match(r"(\S+)Z", line).group(1) + "+00:00")
            if stamp > since:
                return (stamp - since).total_seconds()
    return None


def measure(count, idle, work):
    shared, state = os.path.join(work, f"shared{count}"), os.path.join(work, f"state{count}")
    os.makedirs(shared)
    make_files(shared, count)
    os.sync()
    disc, log = free_port(socket.SOCK_DGRAM), os.path.join(work, f"serve{count}.log")
    node = Node(disc, shared, state, log)
    try:
        rss, cpu0 = proc_stats(node.proc.pid)
        time.sleep(idle)
        _, cpu1 = proc_stats(node.proc.pid)
        listed, times = set(), []
        for _ in range(3):
            listed, took = ls(disc)
            times.append(took)
        new = os.path.join(shared, "d0000", "new.txt")
        wall = datetime.datetime.now(datetime.timezone.utc)
        with open(new, "w") as f:
            f.write("new")
        written, seen = time.perf_counter(), None
        while seen is None and time.perf_counter() - written < 10:
            if "d0000/new.txt" in ls(disc)[0]:
                seen = time.perf_counter() - written
    finally:
        node.stop()
    published = published_after(log, wall)
    again = Node(disc, shared, state, log)
    rss_again, _ = proc_stats(again.proc.pid)
    again.stop()
    return {
        "files": count,
        "ready s": node.ready_s,
        "restart ready s": again.ready_s,
        "RSS MiB": rss,
        "restart RSS MiB": rss_again,
        "idle % of a core": 100 * (cpu1 - cpu0) / idle,
        "catalogue KiB": (catalogue_bytes(log) or 0) / 1024,
        "ls s": statistics.median(times),
        "listed": len(listed),
        "new file published s": published,
        "new file seen s": seen,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="10000,100000")
    ap.add_argument("--idle", type=float, default=30)
    opts = ap.parse_args()
    prepare("many_files.py", {})
    work = tempfile.mkdtemp(prefix="p2pnode-many-")
    try:
        rows = [measure(int(c), opts.idle, work) for c in opts.counts.split(",")]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()) + " |")


if __name__ == "__main__":
    main()
