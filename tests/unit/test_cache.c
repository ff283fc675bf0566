/* SPDX-License-Identifier: MIT */
/*
 * The response cache alone (src/core/cache.c): answers built with ldns from
 * record text, inserted and looked up with a clock the test moves, the
 * served copies read back with ldns. Key separation, TTLs counted down and
 * clamped, negative TTLs from the SOA, failures, the byte bound and CLOCK
 * eviction, refusals, and the stripping of records that do not answer the
 * question.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ldns/ldns.h>

#include "dnsink/cache.h"
#include "dnsink/msg.h"
#include "dnsink/name.h"

#define T0 1000000 /* the test clock starts here (ms) */

struct fx {
	struct dk_cache *c;
	uint8_t ans[65536];
	uint8_t out[65536];
	uint8_t name[DK_NAME_MAX];
	struct dk_cache_key k;
};

static const struct dk_cache_limits LIM = {
        .min_ttl = 0,
        .max_ttl = 86400,
        .negative_max_ttl = 3600,
        .failure_ttl = 5,
        .stale_max_s = 600,
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(dk_cache_new(1 << 20, 42, &f->c), 0);
	dk_cache_set_limits(f->c, &LIM);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	dk_cache_free(f->c);
	free(f);
	return 0;
}

/* Sets f->k to @p name (text, any case: the key is lowercase) / @p type, bits @p bits. */
static struct dk_cache_key *key(struct fx *f, const char *name, uint16_t type, uint8_t bits)
{
	size_t len;
	assert_int_equal(dk_name_from_text(name, strlen(name), 0, f->name, &len), 0);
	f->k = (struct dk_cache_key){
	        .name = f->name,
	        .name_len = (uint8_t)len,
	        .qtype = type,
	        .qclass = LDNS_RR_CLASS_IN,
	        .bits = bits,
	};
	return &f->k;
}

static void push(ldns_pkt *p, ldns_pkt_section sec, const char *const *rrs)
{
	for (; rrs && *rrs; rrs++) {
		ldns_rr *rr = NULL;
		assert_int_equal(ldns_rr_new_frm_str(&rr, *rrs, 0, NULL, NULL), LDNS_STATUS_OK);
		ldns_pkt_push_rr(p, sec, rr);
	}
}

/* An answer to @p name/@p type with @p rcode and records per section (NULL-terminated lists). */
static size_t answer(struct fx *f, const char *name, ldns_rr_type type, uint8_t rcode,
                     const char *const *an, const char *const *ns, const char *const *ar)
{
	ldns_pkt *p = NULL;
	uint8_t *wire = NULL;
	size_t len = 0;

	assert_int_equal(ldns_pkt_query_new_frm_str(&p, name, type, LDNS_RR_CLASS_IN, LDNS_RD),
	                 LDNS_STATUS_OK);
	ldns_pkt_set_id(p, 0x4242);
	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_ra(p, true);
	ldns_pkt_set_rcode(p, rcode);
	push(p, LDNS_SECTION_ANSWER, an);
	push(p, LDNS_SECTION_AUTHORITY, ns);
	push(p, LDNS_SECTION_ADDITIONAL, ar);
	assert_int_equal(ldns_pkt2wire(&wire, p, &len), LDNS_STATUS_OK);
	assert_true(len <= sizeof(f->ans));
	memcpy(f->ans, wire, len);
	free(wire);
	ldns_pkt_free(p);
	return len;
}

/* Looks f->k up at @p now; returns the served copy parsed (caller frees), NULL on a miss. */
static ldns_pkt *lookup(struct fx *f, uint64_t now, bool stale, struct dk_cache_hit *hit)
{
	struct dk_cache_hit h;
	ldns_pkt *p = NULL;
	int n = dk_cache_lookup(f->c, &f->k, now, stale, f->out, sizeof(f->out), hit ? hit : &h);

	assert_true(n >= 0);
	if (n == 0)
		return NULL;
	assert_int_equal(dk_msg_check_answer_body(f->out, (size_t)n), 0);
	assert_int_equal(ldns_wire2pkt(&p, f->out, (size_t)n), LDNS_STATUS_OK);
	return p;
}

static uint32_t ttl_of(ldns_rr_list *l, size_t i)
{
	assert_true(i < ldns_rr_list_rr_count(l));
	return ldns_rr_ttl(ldns_rr_list_rr(l, i));
}

static const char *const WWW_A[] = {"www.example.test. 300 IN A 192.0.2.1", NULL};

