#!/usr/bin/env python3
"""A test webhook: records each POST as one JSON line and answers with the
status found in a control file (200 when the file is missing), so a test
can make the webhook fail and recover while hw-flush keeps trying."""
import argparse
import json
import os
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEPT = ("queue-id", "recipient", "sender", "subject", "from", "timestamp",
        "token", "signature")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True, help="JSON lines, one per POST")
    ap.add_argument("--status-file", required=True)
    args = ap.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            try:
                with open(args.status_file) as f:
                    status = int(f.read().strip() or 200)
            except FileNotFoundError:
                status = 200
            fields = urllib.parse.parse_qs(body.decode("utf-8", "replace"),
                                           keep_blank_values=True)
            record = {k: fields[k][0] for k in KEPT if k in fields}
            record["path"] = self.path
            record["status"] = status
            record["time"] = time.time()
            record["body-mime-bytes"] = len(fields.get("body-mime", [""])[0])
            with open(args.log, "a") as f:
                f.write(json.dumps(record) + "\n")
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *unused):
            pass

    server = ThreadingHTTPServer((args.address, args.port), Handler)
    server.daemon_threads = True
    # Tell the caller we are listening.
    with open(args.log + ".ready", "w") as f:
        f.write(str(os.getpid()))
    server.serve_forever()


if __name__ == "__main__":
    main()
