#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Alert delivery to a real rsyslogd over TCP (RFC 5424, octet counting) that is
stopped while alerts are produced and started again on the same port. A rule
with dedup_minutes 0 makes one record per query, each with a name of its own,
so every record can be counted at the collector: the ones produced while it
was away arrive exactly once when it is back, and with a small queue
(alerts.queue 16) the overflow is counted on the metrics endpoint and in
dnsink's log while what was queued still arrives exactly once. A fake
collector that stops reading and then resets the connection shows that records
dnsink wrote but the collector never acknowledged are sent again, not lost."""
import collections
import json
import os
import re
import socket
import struct
import sys
import threading
import time

import harness
from harness import build_query, udp_ask, wait_until
from test_metrics import curl, parse

RULE = """\
id: IT.Delivery.Each
name: Delivery test, one record per query
severity: high
action: nxdomain
dedup_minutes: 0
domains:
  - deliv.example.test
"""
RULE_ID = "IT.Delivery.Each"
# Generous: after the restart the next reconnect comes within the backoff (<= 4 s here).
ARRIVE_TIMEOUT = 30


class Delivery(harness.DnsinkTest):
    want_rsyslog = True
    start_dnsink = False

    def start(self, queue=None):
        extra = os.path.join(self.dir, "extra-rules")
        os.makedirs(extra)
        with open(os.path.join(extra, "delivery.yml"), "w") as f:
            f.write(RULE)
        self.mport = harness.free_port()
        yaml = ("  queue: %d\n" % queue) if queue else ""
        yaml += "metrics:\n  listen: 127.0.0.1:%d\n" % self.mport
        self.dk = self.new_dnsink(syslog_transport="tcp", extra_rule_dirs=[extra + "/"],
                                  extra_yaml=yaml)
        self.qid = 0

    def alert(self, label):
        """One query of the delivery rule; returns its (unique) name once answered."""
        name = "%s.deliv.example.test" % label
        self.qid = (self.qid + 1) & 0xFFFF
        for _ in range(5):
            r = udp_ask(self.dk.port, build_query(name, "A", qid=self.qid), timeout=1.0)
            if r is not None:
                self.assertEqual(r[3] & 0x0F, 3, "no NXDOMAIN for %s" % name)  # local answer
                return name
        raise AssertionError("dnsink did not answer %s" % name)

    def received(self):
        """dns_query of every record of the delivery rule rsyslog has written."""
        out = []
        for m in self.rsyslog.messages(app="dnsink-it"):
            rec = json.loads(m["msg"].lstrip("\ufeff").strip())
            if rec.get("rule_id") == RULE_ID:
                out.append(rec["dns_query"])
        return out

    def wait_received(self, names, timeout=ARRIVE_TIMEOUT):
        want = set(names)
        try:
            wait_until(lambda: want <= set(self.received()), timeout, step=0.1,
                       what="%d records at rsyslog" % len(want))
        except AssertionError:
            missing = sorted(want - set(self.received()))
            raise AssertionError("%d of %d records missing at rsyslog, e.g. %s\ndnsink log:\n%s"
                                 % (len(missing), len(want), missing[:5],
                                    self.dk.proc.log_text()[-3000:]))

    def scrape(self):
        status, head, body = curl(self.mport)
        self.assertEqual(status, 200, head)
        return parse(body)

    def assertOnce(self, names, got):
        counts = collections.Counter(got)
        for n in names:
            self.assertEqual(counts[n], 1, "%s arrived %d times" % (n, counts[n]))

    def test_collector_restart_loses_nothing(self):
        self.start()
        before = self.scrape()
        up = [self.alert("up%d" % i) for i in range(5)]
        self.wait_received(up, 10)

        # Alerts keep coming while rsyslog shuts down: some are written just
        # before it closes, some into the dead connection before dnsink has
        # noticed, some after. None may arrive twice.
        edge = []
        stop = threading.Event()

        def produce():
            for i in range(300):
                if stop.is_set():
                    return
                edge.append(self.alert("edge%d" % i))
                time.sleep(0.003)
        t = threading.Thread(target=produce)
        t.start()
        try:
            time.sleep(0.05)
            self.rsyslog.stop()
        finally:
            stop.set()
            t.join(20)
        self.assertGreater(len(edge), 0)

        # While it is away: every one of these must arrive, exactly once.
        down = [self.alert("down%d" % i) for i in range(40)]
        # The file sink took them at once: the events were produced.
        self.dk.wait_alerts(lambda r: r.get("dns_query") == down[-1])
        time.sleep(0.5)
        queued = self.scrape()["dnsink_alerts_queued"]
        self.assertGreaterEqual(queued, len(down))

        self.rsyslog.restart()
        after = [self.alert("after%d" % i) for i in range(5)]
        self.wait_received(down + after)
        # Records go out in order: once the last one is in, a duplicate of an
        # earlier one would be in too. Leave rsyslog a moment to write it.
        time.sleep(0.3)
        got = self.received()
        self.assertOnce(up + down + after, got)
        # Records of the shutdown moment: never twice. Written into the dying
        # connection they are sent again (Unacknowledged below checks that
        # deterministically); one that rsyslog's kernel took but rsyslogd never
        # read is lost without dnsink being able to know (README), so loss is
        # only reported here.
        counts = collections.Counter(got)
        self.assertEqual([n for n in edge if counts[n] > 1], [])
        missing = [n for n in edge if counts[n] == 0]
        if missing:
            print("note: %d of %d records of rsyslogd's shutdown moment lost: %s"
                  % (len(missing), len(edge), missing), file=sys.stderr)
        self.assertEqual(set(got) - set(up + edge + down + after), set())

        end = self.scrape()
        lost = 'dnsink_alerts_total{state="lost_sink"}'
        self.assertEqual(end[lost] - before[lost], 0)
        self.assertEqual(end["dnsink_alerts_queued"], 0)
        log = self.dk.proc.log_text()
        self.assertRegex(log, r"alert collector tcp://127\.0\.0\.1:%d (lost|unreachable)"
                         % self.rsyslog.tcp_port)
        self.assertRegex(log, r"alert collector tcp://127\.0\.0\.1:%d connected, \d+ queued"
                         % self.rsyslog.tcp_port)

    def test_small_queue_overflow_counted(self):
        self.start(queue=16)
        before = self.scrape()
        up = [self.alert("up%d" % i) for i in range(3)]
        self.wait_received(up, 10)
        # Every record so far confirmed by the collector: the queue is empty.
        wait_until(lambda: self.scrape()["dnsink_alerts_queued"] == 0, 5, what="empty queue")
        self.rsyslog.stop()

        down = [self.alert("down%d" % i) for i in range(40)]
        self.dk.wait_alerts(lambda r: r.get("dns_query") == down[-1])
        lost = 'dnsink_alerts_total{state="lost_sink"}'
        # The loss report comes with the next one-second tick.
        wait_until(lambda: re.search(r"alert queue full, \d+ records lost",
                                     self.dk.proc.log_text()), 5, what="loss in the log")
        mid = self.scrape()
        self.assertEqual(mid[lost] - before[lost], len(down) - 16)
        self.assertEqual(mid["dnsink_alerts_queued"], 16)
        logged = sum(int(n) for n in re.findall(r"alert queue full, (\d+) records lost",
                                                self.dk.proc.log_text()))
        self.assertEqual(logged, len(down) - 16)

        self.rsyslog.restart()
        # The queue goes out on the next reconnect; until then it stays full.
        wait_until(lambda: self.scrape()["dnsink_alerts_queued"] == 0, ARRIVE_TIMEOUT,
                   step=0.1, what="queue sent")
        after = [self.alert("after%d" % i) for i in range(3)]
        self.wait_received(after)
        time.sleep(0.3)
        got = self.received()
        arrived = [n for n in got if n in set(down)]
        # Exactly the 16 queued ones, each once; the overflow never shows up.
        self.assertEqual(len(arrived), 16, arrived)
        self.assertOnce(arrived, got)
        self.assertOnce(up + after, got)
        end = self.scrape()
        self.assertEqual(end[lost] - before[lost], len(down) - 16)
        self.assertEqual(end["dnsink_alerts_queued"], 0)


class FakeCollector:
    """A TCP syslog collector (octet counting) on 127.0.0.1:port that we control."""

    def __init__(self, port=0, rcvbuf=None):
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:
            # Set before listen(): accepted sockets inherit it, without autotuning.
            self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.ls.bind(("127.0.0.1", port))
        self.ls.listen(4)
        self.ls.settimeout(10)
        self.tcp_port = self.ls.getsockname()[1]
        self.conn = None
        self.data = b""
        self.stop_ev = threading.Event()
        self.thread = None

    def accept(self):
        self.conn, _ = self.ls.accept()
        return self.conn

    def read_in_background(self):
        """Accepts one connection and reads everything it sends, in a thread."""
        def run():
            try:
                c = self.accept()
            except OSError:
                return
            c.settimeout(0.1)
            while not self.stop_ev.is_set():
                try:
                    chunk = c.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                self.data += chunk
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def close(self):
        self.stop_ev.set()
        if self.thread:
            self.thread.join(5)
        if self.conn:
            self.conn.close()
        self.ls.close()


def frames(data):
    """dns_query of each whole RFC 6587 octet-counted record in data (a partial tail is left)."""
    out = []
    while True:
        sp = data.find(b" ")
        if sp <= 0:
            return out
        n = int(data[:sp])
        if len(data) < sp + 1 + n:
            return out
        msg = data[sp + 1:sp + 1 + n].decode("utf-8")
        out.append(json.loads(msg[msg.index("{"):])["dns_query"])
        data = data[sp + 1 + n:]


class Unacknowledged(harness.DnsinkTest):
    """Records a collector never acknowledged are sent again, deterministically:
    the collector stops reading with a small receive buffer, so dnsink's writes
    complete into dnsink's own kernel buffer but are never acknowledged; then it
    resets the connection. What it had taken (peeked from its socket) and what
    the next collector gets must together be every record, each once."""
    start_dnsink = False

    def test_unacknowledged_records_sent_again(self):
        extra = os.path.join(self.dir, "extra-rules")
        os.makedirs(extra)
        with open(os.path.join(extra, "delivery.yml"), "w") as f:
            f.write(RULE)
        first = FakeCollector(rcvbuf=4096)
        self.addCleanup(first.close)
        mport = harness.free_port()
        self.dk = self.new_dnsink(syslog_transport="tcp", rsyslog=first,
                                  extra_rule_dirs=[extra + "/"],
                                  extra_yaml="metrics:\n  listen: 127.0.0.1:%d\n" % mport)
        conn = first.accept()
        names = []
        for i in range(80):
            name = "u%d.deliv.example.test" % i
            r = udp_ask(self.dk.port, build_query(name, "A", qid=i + 1), timeout=2.0)
            self.assertIsNotNone(r, name)
            names.append(name)
        self.dk.wait_alerts(lambda r: r.get("dns_query") == names[-1])

        # Wait until the flow has stalled (the receive buffer is full).
        def stalled(state={"n": -1, "since": 0.0}):
            n = len(conn.recv(1 << 20, socket.MSG_PEEK | socket.MSG_DONTWAIT))
            now = time.monotonic()
            if n != state["n"]:
                state["n"], state["since"] = n, now
            return now - state["since"] > 0.5
        wait_until(stalled, 10, step=0.05, what="the collector's buffer to fill")
        # Written by dnsink, not acknowledged: they must still be held.
        status, head, body = curl(mport)
        held = parse(body)["dnsink_alerts_queued"]
        taken = frames(conn.recv(1 << 20, socket.MSG_PEEK | socket.MSG_DONTWAIT))
        self.assertGreater(len(taken), 0)
        self.assertLess(len(taken), len(names))
        self.assertGreaterEqual(held, len(names) - len(taken) - 1)
        # Reset: what sat unread in this socket is gone; the rest must come again.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        port = first.tcp_port
        first.close()

        second = FakeCollector(port=port)
        self.addCleanup(second.close)
        second.read_in_background()
        again = []
        try:
            wait_until(lambda: set(names) <= set(taken) | set(frames(second.data)),
                       ARRIVE_TIMEOUT, step=0.1, what="the records sent again")
        finally:
            again = frames(second.data)
        self.assertEqual(sorted(taken + again), sorted(names),
                         "each record exactly once over both collectors")
        log = self.dk.proc.log_text()
        m = re.search(r"(\d+) unacknowledged records to send again", log)
        self.assertIsNotNone(m, log)
        self.assertGreaterEqual(int(m.group(1)), len(names) - len(taken) - 1)
        # Released once the second collector's acknowledgement is seen.
        end = wait_until(lambda: (lambda m: m if m["dnsink_alerts_queued"] == 0 else None)(
            parse(curl(mport)[2])), 5, what="the queue to empty")
        self.assertEqual(end['dnsink_alerts_total{state="lost_sink"}'], 0)
        self.assertGreaterEqual(end["dnsink_alerts_resent_total"], len(again) - 1)


if __name__ == "__main__":
    harness.main()
