#!/usr/bin/env python3
"""A local webhook for the demo: prints each POST's fields, answers 200."""
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        fields = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8", "replace"),
                                       keep_blank_values=True)
        print(f"webhook: POST {self.path}", flush=True)
        for name, values in fields.items():
            value = values[0]
            if name == "body-mime":
                value = value.replace("\r\n", "\n")
                print(f"  {name}:\n    " + value.rstrip("\n").replace("\n", "\n    "), flush=True)
            else:
                print(f"  {name}: {value[:120]}", flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", int(sys.argv[1])), Hook)
print(f"webhook: listening on 127.0.0.1:{server.server_port}", flush=True)
server.serve_forever()
