#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""RPZ by zone transfer, with a real knotd as the primary: AXFR at start
with a TSIG key (hmac-sha256), an IXFR after knotc zone-set/zone-commit
applied within seconds on knotd's NOTIFY, the copy in state_dir served
after a restart with knotd stopped, and what must be refused while the
previous copy stays in force: a wrong TSIG key, a zone that shrinks to
nothing, a serial going backwards, a stream cut before its closing SOA (a
fake primary: no real server does that on purpose), and a NOTIFY from
another address. Results are read from the log and the metrics endpoint."""
import base64
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
import unittest

import harness
import promscrape
from harness import query, wait_until, KNOTD, KNOTC, START_TIMEOUT

SECRET = base64.b64encode(b"dnsink-rpz-test-key-0123456789ab").decode()
WRONG = base64.b64encode(b"not-the-right-key-at-all-987654").decode()

ZONE = """\
$ORIGIN feed.rpz.
$TTL 60
@ SOA ns.feed.rpz. hostmaster.feed.rpz. {serial} {refresh} 2 {expire} 60
@ NS ns.feed.rpz.
ns A 127.0.0.1
feednx.example.test CNAME .
*.feedwild.example.test CNAME .
www2.example.test CNAME *.
removed.example.test CNAME .
xn--bcher-kva.example.test CNAME .  ; knotd takes no UTF-8: the A-label
32.20.2.0.192.rpz-ip CNAME .
"""


class KnotPrimary:
    """knotd serving feed.rpz. with a TSIG-protected transfer ACL, IXFR from
    its journal, and NOTIFY to dnsink's listener."""

    def __init__(self, root, notify_port, serial=2026120101, port=None, refresh=3600,
                 expire=86400):
        self.dir = os.path.join(root, "primary")
        os.makedirs(self.dir, exist_ok=True)
        self.port = port or harness.free_port()
        with open(os.path.join(self.dir, "feed.rpz.zone"), "w", encoding="utf-8") as f:
            f.write(ZONE.format(serial=serial, refresh=refresh, expire=expire))
        self.conf = os.path.join(self.dir, "knot.conf")
        self.sock = os.path.join(self.dir, "knot.sock")
        with open(self.conf, "w") as f:
            f.write("""\
server:
    rundir: "{d}"
    listen: 127.0.0.1@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{d}/db"
log:
  - target: stderr
    any: info
key:
  - id: feed-key
    algorithm: hmac-sha256
    secret: {secret}
remote:
  - id: dnsink
    address: 127.0.0.1@{nport}
acl:
  - id: xfr
    address: 127.0.0.1
    key: feed-key
    action: transfer
template:
  - id: default
    storage: "{d}"
    file: "%s.zone"
    zonefile-sync: -1
    journal-content: changes
zone:
  - domain: feed.rpz
    acl: xfr
    notify: dnsink
""".format(d=self.dir, port=self.port, secret=SECRET, nport=notify_port))
        self.start()

    def start(self):
        # The journal (IXFR) lives in the database folder, which knotd does not make.
        os.makedirs(os.path.join(self.dir, "db"), exist_ok=True)
        self.proc = harness.Proc("knotd-primary", [KNOTD, "-c", self.conf],
                                 os.path.join(self.dir, "knotd.log"))
        try:
            wait_until(lambda: self.soa_serial() is not None, START_TIMEOUT,
                       what="knotd primary to serve feed.rpz")
        except AssertionError:
            # Not yet in the test's stoppers: stop it here, by PID, before failing.
            log = self.proc.log_text()[-3000:]
            self.proc.stop()
            raise AssertionError("knotd primary did not start:\n" + log)

    def soa_serial(self):
        if not self.proc.alive():
            raise AssertionError("knotd exited:\n" + self.proc.log_text()[-3000:])
        r = harness.udp_ask(self.port, harness.build_query("feed.rpz", "SOA", qid=3), 0.3)
        if r is None or len(r) < 12 or (r[3] & 0x0F) != 0 or not r[2] & 0x04:
            return None
        a = query(self.port, "feed.rpz", "SOA")
        return int(a.an[0][4].split()[2]) if a.an else None

    def knotc(self, *args):
        p = subprocess.run([KNOTC, "-s", self.sock, "-c", self.conf] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20,
                           stdin=subprocess.DEVNULL)
        out = p.stdout.decode("utf-8", "replace")
        if p.returncode != 0:
            raise AssertionError("knotc %s: %s" % (" ".join(args), out))
        return out

    def change(self, sets=(), unsets=()):
        """One transaction: knotc zone-begin, zone-set/zone-unset, zone-commit
        (which bumps the serial, journals the change and sends NOTIFY)."""
        self.knotc("zone-begin", "feed.rpz")
        for owner, rtype, data in sets:
            self.knotc("zone-set", "feed.rpz", owner, "60", rtype, data)
        for owner in unsets:
            self.knotc("zone-unset", "feed.rpz", owner)
        self.knotc("zone-commit", "feed.rpz")

    def stop(self):
        return self.proc.stop()


