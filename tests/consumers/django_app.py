#!/usr/bin/env python3
"""A minimal Django project with django-anymail's inbound views, served on
loopback by Django's WSGI handler in wsgiref (both from Debian), for the
consumer tests (anymail.test).

  django_app.py PORT_FILE STORE_DIR

Routes: /anymail/{mailgun,sendgrid,postmark}/inbound/ (anymail.urls), with
HTTP Basic user:pass (ANYMAIL WEBHOOK_SECRET) and the Mailgun signing key
"mailgun-key". The inbound signal's handler writes what the application
gets for each message into STORE_DIR: N.json (the parsed message's fields,
attachments with their SHA-256) and N.raw (the raw message as the view
received it, UTF-8 encoded again: Django decodes form fields as UTF-8).

Limits: Django refuses request bodies over 2.5 MB by default
(DATA_UPLOAD_MAX_MEMORY_SIZE, "RequestDataTooBig"); a deployment that
receives mail raises it past its largest message, as this one does (None:
no limit)."""
import hashlib
import itertools
import json
import os
import socketserver
import sys
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

PORT_FILE, STORE = sys.argv[1], sys.argv[2]

import django  # noqa: E402
from django.conf import settings  # noqa: E402

settings.configure(
    DEBUG=False,
    SECRET_KEY="consumer-test",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["anymail"],
    MIDDLEWARE=[],
    DATA_UPLOAD_MAX_MEMORY_SIZE=None,
    ANYMAIL={"WEBHOOK_SECRET": "user:pass", "MAILGUN_WEBHOOK_SIGNING_KEY": "mailgun-key"},
    # Errors of the views go to stderr, which the test keeps in a log.
    LOGGING={"version": 1, "disable_existing_loggers": False,
             "handlers": {"stderr": {"class": "logging.StreamHandler"}},
             "loggers": {"django.request": {"handlers": ["stderr"], "level": "ERROR"}}},
)
django.setup()

from django.urls import include, path  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from anymail.signals import inbound  # noqa: E402

urlpatterns = [path("anymail/", include("anymail.urls"))]

_count = itertools.count(1)
_lock = threading.Lock()


def raw_as_received(esp_event):
    """The raw message field the view had, by provider: a form field of
    the request, or RawEmail of Postmark's JSON (the view's esp_event)."""
    if isinstance(esp_event, dict):
        return esp_event.get("RawEmail", "").encode("utf-8")
    for name in ("body-mime", "email"):
        if name in esp_event.POST:
            return esp_event.POST[name].encode("utf-8")
    return b""


def store(sender, event, esp_name, **kwargs):
    msg = event.message
    atts = []
    for a in msg.attachments:
        data = a.get_content_bytes()
        atts.append([a.get_filename(), len(data), hashlib.sha256(data).hexdigest()])
    record = {
        "esp": esp_name,
        "message_id": msg.get("Message-ID", ""),
        "subject": msg.get("Subject", ""),
        "from": str(msg.from_email) if msg.from_email else "",
        "envelope_sender": msg.envelope_sender,
        "envelope_recipient": msg.envelope_recipient,
        "text": msg.text or "",
        "attachments": atts,
    }
    raw = raw_as_received(event.esp_event)
    with _lock:
        n = next(_count)
    with open(os.path.join(STORE, "%d.raw" % n), "wb") as f:
        f.write(raw)
    with open(os.path.join(STORE, "%d.json.tmp" % n), "w") as f:
        json.dump(record, f)
    os.rename(os.path.join(STORE, "%d.json.tmp" % n), os.path.join(STORE, "%d.json" % n))


inbound.connect(store)


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


httpd = make_server("127.0.0.1", 0, get_wsgi_application(), server_class=Server, handler_class=Quiet)
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(httpd.server_address[1]))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
httpd.serve_forever()
