"""A real DNS server for the tests of sender authentication, in the test's
own network namespace, and the resolver of hw-receive pointed at it.

- DnsFixture() moves the test process into a network namespace of its own
  (as root, or as root of a new user namespace otherwise) with only a
  loopback interface, so everything the test starts afterwards (NSD,
  hw-receive, hw-flush, the webhook) shares a loopback no other test sees
  and no query can leave the machine. Create it before any thread starts:
  a thread keeps the namespace it was started in.
- NSD, Debian's authoritative server, serves the zones the test writes on
  127.0.0.153:53 and [::1]:53, over UDP and TCP (127.0.0.153, not
  127.0.0.1, where a machine's own caching resolver may be configured, so
  that a program left unwrapped cannot reach it by accident). An
  authoritative server is
  what a sending domain publishes its records on: zone files in the
  format every operator writes, NXDOMAIN and empty answers where nothing
  is published, and no forwarding anywhere. It starts in about a second.
- wrap(argv) runs argv with /etc/resolv.conf replaced by one naming that
  server (a bind mount in a mount namespace of its own), so only the
  program under test resolves through it.
- silent() freezes the server (SIGSTOP): queries get no answer at all, the
  case a resolver timeout must bound. datagrams() counts the UDP traffic
  of the namespace, to show that a run made no DNS query.
- DkimKey signs with python3-dkim, an implementation independent of the
  verifier, and gives the TXT record of its public key.

Every wait is bounded; stop() (or leaving the with block) ends the server
and removes its files."""
import atexit
import base64
import ctypes
import fcntl
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

NSD = shutil.which("nsd") or "/usr/sbin/nsd"
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
SERIAL_LABEL = "hwtest-serial"
ADDRESS = "127.0.0.153"     # on the namespace's loopback, as all of 127/8
ADDRESS6 = "::1"
RESOLV_MARK = "# the test's name server (tests/helpers/dnsfixture.py)"
START_TIMEOUT = 15.0


class Unavailable(Exception):
    """What the machine lacks for the fixture; the test should skip."""


# --- the network namespace of the test -------------------------------------
_entered = [False]


def _unshare(flags):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def enter_namespace():
    """Moves this process into a new network namespace with loopback up.
    As a user without CAP_SYS_ADMIN, a user namespace comes first, in
    which this process is root (it must still be single-threaded)."""
    if _entered[0]:
        return
    uid, gid = os.getuid(), os.getgid()
    try:
        if uid == 0:
            _unshare(CLONE_NEWNET)
        else:
            _unshare(CLONE_NEWUSER | CLONE_NEWNET)
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", "0 %d 1" % uid)
            _write("/proc/self/gid_map", "0 %d 1" % gid)
    except OSError as e:
        raise Unavailable("cannot make a network namespace (%s); run as root or allow "
                          "unprivileged user namespaces" % e.strerror)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(s, SIOCGIFFLAGS, ifr))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | IFF_UP))
    _entered[0] = True


def datagrams():
    """UDP datagrams sent and received in this network namespace so far
    (/proc/net/snmp is per namespace): unchanged across a run means the run
    made no UDP DNS query to any server."""
    with open("/proc/self/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    names, values = rows[0], rows[1]
    counts = dict(zip(names[1:], (int(v) for v in values[1:])))
    return counts["InDatagrams"] + counts["OutDatagrams"]


def tcp_connects():
    """TCP connections opened in this network namespace so far."""
    with open("/proc/self/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Tcp:")]
    return int(dict(zip(rows[0][1:], rows[1][1:]))["ActiveOpens"])


# --- zone files -------------------------------------------------------------
def _absolute(name):
    return name.rstrip(".").lower() + "."


def txt_rdata(text):
    """A TXT record's text as zone-file strings of at most 255 bytes each
    (RFC 7208 section 3.3 and RFC 6376 section 3.6.2.2: a resolver joins
    them without spaces)."""
    raw = text.encode() if isinstance(text, str) else text
    chunks = [raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""]
    out = []
    for c in chunks:
        esc = "".join(ch if 0x20 <= ord(ch) < 0x7f and ch not in '"\\' else "\\%03d" % ord(ch)
                      for ch in c.decode("latin-1"))
        out.append('"%s"' % esc)
    return " ".join(out)


class Zone:
    def __init__(self, origin):
        self.origin = _absolute(origin)
        self.records = []     # (owner, type, rdata)

    def text(self, serial):
        o = self.origin
        lines = ["$ORIGIN %s" % o, "$TTL 60",
                 "@ IN SOA ns.%s hostmaster.%s %d 3600 600 86400 60" % (o, o, serial),
                 "@ IN NS ns.%s" % o,
                 "ns IN A %s" % ADDRESS,
                 "%s IN TXT \"%d\"" % (SERIAL_LABEL, serial)]
        lines += ["%s IN %s %s" % (owner, rtype, rdata) for owner, rtype, rdata in self.records]
        return "\n".join(lines) + "\n"


