#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""RPZ zones as rules, served by the real dnsink to real clients (dkclient,
kdig), with knotd as the upstream: every QNAME action (NXDOMAIN, NODATA,
passthru, drop, tcp-only, local data and a walled-garden CNAME), exact and
wildcard owners, a Unicode owner, client-IP triggers (a client dropped, a
client exempt), answer-IP triggers on the upstream's addresses (NXDOMAIN,
local data, NODATA), alert records naming the rule and the record's action,
and dnsink check's zone line with the NSDNAME/NSIP count."""
import os
import unittest

import harness
from harness import query

UPSTREAM_ZONE = """\
$ORIGIN rpz-up.test.
$TTL 300
@         SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300
@         NS ns.example.test.
nx        A 192.0.2.60
pass      A 192.0.2.50
tcp       A 192.0.2.51
www       A 192.0.2.52
ip-nx     A 192.0.2.66
ip-local  A 203.0.113.5
ip-nodata AAAA 2001:db8:1::5
ip-pass   A 192.0.2.66
"""
harness.ZONES["rpz-up.test"] = UPSTREAM_ZONE

FEED = """\
$TTL 300
@ SOA ns.feed.rpz. hostmaster.feed.rpz. 1 3600 600 86400 60
@ NS ns.feed.rpz.
nx.rpz-up.test          CNAME .
*.wild.rpz-up.test      CNAME .
nodata.rpz-up.test      CNAME *.
pass.rpz-up.test        CNAME rpz-passthru.
*.pass.rpz-up.test      CNAME .
drop.rpz-up.test        CNAME rpz-drop.
tcp.rpz-up.test         CNAME rpz-tcp-only.
garden.rpz-up.test      CNAME walled.garden.example.
local.rpz-up.test       A     192.0.2.80
                        AAAA  2001:db8::80
                        TXT   "blocked by policy"
bücher.rpz-up.test      CNAME .
ip-pass.rpz-up.test     CNAME rpz-passthru.
32.2.0.0.127.rpz-client-ip   CNAME rpz-drop.
32.3.0.0.127.rpz-client-ip   CNAME rpz-passthru.
32.66.2.0.192.rpz-ip         CNAME .
24.0.113.0.203.rpz-ip        A     192.0.2.99
64.zz.1.db8.2001.rpz-ip      CNAME *.
ns.evil.example.rpz-nsdname  CNAME .
32.9.2.0.192.rpz-nsip        CNAME .
bad..name                    CNAME .
"""

RULE = """\
id: IT.RPZ.Feed
name: Integration RPZ feed
severity: high
mitre: [TA0011:T1071]
rpz:
  file: feed.rpz
  zone: feed.rpz
"""


