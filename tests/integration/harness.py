# SPDX-License-Identifier: MIT
"""Integration test harness of dnsink (Python 3 standard library only).

Each scenario file (test_*.py) is a unittest module whose test cases derive
from DnsinkTest. For every test class the harness starts a real knotd as the
upstream, serving test zones from a temporary directory on a free loopback
port; for every test it writes a dnsink config and test rule files, starts
the real dnsink binary ($DNSINK) and waits until it answers. Queries go
through dkclient ($DKCLIENT, an ldns client with a stable text output) or
kdig. Alerts are read back from the JSON-lines file sink and, when a test
asks for it, from an rsyslogd the harness starts with its own config.
Everything started is stopped by PID in teardown, also when a test fails,
and every wait is bounded.
"""

import json
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

SOURCE_ROOT = os.environ.get("SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
DNSINK = os.environ.get("DNSINK") or os.path.join(SOURCE_ROOT, "build", "src", "dnsink")
DKCLIENT = os.environ.get("DKCLIENT") or os.path.join(
    SOURCE_ROOT, "build", "tests", "integration", "dkclient")
KNOTD = shutil.which("knotd") or "/usr/sbin/knotd"
KNOTC = shutil.which("knotc") or "/usr/sbin/knotc"
KDIG = shutil.which("kdig") or "/usr/bin/kdig"
RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
REPO_RULES = os.path.join(SOURCE_ROOT, "rules")

# Non-default sinkhole values, so a hard-coded default cannot pass.
SINK_V4 = "192.0.2.254"
SINK_V6 = "2001:db8::dead"
SINK_TTL = 42

# Slower under sanitizers and valgrind; every wait below is bounded by these.
START_TIMEOUT = float(os.environ.get("DK_START_TIMEOUT", "15"))

# What a sanitizer or a crash leaves in dnsink's log (stdout and stderr go to
# the same file). ThreadSanitizer reports are "WARNING: ThreadSanitizer: data
# race ...", not "ERROR:", so they are named on their own.
SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                      "==ERROR", "WARNING: ThreadSanitizer", "ThreadSanitizer: reported",
                      "Segmentation fault")


def _tsan_exitcode():
    """The exit status ThreadSanitizer gives a process that reported (66 unless
    TSAN_OPTIONS says otherwise)."""
    m = re.search(r"(?:^|[:, ])exitcode=(\d+)", os.environ.get("TSAN_OPTIONS", ""))
    return int(m.group(1)) if m else 66


TSAN_EXITCODE = _tsan_exitcode()


def sanitizer_problems(log, rc=None):
    """Sanitizer or crash reports in a dnsink log, and a non-zero exit status
    (named when it is ThreadSanitizer's); a list of messages, empty when clean."""
    out = ["sanitizer/crash report (%s) in dnsink log" % pat
           for pat in SANITIZER_PATTERNS if pat in log]
    if rc not in (0, None):
        why = " (the ThreadSanitizer exitcode)" if rc == TSAN_EXITCODE else ""
        out.append("dnsink exited %s%s after SIGTERM" % (rc, why))
    return out

# ---------------------------------------------------------------------------
# Test zones served by knotd. Blocked names exist upstream with real data, so
# a name that leaks through the policy shows up as a wrong answer.

BIG_TXT = ['"big-%02d-%s"' % (i, "x" * 200) for i in range(8)]  # > 1232 octets

ZONES = {
    "example.test": """\
$ORIGIN example.test.
$TTL 300
@       SOA ns hostmaster 1 3600 600 86400 300
@       NS ns
ns      A 127.0.0.1
www     A 192.0.2.10
www     AAAA 2001:db8::10
www     TXT "hello dnsink"
www     TXT "second string"
www2    A 192.0.2.11
big     TXT %s
*.wild  A 192.0.2.99
*.wild  AAAA 2001:db8::99
*.wild  TXT "wildcard answer"
alias   CNAME alias2
alias2  CNAME www.moneropool.ru.
cl-wild   CNAME cl-wild2
cl-wild2  CNAME host.wild.example.test.
cl-plain  CNAME cl-plain2
cl-plain2 CNAME www
cl-nx     CNAME nx
cl-ref    CNAME refused
cl-allow  CNAME ok.moneropool.ru.
cl-exempt CNAME www.moneropool.ru.
cl-dname  DNAME moneropool.ru.
nx      A 192.0.2.20
refused A 192.0.2.21
silent  A 192.0.2.22
added   A 192.0.2.23
broken  A 192.0.2.24
""" % "\nbig     TXT ".join(BIG_TXT),
    "moneropool.ru": """\
$ORIGIN moneropool.ru.
$TTL 300
@       SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300
@       NS ns.example.test.
@       A 198.51.100.1
@       AAAA 2001:db8:bad::1
@       TXT "real pool"
*       A 198.51.100.2
*       AAAA 2001:db8:bad::2
*       TXT "real pool sub"
""",
    "notmoneropool.ru": """\
$ORIGIN notmoneropool.ru.
$TTL 300
@       SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300
@       NS ns.example.test.
@       A 198.51.100.3
""",
    "hopto.org": """\
$ORIGIN hopto.org.
$TTL 300
@       SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300
@       NS ns.example.test.
@       A 198.51.100.4
*       A 198.51.100.5
""",
}

