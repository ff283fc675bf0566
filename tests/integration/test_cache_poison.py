#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Cache poisoning: a fake upstream (no real server poisons on purpose) tries
each trick against the real binary with the cache on, and the client must
never get the poisoned data from the cache. The tricks: records for an
unrelated name in the answer, authority and additional sections (asked
a.victim.test, the answer also says bank.test A 6.6.6.6, with an NS and glue
for it); a negative answer carrying such records, or the SOA of a zone the
name is not in; a CNAME chain out of the zone asked (x.test CNAME y.other, y.other
A 6.6.6.6); a truncated (TC=1) answer; a TTL of 2^31-1 (clamped to
cache.max_ttl on a hit) and one with the top bit set (RFC 2181: zero, so not
cached); answers from the wrong source port, with the wrong ID and after the
query was answered (spoofs, never stored: the real answer that follows is what
later hits return); and a flood of unique names into a 1 MiB cache (memory
stays within the cache's size plus a stated overhead, and the CLOCK hand
evicts). Forged addresses are in 6.6.6.0/24; one worker, so that every query
reaches the same cache."""
import os
import socket
import struct
import threading
import time

import harness
import promscrape
from harness import encode_name, question_end, query

FORGED = "6.6.6.6"
REAL = "192.0.2.77"
MAX_TTL = 300


def cache_yaml(size_mb=8, max_ttl=MAX_TTL):
    return ("workers: 1\ncache:\n  size_mb: %d\n  max_ttl: %d\n  prefetch: false\n"
            % (size_mb, max_ttl))


def qname_of(q):
    """The query's name, lowercase, without the final dot."""
    end = question_end(q)
    off, labels = 12, []
    while off < end - 4 and q[off]:
        n = q[off]
        labels.append(q[off + 1:off + 1 + n].decode("ascii", "replace").lower())
        off += n + 1
    return ".".join(labels)


def qtype_of(q):
    end = question_end(q)
    return struct.unpack("!H", q[end - 4:end - 2])[0]


def rr(name, rtype, data, ttl=60):
    """One record in wire form, names uncompressed."""
    if rtype == "A":
        t, rd = 1, socket.inet_aton(data)
    elif rtype == "AAAA":
        t, rd = 28, socket.inet_pton(socket.AF_INET6, data)
    elif rtype == "CNAME":
        t, rd = 5, encode_name(data)
    elif rtype == "NS":
        t, rd = 2, encode_name(data)
    elif rtype == "SOA":
        t = 6
        rd = (encode_name("ns." + name) + encode_name("hostmaster." + name)
              + struct.pack("!IIIII", 1, 3600, 600, 86400, data))
    else:
        raise ValueError(rtype)
    return encode_name(name) + struct.pack("!HHIH", t, 1, ttl, len(rd)) + rd


def answer(q, an=(), ns=(), ar=(), qid=None, tc=False, rcode=0):
    """An answer to query @q: its ID (or @qid), its question, the given sections."""
    end = question_end(q)
    rid = struct.unpack("!H", q[:2])[0] if qid is None else qid
    flags = 0x8180 | (struct.unpack("!H", q[2:4])[0] & 0x0100) | rcode
    if tc:
        flags |= 0x0200
    hdr = struct.pack("!HHHHHH", rid, flags, 1, len(an), len(ns), len(ar))
    return hdr + q[12:end] + b"".join(an) + b"".join(ns) + b"".join(ar)


def asked(fake, name):
    """How many queries (UDP and TCP) for @name the fake upstream received."""
    return sum(1 for _tr, q in list(fake.queries) if qname_of(q) == name)


def addresses(a):
    """Every A rdata in any section of answer @a."""
    return [r[4] for sec in (a.an, a.ns, a.ar) for r in sec if r[3] == "A"]