class RpzFile(harness.DnsinkTest):
    start_dnsink = False

    def setUp(self):
        super().setUp()
        self.feed_dir = os.path.join(self.dir, "feed")
        os.makedirs(self.feed_dir)
        with open(os.path.join(self.feed_dir, "feed.rpz"), "w", encoding="utf-8") as f:
            f.write(FEED)
        with open(os.path.join(self.feed_dir, "feed.yml"), "w") as f:
            f.write(RULE)
        self.dk = self.new_dnsink(extra_rule_dirs=[self.feed_dir + "/"],
                                  allow=("127.0.0.0/8",))
        # The upstream must really answer these: else a block would prove nothing.
        up = query(self.knot.port, "ip-nx.rpz-up.test", "A")
        self.assertEqual(up.rdata(), [("A", "192.0.2.66")], up)

    def assertForwarded(self, a):
        """An upstream's NXDOMAIN (with its SOA), not a local one (EDE 15, nothing else)."""
        self.assertEqual(a.rcode, "NXDOMAIN", a)
        self.assertNotIn(15, a.ede, a)
        self.assertTrue(any(rr[3] == "SOA" for rr in a.ns), a)

    def alert_for(self, qname):
        return self.dk.wait_alerts(lambda r: r.get("dns_query") == qname)[-1]

    def test_qname_actions(self):
        for tcp in (False, True):
            with self.subTest(tcp=tcp):
                a = query(self.dk.port, "nx.rpz-up.test", "A", tcp=tcp, edns=1232)
                self.assertEqual(a.rcode, "NXDOMAIN", a)
                self.assertIn(15, a.ede, a)
                # The exact owner does not cover what is below it: knotd's own answer.
                self.assertForwarded(query(self.dk.port, "sub.nx.rpz-up.test", "A", tcp=tcp,
                                           edns=1232))
        a = query(self.dk.port, "a.b.wild.rpz-up.test", "A")
        self.assertEqual(a.rcode, "NXDOMAIN", a)
        self.assertForwarded(query(self.dk.port, "wild.rpz-up.test", "A", edns=1232))
        a = query(self.dk.port, "nodata.rpz-up.test", "A")
        self.assertEqual((a.rcode, a.an), ("NOERROR", []), a)
        # passthru: the real answer, and it beats the zone's wildcard below... only for itself.
        a = query(self.dk.port, "pass.rpz-up.test", "A")
        self.assertEqual(a.rdata(), [("A", "192.0.2.50")], a)
        a = query(self.dk.port, "x.pass.rpz-up.test", "A")
        self.assertEqual(a.rcode, "NXDOMAIN", a)
        # drop: no answer at all.
        a = query(self.dk.port, "drop.rpz-up.test", "A", timeout_ms=600)
        self.assertTrue(a.timeout, a)
        # tcp-only: UDP gets an empty truncated answer; TCP gets the real one.
        a = query(self.dk.port, "tcp.rpz-up.test", "A")
        self.assertIn("tc", a.flags, a)
        self.assertEqual(a.an, [], a)
        a = query(self.dk.port, "tcp.rpz-up.test", "A", tcp=True)
        self.assertEqual(a.rdata(), [("A", "192.0.2.51")], a)
        out = harness.kdig(self.dk.port, "tcp.rpz-up.test", "A")
        self.assertIn("192.0.2.51", out)  # kdig retries over TCP on TC
        # The Unicode owner blocks its A-label name.
        a = query(self.dk.port, "xn--bcher-kva.rpz-up.test", "A")
        self.assertEqual(a.rcode, "NXDOMAIN", a)
        rec = self.alert_for("nx.rpz-up.test")
        self.assertEqual((rec["rule_id"], rec["action"], rec["matched"]),
                         ("IT.RPZ.Feed", "nxdomain", "nx.rpz-up.test"), rec)
        self.assertEqual(rec["severity"], "high")
        rec = self.alert_for("drop.rpz-up.test")
        self.assertEqual(rec["action"], "drop", rec)
        rec = self.alert_for("a.b.wild.rpz-up.test")
        self.assertEqual(rec["matched"], "*.wild.rpz-up.test", rec)

    def test_local_data(self):
        a = query(self.dk.port, "local.rpz-up.test", "A", edns=1232)
        self.assertEqual((a.rcode, a.rdata()), ("NOERROR", [("A", "192.0.2.80")]), a)
        self.assertEqual(a.an[0][1], 300, a)
        self.assertIn(4, a.ede, a)  # Forged Answer
        a = query(self.dk.port, "local.rpz-up.test", "AAAA", tcp=True)
        self.assertEqual(a.rdata(), [("AAAA", "2001:db8::80")], a)
        a = query(self.dk.port, "local.rpz-up.test", "TXT")
        self.assertEqual(a.rdata(), [("TXT", '"blocked by policy"')], a)
        a = query(self.dk.port, "local.rpz-up.test", "MX")
        self.assertEqual((a.rcode, a.an), ("NOERROR", []), a)
        a = query(self.dk.port, "garden.rpz-up.test", "A")
        self.assertEqual(a.rdata(), [("CNAME", "walled.garden.example.")], a)
        rec = self.alert_for("local.rpz-up.test")
        self.assertEqual(rec["action"], "local", rec)

    def test_client_ip(self):
        # 127.0.0.2 is dropped whatever it asks.
        a = query(self.dk.port, "www.rpz-up.test", "A", src="127.0.0.2", timeout_ms=600)
        self.assertTrue(a.timeout, a)
        # 127.0.0.3 is exempt (passthru): even a QNAME trigger does not apply.
        a = query(self.dk.port, "nx.rpz-up.test", "A", src="127.0.0.3")
        self.assertEqual(a.rdata(), [("A", "192.0.2.60")], a)
        # Anyone else: the usual policy.
        a = query(self.dk.port, "www.rpz-up.test", "A", src="127.0.0.4")
        self.assertEqual(a.rdata(), [("A", "192.0.2.52")], a)
        rec = self.dk.wait_alerts(lambda r: r.get("source_ip") == "127.0.0.2")[-1]
        self.assertEqual(rec["action"], "drop", rec)

    def test_response_ip(self):
        for tcp in (False, True):
            with self.subTest(tcp=tcp):
                a = query(self.dk.port, "ip-nx.rpz-up.test", "A", tcp=tcp)
                self.assertEqual(a.rcode, "NXDOMAIN", a)
                a = query(self.dk.port, "ip-local.rpz-up.test", "A", tcp=tcp)
                self.assertEqual(a.rdata(), [("A", "192.0.2.99")], a)
                a = query(self.dk.port, "ip-nodata.rpz-up.test", "AAAA", tcp=tcp)
                self.assertEqual((a.rcode, a.an), ("NOERROR", []), a)
        # A passthru on the name asked covers its answer's addresses (QNAME before IP).
        a = query(self.dk.port, "ip-pass.rpz-up.test", "A")
        self.assertEqual(a.rdata(), [("A", "192.0.2.66")], a)
        # From the cache the same.
        a = query(self.dk.port, "ip-nx.rpz-up.test", "A")
        self.assertEqual(a.rcode, "NXDOMAIN", a)
        rec = self.alert_for("ip-nx.rpz-up.test")
        self.assertEqual((rec["rule_id"], rec["action"]), ("IT.RPZ.Feed", "nxdomain"), rec)

    def test_check_and_match(self):
        rc, out, err = harness.run_dnsink("check", "-c", self.dk.conf)
        self.assertEqual(rc, 0, out + err)
        line = [ln for ln in out.splitlines() if ln.startswith("  feed.rpz.:")]
        self.assertEqual(len(line), 1, out)
        self.assertIn("serial 1", line[0])
        self.assertIn("1 nsdname and 1 nsip triggers not evaluated", line[0])
        self.assertIn("1 invalid records skipped", line[0])
        self.assertRegex(out, r"IT\.RPZ\.Feed +action rpz ")
        rc, out, err = harness.run_dnsink("match", "-c", self.dk.conf, "x.pass.rpz-up.test",
                                          "pass.rpz-up.test", "bücher.rpz-up.test")
        self.assertIn("x.pass.rpz-up.test: rule IT.RPZ.Feed action nxdomain matched "
                      "*.pass.rpz-up.test", out)
        self.assertIn("pass.rpz-up.test: rule IT.RPZ.Feed action allow", out)
        self.assertIn("xn--bcher-kva.rpz-up.test: rule IT.RPZ.Feed action nxdomain", out)


    def test_check_is_loud(self):
        # A CSV where a list was expected, an empty list, single labels, a zone of no trigger.
        loud = os.path.join(harness.SOURCE_ROOT, "tests", "data", "rules", "loud")
        empty_dir = os.path.join(self.dir, "emptyzone")
        os.makedirs(empty_dir)
        with open(os.path.join(empty_dir, "e.rpz"), "w") as f:
            f.write("@ SOA ns.e.rpz. h.e.rpz. 1 3600 600 86400 60\nbad..name CNAME .\n")
        with open(os.path.join(empty_dir, "e.yml"), "w") as f:
            f.write("id: IT.RPZ.Empty\nname: e\nseverity: low\nrpz: { file: e.rpz, zone: e.rpz }\n")
        conf = os.path.join(self.dir, "loud.yml")
        with open(conf, "w") as f:
            f.write("listen: [127.0.0.1:%d]\nupstreams: [127.0.0.1:%d]\nrules: [%s/, %s/]\n"
                    % (harness.free_port(), self.knot.port, loud, empty_dir))
        rc, out, err = harness.run_dnsink("check", "-c", conf)
        self.assertEqual(rc, 0, out + err)
        warnings = [ln for ln in out.splitlines() if "warning:" in ln]
        self.assertEqual(len(warnings), 5, out)
        self.assertTrue(any("dyndns.csv:1: warning: 4 of 5 lines are invalid" in w
                            for w in warnings), warnings)
        self.assertTrue(any("empty.txt: warning: list loads 0 entries" in w for w in warnings))
        self.assertTrue(any("warning: zone e.rpz. loads 0 triggers" in w for w in warnings))
        self.assertTrue(any("single_label: true" in w for w in warnings))


if __name__ == "__main__":
    unittest.main()
