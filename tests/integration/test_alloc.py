#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""No heap allocation per query after start-up: the real dnsink runs with an
LD_PRELOAD counter (alloc_count.so) that counts every malloc, calloc, realloc
and aligned allocation, split into the worker threads and the rest. After a
warm-up, 100,000 queries (blocked names of a silent rule, forwarded unique
names that knotd answers from a wildcard, and pipelined TCP queries on one
connection) must not add a single allocation anywhere in the process.

With DK_ALLOC_COUNT_BACKTRACE set (to anything), alloc_count.so records the
call stack of every worker allocation, and a failure shows those made
between the two snapshots, resolved with addr2line."""
import os
import re
import signal
import socket
import struct
import subprocess
import time
import unittest

import harness

ALERT_RULE = """\
id: Test.Alloc.Alerting
name: alerting sinkhole for the allocation count
severity: medium
action: sinkhole
dedup_minutes: 0
domains:
  - alert.alloc.test
"""

SILENT_RULE = """\
id: Test.Alloc.Silent
name: silent sinkhole for the allocation count
severity: medium
action: sinkhole
alert: false
domains:
  - sink.alloc.test
"""

# Sigma rules that every flood query runs through and none fires: the suffix
# set, Vectorscan, PCRE2, the answer-side walk and both behavioural counters
# (the registered domain from the Public Suffix List, the HyperLogLog) are on
# the measured path, with thresholds no flood reaches.
SIGMA_RULES = """\
title: alloc - query side, every route
id: a110c000-0000-4000-8000-000000000001
logsource: {category: dns}
detection:
    exact:
        query: 'never.alloc.test'
    below:
        query|endswith: '.never-alloc.test'
    lit:
        query|contains: 'no-such-label'
    wild:
        query: 'q*.wild.*.nowhere'
    re_hs:
        query|re: '^zz[0-9]+\\.'
    re_pcre:
        query|re: '(?=q999999999)q'
    condition: 1 of them
level: low
---
title: alloc - answer side
id: a110c000-0000-4000-8000-000000000002
logsource: {category: dns}
detection:
    selection:
        answers|cidr: 10.0.0.0/8
    condition: selection
level: low
---
title: alloc - rate per client
id: a110c000-0000-4000-8000-000000000003
logsource: {category: dns}
detection:
    selection:
        query|endswith: '.wild.example.test'
    timeframe: 1m
    condition: selection | count() by src_ip > 100000000
level: low
---
title: alloc - distinct names per registered domain
id: a110c000-0000-4000-8000-000000000004
logsource: {category: dns}
detection:
    selection:
        query|endswith: '.example.test'
    timeframe: 1m
    condition: selection | count(query) by registered_domain > 100000000
level: low
"""

MEASURED = 100_000
WINDOW = 64          # UDP queries in flight from the client
FLOOD_SECONDS = 90   # hard bound on one flood
# UP_IDLE_MS in src/daemon/upstream.c: a worker closes an upstream TCP
# connection idle for longer than this when it next looks for one.
UP_IDLE_SECONDS = 5.0


def sanitized(path):
    """A sanitizer runtime owns malloc there, so the counter cannot be preloaded."""
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


def symbolize(frame):
    """A frame "obj(+0x1f2)[0x55..]" as "obj: function at file:line" (addr2line;
    a frame is a return address, so the call is one octet before it). Frames
    already named ("obj(sym+0x1f2)[..]") stay as they are; in a library
    without debug information (libuv here) the name is the nearest exported
    symbol, which may not be the function."""
    m = re.match(r"([^(\s]+)\((\S*)\+0x([0-9a-f]+)\)\s*\[", frame)
    if not m or m.group(2):
        return frame
    try:
        p = subprocess.run(["addr2line", "-f", "-i", "-p", "-C", "-e", m.group(1),
                            "%x" % (int(m.group(3), 16) - 1)],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return frame
    out = p.stdout.decode("utf-8", "replace").strip()
    return "%s: %s" % (os.path.basename(m.group(1)), out) if out else frame


def worker_allocations(path, after, limit=20):
    """The stacks of the worker allocations numbered above @after, resolved."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return "(no backtrace file %s)" % path
    out, shown, keep = [], 0, False
    for ln in lines:
        m = re.match(r"alloc (\d+): ", ln)
        if m:
            keep = int(m.group(1)) > after and shown < limit
            shown += keep
            if keep:
                out.append(ln)
        elif keep and not ln.startswith("snapshot "):
            out.append("    " + symbolize(ln))
    return "\n".join(out)


