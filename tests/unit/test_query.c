/* SPDX-License-Identifier: MIT */
/*
 * The query module alone (src/daemon/query.c): a fake client that records
 * its replies, a fake forwarder that records what it is asked and answers
 * when the test says so, a fake alert sink and a fake clock. Policy and
 * config are real (rules written to a temporary folder). Queries and upstream
 * answers are built with ldns and the replies read back with it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <ldns/ldns.h>

#include "daemon/query.h"
#include "dnsink/groups.h"

static const char RULES[] =
        "id: T.Sink\nname: sink\nseverity: high\naction: sinkhole\ndomains: [sink.test]\n"
        "---\n"
        "id: T.NX\nname: nx\nseverity: medium\naction: nxdomain\ndomains: [nx.test]\n"
        "---\n"
        "id: T.Alert\nname: alert\nseverity: low\naction: alert\ndomains: [alert.test]\n"
        "---\n"
        "id: T.Allow\nname: allow\nseverity: low\naction: allow\ndomains: [ok.sink.test]\n";

/** What the fakes saw. */
struct world {
	struct dk_queries *qs;
	struct dk_query_counters ctr;
	struct dk_cache_counters cctr;
	struct dk_config cfg;
	struct dk_cidr allow[2];
	struct dk_policy *pol;
	uint32_t rule_slot[8];
	dk_ctr rule_hits[8];
	char dir[64];
	char path[96];
	uint64_t now;
	/* the client */
	unsigned replies, holds, dones;
	uint8_t reply[65536];
	size_t reply_len;
	/* the forwarder */
	int forward_rc;
	unsigned forwards;
	bool fwd_tcp;
	uint8_t fwd_pkt[4096];
	size_t fwd_len;
	struct dk_query fwd_q;
	dk_forward_done_fn *fwd_done;
	void *fwd_ctx;
	/* the alert sink */
	unsigned alerts;
	struct dk_alert_event ev;
};

static struct world *W; /* the fakes' callbacks reach the world through it */

static void fake_reply(const struct dk_client *cl, const uint8_t *ans, size_t len)
{
	(void)cl;
	W->replies++;
	memcpy(W->reply, ans, len);
	W->reply_len = len;
}

static void fake_hold(const struct dk_client *cl)
{
	(void)cl;
	W->holds++;
}

static void fake_done(const struct dk_client *cl)
{
	(void)cl;
	W->dones++;
}

static const struct dk_client_ops udp_ops = {.reply = fake_reply};
static const struct dk_client_ops tcp_ops = {
        .reply = fake_reply, .hold = fake_hold, .done = fake_done};

static int fake_forward(void *fwd, const uint8_t *pkt, size_t len, const struct dk_query *q,
                        bool tcp, dk_forward_done_fn *done, void *ctx)
{
	struct world *w = fwd;

	w->forwards++;
	if (w->forward_rc)
		return w->forward_rc;
	w->fwd_tcp = tcp;
	memcpy(w->fwd_pkt, pkt, len);
	w->fwd_len = len;
	w->fwd_q = *q;
	w->fwd_done = done;
	w->fwd_ctx = ctx;
	return 0;
}

static void fake_alert(void *ctx, const struct dk_alert_event *ev)
{
	struct world *w = ctx;

	w->alerts++;
	w->ev = *ev;
}

static uint64_t fake_now(void *ctx)
{
	return ((struct world *)ctx)->now;
}

static struct dk_client client(bool tcp, const char *ip)
{
	struct dk_client cl = {
	        .ops = tcp ? &tcp_ops : &udp_ops,
	        .transport = tcp ? DK_TRANSPORT_TCP : DK_TRANSPORT_UDP,
	};
	assert_int_equal(dk_addr_parse(ip, 40000, &cl.peer), 0);
	return cl;
}

static void configure(struct world *w)
{
	const struct dk_queries_conf qc = {
	        .cfg = &w->cfg,
	        .pol = w->pol,
	        .rule_slot = w->rule_slot,
	        .rule_hits = w->rule_hits,
	        .n_rule_hits = 8,
	};
	assert_int_equal(dk_queries_configure(w->qs, &qc), 0);
}

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	struct dk_diag d;

	assert_non_null(w);
	snprintf(w->dir, sizeof(w->dir), "/tmp/dnsink-test-query-XXXXXX");
	assert_non_null(mkdtemp(w->dir));
	snprintf(w->path, sizeof(w->path), "%s/rules.yml", w->dir);
	FILE *f = fopen(w->path, "w");
	assert_non_null(f);
	fputs(RULES, f);
	fclose(f);
	const char *paths[] = {w->path};
	assert_int_equal(dk_policy_load(paths, 1, 0, &w->pol, &d), 0);
	assert_true(w->pol->n_rules <= 8);
	/* Slots in reverse, so an index used as a slot by mistake shows. */
	for (unsigned i = 0; i < w->pol->n_rules; i++)
		w->rule_slot[i] = 7 - i;
	assert_int_equal(dk_cidr_parse("0.0.0.0/0", &w->allow[0]), 0);
	assert_int_equal(dk_cidr_parse("::/0", &w->allow[1]), 0);
	w->cfg.allow = w->allow;
	w->cfg.n_allow = 2;
	w->cfg.sinkhole.ttl = 60;
	memset(w->cfg.sinkhole.ipv4, 0, 4);

	const struct dk_queries_env env = {
	        .forward = fake_forward,
	        .fwd = w,
	        .alert = fake_alert,
	        .alert_ctx = w,
	        .now_ms = fake_now,
	        .clock_ctx = w,
	        .max_pending = 4,
	        .ctr = &w->ctr,
	        .cache_ctr = &w->cctr,
	        .n_workers = 1,
	};
	assert_int_equal(dk_queries_new(&env, &w->qs), 0);
	configure(w);
	W = w;
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;

	dk_queries_free(w->qs);
	dk_policy_unref(w->pol);
	unlink(w->path);
	rmdir(w->dir);
	free(w);
	W = NULL;
	return 0;
}