# --- a DNS query of our own, to see that the server answers -----------------
def _query(name, qtype, server, timeout):
    """The raw answer to one UDP query, or None."""
    qid = random.randrange(65536)
    packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        packet += bytes([len(label)]) + label.encode()
    packet += b"\0" + struct.pack(">HH", qtype, 1)
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(packet, (server, 53))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                data = s.recv(4096)
                if len(data) >= 12 and struct.unpack(">H", data[:2])[0] == qid:
                    return data
        except OSError:
            return None
    return None


def _skip_name(data, i):
    while i < len(data):
        n = data[i]
        if n & 0xC0 == 0xC0:
            return i + 2
        if n == 0:
            return i + 1
        i += 1 + n
    raise ValueError("truncated name")


def txt_texts(answer):
    """The TXT records of a raw answer, each one's strings joined."""
    if not answer or len(answer) < 12:
        return []
    qd, an = struct.unpack(">HH", answer[4:8])
    i = 12
    for _ in range(qd):
        i = _skip_name(answer, i) + 4
    out = []
    for _ in range(an):
        i = _skip_name(answer, i)
        rtype, _, _, rdlen = struct.unpack(">HHIH", answer[i:i + 10])
        i += 10
        rdata, i = answer[i:i + rdlen], i + rdlen
        if rtype != 16:
            continue
        j, text = 0, b""
        while j < len(rdata):
            text += rdata[j + 1:j + 1 + rdata[j]]
            j += 1 + rdata[j]
        out.append(text)
    return out


