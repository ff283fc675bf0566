#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""DNS over HTTPS for clients (listen_https, RFC 8484) with a certificate made
here under a test CA; real clients: kdig +https (HTTP/2 POST) and +https-get,
curl over HTTP/1.1 and HTTP/2, h2load (nghttp2-client) for 100 concurrent
streams on one connection.

- Forwarded answers over DoH are those of the cleartext path.
- A blocked name is sinkholed with EDE 15, alert transport "https".
- Wrong path 404, other methods 405, wrong media type 415, bad dns= 400,
  each counted; HTTP/1.1 keeps the connection for the next request.
- 100 concurrent streams on one HTTP/2 connection, all 200.
- A stalled handshake is cut by tls.handshake_timeout_ms.
"""
import os
import shutil
import socket
import subprocess
import time

import harness
import promscrape
import tlsutil
from harness import SINK_V4, build_query, kdig, wait_until

NAME = "dns.test"
CURL = shutil.which("curl") or "/usr/bin/curl"
H2LOAD = shutil.which("h2load") or "/usr/bin/h2load"


class Doh(harness.DnsinkTest):
    start_dnsink = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ca = tlsutil.CA(os.path.join(cls.class_dir, "pki"))
        cls.cert, cls.key = cls.ca.issue("srv", NAME)

    def setUp(self):
        super().setUp()
        self.port = harness.free_port()
        self.mport = harness.free_port()
        extra = ("listen_https:\n  - 127.0.0.1:%d\n"
                 "tls:\n  cert_file: %s\n  key_file: %s\n  handshake_timeout_ms: 600\n"
                 % (self.port, self.cert, self.key))
        extra += promscrape.metrics_yaml(self.mport)
        self.dk = self.new_dnsink(extra_yaml=extra)

    def kdig_doh(self, *args):
        return kdig(self.port, "+tls-ca=%s" % self.ca.pem, "+tls-hostname=%s" % NAME, *args)

    def curl(self, *args, path="/dns-query", body=None):
        """(HTTP status, body bytes) of one curl request."""
        argv = [CURL, "-s", "--max-time", "5", "--cacert", self.ca.pem, "--resolve",
                "%s:%d:127.0.0.1" % (NAME, self.port), "-o", "-", "-w", "\n%{http_code}"]
        argv += list(args)
        if body is not None:
            argv += ["--data-binary", "@-"]
        argv.append("https://%s:%d%s" % (NAME, self.port, path))
        p = subprocess.run(argv, input=body, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=15)
        out, _, code = p.stdout.rpartition(b"\n")
        return int(code or 0), out

    def metric(self, key):
        return promscrape.scrape(self.mport).get(key, 0)

    def test_forwarded_same_as_cleartext(self):
        for name, qtype in (("www.example.test", "A"), ("www.example.test", "TXT"),
                            ("x.wild.example.test", "AAAA"), ("nothere.example.test", "A")):
            plain = kdig(self.dk.port, "+short", name, qtype)
            self.assertEqual(plain, self.kdig_doh("+https", "+short", name, qtype), name)
            self.assertEqual(plain, self.kdig_doh("+https-get", "+short", name, qtype), name)
        out = self.kdig_doh("+https", "www.example.test", "A")
        self.assertIn("HTTP/2-POST", out)
        self.assertIn("status: 200", out)
        self.assertEqual(self.metric('dnsink_queries_received_total{transport="https"}'), 9)

    def test_blocked_sinkholed_with_ede(self):
        out = self.kdig_doh("+https", "+edns", "pool.moneropool.ru", "A")
        self.assertIn("status: NOERROR", out)
        self.assertIn(SINK_V4, out)
        self.assertIn("EDE: 15", out)
        rec = self.dk.wait_alerts(lambda a: a["dns_query"] == "pool.moneropool.ru")[0]
        self.assertEqual(rec["transport"], "https")
        self.assertEqual(self.metric(promscrape.outcome("https", "sinkholed")), 1)

    def test_http1_and_refusals(self):
        q = build_query("www.example.test", "A", qid=0)
        for ver in ("--http1.1", "--http2"):
            hdr = os.path.join(self.dir, "headers" + ver)
            code, body = self.curl(ver, "-D", hdr, "-H", "content-type: application/dns-message",
                                   body=q)
            self.assertEqual(code, 200, ver)
            with open(hdr) as f:
                heads = f.read().lower()
            # RFC 8484 5.1: fresh for the answer's smallest TTL (knotd's 300, maybe counted down).
            self.assertRegex(heads, r"cache-control: max-age=(300|29\d)\s")
            self.assertIn("content-type: application/dns-message", heads)
            self.assertEqual(body[:2], b"\0\0")
            self.assertIn(socket.inet_aton("192.0.2.10"), body)
            self.assertEqual(self.curl(ver, path="/other")[0], 404)
            self.assertEqual(self.curl(ver, "-X", "PUT")[0], 405)
            self.assertEqual(self.curl(ver, body=q)[0], 415)   # curl's default media type
            self.assertEqual(self.curl(ver, path="/dns-query?dns=!!")[0], 400)
        for status, n in (("404", 2), ("405", 2), ("415", 2), ("400", 2)):
            self.assertEqual(self.metric('dnsink_https_refused_total{status="%s"}' % status), n)
        # HTTP/1.1 keep-alive: two requests, one connection.
        code, _ = self.curl("--http1.1", "-H", "content-type: application/dns-message",
                            path="/dns-query", body=q)
        self.assertEqual(code, 200)

    def test_100_concurrent_streams(self):
        body = os.path.join(self.dir, "q.bin")
        with open(body, "wb") as f:
            f.write(build_query("www.example.test", "A", qid=0))
        p = subprocess.run([H2LOAD, "-n", "2000", "-c", "1", "-m", "100", "-d", body, "-H",
                            "content-type: application/dns-message",
                            "https://127.0.0.1:%d/dns-query" % self.port],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        out = p.stdout.decode()
        self.assertIn("Application protocol: h2", out)
        self.assertIn("2000 succeeded, 0 failed", out)
        self.assertIn("status codes: 2000 2xx", out)
        self.assertEqual(self.metric('dnsink_https_connections_total{state="h2"}'), 1)
        self.assertEqual(self.metric("dnsink_https_streams_refused_total"), 0)

    def test_stalled_handshake_cut(self):
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.port), 5) as s:
            s.settimeout(10)
            self.assertEqual(s.recv(100), b"")
        self.assertLess(time.monotonic() - t0, 5)
        wait_until(lambda: self.metric(
            'dnsink_https_connections_total{state="handshake_timeout"}') >= 1, 3,
            what="the timeout counted")
        self.assertIn("192.0.2.10", self.kdig_doh("+https", "+short", "www.example.test"))


if __name__ == "__main__":
    harness.main()
