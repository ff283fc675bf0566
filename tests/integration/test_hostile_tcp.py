#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Hostile TCP clients (RFC 7766 framing and resources): a 0-length prefix
closes the connection at once; a 65535-length prefix followed by too little
data, a silent connection and a client that sends one byte a second are all
closed by tcp.idle_timeout_ms (the timer runs from the last complete query, so
trickling bytes do not keep a connection open); a full 65535-octet frame is
read and answered FORMERR; connections over tcp.max_clients are closed at
once and counted, and service resumes once the others go. After every case
normal queries over UDP and TCP are answered correctly."""
import select
import socket
import struct
import time

import harness
from promscrape import scrape
from harness import build_query, udp_ask
from wire import Message, recv_frame, tcp_exchange

IDLE_MS = 1500
MAX_CLIENTS = 3


def frame(msg):
    return struct.pack("!H", len(msg)) + msg


def wait_closed(s, timeout):
    """Seconds until the peer closes s (EOF or reset), or None after timeout.
    Any data read on the way is returned too, as (seconds, data)."""
    t0 = time.monotonic()
    data = b""
    while True:
        left = timeout - (time.monotonic() - t0)
        if left <= 0:
            return None, data
        r, _, _ = select.select([s], [], [], left)
        if not r:
            continue
        try:
            chunk = s.recv(65535)
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            return time.monotonic() - t0, data
        data += chunk


REJECTED = 'dnsink_tcp_connections_total{state="rejected"}'
ACCEPTED = 'dnsink_tcp_connections_total{state="accepted"}'


class HostileTcp(harness.DnsinkTest):
    start_dnsink = False

    def setUp(self):
        super().setUp()
        self.mport = harness.free_port()
        self.dk = self.new_dnsink(extra_yaml=(
            "workers: 1\ntcp:\n  max_clients: %d\n  idle_timeout_ms: %d\n"
            "metrics:\n  listen: 127.0.0.1:%d\n" % (MAX_CLIENTS, IDLE_MS, self.mport)))

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.dk.port), 2)
        self.addCleanup(s.close)
        return s

    def assertAlive(self):
        for tcp in (False, True):
            q = build_query("www.example.test", qid=0x4242)
            r = tcp_exchange(self.dk.port, q) if tcp else udp_ask(self.dk.port, q, 1.0)
            self.assertIsNotNone(r, "no answer to a normal query (tcp=%s)" % tcp)
            m = Message(r)
            self.assertEqual((m.id, m.rcode_name(), m.addresses()),
                             (0x4242, "NOERROR", ["192.0.2.10"]))

    def test_zero_length_prefix(self):
        s = self.connect()
        # A valid query after the empty frame must not be answered either.
        s.sendall(b"\0\0" + frame(build_query("www.example.test")))
        dt, data = wait_closed(s, IDLE_MS / 1000 + 3)
        self.assertIsNotNone(dt, "connection left open after a 0-length prefix")
        self.assertEqual(data, b"", "answered after a 0-length prefix")
        self.assertLess(dt, IDLE_MS / 1000 * 0.66, "closed by the idle timer, not at once")
        self.assertAlive()

    def test_max_length_prefix_short_data(self):
        s = self.connect()
        t0 = time.monotonic()
        s.sendall(b"\xff\xff" + build_query("www.example.test") + b"\0" * 100)
        dt, data = wait_closed(s, IDLE_MS / 1000 + 4)
        self.assertIsNotNone(dt, "connection held open waiting for 65535 octets")
        self.assertEqual(data, b"")
        self.assertGreater(time.monotonic() - t0, IDLE_MS / 1000 * 0.8)
        self.assertAlive()

    def test_max_length_frame_read_whole(self):
        # 65535 octets: a query and trailing zeros. Read in full, FORMERR,
        # and the same connection then carries a normal query.
        q = build_query("www.example.test", qid=0x5151)
        s = self.connect()
        s.settimeout(3)
        s.sendall(b"\xff\xff" + q + b"\0" * (65535 - len(q)))
        m = Message(recv_frame(s))
        self.assertEqual((m.id, m.rcode_name()), (0x5151, "FORMERR"))
        s.sendall(frame(build_query("www.example.test", qid=0x5152)))
        m = Message(recv_frame(s))
        self.assertEqual((m.id, m.addresses()), (0x5152, ["192.0.2.10"]))
        self.assertAlive()

    def test_silent_connection_closed(self):
        s = self.connect()
        dt, data = wait_closed(s, IDLE_MS / 1000 + 4)
        self.assertIsNotNone(dt, "a silent connection was never closed")
        self.assertGreater(dt, IDLE_MS / 1000 * 0.8)
        self.assertAlive()

    def test_idle_after_answer(self):
        s = self.connect()
        s.settimeout(3)
        s.sendall(frame(build_query("www.example.test", qid=0x6161)))
        self.assertEqual(Message(recv_frame(s)).id, 0x6161)
        t0 = time.monotonic()
        dt, data = wait_closed(s, IDLE_MS / 1000 + 4)
        self.assertIsNotNone(dt, "an idle connection was never closed")
        self.assertGreater(time.monotonic() - t0, IDLE_MS / 1000 * 0.8)

    def test_one_byte_per_second(self):
        msg = frame(build_query("www.example.test", qid=0x7171))
        s = self.connect()
        t0 = time.monotonic()
        closed = None
        # Bounded: at most IDLE + 3 s of trickling (a few bytes of the frame).
        for i in range(int(IDLE_MS / 1000) + 3):
            try:
                s.send(msg[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed = time.monotonic() - t0
                break
            dt, data = wait_closed(s, 1.0)
            self.assertEqual(data, b"")
            if dt is not None:
                closed = time.monotonic() - t0
                break
        self.assertIsNotNone(closed, "a client sending a byte a second was never cut off")
        self.assertLess(closed, IDLE_MS / 1000 + 2.0)
        self.assertAlive()

    def test_more_connections_than_cap(self):
        before = scrape(self.mport)
        held = []
        for i in range(MAX_CLIENTS):
            s = self.connect()
            s.settimeout(3)
            # An answer proves dnsink accepted (and counts) this connection.
            s.sendall(frame(build_query("www.example.test", qid=0x100 + i)))
            self.assertEqual(Message(recv_frame(s)).id, 0x100 + i)
            held.append(s)
        extra = []
        for i in range(2):
            s = self.connect()
            try:
                s.sendall(frame(build_query("www.example.test", qid=0x200 + i)))
            except (BrokenPipeError, ConnectionResetError):
                pass
            dt, data = wait_closed(s, 2.0)
            self.assertIsNotNone(dt, "connection over the cap left open")
            self.assertEqual(data, b"", "connection over the cap answered")
            extra.append(s)
        mid = scrape(self.mport)
        self.assertEqual(mid[REJECTED] - before[REJECTED], 2)
        self.assertEqual(mid[ACCEPTED] - before[ACCEPTED], MAX_CLIENTS)
        # UDP is unaffected, and the connections held still work.
        m = Message(udp_ask(self.dk.port, build_query("www2.example.test", qid=0x300), 1.0))
        self.assertEqual(m.addresses(), ["192.0.2.11"])
        for i, s in enumerate(held):
            s.sendall(frame(build_query("www2.example.test", qid=0x400 + i)))
            m = Message(recv_frame(s))
            self.assertEqual((m.id, m.addresses()), (0x400 + i, ["192.0.2.11"]))
        for s in held:
            s.close()
        # Once they are gone (dnsink sees the close on its next loop turn),
        # new connections are served again.
        def served():
            try:
                return tcp_exchange(self.dk.port, build_query("www.example.test", qid=0x500),
                                    timeout=1.0)
            except OSError:
                return None
        m = Message(harness.wait_until(served, 5, step=0.1, what="TCP service back"))
        self.assertEqual((m.id, m.addresses()), (0x500, ["192.0.2.10"]))
        self.assertAlive()


if __name__ == "__main__":
    harness.main()