# --- the server -------------------------------------------------------------
class DnsFixture:
    """NSD serving the test's zones in the test's network namespace.

        with DnsFixture() as dns:
            dns.zone("example.net")
            dns.txt("example.net", "v=spf1 ip4:192.0.2.7 -all")
            dns.add("mail.example.net", "AAAA", "2001:db8::25")
            dns.serve()
            Session(env, wrap=dns.wrap())

    Records may be added and serve() called again: changed zones are
    reloaded (SIGHUP), a new zone restarts the server. Raises Unavailable
    when the machine cannot run it (the caller skips)."""

    def __init__(self, ipv6=False, resolv_options=()):
        if not os.access(NSD, os.X_OK):
            raise Unavailable("nsd is not installed (Debian package nsd)")
        for tool in ("unshare", "mount"):
            if not shutil.which(tool):
                raise Unavailable("%s is not installed (util-linux, mount)" % tool)
        if not os.path.exists("/etc/resolv.conf"):
            raise Unavailable("/etc/resolv.conf does not exist: nothing to bind-mount over")
        enter_namespace()
        self.dir = tempfile.mkdtemp(prefix="hw-dns-")
        os.chmod(self.dir, 0o755)
        self.zones = {}
        self.serial = 0
        self.proc = None
        self.served = None     # the zone names the running server was started with
        self.frozen = False
        self.resolv = os.path.join(self.dir, "resolv.conf")
        # Also when the test exits before its with block (a skip).
        atexit.register(self.stop)
        self.set_resolver(ipv6=ipv6, options=resolv_options)
        # A sandbox that allows the network namespace may still refuse the
        # mount namespace: find out now rather than as a silent hw-receive.
        probe = subprocess.run(self.wrap(["cat", "/etc/resolv.conf"]), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=30)
        with open(self.resolv, "rb") as f:
            ours = f.read()
        if probe.returncode != 0 or probe.stdout != ours:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise Unavailable("cannot bind-mount a resolv.conf in a mount namespace: %s"
                              % probe.stderr.decode("utf-8", "replace").strip())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    # The resolver hw-receive sees.
    def set_resolver(self, ipv6=False, options=(), nameservers=None):
        """Writes the resolv.conf wrap() mounts: by default our server on
        ADDRESS (on ::1 with ipv6), glibc's default timeouts unless
        options (e.g. "timeout:1") say otherwise."""
        if nameservers is None:
            nameservers = [ADDRESS6 if ipv6 else ADDRESS]
        # The comment tells this file from any other (the resolvers
        # skip comment lines).
        lines = [RESOLV_MARK] + ["nameserver %s" % n for n in nameservers]
        if options:
            lines.append("options " + " ".join(options))
        _write(self.resolv, "\n".join(lines) + "\n")

    def wrap(self, argv=()):
        """argv run in a mount namespace of its own where /etc/resolv.conf
        is ours; the process keeps its pid (nothing forks), so pipes,
        sockets and signals reach the program itself. With no argv, a
        prefix for hwtest's wrap= parameters."""
        script = 'mount --bind -- "$0" /etc/resolv.conf && exec "$@"'
        return ["unshare", "--mount", "--propagation", "private", "--",
                "/bin/sh", "-c", script, self.resolv] + list(argv)

    # Zones.
    def zone(self, origin):
        z = self.zones.get(_absolute(origin))
        if z is None:
            z = self.zones[_absolute(origin)] = Zone(origin)
        return z

    def _zone_of(self, name):
        name = _absolute(name)
        best = None
        for origin, z in self.zones.items():
            if (name == origin or name.endswith("." + origin)) and \
                    (best is None or len(origin) > len(best.origin)):
                best = z
        if best is None:
            raise ValueError("no zone holds %s: add it with zone() first" % name)
        return best, name

    def add(self, name, rtype, rdata):
        """One record; name is absolute (without the final dot), rdata in
        zone-file syntax (TXT through txt())."""
        z, fqdn = self._zone_of(name)
        z.records.append((fqdn, rtype.upper(), rdata))

    def txt(self, name, text):
        self.add(name, "TXT", txt_rdata(text))

    def clear(self, name, rtype=None):
        """Removes name's records (of rtype only, when given)."""
        z, fqdn = self._zone_of(name)
        z.records = [r for r in z.records if not (r[0] == fqdn and (rtype is None or r[1] == rtype.upper()))]

    # The server.
    def _write_files(self):
        self.serial += 1
        for origin, z in self.zones.items():
            _write(os.path.join(self.dir, origin + "zone"), z.text(self.serial))
        d = self.dir
        conf = ["server:",
                "  ip-address: %s" % ADDRESS, "  ip-address: %s" % ADDRESS6, "  port: 53",
                '  username: ""', '  chroot: ""', '  zonesdir: "%s"' % d,
                '  database: ""', '  zonelistfile: "%s/zone.list"' % d,
                '  xfrdfile: "%s/xfrd.state"' % d, '  xfrdir: "%s"' % d,
                '  pidfile: "%s/nsd.pid"' % d, '  logfile: "%s/nsd.log"' % d,
                "  server-count: 1", "  verbosity: 1", "  hide-version: yes",
                "remote-control:", "  control-enable: no"]
        for origin in sorted(self.zones):
            conf += ["zone:", "  name: %s" % origin, "  zonefile: %szone" % origin]
        _write(os.path.join(d, "nsd.conf"), "\n".join(conf) + "\n")

    def serve(self):
        """Writes the zones and (re)starts or reloads the server; returns
        once every zone answers with the new serial."""
        if not self.zones:
            raise ValueError("no zone to serve")
        self.thaw()
        self._write_files()
        if self.proc is not None and self.proc.poll() is None and self.served == set(self.zones):
            # NSD rereads a zone file whose mtime changed (nsd(8), SIGHUP);
            # make the change visible even within the same second.
            later = time.time() + 2
            for origin in self.zones:
                os.utime(os.path.join(self.dir, origin + "zone"), (later, later))
            os.kill(self.proc.pid, signal.SIGHUP)
            if self._wait_serial(5.0):
                return self
        self._restart()
        return self

    def _restart(self):
        self.stop_server()
        log = open(os.path.join(self.dir, "nsd.out"), "wb")
        # Killed with the test, should the test itself be killed (a make
        # timeout): setpriv sets the signal and execs NSD in its place.
        guard = ["setpriv", "--pdeathsig", "KILL"] if shutil.which("setpriv") else []
        self.proc = subprocess.Popen(guard + [NSD, "-d", "-c", os.path.join(self.dir, "nsd.conf")],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        self.served = set(self.zones)
        if not self._wait_serial(START_TIMEOUT):
            raise RuntimeError("nsd did not serve the zones within %ds:\n%s"
                               % (START_TIMEOUT, self.log()))

    def _wait_serial(self, timeout):
        want = str(self.serial).encode()
        deadline = time.monotonic() + timeout
        pending = list(self.zones)
        while pending and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            answer = _query(SERIAL_LABEL + "." + pending[0], 16, ADDRESS, 0.2)
            if answer and bytes([len(want)]) + want in answer[12:]:
                pending.pop(0)
            else:
                time.sleep(0.02)
        return not pending

    def log(self):
        out = ""
        for name in ("nsd.out", "nsd.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    out += f.read()
            except OSError:
                pass
        return out

    def _signal_group(self, sig):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def freeze(self):
        """The server stops answering (every NSD process is stopped);
        queries wait in its sockets unanswered."""
        self._signal_group(signal.SIGSTOP)
        self.frozen = True

    def thaw(self):
        if self.frozen:
            self._signal_group(signal.SIGCONT)
            self.frozen = False

    def silent(self):
        """with dns.silent(): ... runs with the server not answering."""
        fixture = self

        class _Silent:
            def __enter__(self):
                fixture.freeze()
                return fixture

            def __exit__(self, *exc):
                fixture.thaw()
                return False
        return _Silent()

    def query(self, name, qtype=16, server=None, timeout=1.0):
        """The raw answer to one UDP query (qtype 16 is TXT), or None."""
        return _query(name, qtype, server or ADDRESS, timeout)

    def txt_lookup(self, name, server=None):
        """The TXT texts served at name (bytes each), [] when none."""
        return txt_texts(self.query(name, 16, server))

    def stop_server(self):
        if self.proc is None:
            return
        self.thaw()
        self._signal_group(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.proc.wait(10)
        # NSD's server child may outlive the parent by a moment.
        for _ in range(100):
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                break
            except PermissionError:
                break
            time.sleep(0.02)
        self.proc = None

    def stop(self):
        self.stop_server()
        shutil.rmtree(self.dir, ignore_errors=True)


# --- DKIM signing with python3-dkim -----------------------------------------
def _dkim():
    try:
        import dkim
    except ImportError:
        raise Unavailable("python3-dkim is not installed (or this python3 does not see it)")
    return dkim


class DkimKey:
    """A signing key and its DNS record. algorithm is "rsa-sha256" (a
    2048-bit key made by openssl) or "ed25519-sha256" (RFC 8463, through
    python3-nacl)."""

    def __init__(self, domain, selector, algorithm="rsa-sha256", bits=2048):
        _dkim()
        self.domain, self.selector, self.algorithm = domain, selector, algorithm
        if algorithm == "rsa-sha256":
            if not shutil.which("openssl"):
                raise Unavailable("openssl is not installed")
            self.private = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                                           "rsa_keygen_bits:%d" % bits, "-outform", "PEM"],
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                          check=True, timeout=60).stdout
            der = subprocess.run(["openssl", "pkey", "-pubout", "-outform", "DER"], input=self.private,
                                 stdout=subprocess.PIPE, check=True, timeout=60).stdout
            self.public_b64 = base64.b64encode(der).decode()
            self.key_type = "rsa"
        elif algorithm == "ed25519-sha256":
            try:
                import nacl.signing
            except ImportError:
                raise Unavailable("python3-nacl is not installed")
            sk = nacl.signing.SigningKey.generate()
            self.private = base64.b64encode(bytes(sk))
            self.public_b64 = base64.b64encode(bytes(sk.verify_key)).decode()
            self.key_type = "ed25519"
        else:
            raise ValueError("unknown DKIM algorithm %s" % algorithm)

    @property
    def name(self):
        """Where the key record lives."""
        return "%s._domainkey.%s" % (self.selector, self.domain)

    def record(self, revoked=False):
        """The key record's text; revoked gives an empty p= (RFC 6376
        section 3.6.1)."""
        return "v=DKIM1; k=%s; p=%s" % (self.key_type, "" if revoked else self.public_b64)

    def publish(self, dns, revoked=False):
        dns.txt(self.name, self.record(revoked))

    def sign(self, message, canonicalize=("relaxed", "relaxed"), headers=None, length=False,
             domain=None):
        """message (bytes, CRLF lines) with a DKIM-Signature prepended.
        canonicalize is (header, body); length adds l= (the whole body
        as signed); headers lists the fields to sign (From is required)."""
        dkim = _dkim()
        sig = dkim.sign(message, self.selector.encode(), (domain or self.domain).encode(), self.private,
                        canonicalize=tuple(c.encode() for c in canonicalize),
                        signature_algorithm=self.algorithm.encode(),
                        include_headers=[h.encode() for h in headers] if headers else None,
                        length=length, linesep=b"\r\n")
        if not sig:
            raise RuntimeError("python3-dkim made no signature")
        return sig + message


def signature_value(signed):
    """The b= value of the first DKIM-Signature of a signed message, with
    folding whitespace removed (what header.b abbreviates)."""
    head = signed.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    field = head.split("\r\n")
    text = ""
    for i, line in enumerate(field):
        if line.lower().startswith("dkim-signature:"):
            text = line
            for cont in field[i + 1:]:
                if cont[:1] in (" ", "\t"):
                    text += cont
                else:
                    break
            break
    for tag in text.split(":", 1)[1].split(";"):
        k, _, v = tag.partition("=")
        if k.strip() == "b":
            return "".join(v.split())
    return None

