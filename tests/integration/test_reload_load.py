#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Reload under load: queries flow without pause (UDP and TCP clients, bounded
in count and time) while dnsink gets 20 SIGHUPs, alternating between two rule
sets written to one rule file. Set A blocks X, set B blocks Y, both block Z
(and the shipped rules block W); V is never blocked.

A reload is in force somewhere between the SIGHUP and the "reloaded;" log line
(written once every worker has switched). So each answer must be the one of a
set that may have been in force between the query's send and its answer: a
sinkhole answer for X only where A may be, an upstream answer for X only where
B may be, and so on. No query may be lost, and none may get SERVFAIL (knotd,
the upstream, is healthy). Alerts stay on, so the alert rings and their dedup
are drained and freed across every swap (run it under ASan too)."""
import os
import random
import signal
import socket
import struct
import threading
import time

import harness
from harness import build_query, wait_until, SINK_V4

RELOADS = 20
X, Y, Z = "added.example.test", "www2.example.test", "broken.example.test"
W, V = "w.moneropool.ru", "www.example.test"
UPSTREAM_A = {X: "192.0.2.23", Y: "192.0.2.11", Z: "192.0.2.24", V: "192.0.2.10"}
BLOCKED = {"A": {X, Z, W}, "B": {Y, Z, W}}
NAMES = [X, Y, Z, W, V]
QUERY_CAP = 60000        # per client thread
TIME_CAP = 30.0          # seconds, for the whole run

RULE = """\
id: IT.Reload.Flip
name: Reload under load, set {set}
severity: low
action: sinkhole
dedup_minutes: 1
domains:
{domains}"""


def write_rules(path, which):
    """Writes set @which atomically (a reload never reads half a file)."""
    text = RULE.format(set=which, domains="".join(
        "  - %s\n" % d for d in sorted(BLOCKED[which] - {W})))
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def skip_name(msg, off):
    while True:
        n = msg[off]
        if n & 0xC0 == 0xC0:
            return off + 2
        if n == 0:
            return off + 1
        off += n + 1


def answer_of(msg):
    """(rcode, sorted A addresses) of a response."""
    rcode = msg[3] & 0x0F
    qd, an = struct.unpack("!HH", msg[4:8])
    off = 12
    for _ in range(qd):
        off = skip_name(msg, off) + 4
    addrs = []
    for _ in range(an):
        off = skip_name(msg, off)
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
        off += 10
        if rtype == 1 and rdlen == 4:
            addrs.append(socket.inet_ntoa(msg[off:off + 4]))
        off += rdlen
    return rcode, sorted(addrs)


def expected(name, which):
    if name in BLOCKED[which]:
        return (0, [SINK_V4])
    return (0, [UPSTREAM_A[name]])


class Client(threading.Thread):
    """Sends one query at a time, waits for its answer; records every exchange."""

    def __init__(self, port, tcp, stop, seed):
        super().__init__(daemon=True)
        self.port, self.tcp, self.stop_ev = port, tcp, stop
        self.rnd = random.Random(seed)
        self.log = []      # (t_send, t_recv, name, answer or None)
        self.error = None

    def run(self):
        try:
            if self.tcp:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=3)
            else:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.settimeout(3)
            with s:
                qid = self.rnd.randrange(65536)
                while not self.stop_ev.is_set() and len(self.log) < QUERY_CAP:
                    qid = (qid + 1) & 0xFFFF
                    name = self.rnd.choice(NAMES)
                    m = build_query(name, qid=qid)
                    t0 = time.monotonic()
                    try:
                        r = self.exchange(s, m, qid)
                    except socket.timeout:
                        r = None
                    t1 = time.monotonic()
                    self.log.append((t0, t1, name, answer_of(r) if r else None))
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = repr(e)

    def exchange(self, s, m, qid):
        if self.tcp:
            s.sendall(struct.pack("!H", len(m)) + m)
            hdr = self.recv_all(s, 2)
            r = self.recv_all(s, struct.unpack("!H", hdr)[0])
        else:
            s.sendto(m, ("127.0.0.1", self.port))
            while True:
                r = s.recv(65535)
                if r[:2] == m[:2]:
                    break
        if r[:2] != m[:2]:
            raise AssertionError("answer with ID %r for query %d" % (r[:2], qid))
        return r

    @staticmethod
    def recv_all(s, n):
        b = b""
        while len(b) < n:
            c = s.recv(n - len(b))
            if not c:
                raise AssertionError("connection closed")
            b += c
        return b


class ReloadLoad(harness.DnsinkTest):
    start_dnsink = False

    def start_flipping(self):
        """Starts dnsink (two workers) with the flip rule at set A; returns its path."""
        flip_dir = os.path.join(self.dir, "flip")
        os.makedirs(flip_dir)
        rule = os.path.join(flip_dir, "flip.yml")
        write_rules(rule, "A")
        self.dk = self.new_dnsink(extra_rule_dirs=[flip_dir + "/"], timeout_ms=1500,
                                  extra_yaml="workers: 2\n")
        return rule

    def test_twenty_reloads_under_load(self):
        rule = self.start_flipping()
        log = self.dk.proc.log_text
        # Segments of time with the sets that may be in force in each.
        segments = []
        seg_start, current = 0.0, "A"
        stop = threading.Event()
        clients = [Client(self.dk.port, False, stop, i) for i in range(3)]
        clients.append(Client(self.dk.port, True, stop, 99))
        t_begin = time.monotonic()
        for c in clients:
            c.start()
        reload_ms = []
        try:
            time.sleep(0.2)
            for k in range(1, RELOADS + 1):
                nxt = "B" if k % 2 else "A"
                write_rules(rule, nxt)
                t_sig = time.monotonic()
                segments.append((seg_start, t_sig, {current}))
                self.dk.proc.signal(signal.SIGHUP)
                wait_until(lambda: log().count("reloaded;") >= k, 10,
                           what="reload %d to be in force" % k, step=0.005)
                t_seen = time.monotonic()
                reload_ms.append((t_seen - t_sig) * 1000)
                segments.append((t_sig, t_seen, {current, nxt}))
                seg_start, current = t_seen, nxt
                self.assertLess(time.monotonic() - t_begin, TIME_CAP)
                time.sleep(random.uniform(0.05, 0.15))
        finally:
            stop.set()
            for c in clients:
                c.join(10)
        segments.append((seg_start, float("inf"), {current}))

        self.assertNotIn("reload failed", log())
        self.assertEqual(log().count("reloaded;"), RELOADS)
        bad, lost, seen = [], [], {}
        total = 0
        for c in clients:
            self.assertIsNone(c.error, "client %s: %s" % ("tcp" if c.tcp else "udp", c.error))
            for t0, t1, name, ans in c.log:
                total += 1
                if ans is None:
                    lost.append((t0 - t_begin, name, "tcp" if c.tcp else "udp"))
                    continue
                sets = set().union(*(s for a, b, s in segments if a <= t1 and b >= t0))
                ok = [expected(name, w) for w in sorted(sets)]
                if ans not in ok:
                    bad.append("%.3fs-%.3fs %s (%s): got %s, want one of %s (sets %s)"
                               % (t0 - t_begin, t1 - t_begin, name,
                                  "tcp" if c.tcp else "udp", ans, ok, sorted(sets)))
                seen.setdefault(name, set()).add(tuple(ans[1]))
        print("\nreload under load: %d queries by %d clients, %d reloads in force after "
              "%.1f ms median (max %.1f), %d lost, %d wrong"
              % (total, len(clients), RELOADS, sorted(reload_ms)[len(reload_ms) // 2],
                 max(reload_ms), len(lost), len(bad)))
        self.assertEqual(lost, [], "queries without an answer")
        self.assertEqual(bad[:20], [], "%d wrong answers" % len(bad))
        self.assertGreater(total, 20 * RELOADS)
        # Both sets were really in force: X and Y each answered both ways.
        self.assertEqual(seen[X], {(SINK_V4,), (UPSTREAM_A[X],)}, seen)
        self.assertEqual(seen[Y], {(SINK_V4,), (UPSTREAM_A[Y],)}, seen)
        self.assertEqual(seen[Z], {(SINK_V4,)}, seen)
        self.assertEqual(seen[V], {(UPSTREAM_A[V],)}, seen)
        # Alerts kept flowing across the swaps (dedup folds the repeats).
        rules = {a["rule_id"] for a in self.dk.wait_alerts(
            lambda a: a["rule_id"] == "IT.Reload.Flip", n=2)}
        self.assertEqual(rules, {"IT.Reload.Flip"})

    def test_sighup_burst_settles_on_last_set(self):
        """20 SIGHUPs a few ms apart, each after a rewrite: reloads that arrive while
        one is being swapped in are folded into one more; every answer is from A or
        B, none lost, and once quiet the last set written is the one in force."""
        rule = self.start_flipping()
        log = self.dk.proc.log_text
        stop = threading.Event()
        clients = [Client(self.dk.port, False, stop, i) for i in range(2)]
        clients.append(Client(self.dk.port, True, stop, 7))
        for c in clients:
            c.start()
        try:
            time.sleep(0.1)
            for k in range(1, RELOADS + 1):
                write_rules(rule, "B" if k % 2 else "A")
                self.dk.proc.signal(signal.SIGHUP)
                time.sleep(0.001)
            last = "A"  # RELOADS is even
            # Quiet: no new "reloaded;" line for 0.5 s.
            state = {"n": -1, "t": time.monotonic()}

            def quiet():
                n = log().count("reloaded;")
                if n != state["n"]:
                    state.update(n=n, t=time.monotonic())
                return n >= 1 and time.monotonic() - state["t"] > 0.5
            wait_until(quiet, 20, step=0.02, what="reloads to settle")
            t_settled = time.monotonic()
            time.sleep(0.2)
        finally:
            stop.set()
            for c in clients:
                c.join(10)
        n = log().count("reloaded;")
        self.assertGreaterEqual(log().count("SIGHUP: reloading"), 2)
        self.assertLessEqual(n, RELOADS)
        self.assertNotIn("reload failed", log())
        lost, bad, after = 0, [], 0
        for c in clients:
            self.assertIsNone(c.error, c.error)
            for t0, t1, name, ans in c.log:
                if ans is None:
                    lost += 1
                    continue
                sets = ["A", "B"] if t0 < t_settled else [last]
                if ans not in [expected(name, w) for w in sets]:
                    bad.append((name, ans, sets))
                after += t0 >= t_settled
        print("\nSIGHUP burst: %d SIGHUPs, %d reloads done, %d queries after settling, "
              "%d lost, %d wrong" % (RELOADS, n, after, lost, len(bad)))
        self.assertEqual(lost, 0)
        self.assertEqual(bad[:20], [])
        self.assertGreater(after, 20)


if __name__ == "__main__":
    harness.main()
