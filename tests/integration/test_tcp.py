#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""TCP (RFC 7766): 50 queries pipelined on one connection all answered, both
forwarded and local answers; length prefix split across writes."""
import socket
import struct
import time

import harness
from harness import dkclient, build_query, SINK_V4


class Tcp(harness.DnsinkTest):
    # The SPEC default; see the report on upstream timeouts at 400 ms under bursts.
    dnsink_kwargs = {"timeout_ms": 1500}

    def pipeline(self, fmt, expect_rcode, expect_rdata, n=50):
        rc, out = dkclient("-w", 5000, "pipeline", "127.0.0.1", self.dk.port, n, fmt, "A",
                           timeout=30)
        answers = [ln.split(" ") for ln in out.splitlines() if ln.startswith("answer ")]
        self.assertEqual(rc, 0, out)
        self.assertEqual(len(answers), n, out)
        self.assertEqual(sorted(int(a[1]) for a in answers), list(range(n)), out)
        for a in answers:
            self.assertEqual(a[3], expect_rcode, out)
            self.assertEqual(a[4], expect_rdata, out)
        self.assertIn("pipeline ok %d bad 0 of %d" % (n, n), out)

    def test_pipelined_forwarded(self):
        self.pipeline("p%d.wild.example.test", "NOERROR", "192.0.2.99")

    def test_pipelined_local(self):
        self.pipeline("p%d.moneropool.ru", "NOERROR", SINK_V4)

    def test_pipelined_nxdomain_upstream(self):
        self.pipeline("n%d.nothere.example.test", "NXDOMAIN", "-")

    def test_split_length_prefix(self):
        msg = build_query("www.example.test", "A", qid=0x4321)
        wire = struct.pack("!H", len(msg)) + msg
        with socket.create_connection(("127.0.0.1", self.dk.port), 3) as s:
            s.settimeout(3)
            s.sendall(wire[:1])
            time.sleep(0.2)
            s.sendall(wire[1:7])
            time.sleep(0.2)
            s.sendall(wire[7:])
            hdr = b""
            while len(hdr) < 2:
                chunk = s.recv(2 - len(hdr))
                self.assertTrue(chunk, "connection closed")
                hdr += chunk
            n = struct.unpack("!H", hdr)[0]
            body = b""
            while len(body) < n:
                chunk = s.recv(n - len(body))
                self.assertTrue(chunk, "connection closed")
                body += chunk
        self.assertEqual(body[:2], b"\x43\x21")
        self.assertEqual(body[3] & 0x0F, 0)                # NOERROR
        self.assertEqual(struct.unpack("!H", body[6:8])[0], 1)  # one answer
        self.assertIn(socket.inet_aton("192.0.2.10"), body)

    def test_two_connections_interleaved(self):
        a = socket.create_connection(("127.0.0.1", self.dk.port), 3)
        b = socket.create_connection(("127.0.0.1", self.dk.port), 3)
        try:
            for s, qid in ((a, 1), (b, 2), (a, 3), (b, 4)):
                m = build_query("www.example.test", "A", qid=qid)
                s.sendall(struct.pack("!H", len(m)) + m)
            for s, ids in ((a, {1, 3}), (b, {2, 4})):
                s.settimeout(3)
                got = set()
                buf = b""
                while len(got) < 2:
                    chunk = s.recv(4096)
                    self.assertTrue(chunk, "connection closed early")
                    buf += chunk
                    while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
                        n = struct.unpack("!H", buf[:2])[0]
                        got.add(struct.unpack("!H", buf[2:4])[0])
                        buf = buf[2 + n:]
                self.assertEqual(got, ids)
        finally:
            a.close()
            b.close()


if __name__ == "__main__":
    harness.main()