# Test rules written next to the config; the repo's rules/ are loaded too.
TEST_RULES = {
    "it-nxdomain.yml": """\
id: IT.Test.NxDomain
name: Integration nxdomain rule
severity: medium
action: nxdomain
mitre: [TA0011:T1071]
domains:
  - nx.example.test
""",
    "it-refused.yml": """\
id: IT.Test.Refused
name: Integration refused rule
severity: low
action: refused
domains:
  - refused.example.test
""",
    "it-wild.yml": """\
id: IT.Test.WildAlert
name: Integration alert-only rule
severity: info
action: alert
mitre: [TA0011:T1568]
domains:
  - "*.wild.example.test"
""",
    "it-allow.yml": """\
id: IT.Test.Allow
name: Integration allow exception
severity: info
action: allow
domains:
  - ok.moneropool.ru
""",
    "it-probe.yml": """\
id: IT.Test.Probe
name: Readiness probe of the harness (answered locally, never recorded)
severity: info
action: refused
alert: false
domains:
  - ready.probe.invalid
""",
    "it-silent.yml": """\
id: IT.Test.Silent
name: Integration silent sinkhole
severity: low
action: sinkhole
alert: false
domains:
  - silent.example.test
""",
}


# ---------------------------------------------------------------------------
# Small helpers.

_used_ports = set()


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1 (best effort).

    Chosen below the kernel's ephemeral range, not by binding port 0: a port
    from that range can be handed to some other process's outgoing socket
    (another test's client, the upstream's) between this check and the
    moment dnsink binds it, which made "Address already in use" flakes when
    tests ran in parallel."""
    lo, _ = _ephemeral_range()
    base = 10000 if lo > 12000 else 1024
    rnd = random.Random(os.getpid() ^ int(time.monotonic() * 1e6))
    for _ in range(400):
        port = rnd.randrange(base, lo)
        if port in _used_ports:
            continue
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            t.bind(("127.0.0.1", port))
            u.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            t.close()
            u.close()
        _used_ports.add(port)
        return port
    raise RuntimeError("no free port")


def wait_until(pred, timeout, step=0.05, what="condition"):
    """Polls pred() until it returns a true value or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(step)


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28, "ANY": 255}


def build_query(name, qtype="A", qid=0x1234, flags=0x0100, edns=None, qdcount=1):
    """A DNS query in wire form (header, question, optional OPT)."""
    arcount = 1 if edns else 0
    msg = struct.pack("!HHHHHH", qid, flags, qdcount, 0, 0, arcount)
    msg += encode_name(name) + struct.pack("!HH", QTYPES.get(qtype, qtype) if
                                            isinstance(qtype, str) else qtype, 1)
    if edns:
        msg += b"\0" + struct.pack("!HHIH", 41, edns, 0, 0)
    return msg


def udp_queries(port, names, window=64, deadline=30.0, resend_after=1.0):
    """Sends A queries for names over UDP from one socket, window at a time,
    resending one left unanswered for resend_after seconds (same ID), until all
    are answered or deadline seconds pass. Returns {rcode: count} of the answers
    and "unanswered": how many never were."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    s.connect(("127.0.0.1", port))
    rcodes = {}
    sent = answered = 0
    inflight = {}
    end = time.monotonic() + deadline
    try:
        while (sent < len(names) or inflight) and time.monotonic() < end:
            while sent < len(names) and len(inflight) < window:
                qid = sent & 0xFFFF
                q = build_query(names[sent], "A", qid=qid)
                s.send(q)
                inflight[qid] = (q, time.monotonic())
                sent += 1
            r, _, _ = select.select([s], [], [], 0.2)
            if not r:
                now = time.monotonic()
                for qid, (q, t) in list(inflight.items()):
                    if now - t > resend_after:
                        s.send(q)  # a lost datagram on a busy box; same ID
                        inflight[qid] = (q, now)
                continue
            while True:
                try:
                    msg = s.recv(4096)
                except BlockingIOError:
                    break
                qid = struct.unpack("!H", msg[:2])[0]
                if inflight.pop(qid, None) is None:
                    continue
                answered += 1
                rc = msg[3] & 0x0F
                rcodes[rc] = rcodes.get(rc, 0) + 1
    finally:
        s.close()
    rcodes["unanswered"] = len(names) - answered
    return rcodes


def question_end(msg):
    """Offset just after the first question (uncompressed name), or None."""
    off = 12
    while off < len(msg):
        n = msg[off]
        if n == 0:
            return off + 5 if off + 5 <= len(msg) else None
        if n & 0xC0:
            return off + 6
        off += n + 1
    return None


def udp_ask(port, msg, timeout=0.5, host="127.0.0.1"):
    """Sends msg over UDP, returns the reply bytes or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(msg, (host, port))
        return s.recvfrom(65535)[0]
    except OSError:
        return None
    finally:
        s.close()


