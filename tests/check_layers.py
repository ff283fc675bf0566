#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The shape of the source tree, checked (a meson test, suite 'unit').

1. Includes: core/ and include/dnsink/ include only dnsink/ headers, core's
   own and system headers, never libuv; cli/ never includes daemon/; the
   forwarder (upstream*.c) names no client, policy, alert or rule-stats
   header; the feed threads (xfr.c, fetch.c) name no client, worker or
   query header.
2. Symbols: the graph "object A uses a symbol object B defines", read with
   nm from the static libraries given as arguments, has no cycle. A cycle
   would be two modules reaching into each other, the knot this tree had
   before the daemon was split into rooms.

usage: check_layers.py SOURCE_ROOT LIB.a...
"""
import os
import re
import subprocess
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)

# The forwarder knows nothing of clients, policy, alerts or rule counters.
UPSTREAM_FORBIDDEN = {"client.h", "query.h", "udp.h", "tcp.h", "stats.h", "snapshot.h",
                      "alert_sink.h", "dnsink/policy.h", "dnsink/alert.h", "dnsink/rules.h",
                      "rules.h", "worker.h"}


# The feed threads (zone transfers, list downloads) only write copies and say
# "reload": they never touch a client, a worker or the query path.
FEED_FORBIDDEN = {"client.h", "query.h", "udp.h", "tcp.h", "worker.h", "upstream.h",
                  "upstream_tcp.h", "stats.h"}


def includes(path):
    with open(path, encoding="utf-8") as f:
        return INCLUDE.findall(f.read())


def check_includes(root):
    problems = []
    src = os.path.join(root, "src")
    for layer in ("core", "cli", "daemon"):
        d = os.path.join(src, layer)
        for name in sorted(os.listdir(d)):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(d, name)
            rel = os.path.relpath(path, root)
            for kind, inc in includes(path):
                if kind == "<":
                    if layer == "core" and (inc == "uv.h" or inc.startswith("uv/")):
                        problems.append(f"{rel}: core includes libuv <{inc}>")
                    continue
                if layer in ("core", "cli"):
                    local = os.path.exists(os.path.join(d, inc))
                    # protoc-c's output, generated from a .proto beside it
                    if inc.endswith(".pb-c.h"):
                        local = os.path.exists(os.path.join(d, inc[:-len(".pb-c.h")] + ".proto"))
                    if not (inc.startswith("dnsink/") or local or inc == "dk_build.h"):
                        problems.append(f"{rel}: {layer} includes \"{inc}\"")
                if name.startswith("upstream") and inc in UPSTREAM_FORBIDDEN:
                    problems.append(f"{rel}: the forwarder includes \"{inc}\"")
                if name.startswith(("xfr", "fetch")) and inc in FEED_FORBIDDEN:
                    problems.append(f"{rel}: a feed thread includes \"{inc}\"")
    inc_dir = os.path.join(root, "include", "dnsink")
    for name in sorted(os.listdir(inc_dir)):
        path = os.path.join(inc_dir, name)
        for kind, inc in includes(path):
            if kind == '"' and not inc.startswith("dnsink/"):
                problems.append(f"include/dnsink/{name}: includes \"{inc}\"")
            if kind == "<" and inc == "uv.h":
                problems.append(f"include/dnsink/{name}: includes libuv")
    return problems


def short(obj):
    """libdnsink.a.p/daemon_udp.c.o -> daemon/udp.c"""
    name = obj.split("/")[-1]
    if name.endswith(".o"):
        name = name[:-2]
    for layer in ("core_", "daemon_", "cli_"):
        if name.startswith(layer):
            return layer[:-1] + "/" + name[len(layer):]
    return name


def symbol_graph(libs):
    """Per object: the symbols it defines and those it uses."""
    defs, uses = {}, {}
    for lib in libs:
        out = subprocess.run(["nm", "-A", "--defined-only", "-g", lib], check=True,
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            # lib.a:obj.o:0000 T name
            parts = line.rsplit(" ", 2)
            obj = short(parts[0].split(":")[1])
            defs.setdefault(obj, set()).add(parts[2])
        out = subprocess.run(["nm", "-A", "--undefined-only", lib], check=True,
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            head, name = line.rsplit(" ", 1)
            obj = short(head.split(":")[1])
            uses.setdefault(obj, set()).add(name)
    owner = {s: o for o, ss in defs.items() for s in ss}
    edges = {o: set() for o in set(defs) | set(uses)}
    for o, ss in uses.items():
        for s in ss:
            t = owner.get(s)
            if t and t != o:
                edges[o].add(t)
    return edges


def cycles(edges):
    """Strongly connected components with more than one object (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    root, libs = sys.argv[1], sys.argv[2:]
    problems = check_includes(root)
    edges = symbol_graph(libs)
    for comp in cycles(edges):
        problems.append("objects that use each other's symbols (a cycle): " + " ".join(comp))
    for o in sorted(edges):
        print(f"{o}: {' '.join(sorted(edges[o])) or '-'}")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    print(f"check_layers: {len(edges)} objects, no cycle, includes in order")
    return 0


if __name__ == "__main__":
    sys.exit(main())