static void test_key_separation(void **state)
{
	struct fx *f = *state;
	size_t n = answer(f, "WWW.Example.TEST.", LDNS_RR_TYPE_A, 0, WWW_A, NULL, NULL);

	/* The upstream echoed the client's case; the key is lowercase. */
	assert_int_equal(dk_cache_insert(f->c, key(f, "www.example.test", LDNS_RR_TYPE_A, 0),
	                                 f->ans, n, T0, NULL),
	                 DK_CACHE_STORED);
	ldns_pkt *p = lookup(f, T0, false, NULL);
	assert_non_null(p);
	ldns_pkt_free(p);
	/* Any case of the name asked: the caller lowercases it into the key. */
	key(f, "wWw.EXAMPLE.test", LDNS_RR_TYPE_A, 0);
	p = lookup(f, T0, false, NULL);
	assert_non_null(p);
	ldns_pkt_free(p);
	key(f, "www.example.test", LDNS_RR_TYPE_A, DK_CACHE_BIT_DO);
	assert_null(lookup(f, T0, false, NULL));
	key(f, "www.example.test", LDNS_RR_TYPE_A, DK_CACHE_BIT_CD);
	assert_null(lookup(f, T0, false, NULL));
	key(f, "www.example.test", LDNS_RR_TYPE_AAAA, 0);
	assert_null(lookup(f, T0, false, NULL));
	key(f, "www.example.test", LDNS_RR_TYPE_A, 0)->qclass = LDNS_RR_CLASS_CH;
	assert_null(lookup(f, T0, false, NULL));
	key(f, "www2.example.test", LDNS_RR_TYPE_A, 0);
	assert_null(lookup(f, T0, false, NULL));

	/* A DO answer lives beside the plain one. */
	assert_int_equal(
	        dk_cache_insert(f->c, key(f, "www.example.test", LDNS_RR_TYPE_A, DK_CACHE_BIT_DO),
	                        f->ans, n, T0, NULL),
	        DK_CACHE_STORED);
	struct dk_cache_stats st;
	dk_cache_stats(f->c, &st);
	assert_int_equal(st.entries, 2);
	/* Storing a key again replaces its entry. */
	assert_int_equal(dk_cache_insert(f->c, &f->k, f->ans, n, T0 + 1, NULL), DK_CACHE_STORED);
	dk_cache_stats(f->c, &st);
	assert_int_equal(st.entries, 2);
}