class RpzTransfer(harness.DnsinkTest):
    start_dnsink = False

    def setUp(self):
        super().setUp()
        self.state = os.path.join(self.dir, "state")
        self.rule_dir = os.path.join(self.dir, "feedrule")
        os.makedirs(self.rule_dir)
        self.dk_port = harness.free_port()
        self.primary = KnotPrimary(self.dir, self.dk_port)
        self._stoppers.append(self.primary.stop)

    def start_dnsink_with(self, secret=SECRET, primary_port=None, port=None):
        with open(os.path.join(self.rule_dir, "feed.yml"), "w") as f:
            f.write("""\
id: IT.RPZ.Transfer
name: RPZ feed by zone transfer
severity: high
rpz:
  zone: feed.rpz
  primary: 127.0.0.1:{p}
  tsig: {{ name: feed-key, algorithm: hmac-sha256, secret: "{s}" }}
""".format(p=primary_port or self.primary.port, s=secret))
        self.mport = harness.free_port()
        d = self.new_dnsink(extra_rule_dirs=[self.rule_dir + "/"], start=False,
                            extra_yaml="state_dir: %s\nmetrics:\n  listen: 127.0.0.1:%d\n"
                            % (self.state, self.mport))
        # NOTIFY goes to the port knotd was told; keep dnsink on it.
        d.port = port or self.dk_port
        with open(d.conf) as f:
            conf = f.read()
        import re
        conf = re.sub(r"listen:\n  - 127\.0\.0\.1:\d+\n", "listen:\n  - 127.0.0.1:%d\n" % d.port,
                      conf, count=1)
        with open(d.conf, "w") as f:
            f.write(conf)
        d.start()
        return d

    def blocked(self, d, name):
        a = query(d.port, name, "A", edns=1232)
        return a.rcode == "NXDOMAIN" and 15 in a.ede

    def wait_blocked(self, d, name, want=True, timeout=10):
        wait_until(lambda: self.blocked(d, name) == want, timeout,
                   what="%s %s" % (name, "blocked" if want else "unblocked"))

    def scrape(self):
        return promscrape.scrape(self.mport)

    def transfers(self, result):
        return self.scrape().get('dnsink_rpz_transfers_total{zone="feed.rpz.",result="%s"}'
                                 % result, 0)

    def log(self, d):
        return d.proc.log_text()

    def test_axfr_ixfr_notify_restart(self):
        d = self.start_dnsink_with()
        self.wait_blocked(d, "feednx.example.test")
        self.assertTrue(self.blocked(d, "a.feedwild.example.test"))
        self.assertTrue(self.blocked(d, "xn--bcher-kva.example.test"))
        self.assertFalse(self.blocked(d, "www.example.test"))
        self.assertIn("by AXFR", self.log(d))
        copy = os.path.join(self.state, "rpz-feed.rpz.zone")
        self.assertTrue(os.path.exists(copy))
        m = self.scrape()
        self.assertEqual(m['dnsink_rpz_serial{zone="feed.rpz."}'], 2026120101)
        self.assertEqual(m['dnsink_rpz_transfers_total{zone="feed.rpz.",result="ok"}'], 1)
        self.assertEqual(m['dnsink_rpz_last_transfer_success{zone="feed.rpz."}'], 1)
        # knotc zone-set/zone-commit: an IXFR, pushed by NOTIFY, applied within seconds.
        t0 = time.monotonic()
        self.primary.change(sets=[("added.example.test", "CNAME", "."),
                                  ("32.10.2.0.192.rpz-ip", "CNAME", ".")],
                            unsets=["removed.example.test"])
        self.wait_blocked(d, "added.example.test", timeout=10)
        took = time.monotonic() - t0
        self.assertLess(took, 10)
        self.wait_blocked(d, "removed.example.test", want=False)
        a = query(d.port, "www.example.test", "A")  # upstream 192.0.2.10: rpz-ip now
        self.assertEqual(a.rcode, "NXDOMAIN", a)
        log = self.log(d)
        self.assertIn("NOTIFY from the primary", log)
        self.assertIn("by IXFR", log)
        m = self.scrape()
        self.assertGreaterEqual(m['dnsink_rpz_notifies_total{zone="feed.rpz."}'], 1)
        self.assertEqual(m['dnsink_rpz_serial{zone="feed.rpz."}'], self.primary.soa_serial())
        print("IXFR applied %.2f s after zone-commit" % took)

        # knotd stopped: a restart of dnsink serves the copy from state_dir.
        self.primary.stop()
        self.assertEqual(d.proc.stop(), 0)
        d2 = self.start_dnsink_with(port=harness.free_port())
        self.assertTrue(self.blocked(d2, "added.example.test"))
        self.assertFalse(self.blocked(d2, "removed.example.test"))
        wait_until(lambda: self.transfers("connect") >= 1, 10, what="a failed transfer")
        self.assertTrue(self.blocked(d2, "added.example.test"))
        rc, out, err = harness.run_dnsink("check", "-c", d2.conf)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("rpz-feed.rpz.zone", out)
        # How the transfers went, from the status the daemon left next to the copy.
        self.assertRegex(out, r"last transfer \S+Z: connect, last good 20\d\d-\S+Z; ok=0 "
                              r"up_to_date=0 connect=[1-9]")

    def test_wrong_tsig_refused(self):
        d = self.start_dnsink_with(secret=WRONG)
        wait_until(lambda: self.transfers("tsig") >= 1, 10, what="the TSIG failure counted")
        self.assertIn("transfer failed (tsig)", self.log(d))
        self.assertFalse(self.blocked(d, "feednx.example.test"))
        self.assertFalse(os.path.exists(os.path.join(self.state, "rpz-feed.rpz.zone")))
        # The zone loads 0 triggers: loud.
        self.assertIn("warning: zone feed.rpz. loads 0 triggers", self.log(d))

    def test_shrink_to_nothing_refused(self):
        d = self.start_dnsink_with()
        self.wait_blocked(d, "feednx.example.test")
        serial = self.primary.soa_serial()
        self.primary.change(unsets=["feednx.example.test", "*.feedwild.example.test",
                                    "www2.example.test", "removed.example.test",
                                    "xn--bcher-kva.example.test", "32.20.2.0.192.rpz-ip",
                                    "ns"])
        wait_until(lambda: self.transfers("empty") >= 1, 15, what="the empty zone refused")
        self.assertIn("holds no trigger at all", self.log(d))
        # The previous copy stays in force, in memory and on disk.
        self.assertTrue(self.blocked(d, "feednx.example.test"))
        self.assertEqual(self.scrape()['dnsink_rpz_serial{zone="feed.rpz."}'], serial)
        with open(os.path.join(self.state, "rpz-feed.rpz.zone")) as f:
            self.assertIn("feednx.example.test", f.read())

    def test_serial_backwards_refused(self):
        d = self.start_dnsink_with()
        self.wait_blocked(d, "feednx.example.test")
        # The primary comes back with an older serial (its journal gone): refused.
        self.primary.stop()
        shutil.rmtree(os.path.join(self.primary.dir, "db"), ignore_errors=True)
        with open(os.path.join(self.primary.dir, "feed.rpz.zone"), "w") as f:
            f.write(ZONE.format(serial=2025010101, refresh=3600, expire=86400).replace("feednx.example.test", "other.example.test"))
        self.primary.start()
        self.primary.knotc("zone-notify", "feed.rpz")
        wait_until(lambda: self.transfers("serial_backwards") >= 1, 15,
                   what="the older serial refused")
        self.assertTrue(self.blocked(d, "feednx.example.test"))
        self.assertFalse(self.blocked(d, "other.example.test"))

    def test_refresh_and_expire(self):
        # A primary whose SOA says: refresh every second, expire after 4 s without it.
        self.primary.stop()
        shutil.rmtree(self.primary.dir)
        self.primary = KnotPrimary(self.dir, self.dk_port, refresh=1, expire=4)
        self._stoppers.append(self.primary.stop)
        d = self.start_dnsink_with()
        self.wait_blocked(d, "feednx.example.test")
        # The refresh timer asks again (IXFR, nothing new) without any NOTIFY.
        wait_until(lambda: self.transfers("up_to_date") >= 2, 10, what="refreshes")
        self.primary.stop()
        key = 'dnsink_rpz_expired{zone="feed.rpz."}'
        wait_until(lambda: self.scrape()[key] == 1, 20, what="the zone expired")
        self.assertIn("expired (no good transfer for 4 s); still serving the last copy",
                      self.log(d))
        self.assertTrue(self.blocked(d, "feednx.example.test"))

    def test_notify_from_elsewhere_refused(self):
        d = self.start_dnsink_with()
        self.wait_blocked(d, "feednx.example.test")
        # RFC 1996 NOTIFY for feed.rpz. from 127.0.0.2, not the primary's address.
        key = 'dnsink_rpz_notifies_total{zone="feed.rpz."}'
        before = self.scrape()[key]  # knotd's own NOTIFYs at its start may be in
        msg = bytearray(harness.build_query("feed.rpz", "SOA", qid=0x5151, flags=0x2400))
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.2", 0))
        s.settimeout(2)
        s.sendto(bytes(msg), ("127.0.0.1", d.port))
        r, _ = s.recvfrom(512)
        s.close()
        self.assertEqual(r[:2], b"\x51\x51")
        self.assertEqual((r[2] >> 3) & 0xF, 4)  # opcode NOTIFY
        self.assertEqual(r[3] & 0x0F, 5)        # REFUSED
        time.sleep(0.3)
        self.assertEqual(self.scrape()[key], before)