def read_rule_meta(path):
    """Top-level scalar/list keys of a rule YAML file, without a YAML library."""
    with open(path, encoding="utf-8") as f:
        return read_rule_meta_text(f.read())


def read_rule_meta_text(text):
    """read_rule_meta() on a string."""
    meta = {}
    lines = text.splitlines()
    key = None
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = re.match(r"^([A-Za-z_]+):\s*(.*?)\s*$", line)
        if m:
            key, val = m.group(1), m.group(2)
            val = re.sub(r"\s+#.*$", "", val)
            if val.startswith("[") and val.endswith("]"):
                meta[key] = [v.strip().strip("'\"") for v in val[1:-1].split(",") if v.strip()]
            elif val == "":
                meta[key] = []
            else:
                meta[key] = val.strip("'\"")
            continue
        m = re.match(r"^\s+-\s+(.*?)\s*$", line)
        if m and key and isinstance(meta.get(key), list):
            if key in ("mitre", "domains", "references", "domain_files"):
                meta[key].append(re.sub(r"\s+#.*$", "", m.group(1)).strip("'\""))
    return meta


def repo_rule_with(domain):
    """(path, meta) of the repo rule file whose domains list holds @domain."""
    if not os.path.isdir(REPO_RULES):
        raise AssertionError("no rules/ directory in " + SOURCE_ROOT)
    for fn in sorted(os.listdir(REPO_RULES)):
        if not fn.endswith(".yml"):
            continue
        path = os.path.join(REPO_RULES, fn)
        meta = read_rule_meta(path)
        if domain in meta.get("domains", []):
            return path, meta
    raise AssertionError("no rule file in rules/ lists %r" % domain)


# ---------------------------------------------------------------------------
# dkclient output.

class Answer:
    """A parsed dkclient answer (see dkclient.c print_pkt)."""

    def __init__(self, text, rc):
        self.text = text
        self.exit = rc
        self.timeout = False
        self.id = None
        self.rcode = None
        self.opcode = None
        self.flags = set()
        self.counts = None
        self.size = 0
        self.qd = []
        self.an = []
        self.ns = []
        self.ar = []
        self.edns = None
        self.ede = []
        self.local = None
        for line in text.splitlines():
            parts = line.split(" ")
            k = parts[0]
            if k == "timeout" or k == "noreply":
                self.timeout = True
            elif k == "id":
                self.id = int(parts[1])
            elif k == "rcode":
                self.rcode = parts[1]
            elif k == "local":
                self.local = (parts[1], int(parts[2]))
            elif k == "opcode":
                self.opcode = int(parts[1])
            elif k == "flags":
                self.flags = set(parts[1:])
            elif k == "counts":
                self.counts = tuple(int(x) for x in parts[1:5])
            elif k == "size":
                self.size = int(parts[1])
            elif k == "qd":
                self.qd.append((parts[1], parts[2]))
            elif k in ("an", "ns", "ar"):
                rr = line[3:].split(" ", 4)
                getattr(self, k).append((rr[0], int(rr[1]), rr[2], rr[3],
                                         rr[4] if len(rr) > 4 else ""))
            elif k == "edns":
                if parts[1] == "none":
                    self.edns = None
                else:
                    self.edns = {"udp": int(parts[2]), "version": int(parts[4]),
                                 "do": int(parts[6])}
            elif k == "ede":
                self.ede.append(int(parts[1]))

    def rdata(self, rtype=None):
        """Sorted (type, rdata) of the answer section, optionally of one type."""
        return sorted((t, d) for (_n, _ttl, _c, t, d) in self.an
                      if rtype is None or t == rtype)

    def __repr__(self):
        return "<Answer\n%s>" % self.text