/* Wire form of a query for @p name/@p type with ID @p id (RD set, EDNS when @p edns). */
static size_t make_query(const char *name, ldns_rr_type type, uint16_t id, bool edns, uint8_t *out)
{
	ldns_pkt *p = NULL;
	uint8_t *wire = NULL;
	size_t len = 0;

	assert_int_equal(ldns_pkt_query_new_frm_str(&p, name, type, LDNS_RR_CLASS_IN, LDNS_RD),
	                 LDNS_STATUS_OK);
	ldns_pkt_set_id(p, id);
	if (edns) {
		ldns_pkt_set_edns_udp_size(p, 1232);
		ldns_pkt_set_edns_data(p, ldns_rdf_new_frm_str(LDNS_RDF_TYPE_HEX, ""));
	}
	assert_int_equal(ldns_pkt2wire(&wire, p, &len), LDNS_STATUS_OK);
	memcpy(out, wire, len);
	free(wire);
	ldns_pkt_free(p);
	return len;
}

/* An upstream answer (ID @p id) to @p name/@p type with the records @p rrs (NULL-terminated). */
static size_t make_answer(const char *name, ldns_rr_type type, uint16_t id, const char *const *rrs,
                          uint8_t *out)
{
	ldns_pkt *p = NULL;
	uint8_t *wire = NULL;
	size_t len = 0;

	assert_int_equal(ldns_pkt_query_new_frm_str(&p, name, type, LDNS_RR_CLASS_IN, LDNS_RD),
	                 LDNS_STATUS_OK);
	ldns_pkt_set_id(p, id);
	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_ra(p, true);
	for (; rrs && *rrs; rrs++) {
		ldns_rr *rr = NULL;
		assert_int_equal(ldns_rr_new_frm_str(&rr, *rrs, 0, NULL, NULL), LDNS_STATUS_OK);
		ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr);
	}
	assert_int_equal(ldns_pkt2wire(&wire, p, &len), LDNS_STATUS_OK);
	memcpy(out, wire, len);
	free(wire);
	ldns_pkt_free(p);
	return len;
}

/* The last reply, parsed; the caller frees it. */
static ldns_pkt *last_reply(struct world *w)
{
	ldns_pkt *p = NULL;

	assert_true(w->replies > 0);
	assert_int_equal(ldns_wire2pkt(&p, w->reply, w->reply_len), LDNS_STATUS_OK);
	return p;
}

static unsigned rule_index(struct world *w, const char *id)
{
	for (unsigned i = 0; i < w->pol->n_rules; i++)
		if (strcmp(w->pol->rules[i].id, id) == 0)
			return i;
	fail_msg("no rule %s", id);
	return 0;
}

static uint64_t hits(struct world *w, const char *id)
{
	return dk_ctr_get(&w->rule_hits[w->rule_slot[rule_index(w, id)]]);
}

static uint64_t out(struct world *w, int tr, enum dk_outcome o)
{
	return dk_ctr_get(&w->ctr.out[tr][o]);
}

static void test_sinkhole(void **state)
{
	struct world *w = *state;
	struct dk_client cl = client(false, "192.0.2.7");
	uint8_t q[512];
	size_t n = make_query("www.Sink.test.", LDNS_RR_TYPE_A, 0x4242, false, q);

	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->forwards, 0);
	assert_int_equal(w->replies, 1);
	ldns_pkt *p = last_reply(w);
	assert_int_equal(ldns_pkt_id(p), 0x4242);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
	assert_int_equal(ldns_pkt_ancount(p), 1);
	char *a = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(p), 0), 0));
	assert_string_equal(a, "0.0.0.0");
	free(a);
	ldns_pkt_free(p);
	assert_int_equal(out(w, DK_TRANSPORT_UDP, DK_OUT_SINKHOLED), 1);
	assert_int_equal(dk_ctr_get(&w->ctr.queries[DK_TRANSPORT_UDP]), 1);
	assert_int_equal(hits(w, "T.Sink"), 1);
	assert_int_equal(w->alerts, 1);
	assert_string_equal(w->ev.rule->id, "T.Sink");
	assert_int_equal(w->ev.rcode, LDNS_RCODE_NOERROR);
	assert_int_equal(w->ev.target_len, 0);
	assert_int_equal(w->ev.transport, DK_TRANSPORT_UDP);
}

static void test_nxdomain(void **state)
{
	struct world *w = *state;
	struct dk_client cl = client(false, "192.0.2.7");
	uint8_t q[512];
	size_t n = make_query("a.b.nx.test.", LDNS_RR_TYPE_AAAA, 7, true, q);

	dk_queries_handle(w->qs, &cl, q, n);
	ldns_pkt *p = last_reply(w);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NXDOMAIN);
	ldns_pkt_free(p);
	assert_int_equal(out(w, DK_TRANSPORT_UDP, DK_OUT_NXDOMAIN), 1);
	assert_int_equal(w->ev.rcode, LDNS_RCODE_NXDOMAIN);
	assert_int_equal(hits(w, "T.NX"), 1);
}

/* An alert rule forwards; the upstream's answer reaches a TCP client with its own ID. */
static void test_alert_forwards(void **state)
{
	struct world *w = *state;
	struct dk_client cl = client(true, "2001:db8::1");
	uint8_t q[512], ans[512];
	size_t n = make_query("x.alert.test.", LDNS_RR_TYPE_A, 0x1111, false, q);

	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->forwards, 1);
	assert_true(w->fwd_tcp);
	assert_int_equal(w->holds, 1);
	assert_int_equal(w->dones, 0);
	assert_int_equal(w->replies, 0);
	assert_int_equal(w->alerts, 1);
	assert_int_equal(w->ev.family, AF_INET6);
	assert_int_equal(out(w, DK_TRANSPORT_TCP, DK_OUT_FORWARDED), 1);

	const char *rrs[] = {"x.alert.test. 30 IN A 192.0.2.1", NULL};
	size_t an = make_answer("x.alert.test.", LDNS_RR_TYPE_A, 0x9999, rrs, ans);
	w->fwd_done(w->fwd_ctx, ans, an, q, n, &w->fwd_q);
	assert_int_equal(w->replies, 1);
	assert_int_equal(w->dones, 1);
	ldns_pkt *p = last_reply(w);
	assert_int_equal(ldns_pkt_id(p), 0x1111);
	assert_int_equal(ldns_pkt_ancount(p), 1);
	ldns_pkt_free(p);
}

