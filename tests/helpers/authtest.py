"""What the sender-authentication tests (tests/auth/) share: the
Authentication-Results: header parsed by RFC 8601's grammar, and one
message delivered to hw-receive with the checks on, its resolver pointed
at the test's DNS server (dnsfixture.py).

Tests look at method=result pairs and properties, not at the header's
exact text: folding, order of properties and comments are the verifier's
to choose."""
import os
import re
import time

from hwtest import HOSTNAME, MODULE_DIR, Session, base_env, skip, spool_names, split_received

AR_NAME = b"authentication-results"


def require_module():
    """Skips the test when hw-auth.so was not built (configure found no
    libspf2, libopendkim or libopendmarc)."""
    path = os.path.join(MODULE_DIR, "hw-auth.so")
    if not os.path.exists(path):
        skip("%s is not built: no sender authentication to test" % path)


# --- RFC 8601 ---------------------------------------------------------------
def _tokens(value):
    """The value's tokens: ";", "=", "/" and words or quoted strings, with
    comments (nested, RFC 5322 CFWS) set apart. Yields (kind, text)."""
    i, n = 0, len(value)
    while i < n:
        c = value[i]
        if c in " \t\r\n":
            i += 1
        elif c == "(":
            depth, j, text = 1, i + 1, ""
            while j < n and depth:
                if value[j] == "\\" and j + 1 < n:
                    text += value[j + 1]
                    j += 2
                    continue
                depth += {"(": 1, ")": -1}.get(value[j], 0)
                if depth:
                    text += value[j]
                j += 1
            if depth:
                raise ValueError("unclosed comment in %r" % value)
            yield ("comment", text)
            i = j
        elif c == '"':
            j, text = i + 1, ""
            while j < n and value[j] != '"':
                if value[j] == "\\" and j + 1 < n:
                    j += 1
                text += value[j]
                j += 1
            if j >= n:
                raise ValueError("unclosed quoted string in %r" % value)
            yield ("word", text)
            i = j + 1
        elif c in ";=":
            yield (c, c)
            i += 1
        else:
            j = i
            while j < n and value[j] not in ' \t\r\n();="':
                j += 1
            yield ("word", value[i:j])
            i = j


class Result:
    """One resinfo: method, result, reason, properties (ptype.property ->
    list of values) and the comments that came with it."""

    def __init__(self, method, version, result):
        self.method, self.version, self.result = method, version, result
        self.reason = None
        self.props = {}
        self.comments = []

    def prop(self, name):
        """The first value of a property, lower-cased name ("header.d")."""
        values = self.props.get(name.lower())
        return values[0] if values else None

    def __repr__(self):
        props = " ".join("%s=%s" % (k, v) for k, vs in self.props.items() for v in vs)
        return "%s=%s%s" % (self.method, self.result, (" " + props) if props else "")


class AuthResults:
    def __init__(self, servid, version, results):
        self.servid, self.version, self.results = servid, version, results

    def of(self, method):
        return [r for r in self.results if r.method == method]

    def one(self, method):
        """The one result of method, or None when there are none or several."""
        rs = self.of(method)
        return rs[0] if len(rs) == 1 else None

    def __repr__(self):
        return "%s; %s" % (self.servid, "; ".join(map(repr, self.results)))


