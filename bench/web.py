#!/usr/bin/env python3
"""The web page and the guest page, measured over loopback (release build).

1. A guest's download of a --size MiB file with curl (the PIN entered first, the file fetched whole),
   against `get --transport tcp` of the same file from the same serve, --runs times each, alternating:
   curl's whole command against get's transfer (`started` to `done`) and its whole command.
2. `serve`'s resident memory: idle with no page open, then the peak while the page is open in 3
   headless Chromium windows, each showing a download it started (files of --fetch-size MiB from another
   node capped at --rate MiB/s, so the downloads last).
3. `serve`'s CPU while those 3 pages stay open and nothing happens (--idle seconds), against the same
   time with no page open.

usage: bench/web.py [--size 1024] [--runs 3] [--fetch-size 256] [--rate 40] [--idle 30]
"""
import argparse, filecmp, http.cookiejar, json, os, shutil, socket, statistics, subprocess, tempfile, threading, time
import urllib.request

from benchlib import BIN, free_port, own_folders, prepare
from loopback import base_args, cpu_seconds


class Serve:
    """A `serve --json`, its events kept as they come."""

    def __init__(self, disc, d, name, *extra):
        args = base_args(disc) + ["--dir", d, *own_folders(d), "--name", name, "--port", "0", "--json", "serve", *extra]
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.events, self.lock = {}, threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        self.wait("ready", 600)

    def _read(self):
        for line in self.p.stdout:
            event = json.loads(line)
            with self.lock:
                self.events.setdefault(event["event"], event)

    def wait(self, kind, within=30):
        deadline = time.time() + within
        while time.time() < deadline:
            with self.lock:
                if kind in self.events:
                    return self.events[kind]
            time.sleep(0.05)
        raise SystemExit(f"serve printed no {kind}")

    def rss_mib(self):
        for line in open(f"/proc/{self.p.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

    def stop(self):
        self.p.terminate()
        self.p.wait()


def random_file(path, mib):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))


