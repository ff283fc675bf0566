#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Declarative scenarios, in the spirit of Deckard/.rpl: one row per query.

Columns: name, qtype, transport, expected rcode, expected answer rdata (a list,
or UPSTREAM: whatever knotd answers itself), expected alert (rule id and
action, or None: no record). Rows run in order against one dnsink; alerts are
checked per row from the file sink, each name used once (dedup)."""
import harness
from harness import query, SINK_V4, SINK_V6

UPSTREAM = "UPSTREAM"
MINING = "DNS.Crypto.MiningPool"
DYNDNS = "DNS.DynDNS.SuspiciousProvider"

SCENARIOS = [
    # name                      qtype   tr     rcode       answer               alert
    ("www.example.test",        "A",    "udp", "NOERROR",  UPSTREAM,            None),
    ("www.example.test",        "AAAA", "tcp", "NOERROR",  UPSTREAM,            None),
    ("www.example.test",        "TXT",  "udp", "NOERROR",  UPSTREAM,            None),
    ("nothere.example.test",    "A",    "tcp", "NXDOMAIN", UPSTREAM,            None),
    ("t1.moneropool.ru",        "A",    "udp", "NOERROR",  [SINK_V4],           (MINING, "sinkhole")),
    ("T2.Crypto-Pool.FR.",      "AAAA", "tcp", "NOERROR",  [SINK_V6],           (MINING, "sinkhole")),
    ("t3.coolmining.club",      "TXT",  "udp", "NOERROR",  [],                  (MINING, "sinkhole")),
    ("ok.moneropool.ru",        "A",    "udp", "NOERROR",  UPSTREAM,            None),
    ("notmoneropool.ru",        "A",    "tcp", "NOERROR",  UPSTREAM,            None),
    ("t4.nx.example.test",      "A",    "udp", "NXDOMAIN", [],                  ("IT.Test.NxDomain", "nxdomain")),
    ("refused.example.test",    "TXT",  "tcp", "REFUSED",  [],                  ("IT.Test.Refused", "refused")),
    ("t5.wild.example.test",    "A",    "udp", "NOERROR",  UPSTREAM,            ("IT.Test.WildAlert", "alert")),
    ("wild.example.test",       "A",    "udp", "NOERROR",  UPSTREAM,            None),
    ("silent.example.test",     "A",    "udp", "NOERROR",  [SINK_V4],           None),
    ("t6.hopto.org",            "A",    "tcp", "NOERROR",  UPSTREAM,            (DYNDNS, "alert")),
    ("hopto.org",               "A",    "udp", "NOERROR",  UPSTREAM,            None),
]


class Table(harness.DnsinkTest):

    def test_scenarios(self):
        failures = []
        for name, qtype, tr, rcode, answer, alert in SCENARIOS:
            tcp = tr == "tcp"
            a = query(self.dk.port, name, qtype, tcp=tcp)
            want = answer
            if answer == UPSTREAM:
                want = [d for _, d in query(self.knot.port, name, qtype, tcp=tcp).rdata()]
            got = [d for _, d in a.rdata()]
            if a.timeout or a.rcode != rcode or sorted(got) != sorted(want):
                failures.append("%s %s/%s: want %s %s, got %s %s" % (
                    name, qtype, tr, rcode, want, "timeout" if a.timeout else a.rcode, got))
            norm = name.lower().rstrip(".")
            if alert:
                try:
                    recs = self.dk.wait_alerts(lambda r: r.get("dns_query") == norm, timeout=3)
                    r = recs[0]
                    if (r.get("rule_id"), r.get("action"), r.get("transport")) != alert + (tr,):
                        failures.append("%s: alert %s" % (name, r))
                except AssertionError:
                    failures.append("%s: no alert record" % name)
        # Names that must not have alerted: checked last, after every alert arrived.
        alerted = {r.get("dns_query") for r in self.dk.alerts()}
        for name, _, _, _, _, alert in SCENARIOS:
            if not alert and name.lower().rstrip(".") in alerted:
                failures.append("%s: unexpected alert" % name)
        self.assertEqual(failures, [], "\n".join(failures))


if __name__ == "__main__":
    harness.main()
