#!/usr/bin/env python3
"""Black-box SMTP fuzzing of hw-receive.

Every session is a real hw-receive process on one end of a socketpair (fd 0
and 1, inetd style) with its own spool, fed a random or mutated dialogue:
binary garbage, NUL bytes, bare CR and LF, lines of up to 1 MB, pipelined
junk, valid transactions mixed with junk, dot-stuffing edge cases split at
read boundaries, BDAT chunks of random sizes, STARTTLS at odd moments (a certificate made by certtool at
run time), PROXY headers good, bad, truncated and oversized (with
SMTP_PROXY_TRUSTED set), mutations of the dialogues in tests/transcripts/,
and slow clients that stall or drip (with short deadlines).

The client reads everything the server writes until the server closes, so
the checks after each session are exact:
  - no sanitizer report on stderr, exit status 0 or 75;
  - the process ended within a bound derived from the configured deadlines,
    and a dripping client was cut off by the deadline meant to stop it;
  - pending/ holds exactly the queue ids of the "250 ... queued as ID"
    replies the client received, each a well-formed item; tmp/ and the
    other spool directories are empty;
  - where the dialogue makes it certain (lock-step transactions), the stored
    message is the body the client sent, unstuffed (by BDAT: as it was),
    after our Received: header, and a trusted PROXY header's address is
    the one recorded;
  - nothing sent in plain text after STARTTLS is acted upon.

Sessions are deterministic per seed (timing aside). A failing session is
saved as a JSON file in the build tree; --replay runs saved sessions again,
and the files in tests/receive/smtp-fuzz-corpus/ are replayed first by
default as regressions.

Exit status: 0 all sessions passed, 1 a session failed, 77 skipped.
"""
import argparse
import collections
import concurrent.futures
import glob
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # the source tree may be read-only (distcheck)
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "helpers"))
from hwtest import QID_RE, read_item, spool_names  # noqa: E402

BUILD = os.environ.get("top_builddir") or os.path.abspath(os.path.join(HERE, "..", ".."))
SRC = os.environ.get("top_srcdir") or os.path.abspath(os.path.join(HERE, "..", ".."))
TRANSCRIPTS = os.path.join(SRC, "tests", "transcripts")
CORPUS = os.path.join(SRC, "tests", "receive", "smtp-fuzz-corpus")
TLS_TEMPLATES = os.path.join(SRC, "tests", "tls")

QUEUED_RE = re.compile(rb"^250[ -].*queued as (" + QID_RE.encode() + rb")\r?$")
SANITIZER_RE = re.compile(r"ERROR: AddressSanitizer|LeakSanitizer|runtime error:|"
                          r"ERROR: UndefinedBehaviorSanitizer|AddressSanitizer:DEADLYSIGNAL")
ALLOWED_STATUS = (0, 75)

# The deadlines of ordinary sessions and of the slow ones (milliseconds;
# the minimum DATA rate in bytes per second).
FAST_LIMITS = {"SMTP_IDLE_TIMEOUT_MS": 2000, "SMTP_COMMAND_DEADLINE_MS": 3000,
               "SMTP_DATA_MIN_RATE": 1000, "SMTP_SESSION_DEADLINE_MS": 10000}
SLOW_LIMITS = {"SMTP_IDLE_TIMEOUT_MS": 1000, "SMTP_COMMAND_DEADLINE_MS": 2000,
               "SMTP_DATA_MIN_RATE": 200, "SMTP_SESSION_DEADLINE_MS": 4000}
IO_BUFFER = 65536   # hw-receive's read buffer (lib/hw_limits.h HW_IO_BUFFER)

CATEGORIES = [      # (name, weight)
    ("garbage", 10), ("lines", 16), ("pipeline", 16), ("lockstep", 12),
    ("dotstuff", 12), ("mutate", 18), ("proxy", 7), ("starttls", 8), ("slow", 1),
    ("bdat", 8),
]


# ---------------------------------------------------------------- generation