# ---------------------------------------------------------------------------
# Processes.

_live_procs = []


def _kill_leftovers():
    """Last resort (interpreter exit, meson timeout): kill what we started."""
    for pr in _live_procs:
        if pr.p.poll() is None:
            try:
                os.kill(pr.pid, signal.SIGKILL)
                pr.p.wait(2)
            except (OSError, subprocess.TimeoutExpired):
                pass


class Proc:
    """A child process with its log file; stopped by PID."""

    def __init__(self, name, argv, log_path, cwd=None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                  stderr=subprocess.STDOUT, cwd=cwd,
                                  start_new_session=True)
        self.pid = self.p.pid
        self.returncode = None
        _live_procs.append(self)

    def alive(self):
        return self.p.poll() is None

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, timeout=5.0):
        """SIGTERM, wait up to timeout, then SIGKILL. Returns the exit status."""
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.p.wait(5)
        self.returncode = self.p.returncode
        self.log.close()
        return self.returncode


class Knot:
    """knotd serving ZONES on 127.0.0.1:port. With stats, mod-stats counts the
    queries it gets by protocol, read back with knotc (queries())."""

    def __init__(self, root, stats=False, dnstap=None):
        self.dir = os.path.join(root, "knot")
        os.makedirs(self.dir)
        self.port = free_port()
        for zone, text in ZONES.items():
            with open(os.path.join(self.dir, zone + ".zone"), "w") as f:
                f.write(text)
        conf = os.path.join(self.dir, "knot.conf")
        with open(conf, "w") as f:
            f.write("""\
server:
    rundir: "{d}"
    listen: 127.0.0.1@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{d}/db"
log:
  - target: stderr
    any: info
{stats_mod}{tap_mod}template:
  - id: default
    storage: "{d}"
    file: "%s.zone"
    zonefile-sync: -1
    journal-content: none
{stats_use}zone:
{zones}
""".format(d=self.dir, port=self.port,
           zones="".join("  - domain: %s\n" % z for z in ZONES),
           stats_mod="mod-stats:\n  - id: count\n    request-protocol: on\n" if stats else "",
           stats_use="    global-module: mod-stats/count\n" if stats else
                     "    global-module: mod-dnstap/tap\n" if dnstap else "",
           # dnstap: every query and answer written to that file (test_hunt)
           tap_mod=("mod-dnstap:\n  - id: tap\n    sink: \"%s\"\n    log-queries: on\n"
                    "    log-responses: on\n" % dnstap) if dnstap else ""))
        self.proc = Proc("knotd", [KNOTD, "-c", conf], os.path.join(self.dir, "knotd.log"))
        try:
            wait_until(self._ready, START_TIMEOUT, what="knotd to answer")
        except AssertionError:
            self.proc.stop()
            raise AssertionError("knotd did not start:\n" + self.proc.log_text()[-3000:])

    def _ready(self):
        if not self.proc.alive():
            raise AssertionError("knotd exited:\n" + self.proc.log_text()[-3000:])
        r = udp_ask(self.port, build_query("example.test", "SOA", qid=7), 0.2)
        # Zones load after the sockets open: wait for an authoritative answer.
        return r is not None and len(r) > 12 and (r[3] & 0x0F) == 0 and (r[2] & 0x04)

    def queries(self):
        """Queries knotd has answered so far, by protocol: {"udp4": n, "tcp4": n}
        (needs stats=True)."""
        p = subprocess.run([KNOTC, "-s", os.path.join(self.dir, "knot.sock"), "stats",
                            "mod-stats.request-protocol"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=10, stdin=subprocess.DEVNULL)
        out = {"udp4": 0, "tcp4": 0}
        for line in p.stdout.decode("utf-8", "replace").splitlines():
            m = re.match(r"mod-stats\.request-protocol\[(\w+)\] = (\d+)", line.strip())
            if m:
                out[m.group(1)] = int(m.group(2))
        return out

    def stop(self):
        return self.proc.stop()


class Rsyslog:
    """rsyslogd with imudp and imtcp on loopback and imuxsock on a unix datagram
    socket of its own (unix_path), writing what it receives. The UDP input has
    a receive buffer of 8 MiB, as a collector taking bursts needs: at the
    default (about 200 KiB, some 170 records) a burst of alerts overflows it,
    and UDP says nothing to the sender."""

    def __init__(self, root):
        self.dir = os.path.join(root, "rsyslog")
        os.makedirs(self.dir)
        self.udp_port = free_port()
        self.tcp_port = free_port()
        self.unix_path = os.path.join(self.dir, "log.sock")
        self.fields = os.path.join(self.dir, "fields.log")
        self.raw = os.path.join(self.dir, "raw.log")
        conf = os.path.join(self.dir, "rsyslog.conf")
        with open(conf, "w") as f:
            f.write("""\
global(workDirectory="{d}" maxMessageSize="64k")
module(load="imudp")
module(load="imtcp")
module(load="imuxsock" SysSock.Use="off")
input(type="imudp" address="127.0.0.1" port="{u}" rcvbufSize="8m")
input(type="imtcp" address="127.0.0.1" port="{t}")
input(type="imuxsock" Socket="{x}" CreatePath="on" UseSpecialParser="off"
      ParseHostname="on")
template(name="fields" type="string"
  string="%pri%\\t%protocol-version%\\t%app-name%\\t%procid%\\t%msgid%\\t%timereported:::date-rfc3339%\\t%inputname%\\t%msg%\\n")
template(name="raw" type="string" string="%rawmsg%\\n")
*.* action(type="omfile" file="{fields}" template="fields")
*.* action(type="omfile" file="{raw}" template="raw")
""".format(d=self.dir, u=self.udp_port, t=self.tcp_port, x=self.unix_path,
           fields=self.fields, raw=self.raw))
        self.proc = Proc("rsyslogd", [RSYSLOGD, "-n", "-f", conf, "-i",
                                      os.path.join(self.dir, "rsyslogd.pid")],
                         os.path.join(self.dir, "rsyslogd.log"))
        try:
            wait_until(self._tcp_up, START_TIMEOUT, what="rsyslogd TCP input")
            # Probe both inputs until rsyslog has written what it got.
            probe = "<134>1 2020-01-01T00:00:00Z h probe-%s - - - probe\n"
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

            def probed():
                u.sendto((probe % "udp").encode(), ("127.0.0.1", self.udp_port))
                return "probe-udp" in self._read(self.fields)
            wait_until(probed, START_TIMEOUT, step=0.1, what="rsyslogd UDP input")
            u.close()
            with socket.create_connection(("127.0.0.1", self.tcp_port), 2) as t:
                t.sendall((probe % "tcp").encode())
            wait_until(lambda: "probe-tcp" in self._read(self.fields), START_TIMEOUT,
                       what="rsyslogd TCP probe")
            x = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

            def probed_unix():
                try:
                    x.sendto((probe % "unix").encode(), self.unix_path)
                except OSError:
                    return False
                return "probe-unix" in self._read(self.fields)
            wait_until(probed_unix, START_TIMEOUT, step=0.1, what="rsyslogd unix input")
            x.close()
        except AssertionError:
            self.proc.stop()
            raise AssertionError("rsyslogd did not start:\n" + self.proc.log_text()[-3000:])

    def _tcp_up(self):
        if not self.proc.alive():
            raise AssertionError("rsyslogd exited:\n" + self.proc.log_text()[-3000:])
        try:
            socket.create_connection(("127.0.0.1", self.tcp_port), 0.2).close()
            return True
        except OSError:
            return False

    @staticmethod
    def _read(path):
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def messages(self, app=None):
        """Received messages (probes excluded) as dicts of the template fields."""
        out = []
        for line in self._read(self.fields).splitlines():
            parts = line.split("\t", 7)
            if len(parts) < 8 or parts[2].startswith("probe-"):
                continue
            d = dict(zip(("pri", "version", "app", "procid", "msgid", "time", "input",
                          "msg"), parts))
            if app is None or d["app"] == app:
                out.append(d)
        return out

    def raw_lines(self):
        return [ln for ln in self._read(self.raw).splitlines() if "probe-" not in ln]

    def stop(self):
        return self.proc.stop()

    def restart(self):
        """Starts a stopped rsyslogd again on the same ports and files (appending)."""
        if self.proc.alive():
            raise AssertionError("rsyslogd is still running")
        self.proc = Proc("rsyslogd", self.proc.argv, self.proc.log_path)
        try:
            wait_until(self._tcp_up, START_TIMEOUT, what="rsyslogd TCP input after restart")
        except AssertionError:
            self.proc.stop()
            raise AssertionError("rsyslogd did not restart:\n" + self.proc.log_text()[-3000:])


def serve_udp_tcp(srv):
    """Binds srv.udp and a listening srv.tcp on 127.0.0.1:srv.port (0.1 s timeouts, so
    the loops see srv.stop_ev) and starts srv._udp_loop and srv._tcp_loop as threads."""
    srv.stop_ev = threading.Event()
    srv.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.udp.bind(("127.0.0.1", srv.port))
    srv.udp.settimeout(0.1)
    srv.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.tcp.bind(("127.0.0.1", srv.port))
    srv.tcp.listen(8)
    srv.tcp.settimeout(0.1)
    srv.threads = [threading.Thread(target=srv._udp_loop, daemon=True),
                   threading.Thread(target=srv._tcp_loop, daemon=True)]
    for t in srv.threads:
        t.start()


class FakeUpstream:
    """A UDP+TCP DNS server in a thread; handler(query bytes, send) decides."""

    def __init__(self, handler=None):
        self.port = free_port()
        self.queries = []
        self.last_peer = None
        self.handler = handler
        serve_udp_tcp(self)

    def _udp_loop(self):
        while not self.stop_ev.is_set():
            try:
                data, peer = self.udp.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            self.queries.append(("udp", data))
            self.last_peer = peer
            if self.handler:
                self.handler(data, lambda m, p=peer: self.udp.sendto(m, p), "udp")

    def _tcp_loop(self):
        while not self.stop_ev.is_set():
            try:
                c, _ = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(2)
            try:
                while not self.stop_ev.is_set():
                    hdr = c.recv(2)
                    if len(hdr) < 2:
                        break
                    n = struct.unpack("!H", hdr)[0]
                    data = b""
                    while len(data) < n:
                        chunk = c.recv(n - len(data))
                        if not chunk:
                            break
                        data += chunk
                    self.queries.append(("tcp", data))
                    if self.handler:
                        self.handler(data, lambda m: c.sendall(struct.pack("!H", len(m)) + m),
                                     "tcp")
            except OSError:
                pass
            finally:
                c.close()

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(2)
        self.udp.close()
        self.tcp.close()


def make_answer(query, qid=None, question=None, ip="192.0.2.123", ttl=30):
    """An answer to @query: same ID (or @qid), its question (or @question bytes), one A."""
    end = question_end(query)
    q = question if question is not None else query[12:end]
    rid = struct.unpack("!H", query[:2])[0] if qid is None else qid
    flags = 0x8180 | (struct.unpack("!H", query[2:4])[0] & 0x0100)
    hdr = struct.pack("!HHHHHH", rid, flags, 1, 1, 0, 0)
    rr = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, ttl, 4) + socket.inet_aton(ip)
    return hdr + q + rr


