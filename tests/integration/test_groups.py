#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Client groups: clients 127.0.0.1, 127.0.0.2, 127.0.0.3 and ::1 ask dnsink
(knotd upstream) the same names and get their own group's answers and alert
records; the shared cache never hands one group's local answer, nor an
upstream answer, to a group whose rules block the name; `dnsink match
--client` and `check` say the same; a SIGHUP reload moves 127.0.0.3 from
`default` into `lab`; the per-group counters reach the metrics endpoint."""
import os
import signal
import urllib.request

import harness
from harness import query, run_dnsink, SINK_V4

RULES = """\
id: IT.Groups.Pool
name: Groups test pool
severity: high
action: sinkhole
dedup_minutes: 0
tags: [pools]
domains: [moneropool.ru]
---
id: IT.Groups.Dyn
name: Groups test dynamic DNS
severity: medium
action: alert
dedup_minutes: 0
domains: ["*.hopto.org"]
"""

GROUPS = """\
groups:
  - name: lab
    clients: [%s]
    disable: [pools]
    actions: { IT.Groups.Dyn: nxdomain }
  - name: v6
    clients: ["::1/128"]
    allow: [www.moneropool.ru]
"""


class Groups(harness.DnsinkTest):
    start_dnsink = False

    def setUp(self):
        super().setUp()
        rules = os.path.join(self.dir, "group-rules")
        os.makedirs(rules)
        with open(os.path.join(rules, "groups.yml"), "w") as f:
            f.write(RULES)
        self.metrics_port = harness.free_port()
        self.dk = self.new_dnsink(
            use_repo_rules=False, extra_rule_dirs=[rules + "/"], listen6=True,
            allow=("127.0.0.0/8", '"::1/128"'),
            extra_yaml=GROUPS % "127.0.0.2/32"
            + "metrics:\n  listen: 127.0.0.1:%d\n" % self.metrics_port)

    def ask(self, src, name, tcp=False):
        host = "::1" if ":" in src else "127.0.0.1"
        a = query(self.dk.port, name, "A", src=src, host=host, tcp=tcp)
        self.assertFalse(a.timeout, a)
        return a

    def records(self, name, n):
        return self.dk.wait_alerts(lambda r: r["dns_query"] == name, n=n)

    def test_same_names_different_answers(self):
        # The lab asks first: its forwarded answer lands in the shared cache...
        a = self.ask("127.0.0.2", "a.moneropool.ru")
        self.assertEqual(a.rcode, "NOERROR", a)
        self.assertEqual(a.rdata(), [("A", "198.51.100.2")], a)
        # ...and never reaches a client whose group blocks the name.
        for src in ("127.0.0.1", "127.0.0.3", "::1"):
            for tcp in (False, True):
                a = self.ask(src, "a.moneropool.ru", tcp=tcp)
                self.assertEqual(a.rdata(), [("A", SINK_V4)], (src, a))
        # The lab's local NXDOMAIN is not cached for the others.
        a = self.ask("127.0.0.2", "y.hopto.org")
        self.assertEqual(a.rcode, "NXDOMAIN", a)
        a = self.ask("127.0.0.3", "y.hopto.org")
        self.assertEqual(a.rcode, "NOERROR", a)
        self.assertEqual(a.rdata(), [("A", "198.51.100.5")], a)
        # v6's own allow entry: forwarded for it, sinkholed for the others.
        a = self.ask("::1", "www.moneropool.ru")
        self.assertEqual(a.rdata(), [("A", "198.51.100.2")], a)
        a = self.ask("127.0.0.1", "www.moneropool.ru")
        self.assertEqual(a.rdata(), [("A", SINK_V4)], a)

        recs = self.records("y.hopto.org", 2)
        by_ip = {r["source_ip"]: r for r in recs}
        self.assertEqual(by_ip["127.0.0.2"]["group"], "lab")
        self.assertEqual(by_ip["127.0.0.2"]["action"], "nxdomain")
        self.assertEqual(by_ip["127.0.0.2"]["rcode"], "NXDOMAIN")
        self.assertEqual(by_ip["127.0.0.3"]["group"], "default")
        self.assertEqual(by_ip["127.0.0.3"]["action"], "alert")
        recs = self.records("a.moneropool.ru", 6)
        self.assertEqual(sorted({(r["source_ip"], r["group"]) for r in recs}),
                         [("127.0.0.1", "default"), ("127.0.0.3", "default"), ("::1", "v6")])
        self.assertTrue(all(r["action"] == "sinkhole" for r in recs), recs)
        # The lab's query was not a hit for it: no record, and none for v6's exception.
        self.assertFalse([r for r in self.dk.alerts() if r["source_ip"] == "127.0.0.2"
                          and r["rule_id"] == "IT.Groups.Pool"])
        self.assertFalse([r for r in self.dk.alerts() if r["dns_query"] == "www.moneropool.ru"
                          and r["source_ip"] == "::1"])

        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port,
                                      timeout=5).read().decode()
        vals = {}
        for line in text.splitlines():
            if line.startswith("dnsink_group_"):
                k, v = line.rsplit(" ", 1)
                vals[k] = float(v)
        # lab: a.moneropool.ru and y.hopto.org asked, y.hopto.org decided by a rule.
        self.assertEqual(vals['dnsink_group_queries_total{group="lab"}'], 2, text)
        self.assertEqual(vals['dnsink_group_hits_total{group="lab"}'], 1, text)
        self.assertEqual(vals['dnsink_group_queries_total{group="v6"}'], 3, text)
        self.assertEqual(vals['dnsink_group_hits_total{group="v6"}'], 3, text)

    def test_cli_agrees(self):
        rc, out, err = run_dnsink("match", "-c", self.dk.conf, "--client", "127.0.0.2",
                                  "a.moneropool.ru", "x.hopto.org")
        self.assertEqual(rc, 0, err)
        self.assertIn("a.moneropool.ru: no match group lab", out)
        self.assertIn("x.hopto.org: rule IT.Groups.Dyn action nxdomain matched *.hopto.org "
                      "(severity medium) group lab", out)
        rc, out, err = run_dnsink("match", "-c", self.dk.conf, "--client", "::1",
                                  "www.moneropool.ru")
        self.assertIn("rule group:v6:allow action allow", out)
        rc, out, err = run_dnsink("check", "-c", self.dk.conf)
        self.assertEqual(rc, 0, err)
        self.assertIn("  lab\n    clients       127.0.0.2/32\n"
                      "    rules         IT.Groups.Pool off, IT.Groups.Dyn nxdomain\n", out)

    def test_reload_moves_client(self):
        a = self.ask("127.0.0.3", "b.moneropool.ru")
        self.assertEqual(a.rdata(), [("A", SINK_V4)], a)
        with open(self.dk.conf) as f:
            text = f.read()
        with open(self.dk.conf, "w") as f:
            f.write(text.replace("clients: [127.0.0.2/32]",
                                 "clients: [127.0.0.2/32, 127.0.0.3/32]"))
        self.dk.proc.signal(signal.SIGHUP)

        def moved():
            return self.ask("127.0.0.3", "c.moneropool.ru").rcode == "NOERROR" and \
                self.ask("127.0.0.3", "c.moneropool.ru").rdata() == [("A", "198.51.100.2")]
        harness.wait_until(moved, 5, step=0.1, what="127.0.0.3 to be in group lab")
        a = self.ask("127.0.0.3", "z.hopto.org")
        self.assertEqual(a.rcode, "NXDOMAIN", a)
        rec = self.records("z.hopto.org", 1)[0]
        self.assertEqual((rec["source_ip"], rec["group"], rec["action"]),
                         ("127.0.0.3", "lab", "nxdomain"))
        rec = self.records("b.moneropool.ru", 1)[0]
        self.assertEqual(rec["group"], "default")
        # Still in default: the others.
        a = self.ask("127.0.0.1", "c.moneropool.ru")
        self.assertEqual(a.rdata(), [("A", SINK_V4)], a)

    def test_reload_overlap_keeps_old_groups(self):
        with open(self.dk.conf) as f:
            text = f.read()
        with open(self.dk.conf, "w") as f:
            f.write(text.replace('clients: ["::1/128"]', 'clients: ["::1/128", 127.0.0.2/32]'))
        self.dk.proc.signal(signal.SIGHUP)
        line = text.splitlines().index('    clients: ["::1/128"]') + 1

        def logged():
            return "dnsink.yml:%d: groups: prefix listed twice" % line in \
                self.dk.proc.log_text()
        try:
            harness.wait_until(logged, 5, what="the reload error")
        except AssertionError:
            raise AssertionError(self.dk.proc.log_text()[-3000:])
        a = self.ask("127.0.0.2", "d.moneropool.ru")
        self.assertEqual(a.rdata(), [("A", "198.51.100.2")], a)


if __name__ == "__main__":
    harness.main()
