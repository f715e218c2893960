"""Shared pieces of the decision API tests: the test webhook
(tests/helpers/webhook.py) as the decision server, in a thread of the test,
and hw-receive runs over pipes with the spool in a temporary directory and a
clean environment. Every wait is bounded."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("top_builddir") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RECEIVE = os.path.join(BUILD, "receive", "hw-receive")
MODULE_DIR = os.environ.get("HW_MODULE_DIR") or os.path.join(BUILD, "receive", ".libs")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "helpers"))
from hwcheck import FAILURES, check, finish, sanitizer_env, sanitizer_new_reports, skip  # noqa: E402,F401
from webhook import Route, Thread as DecisionServer  # noqa: E402,F401


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
    p = subprocess.run([RECEIVE], input=dialogue(messages, sender), env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=limit)
    elapsed = time.monotonic() - start
    replies = p.stdout.decode("ascii", "replace").split("\r\n")
    if replies and replies[-1] == "":
        replies.pop()
    return Run(replies, p.stderr.decode("utf-8", "replace"), spool, elapsed)