def guest_against_get(work, disc, size, runs):
    d = os.path.join(work, "guesthost")
    path = os.path.join(d, "big.bin")
    random_file(path, size)
    host = Serve(disc, d, "host", "--guests", "--guest-address", "127.0.0.1:0", "--web", "off")
    try:
        guests = host.wait("guests")
        url = guests["urls"][0]
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        request = urllib.request.Request(url + "guest/pin", data=json.dumps({"pin": guests["pin"]}).encode(),
                                         headers={"content-type": "application/json"})
        opener.open(request).read()
        cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
        files = json.loads(opener.open(url + "guest/files").read())["files"]
        file_url = url + "guest/files/" + files[0]["id"]
        curls, gets = [], []
        for _ in range(runs):
            out = os.path.join(work, "curl.bin")
            started = time.perf_counter()
            subprocess.run(["curl", "-sf", "-H", f"cookie: {cookie}", "-o", out, file_url], check=True)
            curls.append(time.perf_counter() - started)
            assert filecmp.cmp(path, out, shallow=False), "the guest's copy differs"
            os.remove(out)
            dest = os.path.join(work, "got")
            args = base_args(disc) + ["--state-dir", os.path.join(work, "getter"), "--transport", "tcp", "--json",
                                      "get", "big.bin", "-o", dest, "--no-upload"]
            started, seen = time.perf_counter(), {}
            p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            for line in p.stdout:
                seen.setdefault(json.loads(line)["event"], time.perf_counter())
            assert p.wait() == 0, "get failed"
            gets.append((seen["done"] - seen["started"], time.perf_counter() - started))
            assert filecmp.cmp(path, os.path.join(dest, "big.bin"), shallow=False), "get's copy differs"
            os.remove(os.path.join(dest, "big.bin"))
        median = lambda xs: statistics.median(list(xs))
        curl_rate, get_rate = size / median(curls), size / median(g for g, _ in gets)
        print(f"guest (curl) {curl_rate:.0f} MiB/s ({', '.join(f'{c:.2f}' for c in curls)} s), get --transport tcp "
              f"{get_rate:.0f} MiB/s ({', '.join(f'{g:.2f}' for g, _ in gets)} s; whole "
              f"{', '.join(f'{w:.2f}' for _, w in gets)} s): guest = {100 * curl_rate / get_rate:.0f} % of get")
    finally:
        host.stop()
        os.remove(path)


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,800"]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def pages_open(work, disc, fetch_size, rate, idle):
    from selenium.webdriver.common.by import By
    source = os.path.join(work, "source")
    for i in range(3):
        random_file(os.path.join(source, f"file{i}.bin"), fetch_size)
    sharer = Serve(disc, source, "sharer", "--max-upload-rate", f"{rate * 3}M", "--web", "off")
    viewer_dir = os.path.join(work, "viewer")
    os.makedirs(viewer_dir)
    viewer = Serve(disc, viewer_dir, "viewer", "--web", "127.0.0.1:0")
    drivers = []
    try:
        time.sleep(2)
        idle_rss = viewer.rss_mib()
        cpu = cpu_seconds(viewer.p.pid)
        time.sleep(idle)
        idle_cpu = (cpu_seconds(viewer.p.pid) - cpu) / idle
        page = viewer.wait("serving")["page"]
        for i in range(3):
            driver = browser()
            drivers.append(driver)
            driver.get(page)
            deadline = time.time() + 30
            while not [e for e in driver.find_elements(By.CSS_SELECTOR, ".file .name") if e.text == f"file{i}.bin"]:
                if time.time() > deadline:
                    raise SystemExit("the page showed no files")
                time.sleep(0.2)
            row = [e for e in driver.find_elements(By.CSS_SELECTOR, ".file") if f"file{i}.bin" in e.text][0]
            row.find_element(By.TAG_NAME, "button").click()
        peak, deadline = 0, time.time() + 600
        while time.time() < deadline:
            peak = max(peak, viewer.rss_mib())
            # Every page shows every fetch of the node: done once each shows all three done.
            done = all(len(d.find_elements(By.CSS_SELECTOR, ".run .badge.state-done")) == 3 for d in drivers)
            if done:
                break
            time.sleep(0.2)
        shown = [d.find_element(By.CSS_SELECTOR, ".run .summary").text for d in drivers]
        time.sleep(2)  # the last updates drawn
        cpu = cpu_seconds(viewer.p.pid)
        time.sleep(idle)
        open_cpu = (cpu_seconds(viewer.p.pid) - cpu) / idle
        print(f"serve RSS: {idle_rss:.1f} MiB idle with no page open; peak {peak:.1f} MiB with 3 pages open, each "
              f"showing a download of {fetch_size} MiB (+{peak - idle_rss:.1f} MiB); the pages said: {shown[0]!r}")
        print(f"serve CPU over {idle} s: {100 * idle_cpu:.2f} % of a core with no page open, "
              f"{100 * open_cpu:.2f} % with 3 pages open and nothing happening")
    finally:
        for driver in drivers:
            driver.quit()
        viewer.stop()
        sharer.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1024, help="MiB")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fetch-size", type=int, default=256, help="MiB")
    parser.add_argument("--rate", type=int, default=40, help="MiB/s per download")
    parser.add_argument("--idle", type=int, default=30, help="seconds")
    args = parser.parse_args()
    prepare("bench/web.py", {"curl": "curl", "chromium": "chromium", "chromedriver": "chromium-driver"})
    with tempfile.TemporaryDirectory() as work:
        disc = free_port(socket.SOCK_DGRAM)
        print(f"{BIN}: loopback, {os.cpu_count()} cores")
        guest_against_get(work, disc, args.size, args.runs)
        pages_open(work, free_port(socket.SOCK_DGRAM), args.fetch_size, args.rate, args.idle)


if __name__ == "__main__":
    main()