def parse_ar(value):
    """An Authentication-Results: value (unfolded or not, without the field
    name) by RFC 8601 section 2.2; raises ValueError on what the grammar
    does not allow."""
    toks = [t for t in _tokens(value)]
    words = [t for t in toks if t[0] != "comment"]
    if not words or words[0][0] != "word":
        raise ValueError("no authserv-id in %r" % value)
    servid = words[0][1]
    k = 1
    version = None
    if k < len(words) and words[k][0] == "word" and words[k][1].isdigit():
        version = words[k][1]
        k += 1
    results = []
    if k < len(words) and words[k] == ("word", "none"):
        return AuthResults(servid, version, [])
    # Re-walk with comments, attaching them to the resinfo they follow.
    seen = 0
    i = 0
    while i < len(toks) and seen < k:
        if toks[i][0] != "comment":
            seen += 1
        i += 1
    current = None
    expect = []
    while i < len(toks):
        kind, text = toks[i]
        i += 1
        if kind == "comment":
            if current:
                current.comments.append(text)
            continue
        if kind == ";":
            if expect:
                raise ValueError("incomplete resinfo before ';' in %r" % value)
            current = None
            continue
        if kind != "word":
            raise ValueError("unexpected %r in %r" % (text, value))
        # word "=" word
        j = i
        while j < len(toks) and toks[j][0] == "comment":
            j += 1
        if j >= len(toks) or toks[j][0] != "=":
            raise ValueError("%r is not followed by '=' in %r" % (text, value))
        j += 1
        while j < len(toks) and toks[j][0] == "comment":
            if current:
                current.comments.append(toks[j][1])
            j += 1
        if j >= len(toks) or toks[j][0] != "word":
            raise ValueError("no value after %r= in %r" % (text, value))
        val = toks[j][1]
        i = j + 1
        key = text.lower()
        if current is None:
            method, _, mversion = key.partition("/")
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", method):
                raise ValueError("bad method %r" % key)
            current = Result(method, mversion or None, val.lower())
            results.append(current)
        elif key == "reason":
            current.reason = val
        elif "." in key:
            current.props.setdefault(key, []).append(val)
        else:
            raise ValueError("%r is neither reason nor ptype.property in %r" % (text, value))
    return AuthResults(servid, version, results)


def header_fields(message):
    """(name, raw value) of each header field of message (bytes), in order,
    the value unfolded."""
    head = message.split(b"\r\n\r\n", 1)[0]
    fields = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1][1] += b" " + line.strip()
        elif b":" in line:
            name, _, value = line.partition(b":")
            fields.append([name, value.strip()])
    return [(n, v) for n, v in fields]


def auth_json_problems(obj, ar):
    """How the verdicts as JSON (the payload's auth-results, the decision
    request's message.auth: {"spf": {...}, "dkim": [...], "dmarc": {...}})
    differ from the header ar, as a list; [] when they agree."""
    if not isinstance(obj, dict):
        return ["not a JSON object: %r" % (obj,)]
    problems = []
    spf, dmarc, dkim = obj.get("spf") or {}, obj.get("dmarc") or {}, obj.get("dkim")
    h_spf, h_dmarc = ar.one("spf"), ar.one("dmarc")
    if h_spf and spf.get("result") != h_spf.result:
        problems.append("spf %r, header %s" % (spf.get("result"), h_spf.result))
    if h_dmarc:
        if dmarc.get("result") != h_dmarc.result:
            problems.append("dmarc %r, header %s" % (dmarc.get("result"), h_dmarc.result))
        if dmarc.get("from") != h_dmarc.prop("header.from"):
            problems.append("dmarc from %r, header %s" % (dmarc.get("from"), h_dmarc.prop("header.from")))
        if h_dmarc.prop("policy.dmarc") and dmarc.get("policy") != h_dmarc.prop("policy.dmarc"):
            problems.append("dmarc policy %r, header %s" % (dmarc.get("policy"), h_dmarc.prop("policy.dmarc")))
    signed = [r for r in ar.of("dkim") if r.result != "none"]
    if not isinstance(dkim, list):
        problems.append("dkim is not a list: %r" % (dkim,))
    else:
        got = [(d.get("result"), d.get("domain"), d.get("selector")) for d in dkim]
        want = [(r.result, r.prop("header.d"), r.prop("header.s")) for r in signed]
        if got != want:
            problems.append("dkim %r, header %r" % (got, want))
    return problems


# --- one message through hw-receive ---------------------------------------
class SpoolItem:
    """A spool item read loosely: the envelope as (key, value) lines, in
    order, whatever keys it has (the verdict's own lines among them), and
    the message after it."""

    def __init__(self, data):
        end = data.find(b"\n\n")
        if end < 0:
            raise ValueError("no end of envelope")
        self.envelope = [tuple(line.split(" ", 1) + [""])[:2]
                         for line in data[:end].decode("utf-8", "replace").split("\n")[1:]]
        self.message = data[end + 2:]

    def values(self, key):
        return [v for k, v in self.envelope if k == key]


