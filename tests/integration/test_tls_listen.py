#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""DNS over TLS for clients (listen_tls), with a certificate made here under a
test CA, kdig (+tls-ca, +tls-hostname) and Python's ssl module as clients.

- Forwarded answers over DoT are those of the cleartext path.
- A blocked name is sinkholed over DoT with EDE 15, and its alert record says
  transport "tls".
- 200 queries pipelined on one DoT connection, all answered on it.
- A client that opens a connection and never finishes its handshake is cut
  by tls.handshake_timeout_ms; one that sends garbage is counted as failed;
  both leave the listener serving.
- SIGHUP with a new certificate in the same files: new connections get it.
"""
import os
import shutil
import socket
import ssl
import struct
import time

import harness
import promscrape
import tlsutil
from harness import SINK_V4, build_query, kdig, wait_until

NAME = "dns.test"


class TlsListen(harness.DnsinkTest):
    start_dnsink = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ca = tlsutil.CA(os.path.join(cls.class_dir, "pki"))
        cls.cert, cls.key = cls.ca.issue("srv", NAME)
        cls.cert2, cls.key2 = cls.ca.issue("srv2", "renewed.test")

    def setUp(self):
        super().setUp()
        # The files the config names; test_reload overwrites them.
        self.cert_file = os.path.join(self.dir, "cert.pem")
        self.key_file = os.path.join(self.dir, "key.pem")
        shutil.copy(self.cert, self.cert_file)
        shutil.copy(self.key, self.key_file)
        self.tls_port = harness.free_port()
        self.mport = harness.free_port()
        extra = ("listen_tls:\n  - 127.0.0.1:%d\n"
                 "tls:\n  cert_file: %s\n  key_file: %s\n  handshake_timeout_ms: 600\n"
                 "workers: 1\ntcp:\n  max_clients: 8\n"
                 % (self.tls_port, self.cert_file, self.key_file))
        extra += promscrape.metrics_yaml(self.mport)
        self.dk = self.new_dnsink(extra_yaml=extra)

    def kdig_tls(self, *args, hostname=NAME):
        return kdig(self.tls_port, "+tls-ca=%s" % self.ca.pem, "+tls-hostname=%s" % hostname,
                    *args)

    def handshakes(self, result):
        return promscrape.scrape(self.mport).get(
            'dnsink_tls_client_handshakes_total{result="%s"}' % result, 0)

    def tls_socket(self):
        ctx = ssl.create_default_context(cafile=self.ca.pem)
        raw = socket.create_connection(("127.0.0.1", self.tls_port), 5)
        return ctx.wrap_socket(raw, server_hostname=NAME)

    def test_forwarded_same_as_cleartext(self):
        for name, qtype in (("www.example.test", "A"), ("www.example.test", "TXT"),
                            ("x.wild.example.test", "AAAA"), ("nothere.example.test", "A")):
            plain = kdig(self.dk.port, "+short", name, qtype)
            over = self.kdig_tls("+short", name, qtype)
            self.assertEqual(plain, over, (name, qtype))
            status = self.kdig_tls(name, qtype)
            self.assertIn("(TCP)", status)
        self.assertIn("192.0.2.10", self.kdig_tls("+short", "www.example.test", "A"))
        m = promscrape.scrape(self.mport)
        self.assertEqual(m['dnsink_queries_received_total{transport="tls"}'], 9)
        self.assertEqual(m[promscrape.outcome("tls", "forwarded")] +
                         m[promscrape.outcome("tls", "cached")], 9)

    def test_blocked_sinkholed_with_ede(self):
        out = self.kdig_tls("+edns", "pool.moneropool.ru", "A")
        self.assertIn("status: NOERROR", out)
        self.assertIn(SINK_V4, out)
        self.assertIn("EDE: 15", out)
        rec = self.dk.wait_alerts(lambda a: a["dns_query"] == "pool.moneropool.ru")[0]
        self.assertEqual(rec["transport"], "tls")
        self.assertEqual(rec["action"], "sinkhole")
        m = promscrape.scrape(self.mport)
        self.assertEqual(m[promscrape.outcome("tls", "sinkholed")], 1)

    def test_200_pipelined_on_one_connection(self):
        names = ["p%d.wild.example.test" % i for i in range(100)]
        names += ["p%d.moneropool.ru" % i for i in range(100)]
        with self.tls_socket() as s:
            wire = b"".join(struct.pack("!H", len(q)) + q for q in
                            (build_query(n, "A", qid=i + 1) for i, n in enumerate(names)))
            s.sendall(wire)
            got = {}
            buf = b""
            s.settimeout(10)
            while len(got) < len(names):
                chunk = s.recv(65536)
                self.assertTrue(chunk, "connection closed after %d answers" % len(got))
                buf += chunk
                while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
                    n = struct.unpack("!H", buf[:2])[0]
                    msg, buf = buf[2:2 + n], buf[2 + n:]
                    got[struct.unpack("!H", msg[:2])[0]] = msg
        self.assertEqual(sorted(got), list(range(1, 201)))
        for qid, msg in got.items():
            self.assertEqual(msg[3] & 0x0F, 0, qid)
            ip = "192.0.2.99" if qid <= 100 else SINK_V4
            self.assertIn(socket.inet_aton(ip), msg, qid)
        self.assertEqual(self.handshakes("ok"), 1)

    def test_stalled_handshake_cut(self):
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.tls_port), 5) as s:
            # Half a ClientHello record header, then nothing.
            s.sendall(b"\x16\x03\x01")
            s.settimeout(10)
            self.assertEqual(s.recv(100), b"")
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 0.4)
        self.assertLess(took, 5)
        wait_until(lambda: self.handshakes("timeout") >= 1, 3, what="the timeout counted")
        # The listener still serves.
        self.assertIn("192.0.2.10", self.kdig_tls("+short", "www.example.test", "A"))

    def test_connection_cap(self):
        # 8 connections per worker (tcp.max_clients, DoT and TCP together): the 9th is
        # closed at once, counted, and a slot freed is usable again.
        held = [self.tls_socket() for _ in range(8)]
        try:
            with socket.create_connection(("127.0.0.1", self.tls_port), 5) as s:
                s.settimeout(5)
                self.assertEqual(s.recv(10), b"")
            wait_until(lambda: promscrape.scrape(self.mport).get(
                'dnsink_tcp_connections_total{state="rejected"}', 0) >= 1, 3,
                what="the rejection counted")
        finally:
            for h in held:
                h.close()
        wait_until(lambda: "192.0.2.10" in self.kdig_tls("+short", "www.example.test", "A"),
                   5, what="a DoT answer once the connections closed")

    def test_garbage_counted(self):
        with socket.create_connection(("127.0.0.1", self.tls_port), 5) as s:
            s.sendall(struct.pack("!H", 29) + build_query("www.example.test", "A"))
            s.settimeout(5)
            try:
                while s.recv(4096):
                    pass
            except ConnectionResetError:
                pass
        wait_until(lambda: self.handshakes("failed") >= 1, 3, what="the failure counted")
        # Cleartext DNS on the TLS port got no answer in clear.
        self.assertIn("192.0.2.10", self.kdig_tls("+short", "www.example.test", "A"))

    def test_reload_new_certificate(self):
        self.assertIn("192.0.2.10", self.kdig_tls("+short", "www.example.test", "A"))
        shutil.copy(self.cert2, self.cert_file)
        shutil.copy(self.key2, self.key_file)
        n = self.dk.proc.log_text().count("reloaded")
        self.dk.proc.signal(1)  # SIGHUP
        wait_until(lambda: self.dk.proc.log_text().count("reloaded") > n, 10,
                   what="the reload")
        self.assertIn("192.0.2.10", self.kdig_tls("+short", "www.example.test", "A",
                                                  hostname="renewed.test"))
        # The old name no longer verifies: the new certificate is in use.
        out = self.kdig_tls("www.example.test", "A")
        self.assertNotIn("192.0.2.10", out)

    def test_reload_broken_key_keeps_old(self):
        with open(self.key_file, "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
        n = self.dk.proc.log_text().count("tls:")
        self.dk.proc.signal(1)
        wait_until(lambda: self.dk.proc.log_text().count("tls:") > n, 10,
                   what="the failed reload logged")
        self.assertIn("192.0.2.10", self.kdig_tls("+short", "www.example.test", "A"))


if __name__ == "__main__":
    harness.main()
