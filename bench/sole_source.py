#!/usr/bin/env python3
"""The only source of a download dies (release build): how soon `get` says so, and how soon it ends.

A node shares a file of --size MiB at --rate; `get --json` fetches it, and the node is killed (SIGKILL) once
--at per cent is verified. Printed per transport: the seconds from the kill to `source_dropped` (its
reason and how long it waits for another host) and to the end of the run, and what the run said last.

usage: bench/sole_source.py [--size 1024] [--rate 200M] [--at 18] [--timeout 10] [--transports tls,quic]
"""
import argparse, json, os, signal, socket, subprocess, tempfile, time

from loopback import BIN, base_args, free_port, until_ready
from benchlib import prepare


def measure(transport, size, rate, at, timeout, work):
    disc = free_port(socket.SOCK_DGRAM)
    shared, out = os.path.join(work, f"shared-{transport}"), os.path.join(work, f"out-{transport}")
    os.makedirs(shared)
    with open(os.path.join(shared, "big.iso"), "wb") as f:
        for _ in range(size):
            f.write(os.urandom(1 << 20))
    serve_args = base_args(disc) + ["--dir", shared, "--state-dir", os.path.join(work, f"serve-{transport}")]
    server = subprocess.Popen(serve_args + ["--name", "sharer", "--port", "0", "--json", "serve",
                                            "--max-upload-rate", rate],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    until_ready(server)
    get_args = base_args(disc) + ["--state-dir", os.path.join(work, f"get-{transport}"), "--transport", transport,
                                  "--timeout", str(timeout), "--json", "get", "big.iso", "-o", out]
    get = subprocess.Popen(get_args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = told = None
    for line in get.stdout:
        event = json.loads(line)
        if event["event"] == "chunk" and killed is None and event["done_bytes"] >= size * (1 << 20) * at / 100:
            server.send_signal(signal.SIGKILL)
            killed = time.time()
        if event["event"] == "source_dropped" and told is None:
            told = (time.time(), event["reason"], event["waiting_seconds"])
    get.wait()
    ended = time.time()
    server.wait()
    last = get.stderr.read().strip().splitlines()[-1:]
    said = f"told after {told[0] - killed:.2f} s ({told[1]}; waiting {told[2]} s)" if told and killed else "untold"
    print(f"{transport}: killed at {at} %: {said}; the run ended {ended - killed:.2f} s after the kill: "
          f"{' '.join(last)}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1024, help="MiB")
    parser.add_argument("--rate", default="200M")
    parser.add_argument("--at", type=float, default=18)
    parser.add_argument("--timeout", type=float, default=10)
    parser.add_argument("--transports", default="tls,quic")
    args = parser.parse_args()
    prepare("bench/sole_source.py", {})
    print(f"{BIN}: a {args.size} MiB file shared at {args.rate}/s, its only source killed at {args.at} %,"
          f" --timeout {args.timeout}")
    for transport in args.transports.split(","):
        with tempfile.TemporaryDirectory() as work:
            measure(transport, args.size, args.rate, args.at, args.timeout, work)


if __name__ == "__main__":
    main()
