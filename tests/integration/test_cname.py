#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""CNAME cloaking: when a forwarded answer's CNAME chain (or a DNAME) reaches a
name a rule matches, the rule applies to the answer. Blocking actions give the
local answer for the question asked; an alert rule lets the real answer pass.
Either way the alert record names the query and the matched target. Chains
that reach nothing blocked, or only allowed names, pass untouched. The chains
live in the harness's example.test zone, served by knotd."""
import os
import time

import harness
from harness import query, SINK_V4, SINK_V6, SINK_TTL

TEST_META = {fn: harness.read_rule_meta_text(text) for fn, text in harness.TEST_RULES.items()}

EXEMPT_RULE = """\
id: IT.Test.CnameExempt
name: Allow exception on a query name whose chain reaches a blocked name
severity: info
action: allow
domains:
  - cl-exempt.example.test
"""


def cnames(a):
    return [d.rstrip(".").lower() for (t, d) in a.rdata("CNAME")]


class CnameCloaking(harness.DnsinkTest):

    def setUp(self):
        super().setUp()
        # The zone must really hold the chains: else the tests would prove nothing.
        for name, target in (("alias.example.test", "alias2.example.test"),
                             ("cl-wild.example.test", "cl-wild2.example.test"),
                             ("cl-plain.example.test", "cl-plain2.example.test"),
                             ("cl-nx.example.test", "nx.example.test"),
                             ("cl-allow.example.test", "ok.moneropool.ru"),
                             ("cl-exempt.example.test", "www.moneropool.ru")):
            up = query(self.knot.port, name, "A")
            self.assertIn(target, cnames(up), up)

    def records_for(self, qname):
        return [r for r in self.dk.alerts() if r.get("dns_query") == qname]

    def test_chain_into_sinkhole(self):
        _, meta = harness.repo_rule_with("moneropool.ru")
        up = query(self.knot.port, "alias.example.test", "A")
        self.assertIn("www.moneropool.ru", cnames(up), up)
        for tcp in (False, True):
            with self.subTest(tcp=tcp):
                a = query(self.dk.port, "Alias.Example.test", "A", tcp=tcp, edns=1232, qid=4711)
                self.assertLocalAnswer(a, "Alias.Example.test", "A", "NOERROR", qid=4711)
                self.assertEqual(a.rdata(), [("A", SINK_V4)], a)
                self.assertEqual(a.an[0][1], SINK_TTL, a)
                self.assertIn(15, a.ede, a)
        a = query(self.dk.port, "alias.example.test", "AAAA")
        self.assertLocalAnswer(a, "alias.example.test", "AAAA", "NOERROR")
        self.assertEqual(a.rdata(), [("AAAA", SINK_V6)], a)
        self.assertIsNone(a.edns, a)

        # The repo rule deduplicates per (rule, client, matched entry): one record.
        recs = self.dk.wait_alerts(lambda r: r.get("dns_query") == "alias.example.test")
        rec = recs[0]
        self.assertEqual(rec.get("rule_id"), meta["id"], rec)
        self.assertEqual(rec.get("action"), "sinkhole", rec)
        self.assertEqual(rec.get("cname_target"), "www.moneropool.ru", rec)
        self.assertEqual(rec.get("matched"), "moneropool.ru", rec)
        self.assertEqual(rec.get("transport"), "udp", rec)
        self.assertEqual(rec.get("qtype"), "A", rec)

    def test_dname_into_sinkhole(self):
        up = query(self.knot.port, "pool.cl-dname.example.test", "A")
        self.assertEqual(up.rcode, "NOERROR", up)
        self.assertTrue(up.rdata("DNAME"), up)
        a = query(self.dk.port, "pool.cl-dname.example.test", "A")
        self.assertLocalAnswer(a, "pool.cl-dname.example.test", "A", "NOERROR")
        self.assertEqual(a.rdata(), [("A", SINK_V4)], a)
        recs = self.dk.wait_alerts(
            lambda r: r.get("dns_query") == "pool.cl-dname.example.test")
        self.assertEqual(recs[0].get("action"), "sinkhole", recs)
        self.assertIn(recs[0].get("cname_target"), ("moneropool.ru", "pool.moneropool.ru"), recs)

    def test_chain_into_nxdomain_and_refused(self):
        for name, rcode, fn, target in (
                ("cl-nx.example.test", "NXDOMAIN", "it-nxdomain.yml", "nx.example.test"),
                ("cl-ref.example.test", "REFUSED", "it-refused.yml", "refused.example.test")):
            with self.subTest(name=name):
                a = query(self.dk.port, name, "A", edns=1232)
                self.assertLocalAnswer(a, name, "A", rcode)
                self.assertEqual(a.an, [], a)
                self.assertIn(15, a.ede, a)
                rec = self.dk.wait_alerts(lambda r, n=name: r.get("dns_query") == n)[0]
                self.assertEqual(rec.get("rule_id"), TEST_META[fn]["id"], rec)
                self.assertEqual(rec.get("action"), TEST_META[fn]["action"], rec)
                self.assertEqual(rec.get("cname_target"), target, rec)
                self.assertEqual(rec.get("rcode"), rcode, rec)

    def test_chain_into_alert_rule_passes_and_alerts(self):
        mine, theirs = self.assertSameAsUpstream("cl-wild.example.test", "A")
        self.assertIn(("A", "192.0.2.99"), mine.rdata(), mine)
        self.assertIn("host.wild.example.test", cnames(mine), mine)
        meta = TEST_META["it-wild.yml"]
        recs = self.dk.wait_alerts(lambda r: r.get("dns_query") == "cl-wild.example.test")
        self.assertEqual(len(recs), 1, recs)
        rec = recs[0]
        self.assertEqual(rec.get("rule_id"), meta["id"], rec)
        self.assertEqual(rec.get("action"), "alert", rec)
        self.assertEqual(rec.get("cname_target"), "host.wild.example.test", rec)
        self.assertEqual(rec.get("matched"), "*.wild.example.test", rec)

    def test_unblocked_and_allowed_chains_pass_silently(self):
        mine, _ = self.assertSameAsUpstream("cl-plain.example.test", "A")
        self.assertIn(("A", "192.0.2.10"), mine.rdata(), mine)
        self.assertIn("cl-plain2.example.test", cnames(mine), mine)
        # The target is below a blocked name, but an allow rule covers it.
        mine, _ = self.assertSameAsUpstream("cl-allow.example.test", "A")
        self.assertIn("ok.moneropool.ru", cnames(mine), mine)
        for tcp in (False, True):
            self.assertSameAsUpstream("cl-plain.example.test", "A", tcp=tcp)
        # A blocked chain afterwards: once its record is in, the others would be too.
        query(self.dk.port, "alias.example.test", "A")
        self.dk.wait_alerts(lambda r: r.get("dns_query") == "alias.example.test")
        time.sleep(0.3)
        self.assertEqual(self.records_for("cl-plain.example.test"), [])
        self.assertEqual(self.records_for("cl-allow.example.test"), [])

    def test_allow_on_query_name_covers_its_chain(self):
        extra = os.path.join(self.dir, "extra-rules")
        os.makedirs(extra)
        with open(os.path.join(extra, "exempt.yml"), "w") as f:
            f.write(EXEMPT_RULE)
        self.dk = self.new_dnsink(extra_rule_dirs=[extra + "/"])
        mine, _ = self.assertSameAsUpstream("cl-exempt.example.test", "A")
        self.assertIn("www.moneropool.ru", cnames(mine), mine)
        self.assertNotIn(("A", SINK_V4), mine.rdata(), mine)
        query(self.dk.port, "alias.example.test", "A")
        self.dk.wait_alerts(lambda r: r.get("dns_query") == "alias.example.test")
        time.sleep(0.3)
        self.assertEqual(self.records_for("cl-exempt.example.test"), [])


if __name__ == "__main__":
    harness.main()