/* dk_cache_flush(): one name (every type and bit), then everything; the room comes back. */
static void test_flush(void **state)
{
	struct fx *f = *state;
	static const char *const WWW2_A[] = {"www2.example.test. 300 IN A 192.0.2.2", NULL};
	struct dk_cache_stats st, empty;
	size_t n;

	dk_cache_stats(f->c, &empty);
	n = answer(f, "www.example.test.", LDNS_RR_TYPE_A, 0, WWW_A, NULL, NULL);
	assert_int_equal(dk_cache_insert(f->c, key(f, "www.example.test", LDNS_RR_TYPE_A, 0),
	                                 f->ans, n, T0, NULL),
	                 DK_CACHE_STORED);
	assert_int_equal(
	        dk_cache_insert(f->c, key(f, "www.example.test", LDNS_RR_TYPE_A, DK_CACHE_BIT_DO),
	                        f->ans, n, T0, NULL),
	        DK_CACHE_STORED);
	n = answer(f, "www2.example.test.", LDNS_RR_TYPE_A, 0, WWW2_A, NULL, NULL);
	assert_int_equal(dk_cache_insert(f->c, key(f, "www2.example.test", LDNS_RR_TYPE_A, 0),
	                                 f->ans, n, T0, NULL),
	                 DK_CACHE_STORED);
	/* A name that is not there, and a parent of one that is: nothing goes. */
	key(f, "example.test", LDNS_RR_TYPE_A, 0);
	assert_int_equal(dk_cache_flush(f->c, f->k.name, f->k.name_len), 0);
	key(f, "www.example.test", LDNS_RR_TYPE_A, 0);
	assert_int_equal(dk_cache_flush(f->c, f->k.name, f->k.name_len), 2);
	assert_null(lookup(f, T0, false, NULL));
	key(f, "www2.example.test", LDNS_RR_TYPE_A, 0);
	ldns_pkt *p = lookup(f, T0, false, NULL);
	assert_non_null(p);
	ldns_pkt_free(p);
	dk_cache_stats(f->c, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(dk_cache_flush(f->c, NULL, 0), 1);
	assert_null(lookup(f, T0, false, NULL));
	dk_cache_stats(f->c, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.bytes, empty.bytes);
	/* The freed chunks take new entries. */
	assert_int_equal(dk_cache_insert(f->c, &f->k, f->ans, n, T0, NULL), DK_CACHE_STORED);
}

/* An answer to another question is not stored under this key. */
static void test_wrong_question(void **state)
{
	struct fx *f = *state;
	size_t n = answer(f, "www.example.test.", LDNS_RR_TYPE_A, 0, WWW_A, NULL, NULL);

	assert_int_equal(dk_cache_insert(f->c, key(f, "www.example.test", LDNS_RR_TYPE_AAAA, 0),
	                                 f->ans, n, T0, NULL),
	                 DK_CACHE_REFUSED_MALFORMED);
	assert_int_equal(
	        dk_cache_insert(f->c, key(f, "bank.test", LDNS_RR_TYPE_A, 0), f->ans, n, T0, NULL),
	        DK_CACHE_REFUSED_MALFORMED);
	assert_int_equal(dk_cache_insert(f->c, key(f, "www.example.test", LDNS_RR_TYPE_A, 0),
	                                 f->ans, 5, T0, NULL),
	                 DK_CACHE_REFUSED_MALFORMED);
	f->ans[2] &= 0x7f; /* QR clear: a query, not an answer */
	assert_int_equal(dk_cache_insert(f->c, &f->k, f->ans, n, T0, NULL),
	                 DK_CACHE_REFUSED_MALFORMED);
	f->ans[2] |= 0x80 | 0x10; /* opcode STATUS */
	assert_int_equal(dk_cache_insert(f->c, &f->k, f->ans, n, T0, NULL),
	                 DK_CACHE_REFUSED_MALFORMED);
}

static void test_ttl_decrement(void **state)
{
	struct fx *f = *state;
	static const char *const an[] = {
	        "www.example.test. 300 IN CNAME web.example.test.",
	        "web.example.test. 120 IN A 192.0.2.1",
	        NULL,
	};
	size_t n = answer(f, "www.example.test.", LDNS_RR_TYPE_A, 0, an, NULL, NULL);
	struct dk_cache_hit hit;

	assert_int_equal(dk_cache_insert(f->c, key(f, "www.example.test", LDNS_RR_TYPE_A, 0),
	                                 f->ans, n, T0, NULL),
	                 DK_CACHE_STORED);
	f->ans[2] |= 0x04; /* AA, as an authoritative upstream sends it */
	assert_int_equal(dk_cache_insert(f->c, &f->k, f->ans, n, T0, NULL), DK_CACHE_STORED);
	ldns_pkt *p = lookup(f, T0 + 10999, false, &hit);
	assert_non_null(p);
	assert_false(ldns_pkt_aa(p));
	assert_true(ldns_pkt_rd(p));
	assert_true(ldns_pkt_qr(p));
	assert_false(hit.stale);
	assert_int_equal(hit.kind, DK_CACHE_POSITIVE);
	assert_int_equal(hit.age_s, 10);
	assert_int_equal(hit.ttl_s, 120);
	assert_int_equal(ttl_of(ldns_pkt_answer(p), 0), 290);
	assert_int_equal(ttl_of(ldns_pkt_answer(p), 1), 110);
	ldns_pkt_free(p);
	/* The smallest TTL decides how long the entry is fresh. */
	p = lookup(f, T0 + 119999, false, &hit);
	assert_non_null(p);
	assert_int_equal(ttl_of(ldns_pkt_answer(p), 1), 1);
	ldns_pkt_free(p);
	assert_null(lookup(f, T0 + 120000, false, &hit));
	/* Expired: served stale (TTL 30) only when asked for, within stale_max_s. */
	p = lookup(f, T0 + 120000, true, &hit);
	assert_non_null(p);
	assert_true(hit.stale);
	assert_int_equal(ttl_of(ldns_pkt_answer(p), 0), DK_CACHE_STALE_TTL);
	assert_int_equal(ttl_of(ldns_pkt_answer(p), 1), DK_CACHE_STALE_TTL);
	ldns_pkt_free(p);
	assert_null(lookup(f, T0 + (120 + 600) * 1000, true, &hit));
	struct dk_cache_stats st;
	dk_cache_stats(f->c, &st);
	assert_int_equal(st.entries, 0); /* past its stale window: removed */
	assert_int_equal(st.bytes, 0);
}

static void test_clamp(void **state)
{
	struct fx *f = *state;
	static const char *const lo[] = {"lo.example.test. 5 IN A 192.0.2.1", NULL};
	static const char *const hi[] = {"hi.example.test. 999999 IN A 192.0.2.1", NULL};
	static const char *const zero[] = {"z.example.test. 0 IN A 192.0.2.1", NULL};
	struct dk_cache_limits lim = LIM;
	struct dk_cache_hit hit;

	lim.min_ttl = 60;
	lim.max_ttl = 3600;
	dk_cache_set_limits(f->c, &lim);
	size_t n = answer(f, "lo.example.test.", LDNS_RR_TYPE_A, 0, lo, NULL, NULL);
	assert_int_equal(dk_cache_insert(f->c, key(f, "lo.example.test", LDNS_RR_TYPE_A, 0), f->ans,
	                                 n, T0, NULL),
	                 DK_CACHE_STORED);
	ldns_pkt *p = lookup(f, T0, false, &hit);
	assert_int_equal(hit.ttl_s, 60);
	assert_int_equal(ttl_of(ldns_pkt_answer(p), 0), 60);
	ldns_pkt_free(p);

	n = answer(f, "hi.example.test.", LDNS_RR_TYPE_A, 0, hi, NULL, NULL);
	assert_int_equal(dk_cache_insert(f->c, key(f, "hi.example.test", LDNS_RR_TYPE_A, 0), f->ans,
	                                 n, T0, NULL),
	                 DK_CACHE_STORED);
	p = lookup(f, T0, false, &hit);
	assert_int_equal(hit.ttl_s, 3600);
	assert_int_equal(ttl_of(ldns_pkt_answer(p), 0), 3600);
	ldns_pkt_free(p);

	/* With min_ttl 0, a TTL of 0 means "do not cache". */
	dk_cache_set_limits(f->c, &LIM);
	n = answer(f, "z.example.test.", LDNS_RR_TYPE_A, 0, zero, NULL, NULL);
	assert_int_equal(dk_cache_insert(f->c, key(f, "z.example.test", LDNS_RR_TYPE_A, 0), f->ans,
	                                 n, T0, NULL),
	                 DK_CACHE_REFUSED_TTL0);
}

static void test_negative(void **state)
{
	struct fx *f = *state;
	static const char *const soa[] = {
	        "example.test. 3600 IN SOA ns.example.test. host.example.test. 1 3600 600 86400 "
	        "300",
	        NULL,
	};
	static const char *const soa_low[] = {
	        "example.test. 50 IN SOA ns.example.test. host.example.test. 1 3600 600 86400 300",
	        NULL,
	};
	struct dk_cache_hit hit;

	/* NXDOMAIN: the smaller of SOA TTL and MINIMUM (RFC 2308 section 5). */
	size_t n =
	        answer(f, "nx.example.test.", LDNS_RR_TYPE_A, LDNS_RCODE_NXDOMAIN, NULL, soa, NULL);
	assert_int_equal(dk_cache_insert(f->c, key(f, "nx.example.test", LDNS_RR_TYPE_A, 0), f->ans,
	                                 n, T0, NULL),
	                 DK_CACHE_STORED);
	ldns_pkt *p = lookup(f, T0 + 100000, false, &hit);
	assert_non_null(p);
	assert_int_equal(hit.kind, DK_CACHE_NEGATIVE);
	assert_int_equal(hit.ttl_s, 300);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NXDOMAIN);
	assert_int_equal(ldns_pkt_ancount(p), 0);
	assert_int_equal(ldns_pkt_nscount(p), 1);
	/* The SOA's TTL is the negative TTL, counted down. */
	assert_int_equal(ttl_of(ldns_pkt_authority(p), 0), 200);
	ldns_pkt_free(p);

	/* NODATA, the SOA's own TTL smaller than MINIMUM. */
	n = answer(f, "www.example.test.", LDNS_RR_TYPE_MX, 0, NULL, soa_low, NULL);
	assert_int_equal(dk_cache_insert(f->c, key(f, "www.example.test", LDNS_RR_TYPE_MX, 0),
	                                 f->ans, n, T0, NULL),
	                 DK_CACHE_STORED);
	p = lookup(f, T0, false, &hit);
	assert_int_equal(hit.kind, DK_CACHE_NEGATIVE);
	assert_int_equal(hit.ttl_s, 50);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
	ldns_pkt_free(p);

	/* Capped by negative_max_ttl. */
	struct dk_cache_limits lim = LIM;
	lim.negative_max_ttl = 20;
	dk_cache_set_limits(f->c, &lim);
	n = answer(f, "nx2.example.test.", LDNS_RR_TYPE_A, LDNS_RCODE_NXDOMAIN, NULL, soa, NULL);
	assert_int_equal(dk_cache_insert(f->c, key(f, "nx2.example.test", LDNS_RR_TYPE_A, 0),
	                                 f->ans, n, T0, NULL),
	                 DK_CACHE_STORED);
	p = lookup(f, T0, false, &hit);
	assert_int_equal(hit.ttl_s, 20);
	ldns_pkt_free(p);
	lim.negative_max_ttl = 0; /* 0: negative answers are not cached */
	dk_cache_set_limits(f->c, &lim);
	assert_int_equal(dk_cache_insert(f->c, &f->k, f->ans, n, T0, NULL), DK_CACHE_REFUSED_TTL0);
	dk_cache_set_limits(f->c, &LIM);

	/* Without an SOA (RFC 2308 section 5: not cached). */
	n = answer(f, "nx3.example.test.", LDNS_RR_TYPE_A, LDNS_RCODE_NXDOMAIN, NULL, NULL, NULL);
	assert_int_equal(dk_cache_insert(f->c, key(f, "nx3.example.test", LDNS_RR_TYPE_A, 0),
	                                 f->ans, n, T0, NULL),
	                 DK_CACHE_REFUSED_NO_SOA);
}

