#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Per-client rate limit (rate_limit: in config). A client at 127.0.0.2 floods
(bounded in count and time) and gets at most its burst plus the configured
rate; the rest is dropped (default) and counted as outcome "ratelimited",
while 127.0.0.1 is still answered correctly, forwarded and blocked names
alike. With action: refused, queries over the limit get REFUSED, over TCP
too. Without rate_limit nothing is limited. A reload turns it on."""
import signal
import socket
import struct
import threading
import time

import harness
from harness import query, build_query, wait_until, SINK_V4
from promscrape import scrape, outcome, metrics_yaml

FLOODER = "127.0.0.2"
BLOCKED = "flood.moneropool.ru"


def flood(port, count, seconds, src=FLOODER, name=BLOCKED, batch=40, pause=0.004):
    """Sends up to count queries in seconds from src; returns (sent, {rcode: n}, elapsed)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((src, 0))
    s.setblocking(False)
    rcodes = {}
    sent = 0
    t0 = time.monotonic()

    def drain():
        while True:
            try:
                r = s.recv(4096)
            except BlockingIOError:
                return
            rc = r[3] & 0x0F
            rcodes[rc] = rcodes.get(rc, 0) + 1

    try:
        while sent < count and time.monotonic() - t0 < seconds:
            for _ in range(min(batch, count - sent)):
                try:
                    s.sendto(build_query(name, qid=sent & 0xFFFF), ("127.0.0.1", port))
                    sent += 1
                except BlockingIOError:
                    break
            drain()
            time.sleep(pause)
        elapsed = time.monotonic() - t0
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            drain()
            time.sleep(0.02)
    finally:
        s.close()
    return sent, rcodes, elapsed


