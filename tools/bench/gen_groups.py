#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes a `groups:` section for the client-groups benchmark (issue 16): N groups over
P prefixes in all (IPv4 /8../32 and IPv6 /32../128, so the prefix table holds many
lengths), the benchmark's client 127.0.0.1 in the last group, which has a table of
its own (an action override of RULE), an allow entry and a schedule open all week,
so every query takes the slowest path a group can give it: prefix lookup, the open
schedule's verdict table, the filtered suffix walk and the group's allow-list.

usage: gen_groups.py [--groups N] [--prefixes P] [--rule ID] > groups.yml
"""
import argparse
import random


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=50)
    ap.add_argument("--prefixes", type=int, default=1000)
    ap.add_argument("--rule", default="Bench.BlockList")
    a = ap.parse_args()
    rnd = random.Random(16)
    seen = set()
    per = a.prefixes // a.groups
    out = ["groups:"]
    for g in range(a.groups):
        last = g == a.groups - 1
        pfx = ["127.0.0.0/8"] if last else []
        while len(pfx) < per:
            if rnd.random() < 0.7:
                ln = rnd.choice([8, 12, 16, 20, 22, 24, 26, 28, 30, 32])
                ip = rnd.getrandbits(32) & ~((1 << (32 - ln)) - 1) & 0xffffffff
                if ip >> 24 in (0, 127):
                    continue
                p = "%d.%d.%d.%d/%d" % (ip >> 24, ip >> 16 & 255, ip >> 8 & 255, ip & 255, ln)
            else:
                ln = rnd.choice([32, 48, 56, 64, 96, 128])
                ip = (0x20010db8 << 96 | rnd.getrandbits(96)) & ~((1 << (128 - ln)) - 1)
                words = ["%x" % (ip >> (112 - 16 * i) & 0xffff) for i in range(8)]
                p = '"%s/%d"' % (":".join(words), ln)
            if p not in seen:
                seen.add(p)
                pfx.append(p)
        out.append("  - name: g%02d" % g)
        out.append("    clients: [%s]" % ", ".join(pfx))
        if last or g % 2:
            out.append("    actions: { %s: nxdomain }" % a.rule)
        if last:
            out.append("    allow: [allowed.bench.test]")
            out.append("    schedules:")
            out.append("      - days: all")
            out.append('        hours: "00:00-24:00"')
            out.append("        tz: UTC")
            out.append("        actions: { %s: nxdomain }" % a.rule)
    print("\n".join(out))


if __name__ == "__main__":
    main()