/* An SOA of a zone the name is not in is no SOA; it and unrelated records are stripped. */
static void test_negative_strip(void **state)
{
	struct fx *f = *state;
	static const char *const other_soa[] = {
	        "bank.test. 3600 IN SOA ns.bank.test. host.bank.test. 1 3600 600 86400 300",
	        NULL,
	};
	static const char *const mixed[] = {
	        "bank.test. 3600 IN NS ns.evil.test.",
	        "example.test. 3600 IN SOA ns.example.test. host.example.test. 1 3600 600 86400 "
	        "300",
	        "example.test. 3600 IN NS ns.example.test.",
	        "nx.example.test. 300 IN NSEC oz.example.test. A RRSIG NSEC",
	        "bank.test. 300 IN NSEC zz.bank.test. A",
	        NULL,
	};
	static const char *const glue[] = {"ns.evil.test. 3600 IN A 203.0.113.66", NULL};

	size_t n = answer(f, "nx.example.test.", LDNS_RR_TYPE_A, LDNS_RCODE_NXDOMAIN, NULL,
	                  other_soa, NULL);
	assert_int_equal(dk_cache_insert(f->c, key(f, "nx.example.test", LDNS_RR_TYPE_A, 0), f->ans,
	                                 n, T0, NULL),
	                 DK_CACHE_REFUSED_NO_SOA);

	n = answer(f, "nx.example.test.", LDNS_RR_TYPE_A, LDNS_RCODE_NXDOMAIN, NULL, mixed, glue);
	assert_int_equal(dk_cache_insert(f->c, &f->k, f->ans, n, T0, NULL), DK_CACHE_STORED);
	ldns_pkt *p = lookup(f, T0, false, NULL);
	assert_non_null(p);
	ldns_rr_list *ns = ldns_pkt_authority(p);
	/* The SOA and the NSEC of the zone; not the NS sets, not bank.test's NSEC, no glue. */
	assert_int_equal(ldns_rr_list_rr_count(ns), 2);
	assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(ns, 0)), LDNS_RR_TYPE_SOA);
	assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(ns, 1)), LDNS_RR_TYPE_NSEC);
	assert_int_equal(ldns_pkt_arcount(p), 0);
	ldns_pkt_free(p);
}