class Gen:
    """Random pieces of SMTP, good and bad, from one random.Random."""

    VERBS = [b"HELO", b"EHLO", b"MAIL FROM:", b"RCPT TO:", b"DATA", b"RSET", b"NOOP",
             b"QUIT", b"VRFY", b"HELP", b"STARTTLS", b"BDAT", b"AUTH", b"EXPN", b"TURN",
             b"PROXY"]
    SPECIAL = [b"\0", b"\r", b"\n", b"\r\n", b".", b"..", b"\r\n.\r\n", b".\r\n", b"\r\n.",
               b" ", b"\t", b":", b"<", b">", b"<>", b"@", b"\"", b"\\", b"\xff", b"\x80",
               b"\xc3\xa9", b"%s%n", b"=", b"SIZE=", b"SIZE=99999999999999999999999",
               b"BODY=8BITMIME", b"SMTPUTF8", b"\x16\x03\x01", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
               b"STARTTLS\r\n", b"DATA\r\n", b"RSET\r\n", b"MAIL FROM:<>\r\n", b"QUIT\r\n"]
    LONG = [100, 510, 511, 512, 513, 998, 999, 1000, 1001, 4096, 65535, 65536, 65537,
            200000, 1 << 20]

    def __init__(self, rng):
        self.r = rng

    def chance(self, p):
        return self.r.random() < p

    def word(self, lo=1, hi=12, alphabet=b"abcdefghijklmnopqrstuvwxyz0123456789-"):
        return bytes(self.r.choice(alphabet) for _ in range(self.r.randint(lo, hi)))

    def domain(self):
        if self.chance(0.1):
            return self.r.choice([b"[192.0.2.1]", b"[IPv6:2001:db8::1]", b"example.com",
                                  b"Example.ORG", b"\xc3\xa9xample.com", b"x", b"-bad-.com"])
        return self.word() + b"." + self.r.choice([b"com", b"net", b"org", b"example"])

    def address(self):
        c = self.r.random()
        if c < 0.75:
            return self.word() + b"@" + self.domain()
        return self.r.choice([
            b"", b"postmaster", b"\"quoted local\"@example.com", b"a@b@c",
            b"\xc3\xa9t\xc3\xa9@example.com", b"a" * self.r.choice([63, 64, 65, 255, 300]) + b"@x.com",
            b"x@" + b"d" * self.r.choice([253, 254, 256, 600]), b"@route,@r2:user@example.com",
            b"a\0b@example.com", b"user@", b"<a@b>", self.raw(self.r.randint(1, 40))])

    def params(self, mail):
        out = b""
        for _ in range(self.r.choice([0, 0, 0, 1, 2, 4])):
            out += b" " + self.r.choice([
                b"SIZE=" + str(self.r.choice([0, 1, 1000, 2 ** 31, 2 ** 32, 2 ** 63, 2 ** 64,
                                              10 ** 30])).encode(),
                b"BODY=8BITMIME", b"BODY=7BIT", b"BODY=BINARYMIME", b"SMTPUTF8",
                b"RET=HDRS", b"NOTIFY=NEVER", b"SIZE=", b"SIZE=-1", b"=", self.word(),
                b"AUTH=<>"] if mail else [b"NOTIFY=NEVER", b"ORCPT=rfc822;a@b", self.word()])
        return out

    def raw(self, n):
        """n bytes of garbage: uniform bytes, or text with CR, LF and NUL in it."""
        if self.chance(0.3):
            return self.r.randbytes(n)
        alphabet = b"abcdefgh XYZ.:<>@\r\n\0\t\x7f\xff"
        return bytes(self.r.choice(alphabet) for _ in range(n))

    def long_run(self):
        n = self.r.choice(self.LONG)
        fill = self.r.choice([b"A", b"x", b".", b"\0", b"\r", b" "])
        return fill * n if self.chance(0.7) else self.r.randbytes(n)

    def eol(self):
        c = self.r.random()
        if c < 0.85:
            return b"\r\n"
        return self.r.choice([b"\n", b"\r", b"\r\r\n", b"\n\r", b"", b"\0\r\n"])

    def command(self, good=True):
        """One command line, well-formed when good."""
        r = self.r
        verb = r.choice(self.VERBS[:10]) if good else r.choice(self.VERBS)
        if not good and self.chance(0.3):
            verb = verb.lower() if self.chance(0.5) else verb[:r.randint(0, len(verb))]
        if verb in (b"HELO", b"EHLO"):
            arg = b" " + self.domain()
        elif verb == b"MAIL FROM:":
            arg = b"<" + self.address() + b">" + self.params(True)
        elif verb == b"RCPT TO:":
            arg = b"<" + self.address() + b">" + self.params(False)
        elif verb in (b"VRFY", b"HELP", b"NOOP"):
            arg = b" " + self.word() if self.chance(0.3) else b""
        else:
            arg = b""
        if not good:
            c = r.random()
            if c < 0.3:
                arg += self.raw(r.randint(1, 60))
            elif c < 0.4:
                arg += self.long_run()
            elif c < 0.6:
                arg = arg.replace(b"<", b"").replace(b">", b"")
            elif c < 0.8:
                arg += r.choice(self.SPECIAL)
        return verb + arg + (b"\r\n" if good else self.eol())

    def junk(self):
        c = self.r.random()
        if c < 0.35:
            return self.command(good=False)
        if c < 0.55:
            return self.raw(self.r.randint(1, 300))
        if c < 0.65:
            return self.long_run() + self.eol()
        if c < 0.85:
            return self.r.choice(self.SPECIAL)
        return self.command(good=True)

    def junk_line(self):
        """Junk as one line of its own (one reply), for lock-step dialogues."""
        return self.junk().replace(b"\n", b" ").replace(b"\r", b" ") + b"\r\n"

    def body(self):
        """A message as the client means it (before dot-stuffing), CRLF lines."""
        r = self.r
        lines = [b"From: <" + self.address() + b">", b"To: <" + self.address() + b">",
                 b"Subject: " + self.word(1, 30, b"abc def.\xc3\xa9:")]
        for _ in range(r.choice([0, 0, 1, 3, 120])):
            if self.chance(0.3):
                lines.append(b"Received: from " + self.domain())
            else:
                lines.append(b"X-" + self.word() + b": " + self.word())
        lines.append(b"")
        for _ in range(r.randint(0, 12)):
            c = r.random()
            if c < 0.5:
                lines.append(self.word(0, 80, b"abcdefgh ijklm.,;\xc3\xa9"))
            elif c < 0.7:
                lines.append(r.choice([b".", b"..", b".x", b"...", b". ", b".\r", b"\r.",
                                       b".\n.", b"\n.\n", b"From x", b"\0", b"\r", b"\n"]))
            elif c < 0.9:
                lines.append(self.raw(r.randint(0, 100)).replace(b"\r\n", b"\n"))
            else:
                lines.append(self.long_run().replace(b"\r\n", b"\n"))
        lines = [l.replace(b"\r\n", b"\n") for l in lines]
        # A message that ends in CR LF. No line may hold CR LF itself.
        out = b"\r\n".join(lines) + b"\r\n"
        if self.chance(0.1):
            out = b""
        return out

    def transaction(self, esmtp=True, good_body=None):
        """(commands up to DATA, the DATA payload with its final dot, the body)."""
        r = self.r
        cmds = [b"MAIL FROM:<" + (self.word() + b"@" + self.domain() if self.chance(0.9) else b"")
                + b">" + (b" BODY=8BITMIME" if esmtp and self.chance(0.3) else b"") + b"\r\n"]
        for _ in range(r.choice([1, 1, 1, 2, 3, 10])):
            cmds.append(b"RCPT TO:<" + self.word() + b"@" + self.domain() + b">\r\n")
        cmds.append(b"DATA\r\n")
        body = self.body() if good_body is None else good_body
        return cmds, stuff(body) + b".\r\n", body


def stuff(body):
    """Dot-stuffing of a message made of CRLF lines (RFC 5321 4.5.2)."""
    lines = body.split(b"\r\n")
    return b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines)


def unstuff(data):
    """What the server must store of a DATA payload: (message, bytes used) or
    (None, None) when the payload has no end. Only CRLF.CRLF ends it, a
    leading dot of a line is dropped, all else is kept byte for byte."""
    out, pos = [], 0
    while True:
        j = data.find(b"\r\n", pos)
        if j < 0:
            return None, None
        line = data[pos:j]
        if line == b".":
            return b"".join(out), j + 2
        out.append((line[1:] if line.startswith(b".") else line) + b"\r\n")
        pos = j + 2


def split_sends(g, data, max_parts=6):
    """data as 1..max_parts writes at random places, a short pause between."""
    if len(data) < 2 or g.chance(0.4):
        return [["send", data]]
    cuts = sorted(set(g.r.randrange(1, len(data)) for _ in range(g.r.randint(1, max_parts - 1))))
    out, prev = [], 0
    for c in cuts + [len(data)]:
        out.append(["send", data[prev:c]])
        if c != len(data):
            out.append(["sleep", g.r.choice([0, 0.001, 0.003])])
        prev = c
    return out


def end_actions(g):
    """How the client ends: QUIT, just going away, or junk then away."""
    c = g.r.random()
    if c < 0.5:
        return [["send", b"QUIT\r\n"]]
    if c < 0.8:
        return []
    return [["send", g.junk()]]


def lockstep_tx(g, esmtp=True, body=None):
    """A transaction one command at a time; the stored message is checked."""
    cmds, payload, body = g.transaction(esmtp, body)
    acts = []
    for c in cmds:
        acts += [["send", c], ["wait", 5]]
    acts += split_sends(g, payload)
    acts.append(["wait", 10, {"body": body}])
    return acts


def gen_garbage(g):
    acts = []
    if g.chance(0.5):
        acts.append(["wait", 5])
    for _ in range(g.r.randint(1, 6)):
        data = g.raw(g.r.choice([1, 10, 100, 1000, 5000])) if g.chance(0.8) else g.long_run()
        acts += split_sends(g, data)
    return {}, acts + end_actions(g)


def gen_lines(g):
    acts = [["wait", 5]] if g.chance(0.5) else []
    data = b"".join(g.junk() for _ in range(g.r.randint(1, 40)))
    if g.chance(0.3):
        data = b"EHLO fuzz.example\r\n" + data
    acts += split_sends(g, data, 10)
    env = {}
    if g.chance(0.3):
        env["SMTP_MAX_BAD_COMMANDS"] = g.r.choice([1, 2, 5, 100, 1000])
    return env, acts + end_actions(g)


def gen_pipeline(g):
    """Valid transactions and junk, all pipelined."""
    data = b""
    if g.chance(0.9):
        data += g.r.choice([b"EHLO", b"HELO", b"ehlo"]) + b" client.example\r\n"
    for _ in range(g.r.randint(1, 5)):
        for _ in range(g.r.choice([0, 0, 1, 3])):
            data += g.junk()
        cmds, payload, _ = g.transaction()
        for c in cmds:
            data += c
            if g.chance(0.05):
                data += g.junk()
        data += payload
        if g.chance(0.3):
            data += b"RSET\r\n"
    acts = split_sends(g, data, 12)
    return limits_env(g), acts + end_actions(g)


