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
  with HW_RECEIVE_SHAPE=listen, sessions of hw-receive --listen (below).

- hw-receive in either shape (HW_RECEIVE_SHAPE): start_session() and
  run_dialogue(); see the section below for what each shape is.
- hw-receive sessions: a Session is the real hw-receive on one end of a
  socketpair (fd 0 and 1, as systemd's Accept=yes gives it a socket), or
  the child hw-receive --listen forks for one connection, with the spool in
  a temporary directory (TempDir) and a clean environment (base_env), and
  the spool's items read back (read_item, spool_names).

Everything lives in temporary directories and every wait is bounded, so a
hung or silent server fails a check instead of hanging make check."""
import atexit
import base64
import calendar
import fcntl
import hashlib
import hmac
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from webhook import Route, Thread as DecisionServer  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("top_builddir") or os.path.abspath(os.path.join(HERE, "..", ".."))
SRC = os.environ.get("top_srcdir") or os.path.abspath(os.path.join(HERE, "..", ".."))
FLUSH = os.path.join(BUILD, "flush", "hw-flush")
RECEIVE = os.path.join(BUILD, "receive", "hw-receive")
ENQUEUE = os.path.join(BUILD, "tests", "helpers", "hw-test-enqueue")
MODULE_DIR = os.environ.get("HW_MODULE_DIR") or os.path.join(BUILD, "receive", ".libs")
WEBHOOK = os.path.join(HERE, "webhook.py")
HOSTNAME = "mx.test"
QID_RE = r"[0-9]{16}-[0-9a-f]{16}"
SPOOL_DIRS = ("tmp", "pending", "processing", "deferred", "dead")


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
        # No sender authentication, so no DNS: the tests of it
        # (tests/auth/) turn it on against a DNS server of their own.
        "AUTH_CHECKS": "off",
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


def dialogue(messages, sender="alice@example.net", rcpts=("bob@example.com", "carol@example.com"),
             bdat=False):
    out = b"EHLO client.test\r\n"
    for msg in messages:
        out += b"MAIL FROM:<" + sender.encode() + b">\r\n"
        for r in rcpts:
            out += b"RCPT TO:<" + r.encode() + b">\r\n"
        if bdat:
            # RFC 3030: one chunk, exactly the message's bytes.
            out += b"BDAT %d LAST\r\n" % len(msg) + msg
            continue
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
            limit=30, remote="192.0.2.7", script=None, extra_env=None, bdat=False):
    """One session of hw-receive asking the decision server at url: the
    client sends dialogue(messages, sender, bdat), or script (bytes) when
    given, all at once; extra_env adds settings."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HW_ALLOW_ROOT": "1",
        # No sender authentication, so no DNS: the tests of it
        # (tests/auth/) turn it on against a DNS server of their own.
        "AUTH_CHECKS": "off",
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
    env.update(extra_env or {})
    start = time.monotonic()
    out, stderr, _ = run_dialogue(RECEIVE, env,
                                  script if script is not None else dialogue(messages, sender, bdat=bdat),
                                  limit)
    elapsed = time.monotonic() - start
    replies = out.decode("ascii", "replace").split("\r\n")
    if replies and replies[-1] == "":
        replies.pop()
    return Run(replies, stderr, spool, elapsed)


# --- hw-receive in either shape ----------------------------------------------
# How a test starts hw-receive for one session, in either shape.
#
# HW_RECEIVE_SHAPE chooses:
#   inetd   (the default) hw-receive on one end of a socketpair, as systemd's
#           Accept=yes hands it a connection;
#   listen  hw-receive --listen on a listening Unix socket of its own
#           (LISTEN_FDS=1, as Accept=no hands it one); the test connects once
#           and the session is the child the listener forks for it.
#
# start_session() returns (socket, process). In the listen shape the process
# stands for the session: kill() and send_signal() reach the forked child,
# and wait() stops the listener with SIGTERM (a graceful stop, which lets the
# session end on its own) and returns the session's exit status as the
# listener reports it. Both shapes run the same session code; the tests
# check the same things of both.
SHAPE = os.environ.get("HW_RECEIVE_SHAPE", "inetd")
if SHAPE not in ("inetd", "listen"):
    raise SystemExit("HW_RECEIVE_SHAPE=%s: want inetd or listen" % SHAPE)
if SHAPE == "listen":
    print("note: sessions are children of hw-receive --listen (HW_RECEIVE_SHAPE=listen)")

# The listener's line for a session that did not exit 0 (receive/listen.c).
SESSION_END_RE = re.compile(rb"session [0-9]+ with \S+ (?:exited with status ([0-9]+)|killed by signal ([0-9]+))")


def listen_fds(socks):
    """Copies of the sockets' fds above 9, where the redirections of
    listen_argv cannot meet fds 3, 4, ...; the caller closes them."""
    return [fcntl.fcntl(s.fileno(), fcntl.F_DUPFD_CLOEXEC, 10) for s in socks]


def listen_argv(receive, fds, argv=()):
    """hw-receive --listen with fds (from listen_fds) as its fds 3, 4, ...
    LISTEN_PID must be its own pid: a shell sets it and execs (bash, for
    redirections of fds above 9)."""
    moves = " ".join("%d<&%d %d<&-" % (3 + i, fd, fd) for i, fd in enumerate(fds))
    script = 'export LISTEN_PID=$$ LISTEN_FDS=%d; exec "$0" "$@" %s' % (len(fds), moves)
    return ["bash", "-c", script, receive, "--listen"] + list(argv)


def _children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        return []


def _comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def listener_processes(root):
    """(listener pid, [session pids]) under root (the listener itself, or
    a wrapper such as strace around it); the sessions are the listener's
    children, forked without exec and so named as it is."""
    todo = [root]
    while todo:
        pid = todo.pop()
        if _comm(pid) == "hw-receive":
            return pid, [c for c in _children(pid) if _comm(c) == "hw-receive"]
        todo += _children(pid)
    return None, []


class ListenSession:
    """The session child of a one-connection hw-receive --listen."""

    def __init__(self, receive, env, argv, stderr_path, wrap, client, lsock=None, timeout=10.0):
        self.dir = tempfile.mkdtemp(prefix="hw-listen-")
        self.log_path = stderr_path or os.path.join(self.dir, "stderr")
        if lsock is None:
            lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            lsock.bind(os.path.join(self.dir, "smtp.sock"))
            lsock.listen(16)
        addr = lsock.getsockname()
        fds = listen_fds([lsock])
        with open(self.log_path, "wb") as err:
            self.listener = subprocess.Popen(list(wrap) + listen_argv(receive, fds, argv),
                                             stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                             env=env, pass_fds=fds)
        # Only the listener holds the socket now: when it stops accepting,
        # a client is refused instead of waiting in the backlog.
        os.close(fds[0])
        lsock.close()
        self.returncode = None
        self.pid = None
        self.lpid = None
        client.connect(addr)
        deadline = time.monotonic() + timeout
        poller = select.poll()
        poller.register(client, select.POLLRDHUP)
        # The session's pid, once the listener forked it; a session that
        # ended at once (it closed the connection) has none to find.
        while time.monotonic() < deadline and self.listener.poll() is None:
            lpid, sessions = listener_processes(self.listener.pid)
            self.lpid = lpid or self.lpid
            if sessions:
                self.pid = sessions[0]
                break
            if poller.poll(0):
                break
            time.sleep(0.002)

    def send_signal(self, sig):
        if self.pid is not None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def poll(self):
        if self.returncode is None and self.listener.poll() is not None:
            self.returncode = self._status()
        return self.returncode

    def _status(self):
        if self.listener.returncode != 0:
            return self.listener.returncode
        try:
            with open(self.log_path, "rb") as f:
                m = SESSION_END_RE.search(f.read())
        except OSError:
            m = None
        if not m:
            return 0
        return int(m.group(1)) if m.group(1) else -int(m.group(2))

    def wait(self, timeout=None):
        if self.listener.poll() is None:
            try:
                os.kill(self.lpid or self.listener.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        self.listener.wait(timeout)
        return self.poll()

    def close(self):
        """Everything ends: the session, then the listener."""
        self.kill()
        try:
            self.wait(10)
        except subprocess.TimeoutExpired:
            self.listener.kill()
            self.listener.wait()
        if self.log_path.startswith(self.dir):
            try:
                os.unlink(self.log_path)
            except OSError:
                pass
        for name in ("smtp.sock",):
            try:
                os.unlink(os.path.join(self.dir, name))
            except OSError:
                pass
        try:
            os.rmdir(self.dir)
        except OSError:
            pass


def _tcp_listener():
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    return lsock


def start_session(receive, env, argv=(), stderr_path=None, wrap=(), tcp=False):
    """(the client's socket, the session's process) for one session; with
    tcp, over a TCP connection on 127.0.0.1 instead of a Unix socket."""
    if SHAPE == "listen":
        family = socket.AF_INET if tcp else socket.AF_UNIX
        client = socket.socket(family, socket.SOCK_STREAM)
        return client, ListenSession(receive, env, argv, stderr_path, wrap, client,
                                     lsock=_tcp_listener() if tcp else None)
    if tcp:
        with _tcp_listener() as lsock:
            ours = socket.create_connection(lsock.getsockname(), timeout=10)
            theirs, _ = lsock.accept()
    else:
        ours, theirs = socket.socketpair()
    err = open(stderr_path, "wb") if stderr_path else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(list(wrap) + [receive] + list(argv), stdin=theirs, stdout=theirs,
                                stderr=err, env=env, close_fds=True)
    finally:
        theirs.close()
        if stderr_path:
            err.close()
    return ours, proc


def run_dialogue(receive, env, data, timeout):
    """One whole session with data as all the client says: (what the server
    wrote, its stderr as text, the exit status). In the inetd shape over
    pipes, as a test would run hw-receive by hand."""
    if SHAPE != "listen":
        p = subprocess.run([receive], input=data, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
        return p.stdout, p.stderr.decode("utf-8", "replace"), p.returncode
    err = tempfile.NamedTemporaryFile(prefix="hw-listen-", suffix=".stderr", delete=False)
    err.close()
    sock, proc = start_session(receive, env, stderr_path=err.name)
    out = b""
    try:
        deadline = time.monotonic() + timeout
        sock.settimeout(timeout)
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
        status = proc.wait(max(deadline - time.monotonic(), 1))
        with open(err.name, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    finally:
        proc.close()
        sock.close()
        os.unlink(err.name)
    return out, text, status


# --- hw-receive sessions and the spool they write -------------------------
def base_env(spool, **extra):
    """The environment of one hw-receive: nothing inherited but PATH and
    the sanitizer options."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HW_ALLOW_ROOT": "1",
        # No sender authentication, so no DNS: the tests of it
        # (tests/auth/) turn it on against a DNS server of their own.
        "AUTH_CHECKS": "off",
        "SPOOL_DIR": spool,
        "SMTP_HOSTNAME": HOSTNAME,
        "SPOOL_MIN_FREE_BYTES": "4096",
        "HW_MODULE_DIR": os.environ.get("HW_MODULE_DIR") or os.path.join(BUILD, "receive", ".libs"),
    }
    env.update(sanitizer_env())
    env.update({k: str(v) for k, v in extra.items()})
    return env


class TempDir:
    """A temporary directory removed on exit, whatever happened."""

    def __init__(self, prefix="hw-receive-test-"):
        self.path = tempfile.mkdtemp(prefix=prefix)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)
        return False

    def spool(self, name="spool"):
        path = os.path.join(self.path, name)
        os.makedirs(path, exist_ok=True)
        return path


class Session:
    """hw-receive on a socketpair. Replies are read line by line with a
    deadline; what the server writes while we send is kept, so a large
    pipelined write cannot deadlock against unread replies."""

    def __init__(self, env, argv=(), stderr_path=None, wrap=()):
        self.stderr_path = stderr_path
        # LeakSanitizer stops the world with ptrace, which a process that
        # strace already traces cannot give it: it would die at exit.
        if wrap and os.path.basename(wrap[0]) == "strace":
            env = dict(env, **sanitizer_env(leaks=False))
        self.sock, self.proc = start_session(RECEIVE, env, argv, stderr_path, wrap)
        self.sock.setblocking(False)
        self.inbuf = b""
        self.eof = False
        self.write_closed = False

    def _pump(self, timeout):
        r, _, _ = select.select([self.sock], [], [], max(timeout, 0))
        if r:
            self._recv()

    def _recv(self):
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except ConnectionResetError:
            data = b""
        if data:
            self.inbuf += data
        else:
            self.eof = True

    def send(self, data, timeout=5.0):
        """One write: all of data goes out before any reply is awaited."""
        deadline = time.monotonic() + timeout
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("send timed out")
            r, w, _ = select.select([self.sock], [self.sock], [], left)
            if r:
                self._recv()
            if w:
                try:
                    n = self.sock.send(view)
                except (BlockingIOError, InterruptedError):
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    raise EOFError("server closed while we were sending")
                view = view[n:]

    def shutdown_write(self):
        if not self.write_closed:
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            self.write_closed = True

    def read_line(self, timeout=5.0):
        """The next reply line with its line ending, b"" at EOF, None on
        timeout."""
        deadline = time.monotonic() + timeout
        while True:
            i = self.inbuf.find(b"\n")
            if i >= 0:
                line, self.inbuf = self.inbuf[:i + 1], self.inbuf[i + 1:]
                return line
            if self.eof:
                line, self.inbuf = self.inbuf, b""
                return line
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._pump(left)

    def read_reply(self, timeout=5.0):
        """A whole (possibly multi-line) reply as a list of str lines."""
        lines = []
        while True:
            line = self.read_line(timeout)
            if not line:
                return lines
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            lines.append(text)
            if len(text) < 4 or text[3] != "-":
                return lines

    def wait_eof(self, timeout=5.0):
        """True when the server closed the connection within timeout; what
        it wrote before that is returned in self.inbuf."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._pump(left)
        return True

    def wait(self, timeout=5.0):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def close(self):
        self.kill()
        if hasattr(self.proc, "close"):
            self.proc.close()
        self.sock.close()

    def stderr(self):
        if not self.stderr_path:
            return ""
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


ENVELOPE_KEYS = ("id", "received", "remote-ip", "remote-port", "helo", "tls", "sender", "rcpt")


class Item:
    """A spool item: envelope fields and the message bytes."""

    def __init__(self, fields, rcpts, message):
        self.fields = fields
        self.rcpts = rcpts
        self.message = message

    def lines(self):
        out = []
        for k in ENVELOPE_KEYS:
            if k == "rcpt":
                out += ["rcpt " + r for r in self.rcpts]
            elif k in self.fields:
                out.append(k + " " + self.fields[k])
        return out


def parse_item(data, name=None):
    """Parses a spool item strictly (the format at the top of lib/spool.h);
    raises ValueError naming what is wrong."""
    end = data.find(b"\n\n")
    if end < 0:
        raise ValueError("no end of envelope")
    head, message = data[:end + 1], data[end + 2:]
    lines = head.decode("utf-8").split("\n")[:-1]
    if not lines or lines[0] != "hw-spool 1":
        raise ValueError("first line is not 'hw-spool 1'")
    fields, rcpts = {}, []
    for line in lines[1:]:
        key, sep, value = line.partition(" ")
        if not sep or key not in ENVELOPE_KEYS:
            raise ValueError("bad envelope line %r" % line)
        if "\r" in value or "\0" in value:
            raise ValueError("control character in envelope line %r" % line)
        if key == "rcpt":
            rcpts.append(value)
        elif key in fields:
            raise ValueError("duplicate envelope key %r" % key)
        else:
            fields[key] = value
    for key in ENVELOPE_KEYS[:-1]:
        if key not in fields:
            raise ValueError("envelope lacks %r" % key)
    if not re.fullmatch(QID_RE, fields["id"]):
        raise ValueError("bad id %r" % fields["id"])
    if name is not None and fields["id"] != name:
        raise ValueError("id %r is not the file name %r" % (fields["id"], name))
    if not re.fullmatch(r"[0-9]+", fields["received"]) or not re.fullmatch(r"[0-9]+", fields["remote-port"]):
        raise ValueError("bad received or remote-port value")
    if not rcpts:
        raise ValueError("no recipients")
    return Item(fields, rcpts, message)


def read_item(spool, dirname, name):
    with open(os.path.join(spool, dirname, name), "rb") as f:
        return parse_item(f.read(), name)


def spool_names(spool, dirname):
    try:
        return sorted(os.listdir(os.path.join(spool, dirname)))
    except FileNotFoundError:
        return []


RECEIVED_RE = re.compile(
    rb"Received: from (?P<helo>[\x21-\x7e]+) \(\[(?P<ip>[^\]\r\n]+)\]\)\r\n"
    rb"\tby (?P<by>[^ \r\n]+) \(hw-webhook\) with (?P<with>[A-Z0-9]+) id (?P<id>" + QID_RE.encode() + rb")"
    rb"(?:\r\n\t\((?P<tls>[^)\r\n]*)\))?"
    rb"(?:\r\n\tfor <(?P<for>[^>\r\n]*)>)?;\r\n"
    rb"\t(?P<date>(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
    rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
    rb"[0-9]{2}:[0-9]{2}:[0-9]{2} \+0000)\r\n")


def split_received(message):
    """(match of our Received: header, the message as the client sent it),
    or (None, message) when the message does not start with one."""
    m = RECEIVED_RE.match(message)
    if not m:
        return None, message
    return m, message[m.end():]


def received_problems(item, qid):
    """What is wrong with the Received: header we prepend, as a list."""
    m, _ = split_received(item.message)
    if not m:
        return ["message does not start with a well-formed Received: header: %r" % item.message[:200]]
    problems = []
    g = {k: (v.decode("utf-8", "replace") if v is not None else None) for k, v in m.groupdict().items()}
    if g["id"] != qid:
        problems.append("Received id %s is not the queue id %s" % (g["id"], qid))
    if g["by"] != HOSTNAME:
        problems.append("Received by %s, not %s" % (g["by"], HOSTNAME))
    if g["ip"] != item.fields["remote-ip"]:
        problems.append("Received IP %s is not the envelope's %s" % (g["ip"], item.fields["remote-ip"]))
    helo = item.fields["helo"] or "unknown"
    if g["helo"] != helo:
        problems.append("Received from %s is not the HELO %s" % (g["helo"], helo))
    if len(item.rcpts) == 1 and g["for"] != item.rcpts[0]:
        problems.append("Received for <%s> is not the one recipient %s" % (g["for"], item.rcpts[0]))
    if len(item.rcpts) > 1 and g["for"] is not None:
        problems.append("Received names a recipient of a message with several")
    try:
        t = calendar.timegm(time.strptime(g["date"], "%a, %d %b %Y %H:%M:%S +0000"))
        if abs(t - int(item.fields["received"]) / 1000) > 2:
            problems.append("Received date %s is not the envelope's time" % g["date"])
    except ValueError:
        problems.append("Received date %r does not parse" % g["date"])
    return problems


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A port that was free a moment ago (bind to 0, read it, close)."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]
