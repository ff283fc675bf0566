#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Access list: a client outside allow_clients (127.0.0.2; the list holds only
127.0.0.1/32) gets REFUSED over UDP and TCP, and the upstream never sees it."""
import harness
from harness import query, kdig
from test_block import qname_of


class Acl(harness.DnsinkTest):
    start_dnsink = False

    def setUp(self):
        super().setUp()
        self.fake = self.fake_upstream(lambda q, send, _t: send(harness.make_answer(q)))
        self.dk = self.new_dnsink(upstreams=[self.fake.port])

    def test_outside_refused_and_not_forwarded(self):
        for tcp in (False, True):
            for name in ("outside%d.example.test" % tcp, "moneropool.ru"):
                with self.subTest(name=name, tcp=tcp):
                    a = query(self.dk.port, name, "A", tcp=tcp, src="127.0.0.2", qid=555)
                    self.assertFalse(a.timeout, a)
                    self.assertEqual(a.rcode, "REFUSED", a)
                    self.assertEqual(a.id, 555, a)
                    self.assertEqual(a.an, [], a)
                    self.assertEqual(a.qd, [(name + ".", "A")], a)
        seen = [qname_of(w) for _, w in self.fake.queries]
        self.assertNotIn("outside0.example.test", seen)
        self.assertNotIn("outside1.example.test", seen)

    def test_inside_forwarded(self):
        a = query(self.dk.port, "inside.example.test", "A", src="127.0.0.1")
        self.assertEqual(a.rcode, "NOERROR", a)
        self.assertEqual(a.rdata(), [("A", "192.0.2.123")], a)
        self.assertIn("inside.example.test", [qname_of(w) for _, w in self.fake.queries])

    def test_kdig_from_outside(self):
        out = kdig(self.dk.port, "-b", "127.0.0.2", "www.example.test", "A")
        self.assertIn("status: REFUSED", out)
        self.assertNotIn("192.0.2.123", out)


if __name__ == "__main__":
    harness.main()