def read_spool_item(spool, name):
    with open(os.path.join(spool, "pending", name), "rb") as f:
        return SpoolItem(f.read())


class Delivery:
    def __init__(self):
        self.replies = {}       # command -> reply lines
        self.final = None       # the reply to the final dot, first line
        self.item = None        # the spooled item (hwtest.Item), or None
        self.spooled = []       # names in pending/
        self.elapsed = None     # seconds from the final dot to its reply
        self.stderr = ""
        self.ar = None          # our AuthResults, or None
        self.ar_problem = None  # why there is none, or what is wrong

    def result(self, method):
        """The one result of method in our header, or None."""
        return self.ar.one(method) if self.ar else None

    def results(self, method):
        return self.ar.of(method) if self.ar else []

    def message_fields(self):
        return header_fields(self.after_received) if self.item else []

    def __repr__(self):
        return "<%s; %s>" % (self.final, self.ar if self.ar else self.ar_problem)


def our_header(delivery, servid):
    """Finds our Authentication-Results: header: the field right below our
    Received: header, and the only one there with our authserv-id."""
    m, rest = split_received(delivery.item.message)
    delivery.after_received = rest
    if not m:
        delivery.ar_problem = "no Received: header of ours on top"
        return
    fields = header_fields(rest)
    if not fields or fields[0][0].lower() != AR_NAME:
        delivery.ar_problem = "the field below Received: is %r" % (fields[0][0] if fields else None)
        return
    try:
        delivery.ar = parse_ar(fields[0][1].decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        delivery.ar_problem = "does not parse: %s" % e
        return
    if delivery.ar.servid.lower() != servid.lower():
        delivery.ar_problem = "authserv-id %r, not %r" % (delivery.ar.servid, servid)
        delivery.ar = None


def deliver(dns, spool, message, sender="alice@example.net", helo="client.example.net",
            remote="192.0.2.7", rcpt="bob@example.com", stderr_path=None, timeout=30.0, **env):
    """One SMTP transaction with hw-receive in dns's resolver, the checks on
    (AUTH_CHECKS=on unless env says otherwise); returns a Delivery."""
    settings = {"AUTH_CHECKS": "on", "REMOTE_ADDR": remote, "REMOTE_PORT": "40025"}
    settings.update(env)
    d = Delivery()
    s = Session(base_env(spool, **settings), stderr_path=stderr_path, wrap=dns.wrap())
    try:
        d.replies["greeting"] = s.read_reply(timeout)
        for cmd in ("EHLO " + helo, "MAIL FROM:<%s>" % sender, "RCPT TO:<%s>" % rcpt, "DATA"):
            s.send(cmd.encode() + b"\r\n")
            d.replies[cmd.split()[0].split(":")[0]] = s.read_reply(timeout)
        stuffed = b"\r\n".join((b"." + l if l.startswith(b".") else l) for l in message.split(b"\r\n"))
        if not stuffed.endswith(b"\r\n"):
            stuffed += b"\r\n"
        s.send(stuffed + b".\r\n", timeout)
        started = time.monotonic()
        reply = s.read_reply(timeout)
        d.elapsed = time.monotonic() - started
        d.final = reply[0] if reply else None
        s.send(b"QUIT\r\n")
        s.read_reply(5)
        s.wait(10)
    except (EOFError, TimeoutError) as e:
        d.final = d.final or "(%s)" % e
    finally:
        s.close()
        d.stderr = s.stderr()
    d.spooled = spool_names(spool, "pending")
    if len(d.spooled) == 1:
        d.item = read_spool_item(spool, d.spooled[0])
        our_header(d, env.get("AUTH_SERV_ID", HOSTNAME))
    else:
        d.ar_problem = "%d items spooled" % len(d.spooled)
    return d


class Spools:
    """A new empty spool directory for every delivery, under root."""

    def __init__(self, root):
        self.root, self.n = root, 0

    def __call__(self):
        self.n += 1
        path = os.path.join(self.root, "spool%d" % self.n)
        os.makedirs(path)
        return path
