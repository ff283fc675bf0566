#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Broken upstreams. Each misbehaving upstream is put in front of dnsink twice:
alone, where the client must get SERVFAIL (its own ID and question) within
the configured time, and first of two, where the client must get the answer
of the good second upstream (knotd). The cases: an upstream that never
answers; one that answers only after the query gave up; garbage; a truncated
message; an answer to a different question; the right answer from another
source port; a TCP upstream that resets the connection, or closes it, in the
middle of an answer (for TCP clients, and for the TCP retry after a TC=1 UDP
answer). Forged answers carry addresses in 6.6.6.0/24 and must never reach
the client, also not after its answer (late datagrams are watched for); each
failure shows in the counters of the Prometheus endpoint."""
import os
import socket
import struct
import threading
import time

import harness
from promscrape import scrape
from harness import build_query, make_answer, encode_name, question_end
from wire import Message, recv_frame

TIMEOUT_MS = 400
SLACK = 1.5          # seconds allowed beyond the configured timeouts (busy machine)
# Later than the whole query may take alone (resolve_timeout_ms: the harness
# gives one try per upstream and half one more): an answer to a try that timed
# out is still taken while the query waits on a retransmission, not after.
LATE_S = 1.5 * TIMEOUT_MS / 1000 + 0.5
GOOD = "192.0.2.99"  # *.wild.example.test at knotd
FORGED = "6.6.6.6"

SERIES = {
    "mismatched": "dnsink_upstream_mismatched_total",
    "malformed": "dnsink_upstream_malformed_total",
    "errors": "dnsink_upstream_errors_total",
    "tc": "dnsink_upstream_tc_retries_total",
    "answers": "dnsink_upstream_answers_total",
}


def total(series, name):
    """A counter summed over its labels (per-upstream series are labelled)."""
    return sum(v for k, v in series.items() if k == name or k.startswith(name + "{"))


def tries_of(port):
    return 'dnsink_upstream_queries_total{upstream="127.0.0.1:%d"}' % port


def timeouts_of(port):
    return 'dnsink_upstream_timeouts_total{upstream="127.0.0.1:%d"}' % port


def servfails(tr):
    return 'dnsink_queries_total{transport="%s",outcome="servfail"}' % tr


def forged_answer(q, **kw):
    return make_answer(q, ip=FORGED, **kw)


def later(delay, fn, *args):
    """Runs fn(*args) in delay seconds on a daemon thread; errors are ignored
    (the connection it writes to may be gone by then, which is fine)."""
    def run():
        time.sleep(delay)
        try:
            fn(*args)
        except OSError:
            pass
    threading.Thread(target=run, daemon=True).start()


class TcpBreaker:
    """A UDP+TCP upstream on one port. UDP: answers with TC=1 (so dnsink
    retries over TCP) unless udp_ok. TCP: reads a query, sends the length
    prefix and half of a real-looking answer, then resets the connection
    (SO_LINGER 0) or, with fin, closes it normally."""

    def __init__(self, fin=False, udp_ok=False):
        self.fin = fin
        self.udp_ok = udp_ok
        self.port = harness.free_port()
        self.tcp_conns = 0
        self.udp_queries = 0
        harness.serve_udp_tcp(self)

    def _udp_loop(self):
        while not self.stop_ev.is_set():
            try:
                q, peer = self.udp.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            self.udp_queries += 1
            if self.udp_ok:
                self.udp.sendto(forged_answer(q), peer)
                continue
            # TC=1, no records: "ask me over TCP".
            end = question_end(q)
            flags = 0x8380 | (struct.unpack("!H", q[2:4])[0] & 0x0100)
            self.udp.sendto(q[:2] + struct.pack("!HHHHH", flags, 1, 0, 0, 0) + q[12:end], peer)

    def _tcp_loop(self):
        while not self.stop_ev.is_set():
            try:
                c, _ = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.tcp_conns += 1
            c.settimeout(2)
            try:
                q = recv_frame(c)
                if q is not None:
                    a = forged_answer(q)
                    c.sendall(struct.pack("!H", len(a)) + a[:len(a) // 2])
                    time.sleep(0.05)
                    if not self.fin:
                        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     struct.pack("ii", 1, 0))
            except OSError:
                pass
            finally:
                c.close()

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(2)
        self.udp.close()
        self.tcp.close()


class BrokenUpstream(harness.DnsinkTest):
    start_dnsink = False
    n = 0

    def dnsink(self, upstreams):
        mport = harness.free_port()
        dk = self.new_dnsink(upstreams=upstreams, timeout_ms=TIMEOUT_MS, extra_yaml=(
            "workers: 1\nmetrics:\n  listen: 127.0.0.1:%d\n" % mport))
        dk.mport = mport
        return dk

    def name(self):
        BrokenUpstream.n += 1
        return "b%d-%d.wild.example.test" % (os.getpid(), BrokenUpstream.n)

    def ask(self, dk, tcp, watch=0.0):
        """Queries dnsink with a fresh name; returns (first answer, seconds, name).
        Then keeps listening for @watch seconds: anything more fails the test."""
        name = self.name()
        qid = 0x5A5A
        q = build_query(name, qid=qid)
        t0 = time.monotonic()
        if tcp:
            s = socket.create_connection(("127.0.0.1", dk.port), 2)
            s.sendall(struct.pack("!H", len(q)) + q)
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.sendto(q, ("127.0.0.1", dk.port))
        limit = 3 * TIMEOUT_MS / 1000 + SLACK + 2
        s.settimeout(limit)
        try:
            raw = recv_frame(s) if tcp else s.recv(65535)
        except socket.timeout:
            raw = None
        dt = time.monotonic() - t0
        self.assertIsNotNone(raw, "no answer at all within %.1fs" % limit)
        if watch:
            s.settimeout(watch)
            try:
                extra = recv_frame(s) if tcp else s.recv(65535)
            except socket.timeout:
                extra = None
            self.assertIsNone(extra, "a second answer reached the client: %r" % (extra,))
        s.close()
        m = Message(raw)
        self.assertTrue(m.qr)
        self.assertEqual(m.id, qid)
        self.assertEqual(m.qd, [(name + ".", 1, 1)])
        self.assertNotIn(FORGED, m.addresses(), "a forged answer reached the client")
        return m, dt, name

    def check_servfail(self, dk, tcp, tries=1, watch=0.0):
        m, dt, name = self.ask(dk, tcp, watch)
        self.assertEqual(m.rcode_name(), "SERVFAIL", m.raw)
        self.assertEqual(m.counts[1], 0)
        self.assertLess(dt, tries * TIMEOUT_MS / 1000 + SLACK)
        return dt

    def check_failover(self, dk, tcp, tries=1, watch=0.0):
        m, dt, name = self.ask(dk, tcp, watch)
        self.assertEqual((m.rcode_name(), m.addresses()), ("NOERROR", [GOOD]), m.raw)
        self.assertLess(dt, tries * TIMEOUT_MS / 1000 + SLACK)
        return dt

    def run_both(self, make_bad, tries=1, watch=0.0, transports=(False, True)):
        """SERVFAIL with a bad upstream alone, failover with knotd behind
        another one (two, since the fake upstreams serve one TCP connection at
        a time and dnsink keeps its upstream connections open a while).
        make_bad() returns an upstream with .port. Returns the counter deltas
        of (alone, with knotd)."""
        bads = [make_bad(), make_bad()]
        alone = self.dnsink([bads[0].port])
        pair = self.dnsink([bads[1].port, self.knot.port])
        deltas = []
        for dk, bad_port, check in ((alone, bads[0].port, self.check_servfail),
                                    (pair, bads[1].port, self.check_failover)):
            before = scrape(dk.mport)
            for tcp in transports:
                with self.subTest(check=check.__name__, tcp=tcp):
                    check(dk, tcp, tries, watch)
            after = scrape(dk.mport)
            d = {k: total(after, v) - total(before, v) for k, v in SERIES.items()}
            d["timeouts"] = after[timeouts_of(bad_port)] - before[timeouts_of(bad_port)]
            d["tries"] = after[tries_of(bad_port)] - before[tries_of(bad_port)]
            d["servfail"] = sum(after[servfails(t)] - before[servfails(t)]
                                for t in ("udp", "tcp"))
            # The slot is released just after the answer is sent: allow a moment.
            harness.wait_until(lambda: scrape(dk.mport)["dnsink_inflight_queries"] == 0, 3,
                               what="no query left in flight")
            deltas.append(d)
        n = len(transports)
        # Alone, the bad upstream is asked again while resolve_timeout_ms
        # leaves time; the per-try counts below are checked against its tries.
        self.assertGreaterEqual(deltas[0]["tries"], n, deltas)
        self.assertGreaterEqual(deltas[1]["tries"], n, deltas)
        self.assertEqual(deltas[0]["servfail"], n, deltas)
        self.assertEqual(deltas[1]["servfail"], 0, deltas)
        self.assertEqual(deltas[1]["answers"], n, deltas)
        return deltas

    # The cases.

    def test_never_answers(self):
        d = self.run_both(lambda: self.fake_upstream(None))
        for x in d:
            self.assertEqual(x["timeouts"], x["tries"], d)

    def test_answers_late(self):
        def handler(q, send, transport):
            later(LATE_S, send, forged_answer(q))
        # Watch past the late answer's arrival: it must never be passed on.
        d = self.run_both(lambda: self.fake_upstream(handler), watch=LATE_S + 0.3)
        for x in d:
            self.assertEqual(x["timeouts"], x["tries"], d)
        # The late UDP datagrams arrived and were refused (the TCP ones may
        # find their connection already closed).
        self.assertGreaterEqual(d[0]["mismatched"], 1, d)
        self.assertGreaterEqual(d[1]["mismatched"], 1, d)

    def test_answers_garbage(self):
        def handler(q, send, transport):
            send(os.urandom(3))                                  # not even a header
            send(os.urandom(60))                                 # random
            send(q[:2] + b"\x81\x80" + os.urandom(50))           # our ID, QR, noise
            send(q[:2] + b"\x81\x80\x00\x01" + b"\xff" * 8 + b"\xc0\x0c\x00\x01\x00\x01")
        d = self.run_both(lambda: self.fake_upstream(handler))
        for x in d:
            self.assertGreaterEqual(x["mismatched"], 2 * 3, d)
            self.assertEqual(x["timeouts"], x["tries"], d)

    def test_answers_truncated_message(self):
        # Our ID and question, records cut short (no TC): unusable, so the
        # try fails at once rather than at the timeout.
        def handler(q, send, transport):
            a = forged_answer(q)
            send(a[:-2])
        d = self.run_both(lambda: self.fake_upstream(handler), watch=0.3)
        for x in d:
            self.assertEqual(x["malformed"], 2, d)
            self.assertEqual(x["timeouts"], 0, d)

    def test_answers_with_records_missing_or_trailing_garbage(self):
        seen = []

        def handler(q, send, transport):
            a = bytearray(forged_answer(q))
            seen.append(q)
            if len(seen) % 2:
                a[7] = 2            # ANCOUNT 2, one record there
            else:
                a += b"\xde\xad"    # garbage after the records
            send(bytes(a))
        d = self.run_both(lambda: self.fake_upstream(handler))
        for x in d:
            self.assertEqual(x["malformed"], 2, d)
            self.assertEqual(x["timeouts"], 0, d)

    def test_answers_other_question(self):
        def handler(q, send, transport):
            end = question_end(q)
            qtc = q[end - 4:end]
            send(forged_answer(q, question=encode_name("www.example.test") + qtc))
            send(forged_answer(q, question=q[12:end - 4] + struct.pack("!HH", 28, 1)))
            send(forged_answer(q, question=q[12:end - 2] + struct.pack("!H", 3)))
        d = self.run_both(lambda: self.fake_upstream(handler), watch=0.2)
        for x in d:
            self.assertEqual(x["mismatched"], 3 * x["tries"], d)
            self.assertEqual(x["timeouts"], x["tries"], d)

    def test_answers_from_other_port(self):
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other.bind(("127.0.0.1", 0))
        self.addCleanup(other.close)

        def make():
            fake = None

            def handler(q, send, transport):
                # The right ID and question, from the wrong port (UDP only).
                if transport == "udp":
                    other.sendto(forged_answer(q), fake.last_peer)
            fake = self.fake_upstream(handler)
            return fake
        d = self.run_both(make, transports=(False,), watch=0.2)
        for x in d:
            self.assertEqual(x["mismatched"], x["tries"], d)
            self.assertEqual(x["timeouts"], x["tries"], d)

    def check_tcp_break(self, fin, tcp_client):
        brs = []

        def make():
            br = TcpBreaker(fin=fin)
            self._stoppers.append(br.stop)
            brs.append(br)
            return br
        d = self.run_both(make, transports=(tcp_client,))
        for x in d:
            # One lost connection is retried once on a fresh one, then counted.
            self.assertEqual(x["errors"], 1, d)
            self.assertEqual(x["timeouts"], 0, d)
            self.assertEqual(x["tc"], 0 if tcp_client else 1, d)
        for br in brs:
            self.assertEqual(br.tcp_conns, 2)
            self.assertEqual(br.udp_queries, 0 if tcp_client else 1)

    def test_tcp_reset_mid_answer_tcp_client(self):
        self.check_tcp_break(fin=False, tcp_client=True)

    def test_tcp_reset_mid_answer_after_tc(self):
        self.check_tcp_break(fin=False, tcp_client=False)

    def test_tcp_close_mid_answer_tcp_client(self):
        self.check_tcp_break(fin=True, tcp_client=True)

    def test_tcp_close_mid_answer_after_tc(self):
        self.check_tcp_break(fin=True, tcp_client=False)


if __name__ == "__main__":
    harness.main()