class Dnsink:
    """The dnsink binary under test with a generated config."""

    def __init__(self, root, upstreams, rsyslog=None, syslog_transport="udp",
                 timeout_ms=1000, allow=("127.0.0.1/32",), extra_rule_dirs=(),
                 use_repo_rules=True, extra_yaml="", start=True, resolve_ms=None,
                 listen6=False):
        self.root = root
        self.port = free_port()
        self.rules_dir = os.path.join(root, "rules")
        os.makedirs(self.rules_dir, exist_ok=True)
        for fn, text in TEST_RULES.items():
            with open(os.path.join(self.rules_dir, fn), "w") as f:
                f.write(text)
        self.alerts_file = os.path.join(root, "alerts.jsonl")
        self.timeout_ms = timeout_ms
        # Without rsyslog, alerts still go to a UDP collector: a socket we hold
        # and never read, so nothing reaches the host's syslog.
        self._null = None
        if rsyslog:
            port = rsyslog.udp_port if syslog_transport == "udp" else rsyslog.tcp_port
            server = "%s://127.0.0.1:%d" % (syslog_transport, port)
            if syslog_transport == "unix":
                server = "unix://" + rsyslog.unix_path
        else:
            self._null = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._null.bind(("127.0.0.1", 0))
            port = self._null.getsockname()[1]
            server = "%s://127.0.0.1:%d" % (syslog_transport, port)
        rules = ([REPO_RULES + "/"] if use_repo_rules else []) + [self.rules_dir + "/"]
        rules += list(extra_rule_dirs)
        self.conf = os.path.join(root, "dnsink.yml")
        with open(self.conf, "w") as f:
            f.write("listen:\n  - 127.0.0.1:%d\n" % self.port)
            if listen6:
                f.write('  - "[::1]:%d"\n' % self.port)
            # A port is a plain upstream on loopback; a string is written as it is
            # (tls://..., or a YAML mapping with address: and pin_sha256:).
            f.write("upstreams:\n" + "".join(
                "  - %s\n" % (p if isinstance(p, str) else "127.0.0.1:%d" % p)
                for p in upstreams))
            f.write("upstream_timeout_ms: %d\n" % timeout_ms)
            # Unless a test asks for retransmissions, time for one try per
            # upstream (and half one more, for timer slack), as the scenarios
            # written before them expect.
            if resolve_ms is None:
                resolve_ms = max(1, len(upstreams)) * timeout_ms + timeout_ms // 2
            f.write("resolve_timeout_ms: %d\n" % resolve_ms)
            f.write("allow_clients:\n" + "".join("  - %s\n" % a for a in allow))
            f.write("rules:\n" + "".join('  - "%s"\n' % r for r in rules))
            f.write("sinkhole:\n  ipv4: %s\n  ipv6: \"%s\"\n  ttl: %d\n"
                    % (SINK_V4, SINK_V6, SINK_TTL))
            f.write("alerts:\n  syslog:\n    ident: dnsink-it\n    facility: local3\n"
                    "    server: %s\n  file: %s\n" % (server, self.alerts_file))
            f.write(extra_yaml)
        self.proc = None
        if start:
            self.start()

    def start(self):
        self.proc = Proc("dnsink", [DNSINK, "-c", self.conf],
                         os.path.join(self.root, "dnsink.log"), cwd=SOURCE_ROOT)
        self.wait_ready()

    def wait_ready(self):
        def ready():
            if not self.proc.alive():
                raise AssertionError("dnsink exited with %s:\n%s"
                                     % (self.proc.p.returncode, self.proc.log_text()[-4000:]))
            # A name of the silent local rule it-probe.yml: answered without
            # the upstream (which may be dead on purpose) and never recorded.
            r = udp_ask(self.port, build_query("ready.probe.invalid", "A", qid=9), 0.3)
            return r is not None and len(r) >= 12 and r[:2] == b"\x00\x09"
        wait_until(ready, START_TIMEOUT, what="dnsink to answer on port %d" % self.port)

    def alerts(self):
        """Alert records from the file sink, parsed (bad JSON raises). Only whole lines:
        the daemon may be in the middle of writing a drain, and a reader sees the file
        grow, so what follows the last newline is a record not yet complete."""
        try:
            with open(self.alerts_file, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        lines = data[:data.rfind(b"\n") + 1].decode("utf-8").splitlines()
        return [json.loads(ln) for ln in lines if ln.strip()]

    def wait_alerts(self, pred, n=1, timeout=3.0):
        """Waits until at least n file-sink records satisfy pred; returns them."""
        def enough():
            got = [a for a in self.alerts() if pred(a)]
            return got if len(got) >= n else None
        try:
            return wait_until(enough, timeout, what="%d alert record(s)" % n)
        except AssertionError:
            raise AssertionError("expected %d matching alert(s) in %s, have:\n%s"
                                 % (n, self.alerts_file, json.dumps(self.alerts(), indent=1)))

    def problems(self):
        """Sanitizer reports in the log and a non-zero exit after SIGTERM."""
        if self._null:
            self._null.close()
        if self.proc is None:
            return []
        rc = self.proc.stop()
        log = self.proc.log_text()
        out = sanitizer_problems(log, rc)
        if out:
            out.append("dnsink log tail:\n" + log[-4000:])
        return out


def dkclient(*args, timeout=10):
    """Runs dkclient with args; returns (exit code, stdout)."""
    p = subprocess.run([DKCLIENT] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8",
                                                                             "replace")


def query(port, name, qtype="A", tcp=False, edns=None, src=None, qid=None, timeout_ms=2000,
          do=False, host="127.0.0.1"):
    args = []
    if tcp:
        args.append("-t")
    if src:
        args += ["-b", src]
    if edns:
        args += ["-e", edns]
    if do:
        args.append("-D")
    if qid is not None:
        args += ["-i", qid]
    args += ["-w", timeout_ms, "query", host, port, name, qtype]
    rc, out = dkclient(*args, timeout=timeout_ms / 1000 + 10)
    if rc not in (0, 3):
        raise AssertionError("dkclient failed (%d): %s" % (rc, out))
    return Answer(out, rc)


def kdig(port, *args, timeout=10):
    p = subprocess.run([KDIG, "@127.0.0.1", "-p", str(port), "+time=2", "+retry=0"] +
                       [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout, stdin=subprocess.DEVNULL)
    return p.stdout.decode("utf-8", "replace")


def run_dnsink(*args, timeout=30):
    """Runs a dnsink subcommand from the source root; returns (rc, stdout, stderr).
    A sanitizer report on its stderr fails the calling test whatever it expects."""
    p = subprocess.run([DNSINK] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, cwd=SOURCE_ROOT,
                       stdin=subprocess.DEVNULL)
    err = p.stderr.decode("utf-8", "replace")
    found = sanitizer_problems(err)
    if found:
        raise AssertionError("dnsink %s: %s\n%s" % (" ".join(map(str, args)), "; ".join(found),
                                                    err[-4000:]))
    return p.returncode, p.stdout.decode("utf-8", "replace"), err


# ---------------------------------------------------------------------------
# Base test case.

class DnsinkTest(unittest.TestCase):
    """Starts knotd once per class, and a dnsink per test (unless start_dnsink False)."""

    start_dnsink = True
    want_rsyslog = False
    knot_stats = False
    dnsink_kwargs = {}

    @classmethod
    def setUpClass(cls):
        for exe in (DNSINK, DKCLIENT, KNOTD):
            if not os.access(exe, os.X_OK):
                raise AssertionError("missing executable: " + exe)
        cls.class_dir = tempfile.mkdtemp(prefix="dnsink-it-")
        cls.knot = Knot(cls.class_dir, stats=cls.knot_stats)

    @classmethod
    def tearDownClass(cls):
        cls.knot.stop()
        if os.environ.get("DK_KEEP_TMP"):
            print("kept", cls.class_dir, file=sys.stderr)
        else:
            shutil.rmtree(cls.class_dir, ignore_errors=True)

    def setUp(self):
        # A cleanup, not tearDown: it also runs when setUp fails half-way.
        self.addCleanup(self._stop_all)
        self.dir = tempfile.mkdtemp(prefix=self._testMethodName + "-", dir=self.class_dir)
        self._dnsinks = []
        self._stoppers = []
        self.rsyslog = None
        if self.want_rsyslog:
            self.rsyslog = Rsyslog(self.dir)
            self._stoppers.append(self.rsyslog.stop)
        self.dk = None
        if self.start_dnsink:
            self.dk = self.new_dnsink(**self.dnsink_kwargs)

    def new_dnsink(self, upstreams=None, root=None, **kw):
        if upstreams is None:
            upstreams = [self.knot.port]
        if root is None:
            root = self.dir if not self._dnsinks else tempfile.mkdtemp(dir=self.dir)
        start = kw.pop("start", True)
        d = Dnsink(root, upstreams, rsyslog=kw.pop("rsyslog", self.rsyslog), start=False, **kw)
        self._dnsinks.append(d)
        if start:
            d.start()
        return d

    def fake_upstream(self, handler=None):
        f = FakeUpstream(handler)
        self._stoppers.append(f.stop)
        return f

    def _stop_all(self):
        # Stop everything even when one stop fails, then report.
        problems = []
        for d in self._dnsinks:
            try:
                problems += d.problems()
            except Exception as e:  # noqa: BLE001 - keep stopping the rest
                problems.append("stopping dnsink: %r" % e)
                if d.proc and d.proc.alive():
                    os.kill(d.proc.pid, signal.SIGKILL)
        for stop in reversed(self._stoppers):
            try:
                stop()
            except Exception as e:  # noqa: BLE001
                problems.append("stopping a helper: %r" % e)
        if problems:
            self.fail("\n".join(problems))

    # Assertion helpers.

    def assertLocalAnswer(self, a, qname, qtype, rcode, qid=None):
        """Local answers echo ID, RD and question, set QR and RA."""
        self.assertFalse(a.timeout, "no answer for %s %s" % (qname, qtype))
        self.assertEqual(a.rcode, rcode, a)
        if qid is not None:
            self.assertEqual(a.id, qid, a)
        self.assertIn("qr", a.flags, a)
        self.assertIn("rd", a.flags, a)
        self.assertIn("ra", a.flags, a)
        self.assertEqual(len(a.qd), 1, a)
        self.assertEqual(a.qd[0][0], qname if qname.endswith(".") else qname + ".", a)
        self.assertEqual(a.qd[0][1], qtype, a)

    def assertSameAsUpstream(self, name, qtype, tcp=False):
        """dnsink's answer equals knotd's own: rcode, answer rdata, TC."""
        mine = query(self.dk.port, name, qtype, tcp=tcp, edns=1232)
        theirs = query(self.knot.port, name, qtype, tcp=tcp, edns=1232)
        self.assertFalse(theirs.timeout, theirs)
        self.assertFalse(mine.timeout, "dnsink did not answer %s %s" % (name, qtype))
        self.assertEqual(mine.rcode, theirs.rcode, (mine, theirs))
        self.assertEqual(mine.rdata(), theirs.rdata(), (mine, theirs))
        self.assertEqual("tc" in mine.flags, "tc" in theirs.flags, (mine, theirs))
        return mine, theirs


def main():
    import atexit
    atexit.register(_kill_leftovers)
    # meson stops a test that overruns with SIGTERM: exit through atexit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    unittest.main(module="__main__", verbosity=2)
