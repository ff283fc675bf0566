#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Sigma rules inline, against knotd: an answer-side rule on resolved addresses
(DNS rebinding: an answer into 127.0.0.0/8 is sinkholed by the config's action
mapping, a public answer passes), an answer-side TXT rule that alerts and lets
the real answer through, and behavioural rules: a legacy "| count() by src_ip"
aggregation and an event_count correlation. A burst from one client alerts
once per window, with its group key and count; a client below the threshold
never alerts. The counters are per worker (queries from one client socket
reach one worker, a client spread over source ports may reach several), so
the behavioural scenarios run one worker."""
import os
import time

import harness
from harness import query, SINK_V4

REBIND_ID = "7a1d0000-0000-4000-8000-0000000000a1"

RULES = {
    "rebind.yml": """\
title: DNS rebinding - public name resolving to a private address
id: %s
logsource:
    category: dns
detection:
    selection:
        answer|cidr:
            - 127.0.0.0/8
            - 10.0.0.0/8
            - 192.168.0.0/16
    filter:
        query|endswith: '.localhost'
    condition: selection and not filter
tags:
    - attack.t1557
level: high
""" % REBIND_ID,
    "txt.yml": """\
title: TXT answer carrying a greeting
id: 7a1d0000-0000-4000-8000-0000000000a2
logsource:
    category: dns
detection:
    selection:
        record_type: TXT
        answers|contains: 'hello'
    condition: selection
references:
    - https://example.net/txt
level: low
""",
    "rate.yml": """\
title: Burst of lookups below wild.example.test per client
id: 7a1d0000-0000-4000-8000-0000000000a3
logsource:
    category: dns
detection:
    selection:
        query|endswith: '.wild.example.test'
    timeframe: 1m
    condition: selection | count() by src_ip >= 5
level: medium
""",
    "corr.yml": """\
title: Many TXT lookups per client
id: 7a1d0000-0000-4000-8000-0000000000a4
correlation:
    type: event_count
    rules:
        - www_txt
    group-by:
        - src_ip
    timespan: 1m
    condition:
        gte: 4
level: high
---
title: A TXT lookup of www2
id: 7a1d0000-0000-4000-8000-0000000000a5
name: www_txt
logsource:
    category: dns
detection:
    selection:
        QueryType: TXT
        QueryName: www2.example.test
    condition: selection
level: informational
""",
}


class SigmaInline(harness.DnsinkTest):
    start_dnsink = False

    def setUp(self):
        super().setUp()
        sdir = os.path.join(self.dir, "sigma")
        os.makedirs(sdir)
        for fn, text in RULES.items():
            with open(os.path.join(sdir, fn), "w") as f:
                f.write(text)
        self.dk = self.new_dnsink(extra_rule_dirs=[sdir + "/"], allow=("127.0.0.0/8",),
                                  extra_yaml="workers: 1\nsigma:\n  actions:\n    %s: sinkhole\n"
                                  % REBIND_ID)

    def recs(self, rule_id):
        return [r for r in self.dk.alerts() if r.get("rule_id") == rule_id]

    def test_rebinding_answer_sinkholed(self):
        up = query(self.knot.port, "ns.example.test", "A")
        self.assertEqual(up.rdata(), [("A", "127.0.0.1")], up)
        a = query(self.dk.port, "ns.example.test", "A")
        self.assertEqual(a.rcode, "NOERROR", a)
        self.assertEqual(a.rdata(), [("A", SINK_V4)], a)
        rec = self.dk.wait_alerts(lambda r: r.get("rule_id") == REBIND_ID)[0]
        self.assertEqual(rec["action"], "sinkhole", rec)
        self.assertEqual(rec["severity"], "high", rec)
        self.assertEqual(rec["dns_query"], "ns.example.test", rec)
        self.assertEqual(rec["rule_name"],
                         "DNS rebinding - public name resolving to a private address", rec)
        self.assertEqual(rec["mitre"], ["T1557"], rec)
        # A public address passes untouched, and raises nothing.
        a = query(self.dk.port, "www.example.test", "A")
        self.assertEqual(a.rdata(), [("A", "192.0.2.10")], a)
        time.sleep(0.3)
        self.assertEqual(len(self.recs(REBIND_ID)), 1, self.dk.alerts())

    def test_txt_answer_alerts_and_passes(self):
        a = query(self.dk.port, "www.example.test", "TXT")
        self.assertIn("hello dnsink", " ".join(d for (_, d) in a.rdata("TXT")), a)
        rec = self.dk.wait_alerts(lambda r: r.get("rule_id", "").endswith("a2"))[0]
        self.assertEqual(rec["action"], "alert", rec)
        self.assertEqual(rec["severity"], "low", rec)
        self.assertEqual(rec["references"], ["https://example.net/txt"], rec)
        # The same rule on an A query: record_type does not hold.
        query(self.dk.port, "www.example.test", "A")
        time.sleep(0.3)
        self.assertEqual(len(self.recs("7a1d0000-0000-4000-8000-0000000000a2")), 1)

    def burst(self, name, qtype, n, src):
        for i in range(n):
            a = query(self.dk.port, name % i, qtype, src=src)
            self.assertEqual(a.rcode, "NOERROR", a)

    def test_rate_rule_once_per_window(self):
        rid = "7a1d0000-0000-4000-8000-0000000000a3"
        self.burst("h%d.wild.example.test", "A", 12, "127.0.0.1")
        self.burst("q%d.wild.example.test", "A", 3, "127.0.0.2")
        recs = self.dk.wait_alerts(lambda r: r.get("rule_id") == rid)
        time.sleep(0.5)
        recs = self.recs(rid)
        self.assertEqual(len(recs), 1, recs)
        self.assertEqual(recs[0]["group_key"], "src_ip=127.0.0.1", recs)
        self.assertEqual(recs[0]["group_count"], 5, recs)
        self.assertEqual(recs[0]["source_ip"], "127.0.0.1", recs)

    def test_event_count_correlation(self):
        cid = "7a1d0000-0000-4000-8000-0000000000a4"
        self.burst("www2.example.test%.0s", "TXT", 6, "127.0.0.1")
        self.burst("www2.example.test%.0s", "TXT", 2, "127.0.0.3")
        self.dk.wait_alerts(lambda r: r.get("rule_id") == cid)
        time.sleep(0.5)
        recs = self.recs(cid)
        self.assertEqual(len(recs), 1, recs)
        self.assertEqual(recs[0]["group_key"], "src_ip=127.0.0.1", recs)
        self.assertEqual(recs[0]["group_count"], 4, recs)
        # generate: false (the default): the base rule alone raises nothing.
        self.assertEqual(self.recs("7a1d0000-0000-4000-8000-0000000000a5"), [])


if __name__ == "__main__":
    harness.main()
