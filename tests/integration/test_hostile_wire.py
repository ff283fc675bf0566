#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Hostile queries beyond test_hostile.py, over UDP and TCP, read back octet by
octet with wire.py: EDNS version 1 gets BADVERS (extended rcode 16 in an OPT
of version 0); unknown EDNS options and flag bits get the normal answer;
unknown classes and type 666 are forwarded and answered as the upstream
answers them (a blocked name in them gets no IN address); trailing garbage
and compression pointers in the question (forward, into the header, to
itself) get FORMERR. After every case a normal query is answered correctly,
and every error answer stays no larger than the query plus an OPT (no
amplification)."""
import struct

import harness
from harness import encode_name, udp_ask
from wire import Message, opt_rr, tcp_exchange

WWW = encode_name("www.example.test")
A_IN = struct.pack("!HH", 1, 1)


def hdr(qid=0x3131, flags=0x0100, qd=1, an=0, ns=0, ar=0):
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def q(name="www.example.test", qtype=1, qclass=1, qid=0x3131, opt=None, tail=b""):
    """A query in wire form with an optional OPT record and trailing octets."""
    return (hdr(qid=qid, ar=1 if opt else 0) + encode_name(name) +
            struct.pack("!HH", qtype, qclass) + (opt or b"") + tail)


class HostileWire(harness.DnsinkTest):

    def ask(self, data, tcp):
        """dnsink's parsed answer to @data, or None when it does not answer."""
        if tcp:
            r = tcp_exchange(self.dk.port, data, timeout=2.0)
        else:
            r = udp_ask(self.dk.port, data, timeout=1.0)
        return None if r is None else Message(r)

    def ask_knot(self, data):
        r = udp_ask(self.knot.port, data, timeout=2.0)
        self.assertIsNotNone(r, "knotd did not answer")
        return Message(r)

    def assertAlive(self, tcp):
        m = self.ask(q(qid=0x7777), tcp)
        self.assertIsNotNone(m, "no answer to a normal query afterwards")
        self.assertEqual((m.id, m.rcode_name(), m.addresses()), (0x7777, "NOERROR",
                                                                 ["192.0.2.10"]))

    def both(self, fn):
        """Runs fn(tcp) over UDP then TCP, each followed by a normal query."""
        for tcp in (False, True):
            with self.subTest(tcp=tcp):
                fn(tcp)
                self.assertAlive(tcp)

    # EDNS.

    def test_edns_version_1_badvers(self):
        def one(tcp):
            for do in (0, 0x8000):
                data = q(opt=opt_rr(version=1, flags=do))
                m = self.ask(data, tcp)
                self.assertIsNotNone(m, "no BADVERS answer")
                self.assertTrue(m.qr)
                self.assertEqual(m.id, 0x3131)
                self.assertEqual(m.flags & 0x0F, 0, "BADVERS leaves 0 in the header")
                self.assertIsNotNone(m.opt, "BADVERS needs an OPT record")
                self.assertEqual(m.opt["ext_rcode"], 1)
                self.assertEqual(m.rcode, 16)
                self.assertEqual(m.opt["version"], 0, "we speak version 0")
                self.assertEqual(m.qd, [("www.example.test.", 1, 1)])
                self.assertEqual(m.counts[1:3], (0, 0), "no data with BADVERS")
                self.assertLessEqual(len(m.raw), len(data))
        self.both(one)

    def test_edns_version_255_badvers(self):
        m = self.ask(q(opt=opt_rr(version=255)), False)
        self.assertEqual(m.rcode_name(), "BADVERS")
        self.assertAlive(False)

    def test_unknown_edns_options(self):
        opts = [(65001, b"\x01\x02\x03"), (65002, b""), (3, b""), (65535, b"x" * 40)]

        def one(tcp):
            m = self.ask(q(opt=opt_rr(options=opts)), tcp)
            self.assertIsNotNone(m)
            self.assertEqual((m.rcode_name(), m.addresses()), ("NOERROR", ["192.0.2.10"]))
            self.assertIsNotNone(m.opt, "an EDNS query gets an EDNS answer")
            self.assertEqual(m.opt["version"], 0)
        self.both(one)

    def test_unknown_edns_flags(self):
        # Every Z bit set, with and without DO: ignored (RFC 6891 6.1.4).
        def one(tcp):
            for flags in (0x7FFF, 0xFFFF):
                m = self.ask(q(opt=opt_rr(flags=flags)), tcp)
                self.assertIsNotNone(m)
                self.assertEqual((m.rcode_name(), m.addresses()), ("NOERROR", ["192.0.2.10"]))
                self.assertIsNotNone(m.opt)
                self.assertEqual(m.opt["flags"] & 0x7FFF, 0, "Z bits must not be echoed")
        self.both(one)

    def test_unknown_edns_flags_on_local_answer(self):
        # The same for an answer dnsink writes itself: DO echoed, nothing else.
        for tcp in (False, True):
            m = self.ask(q("abc.moneropool.ru", opt=opt_rr(flags=0xFFFF)), tcp)
            self.assertEqual((m.rcode_name(), m.addresses()), ("NOERROR", [harness.SINK_V4]))
            self.assertEqual(m.opt["flags"], 0x8000)
            self.assertAlive(tcp)

    def test_two_opt_records_formerr(self):
        data = hdr(ar=2) + WWW + A_IN + opt_rr() + opt_rr()
        for tcp in (False, True):
            m = self.ask(data, tcp)
            self.assertEqual(m.rcode_name(), "FORMERR")
            self.assertAlive(tcp)

    def test_cut_edns_option_formerr(self):
        # The option claims 10 octets, the OPT rdata holds 2 of them.
        bad = b"\0" + struct.pack("!HHIH", 41, 1232, 0, 6) + struct.pack("!HH", 65001, 10) + b"ab"
        for tcp in (False, True):
            m = self.ask(hdr(ar=1) + WWW + A_IN + bad, tcp)
            self.assertEqual(m.rcode_name(), "FORMERR")
            self.assertAlive(tcp)

    # Classes and types.

    def test_unknown_class_forwarded_as_upstream_answers(self):
        def one(tcp):
            for qclass in (666, 3, 254, 65280):
                data = q(qclass=qclass)
                m = self.ask(data, tcp)
                self.assertIsNotNone(m, "no answer for class %d" % qclass)
                k = self.ask_knot(data)
                self.assertEqual((m.id, m.rcode_name(), m.counts[1]),
                                 (0x3131, k.rcode_name(), k.counts[1]), qclass)
                self.assertEqual(m.qd, [("www.example.test.", 1, qclass)])
        self.both(one)

    def test_type_666_forwarded(self):
        def one(tcp):
            m = self.ask(q(qtype=666), tcp)
            self.assertIsNotNone(m)
            self.assertEqual((m.rcode_name(), m.counts[1]), ("NOERROR", 0))  # NODATA
            self.assertEqual(m.qd, [("www.example.test.", 666, 1)])
            self.assertEqual(len(m.sections[1]), 1, "NODATA carries the SOA")
        self.both(one)

    def test_blocked_name_in_other_class_and_type(self):
        # A sinkholed name is still answered locally, but only IN A gets an address.
        for tcp in (False, True):
            for qtype, qclass in ((666, 1), (1, 666), (1, 3), (28, 254)):
                m = self.ask(q("abc.moneropool.ru", qtype=qtype, qclass=qclass), tcp)
                self.assertEqual((m.rcode_name(), m.counts[1]), ("NOERROR", 0),
                                 (qtype, qclass))
                self.assertEqual(m.qd, [("abc.moneropool.ru.", qtype, qclass)])
            self.assertAlive(tcp)

    # Garbage and pointers.

    FORMERR_CASES = [
        ("trailing garbage", hdr() + WWW + A_IN + b"\xde\xad\xbe\xef"),
        ("one trailing octet", hdr() + WWW + A_IN + b"\0"),
        ("garbage after OPT", hdr(ar=1) + WWW + A_IN + opt_rr() + b"junk"),
        ("forward pointer", hdr() + b"\x03www\xc0\x16" + A_IN + encode_name("example.test")),
        ("forward pointer first", hdr() + b"\xc0\x12" + A_IN + WWW),
        ("pointer into header", hdr() + b"\x03www\xc0\x02" + A_IN),
        ("pointer to itself", hdr() + b"\x03www\xc0\x10" + A_IN),
        ("pointer past end", hdr() + b"\x03www\xc0\xff" + A_IN),
        ("cut pointer", hdr() + b"\x03www\xc0"),
        ("an count lies", hdr(an=1) + WWW + A_IN),
        ("ar count lies", hdr(ar=3) + WWW + A_IN + opt_rr()),
        ("label type 0x40", hdr() + b"\x41" + b"a" + b"\0" + A_IN),
    ]

    def test_formerr_cases(self):
        for what, data in self.FORMERR_CASES:
            for tcp in (False, True):
                with self.subTest(what=what, tcp=tcp):
                    m = self.ask(data, tcp)
                    self.assertIsNotNone(m, "no answer")
                    self.assertTrue(m.qr)
                    self.assertEqual((m.id, m.rcode_name()), (0x3131, "FORMERR"))
                    self.assertEqual(m.counts[1:3], (0, 0))
                    # Never more than the query's header and question back.
                    self.assertLessEqual(len(m.raw), len(data))
                    self.assertAlive(tcp)

    def test_response_with_edns_dropped(self):
        # QR=1 with EDNS: still a response, never answered.
        data = hdr(flags=0x8180, ar=1) + WWW + A_IN + opt_rr()
        self.assertIsNone(self.ask(data, False))
        self.assertAlive(False)


if __name__ == "__main__":
    harness.main()
