#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Spoofed answers: a fake upstream first sends answers with a wrong ID, a wrong
question name, a wrong type, then the real one; the client must get the real
one. Also an answer with the right ID from another source port."""
import socket
import struct

import harness
from harness import query, make_answer, encode_name

REAL = "192.0.2.123"


class Spoof(harness.DnsinkTest):
    start_dnsink = False

    def test_wrong_id_and_question_ignored(self):
        def handler(q, send, transport):
            if transport == "tcp":
                # Spoofing is a UDP concern; over TCP only the real answer.
                send(make_answer(q, ip=REAL))
                return
            qid = struct.unpack("!H", q[:2])[0]
            end = harness.question_end(q)
            qtype_class = q[end - 4:end]
            send(make_answer(q, qid=qid ^ 0x5A5A, ip="6.6.6.6"))
            send(make_answer(q, question=encode_name("evil.example.test") + qtype_class,
                             ip="6.6.6.7"))
            send(make_answer(q, question=q[12:end - 4] + struct.pack("!HH", 28, 1),
                             ip="6.6.6.9"))
            send(make_answer(q, ip=REAL))
        fake = self.fake_upstream(handler)
        dk = self.new_dnsink(upstreams=[fake.port])
        for i in range(3):
            a = query(dk.port, "spoof%d.example.test" % i, "A")
            self.assertEqual(a.rcode, "NOERROR", a)
            self.assertEqual(a.rdata(), [("A", REAL)], a)
        # Still healthy afterwards.
        a = query(dk.port, "after.example.test", "A", tcp=True)
        self.assertEqual(a.rdata(), [("A", REAL)], a)

    def test_other_source_port_ignored(self):
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other.bind(("127.0.0.1", 0))
        self.addCleanup(other.close)
        fake = None

        def handler(q, send, transport):
            # The same valid answer, first from a socket on another port.
            if transport == "udp" and fake.last_peer:
                other.sendto(make_answer(q, ip="6.6.6.8"), fake.last_peer)
            send(make_answer(q, ip=REAL))
        fake = self.fake_upstream(handler)
        dk = self.new_dnsink(upstreams=[fake.port])
        for i in range(3):
            a = query(dk.port, "port%d.example.test" % i, "A")
            self.assertEqual(a.rdata(), [("A", REAL)], a)


if __name__ == "__main__":
    harness.main()
