#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The dashboard of the metrics listener: its JSON API (/api/v1/...) against the queries
the test made, the page in a real browser (Debian's chromium, headless: --dump-dom after
the page's scripts ran, and --screenshot) showing those counts, loopback-only or bearer
token access, and the Grafana dashboard of conf/ querying only metrics that dnsink's
/metrics output has."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import harness
from harness import query, wait_until
from test_metrics import curl, parse

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
GRAFANA = os.path.join(harness.SOURCE_ROOT, "conf", "grafana-dnsink.json")
METRIC = re.compile(r"\bdnsink_[a-z0-9_]+\b")


def browser(url, *what):
    """Runs headless chromium on url; returns its stdout (the DOM for --dump-dom)."""
    profile = tempfile.mkdtemp(prefix="dnsink-chromium-")
    try:
        p = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                            "--no-first-run", "--user-data-dir=" + profile,
                            "--virtual-time-budget=4000", "--window-size=1280,1100"] +
                           list(what) + [url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60, stdin=subprocess.DEVNULL)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if p.returncode != 0:
        raise AssertionError("chromium failed (%d): %s" % (p.returncode, p.stderr[-2000:]))
    return p.stdout.decode("utf-8", "replace")


def api(port, path, *extra):
    status, head, body = curl(port, "/api/v1/" + path, *extra)
    if status != 200:
        raise AssertionError("%s: HTTP %d %s" % (path, status, body))
    return json.loads(body)


# Runs inside "unshare -n": dnsink with its metrics listener on 192.0.2.1, asked from
# 192.0.2.1, first without a token, then with one. Prints "CASE PATH STATUS" lines.
NETNS_SCRIPT = r"""
import os, signal, socket, subprocess, sys, time
dnsink, work, rules = sys.argv[1:4]
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
subprocess.run(["ip", "addr", "add", "192.0.2.1/32", "dev", "lo"], check=True)

def get(port, path, auth=None):
    for _ in range(100):
        try:
            s = socket.create_connection(("192.0.2.1", port), timeout=5)
            break
        except OSError:
            time.sleep(0.05)
    req = "GET %s HTTP/1.0\r\n" % path
    if auth:
        req += "Authorization: Bearer %s\r\n" % auth
    s.sendall((req + "\r\n").encode())
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    return int(data.split(b" ", 2)[1])

for case, token in (("open", None), ("token", "netns-token-1234")):
    conf = os.path.join(work, "netns-%s.yml" % case)
    with open(conf, "w") as f:
        f.write("listen: [127.0.0.1:5399]\nupstreams: [127.0.0.1:9]\nrules: [%s/]\n"
                "alerts:\n  syslog:\n    server: udp://127.0.0.1:9\n"
                "metrics:\n  listen: 192.0.2.1:9399\n" % rules)
        if token:
            f.write("  token: %s\n" % token)
    log = open(os.path.join(work, "netns-%s.log" % case), "w")
    p = subprocess.Popen([dnsink, "-c", conf], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        if token:
            print("token / %d" % get(9399, "/"))
            print("token+bearer / %d" % get(9399, "/", token))
            print("token+bearer /api/v1/summary %d" % get(9399, "/api/v1/summary", token))
        else:
            for path in ("/", "/api/v1/summary", "/metrics"):
                print("open %s %d" % (path, get(9399, path)))
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)
"""


