"""Shared pieces of the decision API tests: a recording decision server on
127.0.0.1 (a thread of the test), and hw-receive runs over pipes with the
spool in a temporary directory and a clean environment (or, with
HW_RECEIVE_SHAPE=listen, sessions of hw-receive --listen; see
tests/helpers/hwshape.py). Every wait is bounded."""
import http.server
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

BUILD = os.environ.get("top_builddir") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RECEIVE = os.path.join(BUILD, "receive", "hw-receive")
MODULE_DIR = os.environ.get("HW_MODULE_DIR") or os.path.join(BUILD, "receive", ".libs")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "helpers"))
from hwcheck import FAILURES, check, finish, sanitizer_env, sanitizer_new_reports, skip  # noqa: E402,F401
from hwshape import run_dialogue  # noqa: E402


class Route:
    """What the server answers on one path."""

    def __init__(self, status=200, body=b'{"decision":"allow"}', headers=None, hang=False):
        self.status = status
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.headers = headers or {}
        self.hang = hang


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length) if length else b""
        self.server.requests.append({"path": self.path, "headers": dict(self.headers.items()),
                                     "body": body})
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        if route.hang:
            # Holds the connection without answering until the test ends.
            self.server.stop.wait(20)
            return
        self.send_response(route.status)
        self.send_header("Content-Type", "application/json")
        for k, v in route.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        self.wfile.write(route.body)


class DecisionServer:
    def __init__(self, routes):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.routes = routes
        self.httpd.requests = []
        self.httpd.stop = threading.Event()
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    @property
    def requests(self):
        return self.httpd.requests

    def close(self):
        self.httpd.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


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
