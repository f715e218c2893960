"""Shared pieces of the hw-flush integration tests: a temporary spool, the
recording webhook (tests/helpers/webhook.py), hw-test-enqueue and hw-flush
runs with a clean environment. Everything lives in one temporary directory
and every wait is bounded."""
import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

BUILD = os.environ.get("top_builddir") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SRC = os.environ.get("top_srcdir") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FLUSH = os.path.join(BUILD, "flush", "hw-flush")
ENQUEUE = os.path.join(BUILD, "tests", "helpers", "hw-test-enqueue")
WEBHOOK = os.path.join(SRC, "tests", "helpers", "webhook.py")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "helpers"))
from hwcheck import FAILURES, check, finish, sanitizer_env, sanitizer_new_reports, skip  # noqa: E402,F401


class Webhook:
    def __init__(self, root, name="hook", plan=None, cert=None, key=None):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir)
        self.log = os.path.join(self.dir, "requests.jsonl")
        self.plan_path = os.path.join(self.dir, "plan.json")
        self.set_plan(plan or {})
        port_file = os.path.join(self.dir, "port")
        argv = [sys.executable, WEBHOOK, "--port-file", port_file, "--log", self.log,
                "--plan", self.plan_path]
        if cert:
            argv += ["--cert", cert, "--key", key]
        self.proc = subprocess.Popen(argv)
        for _ in range(200):
            if os.path.exists(port_file):
                break
            time.sleep(0.025)
        with open(port_file) as f:
            self.port = int(f.read())
        scheme = "https" if cert else "http"
        self.url = "%s://127.0.0.1:%d" % (scheme, self.port)

    def set_plan(self, plan):
        tmp = self.plan_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(plan, f)
        os.rename(tmp, self.plan_path)

    def requests(self):
        try:
            with open(self.log) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Spool:
    def __init__(self, root):
        self.root = os.path.join(root, "spool")
        os.makedirs(self.root, mode=0o700)

    def enqueue(self, message, sender="alice@example.net", rcpts=("bob@example.com",), count=1):
        out = subprocess.run([ENQUEUE, "-n", str(count), self.root, sender] + list(rcpts),
                             input=message, stdout=subprocess.PIPE, check=True, timeout=60,
                             env=dict(os.environ, **sanitizer_env()))
        ids = out.stdout.decode().split()
        return ids[0] if count == 1 else ids

    def names(self, state):
        try:
            return sorted(os.listdir(os.path.join(self.root, state)))
        except FileNotFoundError:
            return []

    def ids(self, state):
        return sorted({n[:33] for n in self.names(state) if not n.endswith(".reason")})

    def read_item(self, state, name):
        with open(os.path.join(self.root, state, name), "rb") as f:
            return f.read()


def flush_env(spool, url, **extra):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HW_ALLOW_ROOT": "1",
        "SPOOL_DIR": spool.root,
        "WEBHOOK_URL": url,
        # Generous: a loaded machine (or a sanitizer build) can take seconds
        # over a 1 MiB POST. Tests of the timeout itself set their own.
        "WEBHOOK_TIMEOUT_MS": "30000",
        # --check-config loads hw-receive's modules from the build tree.
        "HW_MODULE_DIR": os.environ.get("HW_MODULE_DIR", ""),
    }
    env.update(sanitizer_env())
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_flush(spool, url, args=(), timeout=60, **extra):
    return subprocess.run([FLUSH] + list(args), env=flush_env(spool, url, **extra),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)


def body_mime(record):
    return base64.b64decode(record["fields"]["body-mime"])


def signature_ok(record, key):
    f = record["fields"]
    want = hmac.new(key.encode(), (f["timestamp"] + f["token"]).encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, f.get("signature", ""))


def message_of(item_bytes):
    """The message part of a spool item: everything after the envelope."""
    return item_bytes.split(b"\n\n", 1)[1]


class TempRoot:
    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="hw-flush-test-")
        self.hooks = []
        return self

    def webhook(self, *args, **kw):
        h = Webhook(self.path, *args, **kw)
        self.hooks.append(h)
        return h

    def __exit__(self, *exc):
        for h in self.hooks:
            try:
                h.stop()
            except Exception:
                h.proc.kill()
        shutil.rmtree(self.path, ignore_errors=True)