static void test_allow_exception(void **state)
{
	struct world *w = *state;
	struct dk_client cl = client(false, "192.0.2.7");
	uint8_t q[512];
	size_t n = make_query("ok.sink.test.", LDNS_RR_TYPE_A, 1, false, q);

	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->forwards, 1);
	assert_int_equal(w->alerts, 0);
	assert_int_equal(hits(w, "T.Allow"), 1);
	assert_int_equal(hits(w, "T.Sink"), 0);
}

static void test_malformed(void **state)
{
	struct world *w = *state;
	struct dk_client cl = client(false, "192.0.2.7");
	uint8_t q[512];
	size_t n = make_query("debian.org.", LDNS_RR_TYPE_A, 5, false, q);

	/* QDCOUNT 2 with one question: FORMERR, with the client's ID. */
	q[5] = 2;
	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->replies, 1);
	assert_int_equal(out(w, DK_TRANSPORT_UDP, DK_OUT_FORMERR), 1);
	assert_int_equal(w->reply[3] & 0x0f, LDNS_RCODE_FORMERR);
	assert_int_equal(w->reply[1], 5);
	/* A response (QR set) is never answered. */
	q[5] = 1;
	q[2] |= LDNS_QR_MASK;
	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->replies, 1);
	assert_int_equal(out(w, DK_TRANSPORT_UDP, DK_OUT_DROPPED), 1);
	/* Nor is a datagram the transport could not read whole (length 0). */
	dk_queries_handle(w->qs, &cl, q, 0);
	assert_int_equal(w->replies, 1);
	assert_int_equal(out(w, DK_TRANSPORT_UDP, DK_OUT_DROPPED), 2);
	assert_int_equal(dk_ctr_get(&w->ctr.queries[DK_TRANSPORT_UDP]), 3);
	assert_int_equal(w->forwards, 0);
}

static void test_acl(void **state)
{
	struct world *w = *state;
	struct dk_client cl = client(false, "192.0.2.7");
	uint8_t q[512];
	size_t n = make_query("sink.test.", LDNS_RR_TYPE_A, 5, true, q);

	assert_int_equal(dk_cidr_parse("10.0.0.0/8", &w->allow[0]), 0);
	w->cfg.n_allow = 1;
	dk_queries_handle(w->qs, &cl, q, n);
	ldns_pkt *p = last_reply(w);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_REFUSED);
	ldns_pkt_free(p);
	assert_int_equal(out(w, DK_TRANSPORT_UDP, DK_OUT_ACL_REFUSED), 1);
	/* The access list comes before the policy: no hit, no alert. */
	assert_int_equal(hits(w, "T.Sink"), 0);
	assert_int_equal(w->alerts, 0);
}

/* A forward that cannot go (table full) is SERVFAIL at once, and the hold is given back. */
static void test_forward_full(void **state)
{
	struct world *w = *state;
	struct dk_client cl = client(true, "192.0.2.7");
	uint8_t q[512];
	size_t n = make_query("debian.org.", LDNS_RR_TYPE_A, 9, false, q);

	w->forward_rc = DK_EFULL;
	dk_queries_handle(w->qs, &cl, q, n);
	ldns_pkt *p = last_reply(w);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_SERVFAIL);
	ldns_pkt_free(p);
	assert_int_equal(w->holds, 1);
	assert_int_equal(w->dones, 1);
	assert_int_equal(dk_ctr_get(&w->ctr.table_full), 1);
	assert_int_equal(out(w, DK_TRANSPORT_TCP, DK_OUT_SERVFAIL), 1);
	assert_int_equal(out(w, DK_TRANSPORT_TCP, DK_OUT_FORWARDED), 0);
}

/* More queries than pending entries: the extra ones are SERVFAIL, counted as table full. */
static void test_pending_pool(void **state)
{
	struct world *w = *state;
	struct dk_client cl = client(false, "192.0.2.7");
	uint8_t q[512];
	size_t n = make_query("debian.org.", LDNS_RR_TYPE_A, 9, false, q);

	for (int i = 0; i < 5; i++)
		dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->forwards, 4);
	assert_int_equal(out(w, DK_TRANSPORT_UDP, DK_OUT_FORWARDED), 4);
	assert_int_equal(dk_ctr_get(&w->ctr.table_full), 1);
	assert_int_equal(w->replies, 1);
	/* The last forward ends (every upstream failed): SERVFAIL, and its entry is free again. */
	w->fwd_done(w->fwd_ctx, NULL, 0, q, n, &w->fwd_q);
	assert_int_equal(w->replies, 2);
	assert_int_equal(out(w, DK_TRANSPORT_UDP, DK_OUT_SERVFAIL), 2);
	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->forwards, 5);
}

/* CNAME cloaking: a blocked target turns the answer into the rule's local answer. */
static void test_cname_blocked(void **state)
{
	struct world *w = *state;
	struct dk_client cl = client(false, "192.0.2.7");
	uint8_t q[512], ans[512];
	size_t n = make_query("www.example.test.", LDNS_RR_TYPE_A, 0x2222, false, q);

	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->forwards, 1);
	const char *rrs[] = {"www.example.test. 30 IN CNAME edge.nx.test.",
	                     "edge.nx.test. 30 IN A 192.0.2.9", NULL};
	size_t an = make_answer("www.example.test.", LDNS_RR_TYPE_A, 0x7777, rrs, ans);
	w->fwd_done(w->fwd_ctx, ans, an, q, n, &w->fwd_q);
	ldns_pkt *p = last_reply(w);
	assert_int_equal(ldns_pkt_id(p), 0x2222);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NXDOMAIN);
	assert_int_equal(ldns_pkt_ancount(p), 0);
	ldns_pkt_free(p);
	assert_int_equal(dk_ctr_get(&w->ctr.cname_blocked), 1);
	assert_int_equal(hits(w, "T.NX"), 1);
	assert_int_equal(w->alerts, 1);
	assert_int_equal(w->ev.rcode, LDNS_RCODE_NXDOMAIN);
	/* The event names both: the name asked and the target the rule matched. */
	assert_int_equal(w->ev.qname_len, 18);
	assert_int_equal(w->ev.target_len, 14);
	assert_memory_equal(w->ev.target, "\4edge\2nx\4test\0", 14);
}