class Dashboard(harness.DnsinkTest):
    start_dnsink = False

    def start(self, extra=""):
        self.mport = harness.free_port()
        self.dk = self.new_dnsink(extra_yaml="metrics:\n  listen: 127.0.0.1:%d\n%s"
                                  % (self.mport, extra))

    def traffic(self):
        """7 sinkholed, 2 NXDOMAIN by rule, 3 forwarded, 1 alerted and forwarded."""
        for _ in range(7):
            self.assertEqual(query(self.dk.port, "pool.moneropool.ru", "A").rcode, "NOERROR")
        for _ in range(2):
            self.assertEqual(query(self.dk.port, "nx.example.test", "A").rcode, "NXDOMAIN")
        for _ in range(3):
            self.assertFalse(query(self.dk.port, "www.example.test", "A").timeout)
        self.assertFalse(query(self.dk.port, "a.wild.example.test", "A").timeout)

    def test_api_page_and_screenshot(self):
        self.start()
        before = api(self.mport, "summary")
        self.traffic()

        def all_seen():
            t = api(self.mport, "top?n=5")
            return t if t["events"] - 0 >= 10 else None
        top = wait_until(all_seen, 5, what="ten match events in top")
        self.assertEqual(top["blocked"][0], {"key": "pool.moneropool.ru", "count": 7, "error": 0})
        self.assertEqual(top["blocked"][1]["key"], "nx.example.test")
        self.assertEqual(top["blocked"][1]["count"], 2)
        self.assertNotIn("a.wild.example.test", [b["key"] for b in top["blocked"]])
        self.assertEqual(top["clients"], [{"key": "127.0.0.1", "count": 10, "error": 0}])
        rules = {r["key"]: r["count"] for r in top["rules"]}
        self.assertEqual(rules["DNS.Crypto.MiningPool"], 7)
        self.assertEqual(rules["IT.Test.NxDomain"], 2)
        self.assertEqual(rules["IT.Test.WildAlert"], 1)

        s = api(self.mport, "summary")
        self.assertEqual(s["queries"] - before["queries"], 13, s)
        self.assertEqual(s["blocked"] - before["blocked"], 9, s)
        self.assertEqual(s["outcomes"]["sinkholed"] - before["outcomes"]["sinkholed"], 7)
        series = api(self.mport, "series")
        self.assertEqual(series["step_s"], 10)
        self.assertEqual(sum(p["queries"] for p in series["points"]), s["queries"])
        self.assertEqual(sum(p["blocked"] for p in series["points"]), s["blocked"])
        recs = api(self.mport, "alerts?n=50")["records"]
        names = [r["dns_query"] for r in recs]
        # Dedup: one record per (rule, client, entry) in the window, newest first.
        self.assertEqual(names.count("pool.moneropool.ru"), 1, names)
        self.assertIn("a.wild.example.test", names)
        ups = api(self.mport, "upstreams")["upstreams"]
        self.assertEqual(len(ups), 1)
        self.assertEqual(ups[0]["address"], "127.0.0.1:%d" % self.knot.port)
        self.assertTrue(ups[0]["up"])
        self.assertGreaterEqual(ups[0]["answers"], 2)  # the cache takes repeats
        self.assertIsNotNone(ups[0]["srtt_ms"])

        # The page, in a real browser, after its scripts fetched the API.
        status, head, html = curl(self.mport, "/")
        self.assertEqual(status, 200)
        self.assertRegex(head, r"(?i)content-type: text/html")
        self.assertNotRegex(html, r"(?i)(src|href)=\"(https?:)?//", "no external assets")
        dom = browser("http://127.0.0.1:%d/" % self.mport, "--dump-dom")
        self.assertIn('data-loaded="1"', dom, dom[-3000:])
        self.assertIn('id="queries-hour">%d<' % s["queries"], dom)
        self.assertIn('id="blocked-hour">%d<' % s["blocked"], dom)
        share = "%.1f %%" % (100.0 * s["blocked"] / s["queries"])
        self.assertIn('id="blocked-share">%s<' % share, dom)
        self.assertRegex(dom, r'<td>pool\.moneropool\.ru</td><td class="n">7</td>')
        self.assertRegex(dom, r'<td>nx\.example\.test</td><td class="n">2</td>')
        self.assertRegex(dom, r'<td>127\.0\.0\.1</td><td class="n">10</td>')
        self.assertRegex(dom, r'<td>DNS\.Crypto\.MiningPool</td><td class="n">7</td>')
        self.assertRegex(dom, r'<td>127\.0\.0\.1:%d</td><td class="up">up</td>' % self.knot.port)
        self.assertIn("<td>a.wild.example.test</td>", dom)
        shot = os.environ.get("DK_SCREENSHOT") or os.path.join(self.dir, "dashboard.png")
        browser("http://127.0.0.1:%d/" % self.mport, "--screenshot=" + shot)
        with open(shot, "rb") as f:
            png = f.read()
        self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n")
        self.assertGreater(len(png), 20000, "a page, not a blank")

    def test_token(self):
        token = "s3cret-token-for-the-test"
        self.start('  token: "%s"\n' % token)
        for path in ("/", "/api/v1/summary", "/metrics"):
            with self.subTest(path=path):
                status, head, _ = curl(self.mport, path)
                self.assertEqual(status, 401)
                self.assertRegex(head, r"(?i)www-authenticate: bearer")
                self.assertEqual(curl(self.mport, path, "-H",
                                      "Authorization: Bearer wrong")[0], 401)
                self.assertEqual(curl(self.mport, path, "-H",
                                      "Authorization: Bearer " + token)[0], 200)
        self.assertEqual(curl(self.mport, "/api/v1/summary?token=" + token)[0], 200)
        self.assertEqual(curl(self.mport, "/api/v1/summary?token=" + token[:-1])[0], 401)
        # The page takes the token from its own address and sends it to the API.
        self.traffic()
        dom = browser("http://127.0.0.1:%d/?token=%s" % (self.mport, token), "--dump-dom")
        self.assertIn('data-loaded="1"', dom, dom[-2000:])
        self.assertRegex(dom, r'<td>pool\.moneropool\.ru</td><td class="n">7</td>')

    def test_bad_api_requests(self):
        self.start()
        self.assertEqual(curl(self.mport, "/api/v1/")[0], 404)
        self.assertEqual(curl(self.mport, "/api/v1/summary", "-X", "POST")[0], 404)
        # Out-of-range parameters are clamped, not errors.
        t = api(self.mport, "top?n=100000&minutes=0")
        self.assertEqual(t["minutes"], 1)
        self.assertEqual(len(api(self.mport, "alerts?n=abc")["records"]), 0)

    def test_non_loopback_needs_token(self):
        """A client on another address gets 403 from the dashboard unless a token is set.
        Run in a network namespace of our own, where 192.0.2.1 (TEST-NET-1) is put on
        its loopback device: the peer is not 127/8, and nothing leaves the namespace."""
        if not shutil.which("unshare") or subprocess.run(
                ["unshare", "-n", "true"], stdin=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL).returncode != 0:
            self.skipTest("no network namespace (unshare -n) here")
        p = subprocess.run(["unshare", "-n", sys.executable, "-c", NETNS_SCRIPT, harness.DNSINK,
                            self.dir, harness.REPO_RULES], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60, stdin=subprocess.DEVNULL)
        out = p.stdout.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 0, out)
        self.assertIn("open / 403\nopen /api/v1/summary 403\nopen /metrics 200\n", out)
        self.assertIn("token / 401\ntoken+bearer / 200\ntoken+bearer /api/v1/summary 200\n",
                      out)

    def test_grafana_metrics_exist(self):
        self.start()
        # Every series: a forwarded answer (latency, SRTT) and a match (rule hits).
        self.assertFalse(query(self.dk.port, "www.example.test", "A").timeout)
        query(self.dk.port, "pool.moneropool.ru", "A")
        status, _, body = curl(self.mport)
        self.assertEqual(status, 200)
        have = set(re.findall(r"^# TYPE (\S+) ", body, re.M))
        have |= {re.split(r"[{ ]", k, 1)[0] for k in parse(body)}
        with open(GRAFANA, encoding="utf-8") as f:
            dash = json.load(f)
        exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
        exprs += [v["query"] for v in dash.get("templating", {}).get("list", [])
                  if isinstance(v.get("query"), str)]
        self.assertGreaterEqual(len(exprs), 10)
        used = set()
        for e in exprs:
            used |= set(METRIC.findall(e))
        self.assertGreaterEqual(len(used), 15, used)
        missing = sorted(used - have)
        self.assertEqual(missing, [], "queried by conf/grafana-dnsink.json, not in /metrics")
        ids = [p["id"] for p in dash["panels"]]
        self.assertEqual(len(ids), len(set(ids)), "panel ids are unique")


if __name__ == "__main__":
    harness.main()