/* Poisoning: only the CNAME chain from the name asked and its last name's records are kept. */
static void test_strip_unrelated(void **state)
{
	struct fx *f = *state;
	static const char *const an[] = {
	        "bank.test. 86400 IN A 203.0.113.66", /* unrelated, before the chain */
	        "www.example.test. 300 IN CNAME edge.cdn.test.",
	        "edge.cdn.test. 300 IN CNAME e1.cdn.test.",
	        "other.cdn.test. 300 IN A 203.0.113.67", /* a sibling of the chain */
	        "e1.cdn.test. 60 IN A 192.0.2.7",
	        "e1.cdn.test. 60 IN A 192.0.2.8",
	        "e1.cdn.test. 60 IN AAAA 2001:db8::7", /* the last name, another type: kept */
	        NULL,
	};
	static const char *const ns[] = {"bank.test. 86400 IN NS ns.evil.test.", NULL};
	static const char *const ar[] = {
	        "ns.evil.test. 86400 IN A 203.0.113.66",
	        "www.bank.test. 86400 IN A 203.0.113.66",
	        NULL,
	};

	size_t n = answer(f, "www.example.test.", LDNS_RR_TYPE_A, 0, an, ns, ar);
	assert_int_equal(dk_cache_insert(f->c, key(f, "www.example.test", LDNS_RR_TYPE_A, 0),
	                                 f->ans, n, T0, NULL),
	                 DK_CACHE_STORED);
	ldns_pkt *p = lookup(f, T0, false, NULL);
	assert_non_null(p);
	ldns_rr_list *a = ldns_pkt_answer(p);
	assert_int_equal(ldns_rr_list_rr_count(a), 5);
	for (size_t i = 0; i < ldns_rr_list_rr_count(a); i++) {
		char *s = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(a, i)));
		assert_true(!strcmp(s, "www.example.test.") || !strcmp(s, "edge.cdn.test.") ||
		            !strcmp(s, "e1.cdn.test."));
		free(s);
	}
	/* The CNAME target, read back from uncompressed storage. */
	char *t = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(a, 0), 0));
	assert_string_equal(t, "edge.cdn.test.");
	free(t);
	assert_int_equal(ldns_pkt_nscount(p), 0);
	assert_int_equal(ldns_pkt_arcount(p), 0);
	ldns_pkt_free(p);

	/* Nothing but unrelated records: a NODATA without SOA, not cached at all. */
	static const char *const only_evil[] = {"bank.test. 86400 IN A 203.0.113.66", NULL};
	n = answer(f, "www2.example.test.", LDNS_RR_TYPE_A, 0, only_evil, NULL, ar);
	assert_int_equal(dk_cache_insert(f->c, key(f, "www2.example.test", LDNS_RR_TYPE_A, 0),
	                                 f->ans, n, T0, NULL),
	                 DK_CACHE_REFUSED_NO_SOA);
	/* And the unrelated names never became entries of their own. */
	key(f, "bank.test", LDNS_RR_TYPE_A, 0);
	assert_null(lookup(f, T0, false, NULL));
}

