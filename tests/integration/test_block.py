#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Blocking: names of rules/mining-pools.yml and of the test rules are answered
locally per action (sinkhole, nxdomain, refused), with ID, RD and question
echoed, EDNS and EDE 15 when asked, and never reach the upstream."""
import harness
from harness import query, kdig, SINK_V4, SINK_V6, SINK_TTL

POOL_NAMES = ["moneropool.ru", "abc.abc.moneropool.ru", "MoneroPool.RU", "moneropool.ru.",
              "ABC.abc.MONEROPOOL.ru."]


def qname_of(wire):
    end = harness.question_end(wire)
    out, off = [], 12
    while off < len(wire) and wire[off] != 0 and off < (end or 0):
        n = wire[off]
        out.append(wire[off + 1:off + 1 + n].decode("latin-1"))
        off += n + 1
    return ".".join(out).lower()


class Block(harness.DnsinkTest):

    def test_sinkhole_a_aaaa_txt(self):
        harness.repo_rule_with("moneropool.ru")
        for name in POOL_NAMES:
            for tcp in (False, True):
                with self.subTest(name=name, tcp=tcp):
                    a = query(self.dk.port, name, "A", tcp=tcp, qid=4242)
                    self.assertLocalAnswer(a, name, "A", "NOERROR", qid=4242)
                    self.assertEqual(a.rdata(), [("A", SINK_V4)], a)
                    self.assertEqual(a.an[0][1], SINK_TTL, a)
                    a = query(self.dk.port, name, "AAAA", tcp=tcp, qid=4343)
                    self.assertLocalAnswer(a, name, "AAAA", "NOERROR", qid=4343)
                    self.assertEqual(a.rdata(), [("AAAA", SINK_V6)], a)
                    self.assertEqual(a.an[0][1], SINK_TTL, a)
                    a = query(self.dk.port, name, "TXT", tcp=tcp)
                    self.assertLocalAnswer(a, name, "TXT", "NOERROR")
                    self.assertEqual(a.an, [], a)

    def test_edns_and_ede(self):
        a = query(self.dk.port, "abc.moneropool.ru", "A", edns=1232)
        self.assertLocalAnswer(a, "abc.moneropool.ru", "A", "NOERROR")
        self.assertIsNotNone(a.edns, a)
        self.assertIn(15, a.ede, a)
        self.assertEqual(a.rdata(), [("A", SINK_V4)], a)
        # Without EDNS in the query, no OPT in the answer.
        a = query(self.dk.port, "abc.moneropool.ru", "A")
        self.assertIsNone(a.edns, a)
        self.assertEqual(a.ede, [], a)

    def test_kdig_shows_ede(self):
        out = kdig(self.dk.port, "moneropool.ru", "A", "+edns")
        self.assertIn("EDE: 15", out)
        self.assertIn(SINK_V4, out)

    def test_nxdomain_rule(self):
        for name in ("nx.example.test", "deep.nx.example.test", "NX.Example.Test."):
            for tcp in (False, True):
                with self.subTest(name=name, tcp=tcp):
                    a = query(self.dk.port, name, "A", tcp=tcp, edns=1232, qid=77)
                    self.assertLocalAnswer(a, name, "A", "NXDOMAIN", qid=77)
                    self.assertEqual(a.an, [], a)
                    self.assertIn(15, a.ede, a)

    def test_refused_rule(self):
        for tcp in (False, True):
            a = query(self.dk.port, "refused.example.test", "A", tcp=tcp, edns=1232, qid=78)
            self.assertLocalAnswer(a, "refused.example.test", "A", "REFUSED", qid=78)
            self.assertEqual(a.an, [], a)
            self.assertIn(15, a.ede, a)

    def test_silent_rule_still_sinkholes(self):
        a = query(self.dk.port, "silent.example.test", "A")
        self.assertLocalAnswer(a, "silent.example.test", "A", "NOERROR")
        self.assertEqual(a.rdata(), [("A", SINK_V4)], a)

    def test_allow_exception_forwards(self):
        a = query(self.dk.port, "ok.moneropool.ru", "A")
        self.assertEqual(a.rcode, "NOERROR", a)
        self.assertEqual(a.rdata(), [("A", "198.51.100.2")], a)

    def test_not_a_suffix_match(self):
        a = query(self.dk.port, "notmoneropool.ru", "A")
        self.assertEqual(a.rdata(), [("A", "198.51.100.3")], a)

    def test_upstream_never_contacted(self):
        fake = self.fake_upstream(lambda q, send, _t: send(harness.make_answer(q)))
        dk = self.new_dnsink(upstreams=[fake.port])
        names = ["moneropool.ru", "x.moneropool.ru", "nx.example.test", "refused.example.test",
                 "silent.example.test"]
        for name in names:
            for tcp in (False, True):
                a = query(dk.port, name, "A", tcp=tcp)
                self.assertFalse(a.timeout, a)
                self.assertNotEqual(a.rdata(), [("A", "192.0.2.123")], a)
        # The fake upstream does answer forwarded names: proves it is in use.
        a = query(dk.port, "www.example.test", "A")
        self.assertEqual(a.rdata(), [("A", "192.0.2.123")], a)
        seen = [qname_of(w) for _, w in fake.queries]
        self.assertIn("www.example.test", seen)
        for name in names:
            self.assertNotIn(name, seen)


if __name__ == "__main__":
    harness.main()
