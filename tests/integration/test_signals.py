#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Signals: SIGHUP picks up a new rule file; a broken one changes nothing and
is logged with FILE:LINE; SIGTERM/SIGINT exit 0 within 2 s, also with a query
in flight."""
import os
import signal
import socket
import time

import harness
from harness import query, build_query, SINK_V4

ADDED = """\
id: IT.Test.Added
name: Added on reload
severity: high
action: nxdomain
domains:
  - added.example.test
"""

# Line 4 holds the error (an unknown action).
BROKEN = """\
id: IT.Test.Broken
name: Broken on purpose
severity: high
action: explode
domains:
  - broken.example.test
"""


class Signals(harness.DnsinkTest):

    def test_sighup_adds_rule(self):
        a = query(self.dk.port, "added.example.test", "A")
        self.assertEqual(a.rdata(), [("A", "192.0.2.23")], a)
        with open(os.path.join(self.dk.rules_dir, "it-added.yml"), "w") as f:
            f.write(ADDED)
        self.dk.proc.signal(signal.SIGHUP)

        def blocked():
            return query(self.dk.port, "added.example.test", "A").rcode == "NXDOMAIN"
        harness.wait_until(blocked, 5, step=0.1, what="the added rule to take effect")
        a = query(self.dk.port, "sub.added.example.test", "A", tcp=True)
        self.assertEqual(a.rcode, "NXDOMAIN", a)
        # Old rules still in force.
        a = query(self.dk.port, "moneropool.ru", "A")
        self.assertEqual(a.rdata(), [("A", SINK_V4)], a)

    def test_sighup_broken_rule_keeps_old_set(self):
        with open(os.path.join(self.dk.rules_dir, "it-broken.yml"), "w") as f:
            f.write(BROKEN)
        with open(os.path.join(self.dk.rules_dir, "it-added.yml"), "w") as f:
            f.write(ADDED)
        self.dk.proc.signal(signal.SIGHUP)

        def logged():
            return "it-broken.yml:4" in self.dk.proc.log_text()
        try:
            harness.wait_until(logged, 5, what="the reload error")
        except AssertionError:
            raise AssertionError("no 'it-broken.yml:4' in the log:\n"
                                 + self.dk.proc.log_text()[-3000:])
        self.assertTrue(self.dk.proc.alive())
        # Nothing of the new set applies (neither file), the old one does.
        a = query(self.dk.port, "broken.example.test", "A")
        self.assertEqual(a.rdata(), [("A", "192.0.2.24")], a)
        a = query(self.dk.port, "added.example.test", "A")
        self.assertEqual(a.rdata(), [("A", "192.0.2.23")], a)
        a = query(self.dk.port, "moneropool.ru", "A")
        self.assertEqual(a.rdata(), [("A", SINK_V4)], a)
        a = query(self.dk.port, "nx.example.test", "A")
        self.assertEqual(a.rcode, "NXDOMAIN", a)

    def stop_within(self, sig, limit=2.0):
        t0 = time.monotonic()
        self.dk.proc.signal(sig)
        try:
            self.dk.proc.p.wait(limit + 3)
        except Exception:
            pass
        dt = time.monotonic() - t0
        rc = self.dk.proc.p.returncode
        self.assertEqual(rc, 0, "exit status %s\n%s" % (rc, self.dk.proc.log_text()[-2000:]))
        self.assertLess(dt, limit + 0.5, "took %.2fs" % dt)
        return dt

    def test_sighup_names_what_needs_a_restart(self):
        """A reload that changes settings made at start keeps them and says which."""
        with open(self.dk.conf) as f:
            conf = f.read()
        with open(self.dk.conf, "a") as f:
            f.write("workers: 3\nmax_inflight: 512\nuser: nobody\n")
        self.dk.proc.signal(signal.SIGHUP)
        want = ['reload: "workers" changed', 'reload: "max_inflight" changed',
                'reload: "user" changed']
        harness.wait_until(lambda: all(w in self.dk.proc.log_text() for w in want), 5,
                           what="the restart-only warnings")
        log = self.dk.proc.log_text()
        self.assertNotIn('reload: "listen" changed', log)
        self.assertNotIn('reload: "dnstap" changed', log)
        # The rest of the reload applied, and the daemon still answers.
        a = query(self.dk.port, "moneropool.ru", "A")
        self.assertEqual(a.rdata(), [("A", SINK_V4)], a)
        with open(self.dk.conf, "w") as f:
            f.write(conf)

    def test_sigterm_exits_0(self):
        self.stop_within(signal.SIGTERM)
        # Not listening any more.
        self.assertIsNone(harness.udp_ask(self.dk.port, build_query("www.example.test"), 0.3))

    def test_sigint_exits_0(self):
        self.stop_within(signal.SIGINT)

    def test_sigterm_with_query_in_flight(self):
        bh = self.fake_upstream(None)
        dk = self.new_dnsink(upstreams=[bh.port], timeout_ms=5000)
        self.dk = dk
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        s.sendto(build_query("inflight.example.test"), ("127.0.0.1", dk.port))
        harness.wait_until(lambda: any(b"inflight" in w for _, w in bh.queries), 3,
                           what="the query to reach the upstream")
        self.stop_within(signal.SIGTERM)


if __name__ == "__main__":
    harness.main()