/* A DNAME above the name asked is part of the answer; one elsewhere is not. */
static void test_dname(void **state)
{
	struct fx *f = *state;
	static const char *const an[] = {
	        "example.test. 300 IN DNAME example.net.",
	        "other.test. 300 IN DNAME evil.test.",
	        "www.example.test. 300 IN CNAME www.example.net.",
	        "www.example.net. 300 IN A 192.0.2.9",
	        NULL,
	};
	size_t n = answer(f, "www.example.test.", LDNS_RR_TYPE_A, 0, an, NULL, NULL);
	assert_int_equal(dk_cache_insert(f->c, key(f, "www.example.test", LDNS_RR_TYPE_A, 0),
	                                 f->ans, n, T0, NULL),
	                 DK_CACHE_STORED);
	ldns_pkt *p = lookup(f, T0, false, NULL);
	assert_int_equal(ldns_pkt_ancount(p), 3);
	assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_answer(p), 0)),
	                 LDNS_RR_TYPE_DNAME);
	ldns_pkt_free(p);
}

static void test_refusals(void **state)
{
	struct fx *f = *state;
	size_t n = answer(f, "www.example.test.", LDNS_RR_TYPE_A, 0, WWW_A, NULL, NULL);

	key(f, "www.example.test", LDNS_RR_TYPE_A, 0);
	f->ans[2] |= 0x02; /* TC */
	assert_int_equal(dk_cache_insert(f->c, &f->k, f->ans, n, T0, NULL), DK_CACHE_REFUSED_TC);
	n = answer(f, "www.example.test.", LDNS_RR_TYPE_A, LDNS_RCODE_REFUSED, NULL, NULL, NULL);
	assert_int_equal(dk_cache_insert(f->c, &f->k, f->ans, n, T0, NULL), DK_CACHE_REFUSED_RCODE);
	/* A refused answer leaves the entry of its key in place (to be served stale). */
	n = answer(f, "www.example.test.", LDNS_RR_TYPE_A, 0, WWW_A, NULL, NULL);
	assert_int_equal(dk_cache_insert(f->c, &f->k, f->ans, n, T0, NULL), DK_CACHE_STORED);
	n = answer(f, "www.example.test.", LDNS_RR_TYPE_A, LDNS_RCODE_FORMERR, NULL, NULL, NULL);
	assert_int_equal(dk_cache_insert(f->c, &f->k, f->ans, n, T0, NULL), DK_CACHE_REFUSED_RCODE);
	ldns_pkt *p = lookup(f, T0, false, NULL);
	assert_non_null(p);
	ldns_pkt_free(p);
	/* An extended rcode in the OPT: here 1 << 4 | NOERROR, BADVERS (16). */
	n = answer(f, "www.example.test.", LDNS_RR_TYPE_A, 0, WWW_A, NULL, NULL);
	ldns_pkt *e = NULL;
	assert_int_equal(ldns_wire2pkt(&e, f->ans, n), LDNS_STATUS_OK);
	ldns_pkt_set_edns_udp_size(e, 1232);
	ldns_pkt_set_edns_extended_rcode(e, 1);
	ldns_pkt_set_edns_data(e, ldns_rdf_new_frm_str(LDNS_RDF_TYPE_HEX, ""));
	uint8_t *w = NULL;
	assert_int_equal(ldns_pkt2wire(&w, e, &n), LDNS_STATUS_OK);
	assert_int_equal(dk_cache_insert(f->c, &f->k, w, n, T0, NULL), DK_CACHE_REFUSED_RCODE);
	free(w);
	ldns_pkt_set_edns_extended_rcode(e, 0);
	assert_int_equal(ldns_pkt2wire(&w, e, &n), LDNS_STATUS_OK);
	assert_int_equal(dk_cache_insert(f->c, &f->k, w, n, T0, NULL), DK_CACHE_STORED);
	free(w);
	ldns_pkt_free(e);
	assert_string_equal(dk_cache_result_name(DK_CACHE_REFUSED_SIZE), "size");
	assert_string_equal(dk_cache_result_name(DK_CACHE_RESULT_MAX), "unknown");
}

