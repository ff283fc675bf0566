# SPDX-License-Identifier: MIT
"""Reads dnsink's Prometheus endpoint (metrics.listen) for the load scenarios:
one scrape, parsed into {series: value}. Standard library only."""
import re
import urllib.request

LINE = re.compile(r'^([a-z_]+(?:\{[^}]*\})?) (\S+)$')


def scrape(port, timeout=5.0):
    """{series: value} of one scrape of http://127.0.0.1:port/metrics."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=timeout) as r:
        body = r.read().decode("utf-8")
    out = {}
    for ln in body.splitlines():
        if ln.startswith("#") or not ln.strip():
            continue
        m = LINE.match(ln)
        if not m:
            raise AssertionError("not an exposition line: %r" % ln)
        out[m.group(1)] = float(m.group(2))
    return out


def outcome(tr, name):
    """The series name of dnsink_queries_total for a transport and outcome."""
    return 'dnsink_queries_total{transport="%s",outcome="%s"}' % (tr, name)


def metrics_yaml(port):
    """The config lines that turn the endpoint on at 127.0.0.1:port."""
    return "metrics:\n  listen: 127.0.0.1:%d\n" % port
