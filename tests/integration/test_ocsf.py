#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""OCSF end to end: with alerts.format ocsf, a blocked query gives one OCSF DNS
Activity record (class_uid 4003) in the JSON-lines file sink, with the query
name where the seed Panther rule reads it (query.hostname), the client in
src_endpoint, the rcode the client got, the disposition and the rule in
unmapped. The record is then fed back, as a rule test log, to the shipped
mining-pool rule through `dnsink test`: the same rule judges dnsink's output."""
import json
import os
import shutil
import time

import harness
from harness import query, run_dnsink


class Ocsf(harness.DnsinkTest):
    dnsink_kwargs = {"extra_yaml": "  format: ocsf\n"}

    def record(self, name):
        recs = self.dk.wait_alerts(lambda r: r.get("query", {}).get("hostname") == name)
        self.assertEqual(len(recs), 1, recs)
        return recs[0]

    def check_common(self, rec, answer, meta, transport):
        self.assertEqual(rec["class_uid"], 4003, rec)
        self.assertEqual(rec["class_name"], "DNS Activity", rec)
        self.assertEqual(rec["category_uid"], 4, rec)
        self.assertEqual(rec["type_uid"], 400301, rec)
        self.assertEqual(rec["src_endpoint"]["ip"], "127.0.0.1", rec)
        self.assertEqual(rec["src_endpoint"]["port"], answer.local[1], rec)
        self.assertEqual(rec["connection_info"]["protocol_name"], transport, rec)
        self.assertEqual(rec["unmapped"]["rule_id"], meta["id"], rec)
        self.assertEqual(rec["unmapped"]["rule_name"], meta["name"], rec)
        self.assertEqual(rec["unmapped"]["mitre"], meta.get("mitre", []), rec)
        self.assertEqual(rec["metadata"]["product"]["name"], "dnsink", rec)
        # OCSF time is epoch milliseconds.
        self.assertIsInstance(rec["time"], int, rec)
        self.assertLess(abs(rec["time"] / 1000 - time.time()), 120, rec)
        self.assertEqual(rec["count"], 1, rec)
        # Nothing of the native format leaks into the OCSF record.
        self.assertNotIn("dns_query", rec)
        self.assertNotIn("rule_id", rec)

    def test_sinkhole_record_and_panther_replay(self):
        path, meta = harness.repo_rule_with("moneropool.ru")
        a = query(self.dk.port, "abc.abc.MoneroPool.ru.", "AAAA")
        self.assertEqual(a.rdata(), [("AAAA", harness.SINK_V6)], a)
        self.assertIsNotNone(a.local, a)
        rec = self.record("abc.abc.moneropool.ru")
        self.check_common(rec, a, meta, "udp")
        self.assertEqual(rec["query"], {"hostname": "abc.abc.moneropool.ru", "type": "AAAA",
                                        "class": "IN"}, rec)
        self.assertEqual((rec["rcode_id"], rec["rcode"]), (0, "NoError"), rec)
        self.assertEqual((rec["disposition_id"], rec["disposition"]), (2, "Blocked"), rec)
        self.assertEqual((rec["action_id"], rec["action"]), (2, "Denied"), rec)
        self.assertEqual((rec["severity_id"], rec["severity"]), (4, "High"), rec)
        self.assertEqual(rec["unmapped"]["dnsink_action"], "sinkhole", rec)
        self.assertEqual(rec["unmapped"]["matched"], "moneropool.ru", rec)

        # The shipped rule, with dnsink's record as a test log: it must fire on
        # it, and not on the same record naming another host.
        d = os.path.join(self.dir, "replay")
        os.makedirs(d)
        copy = os.path.join(d, os.path.basename(path))
        shutil.copyfile(path, copy)
        other = json.loads(json.dumps(rec))
        other["query"]["hostname"] = "www.example.test"
        with open(copy, "a") as f:
            f.write("  - name: dnsink OCSF record\n    expect: true\n    log: %s\n"
                    "  - name: dnsink OCSF record, other host\n    expect: false\n"
                    "    log: %s\n" % (json.dumps(rec), json.dumps(other)))
        rc, out, err = run_dnsink("test", copy)
        self.assertEqual(rc, 0, out + err)
        self.assertRegex(out, r"(?m)^\d+ passed, 0 failed$")
        self.assertNotIn("dnsink OCSF record", out + err)  # failures are named
        # And the replay really is judged: flipping the expectation fails it.
        with open(copy) as f:
            text = f.read()
        with open(copy, "w") as f:
            f.write(text.replace("    expect: true\n    log: %s" % json.dumps(rec),
                                 "    expect: false\n    log: %s" % json.dumps(rec)))
        rc, out, err = run_dnsink("test", copy)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("dnsink OCSF record", out + err)
        self.assertRegex(out, r"(?m)^\d+ passed, 1 failed$")

    def test_nxdomain_and_alert_records_tcp(self):
        meta = harness.read_rule_meta_text(harness.TEST_RULES["it-nxdomain.yml"])
        a = query(self.dk.port, "x.nx.example.test", "A", tcp=True)
        self.assertEqual(a.rcode, "NXDOMAIN", a)
        rec = self.record("x.nx.example.test")
        self.check_common(rec, a, meta, "tcp")
        self.assertEqual((rec["rcode_id"], rec["rcode"]), (3, "NXDomain"), rec)
        self.assertEqual((rec["disposition_id"], rec["disposition"]), (2, "Blocked"), rec)
        self.assertEqual(rec["unmapped"]["dnsink_action"], "nxdomain", rec)

        # An alert-only rule: forwarded, so the client got the upstream's rcode.
        meta = harness.read_rule_meta_text(harness.TEST_RULES["it-wild.yml"])
        a = query(self.dk.port, "h.wild.example.test", "A", tcp=True)
        self.assertEqual(a.rdata(), [("A", "192.0.2.99")], a)
        rec = self.record("h.wild.example.test")
        self.check_common(rec, a, meta, "tcp")
        self.assertEqual((rec["disposition_id"], rec["disposition"]), (19, "Alert"), rec)
        self.assertEqual((rec["action_id"], rec["action"]), (1, "Allowed"), rec)
        self.assertIn(rec["unmapped"]["matched"], ("*.wild.example.test", "wild.example.test"),
                      rec)


if __name__ == "__main__":
    harness.main()
