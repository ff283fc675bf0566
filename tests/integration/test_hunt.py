#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""dnsink hunt over logs: the seed's Panther records give Panther's verdicts;
Zeek, Sysmon, Pi-hole and dnsink's own records; gzip, zstd, folders, stdin;
corrupt inputs are counted and reported, never a crash; exit statuses."""
import gzip
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
import unittest

import harness
from harness import run_dnsink, SOURCE_ROOT

DATA = os.path.join(SOURCE_ROOT, "tests", "data", "hunt")
CONF = os.path.join(SOURCE_ROOT, "conf", "dnsink.yml")
PANTHER = os.path.join(DATA, "panther.jsonl")
# Panther's ExpectedResult of the 10 tests, in the order of the seed.
PANTHER_VERDICTS = [False, False, True, True, True, True, True, True, False, True]


def hunt(*args, stdin=None):
    if stdin is None:
        return run_dnsink("hunt", "-c", CONF, *args)
    p = subprocess.run([harness.DNSINK, "hunt", "-c", CONF] + list(args), input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=SOURCE_ROOT,
                       timeout=30)
    err = p.stderr.decode()
    assert not harness.sanitizer_problems(err), err
    return p.returncode, p.stdout.decode(), err


def records(out):
    return [json.loads(ln) for ln in out.splitlines() if ln.strip()]


def lines_matched(recs):
    return sorted(int(r["log"].rsplit(":", 1)[1]) for r in recs)


class Hunt(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="dk-hunt-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def test_panther_verdicts(self):
        rc, out, err = hunt("--no-dedup", PANTHER)
        self.assertEqual(rc, 0, err)
        recs = records(out)
        got = [i + 1 in lines_matched(recs) for i in range(10)]
        self.assertEqual(got, PANTHER_VERDICTS, out + err)
        self.assertIn("10 records (route53 8, ocsf 2), 7 matches", err)
        for r in recs:
            self.assertEqual(r["rule_id"], "DNS.Crypto.MiningPool")
            self.assertEqual(r["source_ip"], "5.6.7.8")
            self.assertEqual(r["source_port"], 8888)
            self.assertEqual(r["time"], "2022-06-25T00:27:53.000Z")
            self.assertFalse(r["dns_query"].endswith("."))
        self.assertEqual(recs[-1]["qtype"], "AAAA")  # the OCSF record's query.type

    def test_sigma_rules_hunted(self):
        """Sigma rules run over logs with Sigma's semantics, and behavioural
        ones count on the events' own time: 4 TXT lookups of one client
        within a minute cross a threshold of 3 once; another client's 3 do not."""
        rules = self.path("rules")
        os.mkdir(rules)
        with open(os.path.join(rules, "tunnel.yml"), "w") as f:
            f.write("title: Tunnel service lookup\n"
                    "id: 11111111-2222-4333-8444-555555555555\n"
                    "logsource: {category: dns}\n"
                    "detection:\n"
                    "  selection:\n"
                    "    query|endswith: '.tunnel.example'\n"
                    "  exact:\n"
                    "    query: 'exact.example'\n"
                    "  condition: selection or exact\n"
                    "level: high\n"
                    "tags: [attack.command-and-control, attack.t1071.004]\n")
        with open(os.path.join(rules, "txt_rate.yml"), "w") as f:
            f.write("title: TXT lookups per client\n"
                    "id: 11111111-2222-4333-8444-666666666666\n"
                    "logsource: {category: dns}\n"
                    "detection:\n"
                    "  selection:\n"
                    "    record_type: TXT\n"
                    "  timeframe: 1m\n"
                    "  condition: selection | count() by src_ip > 3\n"
                    "level: medium\n")
        conf = self.path("dnsink.yml")
        with open(conf, "w") as f:
            f.write("rules:\n  - %s/\n" % rules)
        log = self.path("r53.jsonl")
        rows = [("a.tunnel.example", "A", "10.0.0.1", 0),
                ("tunnel.example", "A", "10.0.0.1", 1),       # endswith .x: not x itself
                ("exact.example", "A", "10.0.0.1", 2),
                ("sub.exact.example", "A", "10.0.0.1", 3),    # an exact value: not below
                ("t1.example", "TXT", "10.0.0.9", 10), ("t2.example", "TXT", "10.0.0.9", 11),
                ("t3.example", "TXT", "10.0.0.9", 12), ("t4.example", "TXT", "10.0.0.9", 13),
                ("t5.example", "TXT", "10.0.0.9", 14),
                ("u1.example", "TXT", "10.0.0.8", 10), ("u2.example", "TXT", "10.0.0.8", 11),
                ("u3.example", "TXT", "10.0.0.8", 12)]
        with open(log, "w") as f:
            for name, qtype, client, sec in rows:
                f.write(json.dumps({
                    "version": "1.100000", "account_id": "1", "region": "eu-west-1",
                    "vpc_id": "vpc-1", "query_timestamp": "2026-11-30T10:00:%02dZ" % sec,
                    "query_name": name + ".", "query_type": qtype, "query_class": "IN",
                    "rcode": "NOERROR", "answers": [], "srcaddr": client, "srcport": "5353",
                    "transport": "UDP", "srcids": {"instance": "i-1"}}) + "\n")
        rc, out, err = run_dnsink("hunt", "-c", conf, "--no-dedup", log)
        self.assertEqual(rc, 0, err)
        recs = records(out)
        got = sorted((r["rule_id"], r["dns_query"]) for r in recs)
        self.assertEqual(got, [
            ("11111111-2222-4333-8444-555555555555", "a.tunnel.example"),
            ("11111111-2222-4333-8444-555555555555", "exact.example"),
            ("11111111-2222-4333-8444-666666666666", "t4.example")], out + err)
        tun = [r for r in recs if r["dns_query"] == "a.tunnel.example"][0]
        self.assertEqual(tun["rule_name"], "Tunnel service lookup")
        self.assertEqual(tun["severity"], "high")
        self.assertEqual(tun["time"], "2026-11-30T10:00:00.000Z")
        rate = [r for r in recs if r["dns_query"] == "t4.example"][0]
        self.assertEqual(rate["source_ip"], "10.0.0.9")
        self.assertEqual(rate["group_key"], "src_ip=10.0.0.9")
        self.assertEqual(rate["group_count"], 4)

    def test_dedup_on_event_time(self):
        rc, out, err = hunt(PANTHER)
        self.assertEqual(rc, 0, err)
        recs = records(out)
        # One record per (rule, client, entry) opens a window; the follow-ups
        # at the end carry what it folded: the counts add up to the 7 events.
        first = [r for r in recs if not r["followup"]]
        self.assertEqual(sorted(r["matched"] for r in first),
                         ["moneropool.ru", "webservicepag.webhop.net"])
        self.assertEqual(sum(r["count"] for r in recs), 7)

    def test_compressed_folder_stdin(self):
        with open(PANTHER, "rb") as p:
            raw = p.read()
        os.makedirs(self.path("logs/2022/06"))
        with gzip.open(self.path("logs/2022/06/a.json.gz"), "wb") as f:
            f.write(raw)
        # Named .log: the codec comes from the magic number, not the name.
        subprocess.run(["zstd", "-q", "-o", self.path("logs/2022/b.log"), PANTHER], check=True)
        shutil.copy(PANTHER, self.path("logs/c.jsonl"))
        rc, out, err = hunt("--no-dedup", "-j", "2", self.path("logs"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(records(out)), 21, err)
        self.assertIn("3 files, 30 records", err)
        rc, out, err = hunt("--no-dedup", "-", stdin=gzip.compress(raw))
        self.assertEqual(rc, 0, err)
        self.assertEqual(lines_matched(records(out)), [3, 4, 5, 6, 7, 8, 10])

    def test_corrupt_inputs_counted(self):
        with open(PANTHER, "rb") as p:
            raw = p.read()
        lines = raw.splitlines(keepends=True)
        broken = self.path("broken.jsonl")
        with open(broken, "wb") as f:
            f.write(lines[2])                    # 1: a match
            f.write(lines[3][:40] + b"\n")       # 2: cut short
            f.write(b"\x00\xff not json\n")      # 3
            f.write(b'{"query_name": "a..b", "srcaddr": "5.6.7.8"}\n')  # 4: bad name
            f.write(b'{"some": "other log"}\n')  # 5: no DNS shape
            f.write(b"x" * 300000 + b"\n")      # 6: too long
            f.write(lines[3])                    # 7: a match
        cut = self.path("cut.json.gz")
        with open(cut, "wb") as f:
            f.write(gzip.compress(raw * 50)[:-200])
        cutz = self.path("cut.json.zst")
        subprocess.run(["zstd", "-q", "-o", cutz, PANTHER], check=True)
        data = open(cutz, "rb").read()
        with open(cutz, "wb") as f:
            f.write(data[:len(data) // 2])
        rc, out, err = hunt("--no-dedup", "-j", "1", broken, cut, cutz)
        self.assertEqual(rc, 0, err)
        self.assertIn("2 not JSON (first at %s:2)" % broken, err)
        self.assertIn("1 no valid query name (first at %s:4)" % broken, err)
        self.assertIn("1 no DNS record of a known shape (first at %s:5)" % broken, err)
        self.assertIn("1 line too long (first at %s:6)" % broken, err)
        self.assertIn("unreadable or truncated file", err)
        self.assertIn("gzip stream cut short", err)
        self.assertIn("zstd stream cut short", err)
        self.assertEqual(lines_matched([r for r in records(out) if r["log"].startswith(broken)]),
                         [1, 7])

    def test_zeek_tsv_and_json(self):
        for name in ("zeek-dns.log", "zeek-dns.json"):
            rc, out, err = hunt("--no-dedup", os.path.join(DATA, name))
            self.assertEqual(rc, 0, err)
            self.assertIn("3 records (zeek 3), 2 matches", err)
            recs = records(out)
            self.assertEqual([r["dns_query"] for r in recs], ["pool.minexmr.com", "cdn.example.net"])
            self.assertEqual(recs[0]["source_ip"], "192.168.4.77")
            self.assertEqual(recs[0]["time"], "2020-06-05T14:40:00.000Z")
            # A CNAME among the answers: the daemon's answer-side check.
            self.assertEqual(recs[1]["cname_target"], "edge.moneropool.ru")
            self.assertEqual(recs[1]["transport"], "tcp")
            self.assertEqual(recs[1]["time"], "2020-06-05T14:40:01.500Z")

    def test_sysmon(self):
        rc, out, err = hunt("--no-dedup", "--format", "sysmon", os.path.join(DATA, "sysmon-22.jsonl"))
        self.assertEqual(rc, 0, err)
        self.assertIn("4 records (sysmon 4), 3 matches", err)
        self.assertIn("1 skipped", err)
        recs = records(out)
        self.assertEqual([r["dns_query"] for r in recs],
                         ["xmr.pool.minergate.com", "update.example.net", "abc.moneropool.ru"])
        self.assertEqual(recs[1]["cname_target"], "cdn.moneropool.ru")
        self.assertEqual(recs[0]["time"], "2021-02-04T17:51:55.123Z")
        self.assertEqual(recs[0]["source_ip"], "")  # Sysmon logs no client
        # Forced to another format, the lines are not taken for what they are not.
        rc, out, err = hunt("--format", "route53", os.path.join(DATA, "sysmon-22.jsonl"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "")
        self.assertIn("no DNS record of a known shape", err)

    def pihole_db(self, path):
        """A database with the FTL v5 schema of Pi-hole's docs ("Query database")."""
        db = sqlite3.connect(path)
        db.executescript("""
            CREATE TABLE ftl (id INTEGER PRIMARY KEY NOT NULL, value BLOB NOT NULL);
            INSERT INTO ftl VALUES (0, 12);
            CREATE TABLE query_storage (id INTEGER PRIMARY KEY AUTOINCREMENT,
                timestamp INTEGER NOT NULL, type INTEGER NOT NULL, status INTEGER NOT NULL,
                domain INTEGER NOT NULL, client INTEGER NOT NULL, forward INTEGER,
                additional_info INTEGER, reply_type INTEGER, reply_time REAL, dnssec INTEGER);
            CREATE TABLE domain_by_id (id INTEGER PRIMARY KEY, domain TEXT NOT NULL);
            CREATE TABLE client_by_id (id INTEGER PRIMARY KEY, ip TEXT NOT NULL, name TEXT);
            CREATE TABLE forward_by_id (id INTEGER PRIMARY KEY, forward TEXT NOT NULL);
            CREATE TABLE addinfo_by_id (id INTEGER PRIMARY KEY, type INTEGER NOT NULL,
                content NOT NULL);
            CREATE VIEW queries AS SELECT id, timestamp, type, status,
              CASE typeof(domain) WHEN 'integer' THEN (SELECT domain FROM domain_by_id d
                WHERE d.id = q.domain) ELSE domain END domain,
              CASE typeof(client) WHEN 'integer' THEN (SELECT ip FROM client_by_id c
                WHERE c.id = q.client) ELSE client END client,
              CASE typeof(forward) WHEN 'integer' THEN (SELECT forward FROM forward_by_id f
                WHERE f.id = q.forward) ELSE forward END forward,
              CASE typeof(additional_info) WHEN 'integer' THEN (SELECT content FROM
                addinfo_by_id a WHERE a.id = q.additional_info) ELSE additional_info
                END additional_info,
              reply_type, reply_time, dnssec FROM query_storage q;
            INSERT INTO domain_by_id VALUES (1, 'debian.org'), (2, 'pool.supportxmr.com'),
              (3, 'tracker.example.net');
            INSERT INTO client_by_id VALUES (1, '192.168.1.20', 'laptop'),
              (2, 'fd00::20', 'nas');
            INSERT INTO addinfo_by_id VALUES (1, 1, 'gw.moneropool.ru');
            INSERT INTO query_storage VALUES
              (1, 1700000000, 1, 2, 1, 1, NULL, NULL, 4, 0.01, 0),
              (2, 1700000060, 2, 2, 2, 2, NULL, NULL, 4, 0.02, 0),
              (3, 1700000120, 1, 9, 3, 1, NULL, 1, 4, 0.0, 0);
        """)
        db.commit()
        db.close()

    def test_pihole(self):
        db = self.path("pihole-FTL.db")
        self.pihole_db(db)
        rc, out, err = hunt("--no-dedup", db)
        self.assertEqual(rc, 0, err)
        self.assertIn("3 records (pihole 3), 2 matches", err)
        recs = records(out)
        self.assertEqual(recs[0]["dns_query"], "pool.supportxmr.com")
        self.assertEqual(recs[0]["source_ip"], "fd00::20")
        self.assertEqual(recs[0]["qtype"], "AAAA")
        self.assertEqual(recs[0]["time"], "2023-11-14T22:14:20.000Z")
        self.assertEqual(recs[0]["log"], db + ":2")
        self.assertEqual(recs[1]["cname_target"], "gw.moneropool.ru")
        # Any other SQLite file: reported, exit 2, no crash.
        other = self.path("other.db")
        o = sqlite3.connect(other)
        o.execute("CREATE TABLE t (x)")
        o.commit()
        o.close()
        rc, out, err = hunt(other)
        self.assertEqual(rc, 2, err)
        self.assertIn("not a Pi-hole FTL database", err)

    def test_rehunt_own_records(self):
        # Native and OCSF records of a hunt read back as dnsink and ocsf logs.
        for fmt, name in (("native", "dnsink"), ("ocsf", "ocsf")):
            rc, out, err = hunt("--no-dedup", "--output", fmt, PANTHER)
            self.assertEqual(rc, 0, err)
            recs = records(out)
            if fmt == "ocsf":
                self.assertTrue(all(r["class_uid"] == 4003 for r in recs))
            p = self.path("own-%s.jsonl" % fmt)
            with open(p, "w") as f:
                f.write(out)
            rc, out2, err2 = hunt("--no-dedup", "--output", "native", p)
            self.assertEqual(rc, 0, err2)
            self.assertIn("7 records (%s 7), 7 matches" % name, err2)
            again = records(out2)
            self.assertEqual([(r["dns_query"], r["source_ip"], r["time"]) for r in again],
                             [(r2["dns_query"], "5.6.7.8", "2022-06-25T00:27:53.000Z")
                              for r2 in records(out2)])

    def test_exit_status(self):
        rc, out, err = hunt("--fail-on-match", PANTHER)
        self.assertEqual(rc, 1, err)
        clean = self.path("clean.jsonl")
        with open(clean, "wb") as f:
            with open(PANTHER, "rb") as p:
                f.write(p.read().splitlines(keepends=True)[0])
        rc, out, err = hunt("--fail-on-match", clean)
        self.assertEqual((rc, out), (0, ""), err)
        rc, out, err = hunt("--format", "nope", clean)
        self.assertEqual(rc, 2, err)
        self.assertIn("unknown format", err)
        rc, out, err = hunt(self.path("missing.log"))
        self.assertEqual(rc, 2, err)
        self.assertIn("missing.log", err)


NAMED = shutil.which("named") or "/usr/sbin/named"
ZONE = """\
$TTL 300
@       SOA ns hostmaster 1 3600 600 86400 300
@       NS ns
ns      A 127.0.0.1
www     A 192.0.2.10
"""


class RealServers(unittest.TestCase):
    """Logs written by real servers from Debian: named's query log, knotd's dnstap."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="dk-hunt-srv-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_bind_query_log(self):
        d = self.tmp
        port = harness.free_port()
        for zone in ("example.test", "moneropool.ru"):
            with open(os.path.join(d, zone + ".zone"), "w") as f:
                f.write(ZONE)
        log = os.path.join(d, "query.log")
        conf = os.path.join(d, "named.conf")
        with open(conf, "w") as f:
            f.write("""
options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    querylog yes;
}};
controls {{ }};
logging {{
    channel q {{ file "{log}"; print-time yes; severity info; }};
    category queries {{ q; }};
}};
zone "example.test" {{ type primary; file "{d}/example.test.zone"; }};
zone "moneropool.ru" {{ type primary; file "{d}/moneropool.ru.zone"; }};
""".format(d=d, port=port, log=log))
        named = harness.Proc("named", [NAMED, "-f", "-c", conf], os.path.join(d, "named.out"))
        try:
            harness.wait_until(
                lambda: harness.udp_ask(port, harness.build_query("www.example.test"), 0.2),
                harness.START_TIMEOUT, what="named to answer")
            for name in ("www.example.test", "moneropool.ru", "x.y.moneropool.ru"):
                self.assertIsNotNone(harness.udp_ask(port, harness.build_query(name), 1.0))
            subprocess.run([harness.KDIG, "@127.0.0.1", "-p", str(port), "+tcp",
                            "pool.moneropool.ru", "AAAA"], stdout=subprocess.DEVNULL,
                           timeout=10, check=True)
            harness.wait_until(lambda: os.path.exists(log) and
                               open(log).read().count("query:") >= 5, 10, what="query log")
        finally:
            named.stop()
        rc, out, err = hunt("--no-dedup", log)
        self.assertEqual(rc, 0, err)
        self.assertIn("(bind ", err)
        self.assertIn("0 unparsable", err)
        recs = records(out)
        self.assertEqual([r["dns_query"] for r in recs],
                         ["moneropool.ru", "x.y.moneropool.ru", "pool.moneropool.ru"], out)
        self.assertEqual(recs[2]["transport"], "tcp")
        self.assertEqual(recs[2]["qtype"], "AAAA")
        self.assertEqual(recs[0]["source_ip"], "127.0.0.1")
        self.assertGreater(recs[0]["source_port"], 0)
        with open(log) as f:
            self.assertIn(recs[0]["time"][11:19], f.read())  # named wrote local time; TZ is UTC here

    def test_knot_dnstap(self):
        tap = os.path.join(self.tmp, "knot.dnstap")
        knot = harness.Knot(self.tmp, dnstap=tap)
        try:
            for name, qtype in (("moneropool.ru", "A"), ("www.example.test", "A"),
                                ("alias.example.test", "A"), ("www.moneropool.ru", "AAAA")):
                self.assertIsNotNone(harness.udp_ask(knot.port, harness.build_query(name, qtype), 1.0))
        finally:
            knot.stop()
        rc, out, err = hunt("--no-dedup", tap)
        self.assertEqual(rc, 0, err)
        self.assertIn("0 unparsable", err)
        recs = records(out)
        # Queries are judged on their names, answers on their CNAME targets: each lookup once.
        self.assertEqual([(r["dns_query"], r.get("cname_target")) for r in recs],
                         [("moneropool.ru", None), ("alias.example.test", "www.moneropool.ru"),
                          ("www.moneropool.ru", None)], out)
        self.assertEqual(recs[2]["qtype"], "AAAA")
        # dnstap-ldns (Debian's decoder) reads the same file: the same lookups are in it.
        p = subprocess.run(["dnstap-ldns", "-r", tap], stdout=subprocess.PIPE, timeout=10)
        self.assertIn(b'"alias.example.test." IN A', p.stdout)
        # Compressed, and cut inside a frame: what comes before the cut is read and the cut counted.
        data = open(tap, "rb").read()
        with gzip.open(tap + ".gz", "wb") as f:
            f.write(data)
        rc, out2, err = hunt("--no-dedup", tap + ".gz")
        self.assertEqual((rc, len(records(out2))), (0, 3), err)
        cut = os.path.join(self.tmp, "cut.dnstap")
        with open(cut, "wb") as f:
            f.write(data[:len(data) - 30])
        rc, out3, err = hunt("--no-dedup", cut)
        self.assertEqual(rc, 0, err)
        self.assertIn("Frame Streams frame cut or malformed", err)
        self.assertGreaterEqual(len(records(out3)), 2)


FSTRM_CAPTURE = shutil.which("fstrm_capture") or "/usr/bin/fstrm_capture"
# What dnsink's own alerts and a hunt over its dnstap must agree on (time may
# differ by the moments between the alert and the message being stamped).
SAME = ("rule_id", "action", "dns_query", "qtype", "matched", "cname_target", "source_ip",
        "source_port", "transport", "rcode", "count", "followup")


def key(r):
    return tuple(str(r.get(k)) for k in SAME)


class OwnDnstap(harness.DnsinkTest):
    """dnsink's own dnstap: to a file and to fstrm_capture's socket; hunt on it gives back
    the daemon's alerts."""

    start_dnsink = False
    NAMES = [("moneropool.ru", "A"), ("alias.example.test", "A"), ("x.wild.example.test", "A"),
             ("nx.example.test", "AAAA"), ("www.example.test", "A"), ("refused.example.test", "A"),
             ("cl-nx.example.test", "A")]

    def ask_all(self, d):
        for name, qtype in self.NAMES:
            harness.query(d.port, name, qtype)
        harness.query(d.port, "y.wild.example.test", "A", tcp=True)

    def test_file_reproduces_alerts(self):
        tap = os.path.join(self.dir, "dnsink.dnstap")
        # One worker: each worker has its own queue to the writer, so with more the file
        # is in time order per worker only, and dedup would open a window on another event.
        mport = harness.free_port()
        d = self.new_dnsink(extra_yaml="workers: 1\ndnstap:\n  file: %s\n  identity: it-dnsink\n"
                            "metrics:\n  listen: 127.0.0.1:%d\n" % (tap, mport))
        self.ask_all(d)
        d.wait_alerts(lambda a: True, n=4)  # the rest fold into these (same client, entry)
        # Every query and its answer went to the writer, none lost (/metrics says so).
        from test_metrics import curl, parse
        got = parse(curl(mport)[2])
        received = sum(v for k, v in got.items()
                       if k.startswith("dnsink_queries_received_total"))
        self.assertGreaterEqual(received, len(self.NAMES) + 1)  # + the harness's probe
        self.assertEqual(got['dnsink_dnstap_messages_total{state="sent"}'], 2 * received)
        self.assertEqual(got['dnsink_dnstap_messages_total{state="lost"}'], 0)
        self.assertEqual(d.problems(), [])  # stops it: follow-ups written, dnstap flushed
        daemon = d.alerts()
        rc, out, err = run_dnsink("hunt", "-c", d.conf, tap)
        self.assertEqual(rc, 0, err)
        self.assertIn("0 unparsable", err)
        hunted = records(out)
        self.assertEqual(sorted(map(key, hunted)), sorted(map(key, daemon)), out + err)
        # An answer-side alert (CNAME to a blocked name) is among them: it came from extra.
        self.assertTrue(any(r.get("cname_target") == "www.moneropool.ru" for r in hunted))
        by_key = {key(r): r for r in daemon}
        for r in hunted:
            a = by_key[key(r)]
            t = lambda x: int(x[17:19]) * 1000 + int(x[20:23])  # noqa: E731 - ss.mmm
            self.assertEqual(r["time"][:16], a["time"][:16])
            self.assertLess(abs(t(r["time"]) - t(a["time"])), 1000)
        # Debian's own decoder reads what dnsink wrote.
        p = subprocess.run(["dnstap-ldns", "-r", tap], stdout=subprocess.PIPE, timeout=10)
        text = p.stdout.decode()
        self.assertIn('CQ 127.0.0.1 UDP', text)
        self.assertIn('CR 127.0.0.1 TCP', text)
        self.assertIn('"alias.example.test." IN A', text)

    def test_socket_fstrm_capture_reconnect(self):
        sock = os.path.join(self.dir, "tap.sock")
        out_file = os.path.join(self.dir, "captured.dnstap")
        # dnsink first: the receiver is not there yet, and comes later.
        d = self.new_dnsink(extra_yaml="dnstap:\n  socket: %s\n" % sock)
        cap = harness.Proc("fstrm_capture", [FSTRM_CAPTURE, "-t", "protobuf:dnstap.Dnstap",
                                              "-u", sock, "-w", out_file],
                           os.path.join(self.dir, "fstrm_capture.log"))
        self._stoppers.append(cap.stop)
        harness.wait_until(lambda: os.path.exists(sock), 10, what="fstrm_capture's socket")

        def captured():
            harness.query(d.port, "moneropool.ru", "A")
            return os.path.exists(out_file) and os.path.getsize(out_file) > 200
        # libfstrm tries the socket again every second.
        harness.wait_until(captured, 15, step=0.5, what="dnsink to connect to fstrm_capture")
        self.ask_all(d)
        time.sleep(1.5)
        self.assertEqual(d.problems(), [])
        cap.stop()
        rc, out, err = run_dnsink("hunt", "-c", d.conf, "--no-dedup", out_file)
        self.assertEqual(rc, 0, err)
        names = {r["dns_query"] for r in records(out)}
        self.assertTrue({"moneropool.ru", "alias.example.test", "x.wild.example.test",
                         "nx.example.test", "y.wild.example.test"} <= names, out + err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
