#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Metrics: the Prometheus endpoint (metrics.listen) scraped with curl. Counters
move by exactly what was sent (per transport and outcome, upstream timeouts,
alerts), in-flight queries show while an upstream is silent, rules and names
match `dnsink check`, reloads are timestamped with their result, and any other
path or method gets 404."""
import os
import re
import shutil
import signal
import subprocess
import time

import harness
from harness import query, udp_ask, build_query, wait_until, run_dnsink

CURL = shutil.which("curl") or "/usr/bin/curl"
LINE = re.compile(r'^([a-z_]+(?:\{[^}]*\})?) (\S+)$')


def curl(port, path="/metrics", *extra):
    """(HTTP status, headers text, body) of a request made with curl."""
    p = subprocess.run([CURL, "-s", "-S", "--max-time", "5", "-D", "-", "-o", "-"] +
                       list(extra) + ["http://127.0.0.1:%d%s" % (port, path)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=15,
                       stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise AssertionError("curl failed (%d): %s" % (p.returncode, p.stderr.decode()))
    text = p.stdout.decode("utf-8")
    head, _, body = text.partition("\r\n\r\n")
    status = int(head.split(" ", 2)[1])
    return status, head, body


def parse(body):
    """{series: value} of an exposition text; every line must be a comment or a sample."""
    out = {}
    for ln in body.splitlines():
        if ln.startswith("# HELP ") or ln.startswith("# TYPE "):
            continue
        m = LINE.match(ln)
        if not m:
            raise AssertionError("not an exposition line: %r" % ln)
        if m.group(1) in out:
            raise AssertionError("series twice: %r" % m.group(1))
        out[m.group(1)] = float(m.group(2))
    return out


def q(tr, outcome):
    return 'dnsink_queries_total{transport="%s",outcome="%s"}' % (tr, outcome)


class Metrics(harness.DnsinkTest):
    start_dnsink = False

    def start(self, upstreams=None, timeout_ms=400):
        self.mport = harness.free_port()
        self.dk = self.new_dnsink(upstreams=upstreams, timeout_ms=timeout_ms,
                                  extra_yaml="metrics:\n  listen: 127.0.0.1:%d\n" % self.mport)

    def scrape(self):
        status, head, body = curl(self.mport)
        self.assertEqual(status, 200, head)
        self.assertRegex(head, r"(?i)content-type: text/plain; version=0\.0\.4")
        return parse(body)

    def test_counters_match_queries(self):
        silent = self.fake_upstream()  # never answers: every try on it times out
        self.start(upstreams=[silent.port, self.knot.port])
        before = self.scrape()
        self.assertEqual(before["dnsink_inflight_queries"], 0)
        self.assertIn('dnsink_build_info{version="%s"}'
                      % run_dnsink("--version")[1].split()[1], before)

        a = query(self.dk.port, "abc.moneropool.ru", "A")             # udp sinkholed
        self.assertEqual(a.rcode, "NOERROR", a)
        self.assertEqual(a.rdata(), [("A", harness.SINK_V4)], a)
        a = query(self.dk.port, "www.example.test", "A")               # udp forwarded
        self.assertEqual(a.rdata(), [("A", "192.0.2.10")], a)
        a = query(self.dk.port, "www2.example.test", "A", tcp=True)    # tcp forwarded
        self.assertEqual(a.rdata(), [("A", "192.0.2.11")], a)
        a = query(self.dk.port, "nx.example.test", "A", tcp=True)      # tcp nxdomain
        self.assertEqual(a.rcode, "NXDOMAIN", a)
        r = udp_ask(self.dk.port, build_query("www.example.test", qid=0x4321, qdcount=2))
        self.assertIsNotNone(r, "no FORMERR answer")                   # udp formerr
        self.assertEqual(r[3] & 0x0F, 1, r)
        # Two answers for two alerting rules must have reached the file sink.
        self.dk.wait_alerts(lambda x: x["rule_id"] in ("DNS.Crypto.MiningPool",
                                                       "IT.Test.NxDomain"), n=2)
        after = wait_until(lambda: (lambda s: s if s['dnsink_alerts_total{state="emitted"}']
                                    - before['dnsink_alerts_total{state="emitted"}'] >= 2
                                    else None)(self.scrape()), 5, what="alerts counted")

        want = {q("udp", "sinkholed"): 1, q("udp", "forwarded"): 1, q("udp", "formerr"): 1,
                q("tcp", "forwarded"): 1, q("tcp", "nxdomain"): 1}
        series = [k for k in after if k.startswith("dnsink_queries_total{")]
        self.assertEqual(len(series), 60, series)  # udp, tcp, tls, https x 15 outcomes
        for k in series:
            self.assertEqual(after[k] - before.get(k, 0), want.get(k, 0), k)
        self.assertEqual(after['dnsink_queries_received_total{transport="udp"}']
                         - before['dnsink_queries_received_total{transport="udp"}'], 3)
        self.assertEqual(after['dnsink_queries_received_total{transport="tcp"}']
                         - before['dnsink_queries_received_total{transport="tcp"}'], 2)
        # Each forwarded query timed out once on the silent upstream, never on knotd.
        ts = 'dnsink_upstream_timeouts_total{upstream="127.0.0.1:%d"}'
        self.assertEqual(after[ts % silent.port] - before[ts % silent.port], 2)
        self.assertEqual(after[ts % self.knot.port], 0)
        self.assertEqual(after["dnsink_inflight_queries"], 0)
        self.assertEqual(after['dnsink_alerts_total{state="emitted"}']
                         - before['dnsink_alerts_total{state="emitted"}'], 2)
        self.assertEqual(after['dnsink_alerts_total{state="lost_ring"}'], 0)

        # Rules and names as `dnsink check` counts them for the same config.
        rc, out, err = run_dnsink("check", "-c", self.dk.conf)
        self.assertEqual(rc, 0, out + err)
        m = re.search(r"total: (\d+) rules, (\d+) entries, (\d+) distinct names", out)
        self.assertIsNotNone(m, out)
        self.assertEqual(after["dnsink_rules_loaded"], int(m.group(1)))
        self.assertEqual(after["dnsink_entries_loaded"], int(m.group(2)))
        self.assertEqual(after["dnsink_names_loaded"], int(m.group(3)))
        self.assertGreater(after["dnsink_rules_loaded"], len(harness.TEST_RULES))

    def test_deduplicated_counted_as_it_happens(self):
        """Repeats inside a dedup window (the mining-pool rule's 60 minutes) are
        counted at once, not when the follow-up record goes out an hour later."""
        self.start()
        e, d = 'dnsink_alerts_total{state="emitted"}', 'dnsink_alerts_total{state="deduplicated"}'
        before = self.scrape()
        for name in ("a.moneropool.ru", "b.moneropool.ru", "a.moneropool.ru", "moneropool.ru"):
            self.assertEqual(query(self.dk.port, name, "A").rdata(),
                             [("A", harness.SINK_V4)])
        after = wait_until(lambda: (lambda s: s if s[e] + s[d] - before[e] - before[d] >= 4
                                    else None)(self.scrape()), 5, what="4 events counted")
        self.assertEqual(after[e] - before[e], 1)
        self.assertEqual(after[d] - before[d], 3)

    def test_inflight_while_upstream_silent(self):
        silent = self.fake_upstream()
        self.start(upstreams=[silent.port], timeout_ms=1500)
        before = self.scrape()
        s = harness.socket.socket(harness.socket.AF_INET, harness.socket.SOCK_DGRAM)
        s.settimeout(5)
        try:
            s.sendto(build_query("www.example.test", qid=0x5151), ("127.0.0.1", self.dk.port))
            mid = wait_until(lambda: (lambda x: x if x["dnsink_inflight_queries"] == 1
                                      else None)(self.scrape()), 1.2, what="1 in flight")
            self.assertEqual(mid[q("udp", "servfail")], before[q("udp", "servfail")])
            r = s.recv(65535)
        finally:
            s.close()
        self.assertEqual(r[3] & 0x0F, 2, r)  # SERVFAIL once the only upstream timed out
        end = self.scrape()
        self.assertEqual(end["dnsink_inflight_queries"], 0)
        self.assertEqual(end[q("udp", "servfail")] - before[q("udp", "servfail")], 1)
        ts = 'dnsink_upstream_timeouts_total{upstream="127.0.0.1:%d"}' % silent.port
        tr = 'dnsink_upstream_queries_total{upstream="127.0.0.1:%d"}' % silent.port
        rt = 'dnsink_upstream_retransmits_total{upstream="127.0.0.1:%d"}' % silent.port
        # Every try timed out; all but the first were retransmissions of the one query.
        self.assertGreaterEqual(end[tr] - before[tr], 1)
        self.assertEqual(end[ts] - before[ts], end[tr] - before[tr])
        self.assertEqual(end[rt] - before[rt], end[tr] - before[tr] - 1)

    def test_reload_time_and_result(self):
        self.start()
        t0 = self.scrape()
        self.assertEqual(t0["dnsink_reload_last_success"], 1)
        self.assertLessEqual(abs(t0["dnsink_reload_last_timestamp_seconds"] - time.time()), 60)
        time.sleep(0.05)
        extra = os.path.join(self.dk.rules_dir, "it-extra.yml")
        with open(extra, "w") as f:
            f.write("id: IT.Test.Extra\nname: Extra\nseverity: low\naction: nxdomain\n"
                    "domains:\n  - added.example.test\n")
        self.dk.proc.signal(signal.SIGHUP)
        t1 = wait_until(lambda: (lambda x: x if x["dnsink_rules_loaded"] ==
                                 t0["dnsink_rules_loaded"] + 1 else None)(self.scrape()),
                        5, what="reload counted")
        self.assertEqual(t1["dnsink_reload_last_success"], 1)
        self.assertGreater(t1["dnsink_reload_last_timestamp_seconds"],
                           t0["dnsink_reload_last_timestamp_seconds"])
        with open(extra, "w") as f:
            f.write("id: [broken\n")
        self.dk.proc.signal(signal.SIGHUP)
        t2 = wait_until(lambda: (lambda x: x if x["dnsink_reload_last_success"] == 0
                                 else None)(self.scrape()), 5, what="failed reload")
        self.assertGreater(t2["dnsink_reload_last_timestamp_seconds"],
                           t1["dnsink_reload_last_timestamp_seconds"])
        self.assertEqual(t2["dnsink_rules_loaded"], t1["dnsink_rules_loaded"])
        os.unlink(extra)

    def deltas(self, before, after, prefix):
        """{series: after - before} of the series starting with prefix (0 if new)."""
        return {k: after[k] - before.get(k, 0) for k in after if k.startswith(prefix)}

    def test_rule_hits_cname_and_upstreams(self):
        silent = self.fake_upstream()  # every UDP try on it times out
        self.start(upstreams=[silent.port, self.knot.port])
        before = self.scrape()
        mining = harness.repo_rule_with("moneropool.ru")[1]["id"]
        for _ in range(3):                                           # sinkholed by name
            self.assertEqual(query(self.dk.port, "abc.moneropool.ru").rdata(),
                             [("A", harness.SINK_V4)])
        for tcp in (False, True):                                    # nxdomain by name
            self.assertEqual(query(self.dk.port, "a.nx.example.test", tcp=tcp).rcode,
                             "NXDOMAIN")
        # Forwarded (silent upstream first): an allow exception, a name no rule
        # knows, a chain into a sinkhole rule and one into an alert-only rule.
        self.assertEqual(query(self.dk.port, "ok.moneropool.ru").rdata(),
                         [("A", "198.51.100.2")])
        self.assertEqual(query(self.dk.port, "www.example.test").rdata(),
                         [("A", "192.0.2.10")])
        self.assertEqual(query(self.dk.port, "alias.example.test").rdata(),
                         [("A", harness.SINK_V4)])
        a = query(self.dk.port, "cl-wild.example.test")
        self.assertEqual(a.rdata("A"), [("A", "192.0.2.99")], a)
        after = self.scrape()

        hit = 'dnsink_rule_hits_total{rule_id="%s"}'
        want = {hit % mining: 3 + 1, hit % "IT.Test.NxDomain": 2, hit % "IT.Test.Allow": 1,
                hit % "IT.Test.WildAlert": 1}
        got = self.deltas(before, after, "dnsink_rule_hits_total{")
        self.assertEqual(len(got), after["dnsink_rules_loaded"], got)
        self.assertEqual({k: v for k, v in got.items() if v}, want)
        self.assertEqual(self.deltas(before, after, "dnsink_cname_cloaked_total{"),
                         {'dnsink_cname_cloaked_total{outcome="blocked"}': 1,
                          'dnsink_cname_cloaked_total{outcome="alerted"}': 1})

        # Four forwarded queries: each timed out once on the silent upstream,
        # then was answered by knotd.
        def up(metric, port):
            k = '%s{upstream="127.0.0.1:%d"}' % (metric, port)
            return after[k] - before[k]
        for metric, s_want, k_want in (("dnsink_upstream_queries_total", 4, 4),
                                       ("dnsink_upstream_timeouts_total", 4, 0),
                                       ("dnsink_upstream_answers_total", 0, 4),
                                       ("dnsink_upstream_errors_total", 0, 0),
                                       ("dnsink_upstream_latency_seconds_count", 0, 4)):
            with self.subTest(metric=metric):
                self.assertEqual(up(metric, silent.port), s_want)
                self.assertEqual(up(metric, self.knot.port), k_want)
        # The histogram: cumulative buckets ending in +Inf = count, a plausible sum.
        bucket = 'dnsink_upstream_latency_seconds_bucket{upstream="127.0.0.1:%d",le="%s"}'
        prefix = 'dnsink_upstream_latency_seconds_bucket{upstream="127.0.0.1:%d",' % self.knot.port
        les = [re.match(r'.*le="([^"]+)"', k).group(1) for k in after if k.startswith(prefix)]
        self.assertEqual(les[-1], "+Inf")
        self.assertEqual([float(x) for x in les[:-1]], sorted(float(x) for x in les[:-1]))
        counts = [after[bucket % (self.knot.port, le)] - before[bucket % (self.knot.port, le)]
                  for le in les]
        self.assertEqual(counts, sorted(counts))
        self.assertEqual(counts[-1], 4)
        total = up("dnsink_upstream_latency_seconds_sum", self.knot.port)
        self.assertGreater(total, 0)
        self.assertLess(total, 4 * 0.4)  # each answer came well within the 400 ms timeout

    def test_upstream_errors_by_address(self):
        # Nothing listens on this port: TCP connections to it are refused.
        dead = harness.free_port()
        self.start(upstreams=[dead, self.knot.port])
        before = self.scrape()
        a = query(self.dk.port, "www.example.test", "A", tcp=True)
        self.assertEqual(a.rdata(), [("A", "192.0.2.10")], a)
        after = self.scrape()

        def up(metric, port):
            k = '%s{upstream="127.0.0.1:%d"}' % (metric, port)
            return after[k] - before[k]
        # One failed try on the dead upstream (its connection retried once, as
        # for any broken connection), then knotd.
        self.assertEqual(up("dnsink_upstream_errors_total", dead), 1)
        self.assertEqual(up("dnsink_upstream_timeouts_total", dead), 0)
        self.assertEqual(up("dnsink_upstream_answers_total", dead), 0)
        self.assertEqual(up("dnsink_upstream_errors_total", self.knot.port), 0)
        self.assertEqual(up("dnsink_upstream_answers_total", self.knot.port), 1)
        self.assertEqual(after[q("tcp", "forwarded")] - before[q("tcp", "forwarded")], 1)

    def test_rule_hits_survive_reload(self):
        self.start()
        mining = harness.repo_rule_with("moneropool.ru")[1]["id"]
        hit = 'dnsink_rule_hits_total{rule_id="%s"}'
        for _ in range(2):
            query(self.dk.port, "abc.moneropool.ru")
        query(self.dk.port, "b.nx.example.test")
        t0 = self.scrape()
        # A reload that loads 80 new rules ahead of the test rules (so every
        # test rule's index changes, and the counters need more room) and
        # drops IT.Test.Refused.
        n_new = 80
        for i in range(n_new):
            with open(os.path.join(self.dk.rules_dir, "0-r%02d.yml" % i), "w") as f:
                f.write("id: IT.Test.Bulk%02d\nname: Bulk %d\nseverity: low\naction: "
                        "nxdomain\ndomains:\n  - bulk%02d.example.test\n" % (i, i, i))
        os.unlink(os.path.join(self.dk.rules_dir, "it-refused.yml"))
        self.dk.proc.signal(signal.SIGHUP)
        t1 = wait_until(lambda: (lambda x: x if x["dnsink_rules_loaded"] ==
                                 t0["dnsink_rules_loaded"] + n_new - 1 else None)(self.scrape()),
                        5, what="reload with the new rules")
        self.assertNotIn(hit % "IT.Test.Refused", t1)
        for rid in (mining, "IT.Test.NxDomain", "IT.Test.Allow", "IT.Test.Probe"):
            self.assertEqual(t1[hit % rid], t0[hit % rid], rid)
        self.assertEqual(t1[hit % "IT.Test.Bulk42"], 0)
        query(self.dk.port, "abc.moneropool.ru")
        for _ in range(2):
            self.assertEqual(query(self.dk.port, "x.bulk42.example.test").rcode, "NXDOMAIN")
        query(self.dk.port, "c.nx.example.test", tcp=True)
        t2 = self.scrape()
        got = {k: v for k, v in self.deltas(t1, t2, "dnsink_rule_hits_total{").items()
               if v and "IT.Test.Probe" not in k}
        self.assertEqual(got, {hit % mining: 1, hit % "IT.Test.Bulk42": 2,
                               hit % "IT.Test.NxDomain": 1})
        self.assertEqual(t2[hit % mining], t0[hit % mining] + 1)

    def test_other_paths_404(self):
        self.start()
        # "/" is the dashboard (test_dashboard.py).
        for path in ("/metricsx", "/foo", "/metrics/", "/api/v1/nope"):
            with self.subTest(path=path):
                self.assertEqual(curl(self.mport, path)[0], 404)
        self.assertEqual(curl(self.mport, "/metrics", "-X", "POST")[0], 404)
        self.assertEqual(curl(self.mport, "/metrics?x=1")[0], 200)
        # An oversized request is dropped without an answer; the endpoint lives on.
        s = harness.socket.create_connection(("127.0.0.1", self.mport), timeout=5)
        try:
            s.sendall(b"GET /metrics HTTP/1.0\r\nX: " + b"a" * 5000)
            self.assertEqual(s.recv(100), b"")
        except ConnectionResetError:
            pass
        finally:
            s.close()
        self.assertEqual(curl(self.mport)[0], 200)


if __name__ == "__main__":
    harness.main()
