#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Sigma semantics, table-driven against a reference evaluator written here in
Python from the Sigma specification (its own YAML reader, glob-to-regex,
condition parser), independent of dnsink's C. Every query-side rule of the
corpus (tests/sigma/corpus) is judged on every probe: the names of all
sidecar test cases plus a list of near misses, with their types and clients.
`dnsink match` must report exactly the rules the reference says match, and
both must agree with each sidecar's expectation. `dnsink test` must pass the
whole corpus, `dnsink check` must list what loads, what is skipped and what is
rejected, and --strict must turn a rejection into exit 1."""
import ipaddress
import os
import re
import tempfile
import unittest

import yaml

import harness

CORPUS = os.path.join(harness.SOURCE_ROOT, "tests", "sigma", "corpus")

FIELDS = {
    "query": "query", "queryname": "query", "query_name": "query", "dns.question.name": "query",
    "record_type": "qtype", "querytype": "qtype", "qtype": "qtype",
    "src_ip": "client", "clientip": "client",
    "query_length": "qlen", "registered_domain": "regdom",
    "answer": "answer", "answers": "answer", "queryresults": "answer",
    "rcode": "rcode", "querystatus": "rcode",
}
QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "NULL": 10, "MX": 15, "TXT": 16, "AAAA": 28}
RCODES = {"NOERROR": 0, "FORMERR": 1, "SERVFAIL": 2, "NXDOMAIN": 3, "NOTIMP": 4, "REFUSED": 5}
# The two-label public suffixes the corpus uses; the rest are one label.
PSL2 = {"co.uk"}

EXTRA_PROBES = ["example", "stage.123456", "aaa.stage", "post.2.example", "duckdns.org.evil",
                "evil.example.com", "cdn1.example", "a.b.c.test", "ab.test", "minepool",
                "xmr.example", "zzzzzz", "10.0.0.1", "internal.test", "a.lm.test.x", "them1",
                "alpha.beta", "x.b.test", "co.uk", "notpool.test.org", "y.cloak.test"]


def glob_regex(value, pos):
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] in "*?\\":
            out.append(re.escape(value[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
        i += 1
    body = "".join(out)
    if pos in ("contains", "endswith"):
        body = ".*" + body
    if pos in ("contains", "startswith"):
        body = body + ".*"
    return re.compile(body, re.S | re.I)


def value_match(field, mods, value, event):
    if field is None:
        # A field the resolver never sees is absent: only null or exists: false hold.
        return value is None or ("exists" in mods and value is False)
    if field == "answer":
        return any(value_match("answer1", mods, value, dict(event, answer1=a))
                   for a in event.get("answers", []))
    key = "answer1" if field == "answer1" else field
    if "exists" in mods:
        return (key in event) == bool(value)
    if value is None:
        return key not in event or event[key] in ("", None)
    have = event.get(key)
    if have is None:
        return False
    for cmp, fn in (("gte", lambda a, b: a >= b), ("gt", lambda a, b: a > b),
                    ("lte", lambda a, b: a <= b), ("lt", lambda a, b: a < b)):
        if cmp in mods:
            return fn(have, int(value))
    if field in ("qtype", "rcode", "qlen"):
        want = value if isinstance(value, int) else (QTYPES if field == "qtype" else RCODES).get(
            str(value).upper(), int(value) - 9000 if str(value).isdigit() else None)
        return have == want
    if "cidr" in mods:
        try:
            return ipaddress.ip_address(have) in ipaddress.ip_network(value, strict=False)
        except ValueError:
            return False
    if "re" in mods:
        flags = (re.I if "i" in mods else 0) | (re.M if "m" in mods else 0) | \
                (re.S if "s" in mods else 0)
        return re.search(value, str(have), flags) is not None
    pos = next((m for m in ("contains", "startswith", "endswith") if m in mods), None)
    return glob_regex(str(value), pos).fullmatch(str(have)) is not None


def fc_match(key, values, event):
    name, *mods = key.split("|")
    field = FIELDS.get(name.lower())
    if name == "EventID" and not mods:
        vals = values if isinstance(values, list) else [values]
        return any(v in (3006, 3008, 3020) for v in vals)
    vals = values if isinstance(values, list) else [values]
    res = [value_match(field, mods, v, event) for v in vals]
    return all(res) if "all" in mods else any(res)


def sel_match(sel, event):
    maps = sel if isinstance(sel, list) else [sel]
    return any(all(fc_match(k, v, event) for k, v in m.items()) for m in maps)


def cond_eval(text, sels, event):
    toks = re.findall(r"\(|\)|[^\s()]+", text)
    pos = [0]

    def peek():
        return toks[pos[0]] if pos[0] < len(toks) else None

    def take():
        pos[0] += 1
        return toks[pos[0] - 1]

    def names(pat):
        if pat == "them":
            return [n for n in sels if not n.startswith("_")]
        rx = re.compile(re.escape(pat).replace("\\*", ".*") + "$")
        return [n for n in sels if rx.match(n)]

    def primary():
        t = take()
        if t == "(":
            v = expr()
            take()
            return v
        if t in ("1", "all", "any") and peek() == "of":
            take()
            got = [sel_match(sels[n], event) for n in names(take())]
            return all(got) if t == "all" else any(got)
        return sel_match(sels[t], event)

    def neg():
        if peek() == "not":
            take()
            return not neg()
        return primary()

    def conj():
        v = neg()
        while peek() == "and":
            take()
            v = neg() and v
        return v

    def expr():
        v = conj()
        while peek() == "or":
            take()
            v = conj() or v
        return v

    return expr()


def rule_match(rule, event):
    det = rule["detection"]
    sels = {k: v for k, v in det.items() if k not in ("condition", "timeframe")}
    conds = det["condition"] if isinstance(det["condition"], list) else [det["condition"]]
    return any(cond_eval(c, sels, event) for c in conds)


LOADED = set()


def query_side(rule):
    """Rules the reference judges here: loaded by dnsink, query side, no aggregation."""
    if "detection" not in rule or rule.get("id") not in LOADED:
        return False
    det = rule["detection"]
    conds = det["condition"] if isinstance(det["condition"], list) else [det["condition"]]
    if any("|" in c for c in conds):
        return False
    for k, v in det.items():
        if k in ("condition", "timeframe"):
            continue
        for m in (v if isinstance(v, list) else [v]):
            if not isinstance(m, dict):
                return False
            for key in m:
                name, *mods = key.split("|")
                if FIELDS.get(name.lower()) in ("answer", "rcode"):
                    return False
    return True


def event_of(log):
    ev = {"qtype": 1, "client": "127.0.0.1"}
    for k, v in log.items():
        f = FIELDS.get(k.lower())
        if f == "query":
            ev["query"] = str(v).rstrip(".").lower()
        elif f == "qtype":
            ev["qtype"] = QTYPES[str(v).upper()] if not str(v).isdigit() else int(v)
        elif f == "client":
            ev["client"] = str(v)
        elif f == "answer":
            ev["answers"] = [str(a).lower() for a in (v if isinstance(v, list) else [v])]
        elif f == "rcode":
            ev["rcode"] = RCODES.get(str(v).upper(), int(v) - 9000 if str(v).isdigit() else 0)
    q = ev["query"]
    ev["qlen"] = len(q)
    labels = q.split(".")
    n = 3 if ".".join(labels[-2:]) in PSL2 else 2
    ev["regdom"] = ".".join(labels[-n:])
    return ev


class SigmaReference(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.rules, cls.cases = [], []
        for fn in sorted(os.listdir(CORPUS)):
            path = os.path.join(CORPUS, fn)
            with open(path) as f:
                docs = [d for d in yaml.safe_load_all(f) if d]
            if fn.endswith(".tests.yml"):
                rule_file = path[:-len(".tests.yml")] + ".yml"
                for t in docs[0]["tests"]:
                    cls.cases.append((rule_file, t))
                continue
            for d in docs:
                d["_file"] = path
                cls.rules.append(d)
        cls.dir = tempfile.mkdtemp(prefix="dnsink-sigma-ref-")
        cls.conf = os.path.join(cls.dir, "dnsink.yml")
        with open(cls.conf, "w") as f:
            f.write("listen: [127.0.0.1:5399]\nupstreams: [127.0.0.1:5398]\n"
                    "rules: ['%s/']\n" % CORPUS)
        rc, out, err = harness.run_dnsink("check", "-c", cls.conf)
        assert rc == 0, err
        LOADED.update(ln.split()[1] for ln in out.splitlines() if ln.startswith("  loaded "))

    def first_rule_of(self, path):
        return next(r for r in self.rules if r["_file"] == path)

    def test_sidecars_agree_with_reference(self):
        judged = 0
        for rule_file, t in self.cases:
            rule = self.first_rule_of(rule_file)
            if not query_side(rule):
                continue
            with self.subTest(rule=rule["id"], case=t["name"]):
                self.assertEqual(rule_match(rule, event_of(t["log"])), t["expect"])
                judged += 1
        self.assertGreater(judged, 40)

    def match_ids(self, names, qtype, client):
        rc, out, err = harness.run_dnsink("match", "-c", self.conf, "--type", qtype,
                                          "--client", client, *names)
        self.assertEqual(rc, 0, err)
        got = {n: set() for n in names}
        for line in out.splitlines():
            name, _, rest = line.partition(": ")
            if rest.startswith("sigma rule "):
                got.setdefault(name, set()).add(rest.split()[2])
        return got

    def test_every_rule_on_every_probe(self):
        rules = [r for r in self.rules if query_side(r)]
        self.assertGreater(len(rules), 15)
        probes = {}
        for _, t in self.cases:
            ev = event_of(t["log"])
            probes.setdefault((ev["qtype"], ev["client"]), set()).add(ev["query"])
        for n in EXTRA_PROBES:
            probes.setdefault((1, "127.0.0.1"), set()).add(n)
        rows = 0
        for (qtype, client), names in sorted(probes.items()):
            names = sorted(names)
            got = self.match_ids(names, str(qtype), client)
            for name in names:
                ev = event_of({"query": name, "qtype": qtype, "src_ip": client})
                want = {r["id"] for r in rules if rule_match(r, ev)}
                have = got.get(name, set()) & {r["id"] for r in rules}
                with self.subTest(name=name, qtype=qtype, client=client):
                    self.assertEqual(have, want)
                rows += len(rules)
        self.assertGreater(rows, 1000)

    def test_dnsink_test_passes_corpus(self):
        rc, out, err = harness.run_dnsink("test", CORPUS)
        self.assertEqual(rc, 0, out + err)
        passed = int(out.strip().splitlines()[-1].split()[0])
        self.assertGreaterEqual(passed, len(self.cases))

    def test_check_lists_and_strict(self):
        rc, out, err = harness.run_dnsink("check", "-c", self.conf)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"rejected c0000000-0000-4000-8000-000000000021 .*needs 'Image'")
        self.assertRegex(out, r"rejected c0000000-0000-4000-8000-000000000023 .*base64offset")
        self.assertRegex(out, r"skipped +c0000000-0000-4000-8000-000000000024 .*not DNS")
        self.assertRegex(out, r"loaded +c0000000-0000-4000-8000-000000000008 .*\[pcre2\]")
        self.assertRegex(out, r"loaded +c0000000-0000-4000-8000-000000000004 .*\[suffix-set\]")
        self.assertRegex(out, r"rejected c0000000-0000-4000-8000-000000000033 .*needs 'Image'")
        self.assertRegex(out, r"loaded +c0000000-0000-4000-8000-000000000031 .*\n +note: "
                              r"filters on 'Image' never apply")
        self.assertRegex(out, r"sigma total: \d+ loaded, 1 skipped \(not DNS\), 4 rejected")
        rc, out, err = harness.run_dnsink("check", "-c", self.conf, "--strict")
        self.assertEqual(rc, 1, out + err)

    def test_broken_sigma_is_file_line(self):
        bad = os.path.join(self.dir, "bad")
        os.makedirs(bad, exist_ok=True)
        with open(os.path.join(bad, "r.yml"), "w") as f:
            f.write("title: t\nid: x\nlogsource: {category: dns}\ndetection:\n"
                    "    sel:\n        query: a\n    condition: sel and nosuch\n")
        conf = os.path.join(self.dir, "bad.yml")
        with open(conf, "w") as f:
            f.write("listen: [127.0.0.1:5399]\nupstreams: [127.0.0.1:5398]\n"
                    "rules: ['%s/']\n" % bad)
        rc, out, err = harness.run_dnsink("check", "-c", conf)
        self.assertEqual(rc, 1, out)
        self.assertIn("r.yml:7: Sigma: condition: unknown selection 'nosuch'", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
