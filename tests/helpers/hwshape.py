"""How a test starts hw-receive for one session, in either shape.

HW_RECEIVE_SHAPE chooses:
  inetd   (the default) hw-receive on one end of a socketpair, as systemd's
          Accept=yes hands it a connection;
  listen  hw-receive --listen on a listening Unix socket of its own
          (LISTEN_FDS=1, as Accept=no hands it one); the test connects once
          and the session is the child the listener forks for it.

start_session() returns (socket, process). In the listen shape the process
stands for the session: kill() and send_signal() reach the forked child,
and wait() stops the listener with SIGTERM (a graceful stop, which lets the
session end on its own) and returns the session's exit status as the
listener reports it. Both shapes run the same session code; the tests
check the same things of both.
"""
import fcntl
import os
import re
import select
import signal
import socket
import subprocess
import tempfile
import time

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
