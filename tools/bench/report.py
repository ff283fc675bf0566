#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turn dnsperf output and /proc samples into result records, and records into the table.

record: read one throughput run (dnsperf summary) and the fixed-rate runs (dnsperf -v, one
line per answer), check every answer of the latter against the rcode its name must get
(names under fwd.bench.test: NOERROR; the rest: NXDOMAIN), and append one JSON line.
table: print the Markdown table of every record in a results file (run.sh's and those the
parts' scripts wrote: tls.sh, hunt.sh, alert.sh, load10m.sh), then the ratios of each dnsink
row to both echo floors and to each peer on its path, p99 against the floors, and one
worker against two.
merge: append a part's records to the results file, marked with their source.
ab: for an A/B run (run.sh --ab), the median of each of dnsink-A and dnsink-B per path and
the ratios B/A, as a table; the summary records are appended to the results file.
"""
import argparse
import json
import re
import sys

FWD_SUFFIX = ".fwd.bench.test"


def parse_summary(text):
    """The figures dnsperf prints at the end of a run."""
    r = {}

    def num(pattern, cast=float):
        m = re.search(pattern, text)
        return cast(m.group(1)) if m else None

    r["sent"] = num(r"Queries sent:\s+(\d+)", int) or 0
    r["completed"] = num(r"Queries completed:\s+(\d+)", int) or 0
    r["lost"] = num(r"Queries lost:\s+(\d+)", int) or 0
    r["qps"] = num(r"Queries per second:\s+([\d.]+)") or 0.0
    r["runtime"] = num(r"Run time \(s\):\s+([\d.]+)") or 0.0
    codes = {}
    m = re.search(r"Response codes:\s+(.*)", text)
    if m:
        for name, count in re.findall(r"([A-Z]+) (\d+) \(", m.group(1)):
            codes[name] = int(count)
    r["rcodes"] = codes
    return r


def expected(name):
    n = name.rstrip(".").lower()
    return "NOERROR" if n.endswith(FWD_SUFFIX) else "NXDOMAIN"


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def parse_verbose(text, any_rcode):
    """Latencies and correctness of a dnsperf -v run ('> RCODE NAME TYPE SECONDS' lines)."""
    lat = []
    wrong = 0
    for line in text.splitlines():
        if not line.startswith("> "):
            continue
        parts = line.split()
        if len(parts) < 5:
            continue
        rcode, name, sec = parts[1], parts[2], parts[-1]
        try:
            lat.append(float(sec))
        except ValueError:
            continue
        if not any_rcode and rcode != expected(name):
            wrong += 1
    lat.sort()
    s = parse_summary(text)
    return {
        "answers": len(lat), "sent": s["sent"], "lost": s["lost"], "wrong": wrong,
        "qps": s["qps"], "p50_ms": (percentile(lat, 50) or 0) * 1e3,
        "p99_ms": (percentile(lat, 99) or 0) * 1e3,
        "max_ms": (lat[-1] if lat else 0) * 1e3,
    }


def correct_share(path, s, any_rcode):
    """Share of the answers that carry the rcode they must. Queries without an answer are
    not in it: at the end of a full-speed run dnsperf counts those still in flight as lost,
    which says more about the server's queue than about its answers."""
    if not s["completed"]:
        return 0.0
    if any_rcode:
        return 1.0
    nx, ok = s["rcodes"].get("NXDOMAIN", 0), s["rcodes"].get("NOERROR", 0)
    if path == "blocked":
        good = nx
    elif path in ("forward", "cached"):
        good = ok
    else:
        # The mix file alternates blocked and forwarded names, so half of what was sent
        # must be each; the summary does not say which name got which code, hence min().
        half = s["completed"] / 2.0
        good = min(nx, half) + min(ok, half)
    return good / s["completed"]


def cmd_record(a):
    with open(a.perf, encoding="utf-8", errors="replace") as f:
        s = parse_summary(f.read())
    lat = {}
    runs = []
    for i, path in enumerate(a.lat or []):
        with open(path, encoding="utf-8", errors="replace") as f:
            runs.append(parse_verbose(f.read(), a.any_rcode))
        if a.others and i < len(a.others):
            # Ticks of the server's CPU that other programs (or the hypervisor: steal)
            # used, over all ticks of that CPU during the run.
            busy, total = (int(x) for x in a.others[i].split(":"))
            runs[-1]["cpu_others"] = max(0, busy) / total if total > 0 else None
        if a.gen_others and i < len(a.gen_others):
            # The same for the generator's CPU, less dnsperf, knotd and rsyslogd (with
            # interrupt time in, so some of our own loopback work may show there).
            busy, total = (int(x) for x in a.gen_others[i].split(":"))
            runs[-1]["gen_others"] = max(0, busy) / total if total > 0 else None
    if runs:
        # On a shared machine one run can catch another program's burst: report the
        # median run's percentiles, and every loss and wrong answer of all runs.
        def med(key):
            return sorted(r[key] for r in runs)[len(runs) // 2]
        lat = {"runs": runs, "p50_ms": med("p50_ms"), "p99_ms": med("p99_ms"),
               "p99_best_ms": min(r["p99_ms"] for r in runs),
               "p99_worst_ms": max(r["p99_ms"] for r in runs),
               "cpu_others": med("cpu_others") if all(
                   r.get("cpu_others") is not None for r in runs) else None,
               "gen_others": med("gen_others") if all(
                   r.get("gen_others") is not None for r in runs) else None,
               "lost": sum(r["lost"] for r in runs), "wrong": sum(r["wrong"] for r in runs),
               "sent": sum(r["sent"] for r in runs)}
    ticks = a.ticks1 - a.ticks0
    rec = {
        "server": a.server, "path": a.path, "qps": s["qps"], "sent": s["sent"],
        "completed": s["completed"], "lost": s["lost"], "rcodes": s["rcodes"],
        "cpu_ticks": ticks, "clk_tck": a.clk_tck,
        "cpu_us_per_q": (ticks / a.clk_tck * 1e6 / s["completed"]) if s["completed"] else None,
        "cpu_util": (ticks / a.clk_tck / s["runtime"]) if s["runtime"] else None,
        "correct": correct_share(a.path, s, a.any_rcode), "any_rcode": a.any_rcode,
        "rss_mib": a.rss_kib / 1024.0, "load_s": a.load_s, "lat": lat,
    }
    if a.threads and s["completed"]:
        # The process's CPU by thread over the full-speed run (dnsink): worker threads,
        # main thread, the rest; per answered query, as cpu_us_per_q.
        w, m, o = (int(x) for x in a.threads.split(":"))
        per = 1e6 / a.clk_tck / s["completed"]
        rec["worker_cpu_us_per_q"] = w * per
        rec["main_cpu_us_per_q"] = m * per
        rec["rest_cpu_us_per_q"] = o * per
    if a.cpus:
        rec["cpus"] = a.cpus
    if a.cache_hits is not None:
        # dnsink's own cache counters over the run (metrics endpoint, scraped around it).
        rec["cache_hits"], rec["cache_misses"] = a.cache_hits, a.cache_misses
        n = a.cache_hits + (a.cache_misses or 0)
        rec["cache_hit_rate"] = a.cache_hits / n if n else None
    if a.round is not None:
        rec["round"] = a.round
    if a.binary:
        rec["binary"] = a.binary
    for arg, key in ((a.others_run, "cpu_others"), (a.gen_others_run, "gen_others")):
        if arg:
            busy, total = (int(x) for x in arg.split(":"))
            rec[key] = max(0, busy) / total if total > 0 else None
    with open(a.results, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")


def fmt(v, spec, none="-"):
    return none if v is None else format(v, spec)


def read_runs(path):
    """The per-run records of a results file (not the summaries an A/B run appends)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                if "kind" not in r:
                    rows.append(r)
    return rows


def median(values):
    v = sorted(values)
    if not v:
        return None
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2.0


def pct(v):
    return "-" if v is None else f"{v * 100:.0f}%"


def ratio(b, a):
    return b / a if a and b is not None else None


def cmd_ab(a):
    rows = read_runs(a.results)
    paths = [p for p in ("blocked", "forward", "mix", "cached") if any(r["path"] == p for r in rows)]
    by = {}
    for r in rows:
        by.setdefault((r["path"], r.get("round")), {})[r["server"]] = r
    summaries = []
    for p in paths:
        rounds = sorted(k[1] for k in by if k[0] == p and len(by[k]) == 2)
        pairs = [(by[(p, n)]["dnsink-A"], by[(p, n)]["dnsink-B"]) for n in rounds]
        if not pairs:
            continue
        s = {"kind": "ab", "path": p, "rounds": len(pairs)}
        for key in ("cpu_us_per_q", "qps"):
            va = [x[key] for x, _ in pairs if x[key] is not None]
            vb = [y[key] for _, y in pairs if y[key] is not None]
            s[key + "_A"], s[key + "_B"] = median(va), median(vb)
            s[key + "_ratio"] = ratio(s[key + "_B"], s[key + "_A"])
            # B/A of each round on its own: its spread says how far the median ratio
            # can be trusted on this machine.
            per = [ratio(y[key], x[key]) for x, y in pairs]
            per = [v for v in per if v is not None]
            s[key + "_ratio_min"] = min(per) if per else None
            s[key + "_ratio_max"] = max(per) if per else None
        s["correct_A"] = min(x["correct"] for x, _ in pairs)
        s["correct_B"] = min(y["correct"] for _, y in pairs)
        for key in ("cpu_others", "gen_others"):
            oth = [r.get(key) for pr in pairs for r in pr if r.get(key) is not None]
            s[key + "_max"] = max(oth) if oth else None
        summaries.append(s)
    head = ["path", "rounds", "CPU us/q A", "CPU us/q B", "B/A CPU (rounds min-max)",
            "QPS A", "QPS B", "B/A QPS (rounds min-max)", "correct A/B", "others max CPU 0/1"]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for s in summaries:
        out.append("| " + " | ".join([
            s["path"], str(s["rounds"]),
            fmt(s["cpu_us_per_q_A"], ".3f"), fmt(s["cpu_us_per_q_B"], ".3f"),
            f"{fmt(s['cpu_us_per_q_ratio'], '.3f')} ({fmt(s['cpu_us_per_q_ratio_min'], '.3f')}"
            f"-{fmt(s['cpu_us_per_q_ratio_max'], '.3f')})",
            fmt(s["qps_A"], ".0f"), fmt(s["qps_B"], ".0f"),
            f"{fmt(s['qps_ratio'], '.3f')} ({fmt(s['qps_ratio_min'], '.3f')}"
            f"-{fmt(s['qps_ratio_max'], '.3f')})",
            f"{s['correct_A'] * 100:.2f}%/{s['correct_B'] * 100:.2f}%",
            pct(s["cpu_others_max"]) + "/" + pct(s["gen_others_max"])]) + " |")
    out.append("")
    out.append("Medians over the rounds; B/A below 1 means B uses less CPU per query (or, for "
               "QPS, answers fewer per second). "
               "Others: the share of the server's CPU (0) and of the generator's (1) that other "
               "programs took, worst run (on CPU 1 it may include some interrupt work of our "
               "own traffic). Every run:")
    out.append("")
    head = ["round", "path", "server", "QPS", "server CPU", "CPU us/q", "correct",
            "others CPU 0/1"]
    out += ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for r in rows:
        out.append("| " + " | ".join([
            str(r.get("round", "-")), r["path"], r["server"], f"{r['qps']:.0f}",
            fmt(r.get("cpu_util") and r["cpu_util"] * 100, ".0f") + "%",
            fmt(r["cpu_us_per_q"], ".3f"), f"{r['correct'] * 100:.2f}%",
            pct(r.get("cpu_others")) + "/" + pct(r.get("gen_others"))]) + " |")
    print("\n".join(out))
    if not a.no_write:
        with open(a.results, "a", encoding="utf-8") as f:
            for s in summaries:
                f.write(json.dumps(s) + "\n")


def hit_rate(r):
    v = r.get("cache_hit_rate")
    return "-" if v is None else f"{v * 100:.1f}%"


def cpu_of(r):
    return r.get("cpu_us_per_q")


def label(r):
    """The path as the table names it: dnsink-alert's blocked path is the alerted one."""
    if r.get("source") in (None, "run") and r["server"] == "dnsink-alert" and r["path"] == "blocked":
        return "alerted (blocked)"
    return r["path"]


def f2(v, spec=".2f"):
    return "-" if v is None else format(v, spec)


def norm(r):
    """One row of the table, from a record of run.sh or of one of the parts' scripts."""
    src = r.get("source") or "run"
    d = {"server": r.get("server", "?"), "path": label(r), "qps": "-", "util": "-",
         "cpu": "-", "split": "-", "correct": "-", "p50": "-", "p99": "-", "lw": "-",
         "others": "-", "rss": "-", "load": "-", "hits": "-", "notes": ""}
    if src == "run":
        lat = r.get("lat") or {}
        d["qps"] = f"{r['qps']:.0f}"
        d["util"] = fmt(r.get("cpu_util") and r["cpu_util"] * 100, ".0f") + "%"
        d["cpu"] = f2(r.get("cpu_us_per_q"))
        if r.get("worker_cpu_us_per_q") is not None:
            d["split"] = (f"{r['worker_cpu_us_per_q']:.2f} / {r['main_cpu_us_per_q']:.2f} / "
                          f"{r['rest_cpu_us_per_q']:.2f}")
        d["correct"] = "n/a" if r["any_rcode"] else \
            f"{correct_share(r['path'], r, False) * 100:.2f}%"
        if lat:
            d["p50"] = f2(lat.get("p50_ms"), ".3f")
            n = len(lat.get("runs") or [])
            d["p99"] = f2(lat.get("p99_ms"), ".3f")
            if n > 1 and "p99_worst_ms" in lat:
                d["p99"] += f" ({lat['p99_best_ms']:.3f}–{lat['p99_worst_ms']:.3f}, {n} runs)"
            d["lw"] = f"{lat.get('lost', '-')}/{'-' if r['any_rcode'] else lat.get('wrong', '-')}"
            d["others"] = pct(lat.get("cpu_others")) + " / " + pct(lat.get("gen_others"))
        d["rss"] = f"{r['rss_mib']:.1f}"
        d["load"] = f"{r['load_s']:.3f}"
        d["hits"] = hit_rate(r)
        if r.get("cpus") and r["cpus"] != "0/1":
            d["notes"] = "server/dnsperf on CPUs " + r["cpus"]
    elif src == "tls":
        d["qps"] = f2(r.get("qps"), ".0f")
        d["cpu"] = f2(r.get("cpu_us_per_q"))
        d["correct"] = r.get("answered") or "-"
        d["notes"] = "tls.sh: " + r.get("desc", "")
    elif src == "hunt":
        rps = r.get("records_per_s")
        d["path"] = f"{r['path']} ({r.get('records', 0):,} records)"
        d["qps"] = f2(rps, ".0f")
        d["cpu"] = f2(1e6 / rps if rps else None, ".3f")
        d["rss"] = f2(r.get("rss_mib"), ".1f")
        d["notes"] = (f"hunt.sh: {r.get('records')} records ({r.get('mb')} MB) in "
                      f"{f2(r.get('secs'), '.2f')} s, one thread: QPS = records/s, CPU = us "
                      f"per record (wall), RSS peak; {r.get('matches')} matches")
    elif src == "alert":
        alerted = r.get("server") == "dnsink-alert"
        rate = r.get("rate")
        d["path"] = ("alerted" if alerted else "silent") + (
            ", full speed" if rate == "full" else f" @{rate} qps") + (
            f", round {r['round']}" if r.get("round") not in (None, 1) else "")
        d["qps"] = f2(r.get("qps"), ".0f")
        d["cpu"] = f2(r.get("cpu_us_q"))
        main = r.get("main_cpu_us_rec")
        d["split"] = (f"{f2(r.get('worker_cpu_us_q'))} / "
                      + (f"{main:.2f} per record" if main is not None
                         else f2(r.get("main_cpu_us_q"))) + " / -")
        d["lw"] = f"{r.get('lost', '-')} records/-"
        d["load"] = f2(r.get("load_s"), ".3f")
        d["notes"] = (f"alert.sh: records expected {r.get('records_expected')}, file "
                      f"{r.get('records_file')}, collector ({r.get('collector', '?')}) "
                      f"{r.get('records_collector')}; lost_ring {r.get('lost_ring')}, "
                      f"lost_sink {r.get('lost_sink')}") if alerted else "alert.sh: the silent path"
    elif src == "load10m":
        d["path"] = f"load ({r.get('names', 0):,} names)"
        d["rss"] = f2(r.get("rss_mib"), ".1f")
        d["load"] = f2(r.get("ready_s"), ".3f")
        d["notes"] = (f"load10m.sh: {f2(r.get('bytes_per_entry'), '.1f')} B/entry of RSS "
                      f"({f2(r.get('set_bytes_per_entry'), '.1f')} in the suffix set); start-up "
                      f"peak {f2(r.get('load_peak_mib'), '.1f')} MiB; reload (SIGHUP) "
                      f"{f2(r.get('reload_s'), '.2f')} s, peak {f2(r.get('reload_peak_mib'), '.1f')} MiB")
    else:
        d["notes"] = src + ": " + ", ".join(f"{k} {v}" for k, v in r.items()
                                          if k not in ("server", "path", "source"))
    return d


def md_table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


# The peers of each path: the ones that have it; the caching peers on the hot path.
PEERS = {"blocked": ["dnsdist", "unbound", "dnsmasq"],
         "forward": ["dnsdist", "unbound", "dnsmasq"],
         "mix": ["dnsdist", "unbound", "dnsmasq"],
         "cached": ["dnsdist-cache", "unbound-cache"]}
FLOORS = ["echo", "echo-batch"]
# tls.sh's rows that have a dnsdist counterpart, and the DoT client's own overhead.
TLS_PAIRS = [("dot-in-fwd", "dnsink", "dot-in-fwd", "dnsdist", "DoT listener, forwarding"),
             ("dot-block", "dnsink", "dot-block", "dnsdist", "DoT listener, blocked"),
             ("doh-block", "dnsink", "doh-block", "dnsdist", "DoH listener, blocked"),
             ("fwd-dot-loc", "dnsink", "fwd-udp-loc", "dnsink",
              "DoT upstream vs UDP upstream (same local upstream)"),
             ("dot-fwd", "dnsink", "udp-fwd", "dnsink", "DoT upstream vs UDP upstream (knotd)"),
             ("doh-fwd", "dnsink", "udp-fwd", "dnsink", "DoH upstream vs UDP upstream (knotd)")]


def peer_of(server, path, base, by):
    """The peer a dnsink row is set against: on the paths that miss, a row with its cache on
    meets the peer's caching row when it ran (both pay to fill a cache), dnsink-nocache the
    peer without one; on blocked and cached, PEERS."""
    if path in ("forward", "mix") and server != "dnsink-nocache" and (base + "-cache", path) in by:
        return base + "-cache"
    return next((x for x in PEERS[path] if x.replace("-cache", "") == base), None)


def cmd_table(a):
    recs = read_runs(a.results)
    head = ["server", "path", "QPS", "server CPU", "CPU us/q", "worker / main / rest us/q",
            "correct", f"p50 ms @{a.rate}", f"p99 ms @{a.rate}: median (min–max)",
            "lost/wrong @rate", "others CPU 0 / 1", "RSS MiB", "load s", "cache hits", "notes"]
    rows = []
    for r in recs:
        d = norm(r)
        rows.append([d[k] for k in ("server", "path", "qps", "util", "cpu", "split", "correct",
                                    "p50", "p99", "lw", "others", "rss", "load", "hits", "notes")])
    out = md_table(head, rows)

    run = [r for r in recs if (r.get("source") or "run") == "run"]
    by = {(r["server"], r["path"]): r for r in run}
    oth = [r["lat"]["cpu_others"] for r in run
           if (r.get("lat") or {}).get("cpu_others") is not None]
    if oth:
        goth = [r["lat"]["gen_others"] for r in run
                if (r.get("lat") or {}).get("gen_others") is not None]
        out.insert(0, f"CPU 0 others (the share of the server's CPU other programs took during "
                      f"the fixed-rate runs, per row the median run): median {median(oth) * 100:.0f}%, "
                      f"max {max(oth) * 100:.0f}% over {len(oth)} rows"
                   + (f"; CPU 1 (the generator's, less dnsperf, knotd, rsyslogd): median "
                      f"{median(goth) * 100:.0f}%, max {max(goth) * 100:.0f}%" if goth else ""))
        out.insert(1, "")

    # Ratios of CPU per answered query: every dnsink row against both floors and each
    # peer that has the path.
    ratio_rows = []
    peers_all = []
    for p in ("blocked", "forward", "mix", "cached"):
        for x in PEERS[p]:
            base = x.replace("-cache", "")
            if base not in peers_all:
                peers_all.append(base)
    for r in run:
        # The *-2cpu rows run unpinned, beside dnsperf: their CPU per query is not
        # comparable with the pinned rows' (see the two-worker table).
        if not r["server"].startswith("dnsink") or r["path"] not in PEERS \
                or r["server"].endswith("-2cpu"):
            continue
        c = cpu_of(r)
        cells = [r["server"], label(r), f2(c)]
        for fl in FLOORS:
            o = by.get((fl, r["path"]))
            cells.append(f2(ratio(c, cpu_of(o)) if o else None, ".2f") + "×" if o else "-")
        for base in peers_all:
            peer = peer_of(r["server"], r["path"], base, by)
            o = by.get((peer, r["path"])) if peer else None
            v = ratio(c, cpu_of(o)) if o else None
            cells.append(f"{v:.2f}× ({peer})" if v is not None else "-")
        ratio_rows.append(cells)
    if ratio_rows:
        out += ["", "Ratios of CPU per answered query, dnsink row ÷ the other on the same path "
                "(below 1: dnsink spends less; on the cached path the caching peers, and on forward "
                "and mix too for the rows with dnsink's cache on, where those ran: both fill a "
                "cache on every miss; dnsink-nocache against the peers without one):", ""]
        out += md_table(["dnsink row", "path", "CPU us/q", "÷ echo", "÷ echo-batch"]
                        + [f"÷ {b}" for b in peers_all], ratio_rows)

    tls = {(r["server"], r["path"]): r for r in recs if r.get("source") == "tls"}
    tls_rows = []
    for p1, s1, p2, s2, what in TLS_PAIRS:
        x, y = tls.get((s1, p1)), tls.get((s2, p2))
        if x and y:
            tls_rows.append([what, f"{s1} {p1}", f2(x.get("cpu_us_per_q")), f"{s2} {p2}",
                             f2(y.get("cpu_us_per_q")),
                             f2(ratio(x.get("cpu_us_per_q"), y.get("cpu_us_per_q"))) + "×"])
    if tls_rows:
        out += ["", "Encrypted transports (tls.sh), CPU per answered query:", ""]
        out += md_table(["comparison", "row", "us/q", "against", "us/q", "ratio"], tls_rows)

    # alert.sh: what an alert costs the worker over the silent path (target: at most 1 us),
    # and the main thread per record.
    al = [r for r in recs if r.get("source") == "alert"]
    a_rows = []
    for rate in sorted({str(r.get("rate")) for r in al}):
        for rnd in sorted({r.get("round") or 1 for r in al}):
            sil = next((r for r in al if str(r.get("rate")) == rate and (r.get("round") or 1) == rnd
                        and r.get("server") != "dnsink-alert"), None)
            alr = next((r for r in al if str(r.get("rate")) == rate and (r.get("round") or 1) == rnd
                        and r.get("server") == "dnsink-alert"), None)
            if not (sil and alr):
                continue
            dw = (alr.get("worker_cpu_us_q") or 0) - (sil.get("worker_cpu_us_q") or 0)
            dp = (alr.get("cpu_us_q") or 0) - (sil.get("cpu_us_q") or 0)
            a_rows.append([rate if rate == "full" else f"{rate} qps", str(rnd),
                           f2(sil.get("worker_cpu_us_q")), f2(alr.get("worker_cpu_us_q")),
                           f"{dw:+.2f} ({'met' if dw <= 1.0 else 'not met'})", f"{dp:+.2f}",
                           f2(alr.get("main_cpu_us_rec")), str(alr.get("lost", "-"))])
    if a_rows:
        out += ["", "Alerting (alert.sh: every query a new dedup key, file + RFC 5424 sinks), "
                "per answered query; target: the worker ≤ 1 us over the silent path:", ""]
        out += md_table(["rate", "round", "silent worker us/q", "alerted worker us/q",
                         "worker Δ us/q", "process Δ us/q", "main us/record", "records lost"],
                        a_rows)

    # p99 at the fixed rate against both floors, where the issue sets its target
    # (at most the echo server's p99 + 20%), with the spread over the runs.
    p99_rows = []
    for p in ("blocked", "cached"):
        floors = [by.get((fl, p)) for fl in FLOORS]
        for s in ("dnsink", "dnsink-alert", "dnsink-nocache"):
            r = by.get((s, p))
            lat = (r or {}).get("lat") or {}
            if not lat:
                continue
            cells = [label(r), s, p99_cell(lat)]
            for fl in floors:
                flat = (fl or {}).get("lat") or {}
                cells.append(p99_cell(flat) if flat else "-")
            verdict = []
            for fl, nm in zip(floors, FLOORS):
                flat = (fl or {}).get("lat") or {}
                v = ratio(lat.get("p99_ms"), flat.get("p99_ms")) if flat else None
                cells.append(f"{v:.2f}×" if v is not None else "-")
                if v is not None:
                    verdict.append(f"{nm}: {'met' if v <= 1.2 else 'not met'}")
            cells.append(", ".join(verdict) or "-")
            cells.append(" / ".join(pct(x.get("cpu_others")) + ", " + pct(x.get("gen_others"))
                                    for x in [lat] + [(fl or {}).get("lat") or {} for fl in floors]))
            p99_rows.append(cells)
    if p99_rows:
        out += ["", f"p99 at {a.rate} qps against the floors, median run (min–max over the runs); "
                "target: at most the echo server's p99 + 20% (1.20×):", ""]
        out += md_table(["path", "row", "p99 ms", "echo p99 ms", "echo-batch p99 ms",
                         "÷ echo", "÷ echo-batch", "≤ 1.20×",
                         "others CPU 0, 1: row / echo / echo-batch"], p99_rows)
        out += ["", "A high share of *others* beside a p99 means other programs took the "
                "server's CPU (0) or the generator's (1) during those runs: that p99 is theirs, "
                "not the server's (on CPU 1 it may include some interrupt work of our own "
                "traffic)."]

    # One worker against two: on one core (the server pinned to CPU 0, dnsperf on CPU 1)
    # and on both (server and dnsperf unpinned).
    w_rows = []
    for p in ("blocked", "cached"):
        for one, two, where in (("dnsink", "dnsink-2w", "server on CPU 0, dnsperf on CPU 1"),
                                ("dnsink-2cpu", "dnsink-2w-2cpu",
                                 "server and dnsperf (2 threads) on both CPUs")):
            x, y = by.get((one, p)), by.get((two, p))
            if not (x and y):
                continue
            ceil = by.get(("echo-batch-2cpu" if one == "dnsink-2cpu" else "echo-batch", p))
            w_rows.append([p, where, f"{x['qps']:.0f}", f2(cpu_of(x)),
                           fmt(x.get("cpu_util") and x["cpu_util"] * 100, ".0f") + "%",
                           f"{y['qps']:.0f}", f2(cpu_of(y)),
                           fmt(y.get("cpu_util") and y["cpu_util"] * 100, ".0f") + "%",
                           f2(ratio(y["qps"], x["qps"])) + "×",
                           f2(ratio(cpu_of(y), cpu_of(x))) + "×",
                           f"{ceil['qps']:.0f}" if ceil else "-"])
    if w_rows:
        out += ["", "Two workers against one (target: 2 workers ≥ 1.8× the QPS of 1 with the "
                "load generator elsewhere; here the generator shares the 2 CPUs, and echo-batch-2cpu, "
                "the batched floor placed as the *-2cpu rows, shows what the generator and the "
                "kernel reach on them):", ""]
        out += md_table(["path", "placement", "1 worker QPS", "us/q", "server CPU",
                         "2 workers QPS", "us/q", "server CPU", "QPS 2w/1w", "us/q 2w/1w",
                         "echo-batch QPS, same placement"], w_rows)
    print("\n".join(out))


def p99_cell(lat):
    n = len(lat.get("runs") or [])
    s = f2(lat.get("p99_ms"), ".3f")
    if n > 1 and "p99_worst_ms" in lat:
        s += f" ({lat['p99_best_ms']:.3f}–{lat['p99_worst_ms']:.3f}, {n})"
    return s


def cmd_merge(a):
    """Appends the records of a part's results file (tls.sh, hunt.sh, ...) to the one
    results file, each marked with its source."""
    n = 0
    with open(a.results, "a", encoding="utf-8") as out:
        for path in a.files:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if not line.strip():
                        continue
                    try:
                        r = json.loads(line)
                    except ValueError:
                        print(f"report.py: {path}: not JSON: {line.strip()[:80]}", file=sys.stderr)
                        continue
                    r.setdefault("source", a.source)
                    out.write(json.dumps(r) + "\n")
                    n += 1
    print(n)


def cmd_brief(a):
    with open(a.results, encoding="utf-8") as f:
        r = json.loads(f.read().strip().splitlines()[-1])
    lat = r.get("lat") or {}
    print(f"{r['qps']:.0f} qps, {fmt(r['cpu_us_per_q'], '.2f')} us/q, "
          f"correct {r['correct'] * 100:.2f}%, p50/p99 {fmt(lat.get('p50_ms'), '.3f')}/"
          f"{fmt(lat.get('p99_ms'), '.3f')} ms, lost {lat.get('lost', '-')}"
          + (f", cache hits {r['cache_hits']}/{r['cache_hits'] + (r['cache_misses'] or 0)}"
             if r.get("cache_hits") is not None else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("--results", required=True)
    r.add_argument("--server", required=True)
    r.add_argument("--path", required=True, choices=["blocked", "forward", "mix", "cached"])
    r.add_argument("--perf", required=True, help="dnsperf output of the throughput run")
    r.add_argument("--lat", action="append", help="dnsperf -v output of a fixed-rate run")
    r.add_argument("--others", action="append",
                   help="BUSY:TOTAL ticks of the server's CPU not used by it, per --lat")
    r.add_argument("--gen-others", action="append",
                   help="BUSY:TOTAL ticks of the generator's CPU not used by dnsperf, knotd "
                   "or rsyslogd, per --lat")
    r.add_argument("--ticks0", type=int, required=True)
    r.add_argument("--ticks1", type=int, required=True)
    r.add_argument("--clk-tck", type=int, default=100)
    r.add_argument("--rss-kib", type=int, required=True)
    r.add_argument("--load-s", type=float, required=True)
    r.add_argument("--any-rcode", action="store_true", help="any answer counts (echo)")
    r.add_argument("--round", type=int, help="round of an A/B run")
    r.add_argument("--cache-hits", type=int, help="cache hits during the full-speed run")
    r.add_argument("--cache-misses", type=int, help="cache misses during the full-speed run")
    r.add_argument("--binary", help="the server binary (A/B runs)")
    r.add_argument("--threads", help="WORKER:MAIN:REST ticks of the server's threads over "
                   "the full-speed run")
    r.add_argument("--cpus", help="SERVER/GENERATOR CPU lists (taskset)")
    r.add_argument("--others-run", help="BUSY:TOTAL ticks of the server's CPU not used by it, "
                   "during the throughput run")
    r.add_argument("--gen-others-run", help="BUSY:TOTAL ticks of the generator's CPU not used "
                   "by dnsperf or knotd, during the throughput run")
    t = sub.add_parser("table")
    t.add_argument("--results", required=True)
    t.add_argument("--rate", default="10k")
    b = sub.add_parser("brief", help="one line on the last record")
    b.add_argument("--results", required=True)
    m = sub.add_parser("merge", help="append a part's records (tls.sh, hunt.sh, ...)")
    m.add_argument("--results", required=True)
    m.add_argument("--source", required=True, help="tls, hunt, alert, load10m")
    m.add_argument("files", nargs="+")
    ab = sub.add_parser("ab", help="medians and B/A ratios of an A/B run")
    ab.add_argument("--results", required=True)
    ab.add_argument("--no-write", action="store_true", help="print only")
    a = ap.parse_args()
    return {"record": cmd_record, "table": cmd_table, "brief": cmd_brief, "ab": cmd_ab,
            "merge": cmd_merge}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
