#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Alert records: every field of SPEC.md checked against the rule file and the
query that caused it, read from the JSON-lines file sink and from a real
rsyslogd receiving RFC 5424 over UDP and over TCP."""
import datetime
import json
import re
import time

import harness
from harness import query

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


def parse_time(s):
    base = s[:19]
    return datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc).timestamp()


class AlertChecks:
    """Field checks shared by the file-sink and syslog tests."""

    def check_record(self, rec, meta, action, answer, transport, dns_query, qtype, matched):
        self.assertEqual(rec.get("rule_id"), meta["id"], rec)
        self.assertEqual(rec.get("rule_name"), meta["name"], rec)
        self.assertEqual(rec.get("severity"), meta["severity"], rec)
        self.assertEqual(rec.get("mitre"), meta.get("mitre", []), rec)
        self.assertEqual(rec.get("action"), action, rec)
        self.assertEqual(rec.get("source_ip"), "127.0.0.1", rec)
        self.assertIsInstance(rec.get("source_port"), int, rec)
        if answer.local:
            self.assertEqual(rec.get("source_port"), answer.local[1], rec)
        self.assertEqual(rec.get("transport"), transport, rec)
        self.assertEqual(rec.get("dns_query"), dns_query, rec)
        self.assertEqual(rec.get("qtype"), qtype, rec)
        if isinstance(matched, tuple):
            self.assertIn(rec.get("matched"), matched, rec)
        else:
            self.assertEqual(rec.get("matched"), matched, rec)
        self.assertEqual(rec.get("count"), 1, rec)
        self.assertRegex(rec.get("time", ""), TIME_RE)
        self.assertLess(abs(parse_time(rec["time"]) - time.time()), 120, rec)


TEST_META = {fn: harness.read_rule_meta_text(text) for fn, text in harness.TEST_RULES.items()}


class FileSink(harness.DnsinkTest, AlertChecks):

    def test_sinkhole_record_udp(self):
        _, meta = harness.repo_rule_with("moneropool.ru")
        a = query(self.dk.port, "abc.abc.MoneroPool.ru.", "A")
        self.assertEqual(a.rdata(), [("A", harness.SINK_V4)], a)
        recs = self.dk.wait_alerts(lambda r: r.get("rule_id") == meta["id"])
        self.assertEqual(len(recs), 1, recs)
        self.check_record(recs[0], meta, "sinkhole", a, "udp", "abc.abc.moneropool.ru", "A",
                          "moneropool.ru")

    def test_sinkhole_record_tcp_aaaa(self):
        _, meta = harness.repo_rule_with("moneropool.ru")
        a = query(self.dk.port, "moneropool.ru", "AAAA", tcp=True)
        self.assertEqual(a.rdata(), [("AAAA", harness.SINK_V6)], a)
        recs = self.dk.wait_alerts(lambda r: r.get("rule_id") == meta["id"])
        self.check_record(recs[0], meta, "sinkhole", a, "tcp", "moneropool.ru", "AAAA",
                          "moneropool.ru")

    def test_alert_action_forwards_and_records(self):
        _, meta = harness.repo_rule_with("*.hopto.org")
        a = query(self.dk.port, "x.hopto.org", "A")
        theirs = query(self.knot.port, "x.hopto.org", "A")
        self.assertEqual(a.rcode, "NOERROR", a)
        self.assertEqual(a.rdata(), theirs.rdata(), (a, theirs))
        self.assertEqual(a.rdata(), [("A", "198.51.100.5")], a)
        recs = self.dk.wait_alerts(lambda r: r.get("rule_id") == meta["id"])
        self.check_record(recs[0], meta, "alert", a, "udp", "x.hopto.org", "A",
                          ("*.hopto.org", "hopto.org"))

    def test_apex_of_star_entry_no_alert(self):
        _, meta = harness.repo_rule_with("*.hopto.org")
        a = query(self.dk.port, "hopto.org", "A")
        self.assertEqual(a.rdata(), [("A", "198.51.100.4")], a)
        self.barrier()
        self.assertEqual([r for r in self.dk.alerts() if r.get("rule_id") == meta["id"]], [])

    def test_test_rules_records(self):
        cases = [("it-wild.yml", "u1.wild.example.test", "TXT", "alert", "*.wild.example.test"),
                 ("it-nxdomain.yml", "a.nx.example.test", "AAAA", "nxdomain", "nx.example.test"),
                 ("it-refused.yml", "refused.example.test", "A", "refused",
                  "refused.example.test")]
        for fn, name, qtype, action, matched in cases:
            with self.subTest(rule=fn):
                meta = TEST_META[fn]
                a = query(self.dk.port, name, qtype, tcp=True)
                self.assertFalse(a.timeout, a)
                recs = self.dk.wait_alerts(lambda r, i=meta["id"]: r.get("rule_id") == i)
                m = matched if not matched.startswith("*.") else (matched, matched[2:])
                self.check_record(recs[0], meta, action, a, "tcp", name, qtype, m)

    def barrier(self):
        """Causes one nxdomain-rule alert and waits for it: records before it are out."""
        query(self.dk.port, "barrier.nx.example.test", "A")
        self.dk.wait_alerts(lambda r: r.get("dns_query") == "barrier.nx.example.test")

    def test_allow_and_silent_make_no_record(self):
        query(self.dk.port, "ok.moneropool.ru", "A")
        query(self.dk.port, "silent.example.test", "A")
        query(self.dk.port, "www.example.test", "A")
        self.barrier()
        ids = {r.get("rule_id") for r in self.dk.alerts()}
        self.assertNotIn("IT.Test.Allow", ids)
        self.assertNotIn("IT.Test.Silent", ids)
        self.assertFalse([r for r in self.dk.alerts()
                          if r.get("dns_query") in ("ok.moneropool.ru", "www.example.test")])

    def test_dedup_one_record_per_period(self):
        _, meta = harness.repo_rule_with("moneropool.ru")
        for _ in range(3):
            query(self.dk.port, "x.moneropool.ru", "A")
        self.barrier()
        recs = [r for r in self.dk.alerts() if r.get("rule_id") == meta["id"]]
        self.assertEqual(len(recs), 1, recs)
        self.assertEqual(recs[0]["count"], 1, recs)

    def test_dedup_followup_at_exit(self):
        """Repeats in the window are counted; the window closes at exit with a follow-up."""
        _, meta = harness.repo_rule_with("moneropool.ru")
        names = ["a.moneropool.ru", "b.a.moneropool.ru", "moneropool.ru", "c.moneropool.ru"]
        for n in names:
            self.assertEqual(query(self.dk.port, n, "A").rdata(), [("A", harness.SINK_V4)])
        self.barrier()
        first = [r for r in self.dk.alerts() if r.get("rule_id") == meta["id"]]
        self.assertEqual(len(first), 1, first)
        self.assertEqual((first[0]["count"], first[0]["followup"]), (1, False), first)
        self.assertEqual(first[0]["dns_query"], names[0], first)
        self.assertEqual(self.dk.proc.stop(), 0)
        recs = [r for r in self.dk.alerts() if r.get("rule_id") == meta["id"]]
        self.assertEqual(len(recs), 2, recs)
        fu = recs[1]
        # The three repeats (same rule, client and matched entry), the latest named.
        self.assertEqual((fu["count"], fu["followup"]), (len(names) - 1, True), fu)
        self.assertEqual(fu["dns_query"], names[-1], fu)
        self.assertEqual(fu["matched"], "moneropool.ru", fu)
        self.assertLessEqual(parse_time(first[0]["first_seen"]), parse_time(fu["first_seen"]))
        self.assertLessEqual(fu["first_seen"], fu["last_seen"])
        self.assertEqual(fu["time"], fu["last_seen"])

    def test_records_are_json_lines(self):
        query(self.dk.port, "moneropool.ru", "A")
        query(self.dk.port, "q.nx.example.test", "A")
        self.dk.wait_alerts(lambda r: True, n=2)
        with open(self.dk.alerts_file, encoding="utf-8") as f:
            text = f.read()
        self.assertTrue(text.endswith("\n"))
        for line in text.splitlines():
            self.assertIsInstance(json.loads(line), dict)


class SyslogUdp(harness.DnsinkTest, AlertChecks):
    want_rsyslog = True
    transport = "udp"
    dnsink_kwargs = {"syslog_transport": "udp"}

    def test_rfc5424_record(self):
        _, meta = harness.repo_rule_with("moneropool.ru")
        a = query(self.dk.port, "Pool.MoneroPool.ru", "A")
        self.assertEqual(a.rdata(), [("A", harness.SINK_V4)], a)

        def got():
            return self.rsyslog.messages(app="dnsink-it")
        try:
            msgs = harness.wait_until(got, 5, what="syslog message from dnsink")
        except AssertionError:
            raise AssertionError("rsyslog got nothing from dnsink; raw:\n%s\nfile sink: %s"
                                 % ("\n".join(self.rsyslog.raw_lines()), self.dk.alerts()))
        self.assertEqual(len(msgs), 1, msgs)
        m = msgs[0]
        self.assertEqual(m["version"], "1", m)
        self.assertEqual(int(m["pri"]) // 8, 19, m)  # facility local3
        self.assertEqual(m["input"], "im" + self.transport, m)
        rec = json.loads(m["msg"].lstrip("\ufeff").strip())
        self.check_record(rec, meta, "sinkhole", a, "udp", "pool.moneropool.ru", "A",
                          "moneropool.ru")
        # The file sink got the same event.
        frec = self.dk.wait_alerts(lambda r: r.get("rule_id") == meta["id"])[0]
        for k in ("rule_id", "dns_query", "source_port", "matched", "time"):
            self.assertEqual(frec.get(k), rec.get(k), (frec, rec))


class SyslogTcp(SyslogUdp):
    transport = "tcp"
    dnsink_kwargs = {"syslog_transport": "tcp"}


if __name__ == "__main__":
    harness.main()
