#!/usr/bin/env python3
"""The web page and the guest page in a real browser: headless Chromium driven over WebDriver.

Three nodes on loopback: bob shares a folder and a file named like markup, carol serves guests, alice's
page is opened. The page must show both peers and their files, the markup name as text, a folder
fetched to 100 % with its bytes checked; a guest on a 390x844 phone screen enters carol's PIN and
downloads a file. Screenshots go to $SCREENSHOTS. Run by tests/browser.rs; every wait is bounded.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

BIN = os.environ["P2PNODE_BIN"]
SHOTS = os.environ["SCREENSHOTS"]
WAIT = 20
XSS = "<img src=x onerror=alert(1)>.txt"


class Node:
    """One `p2pnode serve --json`, its events read as they come."""

    def __init__(self, root, name, port, *args):
        home = os.path.join(root, name)
        self.share, self.downloads = os.path.join(home, "share"), os.path.join(home, "downloads")
        os.makedirs(self.share)
        self.args, self.name, self.port, self.home = args, name, port, home
        self.events, self.lock = [], threading.Lock()

    def start(self):
        env = dict(os.environ, HOME=self.home, XDG_STATE_HOME=os.path.join(self.home, "state"),
                   XDG_DATA_HOME=os.path.join(self.home, "data"), XDG_CONFIG_HOME=os.path.join(self.home, "config"))
        command = [BIN, "--discovery-port", str(self.port), "--broadcast", "127.255.255.255", "--port", "0",
                   "--json", "--name", self.name, "--dir", self.share, "--downloads", self.downloads,
                   "--state-dir", os.path.join(self.home, "node"), "serve", *self.args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        self.event("ready")
        return self

    def _read(self):
        for line in self.process.stdout:
            with self.lock:
                self.events.append(json.loads(line))

    def event(self, kind):
        deadline = time.time() + WAIT
        while time.time() < deadline:
            with self.lock:
                for event in self.events:
                    if event["event"] == kind:
                        return event
            time.sleep(0.05)
        raise AssertionError(f"{self.name} printed no {kind} event")

    def stop(self):
        self.process.kill()
        self.process.wait()


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def write(path, size, seed):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    block = hashlib.sha256(str(seed).encode()).digest()
    with open(path, "wb") as f:
        f.write((block * (size // len(block) + 1))[:size])


def free_udp_port():
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browser(downloads):
    options = webdriver.ChromeOptions()
    for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,800", "--no-first-run", "--disable-extensions"]:
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": downloads,
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
    return driver


def until(driver, what, check):
    try:
        return WebDriverWait(driver, WAIT, poll_frequency=0.1).until(lambda d: check(d))
    except Exception as e:
        raise AssertionError(f"{what} within {WAIT} s") from e


def viewport(driver, width, height, mobile):
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})


def main():
    root = tempfile.mkdtemp(prefix="p2pnode-browser-")
    port = free_udp_port()
    bob = Node(root, "bob", port)
    carol = Node(root, "carol", port, "--guests", "--guest-address", "127.0.0.1:0")
    alice = Node(root, "alice", port, "--web", "127.0.0.1:0")
    write(os.path.join(bob.share, "album", "beach.jpg"), 3_000_000, 1)
    write(os.path.join(bob.share, "album", "2024", "hike.jpg"), 1_200_000, 2)
    write(os.path.join(bob.share, XSS), 100, 3)
    write(os.path.join(carol.share, "menu.pdf"), 700_000, 4)
    nodes, driver = [bob.start(), carol.start(), alice.start()], None
    received = os.path.join(root, "browser-downloads")
    os.makedirs(received)
    os.makedirs(SHOTS, exist_ok=True)
    try:
        driver = browser(received)
        viewport(driver, 1280, 800, False)
        driver.get(alice.event("serving")["page"])
        # The peers and their files, the markup name as text.
        until(driver, "both peers shown", lambda d: {"bob", "carol"} <= {e.text for e in d.find_elements(By.CSS_SELECTOR, "#peers strong")})
        until(driver, "the files shown", lambda d: XSS in [e.text for e in d.find_elements(By.CSS_SELECTOR, ".file .name")])
        names = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".file .name")]
        assert "menu.pdf" in names and "beach.jpg" in names, names
        assert driver.execute_script("return document.querySelectorAll('img').length") == 0, "markup from a name ran"
        # The folder fetched: the bar reaches 100 % and the bytes are the sharer's.
        folder = [s for s in driver.find_elements(By.CSS_SELECTOR, ".tree summary") if s.text.startswith("album/")][0]
        folder.find_element(By.TAG_NAME, "button").click()
        until(driver, "the fetch done", lambda d: d.find_elements(By.CSS_SELECTOR, ".run .badge.state-done"))
        summary = driver.find_element(By.CSS_SELECTOR, ".run .summary").text
        assert summary.startswith("100 %"), summary
        for part in [("album", "beach.jpg"), ("album", "2024", "hike.jpg")]:
            assert digest(os.path.join(alice.downloads, *part)) == digest(os.path.join(bob.share, *part)), part
        driver.save_screenshot(os.path.join(SHOTS, "page-1280x800.png"))
        viewport(driver, 390, 844, True)
        time.sleep(0.3)  # a layout pass at the new width before the picture
        driver.save_screenshot(os.path.join(SHOTS, "page-390x844.png"))
        # A guest on a phone: the PIN, then a download.
        guests = carol.event("guests")
        driver.get(guests["urls"][0])
        until(driver, "the PIN box", lambda d: d.find_element(By.ID, "pin").is_displayed())
        driver.find_element(By.ID, "pin").send_keys(guests["pin"])
        driver.find_element(By.CSS_SELECTOR, "#pin-form button").click()
        link = until(driver, "the guest's files", lambda d: d.find_elements(By.CSS_SELECTOR, "#files a"))[0]
        assert link.text == "menu.pdf", link.text
        driver.save_screenshot(os.path.join(SHOTS, "guest-390x844.png"))
        link.click()
        path = os.path.join(received, "menu.pdf")
        until(driver, "the guest's download", lambda d: os.path.exists(path) and not any(
            n.endswith(".crdownload") for n in os.listdir(received)))
        assert digest(path) == digest(os.path.join(carol.share, "menu.pdf")), "the guest's bytes"
        print("browser test passed; screenshots in", SHOTS)
    finally:
        if driver:
            driver.quit()
        for node in nodes:
            node.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
