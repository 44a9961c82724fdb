"""What the bench scripts share: the release binary, free loopback ports, and the setup they check first."""
import json, os, shutil, socket, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# P2PNODE_BIN measures another build (an older commit's, for a side-by-side); it is used as it is.
BIN = os.environ.get("P2PNODE_BIN") or os.path.join(ROOT, "target", "release", "p2pnode")


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(script, tools):
    """Exits with one line naming what is missing of `tools` ({tool: package}), then builds p2pnode."""
    for tool, package in tools.items():
        if not shutil.which(tool):
            sys.exit(f"{script} needs {tool}: install {package} (apt-get install {package})")
    if not os.environ.get("P2PNODE_BIN"):
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "p2pnode"], cwd=ROOT, check=True)


def own_folders(d):
    """The state and downloads folders of a node that shares `d`: beside it, each node its own (one serve
    per state folder; the defaults are the user's, one for all)."""
    return ["--state-dir", os.path.join(d, ".p2pnode"), "--downloads", os.path.join(d, "P2PDownloadFolder")]


def until_ready(server):
    """Reads `serve --json`'s lines until `ready` (its files hashed and shared); returns its `serving` event."""
    serving = None
    for line in server.stdout:
        event = json.loads(line)
        serving = event if event["event"] == "serving" else serving
        if event["event"] == "ready":
            return serving
    sys.exit("serve exited before it was ready")