def limits_env(g):
    """Small limits, sometimes, so their paths get exercised."""
    env = {}
    if g.chance(0.15):
        env["SMTP_MAX_MESSAGE_BYTES"] = g.r.choice([1024, 2048, 100000])
    if g.chance(0.1):
        env["SMTP_MAX_HEADER_LINES"] = g.r.choice([1, 3, 10])
    if g.chance(0.1):
        env["SMTP_MAX_RECEIVED"] = g.r.choice([1, 2])
    if g.chance(0.1):
        env["SMTP_MAX_RECIPIENTS"] = g.r.choice([1, 2])
    if g.chance(0.1):
        env["ACCEPT_ALL_RECIPIENTS"] = "false"
        env["ACCEPTED_DOMAINS"] = "example.com,example.net"
    if g.chance(0.1):
        env["SMTP_MAX_LINE_LENGTH"] = g.r.choice([512, 1000, 4096])
    return env


def gen_lockstep(g):
    acts = [["wait", 5], ["send", g.r.choice([b"EHLO", b"HELO"]) + b" c.example\r\n"], ["wait", 5]]
    for _ in range(g.r.randint(1, 4)):
        if g.chance(0.3):
            acts += [["send", g.junk_line()], ["wait", 2]]
        acts += lockstep_tx(g)
    return limits_env(g), acts + end_actions(g)


DOT_EDGES = [b"\r\n.\r", b"\r\n.", b"\r\n", b"\r", b".\r", b"\r\n..", b"\r\n.\n", b"\n.\r\n",
             b"\r\n.\r\r\n", b"\r\n.\r.\r\n", b"\r.\r\n", b"\r\n.\r\n"]


def gen_dotstuff(g):
    """DATA payloads made of dot and line-end edge cases, cut where a read
    of the server ends. The stored message must be the payload unstuffed."""
    r = g.r
    acts = [["send", b"EHLO c.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.com>\r\n"
             b"DATA\r\n"], ["wait", 5, {"line": rb"^354 "}]]
    pieces = []
    for _ in range(r.randint(1, 12)):
        c = r.random()
        if c < 0.6:
            pieces.append(r.choice(DOT_EDGES))
        elif c < 0.8:
            pieces.append(g.word(0, 20, b"ab.\r\n \0"))
        else:
            pieces.append(r.choice([b"\r\n.\r" + bytes([r.randrange(256)]), b"\n.\n", b"\r.\r",
                                    b".\r\n.", b"..\r\n"]))
    payload = b"".join(pieces)
    # The payload must end somewhere; after the end its rest is commands.
    if unstuff(payload)[0] is None or r.random() < 0.2:
        payload += b"\r\n.\r\n"
    message, used = unstuff(payload)
    if message is None:   # "\r\n.\r\n" appended after a lone "\r" can still not end
        payload += b"\r\n.\r\n"
        message, used = unstuff(payload)
    # A read boundary of the server (its buffer is IO_BUFFER bytes) at a
    # hard spot: a filler line puts byte `spot` of the payload at the edge.
    one_write = False
    if r.random() < 0.3 and used > 3:
        spot = r.choice([used - 1, used - 2, used - 3, r.randrange(1, used)])
        payload = b"x" * (IO_BUFFER - spot - 2) + b"\r\n" + payload
        message, used = unstuff(payload)
        one_write = True
    cut_points = [] if one_write else sorted(set(
        [r.randrange(1, len(payload)) for _ in range(r.randint(0, 4))] +
        ([used - k for k in (1, 2, 3) if 0 < used - k < len(payload)] if r.random() < 0.5 else [])))
    prev = 0
    for c in cut_points + [len(payload)]:
        acts += [["send", payload[prev:c]], ["sleep", 0.003]]
        prev = c
    acts.append(["wait", 10, {"body": message}])
    if r.random() < 0.5:
        acts += lockstep_tx(g)
    return {}, acts + end_actions(g)


def gen_bdat(g):
    """A message in BDAT chunks (RFC 3030) of random sizes, zero included,
    made of dot and line-end edge cases and binary bytes, sent cut at
    random places: stored exactly as sent, no dot removed."""
    r = g.r
    body = b" BODY=BINARYMIME" if g.chance(0.5) else b""
    acts = [["send", b"EHLO c.example\r\nMAIL FROM:<a@example.net>" + body +
             b"\r\nRCPT TO:<b@example.com>\r\n"], ["wait", 5, {"line": rb"^250 2\.1\.5 "}]]
    pieces = []
    for _ in range(r.randint(0, 12)):
        c = r.random()
        if c < 0.5:
            pieces.append(r.choice(DOT_EDGES))
        elif c < 0.8:
            pieces.append(g.word(0, 20, b"ab.\r\n \0"))
        else:
            pieces.append(g.raw(r.randint(1, 40)))
    if r.random() < 0.1:
        pieces.append(b"z" * (IO_BUFFER + r.randint(-3, 3)))
    payload = b"".join(pieces)
    chunks, pos = [], 0
    while pos < len(payload) or not chunks:
        n = r.choice([0, 1, 2, 3, r.randint(0, 100), len(payload) - pos])
        chunks.append(payload[pos:pos + n])
        pos += len(chunks[-1])
        if r.random() < 0.15:
            chunks.append(b"")
    stream = b"".join(b"BDAT %d\r\n" % len(c) + c for c in chunks[:-1])
    stream += b"BDAT %d LAST\r\n" % len(chunks[-1]) + chunks[-1]
    acts += split_sends(g, stream, 8)
    acts.append(["wait", 10, {"line": rb"^[0-9]{3} (?!2\.0\.0 [0-9]+ octets)", "body": payload}])
    if r.random() < 0.5:
        acts += lockstep_tx(g)
    return {}, acts + end_actions(g)


