#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The run flags: --listen, --upstream and --workers override the config, and
--blocklist FILE loads a plain list as a silent NXDOMAIN rule next to the
configured rules, so a benchmark or a quick trial needs no rule file."""
import os

import harness
from harness import query

LIST = """\
# a plain list, as blockers publish them
ads.blocked.test
Tracker.Blocked.TEST.
*.wild.example.test
0.0.0.0 hosts-style.blocked.test
not a domain line
"""


class CommandLine(harness.DnsinkTest):
    start_dnsink = False

    def start(self, *args, conf_text=None):
        """Starts dnsink on a config whose listener and upstream are dead, so
        only the flags can make it answer and forward."""
        self.port = harness.free_port()
        conf = os.path.join(self.dir, "dnsink.yml")
        with open(conf, "w") as f:
            f.write(conf_text or ("listen:\n  - 127.0.0.1:%d\nupstreams:\n  - 127.0.0.1:9\n"
                                  "allow_clients:\n  - 127.0.0.1/32\n"
                                  "rules:\n  - %s/\nalerts:\n  file: %s/alerts.jsonl\n"
                                  % (harness.free_port(), harness.REPO_RULES, self.dir)))
        self.proc = harness.Proc("dnsink", [harness.DNSINK, "-c", conf,
                                            "--listen", "127.0.0.1:%d" % self.port] + list(args),
                                 os.path.join(self.dir, "dnsink.log"), cwd=harness.SOURCE_ROOT)
        self.addCleanup(self.stop)

        def ready():
            if not self.proc.alive():
                raise AssertionError("dnsink exited %s:\n%s" % (self.proc.p.returncode,
                                                                  self.proc.log_text()))
            return harness.udp_ask(self.port, harness.build_query("moneropool.ru", qid=7),
                                   0.3) is not None
        harness.wait_until(ready, harness.START_TIMEOUT, what="dnsink on --listen port")

    def stop(self):
        rc = self.proc.stop()
        log = self.proc.log_text()
        self.assertEqual(harness.sanitizer_problems(log, rc), [], log[-3000:])

    def write_list(self):
        path = os.path.join(self.dir, "list.txt")
        with open(path, "w") as f:
            f.write(LIST)
        return path

    def test_options_of_another_command_refused(self):
        """An option another command owns is refused with exit 2, not ignored."""
        for args, opt, where in ((["test", "--strict"], "strict", "test"),
                                 (["check", "--type", "TXT"], "type", "check"),
                                 (["check", "--listen", "127.0.0.1:1"], "listen", "check"),
                                 (["match", "--workers", "2", "x.test"], "workers", "match"),
                                 (["--client", "10.0.0.1"], "client", "the resolver")):
            rc, out, err = harness.run_dnsink(*args)
            self.assertEqual(rc, 2, (args, out, err))
            self.assertIn("--%s is not an option of %s" % (opt, where), err)
        rc, out, err = harness.run_dnsink("match", "--type", "TXT", "--client", "10.0.0.1",
                                          "moneropool.ru")
        self.assertEqual(rc, 0, out + err)

    def test_blocklist_is_silent_nxdomain(self):
        self.start("--upstream", "127.0.0.1:%d" % self.knot.port, "--workers", "1",
                   "--blocklist", self.write_list())
        for name in ("ads.blocked.test", "x.y.ads.blocked.test", "TRACKER.blocked.test",
                     "a.wild.example.test", "hosts-style.blocked.test"):
            a = query(self.port, name, "A")
            self.assertEqual(a.rcode, "NXDOMAIN", name + "\n" + a.text)
            self.assertEqual(a.an, [], name)
        # "*.name" does not cover the apex, and unlisted names are forwarded
        # to the --upstream (knotd), not to the dead upstream of the config.
        a = query(self.port, "wild.example.test", "A")
        self.assertNotEqual(a.rcode, "NXDOMAIN", a.text)
        a = query(self.port, "www.example.test", "A")
        self.assertEqual(a.rcode, "NOERROR", a.text)
        self.assertEqual(a.rdata("A"), [("A", "192.0.2.10")])
        # The configured rules still apply, and win over the list.
        a = query(self.port, "moneropool.ru", "A")
        self.assertEqual(a.rdata("A"), [("A", "0.0.0.0")])
        # Silent: the list's hits write no alert, the rule file's hit does.
        harness.wait_until(lambda: os.path.exists(os.path.join(self.dir, "alerts.jsonl")),
                           5, what="the alert of the rule-file hit")
        with open(os.path.join(self.dir, "alerts.jsonl")) as f:
            text = f.read()
        self.assertIn("moneropool.ru", text)
        self.assertNotIn("blocked.test", text)
        self.assertNotIn("dnsink.blocklist", text)
        log = self.proc.log_text()
        self.assertIn("1 invalid lines", log)
        self.assertIn("1 workers", log)

    def test_blocklist_survives_reload(self):
        path = self.write_list()
        self.start("--upstream", "127.0.0.1:%d" % self.knot.port, "--blocklist", path)
        before = query(self.port, "new.blocked.test", "A").rcode
        self.assertNotEqual(before, "NOERROR")  # not in the zone, and not blocked yet
        with open(path, "a") as f:
            f.write("new.blocked.test\n")
        self.proc.signal(harness.signal.SIGHUP)
        harness.wait_until(lambda: self.proc.log_text().count("loaded ") >= 2, 5,
                           what="the reload")
        a = query(self.port, "new.blocked.test", "A")
        self.assertEqual(a.rcode, "NXDOMAIN", a.text)
        self.assertEqual(query(self.port, "ads.blocked.test", "A").rcode, "NXDOMAIN")

    def test_missing_blocklist_is_an_error(self):
        rc, out, err = harness.run_dnsink(
            "-c", os.path.join(harness.SOURCE_ROOT, "conf", "dnsink.yml"),
            "--listen", "127.0.0.1:%d" % harness.free_port(), "--upstream", "127.0.0.1:9",
            "--blocklist", os.path.join(self.dir, "nope.txt"))
        self.assertEqual(rc, 1, out + err)
        self.assertIn("nope.txt: cannot read list", out + err)

    def test_reserved_rule_id(self):
        rules = os.path.join(self.dir, "rules")
        os.makedirs(rules)
        with open(os.path.join(rules, "r.yml"), "w") as f:
            f.write("id: dnsink.blocklist\nname: n\nseverity: low\naction: nxdomain\n"
                    "enabled: false\ndomains: [a.test]\n")
        conf = os.path.join(self.dir, "c.yml")
        with open(conf, "w") as f:
            f.write("listen: [127.0.0.1:%d]\nupstreams: [127.0.0.1:9]\nrules: [%s/]\n"
                    % (harness.free_port(), rules))
        rc, out, err = harness.run_dnsink("-c", conf, "--blocklist", self.write_list())
        self.assertEqual(rc, 1, out + err)
        self.assertIn("r.yml:1: rule id 'dnsink.blocklist' is reserved", out + err)


if __name__ == "__main__":
    harness.main()
