#!/usr/bin/env python3
"""Peak RSS of one hw-receive session receiving one message of each size.

hw-receive runs on one end of a socketpair (as under Accept=yes); this
script is the client on the other end. The maxrss helper starts hw-receive
and reads ru_maxrss from wait4(2): started from Python directly, the child
would count Python's own pages from before its exec.

    rss.py HW_RECEIVE MAXRSS SPOOL_PARENT SIZE...

Prints one line per size: bytes, peak RSS in KiB, whether it was queued.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile

CHUNK = 256 * 1024
TIMEOUT_S = 60


def reply(sock, buf):
    """Reads one whole SMTP reply; returns (code, last line, rest)."""
    while True:
        while b"\n" not in buf:
            data = sock.recv(65536)
            if not data:
                raise RuntimeError("hw-receive closed the connection")
            buf += data
        line, buf = buf.split(b"\n", 1)
        if line[3:4] != b"-":
            return int(line[:3]), line.decode("ascii", "replace").strip(), buf


def message(size):
    """size bytes of a plain message in CRLF lines, no line starting with '.'."""
    head = (b"From: <bench@example.org>\r\nTo: <rcpt@example.com>\r\n"
            b"Subject: rss benchmark\r\n\r\n")
    line = b"x" * 998 + b"\r\n"
    body_len = size - len(head)
    full, rest = divmod(body_len, len(line))
    tail = b"y" * (rest - 2) + b"\r\n" if rest >= 2 else b""
    if 0 < rest < 2:
        raise ValueError("pick a size that ends on a line")
    return head, line, full, tail


def session(hw, maxrss, spool, size):
    env = dict(os.environ)
    env.update(SPOOL_DIR=spool, HW_ALLOW_ROOT="1", AUTH_CHECKS=env.get("AUTH_CHECKS", "off"),
               SMTP_MAX_MESSAGE_BYTES=str(size + 1024 * 1024))
    ours, theirs = socket.socketpair()
    ours.settimeout(TIMEOUT_S)
    result = os.path.join(spool, "maxrss.out")
    proc = subprocess.Popen([maxrss, "-o", result, hw], stdin=theirs, stdout=theirs,
                            stderr=subprocess.DEVNULL, env=env)
    theirs.close()
    buf = b""
    try:
        code, text, buf = reply(ours, buf)
        steps = [b"EHLO bench.example.org\r\n", b"MAIL FROM:<bench@example.org>\r\n",
                 b"RCPT TO:<rcpt@example.com>\r\n", b"DATA\r\n"]
        for cmd in steps:
            ours.sendall(cmd)
            code, text, buf = reply(ours, buf)
        if code != 354:
            raise RuntimeError("DATA: " + text)
        head, line, full, tail = message(size)
        ours.sendall(head)
        block = line * (CHUNK // len(line))
        per_block = CHUNK // len(line)
        sent = 0
        while sent + per_block <= full:
            ours.sendall(block)
            sent += per_block
        ours.sendall(line * (full - sent) + tail + b".\r\n")
        code, text, buf = reply(ours, buf)
        queued = code == 250
        ours.sendall(b"QUIT\r\n")
        reply(ours, buf)
    finally:
        ours.close()
    if proc.wait(timeout=TIMEOUT_S) != 0:
        raise RuntimeError("hw-receive exited with status %d" % proc.returncode)
    with open(result) as f:
        rss = int(f.read().strip().split("=")[1])
    return rss, queued, text


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    hw, maxrss, parent = sys.argv[1:4]
    failed = False
    for arg in sys.argv[4:]:
        size = int(arg)
        spool = tempfile.mkdtemp(prefix="hw-bench-rss.", dir=parent)
        try:
            rss, queued, text = session(hw, maxrss, spool, size)
        finally:
            shutil.rmtree(spool)
        print("message_bytes=%d peak_rss_kib=%d queued=%s" % (size, rss, "yes" if queued else "no"))
        if not queued:
            print("  reply: " + text)
            failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
