#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The response cache against a real upstream: knotd with mod-stats, whose
query counters (read with knotc) show how often dnsink really asked. A name
asked again is answered from the cache (knotd asked once) with its TTL
counted down; NXDOMAIN is cached by the zone's SOA; UDP and TCP share an
entry; queries with and without DO are kept apart; a name asked for in the
last tenth of its TTL is refreshed before it expires (prefetch). With knotd
stopped, an expired answer is served stale (TTL 30, EDE 3). One worker, so that every
query reaches the same cache."""
import os
import signal
import time

import harness
import promscrape
from harness import query

CACHE_YAML = "workers: 1\ncache:\n  size_mb: 8\n  prefetch: false\n"


def asked(knot):
    q = knot.queries()
    return q["udp4"] + q["tcp4"]


class Cache(harness.DnsinkTest):
    knot_stats = True
    dnsink_kwargs = {"extra_yaml": CACHE_YAML}

    def test_asked_once(self):
        before = asked(self.knot)
        for qid in (101, 102, 103):
            a = query(self.dk.port, "www2.example.test", "A", qid=qid)
            self.assertEqual(a.rcode, "NOERROR", a)
            self.assertEqual(a.id, qid, a)
            self.assertEqual(a.rdata(), [("A", "192.0.2.11")], a)
        self.assertEqual(asked(self.knot) - before, 1)

    def test_question_case_and_ttl_count_down(self):
        before = asked(self.knot)
        first = query(self.dk.port, "www.example.test", "A")
        self.assertEqual(first.an[0][1], 300, first)
        time.sleep(2.2)
        again = query(self.dk.port, "WWW.Example.Test", "A", qid=77)
        self.assertEqual(again.id, 77, again)
        self.assertEqual(again.qd[0][0], "WWW.Example.Test.", again)
        self.assertEqual(again.rdata(), first.rdata(), again)
        self.assertLessEqual(again.an[0][1], 298, again)
        # knotd is authoritative; an answer from the cache is not.
        self.assertIn("aa", first.flags, first)
        self.assertNotIn("aa", again.flags, again)
        self.assertGreaterEqual(again.an[0][1], 290, again)
        self.assertEqual(asked(self.knot) - before, 1)

    def test_nxdomain_cached(self):
        before = asked(self.knot)
        first = query(self.dk.port, "no-such-name.example.test", "A", edns=1232)
        self.assertEqual(first.rcode, "NXDOMAIN", first)
        time.sleep(1.1)
        again = query(self.dk.port, "no-such-name.example.test", "A", edns=1232)
        self.assertEqual(again.rcode, "NXDOMAIN", again)
        # The SOA's TTL is the negative TTL: min(SOA TTL 300, MINIMUM 300), counting down.
        soa = [r for r in again.ns if r[3] == "SOA"]
        self.assertEqual(len(soa), 1, again)
        self.assertLess(soa[0][1], 300, again)
        self.assertEqual(asked(self.knot) - before, 1)
        # NODATA too.
        for _ in range(2):
            a = query(self.dk.port, "www2.example.test", "MX")
            self.assertEqual(a.rcode, "NOERROR", a)
            self.assertEqual(a.an, [], a)
        self.assertEqual(asked(self.knot) - before, 2)

    def test_udp_and_tcp_share(self):
        before = asked(self.knot)
        t = query(self.dk.port, "www.example.test", "TXT", tcp=True)
        u = query(self.dk.port, "www.example.test", "TXT")
        self.assertEqual(t.rdata(), u.rdata(), (t, u))
        self.assertEqual(len(u.rdata()), 2, u)
        self.assertEqual(asked(self.knot) - before, 1)
        self.assertEqual(self.knot.queries()["udp4"] + self.knot.queries()["tcp4"],
                         asked(self.knot))

    def test_do_bit_apart(self):
        before = asked(self.knot)
        plain = query(self.dk.port, "www.example.test", "AAAA", edns=1232)
        do = query(self.dk.port, "www.example.test", "AAAA", edns=1232, do=True)
        self.assertEqual(asked(self.knot) - before, 2)
        self.assertEqual(do.edns["do"], 1, do)
        self.assertEqual(plain.edns["do"], 0, plain)
        for _ in range(2):
            query(self.dk.port, "www.example.test", "AAAA", edns=1232)
            a = query(self.dk.port, "www.example.test", "AAAA", edns=1232, do=True)
            self.assertEqual(a.edns["do"], 1, a)
        self.assertEqual(asked(self.knot) - before, 2)

    def test_blocked_name_not_from_cache(self):
        # A name the rules block is answered by its rule, never asked upstream.
        before = asked(self.knot)
        for _ in range(2):
            a = query(self.dk.port, "nx.example.test", "A", edns=1232)
            self.assertEqual(a.rcode, "NXDOMAIN", a)
            self.assertIn(15, a.ede, a)
        self.assertEqual(asked(self.knot) - before, 0)


    def test_reload_blocks_cached_target(self):
        # cl-plain -> cl-plain2 -> www: cached, then a reload blocks www.
        before = asked(self.knot)
        for _ in range(2):
            a = query(self.dk.port, "cl-plain.example.test", "A")
            self.assertEqual(a.rdata("A"), [("A", "192.0.2.10")], a)
        self.assertEqual(asked(self.knot) - before, 1)
        with open(os.path.join(self.dk.rules_dir, "it-cache-reload.yml"), "w") as f:
            f.write("id: IT.Test.CacheReload\nname: blocks a cached CNAME target\n"
                    "severity: low\naction: nxdomain\ndomains:\n  - www.example.test\n")
        self.dk.proc.signal(signal.SIGHUP)

        def blocked():
            r = query(self.dk.port, "cl-plain.example.test", "A", edns=1232)
            return r if r.rcode == "NXDOMAIN" else None
        a = harness.wait_until(blocked, 5, step=0.1, what="the reload to block the target")
        self.assertIn(15, a.ede, a)
        # Blocked at the hit: knotd was not asked again.
        self.assertEqual(asked(self.knot) - before, 1)


class Prefetch(harness.DnsinkTest):
    knot_stats = True
    dnsink_kwargs = {"extra_yaml": "workers: 1\ncache:\n  size_mb: 8\n  max_ttl: 10\n"}

    def test_refreshed_before_expiry(self):
        before = asked(self.knot)
        query(self.dk.port, "www2.example.test", "A")
        time.sleep(9.2)
        # In the last tenth of its (clamped) TTL: answered from the cache, refreshed behind.
        a = query(self.dk.port, "www2.example.test", "A")
        self.assertLessEqual(a.an[0][1], 1, a)
        harness.wait_until(lambda: asked(self.knot) - before == 2, 3, what="the refresh")
        time.sleep(1.0)
        # Past the first answer's expiry the refreshed entry answers: knotd is not asked.
        a = query(self.dk.port, "www2.example.test", "A")
        self.assertEqual(a.rdata(), [("A", "192.0.2.11")], a)
        self.assertGreaterEqual(a.an[0][1], 8, a)
        self.assertEqual(asked(self.knot) - before, 2)


class ServeStale(harness.DnsinkTest):
    # Every answer expires after a second; knotd is stopped in the test.
    start_dnsink = False

    def test_stale_when_upstream_gone(self):
        mport = harness.free_port()
        self.dk = self.new_dnsink(timeout_ms=200, extra_yaml=CACHE_YAML + "  max_ttl: 1\n"
                                  + promscrape.metrics_yaml(mport))
        a = query(self.dk.port, "www.example.test", "A", edns=1232)
        self.assertEqual(a.rdata(), [("A", "192.0.2.10")], a)
        # The client asking first gets the upstream's TTL; the cache keeps it a second.
        self.assertEqual(a.an[0][1], 300, a)
        time.sleep(1.2)
        self.knot.stop()
        s = query(self.dk.port, "www.example.test", "A", edns=1232, qid=555)
        self.assertEqual(s.rcode, "NOERROR", s)
        self.assertEqual(s.id, 555, s)
        self.assertEqual(s.rdata(), [("A", "192.0.2.10")], s)
        self.assertEqual(s.an[0][1], 30, s)
        self.assertIn(3, s.ede, s)
        # A name never cached: SERVFAIL (and that is cached for failure_ttl).
        f = query(self.dk.port, "www2.example.test", "A", edns=1232)
        self.assertEqual(f.rcode, "SERVFAIL", f)
        m = promscrape.scrape(mport)
        self.assertEqual(m["dnsink_cache_stale_served_total"], 1, m)
        self.assertEqual(m["dnsink_cache_inserts_total"], 2, m)  # www, and www2's SERVFAIL
        self.assertEqual(m["dnsink_cache_entries"], 2, m)
        self.assertEqual(m["dnsink_cache_misses_total"], 3, m)
        self.assertEqual(m['dnsink_cache_refused_total{reason="tc"}'], 0, m)
        self.assertGreater(m["dnsink_cache_bytes"], 0, m)
        self.assertLessEqual(m["dnsink_cache_capacity_bytes"], 8 << 20, m)


if __name__ == "__main__":
    harness.main()
