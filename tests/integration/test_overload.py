#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Overload: max_inflight 16 per worker and an upstream that never answers.
A bounded flood (20000 unique forwarded names over a few seconds) fills the
in-flight tables; every query beyond them gets SERVFAIL at once (counted as
table full), the ones that got a slot get SERVFAIL when their try times out,
resident memory stays bounded, and blocked names keep their sinkhole answer
throughout. Afterwards, with the flood gone, the tables drain to zero."""
import socket
import struct
import threading
import time

import harness
from harness import query, build_query, wait_until, SINK_V4
from promscrape import scrape, outcome, metrics_yaml

WORKERS = 2
MAX_INFLIGHT = 16
TIMEOUT_MS = 1500
FLOOD_COUNT = 20000
FLOOD_SECONDS = 4.0


def vmrss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def flood(port, count, seconds, n_socks=8, batch=50, pause=0.006):
    """Sends count unique names (bounded by seconds) from n_socks sockets, so that
    the kernel spreads them over the workers; returns (sent, answers, elapsed).

    answers maps query ID to (rcode, seconds from send to answer)."""
    socks = []
    for _ in range(n_socks):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        socks.append(s)
    sent_at = {}
    answers = {}
    t0 = time.monotonic()

    def drain():
        for s in socks:
            while True:
                try:
                    r = s.recv(4096)
                except BlockingIOError:
                    break
                qid = struct.unpack("!H", r[:2])[0]
                if qid in sent_at and qid not in answers:
                    answers[qid] = (r[3] & 0x0F, time.monotonic() - sent_at[qid])

    try:
        i = 0
        while i < count and time.monotonic() - t0 < seconds:
            for _ in range(min(batch, count - i)):
                m = build_query("f%05d.flood.example.test" % i, qid=i)
                try:
                    socks[i % n_socks].sendto(m, ("127.0.0.1", port))
                except BlockingIOError:
                    break
                sent_at[i] = time.monotonic()
                i += 1
            drain()
            time.sleep(pause)
        elapsed = time.monotonic() - t0
        # The last queries that got a slot answer after the upstream timeout.
        end = time.monotonic() + TIMEOUT_MS / 1000 + 1.0
        while time.monotonic() < end and len(answers) < len(sent_at):
            drain()
            time.sleep(0.02)
    finally:
        for s in socks:
            s.close()
    return len(sent_at), answers, elapsed


class Overload(harness.DnsinkTest):
    start_dnsink = False

    def start_overloadable(self, upstream):
        """Starts dnsink with small in-flight tables in front of @upstream and a
        metrics endpoint; returns (metrics port, pid)."""
        mport = harness.free_port()
        self.dk = self.new_dnsink(
            upstreams=[upstream.port], timeout_ms=TIMEOUT_MS,
            extra_yaml=metrics_yaml(mport) + "workers: %d\nmax_inflight: %d\n"
            % (WORKERS, MAX_INFLIGHT))
        return mport, self.dk.proc.pid

    def test_flood_against_silent_upstream(self):
        silent = self.fake_upstream()  # no handler: never answers
        mport, pid = self.start_overloadable(silent)
        self.assertIn("%d workers, %d queries in flight each" % (WORKERS, MAX_INFLIGHT),
                      self.dk.proc.log_text())
        # Warm up every path once (local answer, forward) before the baseline.
        a = query(self.dk.port, "warm.moneropool.ru", "A")
        self.assertEqual(a.rdata(), [("A", SINK_V4)], a)
        a = query(self.dk.port, "warm.example.test", "A", timeout_ms=TIMEOUT_MS + 2000)
        self.assertEqual(a.rcode, "SERVFAIL", a)
        before = scrape(mport)
        rss_before = vmrss_kib(pid)

        res = {}
        rss_peak = [rss_before]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                rss_peak[0] = max(rss_peak[0], vmrss_kib(pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        flooder = threading.Thread(target=lambda: res.update(
            r=flood(self.dk.port, FLOOD_COUNT, FLOOD_SECONDS)))
        sampler.start()
        flooder.start()
        blocked = []
        try:
            # During the flood, blocked names keep their sinkhole answer, quickly.
            time.sleep(0.3)
            for i in range(8):
                t = time.monotonic()
                a = query(self.dk.port, "b%d.moneropool.ru" % i, "A", timeout_ms=1000)
                blocked.append(time.monotonic() - t)
                self.assertFalse(a.timeout, "blocked name not answered during the flood")
                self.assertEqual(a.rcode, "NOERROR", a)
                self.assertEqual(a.rdata(), [("A", SINK_V4)], a)
                a = query(self.dk.port, "b%d.moneropool.ru" % i, "AAAA", tcp=True,
                          timeout_ms=1000)
                self.assertEqual(a.rdata(), [("AAAA", harness.SINK_V6)], a)
                if not flooder.is_alive():
                    break
            during_flood = flooder.is_alive()
        finally:
            flooder.join(FLOOD_SECONDS + TIMEOUT_MS / 1000 + 10)
            stop.set()
            sampler.join(2)
        sent, answers, elapsed = res["r"]
        rss_after = vmrss_kib(pid)

        # Every query in flight ends (SERVFAIL after its timeout): the tables drain.
        end = wait_until(lambda: (lambda m: m if m["dnsink_inflight_queries"] == 0 else None)(
            scrape(mport)), TIMEOUT_MS / 1000 + 5, what="in-flight tables to drain")
        d = {k: end[k] - before.get(k, 0) for k in end}
        rcodes = {}
        for rc, _ in answers.values():
            rcodes[rc] = rcodes.get(rc, 0) + 1
        fast = sorted(lat for rc, lat in answers.values() if rc == 2)
        slow = sum(1 for lat in fast if lat >= TIMEOUT_MS / 1000 * 0.9)
        p = (lambda q: fast[int(q * (len(fast) - 1))] if fast else None)
        print("\noverload: sent %d in %.2fs, answered %d %s; SERVFAIL latency p50 %.1f ms "
              "p99 %.1f ms, %d after the timeout; table_full %d forwarded %d servfail %d "
              "udp_send_fail %d; blocked answered in max %.1f ms (during flood: %s); "
              "VmRSS before %d KiB, peak %d KiB, after %d KiB"
              % (sent, elapsed, len(answers), rcodes, p(0.5) * 1000, p(0.99) * 1000, slow,
                 d["dnsink_upstream_table_full_total"], d[outcome("udp", "forwarded")],
                 d[outcome("udp", "servfail")], d["dnsink_udp_send_failures_total"],
                 max(blocked) * 1000, during_flood, rss_before, rss_peak[0], rss_after))

        self.assertEqual(sent, FLOOD_COUNT, "the flood was cut short by its time bound")
        self.assertTrue(during_flood, "the blocked-name checks did not overlap the flood")
        # Nothing but SERVFAIL for forwarded names, and (almost) every query answered.
        self.assertEqual(set(rcodes), {2}, rcodes)
        self.assertGreaterEqual(len(answers), 0.98 * sent)
        # Only the queries that got a slot waited for the timeout; the rest were immediate.
        forwarded = d[outcome("udp", "forwarded")]
        self.assertLessEqual(slow, forwarded)
        self.assertLessEqual(forwarded, WORKERS * MAX_INFLIGHT
                             * ((elapsed + 1) / (TIMEOUT_MS / 1000) + 2))
        self.assertLess(p(0.99), 0.5)
        # Counted: every forwarded query failed by timeout, every other one as table full.
        self.assertGreaterEqual(d["dnsink_upstream_table_full_total"], 0.9 * sent)
        self.assertEqual(d[outcome("udp", "servfail")],
                         d["dnsink_upstream_table_full_total"] + forwarded)
        ts = 'dnsink_upstream_timeouts_total{upstream="127.0.0.1:%d"}' % silent.port
        tr = 'dnsink_upstream_queries_total{upstream="127.0.0.1:%d"}' % silent.port
        rt = 'dnsink_upstream_retransmits_total{upstream="127.0.0.1:%d"}' % silent.port
        # Every try timed out; the tries beyond one a query were retransmissions.
        self.assertEqual(d[ts], d[tr])
        self.assertEqual(d[rt], d[tr] - forwarded)
        # The silent upstream saw no more than those tries, plus the ones the
        # queries still in flight at the scrape sent after it (one each at most).
        self.assertLessEqual(len(silent.queries), d[tr] + WORKERS * MAX_INFLIGHT)
        # Memory: bounded by the fixed tables, not by the flood (generous: 16 MiB).
        self.assertLess(rss_peak[0] - rss_before, 16 * 1024)
        self.assertLess(rss_after - rss_before, 16 * 1024)
        # And after the flood a blocked name is answered as before.
        a = query(self.dk.port, "after.moneropool.ru", "A")
        self.assertEqual(a.rdata(), [("A", SINK_V4)], a)

    def test_tcp_pipelined_flood_and_reload(self):
        """8 TCP connections each pipeline 500 forwarded queries (4000, 250 times the
        tables) while a SIGHUP swaps the snapshot: every query gets SERVFAIL on its
        own connection, none is lost, memory stays bounded."""
        silent = self.fake_upstream()
        mport, pid = self.start_overloadable(silent)
        rss_before = vmrss_kib(pid)
        before = scrape(mport)
        conns, per = 8, 500
        socks = [socket.create_connection(("127.0.0.1", self.dk.port), timeout=10)
                 for _ in range(conns)]
        got = [dict() for _ in range(conns)]
        try:
            for ci, s in enumerate(socks):
                s.sendall(b"".join(
                    struct.pack("!H", len(m)) + m for m in
                    (build_query("t%d-%d.flood.example.test" % (ci, i), qid=i)
                     for i in range(per))))
            self.dk.proc.signal(harness.signal.SIGHUP)
            deadline = time.monotonic() + TIMEOUT_MS / 1000 * 2 + 10
            for ci, s in enumerate(socks):
                buf = b""
                while len(got[ci]) < per and time.monotonic() < deadline:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
                    while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
                        n = struct.unpack("!H", buf[:2])[0]
                        m, buf = buf[2:2 + n], buf[2 + n:]
                        got[ci][struct.unpack("!H", m[:2])[0]] = m[3] & 0x0F
        finally:
            for s in socks:
                s.close()
        rss_after = vmrss_kib(pid)
        end = wait_until(lambda: (lambda m: m if m["dnsink_inflight_queries"] == 0 else None)(
            scrape(mport)), TIMEOUT_MS / 1000 + 5, what="in-flight tables to drain")
        d = {k: end[k] - before.get(k, 0) for k in end}
        rcodes = {}
        for g in got:
            for rc in g.values():
                rcodes[rc] = rcodes.get(rc, 0) + 1
        print("\ntcp overload: %d queries on %d connections, answered %d %s; table_full %d "
              "forwarded %d; VmRSS before %d KiB, after %d KiB"
              % (conns * per, conns, sum(len(g) for g in got), rcodes,
                 d["dnsink_upstream_table_full_total"], d[outcome("tcp", "forwarded")],
                 rss_before, rss_after))
        self.assertEqual([len(g) for g in got], [per] * conns)
        self.assertEqual(set(rcodes), {2}, rcodes)
        self.assertEqual(d[outcome("tcp", "servfail")], conns * per)
        self.assertEqual(d["dnsink_upstream_table_full_total"] + d[outcome("tcp", "forwarded")],
                         conns * per)
        self.assertLessEqual(d[outcome("tcp", "forwarded")], WORKERS * MAX_INFLIGHT * 3)
        self.assertIn("reloaded;", self.dk.proc.log_text())
        self.assertLess(rss_after - rss_before, 16 * 1024)
        a = query(self.dk.port, "after.moneropool.ru", "A", tcp=True)
        self.assertEqual(a.rdata(), [("A", SINK_V4)], a)


if __name__ == "__main__":
    harness.main()