/* An alert rule on a target lets the answer pass, with an alert; an allow on the name asked wins.
 */
static void test_cname_alerted(void **state)
{
	struct world *w = *state;
	struct dk_client cl = client(false, "192.0.2.7");
	uint8_t q[512], ans[512];
	size_t n = make_query("www.example.test.", LDNS_RR_TYPE_A, 3, false, q);

	dk_queries_handle(w->qs, &cl, q, n);
	const char *rrs[] = {"www.example.test. 30 IN CNAME cdn.alert.test.",
	                     "cdn.alert.test. 30 IN A 192.0.2.9", NULL};
	size_t an = make_answer("www.example.test.", LDNS_RR_TYPE_A, 0x7777, rrs, ans);
	w->fwd_done(w->fwd_ctx, ans, an, q, n, &w->fwd_q);
	ldns_pkt *p = last_reply(w);
	assert_int_equal(ldns_pkt_ancount(p), 2);
	ldns_pkt_free(p);
	assert_int_equal(dk_ctr_get(&w->ctr.cname_alerted), 1);
	assert_int_equal(w->alerts, 1);
	assert_int_equal(w->ev.rcode, LDNS_RCODE_NOERROR);

	/* ok.sink.test is allowed: its CNAME into sink.test passes untouched, unalerted. */
	n = make_query("ok.sink.test.", LDNS_RR_TYPE_A, 4, false, q);
	dk_queries_handle(w->qs, &cl, q, n);
	const char *rrs2[] = {"ok.sink.test. 30 IN CNAME bad.sink.test.", NULL};
	an = make_answer("ok.sink.test.", LDNS_RR_TYPE_A, 0x7778, rrs2, ans);
	w->fwd_done(w->fwd_ctx, ans, an, q, n, &w->fwd_q);
	p = last_reply(w);
	assert_int_equal(ldns_pkt_ancount(p), 1);
	ldns_pkt_free(p);
	assert_int_equal(w->alerts, 1);
	assert_int_equal(dk_ctr_get(&w->ctr.cname_blocked), 0);
}

/* An answer too large for a UDP client without EDNS is truncated (TC) to fit 512 octets. */
static void test_udp_truncation(void **state)
{
	struct world *w = *state;
	struct dk_client cl = client(false, "192.0.2.7");
	uint8_t q[512], ans[4096];
	size_t n = make_query("big.example.test.", LDNS_RR_TYPE_TXT, 3, false, q);
	char rr[40][300];
	const char *rrs[41];

	for (int i = 0; i < 40; i++) {
		snprintf(rr[i], sizeof(rr[i]),
		         "big.example.test. 30 IN TXT \"%02d-0123456789012345678901234567890\"", i);
		rrs[i] = rr[i];
	}
	rrs[40] = NULL;
	dk_queries_handle(w->qs, &cl, q, n);
	size_t an = make_answer("big.example.test.", LDNS_RR_TYPE_TXT, 0x7777, rrs, ans);
	assert_true(an > 512);
	w->fwd_done(w->fwd_ctx, ans, an, q, n, &w->fwd_q);
	assert_true(w->reply_len <= 512);
	assert_true(w->reply[2] & LDNS_TC_MASK);
	assert_int_equal(w->reply[1], 3);
}

/* Over the rate limit: dropped, or REFUSED with action refused; the clock refills the bucket. */
static void test_ratelimit(void **state)
{
	struct world *w = *state;
	struct dk_client cl = client(false, "192.0.2.7");
	uint8_t q[512];
	size_t n = make_query("sink.test.", LDNS_RR_TYPE_A, 5, false, q);

	w->cfg.rate_limit.qps = 1;
	w->cfg.rate_limit.burst = 1;
	w->cfg.rate_limit.table_size = 64;
	w->cfg.rate_limit.ipv4_prefix = 32;
	w->cfg.rate_limit.ipv6_prefix = 64;
	w->cfg.rate_limit.action = DK_RATELIMIT_DROP;
	configure(w);
	assert_true(dk_queries_ratelimit_size(w->qs) >= 64);
	w->now = 1000;
	dk_queries_handle(w->qs, &cl, q, n);
	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->replies, 1);
	assert_int_equal(out(w, DK_TRANSPORT_UDP, DK_OUT_RATELIMITED), 1);
	/* Before parsing: a limited query is neither matched nor alerted. */
	assert_int_equal(hits(w, "T.Sink"), 1);
	w->cfg.rate_limit.action = DK_RATELIMIT_REFUSED;
	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->replies, 2);
	assert_int_equal(w->reply[3] & 0x0f, LDNS_RCODE_REFUSED);
	w->now += 1000;
	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(out(w, DK_TRANSPORT_UDP, DK_OUT_SINKHOLED), 2);
	/* Turned off by a reload: the table goes. */
	w->cfg.rate_limit.qps = 0;
	configure(w);
	assert_int_equal(dk_queries_ratelimit_size(w->qs), 0);
}

/* Turns the cache on (1 MiB), with SPEC.md's TTL rules. */
static void cache_on(struct world *w)
{
	w->cfg.cache.size_mb = 1;
	w->cfg.cache.max_ttl = 86400;
	w->cfg.cache.negative_max_ttl = 3600;
	w->cfg.cache.failure_ttl = 5;
	w->cfg.cache.serve_stale = true;
	w->cfg.cache.stale_max_s = 600;
	configure(w);
	assert_int_equal(dk_queries_cache_bytes(w->qs), 1 << 20);
}

