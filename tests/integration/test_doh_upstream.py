#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""DNS over HTTPS to the upstreams (https://IP:PORT/PATH#NAME, RFC 8484): a
real dnsdist with a DoH frontend on loopback, in front of the class's knotd,
certificates made here under a test CA.

- Answers over DoH are those of the cleartext path, on one HTTP/2 connection.
- A path the server does not serve (404) is a failed try: SERVFAIL, counted.
- A certificate for another name: SERVFAIL, and dnsdist's query log shows
  that no query reached it.
- 100 queries at once: all answered, on a few connections.
"""
import os

import harness
import promscrape
import tlsutil
from harness import build_query, udp_ask, udp_queries

NAME = "dns.test"


class DohUpstream(harness.DnsinkTest):
    start_dnsink = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ca = tlsutil.CA(os.path.join(cls.class_dir, "pki"))
        cert, key = cls.ca.issue("doh", NAME)
        cls.dd = tlsutil.Dnsdist(os.path.join(cls.class_dir, "dnsdist"), cls.knot.port, cert,
                                 key)

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "dd", None):
            cls.dd.stop()
        super().tearDownClass()

    def doh(self, spec, extra=""):
        self.mport = harness.free_port()
        return self.new_dnsink(
            upstreams=[spec], timeout_ms=1500,
            extra_yaml="tls:\n  ca_file: %s\n" % self.ca.pem + promscrape.metrics_yaml(
                self.mport) + extra)

    def series(self, name, **labels):
        lab = 'upstream="127.0.0.1:%d"' % self.dd.port
        for k, v in labels.items():
            lab += ',%s="%s"' % (k, v)
        return promscrape.scrape(self.mport).get("%s{%s}" % (name, lab), 0)

    def spec(self, path="/dns-query", name=NAME):
        return "https://127.0.0.1:%d%s#%s" % (self.dd.port, path, name)

    def test_answers_same_as_cleartext(self):
        plain = self.new_dnsink(upstreams=[self.knot.port])
        dk = self.doh(self.spec(), extra="workers: 1\n")
        for i, (name, qtype) in enumerate((("www.example.test", "A"),
                                           ("www.example.test", "TXT"),
                                           ("x.wild.example.test", "AAAA"),
                                           ("nothere.example.test", "A"))):
            q = build_query(name, qtype, qid=10 + i, edns=1232)
            a, b = udp_ask(plain.port, q, 3), udp_ask(dk.port, q, 4)
            self.assertIsNotNone(b, name)
            self.assertEqual(a[3] & 0x0F, b[3] & 0x0F, name)
            self.assertEqual(a[6:8], b[6:8], name)  # ANCOUNT
            self.assertEqual(a[12:], b[12:], name)  # same records (dnsdist passes knotd's)
        self.assertEqual(self.series("dnsink_upstream_tls_handshakes_total"), 1)
        self.assertGreaterEqual(len(self.dd.queries("example.test")), 4)

    def test_http_error_fails_the_try(self):
        dk = self.doh(self.spec(path="/nothere"))
        a = udp_ask(dk.port, build_query("www.example.test", "A", qid=3), 5)
        self.assertIsNotNone(a)
        self.assertEqual(a[3] & 0x0F, 2)  # SERVFAIL
        self.assertGreaterEqual(self.series("dnsink_upstream_doh_failures_total"), 1)
        self.assertEqual(self.series("dnsink_upstream_answers_total"), 0)

    def test_wrong_name_sends_nothing(self):
        dk = self.doh(self.spec(name="wrong.test"))
        a = udp_ask(dk.port, build_query("leak.wild.example.test", "A", qid=4), 5)
        self.assertEqual(a[3] & 0x0F, 2)
        self.assertGreaterEqual(
            self.series("dnsink_upstream_tls_handshake_failures_total", reason="name"), 1)
        self.assertEqual(self.dd.queries("leak.wild"), [])
        self.assertIn("certificate name mismatch", dk.proc.log_text())

    def test_100_at_once(self):
        dk = self.doh(self.spec(), extra="workers: 1\ncache:\n  size_mb: 0\n")
        names = ["m%d.wild.example.test" % i for i in range(100)]
        got = udp_queries(dk.port, names, window=100, deadline=20.0)
        self.assertEqual(got.get(0), 100, got)
        self.assertLessEqual(self.series("dnsink_upstream_tls_handshakes_total"), 6)


if __name__ == "__main__":
    harness.main()
