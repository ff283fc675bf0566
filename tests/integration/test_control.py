#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The control socket (control.socket) driven with the real `dnsink ctl` against a
running dnsink forwarding to knotd: status, stats, reload (its FILE:LINE error, the old
set kept), flush NAME / flush-all of the workers' caches, top, match; the socket's
mode; bounded requests (an over-long line, too many connections, a silent client)."""
import grp
import os
import socket
import stat
import time

import harness
from harness import query, wait_until


def ctl(conf, *args):
    return harness.run_dnsink("ctl", "-c", conf, *args)


def connect(path):
    """A connection to the socket; a full backlog (EAGAIN on a unix socket) is retried."""
    deadline = time.monotonic() + 5
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            s.settimeout(5)
            return s
        except BlockingIOError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class Control(harness.DnsinkTest):
    start_dnsink = False
    knot_stats = True

    def setUp(self):
        super().setUp()
        self.sock = os.path.join(self.dir, "control.sock")
        self.dk = self.new_dnsink(extra_yaml="workers: 2\ncontrol:\n  socket: %s\n" % self.sock)

    def ok(self, *args):
        rc, out, err = ctl(self.dk.conf, *args)
        self.assertEqual(rc, 0, (args, out, err))
        return out

    def test_status_and_stats(self):
        self.assertFalse(query(self.dk.port, "www.example.test", "A").timeout)
        out = self.ok("status")
        self.assertRegex(out, r"(?m)^version \d+\.\d+\.\d+$")
        self.assertRegex(out, r"(?m)^pid %d$" % self.dk.proc.pid)
        self.assertRegex(out, r"(?m)^rules \d+, entries \d+, names \d+$")
        self.assertRegex(out, r"(?m)^last load \S+Z ok$")
        self.assertRegex(out, r"(?m)^workers 2$")
        self.assertRegex(out, r"(?m)^upstream 127\.0\.0\.1:%d up .*answers 1 " % self.knot.port)
        stats = self.ok("stats")
        self.assertIn('dnsink_queries_total{transport="udp",outcome="forwarded"} 1\n', stats)
        self.assertNotIn("# HELP", stats)

    def test_socket_mode(self):
        st = os.stat(self.sock)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        try:
            gid = grp.getgrnam("dnsink").gr_gid
        except KeyError:
            gid = None
        if gid is not None:
            self.assertEqual(st.st_gid, gid)

    def test_reload_result_and_error(self):
        out = self.ok("reload")
        self.assertRegex(out, r"loaded .*dnsink\.yml: \d+ rules")
        bad = os.path.join(self.dk.rules_dir, "zz-bad.yml")
        with open(bad, "w") as f:
            f.write("id: IT.Bad\nname: bad\nseverity: high\naction: sinkhole\n"
                    "domains:\n  - \"bad..name\"\n")
        rc, out, err = ctl(self.dk.conf, "reload")
        self.assertEqual(rc, 1, (out, err))
        self.assertIn("zz-bad.yml:6:", err)
        # The old set stays in force, and status says the last load failed.
        self.assertEqual(query(self.dk.port, "moneropool.ru", "A").rdata(), [("A", harness.SINK_V4)])
        self.assertIn("FAILED", self.ok("status"))
        os.unlink(bad)
        self.ok("reload")
        self.assertRegex(self.ok("status"), r"(?m)^last load \S+Z ok$")

    def cache_entries(self):
        for ln in self.ok("stats").splitlines():
            if ln.startswith("dnsink_cache_entries "):
                return int(ln.split()[1])
        raise AssertionError("no dnsink_cache_entries")

    def test_flush_name_and_all(self):
        # Several source ports, so that both workers' caches get entries.
        for name in ("www.example.test", "www2.example.test"):
            for _ in range(6):
                self.assertFalse(query(self.dk.port, name, "A").timeout)
        n = self.cache_entries()
        self.assertGreaterEqual(n, 2)
        out = self.ok("flush", "WWW.example.test.")
        removed = int(out.split()[1])
        self.assertGreaterEqual(removed, 1, out)
        self.assertIn("(2 workers)", out)
        self.assertEqual(self.cache_entries(), n - removed)
        # The name is asked upstream again: knotd's count grows.
        before = self.knot.queries()["udp4"]
        query(self.dk.port, "www.example.test", "A")
        wait_until(lambda: self.knot.queries()["udp4"] > before, 3, what="knotd asked again")
        out = self.ok("flush-all")
        self.assertEqual(self.cache_entries(), 0, out)
        rc, _, err = ctl(self.dk.conf, "flush", "bad..name")
        self.assertEqual(rc, 1)
        self.assertIn("invalid name", err)

    def test_top_and_match(self):
        for _ in range(3):
            query(self.dk.port, "pool.moneropool.ru", "A")
        query(self.dk.port, "nx.example.test", "A")

        def counted():
            out = self.ok("top", "5")
            return out if "rule matches in the last 10 minutes: 4" in out else None
        out = wait_until(counted, 5, what="four events in top")
        self.assertRegex(out, r"clients:\n\s+4\s+127\.0\.0\.1\n")
        self.assertRegex(out, r"names:\n\s+3\s+pool\.moneropool\.ru\n\s+1\s+nx\.example\.test\n")
        self.assertRegex(out, r"rules:\n\s+3\s+DNS\.Crypto\.MiningPool\n\s+1\s+IT\.Test\.NxDomain")
        out = self.ok("match", "X.MoneroPool.RU.")
        self.assertIn("x.moneropool.ru: rule DNS.Crypto.MiningPool action sinkhole matched "
                      "moneropool.ru", out)
        self.assertIn("no match", self.ok("match", "notmoneropool.ru"))
        # A Unicode name is asked as its A-label, as the rules take it.
        out = self.ok("match", "bücher.example")
        self.assertIn("xn--bcher-kva.example: no match", out)

    def test_bad_requests(self):
        rc, _, err = ctl(self.dk.conf, "bogus")
        self.assertEqual(rc, 1)
        self.assertIn("unknown command", err)
        rc, _, err = ctl(self.dk.conf, "top", "0")
        self.assertEqual(rc, 1, err)
        # A line longer than the daemon takes: an error, then the connection closes.
        with connect(self.sock) as s:
            s.sendall(b"x" * 3000)
            got = b""
            while True:
                try:
                    b = s.recv(4096)
                except (ConnectionResetError, BrokenPipeError):
                    break
                if not b:
                    break
                got += b
            self.assertTrue(got.startswith(b"error: request longer than 1024"), got)
        # More connections than it serves: the extra ones are closed at once, and
        # the daemon still answers once they are gone.
        held = []
        try:
            for _ in range(20):
                held.append(connect(self.sock))
            # The daemon accepts and closes them on its main loop: wait for it
            # (a loaded machine may take longer than a moment), at most 5 s.
            gone = set()
            deadline = time.monotonic() + 5
            while len(gone) < 4 and time.monotonic() < deadline:
                time.sleep(0.1)
                for i, s in enumerate(held):
                    if i in gone:
                        continue
                    s.setblocking(False)
                    try:
                        if s.recv(1) == b"":
                            gone.add(i)
                    except BlockingIOError:
                        pass
                    except OSError:
                        gone.add(i)
            closed = len(gone)
            self.assertGreaterEqual(closed, 4, "connections over 16 closed")
            # A silent client the daemon took is closed after the request timeout (5 s).
            s = held[min(set(range(len(held))) - gone)]
            s.setblocking(True)
            s.settimeout(10)
            t0 = time.monotonic()
            self.assertEqual(s.recv(1), b"")
            self.assertLess(time.monotonic() - t0, 8)
        finally:
            for s in held:
                s.close()
        # Once the daemon has seen them go (its main loop, soon), it serves again.
        wait_until(lambda: ctl(self.dk.conf, "status")[0] == 0, 5,
                   what="ctl status after the extra connections are gone")

    def test_unreachable_and_unconfigured(self):
        self.dk.proc.stop()
        self.assertFalse(os.path.exists(self.sock), "the socket file is removed at stop")
        rc, _, err = ctl(self.dk.conf, "status")
        self.assertEqual(rc, 2)
        self.assertIn("cannot reach the daemon", err)
        plain = os.path.join(self.dir, "plain.yml")
        with open(plain, "w") as f:
            f.write("listen: [127.0.0.1:%d]\n" % harness.free_port())
        rc, _, err = ctl(plain, "status")
        self.assertEqual(rc, 2)
        self.assertIn("has no control socket", err)


if __name__ == "__main__":
    harness.main()
