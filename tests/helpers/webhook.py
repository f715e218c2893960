#!/usr/bin/env python3
"""A recording test webhook for hw-flush.

Listens on 127.0.0.1 (an ephemeral port, written to --port-file), answers
each POST as --plan says and appends one JSON line per request to --log:
path, headers that matter, every form field (body-mime as base64, so the
test can compare bytes), the declared and received lengths, and the start
and end times of the request (to prove no item is POSTed twice at once).

--plan is a JSON file re-read on every request, so a test can change the
answers while the server runs:
  {"status": [500, 200],     # n-th attempt of a queue-id gets status[n]
                             # (the last one repeats)
   "delay_ms": 0,            # sleep before answering
   "location": "http://..."} # Location header for 3xx answers
"""
import argparse
import base64
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
ATTEMPTS = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        start = time.time()
        declared = int(self.headers.get("Content-Length", "-1"))
        raw = self.rfile.read(declared) if declared >= 0 else b""
        pairs = urllib.parse.parse_qsl(raw.decode("ascii"), keep_blank_values=True,
                                       encoding="latin-1", strict_parsing=False)
        fields = {}
        order = []
        for name, value in pairs:
            order.append(name)
            data = value.encode("latin-1")
            if name == "body-mime":
                fields[name] = base64.b64encode(data).decode("ascii")
            else:
                fields[name] = data.decode("utf-8", "replace")
        plan = {}
        try:
            with open(self.server.plan_path) as f:
                plan = json.load(f)
        except (OSError, ValueError):
            pass
        qid = fields.get("queue-id", "")
        with LOCK:
            n = ATTEMPTS.get(qid, 0)
            ATTEMPTS[qid] = n + 1
        statuses = plan.get("status", [200])
        status = statuses[min(n, len(statuses) - 1)]
        delay = plan.get("delay_ms", 0)
        if delay:
            time.sleep(delay / 1000.0)
        record = {
            "path": self.path,
            "method": self.command,
            "content_type": self.headers.get("Content-Type"),
            "authorization": self.headers.get("Authorization"),
            "declared_length": declared,
            "received_length": len(raw),
            "field_order": order,
            "fields": fields,
            "status": status,
            "start": start,
            "end": time.time(),
        }
        with LOCK:
            with open(self.server.log_path, "a") as f:
                f.write(json.dumps(record) + "\n")
        body = b"ok\n"
        self.send_response(status)
        if 300 <= status <= 399:
            self.send_header("Location", plan.get("location", "http://127.0.0.1:9/elsewhere"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that time out or die mid-request are part of the tests


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--plan", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    args = ap.parse_args()
    server = Server(("127.0.0.1", 0), Handler)
    server.log_path = args.log
    server.plan_path = args.plan
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