/* Replaces the rules with @p text (a reload), keeping the cache. */
static void reload_rules(struct world *w, const char *text)
{
	char path[128];
	struct dk_diag d;
	struct dk_policy *pol;

	snprintf(path, sizeof(path), "%s/reload.yml", w->dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	const char *paths[] = {path};
	assert_int_equal(dk_policy_load(paths, 1, 0, &pol, &d), 0);
	unlink(path);
	assert_true(pol->n_rules <= 8);
	dk_policy_unref(w->pol);
	w->pol = pol;
	for (unsigned i = 0; i < pol->n_rules; i++)
		w->rule_slot[i] = 7 - i;
	configure(w);
}

/* The second query is answered from the cache: no forward, its own ID and case, TTLs aged. */
static void test_cache_hit(void **state)
{
	struct world *w = *state;
	struct dk_client cl = client(false, "192.0.2.7");
	uint8_t q[512], ans[512];

	cache_on(w);
	size_t n = make_query("www.example.test.", LDNS_RR_TYPE_A, 0x1111, false, q);
	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->forwards, 1);
	const char *rrs[] = {"www.example.test. 300 IN A 192.0.2.9", NULL};
	size_t an = make_answer("www.example.test.", LDNS_RR_TYPE_A, 0x7777, rrs, ans);
	/* The upstream validated it (AD): a later client that asks neither AD nor DO gets no AD. */
	ans[3] |= LDNS_AD_MASK;
	w->fwd_done(w->fwd_ctx, ans, an, q, n, &w->fwd_q);
	assert_int_equal(w->replies, 1);
	assert_int_equal(dk_ctr_get(&w->cctr.inserts), 1);
	assert_int_equal(dk_ctr_get(&w->cctr.entries), 1);
	assert_true(dk_ctr_get(&w->cctr.bytes) > 0);

	w->now += 10500;
	n = make_query("WWW.Example.TEST.", LDNS_RR_TYPE_A, 0x2222, false, q);
	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->forwards, 1);
	assert_int_equal(w->replies, 2);
	ldns_pkt *p = last_reply(w);
	assert_int_equal(ldns_pkt_id(p), 0x2222);
	assert_true(ldns_pkt_rd(p));
	assert_false(ldns_pkt_ad(p));
	char *qn = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(p), 0)));
	assert_string_equal(qn, "WWW.Example.TEST.");
	free(qn);
	assert_int_equal(ldns_pkt_ancount(p), 1);
	assert_int_equal(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(p), 0)), 290);
	assert_null(ldns_pkt_edns_data(p));
	assert_int_equal(ldns_pkt_edns_udp_size(p), 0);
	ldns_pkt_free(p);
	assert_int_equal(dk_ctr_get(&w->cctr.hits), 1);
	assert_int_equal(dk_ctr_get(&w->cctr.misses), 1);
	assert_int_equal(out(w, DK_TRANSPORT_UDP, DK_OUT_CACHED), 1);
	assert_int_equal(out(w, DK_TRANSPORT_UDP, DK_OUT_FORWARDED), 1);

	/* Over TCP the same entry, and an EDNS client gets an OPT of its own. */
	struct dk_client tc = client(true, "192.0.2.7");
	n = make_query("www.example.test.", LDNS_RR_TYPE_A, 0x3333, true, q);
	dk_queries_handle(w->qs, &tc, q, n);
	assert_int_equal(w->forwards, 1);
	p = last_reply(w);
	assert_int_equal(ldns_pkt_id(p), 0x3333);
	assert_int_equal(ldns_pkt_edns_udp_size(p), 1232);
	assert_int_equal(ldns_pkt_ancount(p), 1);
	ldns_pkt_free(p);

	/* RD as this client sent it (the header octets, not ldns's flag enum). */
	n = make_query("www.example.test.", LDNS_RR_TYPE_A, 0x3334, false, q);
	q[2] &= (uint8_t)~0x01;
	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->forwards, 1);
	assert_int_equal(w->reply[2] & 0x01, 0);
	assert_int_equal(w->reply[2] & 0x78, 0); /* opcode QUERY */
	assert_int_equal(w->reply[2] & 0x80, 0x80);

	/* Another type is another entry; so is the same question with CD. */
	n = make_query("www.example.test.", LDNS_RR_TYPE_AAAA, 0x4444, false, q);
	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->forwards, 2);
	w->fwd_done(w->fwd_ctx, NULL, 0, q, n, &w->fwd_q);
	n = make_query("www.example.test.", LDNS_RR_TYPE_A, 0x4445, false, q);
	q[3] |= 0x10;
	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->forwards, 3);
	assert_true(w->fwd_q.flags & 0x10);
	w->fwd_done(w->fwd_ctx, NULL, 0, q, n, &w->fwd_q);

	/* A reload that keeps the size keeps the entries; one that turns the cache off drops them.
	 */
	configure(w);
	n = make_query("www.example.test.", LDNS_RR_TYPE_A, 0x5555, false, q);
	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->forwards, 3);
	w->cfg.cache.size_mb = 0;
	configure(w);
	assert_int_equal(dk_queries_cache_bytes(w->qs), 0);
	assert_int_equal(dk_ctr_get(&w->cctr.entries), 0);
	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->forwards, 4);
}

/* Policy before cache: a name blocked by a reload is answered by the rule, not from cache. */
static void test_cache_policy_first(void **state)
{
	struct world *w = *state;
	struct dk_client cl = client(false, "192.0.2.7");
	uint8_t q[512], ans[512];

	cache_on(w);
	size_t n = make_query("later.test.", LDNS_RR_TYPE_A, 0x1111, false, q);
	dk_queries_handle(w->qs, &cl, q, n);
	const char *rrs[] = {"later.test. 300 IN A 192.0.2.9", NULL};
	size_t an = make_answer("later.test.", LDNS_RR_TYPE_A, 0x7777, rrs, ans);
	w->fwd_done(w->fwd_ctx, ans, an, q, n, &w->fwd_q);
	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->forwards, 1);
	assert_int_equal(dk_ctr_get(&w->cctr.hits), 1);

	reload_rules(w, "id: T.Later\nname: later\nseverity: high\naction: sinkhole\n"
	                "domains: [later.test]\n");
	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->forwards, 1);
	assert_int_equal(dk_ctr_get(&w->cctr.hits), 1); /* never looked up */
	assert_int_equal(out(w, DK_TRANSPORT_UDP, DK_OUT_SINKHOLED), 1);
	ldns_pkt *p = last_reply(w);
	char *a = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(p), 0), 0));
	assert_string_equal(a, "0.0.0.0");
	free(a);
	ldns_pkt_free(p);
}

