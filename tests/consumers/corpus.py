"""The consumer tests' corpus and the path every message takes: SMTP into
hw-receive, the spool, hw-flush, a real consumer application.

Each message has its own Message-ID (<NAME@corpus.test>) so a consumer's
records can be matched to it and counted (nothing may arrive twice)."""
import base64
import hashlib
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "helpers"))
from hwtest import RECEIVE, base_env, dialogue, run_dialogue, split_received  # noqa: E402

SENDER = "alice@example.net"
RCPT = "bob@example.com"
BIG = 25 * 1024 * 1024 - 64 * 1024   # under SMTP_MAX_MESSAGE_BYTES with the Received: header


def _msg(name, headers, body):
    head = ("Message-ID: <%s@corpus.test>\r\nFrom: Alice <alice@example.net>\r\n"
            "To: Bob <bob@example.com>\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\n" % name).encode()
    return head + headers + b"\r\n" + body


def _attachment_message(name, subject, text, files):
    out = (b"Subject: " + subject + b"\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=\"corpus-b\"\r\n")
    body = (b"--corpus-b\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n" + text + b"\r\n")
    for fname, data, *encoded in files:
        b64 = encoded[0] if encoded else base64.encodebytes(data).replace(b"\n", b"\r\n")
        body += (b"--corpus-b\r\nContent-Type: application/octet-stream\r\n"
                 b"Content-Disposition: attachment; filename=\"" + fname.encode() + b"\"\r\n"
                 b"Content-Transfer-Encoding: base64\r\n\r\n" + b64)
    body += b"--corpus-b--\r\n"
    return _msg(name, out, body)


def corpus(big=True):
    """[(name, message bytes, recipients, attachments as [filename, size, sha256])]."""
    rnd = random.Random(14)
    out = []
    out.append(("ascii", _msg("ascii", b"Subject: plain ASCII\r\n", b"Hello.\r\n.leading dot\r\n"), [RCPT], []))
    out.append(("utf8", _msg("utf8", b"Subject: =?UTF-8?Q?caf=C3=A9_cr=C3=A8me?=\r\nMIME-Version: 1.0\r\n"
                             b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n",
                             "8-bit UTF-8: caf\u00e9, \u20ac, \u65e5\u672c\r\n".encode() * 50), [RCPT], []))
    out.append(("latin1", _msg("latin1", b"Subject: =?ISO-8859-1?Q?Gr=FC=DFe?=\r\nMIME-Version: 1.0\r\n"
                               b"Content-Type: text/plain; charset=iso-8859-1\r\n"
                               b"Content-Transfer-Encoding: 8bit\r\n",
                               b"Latin-1, not UTF-8: caf\xe9, Gr\xfc\xdfe, \xff\xfe\r\n" * 20), [RCPT], []))
    long_line = "".join(rnd.choice("abcdefghij ") for _ in range(9000)).encode()
    out.append(("long-lines", _msg("long-lines", b"Subject: long lines\r\n",
                                   b"x" * 998 + b"\r\n" + long_line + b"\r\n"), [RCPT], []))
    files = [("report.pdf", rnd.randbytes(150000)),
             ("caf\u00e9.bin", bytes(range(256)) * 40)]
    out.append(("attachments", _attachment_message("attachments", b"two attachments",
                                                   "see the files: \u00e9t\u00e9".encode(), files),
                [RCPT], [[f, len(d), hashlib.sha256(d).hexdigest()] for f, d in files]))
    many = ["user%03d@example.com" % i for i in range(100)]
    out.append(("many-rcpts", _msg("many-rcpts", b"Subject: many recipients\r\n", b"To all.\r\n"), many, []))
    if big:
        text = "big: \u00e9\u20ac ".encode() * 20000
        # base64 with CRLF every 76 characters: 78 bytes for each 57. A
        # random piece of 57 * 1150 bytes, repeated, is encoded once.
        piece = rnd.randbytes(57 * 1150)
        n = (BIG - len(text) - 4096) * 57 // 78 // len(piece)
        blob = piece * n
        files = [("big.bin", blob, base64.encodebytes(piece).replace(b"\n", b"\r\n") * n)]
        out.append(("big", _attachment_message("big", b"a 25 MiB message", text, files),
                    [RCPT], [["big.bin", len(blob), hashlib.sha256(blob).hexdigest()]]))
    return out


def receive_all(spool_root, messages):
    """Each message through hw-receive (SMTP on a pipe) into the spool; the
    stored messages by name (the Received: header included)."""
    stored = {}
    for name, msg, rcpts, _ in messages:
        before = set(os.listdir(os.path.join(spool_root, "pending"))) \
            if os.path.isdir(os.path.join(spool_root, "pending")) else set()
        out, err, status = run_dialogue(RECEIVE, base_env(spool_root, SPOOL_MIN_FREE_BYTES=0),
                                        dialogue([msg], SENDER, rcpts), 120)
        if b"250 2.0.0" not in out.split(b"354 ", 1)[-1]:
            raise RuntimeError("hw-receive did not take %s: %r %s" % (name, out[-300:], err[-300:]))
        new = set(os.listdir(os.path.join(spool_root, "pending"))) - before
        (qid,) = new
        with open(os.path.join(spool_root, "pending", qid), "rb") as f:
            item = f.read().split(b"\n\n", 1)[1]
        m, original = split_received(item)
        if m is None or original != msg:
            raise RuntimeError("%s was not stored as sent" % name)
        stored[name] = item
    return stored


def wait_records(store, count, timeout=60):
    """The consumer's records once count of them exist (or the timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = [n for n in os.listdir(store) if n.endswith(".json")]
        if len(names) >= count:
            break
        time.sleep(0.1)
    return sorted(n for n in os.listdir(store) if n.endswith(".json"))


def start_server(argv, port_file, env=None, timeout=60):
    """A consumer application, and its port once it listens."""
    log = open(port_file + ".log", "wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(port_file):
            with open(port_file) as f:
                return proc, int(f.read())
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    with open(port_file + ".log", "rb") as f:
        raise RuntimeError("the consumer did not start: %s" % f.read()[-2000:].decode("utf-8", "replace"))


def python_with(module):
    """A Python that imports module: this one, or Debian's (the packages
    of python3-* live in its dist-packages); None when neither does."""
    for exe in (sys.executable, "/usr/bin/python3"):
        if os.path.exists(exe) and subprocess.run([exe, "-c", "import " + module],
                                                  stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL).returncode == 0:
            return exe
    return None


def copy_spool(src_root, dst_root):
    """The items of one spool's pending/ into another's (same ids)."""
    os.makedirs(os.path.join(dst_root, "pending"), mode=0o700, exist_ok=True)
    for name in os.listdir(os.path.join(src_root, "pending")):
        with open(os.path.join(src_root, "pending", name), "rb") as f:
            data = f.read()
        fd = os.open(os.path.join(dst_root, "pending", name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
