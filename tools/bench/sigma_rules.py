#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the benchmark's 60 Sigma rules into a folder (tools/bench/run.sh --sigma).

Shaped like SigmaHQ's DNS rules, and written for the benchmark (no SigmaHQ text is copied):
24 suffix lists and 10 exact-name lists (the suffix set), 12 substring/prefix/unaligned-suffix
lists (Vectorscan literals), 6 regexes (4 that Vectorscan takes, 2 look-around ones only PCRE2
takes), 4 record-type rules, 2 answer-side rules (private answers, TXT strings) and 2
behavioural ones (requests per client on every query, and TXT/NULL lookups per client, or with
--distinct distinct names per registered domain on every query), with browser
filters on Image in a few, as SigmaHQ writes them. None matches the benchmark's names (random
labels under the synthetic list and fwd.bench.test), so the rows measure evaluating the rules,
not writing alerts."""
import argparse
import os

FILTERS = """    filter_optional_chrome:
        Image|endswith: '\\\\chrome.exe'
    filter_optional_firefox:
        Image|endswith: '\\\\firefox.exe'
"""


def rule(i, title, detection, condition, level="medium", extra=""):
    return ("title: %s\nid: be0c0000-0000-4000-8000-%012d\nstatus: test\n"
            "tags: [attack.command-and-control, attack.t1071.004]\n"
            "logsource: {category: dns}\ndetection:\n%s%s    condition: %s\nlevel: %s\n%s"
            % (title, i, detection, "", condition, level, extra))


def values(key, vals):
    return "        %s:\n%s" % (key, "".join("            - '%s'\n" % v for v in vals))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--distinct", action="store_true",
                    help="the second behavioural rule counts distinct names per registered "
                         "domain on every query (SigmaHQ's 'Possible DNS Tunneling'), instead "
                         "of TXT/NULL lookups per client")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rules = []
    n = 0
    for k in range(24):
        n += 1
        sfx = [".tun%d-%d.example" % (k, j) for j in range(12)]
        det = "    selection:\n" + values("query|endswith", sfx)
        if k % 6 == 0:
            det += FILTERS
            rules.append(rule(n, "bench suffixes %d" % k, det,
                              "selection and not 1 of filter_optional_*"))
        else:
            rules.append(rule(n, "bench suffixes %d" % k, det, "selection"))
    for k in range(10):
        n += 1
        names = ["c2-%d-%d.exact.example" % (k, j) for j in range(8)]
        rules.append(rule(n, "bench exact names %d" % k,
                          "    selection:\n" + values("QueryName", names), "selection", "high"))
    for k in range(12):
        n += 1
        kind = ("query|contains", "query|startswith", "query|endswith")[k % 3]
        lits = ["xmr%d-pool%d" % (k, j) if k % 3 == 0 else
                "beacon%d-%d." % (k, j) if k % 3 == 1 else
                "minerpool%d-%d.org" % (k, j) for j in range(10)]
        rules.append(rule(n, "bench literals %d" % k, "    selection:\n" + values(kind, lits),
                          "selection"))
    regexes = [r"^[0-9a-f]{32,}\.", r"(\.[a-z0-9]{40,}){2}", r"^xn--[a-z0-9]+-q7[0-9]{3}\.",
               r"([0-9]{1,3}-){3}[0-9]{1,3}\.ipdash\.example$"]
    for k, rx in enumerate(regexes):
        n += 1
        rules.append(rule(n, "bench regex %d" % k, "    selection:\n        query|re: '%s'\n" % rx,
                          "selection"))
    for k, rx in enumerate([r"^(?=[a-z]*[0-9]{6})[a-z0-9]{50,}\.", r"(\d)\1{7}\.beacon"]):
        n += 1
        rules.append(rule(n, "bench pcre %d" % k, "    selection:\n        query|re: '%s'\n" % rx,
                          "selection"))
    for k, t in enumerate(["TXT", "NULL", "AXFR", "ANY"]):
        n += 1
        rules.append(rule(n, "bench type %s" % t,
                          "    selection:\n        record_type: '%s'\n"
                          "        query|endswith: '.tunnel-type%d.example'\n" % (t, k),
                          "selection"))
    n += 1
    rules.append(rule(n, "bench rebinding", "    selection:\n"
                      + values("answers|cidr", ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"])
                      + "    filter:\n        query|endswith: '.internal.example'\n",
                      "selection and not filter", "high"))
    n += 1
    rules.append(rule(n, "bench txt answer", "    selection:\n        record_type: TXT\n"
                      + values("answer|contains", ["powershell", "invoke-expression"]),
                      "selection", "high"))
    n += 1
    rules.append(rule(n, "bench request rate", "    selection:\n        query: '*'\n"
                      "    timeframe: 1m\n", "selection | count() by src_ip > 100000000"))
    n += 1
    if a.distinct:
        rules.append(rule(n, "bench distinct names per domain",
                          "    selection:\n        query: '*'\n    timeframe: 1m\n",
                          "selection | count(query) by registered_domain > 100000000"))
    else:
        rules.append(rule(n, "bench TXT and NULL rate",
                          "    selection:\n        record_type: [TXT, 'NULL']\n    timeframe: 1m\n",
                          "selection | count() by src_ip > 50"))
    assert len(rules) == 60, len(rules)
    for i, text in enumerate(rules):
        with open(os.path.join(a.out, "bench_%02d.yml" % i), "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
