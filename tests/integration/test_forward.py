#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Forwarding: dnsink's answers equal knotd's own (rcode, rdata, TC) over UDP
and TCP; the large TXT RRset comes back truncated over UDP and whole over TCP."""
import harness
from harness import query, kdig


class Forward(harness.DnsinkTest):

    CASES = [
        ("www.example.test", "A"),
        ("www.example.test", "AAAA"),
        ("www.example.test", "TXT"),
        ("www2.example.test", "A"),
        ("nothere.example.test", "A"),       # NXDOMAIN from upstream
        ("www.example.test", "MX"),          # NODATA from upstream
        ("notmoneropool.ru", "A"),           # sibling of a blocked name
        ("hopto.org", "A"),                  # "*.hopto.org" does not cover the apex
    ]

    def test_same_as_upstream_udp(self):
        for name, qtype in self.CASES:
            with self.subTest(name=name, qtype=qtype):
                mine, _ = self.assertSameAsUpstream(name, qtype, tcp=False)
                self.assertIn("qr", mine.flags)

    def test_same_as_upstream_tcp(self):
        for name, qtype in self.CASES:
            with self.subTest(name=name, qtype=qtype):
                self.assertSameAsUpstream(name, qtype, tcp=True)

    def test_answers_carry_client_id(self):
        for qid in (0, 1, 0xBEEF, 0xFFFF):
            for tcp in (False, True):
                a = query(self.dk.port, "www.example.test", "A", tcp=tcp, qid=qid)
                self.assertFalse(a.timeout, a)
                self.assertEqual(a.id, qid, a)
                self.assertEqual(a.rdata(), [("A", "192.0.2.10")], a)

    def test_expected_rdata(self):
        # Guards against both sides being wrong the same way.
        a = query(self.dk.port, "www.example.test", "TXT", edns=1232)
        self.assertEqual(a.rdata(), [("TXT", '"hello dnsink"'), ("TXT", '"second string"')], a)
        a = query(self.dk.port, "nothere.example.test", "A")
        self.assertEqual(a.rcode, "NXDOMAIN", a)

    def test_large_txt_udp_truncated(self):
        for edns in (None, 1232):
            with self.subTest(edns=edns):
                a = query(self.dk.port, "big.example.test", "TXT", edns=edns)
                self.assertFalse(a.timeout, a)
                self.assertEqual(a.rcode, "NOERROR", a)
                self.assertIn("tc", a.flags, a)
                self.assertLessEqual(a.size, edns or 512, a)
                self.assertLess(len(a.rdata("TXT")), len(harness.BIG_TXT), a)

    def test_large_txt_tcp_whole(self):
        mine, theirs = self.assertSameAsUpstream("big.example.test", "TXT", tcp=True)
        self.assertNotIn("tc", mine.flags, mine)
        self.assertEqual(sorted(d for _, d in mine.rdata("TXT")), sorted(harness.BIG_TXT))
        self.assertGreater(mine.size, 1232)

    def test_large_txt_fits_big_buffer(self):
        # A client announcing 4096 octets may get it whole over UDP, or TC
        # when the upstream path truncated: never a partial RRset without TC.
        a = query(self.dk.port, "big.example.test", "TXT", edns=4096)
        self.assertFalse(a.timeout, a)
        if "tc" not in a.flags:
            self.assertEqual(sorted(d for _, d in a.rdata("TXT")), sorted(harness.BIG_TXT))

    def test_kdig_short_same_as_upstream(self):
        for name, qtype in (("www.example.test", "A"), ("www.example.test", "AAAA"),
                            ("www.example.test", "TXT")):
            for tcp in ("+notcp", "+tcp"):
                mine = kdig(self.dk.port, name, qtype, "+short", tcp)
                theirs = kdig(self.knot.port, name, qtype, "+short", tcp)
                self.assertTrue(theirs.strip(), theirs)
                self.assertEqual(sorted(mine.split("\n")), sorted(theirs.split("\n")))


if __name__ == "__main__":
    harness.main()
