#!/usr/bin/env python3
"""The test webhook: one HTTP server for every test that needs something to
POST to (hw-flush's deliveries, the decision API, the container test, the
demo). It listens on loopback only, answers as told and records each
request.

Run as a program (the integration tests of hw-flush, nspawn-test, the
demo), it answers as --plan says and appends one JSON line per request to
--log. Run in a thread of the test (serve()), it answers each path as its
Route says and keeps the requests in memory.

--plan is a JSON file re-read on every request, so a test can change the
answers while the server runs (a missing file answers 200):
  {"status": [500, 200],     # n-th attempt of a queue-id gets status[n]
                             # (the last one repeats)
   "delay_ms": 0,            # sleep before answering
   "location": "http://...", # Location header for 3xx answers
   "headers": {"Retry-After": "3"},  # sent with every answer
   "record_body": false}     # keep the raw body (base64) in the record
or a bare number, the status of every request (`echo 503 >plan`).

A record holds the path, method, the headers that matter (and all of them,
names in lower case, under "headers"), every form field
(body-mime as base64, so a test can compare bytes), the same fields flat at
the top level for one-line readers (but body-mime), the declared and
received lengths, the status answered, and the start and end times of the
request (to prove no item is POSTed twice at once); "time" is the end.
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

FORM = "application/x-www-form-urlencoded"


class Route:
    """What the server answers on one path, when it runs in a thread."""

    def __init__(self, status=200, body=b'{"decision":"allow"}', headers=None, hang=False, delay_ms=0,
                 pick=None):
        self.status = status
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.headers = headers or {}
        self.hang = hang
        self.delay_ms = delay_ms    # sleep before answering
        self.pick = pick            # request body -> the Route that answers it


def read_plan(path):
    try:
        with open(path) as f:
            plan = json.load(f)
    except (OSError, ValueError):
        return {}
    return {"status": [plan]} if isinstance(plan, int) else plan


def form_fields(raw):
    """The form's fields in order, each value as bytes."""
    pairs = urllib.parse.parse_qsl(raw.decode("ascii"), keep_blank_values=True,
                                   encoding="latin-1", strict_parsing=False)
    return [(name, value.encode("latin-1")) for name, value in pairs]


def print_request(path, form):
    print("webhook: POST %s" % path, flush=True)
    for name, data in form:
        value = data.decode("utf-8", "replace")
        if name == "body-mime":
            value = value.replace("\r\n", "\n").rstrip("\n").replace("\n", "\n    ")
            print("  %s:\n    %s" % (name, value), flush=True)
        else:
            print("  %s: %s" % (name, value[:120]), flush=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The status line and headers go out in one write, the body in another:
    # with Nagle's algorithm the body would wait for the client's delayed
    # ACK (40 ms on Linux) on every request of a kept-alive connection.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def answer(self, fields, raw=b""):
        """(status, headers, body, hang) for this request."""
        srv = self.server
        if srv.routes is not None:
            route = srv.routes.get(self.path)
            if route is None:
                return 404, {}, b"", False
            if route.pick:
                route = route.pick(raw)
            if route.delay_ms:
                time.sleep(route.delay_ms / 1000.0)
            headers = dict({"Content-Type": "application/json"}, **route.headers)
            return route.status, headers, route.body, route.hang
        plan = read_plan(srv.plan_path) if srv.plan_path else {}
        qid = fields.get("queue-id", "")
        with srv.lock:
            n = srv.attempts.get(qid, 0)
            srv.attempts[qid] = n + 1
        statuses = plan.get("status", [200])
        status = statuses[min(n, len(statuses) - 1)]
        if plan.get("delay_ms"):
            time.sleep(plan["delay_ms"] / 1000.0)
        headers = dict(plan.get("headers", {}))
        if 300 <= status <= 399:
            headers["Location"] = plan.get("location", "http://127.0.0.1:9/elsewhere")
        return status, headers, b"ok\n", False

    def do_POST(self):
        srv = self.server
        start = time.time()
        declared = int(self.headers.get("Content-Length", "-1"))
        raw = self.rfile.read(declared) if declared >= 0 else b""
        content_type = self.headers.get("Content-Type")
        form = form_fields(raw) if content_type == FORM else []
        fields = {}
        for name, data in form:
            if name == "body-mime":
                fields[name] = base64.b64encode(data).decode("ascii")
            else:
                fields[name] = data.decode("utf-8", "replace")
        if srv.print_requests:
            print_request(self.path, form)
        status, headers, body, hang = self.answer(fields, raw)
        plan = read_plan(srv.plan_path) if srv.plan_path else {}
        record = {
            "path": self.path,
            "method": self.command,
            "content_type": content_type,
            "authorization": self.headers.get("Authorization"),
            "declared_length": declared,
            "received_length": len(raw),
            "field_order": [name for name, _ in form],
            "fields": fields,
            "status": status,
            "start": start,
            "client_port": self.client_address[1],
            "headers": {k.lower(): v for k, v in self.headers.items()},
        }
        if plan.get("record_body"):
            record["raw"] = base64.b64encode(raw).decode("ascii")
        for name, value in fields.items():
            if name != "body-mime":
                record.setdefault(name, value)
        srv.record(record, dict(self.headers.items()), raw)
        if hang:
            # Holds the connection without answering until the server stops.
            srv.stop.wait(20)
            self.close_connection = True
            return
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address="127.0.0.1", port=0, log_path=None, plan_path=None, routes=None,
                 print_requests=False):
        super().__init__((address, port), Handler)
        self.log_path = log_path
        self.plan_path = plan_path
        self.routes = routes
        self.print_requests = print_requests
        self.lock = threading.Lock()
        self.attempts = {}
        self.requests = []
        self.stop = threading.Event()

    def record(self, record, headers, raw):
        record["end"] = record["time"] = time.time()
        with self.lock:
            self.requests.append(dict(record, headers=headers, body=raw))
            if self.log_path:
                with open(self.log_path, "a") as f:
                    f.write(json.dumps(record) + "\n")

    def handle_error(self, request, client_address):
        pass  # clients that time out or die mid-request are part of the tests


class Thread:
    """The server in a thread of the test, answering each path by routes."""

    def __init__(self, routes):
        self.httpd = Server(routes=routes)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    @property
    def requests(self):
        """Each request: its record, its headers and its raw body."""
        return self.httpd.requests

    def close(self):
        self.httpd.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def write_atomically(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0: an ephemeral port (see --port-file)")
    ap.add_argument("--port-file", help="written with the port once listening")
    ap.add_argument("--pid-file", help="written with our pid once listening")
    ap.add_argument("--log", help="JSON lines, one per request")
    # --status-file: the container test's name for a plan that is a number.
    ap.add_argument("--plan", "--status-file", help="how to answer (see above); 200 when absent")
    ap.add_argument("--print", action="store_true", help="print each request's fields")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    args = ap.parse_args()
    server = Server(args.address, args.port, log_path=args.log, plan_path=args.plan,
                    print_requests=args.print)
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    if args.port_file:
        write_atomically(args.port_file, str(server.server_address[1]))
    if args.pid_file:
        write_atomically(args.pid_file, str(os.getpid()))
    if args.print:
        print("webhook: listening on %s:%d" % server.server_address[:2], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