class RateLimit(harness.DnsinkTest):
    start_dnsink = False

    def start(self, rl_yaml, workers=1):
        self.mport = harness.free_port()
        self.dk = self.new_dnsink(allow=("127.0.0.0/8",),
                                  extra_yaml=metrics_yaml(self.mport) + "workers: %d\n" % workers
                                  + rl_yaml)

    def test_flood_dropped_others_served(self):
        qps, burst = 100, 100
        self.start("rate_limit:\n  qps: %d\n  burst: %d\n" % (qps, burst))
        self.assertIn("rate_limit: %d queries/s per client" % qps, self.dk.proc.log_text())
        before = scrape(self.mport)
        res = {}
        t = threading.Thread(target=lambda: res.update(r=flood(self.dk.port, 6000, 2.5, pause=0.01)))
        t.start()
        try:
            # While the flood runs: the other client is answered, every time.
            mids = []
            for i in range(6):
                a = query(self.dk.port, "www.example.test", "A", timeout_ms=1500)
                self.assertEqual(a.rdata(), [("A", "192.0.2.10")], a)
                a = query(self.dk.port, "x%d.moneropool.ru" % i, "A", timeout_ms=1500)
                self.assertEqual(a.rdata(), [("A", SINK_V4)], a)
                mids.append(scrape(self.mport)[outcome("udp", "ratelimited")])
        finally:
            t.join(30)
        sent, rcodes, elapsed = res["r"]
        answered = sum(rcodes.values())
        after = scrape(self.mport)
        limited = after[outcome("udp", "ratelimited")] - before[outcome("udp", "ratelimited")]
        print("\nflood: sent %d in %.2fs, answered %d %s, counted ratelimited %d"
              % (sent, elapsed, answered, rcodes, limited))
        self.assertGreater(sent, 1500)
        # Only sinkhole answers (NOERROR), the burst at least, never more than the rate allows.
        self.assertEqual(set(rcodes), {0}, rcodes)
        self.assertGreaterEqual(answered, burst)
        self.assertLessEqual(answered, burst + qps * (elapsed + 0.6) + 5)
        # Every query not answered was counted (a few may be lost in socket buffers).
        self.assertLessEqual(limited, sent - answered)
        self.assertGreaterEqual(limited, 0.95 * (sent - answered))
        # The counter rose while the flood ran.
        self.assertGreater(max(mids), before[outcome("udp", "ratelimited")])
        # The forwarded and blocked queries of 127.0.0.1 were never limited.
        self.assertEqual(after[outcome("tcp", "ratelimited")], 0)
        # Tokens come back: after a second, the flooder is answered again.
        time.sleep(1.1)
        a = query(self.dk.port, BLOCKED, "A", src=FLOODER)
        self.assertEqual(a.rdata(), [("A", SINK_V4)], a)

    def test_refused_udp_and_tcp(self):
        self.start("rate_limit:\n  qps: 2\n  burst: 5\n  action: refused\n")
        before = scrape(self.mport)
        # 20 pipelined queries on one TCP connection from the flooder.
        s = socket.create_connection(("127.0.0.1", self.dk.port), timeout=5,
                                     source_address=(FLOODER, 0))
        try:
            msgs = b"".join(struct.pack("!H", len(m)) + m for m in
                            (build_query("t%d.moneropool.ru" % i, qid=i) for i in range(20)))
            s.sendall(msgs)
            got = {}
            buf = b""
            while len(got) < 20:
                chunk = s.recv(65535)
                self.assertTrue(chunk, "connection closed after %d answers" % len(got))
                buf += chunk
                while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
                    n = struct.unpack("!H", buf[:2])[0]
                    m, buf = buf[2:2 + n], buf[2 + n:]
                    got[struct.unpack("!H", m[:2])[0]] = m[3] & 0x0F
        finally:
            s.close()
        refused = sorted(i for i, rc in got.items() if rc == 5)
        ok = sorted(i for i, rc in got.items() if rc == 0)
        self.assertEqual(len(ok) + len(refused), 20, got)
        # The burst first (a refill of 2/s adds at most one more in this short time).
        self.assertIn(len(ok), (5, 6), got)
        self.assertEqual(ok[:5], [0, 1, 2, 3, 4], got)
        # The same client over UDP shares the bucket: refused at once.
        a = query(self.dk.port, "u.moneropool.ru", "A", src=FLOODER)
        self.assertLocalAnswer(a, "u.moneropool.ru", "A", "REFUSED")
        # 127.0.0.1 is another client.
        a = query(self.dk.port, "v.moneropool.ru", "A")
        self.assertEqual(a.rdata(), [("A", SINK_V4)], a)
        after = scrape(self.mport)
        self.assertEqual(after[outcome("tcp", "ratelimited")]
                         - before[outcome("tcp", "ratelimited")], len(refused))
        self.assertEqual(after[outcome("udp", "ratelimited")]
                         - before[outcome("udp", "ratelimited")], 1)

    def test_off_by_default_then_reload_on(self):
        self.start("")
        sent, rcodes, elapsed = flood(self.dk.port, 600, 2.0)
        self.assertEqual(rcodes.get(0, 0), sent, (sent, rcodes))
        m = scrape(self.mport)
        self.assertEqual(m[outcome("udp", "ratelimited")], 0)
        # A reload turns it on: the same flood is now limited.
        with open(self.dk.conf, "a") as f:
            f.write("rate_limit:\n  qps: 10\n  burst: 20\n")
        self.dk.proc.signal(signal.SIGHUP)
        wait_until(lambda: self.dk.proc.log_text().count("reloaded;") >= 1, 10,
                   what="reload")
        sent, rcodes, elapsed = flood(self.dk.port, 600, 2.0)
        answered = rcodes.get(0, 0)
        self.assertGreaterEqual(answered, 20)
        self.assertLessEqual(answered, 20 + 10 * (elapsed + 0.6) + 2)
        m = scrape(self.mport)
        self.assertGreater(m[outcome("udp", "ratelimited")], sent / 2)


if __name__ == "__main__":
    harness.main()
