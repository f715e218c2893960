"""The shared pieces of the Python integration tests, in one module.

- Checks and sanitizer reports: check() prints one line per check, finish()
  the closing "N passed, N failed" line and the exit status, skip() is
  Automake's SKIP. In sanitizer builds (ASan, LSan, UBSan) every program a
  test starts with sanitizer_env() writes its reports into one directory of
  the test, whatever becomes of its stderr and exit status; a report fails
  the check it turns up in, and finish() prints them all.
- hw-flush: a temporary spool filled by hw-test-enqueue, the recording test
  webhook (webhook.py beside this file) as a process, and hw-flush runs with
  a clean environment (TempRoot, Spool, run_flush).
- The decision API: the same webhook as the decision server in a thread of
  the test, and hw-receive runs over pipes with the spool in a temporary
  directory and a clean environment (DecisionServer, Spools, receive), or,
  with HW_RECEIVE_SHAPE=listen, sessions of hw-receive --listen (hwshape.py).

Everything lives in temporary directories and every wait is bounded."""
import atexit
import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from hwshape import run_dialogue  # noqa: E402
from webhook import Route, Thread as DecisionServer  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("top_builddir") or os.path.abspath(os.path.join(HERE, "..", ".."))
SRC = os.environ.get("top_srcdir") or os.path.abspath(os.path.join(HERE, "..", ".."))
FLUSH = os.path.join(BUILD, "flush", "hw-flush")
RECEIVE = os.path.join(BUILD, "receive", "hw-receive")
ENQUEUE = os.path.join(BUILD, "tests", "helpers", "hw-test-enqueue")
MODULE_DIR = os.environ.get("HW_MODULE_DIR") or os.path.join(BUILD, "receive", ".libs")
WEBHOOK = os.path.join(HERE, "webhook.py")


# --- checks and sanitizer reports ------------------------------------------
FAILURES = []
_passed = [0]
_reports = {"dir": None, "seen": set()}


def sanitizer_env(leaks=True):
    """The sanitizer options of a child: the caller's, then ours. Programs
    traced by strace need leaks=False: LeakSanitizer cannot work under
    ptrace."""
    if _reports["dir"] is None:
        _reports["dir"] = tempfile.mkdtemp(prefix="hw-sanitizer-")
        atexit.register(shutil.rmtree, _reports["dir"], True)
    log = "log_path=" + os.path.join(_reports["dir"], "report")
    ours = {
        "ASAN_OPTIONS": [log] + ([] if leaks else ["detect_leaks=0"]),
        "LSAN_OPTIONS": [log],
        "UBSAN_OPTIONS": [log, "print_stacktrace=1", "halt_on_error=1"],
    }
    return {k: ":".join(filter(None, [os.environ.get(k)] + v)) for k, v in ours.items()}


def sanitizer_new_reports():
    """Reports written since the last call."""
    if _reports["dir"] is None:
        return []
    new = sorted(set(os.listdir(_reports["dir"])) - _reports["seen"])
    _reports["seen"].update(new)
    return new


def check(cond, what):
    reports = sanitizer_new_reports()
    if reports:
        cond = False
        what += " (sanitizer report %s)" % ", ".join(reports)
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if cond:
        _passed[0] += 1
    else:
        FAILURES.append(what)
    return cond


def finish():
    check(True, "no sanitizer reports at the end")
    for name in sorted(_reports["seen"]):
        with open(os.path.join(_reports["dir"], name), errors="replace") as f:
            print("--- %s\n%s" % (name, f.read()), end="")
    print("%d passed, %d failed" % (_passed[0], len(FAILURES)))
    for what in FAILURES:
        print("  " + what)
    sys.exit(1 if FAILURES else 0)


def skip(why):
    """Automake's SKIP status."""
    print("SKIP " + why)
    sys.exit(77)


# --- hw-flush: the webhook as a process, the spool, hw-flush runs -------
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


# --- the decision API: hw-receive runs against the decision server --------
def refused_url():
    """A port bound but not listening: connecting is refused at once."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    return s, "http://127.0.0.1:%d/decide" % s.getsockname()[1]


MESSAGE = (b"From: =?UTF-8?B?SsO2cmc=?= <jorg@example.net>\r\n"
           b"To: bob@example.com\r\n"
           b"Subject: =?ISO-8859-1?Q?Gr=FC=DFe?= from\r\n the test\r\n"
           b"X-Eight-Bit: caf\xe9 au lait\r\n"
           b"Message-ID: <t1@example.net>\r\n"
           b"\r\n"
           b"Body with bad UTF-8: \xff\xfe and good: \xc3\xa9\r\n"
           b"\"quotes\" and \\backslash\\ and a tab\t.\r\n")


def dialogue(messages, sender="alice@example.net", rcpts=("bob@example.com", "carol@example.com")):
    out = b"EHLO client.test\r\n"
    for msg in messages:
        out += b"MAIL FROM:<" + sender.encode() + b">\r\n"
        for r in rcpts:
            out += b"RCPT TO:<" + r.encode() + b">\r\n"
        # Dot-stuffing is the client's job.
        stuffed = b"\r\n".join((b"." + l if l.startswith(b".") else l) for l in msg.split(b"\r\n"))
        out += b"DATA\r\n" + stuffed + (b"" if stuffed.endswith(b"\r\n") else b"\r\n") + b".\r\n"
    return out + b"QUIT\r\n"


class Run:
    def __init__(self, replies, stderr, spool, elapsed):
        self.replies = replies          # every reply line, CRLF removed
        self.stderr = stderr
        self.spool = spool
        self.elapsed = elapsed

    def data_replies(self):
        """The replies to the final dots, in order."""
        out = []
        for i, line in enumerate(self.replies):
            if line.startswith("354 ") and i + 1 < len(self.replies):
                out.append(self.replies[i + 1])
        return out

    def listing(self, d):
        return sorted(os.listdir(os.path.join(self.spool, d)))

    def pending_message(self, name):
        with open(os.path.join(self.spool, "pending", name), "rb") as f:
            data = f.read()
        return data.split(b"\n\n", 1)[1]


class Spools:
    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="hw-decision-test.")
        self.n = 0

    def new(self):
        self.n += 1
        d = os.path.join(self.root, "spool%d" % self.n)
        os.mkdir(d, 0o700)
        return d

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)


def receive(spool, url, messages, mode=None, token=None, timeout_ms=5000, sender="alice@example.net",
            limit=30, remote="192.0.2.7"):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HW_ALLOW_ROOT": "1",
        "HW_MODULE_DIR": MODULE_DIR,
        "SPOOL_DIR": spool,
        "SMTP_HOSTNAME": "mx.test",
        "SPOOL_MIN_FREE_BYTES": "0",
        "REMOTE_ADDR": remote,
        "REMOTE_PORT": "40000",
        "WEBHOOK_DECISION_URL": url,
        "WEBHOOK_TIMEOUT_MS": str(timeout_ms),
    }
    env.update(sanitizer_env())
    if mode:
        env["WEBHOOK_DECISION_PAYLOAD_MODE"] = mode
    if token:
        env["WEBHOOK_DECISION_TOKEN"] = token
    start = time.monotonic()
    out, stderr, _ = run_dialogue(RECEIVE, env, dialogue(messages, sender), limit)
    elapsed = time.monotonic() - start
    replies = out.decode("ascii", "replace").split("\r\n")
    if replies and replies[-1] == "":
        replies.pop()
    return Run(replies, stderr, spool, elapsed)
