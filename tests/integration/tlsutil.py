# SPDX-License-Identifier: MIT
"""TLS parts for the integration tests: certificates made with certtool
(gnutls-bin) under a test CA, and unbound from Debian as a real DNS-over-TLS
server (tls-service-key) forwarding to the class's knotd, with its query log
read back so a test can tell which queries reached it."""

import base64
import hashlib
import os
import re
import shutil
import socket
import subprocess

import harness

CERTTOOL = shutil.which("certtool") or "/usr/bin/certtool"
UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"


def _certtool(*args):
    p = subprocess.run([CERTTOOL] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise AssertionError("certtool %s failed:\n%s" % (" ".join(args), p.stdout.decode()))
    return p.stdout


class CA:
    """A test certificate authority in @dir: ca.pem and its key."""

    def __init__(self, d, name="dnsink test CA"):
        os.makedirs(d, exist_ok=True)
        self.dir = d
        self.key = os.path.join(d, "ca.key")
        self.pem = os.path.join(d, "ca.pem")
        tmpl = os.path.join(d, "ca.tmpl")
        with open(tmpl, "w") as f:
            f.write('cn = "%s"\nca\ncert_signing_key\nexpiration_days = 30\n' % name)
        _certtool("--generate-privkey", "--key-type", "ecdsa", "--outfile", self.key)
        _certtool("--generate-self-signed", "--load-privkey", self.key, "--template", tmpl,
                  "--outfile", self.pem)

    def issue(self, stem, name, expired=False):
        """A server certificate for DNS name @name (and IP 127.0.0.1) signed by this CA:
        returns (cert path, key path). @expired: valid in 2020 only."""
        key = os.path.join(self.dir, stem + ".key")
        pem = os.path.join(self.dir, stem + ".pem")
        tmpl = os.path.join(self.dir, stem + ".tmpl")
        with open(tmpl, "w") as f:
            f.write('cn = "%s"\ndns_name = "%s"\nip_address = "127.0.0.1"\n'
                    'tls_www_server\nsigning_key\nencryption_key\n' % (name, name))
            if expired:
                f.write('activation_date = "2020-01-01 00:00:00"\n'
                        'expiration_date = "2020-02-01 00:00:00"\n')
            else:
                f.write("expiration_days = 30\n")
        _certtool("--generate-privkey", "--key-type", "ecdsa", "--outfile", key)
        _certtool("--generate-certificate", "--load-privkey", key, "--load-ca-certificate",
                  self.pem, "--load-ca-privkey", self.key, "--template", tmpl, "--outfile", pem)
        return pem, key


def spki_pin(key):
    """base64(SHA-256(SubjectPublicKeyInfo)) of the public half of private key @key."""
    der = _certtool("--load-privkey", key, "--pubkey-info", "--outder")
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


class Unbound:
    """unbound serving DNS over TLS on 127.0.0.1:port with @cert/@key, forwarding
    to knotd on @knot_port. The session ticket key is a file of its own, so a
    restart keeps tickets valid (resumption across restarts)."""

    def __init__(self, root, knot_port, cert, key, port=None):
        self.dir = root
        os.makedirs(root, exist_ok=True)
        self.port = port or harness.free_port()
        self.log_path = os.path.join(root, "unbound.log")
        self.ticket = os.path.join(root, "ticket.key")
        with open(self.ticket, "wb") as f:
            f.write(os.urandom(80))
        self.conf = os.path.join(root, "unbound.conf")
        with open(self.conf, "w") as f:
            f.write("""\
server:
  interface: 127.0.0.1@{port}
  tls-port: {port}
  tls-service-key: "{key}"
  tls-service-pem: "{cert}"
  tls-session-ticket-keys: "{ticket}"
  username: ""
  chroot: ""
  directory: "{d}"
  pidfile: "{d}/unbound.pid"
  use-syslog: no
  logfile: "{log}"
  log-queries: yes
  verbosity: 1
  num-threads: 1
  so-reuseport: no
  incoming-num-tcp: 256
  do-not-query-localhost: no
  module-config: "iterator"
  qname-minimisation: no
  access-control: 127.0.0.0/8 allow
  # test. is one of unbound's default local zones (RFC 6761: NXDOMAIN); ours live there.
  local-zone: "test." nodefault
  domain-insecure: "test."
remote-control:
  control-enable: no
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@{knot}
""".format(port=self.port, key=key, cert=cert, ticket=self.ticket, d=root,
           log=self.log_path, knot=knot_port))
        self.start()

    def start(self):
        self.started = self.log_text().count("start of service")
        self.proc = harness.Proc("unbound", [UNBOUND, "-d", "-c", self.conf],
                                 os.path.join(self.dir, "unbound.out"))
        harness.wait_until(self._ready, harness.START_TIMEOUT, what="unbound to serve TLS")

    def _ready(self):
        if not self.proc.alive():
            raise AssertionError("unbound exited:\n" + self.proc.log_text()[-3000:] +
                                 self.log_text()[-3000:])
        return self.log_text().count("start of service") > self.started

    def log_text(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def queries(self, name=None):
        """Query names unbound logged (log-queries), optionally only those containing @name."""
        out = re.findall(r"info: 127\.0\.0\.1 (\S+) \S+ IN", self.log_text())
        return [q for q in out if name is None or name in q]

    def stop(self):
        return self.proc.stop()


DNSDIST = shutil.which("dnsdist") or "/usr/bin/dnsdist"


class Dnsdist:
    """dnsdist from Debian with a DNS-over-HTTPS frontend on 127.0.0.1:port
    (path /dns-query, @cert/@key) in front of knotd on @knot_port. Every query
    it gets is written to its query log (LogAction), read back by queries()."""

    def __init__(self, root, knot_port, cert, key):
        self.dir = root
        os.makedirs(root, exist_ok=True)
        self.port = harness.free_port()
        self.qlog = os.path.join(root, "queries.log")
        self.conf = os.path.join(root, "dnsdist.conf")
        with open(self.conf, "w") as f:
            f.write("""\
setSecurityPollSuffix("")
addDOHLocal("127.0.0.1:{port}", "{cert}", "{key}", "/dns-query")
newServer({{address="127.0.0.1:{knot}", healthCheckMode="up"}})
addAction(AllRule(), LogAction("{qlog}", false, true, false))
""".format(port=self.port, cert=cert, key=key, knot=knot_port, qlog=self.qlog))
        self.proc = harness.Proc("dnsdist", [DNSDIST, "--supervised", "--disable-syslog",
                                             "-C", self.conf],
                                 os.path.join(root, "dnsdist.out"))
        harness.wait_until(self._ready, harness.START_TIMEOUT, what="dnsdist's DoH frontend")

    def _ready(self):
        if not self.proc.alive():
            raise AssertionError("dnsdist exited:\n" + self.proc.log_text()[-3000:])
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            return True
        except OSError:
            return False

    def queries(self, name=""):
        """Query log lines (one per query dnsdist got) that mention @name."""
        try:
            with open(self.qlog, encoding="utf-8", errors="replace") as f:
                return [ln for ln in f.read().splitlines() if name in ln]
        except OSError:
            return []

    def stop(self):
        return self.proc.stop()