/* SERVFAIL is kept failure_ttl, and never served stale. */
static void test_failure(void **state)
{
	struct fx *f = *state;
	struct dk_cache_hit hit;
	size_t n = answer(f, "dead.example.test.", LDNS_RR_TYPE_A, LDNS_RCODE_SERVFAIL, NULL, NULL,
	                  NULL);

	assert_int_equal(dk_cache_insert(f->c, key(f, "dead.example.test", LDNS_RR_TYPE_A, 0),
	                                 f->ans, n, T0, NULL),
	                 DK_CACHE_STORED);
	ldns_pkt *p = lookup(f, T0 + 4999, false, &hit);
	assert_non_null(p);
	assert_int_equal(hit.kind, DK_CACHE_FAILURE);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_SERVFAIL);
	ldns_pkt_free(p);
	assert_null(lookup(f, T0 + 5000, true, &hit));
}

/* A refresh is due in the last tenth of the TTL, claimed once, until stored again or cancelled. */
static void test_refresh(void **state)
{
	struct fx *f = *state;
	struct dk_cache_hit hit;
	size_t n = answer(f, "www.example.test.", LDNS_RR_TYPE_A, 0, WWW_A, NULL, NULL);
	const unsigned PF = DK_CACHE_LOOKUP_PREFETCH;

	key(f, "www.example.test", LDNS_RR_TYPE_A, 0);
	assert_int_equal(dk_cache_insert(f->c, &f->k, f->ans, n, T0, NULL), DK_CACHE_STORED);
	assert_true(dk_cache_lookup(f->c, &f->k, T0 + 269999, PF, f->out, sizeof(f->out), &hit) >
	            0);
	assert_false(hit.refresh);
	assert_true(dk_cache_lookup(f->c, &f->k, T0 + 270000, 0, f->out, sizeof(f->out), &hit) > 0);
	assert_false(hit.refresh); /* not asked for */
	assert_true(dk_cache_lookup(f->c, &f->k, T0 + 270000, PF, f->out, sizeof(f->out), &hit) >
	            0);
	assert_true(hit.refresh);
	assert_true(dk_cache_lookup(f->c, &f->k, T0 + 280000, PF, f->out, sizeof(f->out), &hit) >
	            0);
	assert_false(hit.refresh); /* one in flight */
	dk_cache_refresh_cancel(f->c, &f->k);
	assert_true(dk_cache_lookup(f->c, &f->k, T0 + 280000, PF, f->out, sizeof(f->out), &hit) >
	            0);
	assert_true(hit.refresh);
	/* The refreshed answer is a new entry: fresh, nothing due. */
	assert_int_equal(dk_cache_insert(f->c, &f->k, f->ans, n, T0 + 281000, NULL),
	                 DK_CACHE_STORED);
	assert_true(dk_cache_lookup(f->c, &f->k, T0 + 282000, PF, f->out, sizeof(f->out), &hit) >
	            0);
	assert_false(hit.refresh);
	assert_int_equal(hit.age_s, 1);
	/* Expired or stale entries are never refreshed from here. */
	assert_true(dk_cache_lookup(f->c, &f->k, T0 + 281000 + 300000, PF | DK_CACHE_LOOKUP_STALE,
	                            f->out, sizeof(f->out), &hit) > 0);
	assert_true(hit.stale);
	assert_false(hit.refresh);
}

