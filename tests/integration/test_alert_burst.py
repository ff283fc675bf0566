#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A burst of distinct alerts through the alerter's batches: the datagram sinks
gather a drain's records and send them with sendmmsg, the file sink writes
them with one write. With a rule of dedup_minutes 0 (one record per query,
each with a name of its own) a burst of queries sent without waiting must come
out complete, once each and in the order the queries were sent, in the
JSON-lines file and at a real rsyslogd, over a unix datagram socket (whose
receiver takes ten datagrams at a time: most of a batch waits for room) and
over UDP. A record far bigger than the others (a rule with a long name and
many MITRE tags) in the middle of the burst arrives whole. Restarting
rsyslogd on the same unix socket path loses nothing sent after it is back:
the connected socket finds the new one."""
import collections
import json
import os
import socket
import time

import harness
from harness import build_query, udp_ask, wait_until

SMALL = """\
id: IT.Burst.Each
name: Burst test, one record per query
severity: high
action: nxdomain
dedup_minutes: 0
domains:
  - burst.example.test
"""
# About 5 KiB of record: twelve times the others, and bigger than the
# datagrams a batch usually holds.
BIG = """\
id: IT.Burst.Big
name: %s
severity: high
action: nxdomain
dedup_minutes: 0
mitre:
%s
domains:
  - big.example.test
""" % ("Burst test, a big record " + "x" * 3000,
       "".join("  - TA%04d:T%04d\n" % (i, i) for i in range(150)))
N = 1500
CHUNK = 150
ARRIVE_TIMEOUT = 30


class BurstBase(harness.DnsinkTest):
    """Starts dnsink with the two burst rules, alerting to rsyslogd over transport."""
    want_rsyslog = True
    start_dnsink = False
    transport = "unix"

    def setUp(self):
        super().setUp()
        extra = os.path.join(self.dir, "extra-rules")
        os.makedirs(extra)
        for fn, text in (("small.yml", SMALL), ("big.yml", BIG)):
            with open(os.path.join(extra, fn), "w") as f:
                f.write(text)
        self.dk = self.new_dnsink(syslog_transport=self.transport,
                                  extra_rule_dirs=[extra + "/"])

    def blast(self, names):
        """Sends the queries CHUNK at a time without waiting between them, then
        takes the answers of the chunk (retrying the few a full buffer dropped:
        a retry comes after the others, so those are left out of the order)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(2.0)
        late = set()
        try:
            for c in range(0, len(names), CHUNK):
                part = names[c:c + CHUNK]
                for i, n in enumerate(part):
                    s.sendto(build_query(n, "A", qid=(c + i) & 0xFFFF), ("127.0.0.1",
                                                                         self.dk.port))
                got = set()
                try:
                    while len(got) < len(part):
                        got.add(int.from_bytes(s.recv(512)[:2], "big"))
                except socket.timeout:
                    pass
                for i, n in enumerate(part):
                    if (c + i) & 0xFFFF not in got:
                        late.add(n)
                        self.assertIsNotNone(udp_ask(self.dk.port, build_query(n, "A"), 2.0),
                                             "no answer for " + n)
        finally:
            s.close()
        return late

    def from_rsyslog(self):
        out = []
        for m in self.rsyslog.messages(app="dnsink-it"):
            rec = json.loads(m["msg"].lstrip("\ufeff").strip())
            if rec.get("rule_id", "").startswith("IT.Burst."):
                out.append(rec)
        return out

    def from_file(self):
        return [r for r in self.dk.alerts() if r.get("rule_id", "").startswith("IT.Burst.")]

    def check_complete(self, recs, names, late, where):
        got = [r["dns_query"] for r in recs]
        counts = collections.Counter(got)
        dup = [n for n in names if counts[n] != 1]
        self.assertEqual(dup, [], "%s: records not there exactly once, e.g. %s (of %d)"
                         % (where, dup[:5], len(dup)))
        self.assertEqual(len(got), len(names), where)
        in_order = [n for n in names if n not in late]
        self.assertEqual([n for n in got if n not in late], in_order,
                         "%s: records out of order" % where)



class BurstUnix(BurstBase):

    def test_burst_complete_and_in_order(self):
        names = ["b%d.burst.example.test" % i for i in range(N)]
        # The big record in the middle, and one more at the end.
        names[N // 2] = "mid.big.example.test"
        names.append("end.big.example.test")
        late = self.blast(names)
        self.assertLess(len(late), N // 10, "too many queries dropped to test order")
        wait_until(lambda: len(self.from_rsyslog()) >= len(names), ARRIVE_TIMEOUT, step=0.2,
                   what="%d records at rsyslog (have %d)" % (len(names),
                                                             len(self.from_rsyslog())))
        wait_until(lambda: len(self.from_file()) >= len(names), ARRIVE_TIMEOUT, step=0.2,
                   what="%d records in the file" % len(names))
        syslog, file = self.from_rsyslog(), self.from_file()
        self.check_complete(file, names, late, "file")
        self.check_complete(syslog, names, late, "rsyslog over " + self.transport)
        for recs, where in ((file, "file"), (syslog, "rsyslog")):
            big = [r for r in recs if r["rule_id"] == "IT.Burst.Big"]
            self.assertEqual(len(big), 2, where)
            for r in big:
                self.assertEqual(len(r["mitre"]), 150, (where, r["dns_query"]))
                self.assertTrue(r["rule_name"].endswith("x" * 3000), where)
        # rsyslog got each record as its own message, none cut.
        self.assertGreater(max(len(m["msg"]) for m in self.rsyslog.messages(app="dnsink-it")),
                           4000)


class BurstUdp(BurstUnix):
    transport = "udp"


class UnixRestart(BurstBase):
    """rsyslogd stopped and started again on the same unix socket path."""

    def test_collector_restart_on_same_path(self):
        first = ["r1-%d.burst.example.test" % i for i in range(20)]
        self.blast(first)
        wait_until(lambda: len(self.from_rsyslog()) >= len(first), ARRIVE_TIMEOUT, step=0.2,
                   what="records before the restart")
        self.assertEqual(self.rsyslog.stop(), 0)
        self.rsyslog.restart()
        wait_until(lambda: os.path.exists(self.rsyslog.unix_path), 10, step=0.1,
                   what="rsyslogd's new socket")
        # rsyslogd reads from its socket a moment after it creates it.
        time.sleep(0.5)
        second = ["r2-%d.burst.example.test" % i for i in range(200)]
        self.blast(second)
        try:
            wait_until(lambda: {r["dns_query"] for r in self.from_rsyslog()} >= set(second),
                       ARRIVE_TIMEOUT, step=0.2, what="records after the restart")
        except AssertionError:
            got = {r["dns_query"] for r in self.from_rsyslog()}
            raise AssertionError("%d of %d records missing after the restart; dnsink log:\n%s"
                                 % (len(set(second) - got), len(second),
                                    self.dk.proc.log_text()[-3000:]))
        self.assertEqual(len(self.from_file()), len(first) + len(second))


if __name__ == "__main__":
    harness.main()