/* A cached answer whose CNAME target a reload blocks is blocked at its next hit. */
static void test_cache_cname_reload(void **state)
{
	struct world *w = *state;
	struct dk_client cl = client(false, "192.0.2.7");
	uint8_t q[512], ans[512];

	cache_on(w);
	size_t n = make_query("www.example.test.", LDNS_RR_TYPE_A, 0x1111, false, q);
	dk_queries_handle(w->qs, &cl, q, n);
	const char *rrs[] = {"www.example.test. 300 IN CNAME edge.cdn.test.",
	                     "edge.cdn.test. 300 IN A 192.0.2.9", NULL};
	size_t an = make_answer("www.example.test.", LDNS_RR_TYPE_A, 0x7777, rrs, ans);
	w->fwd_done(w->fwd_ctx, ans, an, q, n, &w->fwd_q);
	dk_queries_handle(w->qs, &cl, q, n);
	ldns_pkt *p = last_reply(w);
	assert_int_equal(ldns_pkt_ancount(p), 2);
	ldns_pkt_free(p);
	assert_int_equal(dk_ctr_get(&w->ctr.cname_blocked), 0);

	reload_rules(w, "id: T.Cdn\nname: cdn\nseverity: high\naction: nxdomain\n"
	                "domains: [cdn.test]\n");
	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->forwards, 1);
	assert_int_equal(dk_ctr_get(&w->cctr.hits), 2);
	p = last_reply(w);
	assert_int_equal(ldns_pkt_id(p), 0x1111);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NXDOMAIN);
	assert_int_equal(ldns_pkt_ancount(p), 0);
	ldns_pkt_free(p);
	assert_int_equal(dk_ctr_get(&w->ctr.cname_blocked), 1);
	assert_int_equal(hits(w, "T.Cdn"), 1);
	assert_int_equal(w->alerts, 1);
	assert_memory_equal(w->ev.target, "\4edge\3cdn\4test\0", 15);
}

/* Every upstream failed: an expired answer is served, TTL 30 and EDE 3; without one, SERVFAIL is
 * cached. */
static void test_cache_stale(void **state)
{
	struct world *w = *state;
	struct dk_client cl = client(false, "192.0.2.7");
	uint8_t q[512], ans[512];

	cache_on(w);
	size_t n = make_query("www.example.test.", LDNS_RR_TYPE_A, 0x1111, true, q);
	dk_queries_handle(w->qs, &cl, q, n);
	const char *rrs[] = {"www.example.test. 60 IN A 192.0.2.9", NULL};
	size_t an = make_answer("www.example.test.", LDNS_RR_TYPE_A, 0x7777, rrs, ans);
	w->fwd_done(w->fwd_ctx, ans, an, q, n, &w->fwd_q);

	w->now += 61000;
	n = make_query("www.example.test.", LDNS_RR_TYPE_A, 0x2222, true, q);
	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->forwards, 2); /* expired: asked again */
	w->fwd_done(w->fwd_ctx, NULL, 0, q, n, &w->fwd_q);
	assert_int_equal(w->replies, 2);
	ldns_pkt *p = last_reply(w);
	assert_int_equal(ldns_pkt_id(p), 0x2222);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
	assert_int_equal(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(p), 0)), 30);
	ldns_pkt_free(p);
	/* The OPT record's option: EDE (15), length 2, info-code 3. */
	static const uint8_t ede[] = {0, 15, 0, 2, 0, 3};
	assert_memory_equal(w->reply + w->reply_len - sizeof(ede), ede, sizeof(ede));
	assert_int_equal(dk_ctr_get(&w->cctr.stale), 1);
	assert_int_equal(out(w, DK_TRANSPORT_UDP, DK_OUT_SERVFAIL), 0);

	/* No entry at all: SERVFAIL, cached failure_ttl (5 s), so the upstreams are not asked. */
	n = make_query("dead.example.test.", LDNS_RR_TYPE_A, 0x3333, false, q);
	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->forwards, 3);
	w->fwd_done(w->fwd_ctx, NULL, 0, q, n, &w->fwd_q);
	assert_int_equal(w->reply[3] & 0x0f, LDNS_RCODE_SERVFAIL);
	w->now += 4000;
	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->forwards, 3);
	assert_int_equal(w->reply[3] & 0x0f, LDNS_RCODE_SERVFAIL);
	w->now += 1000;
	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->forwards, 4);
}