/* An answer larger than an eighth of the arena is refused; nothing is evicted for it. */
static void test_oversize(void **state)
{
	struct fx *f = *state;
	static char text[200][300];
	static const char *an[201];
	char big[256];

	memset(big, 'x', 250);
	big[250] = '\0';
	for (int i = 0; i < 200; i++) {
		snprintf(text[i], sizeof(text[i]), "big.example.test. 300 IN TXT \"%03d%s\"", i,
		         big);
		an[i] = text[i];
	}
	an[200] = NULL;
	/* The smallest cache: its largest entry is smaller than the largest message. */
	dk_cache_free(f->c);
	assert_int_equal(dk_cache_new(DK_CACHE_MIN_BYTES, 7, &f->c), 0);
	dk_cache_set_limits(f->c, &LIM);
	size_t n = answer(f, "www.example.test.", LDNS_RR_TYPE_A, 0, WWW_A, NULL, NULL);
	assert_int_equal(dk_cache_insert(f->c, key(f, "www.example.test", LDNS_RR_TYPE_A, 0),
	                                 f->ans, n, T0, NULL),
	                 DK_CACHE_STORED);
	n = answer(f, "big.example.test.", LDNS_RR_TYPE_TXT, 0, an, NULL, NULL);
	assert_true(n > 50000);
	unsigned ev = 99;
	assert_int_equal(dk_cache_insert(f->c, key(f, "big.example.test", LDNS_RR_TYPE_TXT, 0),
	                                 f->ans, n, T0, &ev),
	                 DK_CACHE_REFUSED_SIZE);
	assert_int_equal(ev, 0);
	struct dk_cache_stats st;
	dk_cache_stats(f->c, &st);
	assert_int_equal(st.entries, 1);
	/* A lookup into a buffer too small for the entry says so. */
	key(f, "www.example.test", LDNS_RR_TYPE_A, 0);
	struct dk_cache_hit hit;
	assert_int_equal(dk_cache_lookup(f->c, &f->k, T0, false, f->out, 20, &hit), DK_ESPACE);
}

/* Under a flood of names the octets in use stay within the arena; CLOCK spares a name asked again.
 */
static void test_eviction(void **state)
{
	struct fx *f = *state;
	struct dk_cache_stats st;
	char name[64], rr[128];
	unsigned i, ev, total_ev = 0, first_ev = 0;

	dk_cache_stats(f->c, &st);
	assert_true(st.capacity <= 1 << 20);
	/* Each entry: header 40 + answer 53 (the owner a pointer to the question): one chunk. */
	for (i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), "n%05u.example.test.", i);
		snprintf(rr, sizeof(rr), "%s 300 IN A 192.0.2.1", name);
		const char *an[] = {rr, NULL};
		size_t n = answer(f, name, LDNS_RR_TYPE_A, 0, an, NULL, NULL);
		assert_int_equal(
		        dk_cache_insert(f->c, key(f, name, LDNS_RR_TYPE_A, 0), f->ans, n, T0, &ev),
		        DK_CACHE_STORED);
		total_ev += ev;
		if (ev && !first_ev) {
			first_ev = i;
			/* The cache is full: ask for name 1 again, so its bit is set. */
			key(f, "n00001.example.test.", LDNS_RR_TYPE_A, 0);
			ldns_pkt *p = lookup(f, T0, false, NULL);
			assert_non_null(p);
			ldns_pkt_free(p);
		}
		dk_cache_stats(f->c, &st);
		assert_true(st.bytes <= st.capacity);
		if (first_ev && i == first_ev + 3)
			break;
	}
	assert_true(first_ev > 1000);
	assert_int_equal(st.entries, first_ev);
	assert_int_equal(st.bytes, st.entries * DK_CACHE_CHUNK);
	assert_true(st.capacity - st.bytes < DK_CACHE_CHUNK);
	assert_int_equal(st.evictions, total_ev);
	/* Names 0, 2, 3, 4 went first; name 1 was spared. */
	key(f, "n00001.example.test.", LDNS_RR_TYPE_A, 0);
	ldns_pkt *p = lookup(f, T0, false, NULL);
	assert_non_null(p);
	ldns_pkt_free(p);
	key(f, "n00000.example.test.", LDNS_RR_TYPE_A, 0);
	assert_null(lookup(f, T0, false, NULL));
	key(f, "n00002.example.test.", LDNS_RR_TYPE_A, 0);
	assert_null(lookup(f, T0, false, NULL));
	key(f, "n00005.example.test.", LDNS_RR_TYPE_A, 0);
	p = lookup(f, T0, false, NULL);
	assert_non_null(p);
	ldns_pkt_free(p);
}

static void test_new_bounds(void **state)
{
	(void)state;
	struct dk_cache *c = (struct dk_cache *)&c;
	assert_int_equal(dk_cache_new(DK_CACHE_MIN_BYTES - 1, 1, &c), -EINVAL);
	assert_null(c);
	assert_int_equal(dk_cache_new(DK_CACHE_MIN_BYTES, 1, &c), 0);
	struct dk_cache_stats st;
	dk_cache_stats(c, &st);
	assert_true(st.capacity > 0 && st.capacity < DK_CACHE_MIN_BYTES);
	assert_int_equal(st.entries, 0);
	dk_cache_free(c);
	dk_cache_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_key_separation, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_flush, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_wrong_question, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_ttl_decrement, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_clamp, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_negative, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_negative_strip, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_strip_unrelated, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_dname, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_failure, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_refresh, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_oversize, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_eviction, setup, teardown),
	        cmocka_unit_test(test_new_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
