#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Makes docs/dashboard.png: a dnsink (build/src/dnsink, or $DNSINK) forwarding to a
knotd of the integration harness, fed for SECONDS (default 45) with a bounded mix of
blocked and forwarded queries from a few loopback clients, its dashboard shot with
headless chromium. Everything stays on 127.0.0.0/8 and stops by itself.

usage: python3 tools/dashboard_screenshot.py [OUTPUT.png] [SECONDS]"""
import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("SOURCE_ROOT", ROOT)
import harness  # noqa: E402

NAMES = ([("pool.moneropool.ru", 6), ("xmr.asiapool.io", 3), ("a.hopto.org", 2),
          ("nx.example.test", 2), ("refused.example.test", 1)] +
         [("www.example.test", 10), ("www2.example.test", 6), ("x.wild.example.test", 1)])
CLIENTS = ["127.0.0.%d" % i for i in (11, 12, 13, 14, 27)]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "docs", "dashboard.png")
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 45.0
    work = tempfile.mkdtemp(prefix="dnsink-shot-")
    knot = harness.Knot(work)
    mport = harness.free_port()
    dk = harness.Dnsink(work, [knot.port], allow=("127.0.0.0/8",), start=False,
                        extra_yaml="metrics:\n  listen: 127.0.0.1:%d\n" % mport)
    try:
        dk.start()
        socks = []
        for c in CLIENTS:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((c, 0))
            s.setblocking(False)
            socks.append(s)
        weights = [w for _, w in NAMES]
        rnd = random.Random(7)
        t0 = time.monotonic()
        qid = 0
        while time.monotonic() - t0 < seconds:
            rate = 20 + 15 * math.sin((time.monotonic() - t0) / 6.0)
            for _ in range(int(rate / 10)):
                name = rnd.choices([n for n, _ in NAMES], weights)[0]
                s = rnd.choices(socks, [5, 3, 2, 1, 1])[0]
                qid = (qid + 1) & 0xFFFF
                s.sendto(harness.build_query(name, "A", qid=qid), ("127.0.0.1", dk.port))
            for s in socks:
                try:
                    while s.recv(4096):
                        pass
                except BlockingIOError:
                    pass
            time.sleep(0.1)
        for s in socks:
            s.close()
        time.sleep(0.5)
        profile = tempfile.mkdtemp(prefix="dnsink-chromium-")
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                        "--no-first-run", "--user-data-dir=" + profile,
                        "--virtual-time-budget=4000", "--window-size=1280,1100",
                        "--screenshot=" + out, "http://127.0.0.1:%d/" % mport],
                       check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
        print("wrote", out)
    finally:
        dk.problems()
        knot.stop()


if __name__ == "__main__":
    main()
