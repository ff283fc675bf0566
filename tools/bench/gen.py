#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Generate the benchmark data: one block list and the dnsperf query files.

The list is a deterministic synthetic set of N domains (random labels under a spread of
TLDs, one to three labels above the TLD) plus every domain named by the repository's own
rules (rules/*.yml: `domains:` and `domain_files:`), so the servers load what dnsink ships.
Query files: blocked (list names and fresh subdomains of them, each line unique), forward
(unique names under fwd.bench.test, answered by the upstream's wildcard) and mix (the two
alternated) and cached (1,000 distinct names under fwd.bench.test, repeated to the file's
size; w-cached.txt asks each of them once, to warm a cache before the measured runs, which
all use those same 1,000 names). Files lat-PATH-K.txt feed the K-th fixed-rate latency run, with names of their
own so that a resolver with a cache cannot serve them from an earlier run.
"""
import argparse
import os
import random
import re
import sys

TLDS = ["com"] * 30 + ["net"] * 8 + ["org"] * 6 + [
    "ru", "info", "xyz", "io", "top", "cn", "de", "uk", "biz", "online", "site", "club",
    "br", "in", "fr", "nl", "pl", "it", "es", "jp", "tk", "ml", "ga", "cf", "work", "live"]
ALPHA = "abcdefghijklmnopqrstuvwxyz0123456789"
NAME_RE = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,62}\.)*[a-z0-9_-]{1,63}$")


def label(rng):
    # Label lengths roughly like real blocklists: mostly 5 to 14 characters.
    n = rng.randint(4, 14)
    s = "".join(rng.choice(ALPHA) for _ in range(n))
    if n > 8 and rng.random() < 0.2:
        cut = rng.randint(2, n - 3)
        s = s[:cut] + "-" + s[cut + 1:]
    return s


def synthetic(n, rng):
    seen = set()
    out = []
    while len(out) < n:
        depth = rng.choices([1, 2, 3], weights=[70, 25, 5])[0]
        name = ".".join(label(rng) for _ in range(depth)) + "." + rng.choice(TLDS)
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def plain(line):
    """Reduce a plain, hosts or adblock list line to a bare name, or None."""
    line = line.split("#", 1)[0].strip()
    if not line or line.startswith("!"):
        return None
    parts = line.split()
    if len(parts) == 2 and (parts[0] in ("0.0.0.0", "127.0.0.1", "::", "::1")):
        line = parts[1]
    elif len(parts) != 1:
        return None
    if line.startswith("||"):
        line = line[2:].rstrip("^")
    if line.startswith("*."):
        line = line[2:]
    line = line.rstrip(".").lower()
    return line if NAME_RE.match(line) else None


def rule_domains(rules_dir):
    """The names the shipped rules block, read without a YAML library (lists only)."""
    names = []
    if not os.path.isdir(rules_dir):
        return names
    for fn in sorted(os.listdir(rules_dir)):
        if not fn.endswith((".yml", ".yaml")):
            continue
        path = os.path.join(rules_dir, fn)
        section = None
        with open(path, encoding="utf-8") as f:
            for raw in f:
                if raw and not raw[0].isspace() and ":" in raw:
                    section = raw.split(":", 1)[0].strip()
                    continue
                item = raw.strip()
                if not item.startswith("- "):
                    continue
                item = item[2:].strip().strip("\"'")
                if section == "domains":
                    n = plain(item)
                    if n:
                        names.append(n)
                elif section == "domain_files":
                    lp = os.path.join(os.path.dirname(path), item)
                    if os.path.isfile(lp):
                        with open(lp, encoding="utf-8", errors="replace") as lf:
                            names.extend(n for n in map(plain, lf) if n)
    return names


def write_lines(path, lines):
    with open(path, "w", encoding="ascii") as f:
        f.write("\n".join(lines))
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True, help="directory for the generated files")
    ap.add_argument("--size", type=int, default=1000000, help="synthetic list size")
    ap.add_argument("--queries", type=int, default=1000000, help="lines per query file")
    ap.add_argument("--miss-queries", type=int,
                    help="lines of the forward and mix files (default: --queries); more than "
                    "a run sends, so that no name comes twice and a cache never hits")
    ap.add_argument("--lat-queries", type=int, default=100000, help="lines per lat- file")
    ap.add_argument("--lat-repeat", type=int, default=3, help="how many sets of lat- files")
    ap.add_argument("--rules", default="rules", help="rules folder to take real domains from")
    ap.add_argument("--hot", type=int, default=1000, help="distinct names of q-cached.txt")
    ap.add_argument("--seed", type=int, default=20261123)
    a = ap.parse_args()
    rng = random.Random(a.seed)

    real = rule_domains(a.rules)
    names = synthetic(a.size, rng)
    have = set(names)
    extra = [n for n in dict.fromkeys(real) if n not in have]
    # Everything below bench.test belongs to the upstream; the list must never cover it.
    names = [n for n in names + extra if not (n == "test" or n.endswith(".test"))]
    write_lines(os.path.join(a.out, "list.txt"), names)

    def qtype():
        return "AAAA" if rng.random() < 0.2 else "A"

    def blocked(count, tag):
        # Half the lines are list entries themselves (each used once), half are fresh
        # subdomains, which exercise the suffix walk: the case that costs the most.
        pick = rng.sample(names, min(count, len(names)))
        out = []
        for i in range(count):
            base = pick[i % len(pick)]
            if i % 2:
                out.append(f"{tag}{i}.{base} {qtype()}")
            else:
                out.append(f"{base} {qtype()}")
        return out

    def forward(count, tag):
        return [f"{tag}{i}-{label(rng)}.fwd.bench.test {qtype()}" for i in range(count)]

    def mix(count, tag):
        b, f = blocked(count // 2 + 1, tag + "b"), forward(count // 2 + 1, tag + "f")
        out = []
        for i in range(count):
            out.append(b[i // 2] if i % 2 == 0 else f[i // 2])
        return out

    write_lines(os.path.join(a.out, "q-blocked.txt"), blocked(a.queries, "q"))
    nmiss = a.miss_queries or a.queries
    write_lines(os.path.join(a.out, "q-forward.txt"), forward(nmiss, "q"))
    write_lines(os.path.join(a.out, "q-mix.txt"), mix(nmiss, "x"))
    # The hot set, from a generator of its own (the other files stay as they were): a fixed
    # qtype per name, so each line repeats one cache key.
    hrng = random.Random(a.seed + 1)
    hot = [f"c{i}-{label(hrng)}.fwd.bench.test {'AAAA' if hrng.random() < 0.2 else 'A'}"
           for i in range(a.hot)]
    write_lines(os.path.join(a.out, "w-cached.txt"), hot)

    def cached(count, start):
        return [hot[(start + i) % len(hot)] for i in range(count)]

    write_lines(os.path.join(a.out, "q-cached.txt"), cached(a.queries, 0))
    for k in range(1, a.lat_repeat + 1):
        write_lines(os.path.join(a.out, f"lat-blocked-{k}.txt"), blocked(a.lat_queries, f"l{k}-"))
        write_lines(os.path.join(a.out, f"lat-forward-{k}.txt"), forward(a.lat_queries, f"l{k}-"))
        write_lines(os.path.join(a.out, f"lat-mix-{k}.txt"), mix(a.lat_queries, f"y{k}-"))
        write_lines(os.path.join(a.out, f"lat-cached-{k}.txt"), cached(a.lat_queries, 97 * k))
    print(f"list: {len(names)} names ({len(extra)} from rules), "
          f"{a.queries} queries per file", file=sys.stderr)


if __name__ == "__main__":
    main()
