#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""First run: README's quick start on the shipped conf/dnsink.yml ends with the alert
record of a sinkholed query in alerts.jsonl; and with syslog(3) as the only alert sink on
a machine where no syslog daemon listens on /dev/log, dnsink says so once at start and
counts the records as lost, not emitted."""
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import time

import harness
from harness import query, wait_until

DIG = shutil.which("dig") or "/usr/bin/dig"
WARNING = "no syslog daemon listens on /dev/log"


def syslog_listening():
    """The same question dnsink asks: does anything accept on /dev/log?"""
    try:
        if not stat.S_ISSOCK(os.stat("/dev/log").st_mode):
            return False
    except OSError:
        return False
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_UNIX, kind)
        try:
            s.connect("/dev/log")
            return True
        except OSError:
            pass
        finally:
            s.close()
    return False


class FirstRun(harness.DnsinkTest):
    start_dnsink = False

    def start_in(self, cwd, *args):
        p = harness.Proc("dnsink", [harness.DNSINK] + list(args),
                         os.path.join(self.dir, "dnsink.log"), cwd=cwd)
        self._stoppers.append(p.stop)
        return p

    def wait_answering(self, p, port):
        def up():
            if not p.alive():
                raise AssertionError("dnsink exited:\n" + p.log_text()[-3000:])
            r = harness.udp_ask(port, harness.build_query("debian.org", "A", qid=7), 0.3)
            return r is not None and r[:2] == b"\x00\x07"
        wait_until(up, harness.START_TIMEOUT, what="dnsink on port %d" % port)

    def test_quick_start_shows_the_alert(self):
        # The README's run, from a checkout: conf/dnsink.yml with rules/ beside the current
        # directory, on a free port and with knotd as the upstream (no network here).
        work = os.path.join(self.dir, "checkout")
        os.makedirs(work)
        os.symlink(harness.REPO_RULES, os.path.join(work, "rules"))
        port = harness.free_port()
        p = self.start_in(work, "-c", os.path.join(harness.SOURCE_ROOT, "conf", "dnsink.yml"),
                          "--listen", "127.0.0.1:%d" % port,
                          "--upstream", "127.0.0.1:%d" % self.knot.port)
        self.wait_answering(p, port)
        out = subprocess.run([DIG, "@127.0.0.1", "-p", str(port), "+time=2", "+tries=1",
                              "moneropool.ru"], stdout=subprocess.PIPE, timeout=15,
                             stdin=subprocess.DEVNULL).stdout.decode()
        self.assertRegex(out, r"moneropool\.ru\.\s+\d+\s+IN\s+A\s+0\.0\.0\.0", out)
        path = os.path.join(work, "alerts.jsonl")

        def record():
            try:
                with open(path, encoding="utf-8") as f:
                    recs = [json.loads(ln) for ln in f if ln.strip()]
            except FileNotFoundError:
                return None
            return [r for r in recs if r.get("dns_query") == "moneropool.ru"] or None
        recs = wait_until(record, 5, what="the alert record in alerts.jsonl")
        self.assertEqual(recs[0]["action"], "sinkhole", recs)
        self.assertEqual(recs[0]["matched"], "moneropool.ru", recs)
        log = p.log_text()
        # Alerts are kept apart from the operational log.
        self.assertNotIn('"rule_id"', log)
        if not syslog_listening():
            self.assertEqual(log.count(WARNING), 1, log)
            self.assertIn("the file sink alerts.jsonl still gets them", log)

    def test_missing_syslog_is_said_and_counted(self):
        if syslog_listening():
            self.skipTest("a syslog daemon listens on /dev/log on this machine")
        port, mport = harness.free_port(), harness.free_port()
        conf = os.path.join(self.dir, "syslog-only.yml")
        with open(conf, "w") as f:
            f.write("listen: [127.0.0.1:%d]\nupstreams: [127.0.0.1:%d]\nrules: [%s/]\n"
                    "alerts:\n  syslog:\n    ident: dnsink-it\n"
                    "metrics:\n  listen: 127.0.0.1:%d\n"
                    % (port, self.knot.port, harness.REPO_RULES, mport))
        p = self.start_in(harness.SOURCE_ROOT, "-c", conf)
        self.wait_answering(p, port)
        self.assertEqual(query(port, "moneropool.ru", "A").rdata(), [("A", "0.0.0.0")])
        import test_metrics  # the exposition parser and curl helper

        def lost():
            m = test_metrics.parse(test_metrics.curl(mport)[2])
            return m if m['dnsink_alerts_total{state="lost_sink"}'] >= 1 else None
        m = wait_until(lost, 5, what="the record counted lost")
        self.assertEqual(m['dnsink_alerts_total{state="lost_sink"}'], 1, m)
        self.assertEqual(m['dnsink_alerts_total{state="emitted"}'], 0, m)
        time.sleep(1.5)  # a tick or two of the alerter, which looks again each second
        log = p.log_text()
        self.assertEqual(log.count(WARNING), 1, log)
        self.assertIn("syslog-only.yml", log)
        self.assertIn('"alerts: file: PATH"', log)
        p.signal(signal.SIGTERM)
        p.p.wait(10)
        self.assertEqual(p.p.returncode, 0, p.log_text()[-2000:])
        self.assertRegex(p.log_text(), r"alerts events=\d+ emitted=0 .*lost_sink=1")


if __name__ == "__main__":
    harness.main()