def tcp_pipeline(sock, names):
    """Sends all queries on one TCP connection, then reads every answer."""
    out = b"".join(struct.pack("!H", len(q)) + q for q in
                   (harness.build_query(n, "A", qid=i) for i, n in enumerate(names)))
    sock.sendall(out)
    got, buf = 0, b""
    sock.settimeout(10)
    while got < len(names):
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
            n = struct.unpack("!H", buf[:2])[0]
            buf = buf[2 + n:]
            got += 1
    return got


class Allocations(harness.DnsinkTest):
    start_dnsink = False

    def setUp(self):
        super().setUp()
        lib = os.environ.get("DK_ALLOC_COUNT") or os.path.join(
            harness.SOURCE_ROOT, "build", "tests", "integration", "alloc_count.so")
        if sanitized(harness.DNSINK):
            self.skipTest("sanitizer build: the allocation counter cannot be preloaded")
        if not os.path.exists(lib):
            raise AssertionError("missing " + lib)
        rules = os.path.join(self.dir, "alloc-rules")
        os.makedirs(rules)
        with open(os.path.join(rules, "silent.yml"), "w") as f:
            f.write(SILENT_RULE)
        with open(os.path.join(rules, "alerting.yml"), "w") as f:
            f.write(ALERT_RULE)
        with open(os.path.join(rules, "sigma.yml"), "w") as f:
            f.write(SIGMA_RULES)
        self.counts = os.path.join(self.dir, "allocs.txt")
        self.stacks = None
        env = {"LD_PRELOAD": lib, "DK_ALLOC_COUNT_FILE": self.counts}
        saved_bt = os.environ.get("DK_ALLOC_COUNT_BACKTRACE")
        if saved_bt:
            self.stacks = os.path.join(self.dir, "worker-allocs.txt")
            env["DK_ALLOC_COUNT_BACKTRACE"] = self.stacks
        os.environ.update(env)
        try:
            self.dk = self.new_dnsink(extra_rule_dirs=[rules + "/"],
                                      extra_yaml="workers: 2\n", timeout_ms=2000)
        finally:
            for k in env:
                del os.environ[k]
            if saved_bt:
                os.environ["DK_ALLOC_COUNT_BACKTRACE"] = saved_bt

    def assertNoWorkerAllocations(self, w0, w1, what):
        msg = what
        if w1 != w0 and self.stacks:
            msg += "; the worker allocations since the first snapshot:\n" + \
                worker_allocations(self.stacks, w0)
        self.assertEqual(w1 - w0, 0, msg)

    def snapshot(self):
        try:
            os.unlink(self.counts)
        except FileNotFoundError:
            pass
        self.dk.proc.signal(signal.SIGUSR2)
        def read():
            try:
                with open(self.counts) as f:
                    text = f.read()
            except FileNotFoundError:
                return None
            return text if text.endswith("\n") else None
        f = harness.wait_until(read, 5, what="the allocation counts").split()
        return int(f[1]), int(f[3])

    def names(self, n, start):
        out = []
        for i in range(start, start + n):
            if i % 2:
                out.append("q%d.sink.alloc.test" % i)
            else:
                out.append("q%d.wild.example.test" % i)
        return out

    def warm_up_tcp(self, tcp):
        """The TCP warm-up has the shape of the measured TCP queries, since the
        worker's pool of upstream TCP connections (and libuv's table of
        watched descriptors) grows to the most ever open at once and is then
        reused: that is allocation per high-water mark, not per query."""
        for r in range(2):
            self.assertEqual(tcp_pipeline(tcp, self.names(2000, 10_000_000 + r * 2000)), 2000)
        return time.monotonic()

    def test_no_allocation_per_query(self):
        port = self.dk.port
        tcp = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.addCleanup(tcp.close)
        # Warm-up: every path once, so lazily made state (upstream TCP
        # connections, buffers sized on first use) is in place.
        warm = self.flood_ok(self.names(4000, 0))
        warm_tcp = self.warm_up_tcp(tcp)
        # The first answer above proves the path works end to end.
        a = harness.query(port, "x.sink.alloc.test", "A")
        self.assertEqual(a.rdata("A"), [("A", harness.SINK_V4)])
        a = harness.query(port, "x1.wild.example.test", "A")
        self.assertEqual(a.rdata("A"), [("A", "192.0.2.99")])
        time.sleep(0.3)
        w0, o0 = self.snapshot()

        # The TCP queries first, well within UP_IDLE_SECONDS of the TCP
        # warm-up: after the UDP flood, which takes more than that on a
        # loaded machine, the workers would replace their idle upstream
        # connections, and that allocates (test_upstream_tcp_reopen_after_idle).
        idle = time.monotonic() - warm_tcp
        self.assertLess(idle, UP_IDLE_SECONDS, "too slow to measure the TCP queries")
        self.assertEqual(tcp_pipeline(tcp, self.names(2000, 20_000_000)), 2000)
        got = self.flood_ok(self.names(MEASURED - 2000, 100_000))
        time.sleep(0.3)
        w1, o1 = self.snapshot()

        print("warm-up %s; measured %s + 2000 over TCP; allocations during the measured "
              "queries: workers %d, other threads %d (since start: %d, %d)"
              % (warm, got, w1 - w0, o1 - o0, w1, o1))
        # The counter itself works: start-up allocated plenty.
        self.assertGreater(w0 + o0, 100)
        self.assertNoWorkerAllocations(w0, w1, "worker threads allocated per query")
        self.assertEqual(o1 - o0, 0, "other threads allocated while queries flowed")

    # Idle connections are closed by the pool's sweep timer, off the query
    # path: had a query closed the stale ones itself (as it once did), their
    # objects would reach the free list only in the close callbacks, a loop
    # iteration later, and the query's tcp_open() would malloc new ones
    # (about 80 KiB each, once per connection beyond UP_IDLE_MAX).
    def test_upstream_tcp_reopen_after_idle(self):
        """Upstream TCP connections left idle past UP_IDLE_MS are replaced
        with ones from the worker's pool: the next pipelined TCP queries
        allocate nothing."""
        tcp = socket.create_connection(("127.0.0.1", self.dk.port), timeout=5)
        self.addCleanup(tcp.close)
        self.warm_up_tcp(tcp)
        time.sleep(UP_IDLE_SECONDS + 0.5)
        w0, o0 = self.snapshot()
        self.assertEqual(tcp_pipeline(tcp, self.names(2000, 30_000_000)), 2000)
        time.sleep(0.3)
        w1, o1 = self.snapshot()
        print("TCP queries after %.1fs idle: allocations in workers %d, other threads %d"
              % (UP_IDLE_SECONDS + 0.5, w1 - w0, o1 - o0))
        self.assertNoWorkerAllocations(w0, w1, "worker threads allocated to reopen idle "
                                       "upstream TCP connections")

    def test_alerting_allocates_nothing_per_alert(self):
        """Every query an alert record (dedup off), to the file sink and the
        RFC 5424 UDP sink: the workers hand events over a preallocated ring
        and the alerter formats into preallocated buffers."""
        self.flood_ok(["w%d.alert.alloc.test" % i for i in range(2000)])
        self.dk.wait_alerts(lambda a: a["rule_id"] == "Test.Alloc.Alerting", n=2000, timeout=10)
        time.sleep(0.3)
        w0, o0 = self.snapshot()
        n = 20_000
        self.flood_ok(["m%d.alert.alloc.test" % i for i in range(n)])
        self.dk.wait_alerts(lambda a: a["rule_id"] == "Test.Alloc.Alerting", n=2000 + n,
                            timeout=20)
        w1, o1 = self.snapshot()
        print("%d alerted queries: allocations in workers %d, other threads %d"
              % (n, w1 - w0, o1 - o0))
        self.assertNoWorkerAllocations(w0, w1, "worker threads allocated per alerted query")
        self.assertEqual(o1 - o0, 0, "the alerter allocated per record")

    def flood_ok(self, names):
        r = harness.udp_queries(self.dk.port, names, window=WINDOW, deadline=FLOOD_SECONDS)
        self.assertEqual(r["unanswered"], 0, r)
        self.assertEqual(r.get(0, 0), len(names), "all NOERROR: %s" % r)
        return r


if __name__ == "__main__":
    harness.main()
