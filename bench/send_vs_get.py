#!/usr/bin/env python3
"""`send` of a file against `get` of the same file, over loopback (release build).

Alice holds a file of --size MiB. `send FILE --to bob` hands it to Bob's serve, which trusts Alice and
fetches it into its downloads folder; `get` fetches it from Alice's serve into a folder of its own. Timed
per transport, --runs times each, alternating: the send from `offered` (its file hashed) to `sent` (Bob
has every byte), the get from `started` to `done` (both the transfer, without finding peers or hashing);
and each command whole. Every copy is compared with the original, then deleted.

usage: bench/send_vs_get.py [--size 1024] [--runs 3] [--transports tls,quic] [--out DIR]
"""
import argparse, filecmp, json, os, socket, statistics, subprocess, tempfile, time

from loopback import base_args, serve
from benchlib import BIN, free_port, prepare


def events(args):
    """Runs `args`; the time each event was printed, by name, and the whole run's seconds."""
    started, seen = time.perf_counter(), {}
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in p.stdout:
        seen.setdefault(json.loads(line)["event"], time.perf_counter())
    if p.wait() != 0:
        raise SystemExit(f"{' '.join(args[-6:])} failed: {p.stderr.read().strip()}")
    return seen, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1024, help="MiB")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--transports", default="tls,quic")
    parser.add_argument("--out", help="where get's copies land (Bob's land beside his shared folder)")
    args = parser.parse_args()
    prepare("bench/send_vs_get.py", {})
    with tempfile.TemporaryDirectory() as work:
        out = args.out or work
        alice, bob, getter = (os.path.join(work, n) for n in ("alice", "bob", "getter"))
        for d in (alice, bob):
            os.makedirs(os.path.join(d, ".p2pnode"))
        path = os.path.join(alice, "big.bin")
        with open(path, "wb") as f:
            for _ in range(args.size):
                f.write(os.urandom(1 << 20))
        disc = free_port(socket.SOCK_DGRAM)
        me = base_args(disc) + ["--state-dir", os.path.join(alice, ".p2pnode"), "--name", "alice"]
        alice_id = json.loads(subprocess.run(me + ["--json", "id"], capture_output=True, text=True, check=True).stdout)["id"]
        with open(os.path.join(bob, ".p2pnode", "trusted"), "w") as f:
            f.write(f"{alice_id} alice\n")
        landed = os.path.join(bob, "P2PDownloadFolder")
        bob_serve = serve(disc, bob, "bob")
        alice_serve = serve(disc, alice, "alice")
        print(f"{BIN}: a {args.size} MiB file over loopback, {args.runs} runs each; median (runs)")
        try:
            for transport in args.transports.split(","):
                sends, gets = [], []
                for _ in range(args.runs):
                    seen, whole = events(me + ["--transport", transport, "--json", "send", path, "--to", "bob"])
                    sends.append((seen["sent"] - seen["offered"], whole))
                    copy = os.path.join(landed, "big.bin")
                    assert filecmp.cmp(path, copy, shallow=False), "the sent copy differs"
                    os.remove(copy)
                    dest = os.path.join(out, "got")
                    get = base_args(disc) + ["--state-dir", getter, "--transport", transport, "--json", "get",
                                             "big.bin", "-o", dest, "--no-upload"]
                    seen, whole = events(get)
                    gets.append((seen["done"] - seen["started"], whole))
                    assert filecmp.cmp(path, os.path.join(dest, "big.bin"), shallow=False), "the copy differs"
                    os.remove(os.path.join(dest, "big.bin"))
                mib = args.size
                send_rate = mib / statistics.median(s for s, _ in sends)
                get_rate = mib / statistics.median(g for g, _ in gets)
                print(f"{transport}: send {send_rate:.0f} MiB/s ({', '.join(f'{s:.2f}' for s, _ in sends)} s; "
                      f"whole commands {', '.join(f'{w:.2f}' for _, w in sends)} s), "
                      f"get {get_rate:.0f} MiB/s ({', '.join(f'{g:.2f}' for g, _ in gets)} s; whole "
                      f"{', '.join(f'{w:.2f}' for _, w in gets)} s): send = {100 * send_rate / get_rate:.0f} % of get")
        finally:
            for p in (bob_serve, alice_serve):
                p.terminate()
                p.wait()


if __name__ == "__main__":
    main()