class CachePoison(harness.DnsinkTest):
    start_dnsink = False

    def start(self, handler, size_mb=8, extra=""):
        """A fake upstream with @handler, and dnsink (cache and metrics on) in front of it."""
        fake = self.fake_upstream(handler)
        self.mport = harness.free_port()
        self.dk = self.new_dnsink(upstreams=[fake.port],
                                  extra_yaml=cache_yaml(size_mb) + extra
                                  + promscrape.metrics_yaml(self.mport))
        return fake

    def metrics(self):
        return promscrape.scrape(self.mport)

    def assertUpstreamAnswer(self, fake, name, qtype="A", want=REAL):
        """@name is asked upstream (once more than before) and answered with @want."""
        before = asked(fake, name)
        a = query(self.dk.port, name, qtype)
        self.assertEqual(a.rcode, "NOERROR", a)
        self.assertEqual(asked(fake, name), before + 1,
                         "%s %s was not asked upstream: served from the cache" % (name, qtype))
        self.assertNotIn(FORGED, addresses(a), a)
        if want:
            self.assertEqual(a.rdata(qtype), [(qtype, want)], a)
        return a

    def test_unrelated_records_not_stored(self):
        """Asked a.victim.test; the answer also carries bank.test A 6.6.6.6 in
        every section, an NS for victim.test with glue, and an AAAA of the name
        asked. Only a.victim.test A is kept: bank.test, the NS target and
        a.victim.test AAAA are asked upstream, and the hit has nothing else."""
        def handler(q, send, transport):
            name = qname_of(q)
            if name == "a.victim.test" and qtype_of(q) == 1:
                send(answer(q,
                            an=[rr(name, "A", "192.0.2.1"), rr("bank.test", "A", FORGED),
                                rr(name, "AAAA", "2001:db8::666"),
                                rr("www.bank.test", "CNAME", "bank.test")],
                            ns=[rr("bank.test", "A", FORGED),
                                rr("victim.test", "NS", "ns.evil.test"),
                                rr("bank.test", "NS", "ns.evil.test")],
                            ar=[rr("bank.test", "A", FORGED), rr("ns.evil.test", "A", FORGED)]))
            elif qtype_of(q) == 28:
                send(answer(q, an=[rr(name, "AAAA", "2001:db8::77")]))
            else:
                send(answer(q, an=[rr(name, "A", REAL)]))
        fake = self.start(handler)
        first = query(self.dk.port, "a.victim.test", "A")
        self.assertEqual(first.rcode, "NOERROR", first)
        self.assertEqual(asked(fake, "a.victim.test"), 1)
        # The hit: the name asked, its A, nothing else in any section.
        hit = query(self.dk.port, "a.victim.test", "A", qid=4242)
        self.assertEqual(asked(fake, "a.victim.test"), 1, "the second ask was not a hit")
        self.assertEqual(hit.id, 4242, hit)
        # Records of the name asked are kept whatever their type (README "What is
        # kept"): the AAAA rides along in this entry, served only to A queries
        # for this name; an AAAA query is its own key (asked upstream below).
        self.assertEqual({r[0] for r in hit.an}, {"a.victim.test."}, hit)
        self.assertEqual(hit.rdata("A"), [("A", "192.0.2.1")], hit)
        self.assertEqual(hit.ns, [], hit)
        self.assertEqual(hit.ar, [], hit)
        # The names the answer tried to plant go upstream and get the real data.
        self.assertUpstreamAnswer(fake, "bank.test")
        self.assertUpstreamAnswer(fake, "ns.evil.test")
        self.assertUpstreamAnswer(fake, "www.bank.test")
        self.assertUpstreamAnswer(fake, "a.victim.test", "AAAA", want="2001:db8::77")
        # ... and from then on their own (real) answers are the hits.
        for name in ("bank.test", "ns.evil.test"):
            n = asked(fake, name)
            a = query(self.dk.port, name, "A")
            self.assertEqual(a.rdata(), [("A", REAL)], a)
            self.assertEqual(asked(fake, name), n, a)

    def test_negative_answer_keeps_only_its_zone(self):
        """NXDOMAIN for nx.victim.test with the victim.test SOA, and bank.test
        A 6.6.6.6 in its answer, authority and additional sections: stored as
        the negative answer (its SOA only), bank.test still goes upstream. An
        NXDOMAIN whose SOA is of a zone the name is not in is not stored."""
        def handler(q, send, transport):
            name = qname_of(q)
            forged = [rr("bank.test", "A", FORGED)]
            if name == "nx.victim.test":
                send(answer(q, an=forged, ns=[rr("victim.test", "SOA", 300)] + forged,
                            ar=forged, rcode=3))
            elif name == "nx2.victim.test":
                send(answer(q, ns=[rr("bank.test", "SOA", 300)], ar=forged, rcode=3))
            else:
                send(answer(q, an=[rr(name, "A", REAL)]))
        fake = self.start(handler)
        for _ in range(2):
            a = query(self.dk.port, "nx.victim.test", "A")
            self.assertEqual(a.rcode, "NXDOMAIN", a)
        self.assertEqual(asked(fake, "nx.victim.test"), 1, "NXDOMAIN not cached")
        self.assertEqual(a.an, [], a)
        self.assertEqual([(r[0], r[3]) for r in a.ns], [("victim.test.", "SOA")], a)
        self.assertEqual(a.ar, [], a)
        self.assertUpstreamAnswer(fake, "bank.test")
        for i in (1, 2):
            a = query(self.dk.port, "nx2.victim.test", "A")
            self.assertEqual(a.rcode, "NXDOMAIN", a)
            self.assertEqual(asked(fake, "nx2.victim.test"), i, a)
        m = self.metrics()
        self.assertEqual(m['dnsink_cache_refused_total{reason="no_soa"}'], 2, m)

    def test_out_of_bailiwick_cname_chain(self):
        """x.test CNAME y.other, y.other A 6.6.6.6: the chain is the answer to
        x.test (served from the cache for x.test), never an answer to y.other."""
        def handler(q, send, transport):
            name = qname_of(q)
            if name == "x.test":
                send(answer(q, an=[rr("x.test", "CNAME", "y.other", ttl=120),
                                   rr("y.other", "A", FORGED, ttl=120),
                                   rr("z.other", "A", FORGED, ttl=120)]))
            else:
                send(answer(q, an=[rr(name, "A", REAL)]))
        fake = self.start(handler)
        for qid in (1, 2):
            a = query(self.dk.port, "x.test", "A", qid=qid)
            self.assertEqual(a.rcode, "NOERROR", a)
            self.assertEqual(a.rdata("CNAME"), [("CNAME", "y.other.")], a)
        self.assertEqual(asked(fake, "x.test"), 1, "x.test not answered from the cache")
        self.assertNotIn("z.other.", [r[0] for r in a.an], a)
        self.assertUpstreamAnswer(fake, "y.other")
        self.assertUpstreamAnswer(fake, "z.other")
        n = asked(fake, "y.other")
        a = query(self.dk.port, "y.other", "A")
        self.assertEqual(a.rdata(), [("A", REAL)], a)
        self.assertEqual(asked(fake, "y.other"), n, a)

    def test_truncated_never_cached(self):
        """TC=1 over UDP and over the TCP retry: nothing is stored, each ask goes upstream."""
        def handler(q, send, transport):
            send(answer(q, an=[rr(qname_of(q), "A", FORGED)], tc=True))
        fake = self.start(handler)
        counts = []
        for tcp in (False, False, True, True):
            query(self.dk.port, "tc.victim.test", "A", tcp=tcp)
            counts.append(asked(fake, "tc.victim.test"))
        # Every ask reached the upstream (UDP then TCP for a UDP client; TCP for a TCP one).
        self.assertTrue(all(b > a for a, b in zip([0] + counts, counts)), counts)
        m = self.metrics()
        self.assertEqual(m["dnsink_cache_inserts_total"], 0, m)
        self.assertEqual(m["dnsink_cache_entries"], 0, m)
        self.assertEqual(m["dnsink_cache_hits_total"], 0, m)
        self.assertGreaterEqual(m['dnsink_cache_refused_total{reason="tc"}'], 4, m)

    def test_huge_ttl_clamped(self):
        """TTL 2^31-1: the first client gets it as sent, a hit gets at most max_ttl."""
        def handler(q, send, transport):
            name = qname_of(q)
            if name == "huge.victim.test":
                send(answer(q, an=[rr(name, "CNAME", "huge2.victim.test", ttl=0x7FFFFFFF),
                                   rr("huge2.victim.test", "A", REAL, ttl=0x7FFFFFFF)]))
            else:
                send(answer(q, an=[rr(name, "A", REAL, ttl=0x7FFFFFFF)]))
        fake = self.start(handler)
        first = query(self.dk.port, "huge.victim.test", "A")
        self.assertEqual([r[1] for r in first.an], [0x7FFFFFFF] * 2, first)
        time.sleep(1.1)
        for _ in range(2):
            hit = query(self.dk.port, "huge.victim.test", "A")
            self.assertEqual(hit.rdata("A"), [("A", REAL)], hit)
            self.assertEqual(len(hit.an), 2, hit)
            for r in hit.an:
                self.assertLessEqual(r[1], MAX_TTL - 1, hit)
                self.assertGreaterEqual(r[1], MAX_TTL - 10, hit)
        self.assertEqual(asked(fake, "huge.victim.test"), 1)
        # The stored TTL is the clamped one: expired after max_ttl, whatever was sent.
        m = self.metrics()
        self.assertEqual(m["dnsink_cache_hits_total"], 2, m)

    def test_ttl_top_bit_not_cached(self):
        """TTL 2^31 (top bit set) is zero (RFC 2181 section 8): not cached at all."""
        def handler(q, send, transport):
            send(answer(q, an=[rr(qname_of(q), "A", REAL, ttl=0x80000000)]))
        fake = self.start(handler)
        for i in (1, 2):
            a = query(self.dk.port, "msb.victim.test", "A")
            self.assertEqual(a.rdata(), [("A", REAL)], a)
            self.assertEqual(asked(fake, "msb.victim.test"), i, a)
        m = self.metrics()
        self.assertEqual(m['dnsink_cache_refused_total{reason="ttl0"}'], 2, m)
        self.assertEqual(m["dnsink_cache_entries"], 0, m)

    def test_spoofed_answers_not_cached(self):
        """Forged answers from another port and with a wrong ID come first, a
        forged one with the right ID and port after the real one (the query is
        answered by then): later hits return the real answer, not a forged one."""
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other.bind(("127.0.0.1", 0))
        self.addCleanup(other.close)
        late = []

        def handler(q, send, transport):
            name = qname_of(q)
            forged = answer(q, an=[rr(name, "A", FORGED, ttl=3000)])
            if transport == "udp":
                other.sendto(forged, fake.last_peer)
                qid = struct.unpack("!H", q[:2])[0]
                send(answer(q, an=[rr(name, "A", FORGED, ttl=3000)], qid=qid ^ 0x5A5A))
            send(answer(q, an=[rr(name, "A", REAL)]))
            if transport == "udp":
                t = threading.Timer(0.05, lambda: send(forged))
                t.daemon = True
                t.start()
                late.append(t)
        fake = None
        fake = self.start(handler)
        for name in ("spoof1.victim.test", "spoof2.victim.test"):
            a = query(self.dk.port, name, "A")
            self.assertEqual(a.rdata(), [("A", REAL)], a)
            time.sleep(0.2)  # the late forgery has arrived
            for _ in range(2):
                hit = query(self.dk.port, name, "A")
                self.assertEqual(hit.rdata(), [("A", REAL)], hit)
                self.assertLessEqual(hit.an[0][1], 60, hit)
            self.assertEqual(asked(fake, name), 1)
        for t in late:
            t.join(2)
        m = self.metrics()
        mism = sum(v for k, v in m.items() if k.startswith("dnsink_upstream_mismatched_total"))
        # Per query: the other port, the wrong ID and the late one.
        self.assertGreaterEqual(mism, 6, m)
        self.assertEqual(m["dnsink_cache_inserts_total"], 2, m)
        self.assertEqual(m["dnsink_cache_hits_total"], 4, m)

    def test_flood_bounded(self):
        """30,000 unique names into a 1 MiB cache (one worker): the CLOCK hand
        evicts, the gauges stay within the capacity, and resident memory grows
        by at most the cache's arena (1 MiB, allocated at start but touched
        only as it fills) plus 8 MiB of slack (heap and stack pages touched
        for the first time, sanitizer shadow), not with the flood."""
        def handler(q, send, transport):
            send(answer(q, an=[rr(qname_of(q), "A", REAL, ttl=3600)]))
        # meson test sets MALLOC_PERTURB_, which makes glibc fill every block at
        # malloc and so touches the whole arena at start; without it the pages
        # are touched as the cache fills, which is the growth measured here.
        perturb = os.environ.pop("MALLOC_PERTURB_", None)
        try:
            fake = self.start(handler, size_mb=1)
        finally:
            if perturb is not None:
                os.environ["MALLOC_PERTURB_"] = perturb
        pid = self.dk.proc.pid
        # Warm up the paths (hit, miss, insert, metrics) before the baseline.
        harness.udp_queries(self.dk.port, ["w%d.flood.test" % i for i in range(500)] * 2,
                            deadline=20)
        self.metrics()
        rss_before = vmrss_kib(pid)
        names = ["f%d.flood.test" % i for i in range(30000)]
        t = time.monotonic()
        res = harness.udp_queries(self.dk.port, names, window=64, deadline=60)
        elapsed = time.monotonic() - t
        rss_after = vmrss_kib(pid)
        m = self.metrics()
        print("\nflood: %d names in %.1fs %s; VmRSS before %d KiB, after %d KiB (+%d); "
              "entries %d bytes %d capacity %d evictions %d inserts %d"
              % (len(names), elapsed, res, rss_before, rss_after, rss_after - rss_before,
                 m["dnsink_cache_entries"], m["dnsink_cache_bytes"],
                 m["dnsink_cache_capacity_bytes"], m["dnsink_cache_evictions_total"],
                 m["dnsink_cache_inserts_total"]))
        self.assertLessEqual(res["unanswered"], len(names) // 100, res)
        self.assertEqual(set(res) - {"unanswered"}, {0}, res)
        cap = m["dnsink_cache_capacity_bytes"]
        self.assertLessEqual(cap, 1 << 20, m)
        self.assertGreater(m["dnsink_cache_evictions_total"], 0, m)
        self.assertLessEqual(m["dnsink_cache_bytes"], cap, m)
        # One 128-octet chunk at least per entry.
        self.assertLessEqual(m["dnsink_cache_entries"], cap // 128, m)
        self.assertGreater(m["dnsink_cache_entries"], 0, m)
        self.assertGreaterEqual(m["dnsink_cache_inserts_total"],
                                30000 - res["unanswered"], m)
        self.assertLessEqual(m["dnsink_cache_entries"],
                             m["dnsink_cache_inserts_total"] - m["dnsink_cache_evictions_total"],
                             m)
        self.assertLess(rss_after - rss_before, 1024 + 8 * 1024)
        # Still answering from the cache: the last names asked are hits.
        n = len(fake.queries)
        a = query(self.dk.port, names[-1], "A")
        self.assertEqual(a.rdata(), [("A", REAL)], a)
        self.assertEqual(len(fake.queries), n, a)


def vmrss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


if __name__ == "__main__":
    harness.main()
