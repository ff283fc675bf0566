#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Hostile packets (raw bytes via dkclient): FORMERR when the header is
readable, NOTIMP for other opcodes, silence for less than a header; the
server keeps answering afterwards."""
import struct

import harness
from harness import dkclient, encode_name, query

Q = encode_name("www.example.test") + struct.pack("!HH", 1, 1)


def hdr(qid=0x2222, flags=0x0100, qd=1, an=0, ns=0, ar=0):
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


class Hostile(harness.DnsinkTest):

    def raw(self, data, tcp=False):
        args = (["-t"] if tcp else []) + ["-w", 1000, "raw", "127.0.0.1", self.dk.port,
                                          data.hex()]
        rc, out = dkclient(*args)
        self.assertEqual(rc, 0, out)
        return harness.Answer(out, rc)

    def assertAlive(self):
        a = query(self.dk.port, "www.example.test", "A")
        self.assertEqual(a.rdata(), [("A", "192.0.2.10")], a)

    CASES = [
        # (what, bytes, expected rcode or None for no reply)
        ("qdcount 2", hdr(qd=2) + Q + Q, "FORMERR"),
        ("qdcount 0", hdr(qd=0), "FORMERR"),
        ("opcode STATUS", hdr(flags=0x1100) + Q, "NOTIMP"),
        ("opcode NOTIFY", hdr(flags=0x2100) + Q, "NOTIMP"),
        ("pointer loop", hdr() + b"\xc0\x0c" + struct.pack("!HH", 1, 1), "FORMERR"),
        ("label > 63", hdr() + bytes([64]) + b"a" * 64 + b"\0" + struct.pack("!HH", 1, 1),
         "FORMERR"),
        ("name without end", hdr() + b"\x03www\x07example", "FORMERR"),
        ("question without type", hdr() + encode_name("www.example.test"), "FORMERR"),
        ("name > 255", hdr() + (b"\x3f" + b"a" * 63) * 4 + b"\0" + struct.pack("!HH", 1, 1),
         "FORMERR"),
        ("5 octets", b"\x12\x34\x01\x00\x00", None),
        ("empty", b"", None),
    ]

    def check(self, what, a, rcode):
        """No answer when rcode is None; else a response with that rcode and our ID."""
        if rcode is None:
            self.assertTrue(a.timeout, a.text)
            return
        self.assertFalse(a.timeout, "no answer to %s" % what)
        self.assertEqual(a.rcode, rcode, a.text)
        self.assertEqual(a.id, 0x2222, a.text)
        self.assertIn("qr", a.flags, a.text)

    def test_udp(self):
        for what, data, rcode in self.CASES:
            if not data:
                continue  # an empty datagram cannot be sent meaningfully
            with self.subTest(what=what):
                self.check(what, self.raw(data), rcode)
        self.assertAlive()

    def test_udp_sizes(self):
        # A datagram is read into a slot of 1/64 of the worker's 1.25 MiB receive buffer
        # (20 KiB): a query padded to 4 KiB (EDNS padding option) is answered; one of
        # 30,000 octets arrives truncated and is dropped unanswered, and nothing else suffers.
        def padded(pad):
            opt = b"\0" + struct.pack("!HHIH", 41, 4096, 0, 4 + pad) + struct.pack("!HH", 12, pad)
            return hdr(ar=1) + Q + opt + b"\0" * pad
        big = padded(4000)
        self.assertGreater(len(big), 4000)
        self.check("padded to 4 KiB", self.raw(big), "NOERROR")
        self.check("30,000 octets", self.raw(padded(30000 - 60)), None)
        self.assertAlive()

    def test_tcp(self):
        for what, data, rcode in self.CASES:
            with self.subTest(what=what):
                self.check(what, self.raw(data, tcp=True), rcode)
        self.assertAlive()

    def test_response_dropped(self):
        # QR set: a response sent to us is never answered (no reflection loops).
        a = self.raw(hdr(flags=0x8180) + Q)
        self.assertTrue(a.timeout, a.text)
        self.assertAlive()


if __name__ == "__main__":
    harness.main()