class CutPrimary:
    """A fake primary that answers an AXFR with its first message only and
    closes: a stream cut before the closing SOA."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.served = 0
        self.stopped = False
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        self.sock.settimeout(0.2)
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with c:
                c.settimeout(2)
                try:
                    n = struct.unpack("!H", c.recv(2))[0]
                    q = c.recv(n)
                except (OSError, struct.error):
                    continue
                qid = q[:2]
                qend = harness.question_end(q)
                qs = q[12:qend]
                soa = (b"\xc0\x0c\x00\x06\x00\x01\x00\x00\x00\x3c" +
                       struct.pack("!H", 22) + b"\x00\x00" + struct.pack("!IIIII", 7, 3600, 2, 86400, 60))
                cname = (b"\x02nx\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x3c\x00\x01\x00")
                body = (qid + b"\x84\x00\x00\x01\x00\x02\x00\x00\x00\x00" + qs + soa + cname)
                c.sendall(struct.pack("!H", len(body)) + body)
                self.served += 1

    def stop(self):
        self.stopped = True
        self.sock.close()
        self.t.join(2)


class RpzCutStream(harness.DnsinkTest):
    start_dnsink = False

    def test_cut_stream_refused(self):
        fake = CutPrimary()
        self.addCleanup(fake.stop)
        rule_dir = os.path.join(self.dir, "cut")
        os.makedirs(rule_dir)
        with open(os.path.join(rule_dir, "cut.yml"), "w") as f:
            f.write("id: IT.RPZ.Cut\nname: cut\nseverity: low\n"
                    "rpz: { zone: cut.rpz, primary: 127.0.0.1:%d }\n" % fake.port)
        state = os.path.join(self.dir, "state")
        d = self.new_dnsink(extra_rule_dirs=[rule_dir + "/"],
                            extra_yaml="state_dir: %s\n" % state)
        wait_until(lambda: "transfer failed (cut)" in d.proc.log_text(), 15,
                   what="the cut stream refused")
        self.assertGreaterEqual(fake.served, 1)
        self.assertFalse(os.path.exists(os.path.join(state, "rpz-cut.rpz.zone")))


if __name__ == "__main__":
    unittest.main()
