"""Shared pieces of the hw-receive integration tests.

A session is the real hw-receive binary on one end of a socketpair (fd 0
and 1, as systemd's Accept=yes gives it a socket), or with
HW_RECEIVE_SHAPE=listen the child hw-receive --listen forks for one
connection (tests/helpers/hwshape.py), with the spool in a temporary
directory and a clean environment. Every wait has a deadline,
so a hung or silent server fails a check instead of hanging make check.
"""
import calendar
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("top_builddir") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SRC = os.environ.get("top_srcdir") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
RECEIVE = os.path.join(BUILD, "receive", "hw-receive")
HOSTNAME = "mx.test"
QID_RE = r"[0-9]{16}-[0-9a-f]{16}"
SPOOL_DIRS = ("tmp", "pending", "processing", "deferred", "dead")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "helpers"))
from hwcheck import FAILURES, check, finish, sanitizer_env, sanitizer_new_reports, skip  # noqa: E402,F401
from hwshape import SHAPE, start_session  # noqa: E402,F401

def base_env(spool, **extra):
    """The environment of one hw-receive: nothing inherited but PATH and
    the sanitizer options."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HW_ALLOW_ROOT": "1",
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
