#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The offline subcommands as an operator runs them: dnsink check, match, test,
--version, with good and broken configs and rule files."""
import os
import re

import harness
from harness import run_dnsink


class Cli(harness.DnsinkTest):
    start_dnsink = False

    def setUp(self):
        super().setUp()
        self.cfg = self.new_dnsink(start=False)

    def test_check_ok(self):
        rc, out, err = run_dnsink("check", "-c", self.cfg.conf)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("127.0.0.1:%d" % self.cfg.port, out)
        self.assertIn("127.0.0.1:%d" % self.knot.port, out)
        _, meta = harness.repo_rule_with("moneropool.ru")
        self.assertIn(meta["id"], out)
        self.assertIn("IT.Test.NxDomain", out)

    def test_check_bad_config(self):
        with open(self.cfg.conf, "a") as f:
            f.write("no_such_key: 1\n")
        with open(self.cfg.conf) as f:
            line = len(f.read().splitlines())
        rc, out, err = run_dnsink("check", "-c", self.cfg.conf)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("dnsink.yml:%d:" % line, out + err)

    def test_check_bad_address(self):
        text = open(self.cfg.conf).read().replace("listen:\n  - 127.0.0.1:%d" % self.cfg.port,
                                                  "listen:\n  - 127.0.0.300:53")
        with open(self.cfg.conf, "w") as f:
            f.write(text)
        rc, out, err = run_dnsink("check", "-c", self.cfg.conf)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("dnsink.yml:2:", out + err)

    def test_check_sigma_action_for_no_rule(self):
        """A sigma.actions key that is neither a level nor a loaded Sigma rule's id
        is an error at its line (a typo would otherwise do nothing)."""
        with open(os.path.join(self.cfg.rules_dir, "it-sigma.yml"), "w") as f:
            f.write("title: IT Sigma\nid: 0c0c0c0c-0000-4000-8000-000000000001\n"
                    "logsource: {category: dns}\n"
                    "detection:\n  sel:\n    query|endswith: '.sigma.example.test'\n"
                    "  condition: sel\nlevel: high\n")
        with open(self.cfg.conf, "a") as f:
            f.write("sigma:\n  actions:\n    high: nxdomain\n"
                    "    0c0c0c0c-0000-4000-8000-000000000001: sinkhole\n")
        rc, out, err = run_dnsink("check", "-c", self.cfg.conf)
        self.assertEqual(rc, 0, out + err)
        with open(self.cfg.conf, "a") as f:
            f.write("    0c0c0c0c-0000-4000-8000-00000000000X: sinkhole\n")
        with open(self.cfg.conf) as f:
            line = len(f.read().splitlines())
        rc, out, err = run_dnsink("check", "-c", self.cfg.conf)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("dnsink.yml:%d: sigma.actions: '0c0c0c0c-0000-4000-8000-00000000000X'"
                      % line, out + err)

    def test_check_broken_rule(self):
        from test_signals import BROKEN
        with open(os.path.join(self.cfg.rules_dir, "it-broken.yml"), "w") as f:
            f.write(BROKEN)
        rc, out, err = run_dnsink("check", "-c", self.cfg.conf)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("it-broken.yml:4:", out + err)

    def test_match(self):
        _, meta = harness.repo_rule_with("moneropool.ru")
        names = ["moneropool.ru", "abc.abc.moneropool.ru", "MoneroPool.RU", "moneropool.ru.",
                 "notmoneropool.ru", "nx.example.test", "x.hopto.org", "hopto.org"]
        rc, out, err = run_dnsink("match", "-c", self.cfg.conf, *names)
        self.assertEqual(rc, 0, out + err)
        lines = [ln for ln in out.splitlines() if ln.strip()]
        self.assertEqual(len(lines), len(names), out)
        for name, line in zip(names[:4], lines):
            self.assertTrue(line.lower().startswith(name.lower().rstrip(".")), line)
            self.assertIn(meta["id"], line)
            self.assertIn("sinkhole", line)
            self.assertIn("moneropool.ru", line)
            self.assertNotIn("no match", line)
        self.assertIn("no match", lines[4])
        self.assertNotIn(meta["id"], lines[4])
        self.assertIn("IT.Test.NxDomain", lines[5])
        self.assertIn("nxdomain", lines[5])
        _, dyn = harness.repo_rule_with("*.hopto.org")
        self.assertIn(dyn["id"], lines[6])
        self.assertIn("alert", lines[6])
        self.assertIn("no match", lines[7])

    def test_rule_tests_pass(self):
        rc, out, err = run_dnsink("test", "rules/")
        last = (out.strip().splitlines() or [""])[-1]
        m = re.fullmatch(r"(\d+) passed, (\d+) failed", last)
        self.assertTrue(m, out + err)
        self.assertGreaterEqual(int(m.group(1)), 14, last)
        self.assertEqual(int(m.group(2)), 0, out)
        self.assertEqual(rc, 0, out + err)

    def test_rule_test_failure_reported(self):
        path = os.path.join(self.dir, "failing.yml")
        with open(path, "w") as f:
            f.write("""\
id: IT.Test.Failing
name: A rule whose second test is wrong
severity: low
action: nxdomain
domains:
  - bad.example.test
tests:
  - name: Subdomain matches
    expect: true
    log: { query: "x.bad.example.test" }
  - name: Wrong expectation
    expect: true
    log: { query: "notbad.example.test" }
""")
        rc, out, err = run_dnsink("test", path)
        self.assertEqual(rc, 1, out + err)
        self.assertEqual(out.strip().splitlines()[-1], "1 passed, 1 failed", out)
        self.assertIn("Wrong expectation", out + err)

    def test_version(self):
        rc, out, _ = run_dnsink("--version")
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"^dnsink \d+\.\d+\.\d+")


if __name__ == "__main__":
    harness.main()