/* A hit in the last tenth of the TTL refreshes the entry in the background, once. */
static void test_cache_prefetch(void **state)
{
	struct world *w = *state;
	struct dk_client cl = client(true, "192.0.2.7");
	uint8_t q[512], ans[512];

	w->cfg.cache.prefetch = true;
	cache_on(w);
	size_t n = make_query("www.example.test.", LDNS_RR_TYPE_A, 0x1111, false, q);
	dk_queries_handle(w->qs, &cl, q, n);
	const char *rrs[] = {"www.example.test. 100 IN A 192.0.2.9", NULL};
	size_t an = make_answer("www.example.test.", LDNS_RR_TYPE_A, 0x7777, rrs, ans);
	w->fwd_done(w->fwd_ctx, ans, an, q, n, &w->fwd_q);
	assert_int_equal(w->holds, 1);

	w->now += 89000;
	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->forwards, 1); /* not due yet */
	w->now += 2000;
	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->replies, 3);  /* the client is answered from the cache at once */
	assert_int_equal(w->forwards, 2); /* and the entry is refreshed */
	assert_false(w->fwd_tcp);
	assert_int_equal(w->holds, 1); /* no client waits for the refresh */
	ldns_pkt *p = last_reply(w);
	assert_int_equal(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(p), 0)), 9);
	ldns_pkt_free(p);
	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->forwards, 2); /* one refresh in flight per key */
	assert_int_equal(dk_ctr_get(&w->cctr.prefetches), 1);

	/* A refresh that fails keeps the old entry and sends nothing to anyone. */
	w->fwd_done(w->fwd_ctx, NULL, 0, w->fwd_pkt, w->fwd_len, &w->fwd_q);
	assert_int_equal(w->replies, 4);
	assert_int_equal(out(w, DK_TRANSPORT_TCP, DK_OUT_SERVFAIL), 0);
	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->replies, 5);
	assert_int_equal(w->forwards, 3); /* due again: refreshed again */
	const char *rrs2[] = {"www.example.test. 100 IN A 192.0.2.10", NULL};
	an = make_answer("www.example.test.", LDNS_RR_TYPE_A, 0x7778, rrs2, ans);
	w->fwd_done(w->fwd_ctx, ans, an, w->fwd_pkt, w->fwd_len, &w->fwd_q);
	assert_int_equal(w->replies, 5);
	assert_int_equal(w->dones, 1);

	/* Past the old entry's TTL the refreshed one answers. */
	w->now += 20000;
	dk_queries_handle(w->qs, &cl, q, n);
	assert_int_equal(w->forwards, 3);
	p = last_reply(w);
	char *a = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(p), 0), 0));
	assert_string_equal(a, "192.0.2.10");
	free(a);
	assert_int_equal(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(p), 0)), 80);
	ldns_pkt_free(p);
}

/* The RPZ actions through act(): drop, tcp-only, nodata, local data, client IP, answer IP. */
static void test_rpz_actions(void **state)
{
	struct world *w = *state;
	struct dk_client udp = client(false, "192.0.2.7"), tcp = client(true, "192.0.2.7");
	struct dk_client marked = client(false, "192.0.2.9");
	uint8_t q[512], ans[512];
	char zone[128];
	size_t n;
	ldns_pkt *p;

	snprintf(zone, sizeof(zone), "%s/z.rpz", w->dir);
	FILE *f = fopen(zone, "w");
	assert_non_null(f);
	fputs("drop.test CNAME rpz-drop.\ntcp.test CNAME rpz-tcp-only.\nnodata.test CNAME *.\n"
	      "local.test 120 A 192.0.2.80\n32.9.2.0.192.rpz-client-ip CNAME .\n"
	      "32.66.2.0.192.rpz-ip CNAME .\n",
	      f);
	fclose(f);
	reload_rules(w,
	             "id: T.RPZ\nname: rpz\nseverity: high\nrpz: { file: z.rpz, zone: z.rpz }\n");
	unlink(zone);
	assert_int_equal(w->pol->n_rules, DK_RPZ_ACTION_MAX);

	/* drop: no answer at all, counted, alerted. */
	n = make_query("drop.test.", LDNS_RR_TYPE_A, 1, false, q);
	dk_queries_handle(w->qs, &udp, q, n);
	assert_int_equal(w->replies, 0);
	assert_int_equal(out(w, DK_TRANSPORT_UDP, DK_OUT_DROPPED), 1);
	assert_int_equal(w->alerts, 1);
	assert_int_equal(w->ev.action, DK_ACTION_DROP);

	/* tcp-only: over UDP an empty answer with TC; over TCP forwarded. */
	n = make_query("tcp.test.", LDNS_RR_TYPE_A, 2, false, q);
	dk_queries_handle(w->qs, &udp, q, n);
	p = last_reply(w);
	assert_true(ldns_pkt_tc(p));
	assert_int_equal(ldns_pkt_ancount(p), 0);
	ldns_pkt_free(p);
	assert_int_equal(out(w, DK_TRANSPORT_UDP, DK_OUT_TRUNCATED), 1);
	dk_queries_handle(w->qs, &tcp, q, n);
	assert_int_equal(w->forwards, 1);
	/* A stream transport of its own (DoT, DoH) needs no TC either: forwarded. */
	struct dk_client tls = tcp;
	tls.transport = DK_TRANSPORT_TLS;
	dk_queries_handle(w->qs, &tls, q, n);
	assert_int_equal(w->forwards, 2);
	tls.transport = DK_TRANSPORT_HTTPS;
	dk_queries_handle(w->qs, &tls, q, n);
	assert_int_equal(w->forwards, 3);

	/* nodata and local data. */
	n = make_query("nodata.test.", LDNS_RR_TYPE_A, 3, false, q);
	dk_queries_handle(w->qs, &udp, q, n);
	p = last_reply(w);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
	assert_int_equal(ldns_pkt_ancount(p), 0);
	ldns_pkt_free(p);
	assert_int_equal(out(w, DK_TRANSPORT_UDP, DK_OUT_NODATA), 1);
	n = make_query("local.test.", LDNS_RR_TYPE_A, 4, true, q);
	dk_queries_handle(w->qs, &udp, q, n);
	p = last_reply(w);
	assert_int_equal(ldns_pkt_ancount(p), 1);
	ldns_rr *rr = ldns_rr_list_rr(ldns_pkt_answer(p), 0);
	assert_int_equal(ldns_rr_ttl(rr), 120);
	char *a = ldns_rdf2str(ldns_rr_rdf(rr, 0));
	assert_string_equal(a, "192.0.2.80");
	free(a);
	ldns_pkt_free(p);
	assert_int_equal(out(w, DK_TRANSPORT_UDP, DK_OUT_LOCAL), 1);

	/* A client-IP trigger decides whatever the name. */
	n = make_query("anything.example.", LDNS_RR_TYPE_A, 5, false, q);
	dk_queries_handle(w->qs, &marked, q, n);
	p = last_reply(w);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NXDOMAIN);
	ldns_pkt_free(p);
	assert_int_equal(w->forwards, 3);

	/* An answer-IP trigger on the upstream's answer. */
	n = make_query("www.example.test.", LDNS_RR_TYPE_A, 6, false, q);
	dk_queries_handle(w->qs, &udp, q, n);
	assert_int_equal(w->forwards, 4);
	const char *rrs[] = {"www.example.test. 30 IN A 192.0.2.66", NULL};
	size_t an = make_answer("www.example.test.", LDNS_RR_TYPE_A, 0x7777, rrs, ans);
	w->fwd_done(w->fwd_ctx, ans, an, q, n, &w->fwd_q);
	p = last_reply(w);
	assert_int_equal(ldns_pkt_id(p), 6);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NXDOMAIN);
	ldns_pkt_free(p);
	/*
	 * This world gives each rule index its own slot; the daemon maps every
	 * variant to the slot of their shared id. The rule as written is the
	 * nxdomain one: the client-IP and the answer-IP hit.
	 */
	assert_int_equal(hits(w, "T.RPZ"), 2);
}

