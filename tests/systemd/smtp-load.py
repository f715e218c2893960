#!/usr/bin/env python3
"""SMTP clients for the container checks of nspawn-test.

  flood --source IP --connections N --seconds S
      keeps N connections from IP open for S seconds: a connection the
      server closes (a 421, or systemd dropping it) is opened again at once.
      Prints one JSON line: greetings, 421s, closes without a greeting,
      connect errors, and the most sessions greeted at the same time.

  send --source IP --count K --tag T
      sends K messages one after another, each in its own session, and
      prints one JSON line: the seconds each session took (connect to the
      reply to QUIT), how many were accepted (250 after DATA), and when
      (the wall clock at each 250, by subject).

  hold --count K --tag T --go FILE
      opens K sessions and takes each into the middle of DATA, prints
      "ready", waits (at most 60 s) until FILE exists, then ends each
      message. Prints one JSON line: the subjects the server acknowledged
      (250) and the replies or errors of the others.
"""
import argparse
import json
import os
import selectors
import smtplib
import socket
import sys
import time

SERVER = ("127.0.0.1", 25)


def flood(args):
    sel = selectors.DefaultSelector()
    stats = {"greeted": 0, "refused_421": 0, "closed": 0, "connect_errors": 0, "max_greeted_at_once": 0}
    greeted_now = set()
    end = time.monotonic() + args.seconds

    def open_one():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.bind((args.source, 0))
            s.connect_ex(SERVER)
        except OSError:
            stats["connect_errors"] += 1
            s.close()
            return False
        sel.register(s, selectors.EVENT_READ, b"")
        return True

    def drop(s):
        greeted_now.discard(s)
        sel.unregister(s)
        s.close()

    for _ in range(args.connections):
        open_one()
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except (ConnectionError, OSError):
                data = b""
            if data.startswith(b"220") and s not in greeted_now:
                stats["greeted"] += 1
                greeted_now.add(s)
                stats["max_greeted_at_once"] = max(stats["max_greeted_at_once"], len(greeted_now))
                continue
            if data.startswith(b"421"):
                stats["refused_421"] += 1
            elif not data and s not in greeted_now:
                stats["closed"] += 1
            elif data:
                continue
            drop(s)
            if not open_one():
                time.sleep(0.01)
        # Top up after connect errors.
        while len(sel.get_map()) < args.connections and time.monotonic() < end:
            if not open_one():
                time.sleep(0.05)
                break
    for key in list(sel.get_map().values()):
        drop(key.fileobj)
    print(json.dumps(stats), flush=True)


def send(args):
    times, accepted, errors, accepted_at = [], 0, [], {}
    for i in range(args.count):
        t0 = time.monotonic()
        try:
            with smtplib.SMTP(SERVER[0], SERVER[1], timeout=args.timeout,
                              source_address=(args.source, 0)) as c:
                c.ehlo("normal.test")
                msg = ("From: sender@normal.test\r\nTo: user@example.com\r\n"
                       "Subject: %s-%d\r\n\r\nmessage %d\r\n" % (args.tag, i, i))
                c.sendmail("sender@normal.test", ["user@example.com"], msg)
                accepted_at["%s-%d" % (args.tag, i)] = time.time()
                accepted += 1
        except (OSError, smtplib.SMTPException) as e:
            errors.append("%s: %s" % (type(e).__name__, e))
        times.append(round(time.monotonic() - t0, 3))
        if args.pause:
            time.sleep(args.pause)
    print(json.dumps({"accepted": accepted, "seconds": times, "errors": errors[:3],
                      "accepted_at": accepted_at}), flush=True)


def hold(args):
    sessions, acked, others = [], [], []
    for i in range(args.count):
        subject = "%s-%d" % (args.tag, i)
        try:
            c = smtplib.SMTP(SERVER[0], SERVER[1], timeout=30, source_address=(args.source, 0))
            c.ehlo("hold.test")
            c.mail("sender@hold.test")
            c.rcpt("user@example.com")
            code, _ = c.docmd("DATA")
            if code != 354:
                raise smtplib.SMTPDataError(code, "DATA")
            c.send(("From: sender@hold.test\r\nTo: user@example.com\r\nSubject: %s\r\n\r\n"
                    "the first half\r\n" % subject).encode())
            sessions.append((subject, c))
        except (OSError, smtplib.SMTPException) as e:
            others.append("%s: %s: %s" % (subject, type(e).__name__, e))
    print("ready", flush=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(args.go) and time.monotonic() < deadline:
        time.sleep(0.05)
    for subject, c in sessions:
        try:
            c.send(b"the second half\r\n.\r\n")
            code, text = c.getreply()
            if code == 250:
                acked.append(subject)
            else:
                others.append("%s: %d %s" % (subject, code, text.decode("ascii", "replace")))
            c.quit()
        except (OSError, smtplib.SMTPException) as e:
            others.append("%s: %s: %s" % (subject, type(e).__name__, e))
    print(json.dumps({"acked": acked, "others": others}), flush=True)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    f = sub.add_parser("flood")
    f.add_argument("--source", required=True)
    f.add_argument("--connections", type=int, required=True)
    f.add_argument("--seconds", type=float, required=True)
    s = sub.add_parser("send")
    s.add_argument("--source", required=True)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--tag", required=True)
    s.add_argument("--timeout", type=float, default=60)
    s.add_argument("--pause", type=float, default=0.2)
    h = sub.add_parser("hold")
    h.add_argument("--source", default="127.0.0.1")
    h.add_argument("--count", type=int, required=True)
    h.add_argument("--tag", required=True)
    h.add_argument("--go", required=True)
    args = p.parse_args()
    {"flood": flood, "send": send, "hold": hold}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
