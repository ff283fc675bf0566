#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Lists on URLs (domain_urls:), downloaded by the real dnsink with libcurl
from a local HTTP server run in the test (Python's http.server on loopback):
the first download, ETag and 304 Not Modified on the next refresh, a changed
list taken, and the refusals that keep the last good copy in force: HTTP 500,
a body cut before its Content-Length, a body slower than timeout_s, a list
that shrinks by 90% (max_shrink), and a list of no entry; then a restart
with the server gone serves the copy kept in state_dir. Unicode entries in
the list block their A-label names."""
import hashlib
import http.server
import os
import threading
import time
import unittest

import harness
import promscrape
from harness import query, wait_until


def make_list(n, extra=()):
    return "".join("n%d.feed.test\n" % i for i in range(n)) + "".join(e + "\n" for e in extra)


class Feed:
    """What the server serves, and how; changed by the test while it runs."""

    def __init__(self):
        self.body = make_list(100, ["bücher.feed.test"]).encode()
        self.mode = "ok"
        self.requests = []  # (mode, If-None-Match) of each request


class Handler(http.server.BaseHTTPRequestHandler):
    feed = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        f = self.feed
        inm = self.headers.get("If-None-Match")
        f.requests.append((f.mode, inm))
        etag = '"%s"' % hashlib.sha1(f.body).hexdigest()[:16]
        if f.mode == "500":
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if f.mode == "ok" and inm == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        body = f.body
        if f.mode == "shrunk":
            body = make_list(10).encode()
        if f.mode == "empty":
            body = b"<html><body>maintenance</body></html>\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if f.mode == "ok":
            self.send_header("ETag", etag)
        self.end_headers()
        if f.mode == "truncated":
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if f.mode == "slow":
            self.wfile.write(body[:10])
            self.wfile.flush()
            time.sleep(4)
        self.wfile.write(body)


class ListUrls(harness.DnsinkTest):
    start_dnsink = False

    def setUp(self):
        super().setUp()
        self.feed = Feed()
        handler = type("H", (Handler,), {"feed": self.feed})
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.http_thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.http_thread.start()
        self._stoppers.append(self.stop_http)
        self.url = "http://127.0.0.1:%d/list.txt" % self.httpd.server_address[1]
        self.rule_dir = os.path.join(self.dir, "urlrule")
        os.makedirs(self.rule_dir)
        with open(os.path.join(self.rule_dir, "urls.yml"), "w") as f:
            f.write("id: IT.List.Url\nname: a list on a URL\nseverity: medium\n"
                    "action: nxdomain\ndomain_urls:\n"
                    "  - { url: \"%s\", refresh_s: 1, timeout_s: 2 }\n" % self.url)
        self.state = os.path.join(self.dir, "state")

    def stop_http(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def start(self):
        self.mport = harness.free_port()
        return self.new_dnsink(extra_rule_dirs=[self.rule_dir + "/"],
                               extra_yaml="state_dir: %s\nmetrics:\n  listen: 127.0.0.1:%d\n"
                               % (self.state, self.mport))

    def blocked(self, d, name):
        a = query(d.port, name, "A", edns=1232)
        return a.rcode == "NXDOMAIN" and 15 in a.ede

    def count(self, result):
        m = promscrape.scrape(self.mport)
        return m.get('dnsink_list_url_downloads_total{url="%s",result="%s"}'
                     % (self.url, result), 0)

    def refused_while_blocked(self, d, mode, result):
        self.feed.mode = mode
        before = self.count(result)
        wait_until(lambda: self.count(result) > before, 15, what="a '%s' download" % result)
        self.assertTrue(self.blocked(d, "n50.feed.test"), mode)
        self.assertIn("download refused (%s)" % result, d.proc.log_text())

    def test_download_refresh_refusals_restart(self):
        d = self.start()
        wait_until(lambda: self.blocked(d, "n5.feed.test"), 10, what="the list downloaded")
        self.assertTrue(self.blocked(d, "xn--bcher-kva.feed.test"))
        self.assertFalse(self.blocked(d, "n100.feed.test"))
        m = promscrape.scrape(self.mport)
        self.assertEqual(m['dnsink_list_url_entries{url="%s"}' % self.url], 101)
        self.assertGreaterEqual(m['dnsink_list_url_hits_total{url="%s"}' % self.url], 2)
        # The next refresh is conditional and the answer 304.
        wait_until(lambda: self.count("not_modified") >= 1, 10, what="a 304")
        self.assertTrue(any(inm for (_m, inm) in self.feed.requests), self.feed.requests)
        # A changed list is taken.
        self.feed.body = make_list(101, ["bücher.feed.test"]).encode()
        wait_until(lambda: self.blocked(d, "n100.feed.test"), 10, what="the new entry")
        # What must not replace the last good copy:
        self.refused_while_blocked(d, "500", "http")
        self.refused_while_blocked(d, "truncated", "cut")
        self.refused_while_blocked(d, "slow", "timeout")
        self.refused_while_blocked(d, "shrunk", "shrink")
        self.refused_while_blocked(d, "empty", "empty")
        self.assertIn("(max_shrink 50%)", d.proc.log_text())
        # The server gone, a restart serves the copy in state_dir.
        self.stop_http()
        self.assertEqual(d.proc.stop(), 0)
        d2 = self.start()
        self.assertTrue(self.blocked(d2, "n100.feed.test"))
        self.assertTrue(self.blocked(d2, "xn--bcher-kva.feed.test"))
        wait_until(lambda: self.count("connect") >= 1, 10, what="a failed download")
        self.assertTrue(self.blocked(d2, "n100.feed.test"))
        rc, out, err = harness.run_dnsink("check", "-c", d2.conf)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("last good copy 102 entries", out)
        self.assertRegex(out, r"last download \S+Z: connect, last good 20\d\d-\S+Z; ok=0 "
                              r"not_modified=0 connect=[1-9]")

    def test_first_start_without_copy_is_loud(self):
        self.feed.mode = "500"
        d = self.start()
        wait_until(lambda: self.count("http") >= 1, 10, what="the failed download")
        self.assertIn("has no copy in state_dir yet", d.proc.log_text())
        self.assertFalse(self.blocked(d, "n5.feed.test"))
        # The feed comes back: its entries apply.
        self.feed.mode = "ok"
        wait_until(lambda: self.blocked(d, "n5.feed.test"), 70, what="the list downloaded")


if __name__ == "__main__":
    unittest.main()