/* The first record of the answer section of the last reply, as text. */
static char *first_a(struct world *w)
{
	ldns_pkt *p = last_reply(w);
	assert_true(ldns_pkt_ancount(p) >= 1);
	char *a = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(p), 0), 0));
	ldns_pkt_free(p);
	return a;
}

/*
 * Client groups: "lab" (10.0.0.2) has T.Sink off and T.Alert as nxdomain. The
 * cache is shared: the lab's forwarded answer is cached and served to the lab
 * again, while a client of "default" is still sinkholed for the name; the
 * lab's local NXDOMAIN is never served to "default". Alert events carry the
 * group and the action applied; each group counts its queries and hits.
 */
static void test_groups_share_cache(void **state)
{
	struct world *w = *state;
	static struct dk_group_ref cl_ref = {.text = (char *)"10.0.0.2/32", .line = 1};
	static struct dk_group_ref off = {.text = (char *)"T.Sink", .line = 2};
	static struct dk_group_action act = {
	        .rule = (char *)"T.Alert", .action = DK_ACTION_NXDOMAIN, .line = 3};
	static struct dk_group_conf gc = {
	        .name = (char *)"lab",
	        .clients = &cl_ref,
	        .n_clients = 1,
	        .rules = {.disable = &off, .n_disable = 1, .actions = &act, .n_actions = 1},
	};
	static const uint32_t group_slot[4] = {0, 1, 2, 3}; /* default q/h, lab q/h */
	struct dk_client lab = client(false, "10.0.0.2"), def = client(false, "192.0.2.7");
	struct dk_diag d;
	uint8_t q[512], ans[512];

	assert_int_equal(dk_groups_build(&gc, 1, w->pol, "t.yml", 0, &w->pol->groups, &d), 0);
	w->pol->groups_free = dk_groups_free;
	cache_on(w);
	const struct dk_queries_conf qc = {
	        .cfg = &w->cfg,
	        .pol = w->pol,
	        .rule_slot = w->rule_slot,
	        .rule_hits = w->rule_hits,
	        .n_rule_hits = 8,
	        .group_slot = group_slot,
	};
	assert_int_equal(dk_queries_configure(w->qs, &qc), 0);

	size_t n = make_query("www.sink.test.", LDNS_RR_TYPE_A, 0x1111, false, q);
	dk_queries_handle(w->qs, &lab, q, n);
	assert_int_equal(w->forwards, 1);
	const char *rrs[] = {"www.sink.test. 300 IN A 192.0.2.9", NULL};
	size_t an = make_answer("www.sink.test.", LDNS_RR_TYPE_A, 0x7777, rrs, ans);
	w->fwd_done(w->fwd_ctx, ans, an, q, n, &w->fwd_q);
	dk_queries_handle(w->qs, &lab, q, n);
	assert_int_equal(w->forwards, 1);
	assert_int_equal(dk_ctr_get(&w->cctr.hits), 1);
	char *a = first_a(w);
	assert_string_equal(a, "192.0.2.9");
	free(a);
	assert_int_equal(w->alerts, 0);

	dk_queries_handle(w->qs, &def, q, n);
	assert_int_equal(dk_ctr_get(&w->cctr.hits), 1); /* the rule answered, not the cache */
	a = first_a(w);
	assert_string_equal(a, "0.0.0.0");
	free(a);
	assert_int_equal(w->alerts, 1);
	assert_string_equal(w->ev.group, "default");
	assert_int_equal(w->ev.action, DK_ACTION_SINKHOLE);

	n = make_query("x.alert.test.", LDNS_RR_TYPE_A, 0x2222, false, q);
	dk_queries_handle(w->qs, &lab, q, n);
	assert_int_equal(w->forwards, 1);
	ldns_pkt *p = last_reply(w);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NXDOMAIN);
	ldns_pkt_free(p);
	assert_int_equal(w->alerts, 2);
	assert_string_equal(w->ev.group, "lab");
	assert_int_equal(w->ev.action, DK_ACTION_NXDOMAIN);
	assert_int_equal(w->ev.rcode, LDNS_RCODE_NXDOMAIN);
	dk_queries_handle(w->qs, &def, q, n);
	assert_int_equal(w->forwards, 2); /* not the lab's NXDOMAIN: to the upstream */
	assert_int_equal(w->ev.action, DK_ACTION_ALERT);
	w->fwd_done(w->fwd_ctx, NULL, 0, q, n, &w->fwd_q);

	assert_int_equal(dk_ctr_get(&w->rule_hits[0]), 2); /* default: 2 queries... */
	assert_int_equal(dk_ctr_get(&w->rule_hits[1]), 2); /* ...both decided by a rule */
	assert_int_equal(dk_ctr_get(&w->rule_hits[2]), 3); /* lab: 3 queries... */
	assert_int_equal(dk_ctr_get(&w->rule_hits[3]), 1); /* ...one decided by a rule */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_sinkhole, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_nxdomain, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_alert_forwards, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_allow_exception, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_acl, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_forward_full, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_pending_pool, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_cname_blocked, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_cname_alerted, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_udp_truncation, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_ratelimit, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_cache_hit, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_cache_policy_first, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_cache_cname_reload, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_cache_stale, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_cache_prefetch, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_rpz_actions, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_groups_share_cache, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