def proxy_header(g):
    """(header bytes, the address it should set or None when it is bad)."""
    r = g.r
    c = r.random()
    if c < 0.35:
        ip, port = r.choice([("203.0.113.9", 56324), ("198.51.100.200", 1), ("10.0.0.1", 65535)])
        return b"PROXY TCP4 %s 192.0.2.25 %d 25\r\n" % (ip.encode(), port), ip
    if c < 0.45:
        ip = r.choice(["2001:db8::1", "::1", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"])
        return b"PROXY TCP6 %s 2001:db8::25 40000 25\r\n" % ip.encode(), ip
    if c < 0.5:
        return b"PROXY UNKNOWN\r\n", "127.0.0.1"
    if c < 0.6:
        # v2, TCP over IPv4 (receive/proxy_parse.h), with a NOOP TLV or not
        tlv = r.choice([b"", b"\x04\x00\x02ab"])
        return (b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00" + bytes([12 + len(tlv)])
                + b"\xcb\x00\x71\x09\xc0\x00\x02\x19\xdc\x04\x00\x19" + tlv), "203.0.113.9"
    bad = r.choice([
        b"PROXY TCP4 203.0.113.9 192.0.2.25 56324 25",         # no line end
        b"PROXY TCP4 203.0.113.9 192.0.2.25 56324\r\n",
        b"PROXY TCP4 203.0.113.999 192.0.2.25 1 25\r\n",
        b"PROXY TCP4 203.0.113.9 192.0.2.25 65536 25\r\n",
        b"PROXY TCP4 203.0.113.9 192.0.2.25 99999999999999999999 25\r\n",
        b"PROXY TCP4 2001:db8::1 192.0.2.25 1 25\r\n",
        b"PROXY TCP6 203.0.113.9 2001:db8::25 1 25\r\n",
        b"PROXY TCP5 203.0.113.9 192.0.2.25 1 25\r\n",
        b"PROXY  TCP4  203.0.113.9  192.0.2.25  1  25\r\n",
        b"PROXY TCP4 203.0.113.9 192.0.2.25 -1 25\r\n",
        b"proxy TCP4 203.0.113.9 192.0.2.25 1 25\r\n",
        b"PROXY TCP4 203.0.113.9 192.0.2.25 1 25\n",
        b"PROXY TCP4 203.0.113.9\0 192.0.2.25 1 25\r\n",
        b"PROXY UNKNOWN" + b"x" * 200 + b"\r\n",
        b"PROXY TCP4 " + b"1" * 120 + b" 192.0.2.25 1 25\r\n",
        b"PROXY TCP4 " + b"9" * (1 << 20) + b"\r\n",
        b"\r\n\r\n\0\r\nQUIT\n\x00\x00\x00\x00",
        b"\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a\x21\x11\x00\x0c"   # PROXY v2, cut short
        b"\xcb\x00\x71\x09\xc0\x00\x02\x19\xdc\x04",
        b"\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a\x21\x11\xff\xff",  # v2, oversized
        b"EHLO c.example\r\n",
        b"PROXY", b"PROXY TCP4 1", b"",
        g.raw(r.randint(1, 200)),
    ])
    return bad, None


def gen_proxy(g):
    env = {"SMTP_PROXY_TRUSTED": "127.0.0.1", "REMOTE_ADDR": "127.0.0.1"}
    header, ip = proxy_header(g)
    acts = split_sends(g, header, 3) if header else []
    expect = {}
    if ip is not None:
        expect["remote_ip"] = ip
        if g.chance(0.2):   # a second PROXY header: refused with 421 before HELO
            acts.append(["send", proxy_header(g)[0] or b"PROXY\r\n"])
        acts += [["wait", 5], ["send", b"EHLO c.example\r\n"], ["wait", 5]]
        acts += lockstep_tx(g) if g.chance(0.6) else [["send", g.junk_line()]]
    elif g.chance(0.5):
        acts.append(["send", b"EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n"
                     b"DATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n"])
    return env, acts + end_actions(g), expect


def gen_starttls(g):
    """STARTTLS at odd moments; a handshake or not; plain text injected
    after STARTTLS must never be acted upon."""
    r = g.r
    env = {"tls": True}
    expect = {}
    acts = [["wait", 5]]
    mode = r.choice(["full", "full", "full", "inject", "odd", "odd", "badhello", "partial", "raw"])
    if mode in ("full", "raw", "partial", "badhello"):
        acts += [["send", b"EHLO c.example\r\n"], ["wait", 5]]
        if r.random() < 0.2:
            acts += [["send", b"MAIL FROM:<a@b.example>\r\n"], ["wait", 5]]
            acts += [["send", b"STARTTLS\r\n"], ["wait", 5], ["send", b"RSET\r\n"], ["wait", 5]]
        acts += [["send", b"STARTTLS\r\n"]]
        if mode == "full" or mode == "raw":
            acts.append(["tls", "full"])
            acts += [["send", b"EHLO c.example\r\n"], ["wait", 5]]
            if r.random() < 0.2:
                acts += [["send", b"STARTTLS\r\n"], ["wait", 5]]   # 503: TLS already active
            for _ in range(r.randint(0, 2)):
                if r.random() < 0.4:
                    acts += [["send", g.junk_line()], ["wait", 2]]
                acts += lockstep_tx(g)
            if mode == "raw":   # plain bytes on a TLS connection
                acts.append(["raw", g.raw(r.randint(1, 300))])
            elif r.random() < 0.3:
                acts.append(["close_notify"])
        elif mode == "partial":
            acts.append(["tls", "partial"])
        else:
            acts += [["wait", 5, {"line": rb"^220 "}], ["send", g.raw(r.randint(1, 2000))]]
    elif mode == "inject":
        # CVE-2011-0411: the transaction rides in the same write as STARTTLS.
        _, payload, _ = g.transaction(good_body=b"Subject: injected\r\n\r\nx\r\n")
        acts += [["send", b"EHLO c.example\r\nSTARTTLS\r\nMAIL FROM:<a@b.example>\r\n"
                  b"RCPT TO:<c@d.example>\r\nDATA\r\n" + payload + b"QUIT\r\n"],
                 ["tls", "full"], ["send", b"EHLO c.example\r\n"], ["wait", 5],
                 ["send", b"DATA\r\n"], ["wait", 5, {"forbid": rb"^354"}]]
        expect["no_queue"] = True
    else:   # odd moments: before EHLO, with arguments, pipelined, lower case
        data = b""
        for _ in range(r.randint(1, 6)):
            data += r.choice([b"STARTTLS\r\n", b"starttls\r\n", b"STARTTLS now\r\n", b"STARTTLS\n",
                              b"EHLO c.example\r\n", b"MAIL FROM:<a@b.example>\r\n",
                              b"RCPT TO:<c@d.example>\r\n", b"DATA\r\n", b"NOOP\r\n", g.junk()])
        acts += split_sends(g, data)
        if r.random() < 0.5:
            acts.append(["tls", r.choice(["full", "partial"])])
            acts += [["send", b"EHLO c.example\r\n"]]
    return env, acts + end_actions(g), expect


def gen_slow(g):
    """Stalls and drips, against short deadlines: each drip must be cut off
    by the deadline meant for it (checked by the runner)."""
    r = g.r
    env = dict(SLOW_LIMITS)
    mode = r.choice(["silent", "command", "noops", "data", "stall-data", "stall-ok",
                     "tls-stall", "proxy-stall"])
    acts = []
    if mode == "silent":
        acts = [["wait", 5], ["drip", b"", 0, 3.0, "idle"]]
    elif mode == "command":
        acts = [["wait", 5], ["drip", b"EHLO " + b"a" * 60 + b"\r\n", 1, 0.3, "command"]]
    elif mode == "noops":
        acts = [["wait", 5], ["drip", b"NOOP\r\n" * 30, 6, 0.4, "session"]]
    elif mode == "data":
        acts = [["send", b"EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n"
                 b"DATA\r\n"], ["wait", 5, {"line": rb"^354 "}],
                ["drip", b"Subject: slow\r\n\r\n" + b"x" * 400 + b"\r\n.\r\n", 1, 0.2, "data"]]
    elif mode == "stall-data":
        acts = [["send", b"EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n"
                 b"DATA\r\nSubject: stall\r\n\r\nsome"], ["drip", b"", 0, 3.0, "idle"]]
    elif mode == "stall-ok":   # pauses shorter than every deadline: the mail goes through
        acts = [["wait", 5], ["sleep", 0.6], ["send", b"EHLO c.example\r\n"], ["wait", 5],
                ["sleep", 0.6]] + lockstep_tx(g, body=b"Subject: patient\r\n\r\nok\r\n")
    elif mode == "tls-stall":
        env["tls"] = True
        acts = [["wait", 5], ["send", b"EHLO c.example\r\nSTARTTLS\r\n"], ["tls", "partial"],
                ["drip", b"", 0, 3.0, "idle"]]
    else:
        env["SMTP_PROXY_TRUSTED"] = "127.0.0.1"
        env["REMOTE_ADDR"] = "127.0.0.1"
        acts = [["send", b"PROXY TCP4 203.0"], ["drip", b"", 0, 3.0, "idle"]]
    return env, acts + end_actions(g)


def load_transcripts():
    """The client side of each transcript: (env, [bytes of each write])."""
    out = []
    for path in sorted(glob.glob(os.path.join(TRANSCRIPTS, "*.smtp"))):
        env, writes = {}, []
        with open(path, encoding="utf-8") as f:
            for line in f:
                m = re.match(r"([A-Z]+)(?:\*([0-9]+))?(: ?|~ |$)(.*)", line.rstrip("\n"))
                if not m or line.startswith("#"):
                    continue
                key, count, text = m.group(1), int(m.group(2) or 1), m.group(4)
                if key == "E":
                    name, _, value = text.partition("=")
                    env[name] = value
                elif key in ("C", "R"):
                    one = [unescape(text.replace("{i}", str(i + 1))) +
                           (b"\r\n" if key == "C" else b"") for i in range(count)]
                    writes.append(b"".join(one))
        if writes:
            out.append((os.path.basename(path), env, writes))
    return out


def unescape(text):
    out, raw, i = bytearray(), text.encode("utf-8"), 0
    while i < len(raw):
        if raw[i:i + 1] != b"\\":
            out += raw[i:i + 1]
            i += 1
        elif raw[i + 1:i + 2] == b"x":
            out.append(int(raw[i + 2:i + 4], 16))
            i += 4
        else:
            out += {b"r": b"\r", b"n": b"\n", b"t": b"\t", b"0": b"\0"}.get(raw[i + 1:i + 2],
                                                                            raw[i + 1:i + 2])
            i += 2
    return bytes(out)


TRANSCRIPT_CACHE = []
TRANSCRIPT_LOCK = threading.Lock()


def transcripts():
    with TRANSCRIPT_LOCK:
        if not TRANSCRIPT_CACHE:
            TRANSCRIPT_CACHE.extend(load_transcripts())
        return TRANSCRIPT_CACHE


def mutate(g, data, donors):
    r = g.r
    data = bytearray(data)
    for _ in range(r.choice([1, 1, 2, 3, 5, 10])):
        op = r.randrange(10)
        pos = r.randrange(len(data) + 1)
        if op == 0 and data:
            data[min(pos, len(data) - 1)] ^= 1 << r.randrange(8)
        elif op == 1 and data:
            data[min(pos, len(data) - 1)] = r.choice(b"\0\r\n. :<>@\xff")
        elif op == 2:
            data[pos:pos] = r.choice(Gen.SPECIAL)
        elif op == 3:
            del data[pos:pos + r.choice([1, 2, 5, 20, 200])]
        elif op == 4:
            n = r.choice([1, 4, 16, 80])
            data[pos:pos] = bytes(data[pos:pos + n]) * r.choice([2, 10, 1000])
        elif op == 5 and donors:
            d = r.choice(donors)
            a = r.randrange(len(d) + 1)
            data[pos:pos] = d[a:a + r.randint(1, 400)]
        elif op == 6:
            old, new = r.choice([(b"\r\n", b"\n"), (b"\r\n", b"\r"), (b"\n", b"\r\n"),
                                 (b"\r\n.", b"\n."), (b".\r\n", b".\n")])
            data = bytearray(bytes(data).replace(old, new, r.choice([1, 3, -1])))
        elif op == 7:
            del data[pos:]
        elif op == 8:
            data[pos:pos] = g.long_run()
        else:
            data[pos:pos] = g.junk()
    return bytes(data)


def gen_mutate(g):
    r = g.r
    corpus = transcripts()
    if not corpus:
        return gen_pipeline(g)
    name, env, writes = r.choice(corpus)
    env = {k: v for k, v in env.items() if not k.endswith(("_MS", "_RATE"))}
    donors = [b"".join(w) for _, _, w in r.sample(corpus, min(3, len(corpus)))]
    acts = []
    if r.random() < 0.5:   # one stream, mutated as a whole
        acts += split_sends(g, mutate(g, b"".join(writes), donors), 10)
    else:                  # the transcript's own writes, some mutated
        for w in writes:
            acts.append(["send", mutate(g, w, donors) if r.random() < 0.3 else w])
            if r.random() < 0.3:
                acts.append(["sleep", 0.002])
    return env, acts + end_actions(g), {"transcript": name}


GENERATORS = {"garbage": gen_garbage, "lines": gen_lines, "pipeline": gen_pipeline,
              "lockstep": gen_lockstep, "dotstuff": gen_dotstuff, "mutate": gen_mutate,
              "bdat": gen_bdat,
              "proxy": gen_proxy, "starttls": gen_starttls, "slow": gen_slow}


def pick_category(seed, index):
    r = random.Random("%s/%d/category" % (seed, index))
    names, weights = zip(*CATEGORIES)
    return r.choices(names, weights)[0]


def generate(seed, index):
    category = pick_category(seed, index)
    g = Gen(random.Random("%s/%d" % (seed, index)))
    out = GENERATORS[category](g)
    env, acts = out[0], out[1]
    expect = out[2] if len(out) > 2 else {}
    limits = dict(SLOW_LIMITS if category == "slow" else FAST_LIMITS)
    limits.update(env)
    return {"name": "%s-%d" % (seed, index), "category": category, "env": limits,
            "actions": acts, "expect": expect}


# -------------------------------------------------------------- the session

class Failed(Exception):
    pass


class Client:
    """The client end: a non-blocking socket, everything the server writes
    read at all times (plain text, or through TLS after STARTTLS), reply
    lines collected in order."""

    def __init__(self, sock, deadline):
        self.sock = sock
        self.deadline = deadline
        self.plain = b""          # undecoded reply text
        self.lines = []           # complete reply lines, in order
        self.line_times = []      # when each arrived
        self.mark = 0             # first line not yet waited for
        self.eof = False
        self.eof_time = None
        self.send_closed = False  # the server stopped reading
        self.tls = None           # ssl.SSLObject once the handshake started
        self.tls_broken = False
        self.bio_in = self.bio_out = None

    # -- input
    def _text(self, data):
        self.plain += data
        while True:
            i = self.plain.find(b"\n")
            if i < 0:
                break
            self.lines.append(self.plain[:i + 1])
            self.line_times.append(time.monotonic())
            self.plain = self.plain[i + 1:]

    def _recv(self):
        try:
            data = self.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except (ConnectionResetError, OSError):
            data = b""
        if not data:
            self.eof = True
            self.eof_time = time.monotonic()
            if self.plain and not self.tls:
                self.lines.append(self.plain)
                self.plain = b""
            return
        if self.tls and not self.tls_broken:
            self.bio_in.write(data)
            self._decrypt()
        else:
            self._text(data)

    def _decrypt(self):
        while True:
            try:
                data = self.tls.read(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return
            except (ssl.SSLError, ssl.SSLEOFError, ValueError):
                self.tls_broken = True
                return
            if not data:
                return
            self._text(data)

    def pump(self, timeout):
        if self.eof:
            time.sleep(max(0, min(timeout, 0.01)))
            return
        r, _, _ = select.select([self.sock], [], [], max(0, timeout))
        if r:
            self._recv()

    def left(self):
        return self.deadline - time.monotonic()

    # -- output
    def send_raw(self, data):
        view = memoryview(data)
        while view and not self.send_closed:
            left = self.left()
            if left <= 0:
                raise Failed("the server did not read what was sent before the session bound")
            r, w, _ = select.select([] if self.eof else [self.sock], [self.sock], [], left)
            if r:
                self._recv()
            if w:
                try:
                    n = self.sock.send(view[:262144])
                except (BlockingIOError, InterruptedError):
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    self.send_closed = True
                    return
                view = view[n:]

    def send(self, data):
        if self.tls and not self.tls_broken:
            try:
                self.tls.write(data)
            except ssl.SSLError:
                self.tls_broken = True
                return
            self.send_raw(self.bio_out.read())
        else:
            self.send_raw(data)

    def shutdown(self):
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.send_closed = True

    # -- waiting
    def wait_line(self, timeout, pattern=rb"^[0-9]{3} ", quiet=None):
        """The first line from mark on that matches, or None; mark moves
        past it. With quiet, gives up when the server said nothing more
        for that long (the line may never come)."""
        end = min(time.monotonic() + timeout, self.deadline)
        rx = re.compile(pattern)
        seen, last = len(self.lines), time.monotonic()
        while True:
            for i in range(self.mark, len(self.lines)):
                if rx.match(self.lines[i]):
                    self.mark = i + 1
                    return self.lines[i]
            now = time.monotonic()
            if len(self.lines) != seen:
                seen, last = len(self.lines), now
            if self.eof or now >= end or (quiet and now - last >= quiet):
                return None
            self.pump(min(end - now, quiet or end - now))

    def idle(self, seconds):
        end = min(time.monotonic() + seconds, self.deadline)
        while time.monotonic() < end and not self.eof:
            self.pump(end - time.monotonic())

    def start_tls(self, ctx, partial, rng):
        """After "220 2.0.0 Ready": a handshake over memory BIOs; partial
        sends only the start of the ClientHello."""
        if self.wait_line(5, rb"^220 2\.0\.0", quiet=0.5) is None:
            return False
        self.bio_in, self.bio_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.bio_in, self.bio_out, server_hostname="mx.test")
        if self.plain:   # whatever followed the 220 line belongs to TLS
            self.bio_in.write(self.plain)
            self.plain = b""
        if partial:
            try:
                self.tls.do_handshake()
            except ssl.SSLWantReadError:
                pass
            hello = self.bio_out.read()
            self.send_raw(hello[:rng.randrange(1, max(2, len(hello)))])
            self.tls_broken = True   # what follows is sent raw
            return False
        while True:
            try:
                self.tls.do_handshake()
                out = self.bio_out.read()
                if out:
                    self.send_raw(out)
                return True
            except ssl.SSLWantReadError:
                out = self.bio_out.read()
                if out:
                    self.send_raw(out)
                if self.eof or self.left() <= 0:
                    self.tls_broken = True
                    return False
                self.pump(min(self.left(), 0.5))
                if self.bio_in.pending == 0 and self.eof:
                    self.tls_broken = True
                    return False
            except (ssl.SSLError, ValueError):
                self.tls_broken = True
                return False

    def close_notify(self):
        if self.tls and not self.tls_broken:
            try:
                self.tls.unwrap()
            except (ssl.SSLError, ValueError):
                pass
            self.send_raw(self.bio_out.read())


class Runner:
    def __init__(self, args, workdir, tls_files):
        self.args = args
        self.workdir = workdir
        self.tls_files = tls_files
        self.tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.tls_ctx.check_hostname = False
        self.tls_ctx.verify_mode = ssl.CERT_NONE
        self.receive = os.path.join(args.build, "receive", "hw-receive")
        self.module_dir = os.environ.get("HW_MODULE_DIR") or os.path.join(args.build, "receive", ".libs")

    def environment(self, spool, script):
        """Nothing inherited but PATH and the caller's sanitizer options;
        reports always go to stderr, which is kept per session."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HW_ALLOW_ROOT": "1",
               "AUTH_CHECKS": "off",
               "SPOOL_DIR": spool, "SMTP_HOSTNAME": "mx.test", "SPOOL_MIN_FREE_BYTES": "4096",
               "REMOTE_ADDR": "192.0.2.1", "REMOTE_PORT": "4321", "HW_MODULE_DIR": self.module_dir}
        for name, ours in (("ASAN_OPTIONS", "detect_leaks=1"), ("LSAN_OPTIONS", ""),
                           ("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")):
            opts = [o for o in (ours, os.environ.get(name, ""), "log_path=stderr") if o]
            env[name] = ":".join(opts)
        for k, v in script["env"].items():
            if k != "tls":
                env[k] = str(v)
        if script["env"].get("tls") and self.tls_files:
            env["SMTP_TLS_CERT_PATH"], env["SMTP_TLS_KEY_PATH"] = self.tls_files
        return env

    def run(self, script):
        """Runs one session; returns (problems, facts)."""
        env = script["env"]
        session_s = int(env.get("SMTP_SESSION_DEADLINE_MS", 10000)) / 1000
        idle_s = int(env.get("SMTP_IDLE_TIMEOUT_MS", 2000)) / 1000
        command_s = int(env.get("SMTP_COMMAND_DEADLINE_MS", 3000)) / 1000
        grace = self.args.grace
        bound = session_s + grace
        spool = tempfile.mkdtemp(prefix="s", dir=self.workdir)
        stderr_path = spool + ".stderr"
        problems, facts = [], {"queued": 0, "status": None, "closed_early": False, "timeout_421": False}
        expected_bodies = {}
        ours, theirs = socket.socketpair()
        start = time.monotonic()
        with open(stderr_path, "wb") as err:
            proc = subprocess.Popen([self.receive], stdin=theirs, stdout=theirs, stderr=err,
                                    env=self.environment(spool, script), close_fds=True)
        theirs.close()
        ours.setblocking(False)
        c = Client(ours, start + bound)
        rng = random.Random(script["name"] + "/run")
        in_data = sending = False
        try:
            for act in script["actions"]:
                kind = act[0]
                if c.eof or c.send_closed and kind not in ("wait",):
                    break
                if kind == "send":
                    # Replies are awaited from the first write after a wait
                    # on: a payload sent in pieces may be answered before
                    # its last piece goes out.
                    if not sending:
                        c.mark = len(c.lines)
                    sending = True
                    c.send(act[1])
                elif kind == "raw":
                    c.send_raw(act[1])
                elif kind == "sleep":
                    c.idle(act[1])
                elif kind == "wait":
                    sending = False
                    opts = act[2] if len(act) > 2 else {}
                    line = c.wait_line(act[1], opts.get("line", rb"^[0-9]{3} "))
                    if line is not None and "forbid" in opts and re.match(opts["forbid"], line):
                        problems.append("reply %r must not come here" % line)
                    if "body" in opts and in_data and (line is None and not c.eof or
                                                       line is not None and line.startswith(b"421 4.4.2")):
                        # The payload ended by RFC 5321's rule and the server
                        # had said 354: it must answer, not wait for more.
                        problems.append("no answer to a complete DATA payload: %r" % line)
                    # Whether the server is reading a message now (junk
                    # may have put the dialogue out of step: then not).
                    in_data = line is not None and line.startswith(b"354 ")
                    if line is not None and "body" in opts:
                        m = QUEUED_RE.match(line.rstrip(b"\n"))
                        if m:
                            expected_bodies[m.group(1).decode()] = opts["body"]
                elif kind == "tls":
                    if self.tls_files:
                        c.start_tls(self.tls_ctx, act[1] == "partial", rng)
                elif kind == "close_notify":
                    c.close_notify()
                elif kind == "drip":
                    # The deadline meant to stop the drip counts from the
                    # server's last reply (from its greeting for the session
                    # deadline): a loaded machine may start the server late.
                    _, data, step, interval, which = act
                    t0 = time.monotonic() - start

                    def must_end():
                        times = [t - start for t, l in zip(c.line_times, c.lines)
                                 if not l.startswith(b"421")]
                        greet = times[0] if times else 0
                        ref = max([t0] + times)
                        limit = {"idle": ref + idle_s, "command": ref + command_s,
                                 "data": ref + idle_s, "session": greet + session_s}[which]
                        # With no reply at all (a PROXY line is awaited) the
                        # server's start cannot be seen: allow for it.
                        late = 0 if times else self.args.grace
                        return min(limit, greet + session_s) + self.args.drip_grace + late
                    if data:
                        for i in range(0, len(data), step):
                            c.send(data[i:i + step])
                            if c.eof or c.send_closed:
                                break
                            c.idle(interval)
                    else:
                        c.idle(interval)
                    if not c.eof:
                        c.idle(max(0, must_end() - (time.monotonic() - start)))
                    must = must_end()
                    if not c.eof:
                        problems.append("a dripping client (%s) was not cut off within %.1f s"
                                        % (which, must))
                    elif c.eof_time - start > must:
                        problems.append("a dripping client (%s) was cut off after %.1f s, not within %.1f s"
                                        % (which, c.eof_time - start, must))
                else:
                    raise ValueError("unknown action %r" % kind)
            facts["closed_early"] = c.eof   # the server ended it before our script did
            c.shutdown()
            # The server has our EOF: it must answer what is left and close.
            c.deadline = min(c.deadline, time.monotonic() + idle_s + grace)
            while not c.eof and c.left() > 0:
                c.pump(c.left())
            if not c.eof:
                problems.append("the server did not close the connection within %.1f s of our end"
                                % (idle_s + grace))
        except Failed as e:
            problems.append(str(e))
        try:
            status = proc.wait(max(0.1, start + bound - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            status = proc.wait()
            problems.append("hw-receive still running %.1f s after it started: killed" % bound)
        elapsed = time.monotonic() - start
        ours.close()
        facts["status"] = status
        facts["elapsed"] = elapsed
        if status not in ALLOWED_STATUS:
            problems.append("exit status %s" % status)
        if elapsed > bound:
            problems.append("the session took %.1f s, more than %.1f s" % (elapsed, bound))
        with open(stderr_path, "rb") as f:
            stderr = f.read().decode("utf-8", "replace")
        m = SANITIZER_RE.search(stderr)
        if m:
            problems.append("sanitizer report on stderr: %s" % m.group(0))
        lines = c.lines + ([c.plain] if c.plain else [])
        facts["timeout_421"] = any(l.startswith(b"421 4.4.2") for l in lines)
        queued = []
        for l in lines:
            q = QUEUED_RE.match(l.rstrip(b"\n"))
            if q:
                queued.append(q.group(1).decode())
        facts["queued"] = len(queued)
        problems += self.check_spool(spool, script, queued, expected_bodies)
        if problems:
            problems.append("stderr: " + stderr[-3000:].strip())
            problems.append("replies: %r" % b"".join(lines)[-1500:])
        shutil.rmtree(spool, ignore_errors=True)
        try:
            os.unlink(stderr_path)
        except OSError:
            pass
        return problems, facts

    def check_spool(self, spool, script, queued, bodies):
        problems = []
        if len(set(queued)) != len(queued):
            problems.append("the same queue id was given twice: %s" % queued)
        if script["expect"].get("no_queue") and queued:
            problems.append("plain text sent after STARTTLS was acted upon: queued %s" % queued)
        for d in ("tmp", "processing", "deferred", "dead"):
            left = spool_names(spool, d)
            if left:
                problems.append("%s/ is not empty: %s" % (d, left))
        pending = spool_names(spool, "pending")
        if sorted(pending) != sorted(set(queued)):
            problems.append("pending/ holds %s, the client was told queued %s" % (pending, queued))
        for qid in pending:
            try:
                item = read_item(spool, "pending", qid)
            except (OSError, ValueError, UnicodeDecodeError) as e:
                problems.append("item %s: %s" % (qid, e))
                continue
            if not item.message.startswith(b"Received: from "):
                problems.append("item %s: no Received: header first" % qid)
                continue
            ip = script["expect"].get("remote_ip")
            if ip and item.fields["remote-ip"] != ip:
                problems.append("item %s: remote-ip %s, the PROXY header said %s"
                                % (qid, item.fields["remote-ip"], ip))
            if qid in bodies:
                body = after_received(item.message)
                if body != bodies[qid]:
                    problems.append("item %s: stored message differs:\n  got  %r\n  want %r"
                                    % (qid, (body or b"")[:600], bodies[qid][:600]))
        return problems


def signature(problems):
    """A short name for a failure, to count alike ones together: the first
    problem, numbers blanked, and for a sanitizer report its first frame in
    the project's code."""
    first = re.sub(r"[0-9]+(\.[0-9]+)?", "N", problems[0])[:100]
    first = re.sub(r"\[.*\]", "[...]", first)
    text = "\n".join(problems)
    m = re.search(r"(ERROR: [A-Za-z]+Sanitizer: [a-z-]+|runtime error: [^\n]{0,60})", text)
    if m:
        frame = re.search(r"#[0-9]+ 0x[0-9a-f]+ in (?!__interceptor|__asan|__lsan|__ubsan|malloc|calloc|"
                          r"realloc|strdup|strndup)(\S+) (\S+)", text)
        first = m.group(1) + (" in %s %s" % (frame.group(1), os.path.basename(frame.group(2)))
                              if frame else "")
    return first


def after_received(message):
    """The message after the Received: header we prepend, which ends with
    its date (nothing before the date can hold " +0000" and a CR LF)."""
    j = message.find(b" +0000\r\n")
    return None if j < 0 else message[j + 8:]


# ------------------------------------------------------------------ driver

def make_certificate(directory):
    """A self-signed ECDSA certificate for the test host, or None."""
    if not shutil.which("certtool"):
        return None
    key, cert = os.path.join(directory, "key.pem"), os.path.join(directory, "cert.pem")
    try:
        subprocess.run(["certtool", "--generate-privkey", "--key-type=ecdsa", "--outfile", key],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        subprocess.run(["certtool", "--generate-self-signed", "--load-privkey", key,
                        "--template", os.path.join(TLS_TEMPLATES, "server.tmpl"), "--outfile", cert],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return cert, key


def to_json(script):
    def enc(v):
        if isinstance(v, bytes):
            return {"bytes": v.decode("latin-1")}
        if isinstance(v, list):
            return [enc(x) for x in v]
        if isinstance(v, dict):
            return {k: enc(x) for k, x in v.items()}
        return v
    script = enc(script)
    acts = ",\n  ".join(json.dumps(a) for a in script["actions"])
    head = {k: v for k, v in script.items() if k != "actions"}
    return json.dumps(head)[:-1] + ',\n "actions": [\n  ' + acts + "\n ]}\n"


def from_json(text):
    def dec(v):
        if isinstance(v, dict):
            if set(v) == {"bytes"}:
                return v["bytes"].encode("latin-1")
            return {k: dec(x) for k, x in v.items()}
        if isinstance(v, list):
            return [dec(x) for x in v]
        return v
    return dec(json.loads(text))


def main():
    p = argparse.ArgumentParser(description="Black-box SMTP fuzzing of hw-receive.")
    p.add_argument("--sessions", type=int, default=300, help="how many sessions (default 300)")
    p.add_argument("--seed", default="1", help="the seed; sessions are deterministic per seed")
    p.add_argument("--workers", type=int, default=2, help="sessions run at once (default 2)")
    p.add_argument("--slow-workers", type=int, default=4,
                   help="slow sessions run at once on top of the others (they mostly wait)")
    p.add_argument("--only", type=int, action="append", help="run only this session index")
    p.add_argument("--category", action="append", choices=[c for c, _ in CATEGORIES],
                   help="run only the sessions of this category (of the same numbering)")
    p.add_argument("--replay", nargs="*", metavar="FILE", help="run saved sessions (JSON) only")
    p.add_argument("--no-corpus", action="store_true", help="do not replay the regression corpus")
    p.add_argument("--grace", type=float, default=5.0,
                   help="seconds a session may overrun its deadline (a loaded machine)")
    p.add_argument("--drip-grace", type=float, default=2.5,
                   help="seconds a deadline may be late to cut off a dripping client")
    p.add_argument("--build", default=BUILD, help="the build tree (default: top_builddir)")
    p.add_argument("--save-dir", help="where failing sessions are saved "
                   "(default: tests/receive/smtp-fuzz-failures in the build tree)")
    p.add_argument("--print", dest="print_only", action="store_true",
                   help="print the sessions as JSON instead of running them")
    args = p.parse_args()
    save_dir = args.save_dir or os.path.join(args.build, "tests", "receive", "smtp-fuzz-failures")

    if args.print_only:
        for i in args.only or range(args.sessions):
            print(to_json(generate(args.seed, i)))
        return 0
    if not os.access(os.path.join(args.build, "receive", "hw-receive"), os.X_OK):
        print("SKIP no hw-receive in %s" % args.build)
        return 77

    jobs = []   # (label, script or a way to make it, category)
    if args.replay is not None:
        for path in args.replay:
            with open(path, encoding="utf-8") as f:
                jobs.append((path, from_json(f.read())))
    else:
        if not args.no_corpus:
            for path in sorted(glob.glob(os.path.join(CORPUS, "*.json"))):
                with open(path, encoding="utf-8") as f:
                    jobs.append(("corpus/" + os.path.basename(path), from_json(f.read())))
        for i in args.only or range(args.sessions):
            if not args.category or pick_category(args.seed, i) in args.category:
                jobs.append((i, None))

    workdir = tempfile.mkdtemp(prefix="hw-smtp-fuzz-")
    started = time.monotonic()
    stats = collections.defaultdict(collections.Counter)
    failures = []
    findings = collections.defaultdict(list)
    interrupted = []
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    lock = threading.Lock()
    try:
        tls_files = make_certificate(workdir)
        if not tls_files:
            print("note: no certtool: STARTTLS sessions run without a certificate")
        if not os.path.exists(os.path.join(args.build, "receive", ".libs", "hw-tls.so")) and \
                not os.environ.get("HW_MODULE_DIR"):
            print("note: no hw-tls.so: STARTTLS is not offered")
        runner = Runner(args, workdir, tls_files)

        def one(label, script):
            if script is None:
                script = generate(args.seed, label)
            problems, facts = runner.run(script)
            cat = script["category"]
            with lock:
                s = stats[cat]
                s["sessions"] += 1
                s["seconds"] += facts.get("elapsed", 0)
                s["queued"] += facts["queued"]
                s["exit %s" % facts["status"]] += 1
                s["421 4.4.2"] += facts["timeout_421"]
                if problems and script.get("known_bug"):
                    # A regression kept for a bug not fixed yet: reported,
                    # not failed; remove "known_bug" from the file once fixed.
                    print("XFAIL %s (known bug: %s): %s" % (label, script["known_bug"], problems[0]),
                          flush=True)
                elif script.get("known_bug"):
                    print("XPASS %s: the known bug (%s) is gone; drop the mark" % (
                        label, script["known_bug"]), flush=True)
                elif problems:
                    s["FAILED"] += 1
                    os.makedirs(save_dir, exist_ok=True)
                    name = "%s.json" % (script["name"] if not isinstance(label, str)
                                        else os.path.basename(label)[:-5] + "-replayed")
                    path = os.path.join(save_dir, name)
                    with open(path, "w", encoding="utf-8") as f:
                        f.write(to_json(script))
                    failures.append((label, cat, path, problems))
                    findings[signature(problems)].append(path)
                    print("FAIL session %s (%s): %s" % (label, cat, problems[0]), flush=True)
                    for line in problems[1:]:
                        print("     " + line.replace("\n", "\n     "), flush=True)
                    print("     replay: %s --replay %s" % (os.path.abspath(__file__), path), flush=True)
                done = sum(x["sessions"] for x in stats.values())
                if done % 1000 == 0:
                    print("... %d sessions, %d failed, %.0f s" % (
                        done, sum(x["FAILED"] for x in stats.values()), time.monotonic() - started),
                        flush=True)

        fast = concurrent.futures.ThreadPoolExecutor(max(1, args.workers))
        slow = concurrent.futures.ThreadPoolExecutor(max(1, args.slow_workers))
        futures = []
        for label, script in jobs:
            cat = script["category"] if script else pick_category(args.seed, label)
            pool = slow if cat == "slow" else fast
            futures.append(pool.submit(one, label, script))
        try:
            for fu in futures:
                fu.result()
        except KeyboardInterrupt:
            # Stopped (SIGINT or SIGTERM): finish the running sessions and
            # print the figures so far.
            print("stopped: the figures are of the sessions done", flush=True)
            interrupted.append(True)
            fast.shutdown(cancel_futures=True)
            slow.shutdown(cancel_futures=True)
        fast.shutdown()
        slow.shutdown()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    wall = time.monotonic() - started
    total = collections.Counter()
    print("%-10s %8s %7s %7s %9s %8s  %s" % ("category", "sessions", "failed", "queued", "421 4.4.2",
                                             "sess-s", "exit statuses"))
    for cat in sorted(stats):
        s = stats[cat]
        total.update(s)
        exits = " ".join("%s:%d" % (k[5:], v) for k, v in sorted(s.items()) if k.startswith("exit "))
        print("%-10s %8d %7d %7d %9d %8.1f  %s" % (cat, s["sessions"], s["FAILED"], s["queued"],
                                                   s["421 4.4.2"], s["seconds"], exits))
    print("%-10s %8d %7d %7d %9d %8.1f" % ("total", total["sessions"], total["FAILED"], total["queued"],
                                           total["421 4.4.2"], total["seconds"]))
    print("seed %s, %d sessions in %.1f s wall, %d workers" % (args.seed, total["sessions"], wall,
                                                               args.workers))
    if failures:
        print("%d session(s) failed; saved in %s" % (len(failures), save_dir))
        print("failures by kind (count, kind, first session):")
        for sig, paths in sorted(findings.items(), key=lambda x: -len(x[1])):
            print("  %6d  %s\n          %s" % (len(paths), sig, paths[0]))
    return 1 if failures or interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
