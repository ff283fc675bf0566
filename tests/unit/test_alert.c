/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of alerts: the SPSC ring (capacity, drops, wraparound, wake-up
 * signal, a real producer thread), dedup/threshold with a fake clock (folding,
 * follow-ups, distinct keys, the key bound, policy references), the native
 * and OCSF JSON formats (exact strings, escaping, a small JSON checker), and
 * the alerter on a real libuv loop with a file, a unix datagram, a UDP and a
 * late TCP collector.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "daemon/alert_sink.h"
#include "dnsink/alert.h"
#include "dnsink/name.h"
#include "dnsink/policy.h"

/* 2026-11-23T05:30:00.123Z */
#define T0 1795411800123ULL

static char *mitre_pool[] = {"TA0040:T1496"};
static char *mitre_two[] = {"TA0011:T1071.004", "TA0010:T1048"};

/* A policy built by hand: only refs matters to dedup. */
static struct dk_policy pol = {.refs = 1};

static struct dk_rule rule_pool = {
        .id = "DNS.Crypto.MiningPool",
        .name = "Crypto mining pool lookup",
        .severity = DK_SEVERITY_HIGH,
        .action = DK_ACTION_SINKHOLE,
        .mitre = mitre_pool,
        .n_mitre = 1,
        .alert = true,
        .dedup_minutes = 0,
        .threshold = 1,
};

static struct dk_rule rule_dyn = {
        .id = "DNS.DynDNS",
        .name = "Dynamic \"DNS\" \\ lookup\t\x01",
        .severity = DK_SEVERITY_MEDIUM,
        .action = DK_ACTION_ALERT,
        .mitre = mitre_two,
        .n_mitre = 2,
        .alert = true,
        .dedup_minutes = 1,
        .threshold = 1,
};

static void make_event(struct dk_alert_event *ev, const struct dk_rule *rule, const char *ip,
                       uint16_t port, const char *qname, const char *entry, bool wildcard,
                       uint64_t t)
{
	uint8_t wire[DK_NAME_MAX];
	size_t qlen, elen;

	memset(ev, 0, sizeof(*ev));
	ev->time_ms = t;
	ev->rule = rule;
	ev->policy = &pol;
	ev->action = (uint8_t)rule->action;
	ev->transport = DK_TRANSPORT_UDP;
	ev->port = port;
	ev->qtype = 1;
	if (strchr(ip, ':')) {
		ev->family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, ev->addr), 1);
	} else {
		ev->family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, ev->addr), 1);
	}
	assert_int_equal(dk_name_from_text(qname, strlen(qname), 0, ev->qname, &qlen), 0);
	assert_int_equal(dk_name_from_text(entry, strlen(entry), 0, wire, &elen), 0);
	assert_true(elen <= qlen);
	assert_memory_equal(ev->qname + qlen - elen, wire, elen);
	ev->qname_len = (uint8_t)qlen;
	ev->matched_off = (uint8_t)(qlen - elen);
	ev->wildcard = wildcard;
}

/*
 * A small JSON checker (RFC 8259 grammar, no semantic checks): returns the
 * position after one value, or NULL.
 */
static const char *js_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static const char *js_value(const char *p, int depth);

static const char *js_string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	while (*p != '"') {
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (*p == '\\') {
			p++;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
						return NULL;
				p += 4;
			} else if (!*p || !strchr("\"\\/bfnrt", *p)) {
				return NULL;
			}
		}
		p++;
	}
	return p + 1;
}

static const char *js_number(const char *p)
{
	const char *s = p;

	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (*p >= '0' && *p <= '9')
			p++;
	else
		return NULL;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return NULL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return p > s ? p : NULL;
}

static const char *js_value(const char *p, int depth)
{
	if (depth > 32)
		return NULL;
	p = js_ws(p);
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';
		bool obj = *p == '{';

		p = js_ws(p + 1);
		if (*p == close)
			return p + 1;
		for (;;) {
			if (obj) {
				p = js_string(js_ws(p));
				if (!p)
					return NULL;
				p = js_ws(p);
				if (*p++ != ':')
					return NULL;
			}
			p = js_value(p, depth + 1);
			if (!p)
				return NULL;
			p = js_ws(p);
			if (*p == close)
				return p + 1;
			if (*p++ != ',')
				return NULL;
		}
	}
	if (*p == '"')
		return js_string(p);
	if (!strncmp(p, "true", 4))
		return p + 4;
	if (!strncmp(p, "false", 5))
		return p + 5;
	if (!strncmp(p, "null", 4))
		return p + 4;
	return js_number(p);
}

static bool json_valid(const char *s)
{
	const char *end = js_value(s, 0);

	return end && *js_ws(end) == '\0';
}

static void test_json_checker(void **state)
{
	(void)state;
	assert_true(json_valid("{\"a\":[1,2,{\"b\":\"x\\\"y\"}],\"c\":true,\"d\":-0.5}"));
	assert_false(json_valid("{\"a\":1,}"));
	assert_false(json_valid("{\"a\":\"\\q\"}"));
	assert_false(json_valid("{\"a\":1"));
	assert_false(json_valid("{\"a\":\"x\"}}"));
	assert_false(json_valid("{\"a\":\"\x01\"}"));
}

/* Ring. */

static void test_ring_basic(void **state)
{
	struct dk_alert_ring r;
	struct dk_alert_event ev, out;
	bool was_empty;

	(void)state;
	assert_int_equal(dk_alert_ring_init(&r, 5), 0);
	assert_int_equal(r.mask, 7);
	memset(&ev, 0, sizeof(ev));
	assert_false(dk_alert_ring_pop(&r, &out));
	for (unsigned i = 0; i < 8; i++) {
		ev.port = (uint16_t)i;
		assert_true(dk_alert_ring_push(&r, &ev, &was_empty));
		assert_int_equal(was_empty, i == 0);
	}
	ev.port = 99;
	assert_false(dk_alert_ring_push(&r, &ev, &was_empty));
	assert_false(dk_alert_ring_push(&r, &ev, NULL));
	assert_int_equal(atomic_load(&r.dropped), 2);
	for (unsigned i = 0; i < 8; i++) {
		assert_true(dk_alert_ring_pop(&r, &out));
		assert_int_equal(out.port, i);
	}
	assert_false(dk_alert_ring_pop(&r, &out));

	/* Wraparound: the indexes pass the capacity many times. */
	for (unsigned round = 0; round < 50; round++) {
		for (unsigned i = 0; i < 5; i++) {
			ev.port = (uint16_t)(round * 5 + i);
			assert_true(dk_alert_ring_push(&r, &ev, &was_empty));
			assert_int_equal(was_empty, i == 0);
		}
		for (unsigned i = 0; i < 5; i++) {
			assert_true(dk_alert_ring_pop(&r, &out));
			assert_int_equal(out.port, round * 5 + i);
		}
	}
	assert_int_equal(atomic_load(&r.dropped), 2);
	dk_alert_ring_deinit(&r);
	assert_int_not_equal(dk_alert_ring_init(&r, 0), 0);
}

#define THREAD_EVENTS 200000u

static void *ring_producer(void *arg)
{
	struct dk_alert_ring *r = arg;
	struct dk_alert_event ev;

	memset(&ev, 0, sizeof(ev));
	for (uint64_t i = 0; i < THREAD_EVENTS; i++) {
		ev.time_ms = i;
		while (!dk_alert_ring_push(r, &ev, NULL))
			sched_yield();
	}
	return NULL;
}

static void test_ring_thread(void **state)
{
	struct dk_alert_ring r;
	struct dk_alert_event out;
	pthread_t th;
	uint64_t next = 0;
	time_t start = time(NULL);

	(void)state;
	assert_int_equal(dk_alert_ring_init(&r, 64), 0);
	assert_int_equal(pthread_create(&th, NULL, ring_producer, &r), 0);
	while (next < THREAD_EVENTS && time(NULL) - start < 20) {
		if (dk_alert_ring_pop(&r, &out)) {
			assert_int_equal(out.time_ms, next);
			next++;
		} else {
			sched_yield();
		}
	}
	pthread_join(th, NULL);
	assert_int_equal(next, THREAD_EVENTS);
	/* Retries after "full" are the producer's, not losses of the ring's data. */
	assert_false(dk_alert_ring_pop(&r, &out));
	dk_alert_ring_deinit(&r);
}

/* Dedup. */

struct got {
	const struct dk_rule *rule;
	uint64_t count, first, last;
	bool followup, evicted;
	uint16_t port;
	uint8_t addr0;
	char json[4096];
};

static struct got got[64];
static size_t n_got;

static void collect(const struct dk_alert_record *rec, void *ctx)
{
	struct got *g;

	(void)ctx;
	assert_true(n_got < DK_ARRAY_SIZE(got));
	g = &got[n_got++];
	g->rule = rec->ev->rule;
	g->count = rec->count;
	g->first = rec->first_seen_ms;
	g->last = rec->last_seen_ms;
	g->followup = rec->followup;
	g->evicted = rec->evicted;
	g->port = rec->ev->port;
	g->addr0 = rec->ev->addr[3];
	assert_true(dk_alert_format(rec, DK_ALERT_FORMAT_NATIVE, g->json, sizeof(g->json)) > 0);
	assert_true(json_valid(g->json));
}

static int reset_got(void **state)
{
	(void)state;
	n_got = 0;
	pol.refs = 1;
	return 0;
}

/* Every window closed: no key left, every policy reference given back; then free. */
static void dedup_free_empty(struct dk_dedup *d)
{
	assert_int_equal(dk_dedup_size(d), 0);
	assert_int_equal(pol.refs, 1);
	dk_dedup_free(d);
}

static void test_dedup_threshold1(void **state)
{
	struct dk_dedup *d = dk_dedup_new(16);
	struct dk_rule r = rule_pool;
	struct dk_alert_event ev;

	(void)state;
	r.dedup_minutes = 1;
	make_event(&ev, &r, "10.0.0.5", 1000, "abc.moneropool.ru", "moneropool.ru", false, T0);
	assert_true(dk_dedup_event(d, &ev, 5000, collect, NULL));
	assert_int_equal(n_got, 1);
	assert_int_equal(got[0].count, 1);
	assert_false(got[0].followup);
	assert_int_equal(got[0].first, T0);
	assert_int_equal(got[0].last, T0);
	assert_int_equal(pol.refs, 2);

	/* Repeats, another subdomain of the same entry and another port: folded. */
	make_event(&ev, &r, "10.0.0.5", 1001, "xyz.moneropool.ru", "moneropool.ru", false,
	           T0 + 1000);
	assert_false(dk_dedup_event(d, &ev, 6000, collect, NULL));
	make_event(&ev, &r, "10.0.0.5", 1002, "abc.moneropool.ru", "moneropool.ru", false,
	           T0 + 2000);
	assert_false(dk_dedup_event(d, &ev, 7000, collect, NULL));
	assert_int_equal(n_got, 1);
	assert_int_equal(dk_dedup_size(d), 1);

	dk_dedup_tick(d, 5000 + 59999, collect, NULL);
	assert_int_equal(n_got, 1);
	dk_dedup_tick(d, 5000 + 60000, collect, NULL);
	assert_int_equal(n_got, 2);
	assert_true(got[1].followup);
	assert_false(got[1].evicted);
	assert_int_equal(got[1].count, 2);
	assert_int_equal(got[1].first, T0 + 1000);
	assert_int_equal(got[1].last, T0 + 2000);
	assert_int_equal(got[1].port, 1002);
	assert_non_null(strstr(got[1].json,
	                       "\"count\":2,\"first_seen\":\"2026-11-23T05:30:01.123Z\","
	                       "\"last_seen\":\"2026-11-23T05:30:02.123Z\""));
	assert_non_null(strstr(got[1].json, "\"time\":\"2026-11-23T05:30:02.123Z\""));
	assert_non_null(strstr(got[1].json, "\"followup\":true"));
	assert_int_equal(dk_dedup_size(d), 0);
	assert_int_equal(pol.refs, 1);

	/* A window with no repeat closes without a follow-up. */
	dk_dedup_event(d, &ev, 100000, collect, NULL);
	assert_int_equal(n_got, 3);
	dk_dedup_tick(d, 200000, collect, NULL);
	assert_int_equal(n_got, 3);
	dedup_free_empty(d);
}

static void test_dedup_threshold3(void **state)
{
	struct dk_dedup *d = dk_dedup_new(16);
	struct dk_rule r = rule_pool;
	struct dk_alert_event ev;

	(void)state;
	r.dedup_minutes = 10;
	r.threshold = 3;
	make_event(&ev, &r, "10.0.0.5", 1, "abc.moneropool.ru", "moneropool.ru", false, T0);
	assert_false(dk_dedup_event(d, &ev, 0, collect, NULL));
	ev.time_ms = T0 + 10;
	assert_false(dk_dedup_event(d, &ev, 10, collect, NULL));
	assert_int_equal(n_got, 0);
	ev.time_ms = T0 + 20;
	assert_true(dk_dedup_event(d, &ev, 20, collect, NULL));
	assert_int_equal(n_got, 1);
	assert_int_equal(got[0].count, 3);
	assert_int_equal(got[0].first, T0);
	assert_int_equal(got[0].last, T0 + 20);
	assert_false(got[0].followup);
	assert_non_null(strstr(got[0].json, "\"count\":3,"));
	ev.time_ms = T0 + 30;
	dk_dedup_event(d, &ev, 30, collect, NULL);
	assert_int_equal(n_got, 1);

	/* The next event after the window closes it and opens a new one. */
	ev.time_ms = T0 + 600000;
	dk_dedup_event(d, &ev, 600000, collect, NULL);
	assert_int_equal(n_got, 2);
	assert_true(got[1].followup);
	assert_int_equal(got[1].count, 1);
	assert_int_equal(got[1].first, T0 + 30);
	assert_int_equal(dk_dedup_size(d), 1);

	/* Below the threshold when the window ends: nothing is due. */
	dk_dedup_tick(d, 1200000, collect, NULL);
	assert_int_equal(n_got, 2);
	dedup_free_empty(d);
}

static void test_dedup_keys(void **state)
{
	struct dk_dedup *d = dk_dedup_new(64);
	struct dk_rule r1 = rule_pool, r2 = rule_pool;
	struct dk_alert_event ev;

	(void)state;
	r1.dedup_minutes = 5;
	r2.dedup_minutes = 5;
	make_event(&ev, &r1, "10.0.0.5", 1, "a.moneropool.ru", "moneropool.ru", false, T0);
	dk_dedup_event(d, &ev, 0, collect, NULL);
	make_event(&ev, &r1, "10.0.0.6", 1, "a.moneropool.ru", "moneropool.ru", false, T0);
	dk_dedup_event(d, &ev, 0, collect, NULL);
	make_event(&ev, &r1, "::ffff:10.0.0.5", 1, "a.moneropool.ru", "moneropool.ru", false, T0);
	dk_dedup_event(d, &ev, 0, collect, NULL);
	make_event(&ev, &r1, "10.0.0.5", 1, "a.b.moneropool.ru", "b.moneropool.ru", false, T0);
	dk_dedup_event(d, &ev, 0, collect, NULL);
	make_event(&ev, &r1, "10.0.0.5", 1, "a.moneropool.ru", "moneropool.ru", true, T0);
	dk_dedup_event(d, &ev, 0, collect, NULL);
	make_event(&ev, &r2, "10.0.0.5", 1, "a.moneropool.ru", "moneropool.ru", false, T0);
	dk_dedup_event(d, &ev, 0, collect, NULL);
	assert_int_equal(n_got, 6);
	assert_int_equal(dk_dedup_size(d), 6);
	assert_int_equal(pol.refs, 7);

	/* The same six again: all folded. */
	make_event(&ev, &r1, "10.0.0.6", 1, "zz.moneropool.ru", "moneropool.ru", false, T0);
	dk_dedup_event(d, &ev, 1, collect, NULL);
	make_event(&ev, &r2, "10.0.0.5", 9, "a.moneropool.ru", "moneropool.ru", false, T0);
	dk_dedup_event(d, &ev, 1, collect, NULL);
	assert_int_equal(n_got, 6);
	assert_int_equal(dk_dedup_size(d), 6);

	/* Flush closes every window; only the two folded keys owe a record. */
	dk_dedup_flush(d, collect, NULL);
	assert_int_equal(n_got, 8);
	assert_true(got[6].followup && got[7].followup);
	assert_int_equal(got[6].count + got[7].count, 2);
	assert_int_equal(dk_dedup_size(d), 0);
	assert_int_equal(pol.refs, 1);

	/* Rules that must not alert never reach a record, even if posted. */
	r1.alert = false;
	make_event(&ev, &r1, "10.0.0.5", 1, "a.moneropool.ru", "moneropool.ru", false, T0);
	dk_dedup_event(d, &ev, 0, collect, NULL);
	r2.action = DK_ACTION_ALLOW;
	make_event(&ev, &r2, "10.0.0.5", 1, "a.moneropool.ru", "moneropool.ru", false, T0);
	dk_dedup_event(d, &ev, 0, collect, NULL);
	assert_int_equal(n_got, 8);
	assert_int_equal(dk_dedup_size(d), 0);

	/* Keys left open at free release their references too. */
	r1.alert = true;
	make_event(&ev, &r1, "10.0.0.5", 1, "a.moneropool.ru", "moneropool.ru", false, T0);
	dk_dedup_event(d, &ev, 0, collect, NULL);
	assert_int_equal(pol.refs, 2);
	dk_dedup_free(d);
	assert_int_equal(pol.refs, 1);
}

static void test_dedup_zero(void **state)
{
	struct dk_dedup *d = dk_dedup_new(4);
	struct dk_alert_event ev;

	(void)state;
	make_event(&ev, &rule_pool, "10.0.0.5", 1, "a.moneropool.ru", "moneropool.ru", false, T0);
	for (int i = 0; i < 5; i++)
		dk_dedup_event(d, &ev, (uint64_t)i, collect, NULL);
	assert_int_equal(n_got, 5);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(got[i].count, 1);
		assert_false(got[i].followup);
	}
	dedup_free_empty(d);
}

static void test_dedup_bound(void **state)
{
	struct dk_dedup *d = dk_dedup_new(2);
	struct dk_rule r = rule_pool, rt = rule_pool;
	struct dk_alert_event ev;

	(void)state;
	r.dedup_minutes = 60;
	rt.dedup_minutes = 60;
	rt.threshold = 2;
	/* Client .1: first record and one folded repeat. */
	make_event(&ev, &r, "10.0.0.1", 1, "a.moneropool.ru", "moneropool.ru", false, T0);
	dk_dedup_event(d, &ev, 0, collect, NULL);
	ev.time_ms = T0 + 5;
	dk_dedup_event(d, &ev, 5, collect, NULL);
	/* Client .2: one event, fully reported. */
	make_event(&ev, &r, "10.0.0.2", 1, "a.moneropool.ru", "moneropool.ru", false, T0 + 6);
	dk_dedup_event(d, &ev, 6, collect, NULL);
	assert_int_equal(n_got, 2);
	assert_int_equal(dk_dedup_size(d), 2);

	/* Client .3 needs room: .1, the oldest, is flushed as a follow-up. */
	make_event(&ev, &r, "10.0.0.3", 1, "a.moneropool.ru", "moneropool.ru", false, T0 + 7);
	dk_dedup_event(d, &ev, 7, collect, NULL);
	assert_int_equal(n_got, 4);
	assert_int_equal(got[2].addr0, 1);
	assert_true(got[2].followup);
	assert_true(got[2].evicted);
	assert_int_equal(got[2].count, 1);
	assert_int_equal(got[2].first, T0 + 5);
	assert_non_null(strstr(got[2].json, "\"evicted\":true"));
	assert_int_equal(got[3].addr0, 3);
	assert_int_equal(dk_dedup_size(d), 2);

	/* Evicting .2 owes nothing: its one event was reported. */
	make_event(&ev, &rt, "10.0.0.4", 1, "a.moneropool.ru", "moneropool.ru", false, T0 + 8);
	dk_dedup_event(d, &ev, 8, collect, NULL);
	assert_int_equal(n_got, 4);

	/* Below the threshold, an eviction still reports what it saw. */
	make_event(&ev, &r, "10.0.0.5", 1, "a.moneropool.ru", "moneropool.ru", false, T0 + 9);
	dk_dedup_event(d, &ev, 9, collect, NULL);
	make_event(&ev, &r, "10.0.0.6", 1, "a.moneropool.ru", "moneropool.ru", false, T0 + 10);
	dk_dedup_event(d, &ev, 10, collect, NULL);
	assert_int_equal(n_got, 7);
	assert_int_equal(got[5].addr0, 4);
	assert_true(got[5].evicted);
	assert_false(got[5].followup);
	assert_int_equal(got[5].count, 1);
	assert_int_equal(dk_dedup_size(d), 2);
	assert_int_equal(pol.refs, 3);
	dk_dedup_flush(d, collect, NULL);
	assert_int_equal(pol.refs, 1);
	dk_dedup_free(d);
}

/* Formats. */

static void format_native(const struct dk_alert_record *rec, char *buf, size_t size)
{
	int n = dk_alert_format(rec, DK_ALERT_FORMAT_NATIVE, buf, size);

	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(buf));
	assert_true(json_valid(buf));
}

static void test_format_native_v4(void **state)
{
	struct dk_alert_event ev;
	struct dk_alert_record rec = {.ev = &ev, .count = 1};
	char buf[2048];
	const char *want =
	        "{\"time\":\"2026-11-23T05:30:00.123Z\",\"rule_id\":\"DNS.Crypto.MiningPool\","
	        "\"rule_name\":\"Crypto mining pool lookup\",\"severity\":\"high\","
	        "\"mitre\":[\"TA0040:T1496\"],\"action\":\"sinkhole\",\"group\":\"default\","
	        "\"source_ip\":\"10.0.0.5\","
	        "\"source_port\":53211,\"transport\":\"udp\",\"dns_query\":\"abc.moneropool.ru\","
	        "\"qtype\":\"A\",\"matched\":\"moneropool.ru\",\"count\":1,"
	        "\"first_seen\":\"2026-11-23T05:30:00.123Z\","
	        "\"last_seen\":\"2026-11-23T05:30:00.123Z\",\"rcode\":\"NOERROR\","
	        "\"followup\":false}";

	(void)state;
	make_event(&ev, &rule_pool, "10.0.0.5", 53211, "ABC.MoneroPool.ru.", "moneropool.ru", false,
	           T0);
	rec.first_seen_ms = rec.last_seen_ms = T0;
	format_native(&rec, buf, sizeof(buf));
	assert_string_equal(buf, want);

	/* Exactly enough room, and one octet less. */
	assert_int_equal(dk_alert_format(&rec, DK_ALERT_FORMAT_NATIVE, buf, strlen(want) + 1),
	                 (int)strlen(want));
	assert_int_equal(dk_alert_format(&rec, DK_ALERT_FORMAT_NATIVE, buf, strlen(want)),
	                 DK_ESPACE);
	assert_int_equal(dk_alert_format(&rec, DK_ALERT_FORMAT_NATIVE, buf, 10), DK_ESPACE);
}

static void test_format_native_v6_wildcard(void **state)
{
	struct dk_alert_event ev;
	struct dk_alert_record rec = {.ev = &ev, .count = 5, .followup = true};
	char buf[2048];
	const char *want =
	        "{\"time\":\"2026-11-23T05:31:00.000Z\",\"rule_id\":\"DNS.DynDNS\","
	        "\"rule_name\":\"Dynamic \\\"DNS\\\" \\\\ "
	        "lookup\\t\\u0001\",\"severity\":\"medium\","
	        "\"mitre\":[\"TA0011:T1071.004\",\"TA0010:T1048\"],\"action\":\"alert\",\"group\":"
	        "\"default\","
	        "\"source_ip\":\"2001:db8::5\",\"source_port\":5353,\"transport\":\"tcp\","
	        "\"dns_query\":\"x.y.hopto.org\",\"qtype\":\"AAAA\",\"matched\":\"*.hopto.org\","
	        "\"count\":5,\"first_seen\":\"2026-11-23T05:30:00.123Z\","
	        "\"last_seen\":\"2026-11-23T05:31:00.000Z\",\"rcode\":\"NXDOMAIN\","
	        "\"followup\":true}";

	(void)state;
	make_event(&ev, &rule_dyn, "2001:db8::5", 5353, "x.y.hopto.org", "hopto.org", true,
	           T0 + 59877);
	ev.transport = DK_TRANSPORT_TCP;
	ev.qtype = 28;
	ev.rcode = 3;
	rec.first_seen_ms = T0;
	rec.last_seen_ms = T0 + 59877;
	format_native(&rec, buf, sizeof(buf));
	assert_string_equal(buf, want);
}

static void test_format_native_odd(void **state)
{
	/* One label holding a quote, a control octet and a dot: a"b\001.c */
	static const uint8_t odd[] = {6, 'a', '"', 'b', 1, '.', 'c', 3, 'c', 'o', 'm', 0};
	static const uint8_t target[] = {4, 'e', 'v', 'i', 'l', 3, 'c', 'o', 'm', 0};
	struct dk_alert_event ev;
	struct dk_alert_record rec = {
	        .ev = &ev, .count = 1, .first_seen_ms = T0, .last_seen_ms = T0};
	char buf[2048];

	(void)state;
	make_event(&ev, &rule_pool, "10.0.0.5", 1, "a.com", "com", false, T0);
	memcpy(ev.qname, odd, sizeof(odd));
	ev.qname_len = sizeof(odd);
	memcpy(ev.target, target, sizeof(target));
	ev.target_len = sizeof(target);
	ev.matched_off = 0;
	ev.qtype = 65280;
	ev.rcode = 12;
	format_native(&rec, buf, sizeof(buf));
	assert_non_null(strstr(buf, "\"dns_query\":\"a\\\\\\\"b\\\\001\\\\.c.com\","));
	assert_non_null(strstr(buf, "\"qtype\":\"TYPE65280\","));
	assert_non_null(strstr(buf, "\"matched\":\"evil.com\","));
	assert_non_null(strstr(buf, "\"rcode\":\"RCODE12\",\"cname_target\":\"evil.com\","));
}

/* The cached calendar part must follow every change of second, also backwards. */
static void test_time_text(void **state)
{
	static const struct {
		uint64_t ms;
		const char *text;
	} cases[] = {
	        {0, "1970-01-01T00:00:00.000Z"},
	        {999, "1970-01-01T00:00:00.999Z"},
	        {1000, "1970-01-01T00:00:01.000Z"},
	        {951782399999ull, "2000-02-28T23:59:59.999Z"},
	        {951782400000ull, "2000-02-29T00:00:00.000Z"},
	        {1795411800123ull, "2026-11-23T05:30:00.123Z"},
	        {1795411800007ull, "2026-11-23T05:30:00.007Z"},
	        {1795411799050ull, "2026-11-23T05:29:59.050Z"},
	        {253402300799999ull, "9999-12-31T23:59:59.999Z"},
	};
	char out[DK_ALERT_TIME_LEN + 1];

	(void)state;
	for (size_t i = 0; i < DK_ARRAY_SIZE(cases); i++) {
		memset(out, 'x', sizeof(out));
		assert_int_equal(dk_alert_time_text(cases[i].ms, out), DK_ALERT_TIME_LEN);
		assert_string_equal(out, cases[i].text);
	}
	assert_int_equal(dk_alert_time_text(253402300800000ull, out), DK_ESPACE);
}

static void test_format_ocsf(void **state)
{
	struct dk_alert_event ev;
	struct dk_alert_record rec = {.ev = &ev, .count = 3, .followup = true};
	char buf[4096];
	static const char *want[] = {
	        "{\"class_uid\":4003,",
	        "\"category_uid\":4,",
	        "\"activity_id\":1,",
	        "\"type_uid\":400301,",
	        "\"time\":1795411860000,",
	        "\"severity_id\":4,\"severity\":\"High\",",
	        "\"action_id\":2,\"action\":\"Denied\",",
	        "\"disposition_id\":2,\"disposition\":\"Blocked\",",
	        "\"count\":3,\"start_time\":1795411800123,\"end_time\":1795411860000,",
	        "\"query\":{\"hostname\":\"abc.moneropool.ru\",\"type\":\"A\",\"class\":\"IN\"},",
	        "\"rcode_id\":0,\"rcode\":\"NoError\",",
	        "\"src_endpoint\":{\"ip\":\"10.0.0.5\",\"port\":53211},",
	        "\"connection_info\":{\"protocol_name\":\"udp\",\"protocol_num\":17,",
	        "\"metadata\":{\"version\":\"1.1.0\",",
	        "\"product\":{\"name\":\"dnsink\",\"vendor_name\":\"dnsink\",",
	        "\"unmapped\":{\"rule_id\":\"DNS.Crypto.MiningPool\","
	        "\"rule_name\":\"Crypto mining pool lookup\",\"mitre\":[\"TA0040:T1496\"],",
	        "\"matched\":\"moneropool.ru\",",
	        "\"followup\":true}}",
	};
	int n;

	(void)state;
	make_event(&ev, &rule_pool, "10.0.0.5", 53211, "abc.moneropool.ru", "moneropool.ru", false,
	           T0 + 59877);
	rec.first_seen_ms = T0;
	rec.last_seen_ms = T0 + 59877;
	n = dk_alert_format(&rec, DK_ALERT_FORMAT_OCSF, buf, sizeof(buf));
	assert_true(n > 0);
	assert_true(json_valid(buf));
	for (size_t i = 0; i < DK_ARRAY_SIZE(want); i++)
		if (!strstr(buf, want[i]))
			fail_msg("missing %s in %s", want[i], buf);
	assert_null(strchr(buf, '\n'));
	printf("ocsf: %s\n", buf);

	/* An alert-only rule is allowed through, over TCP, from IPv6. */
	make_event(&ev, &rule_dyn, "::1", 7, "x.hopto.org", "hopto.org", true, T0);
	ev.transport = DK_TRANSPORT_TCP;
	rec.followup = false;
	rec.count = 1;
	n = dk_alert_format(&rec, DK_ALERT_FORMAT_OCSF, buf, sizeof(buf));
	assert_true(n > 0);
	assert_true(json_valid(buf));
	assert_non_null(strstr(buf, "\"severity_id\":3,"));
	assert_non_null(strstr(buf, "\"action_id\":1,\"action\":\"Allowed\","));
	assert_non_null(strstr(buf, "\"disposition_id\":19,\"disposition\":\"Alert\","));
	assert_non_null(strstr(buf, "\"protocol_name\":\"tcp\",\"protocol_num\":6,"));
	assert_non_null(strstr(buf, "\"src_endpoint\":{\"ip\":\"::1\",\"port\":7}"));
	assert_non_null(strstr(buf, "\"matched\":\"*.hopto.org\""));
	assert_int_equal(dk_alert_format(&rec, DK_ALERT_FORMAT_OCSF, buf, (size_t)n), DK_ESPACE);
}

/* The alerter on a real loop. */

struct waiter {
	bool (*pred)(void *);
	void *ctx;
	uint64_t deadline;
	bool ok;
};

static void waiter_cb(uv_timer_t *t)
{
	struct waiter *w = t->data;

	if (w->pred(w->ctx)) {
		w->ok = true;
		uv_stop(t->loop);
	} else if (uv_now(t->loop) >= w->deadline) {
		uv_stop(t->loop);
	}
}

static bool run_until(uv_loop_t *loop, bool (*pred)(void *), void *ctx, unsigned timeout_ms)
{
	struct waiter w = {pred, ctx, 0, false};
	uv_timer_t t;

	uv_update_time(loop);
	w.deadline = uv_now(loop) + timeout_ms;
	uv_timer_init(loop, &t);
	t.data = &w;
	uv_timer_start(&t, waiter_cb, 5, 5);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return w.ok;
}

static void finish_loop(uv_loop_t *loop, struct dk_alerter *a)
{
	dk_alerter_close(a);
	uv_run(loop, UV_RUN_DEFAULT);
	dk_alerter_free(a);
	assert_int_equal(uv_loop_close(loop), 0);
}

struct emitted_ctx {
	struct dk_alerter *a;
	uint64_t want;
};

static bool emitted_reached(void *p)
{
	struct emitted_ctx *c = p;
	struct dk_alert_stats st;

	dk_alerter_stats(c->a, &st);
	return st.emitted >= c->want;
}

struct poster {
	struct dk_alerter *a;
	unsigned worker;
	unsigned n;
	uint16_t port0;
	const struct dk_rule *rule;
};

static void *poster_main(void *arg)
{
	struct poster *p = arg;
	struct dk_alert_event ev;

	make_event(&ev, p->rule, "10.0.0.5", 0, "abc.moneropool.ru", "moneropool.ru", false, T0);
	for (unsigned i = 0; i < p->n; i++) {
		ev.port = (uint16_t)(p->port0 + i);
		dk_alerter_post(p->a, p->worker, &ev);
	}
	return NULL;
}

static void post_from_threads(struct dk_alerter *a, const struct dk_rule *rule, unsigned n0,
                              unsigned n1, uint16_t port0)
{
	struct poster p0 = {a, 0, n0, port0, rule}, p1 = {a, 1, n1, (uint16_t)(port0 + n0), rule};
	pthread_t t0, t1;

	assert_int_equal(pthread_create(&t0, NULL, poster_main, &p0), 0);
	assert_int_equal(pthread_create(&t1, NULL, poster_main, &p1), 0);
	pthread_join(t0, NULL);
	pthread_join(t1, NULL);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

/* Checks JSON lines; marks source ports seen in @seen (must be unseen). */
static unsigned check_lines(char *text, bool *seen, size_t n_seen)
{
	unsigned lines = 0;

	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		char *p = strstr(l, "\"source_port\":");
		unsigned port;

		assert_true(json_valid(l));
		assert_non_null(p);
		port = (unsigned)strtoul(p + 14, NULL, 10);
		assert_true(port < n_seen);
		assert_false(seen[port]);
		seen[port] = true;
		lines++;
	}
	return lines;
}

/* Checks one RFC 5424 message; returns the MSG part. */
static const char *check_rfc5424(const char *m, int pri)
{
	char want[64], host[256];
	const char *p;

	snprintf(want, sizeof(want), "<%d>1 ", pri);
	assert_memory_equal(m, want, strlen(want));
	p = m + strlen(want);
	/* TIMESTAMP: 2026-11-23T05:30:00.123Z, 24 characters. */
	assert_true(p[4] == '-' && p[10] == 'T' && p[19] == '.' && p[23] == 'Z' && p[24] == ' ');
	p += 25;
	gethostname(host, sizeof(host));
	assert_memory_equal(p, host, strlen(host));
	p += strlen(host);
	snprintf(want, sizeof(want), " dnsink-test %ld alert - {", (long)getpid());
	assert_memory_equal(p, want, strlen(want));
	p += strlen(want) - 1;
	assert_true(json_valid(p));
	return p;
}

static bool never(void *p)
{
	(void)p;
	return false;
}

/* The source ports of the first @n lines of @text, in file order. */
static void file_order(const char *text, unsigned *order, unsigned n)
{
	const char *p = text;

	for (unsigned i = 0; i < n; i++) {
		p = strstr(p, "\"source_port\":");
		assert_non_null(p);
		p += 14;
		order[i] = (unsigned)strtoul(p, NULL, 10);
	}
}

static char tmpdir[64];

static int make_tmpdir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/dk_alert_XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int remove_tmpdir(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_alerter_file_unix(void **state)
{
	uv_loop_t loop;
	struct dk_config cfg;
	struct dk_alerter *a = NULL;
	struct dk_diag diag;
	char path[96], rotated[96], sock[96], dgram[4096];
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct emitted_ctx ec;
	struct dk_alert_stats st;
	struct dk_rule r = rule_pool;
	bool seen[200] = {false};
	unsigned order[100], tries;
	int fd;
	unsigned n;
	char *text, *p;

	(void)state;
	snprintf(path, sizeof(path), "%s/alerts.jsonl", tmpdir);
	snprintf(rotated, sizeof(rotated), "%s/alerts.jsonl.1", tmpdir);
	snprintf(sock, sizeof(sock), "%s/log.sock", tmpdir);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);

	memset(&cfg, 0, sizeof(cfg));
	dk_config_set_defaults(&cfg);
	cfg.alerts.transport = DK_SYSLOG_UNIX;
	cfg.alerts.unix_path = sock;
	cfg.alerts.ident = "dnsink-test";
	cfg.alerts.facility = LOG_LOCAL3;
	cfg.alerts.file = path;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(dk_alerter_new(&loop, &cfg, 2, &a, &diag), 0);

	post_from_threads(a, &r, 60, 40, 0);
	ec = (struct emitted_ctx){a, 100};
	assert_true(run_until(&loop, emitted_reached, &ec, 5000));
	text = read_file(path);
	file_order(text, order, 100);
	assert_int_equal(check_lines(text, seen, 200), 100);
	free(text);
	for (unsigned i = 0; i < 100; i++)
		assert_true(seen[i]);

	/*
	 * The same records go to the unix socket, one datagram each. The
	 * receiver queue holds only a few (net.unix.max_dgram_qlen), so the
	 * rest wait in the alerter until this reader makes room.
	 */
	for (n = 0, tries = 0; n < 100 && tries < 500; tries++) {
		ssize_t len;

		while ((len = recv(fd, dgram, sizeof(dgram) - 1, 0)) > 0) {
			dgram[len] = '\0';
			p = strstr(check_rfc5424(dgram, LOG_LOCAL3 | LOG_WARNING),
			           "\"source_port\":");
			assert_non_null(p);
			assert_int_equal(strtoul(p + 14, NULL, 10), order[n]);
			n++;
		}
		run_until(&loop, never, NULL, 10);
	}
	assert_int_equal(n, 100);
	assert_int_equal(recv(fd, dgram, sizeof(dgram), 0), -1);
	dk_alerter_stats(a, &st);
	assert_int_equal(st.lost_sink, 0);
	assert_int_equal(st.queued, 0);

	/* Rotation: the file is renamed, reopen starts a new one. */
	assert_int_equal(rename(path, rotated), 0);
	dk_alerter_reopen(a);
	post_from_threads(a, &r, 3, 2, 100);
	ec.want = 105;
	assert_true(run_until(&loop, emitted_reached, &ec, 5000));
	text = read_file(path);
	assert_int_equal(check_lines(text, seen, 200), 5);
	free(text);
	for (unsigned i = 100; i < 105; i++)
		assert_true(seen[i]);

	/* Dedup through the alerter: the follow-up comes at close. */
	r.dedup_minutes = 10;
	post_from_threads(a, &r, 3, 0, 150);
	ec.want = 106;
	assert_true(run_until(&loop, emitted_reached, &ec, 5000));
	dk_alerter_stats(a, &st);
	assert_int_equal(st.events, 108);
	assert_int_equal(st.emitted, 106);
	assert_int_equal(st.lost_ring, 0);
	assert_int_equal(pol.refs, 2);
	finish_loop(&loop, a);
	assert_int_equal(pol.refs, 1);
	text = read_file(path);
	memset(seen, 0, sizeof(seen));
	assert_int_equal(check_lines(text, seen, 200), 7);
	assert_true(seen[150] && seen[152]);
	free(text);
	text = read_file(path);
	assert_non_null(strstr(text, "\"count\":2,"));
	assert_non_null(strstr(text, "\"followup\":true"));
	free(text);
	close(fd);
}

static uint64_t fake_now;

static uint64_t fake_clock(void)
{
	return fake_now;
}

static void test_alerter_udp(void **state)
{
	uv_loop_t loop;
	struct dk_config cfg;
	struct dk_alerter *a = NULL;
	struct dk_diag diag;
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t slen = sizeof(sin);
	struct emitted_ctx ec;
	struct dk_rule r = rule_pool;
	char dgram[4096];
	int fd;

	(void)state;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);

	memset(&cfg, 0, sizeof(cfg));
	dk_config_set_defaults(&cfg);
	cfg.alerts.transport = DK_SYSLOG_UDP;
	cfg.alerts.ident = "dnsink-test";
	cfg.alerts.facility = LOG_DAEMON;
	cfg.alerts.format = DK_ALERT_FORMAT_OCSF;
	cfg.alerts.server.in4 = sin;
	cfg.alerts.server.len = sizeof(sin);
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(dk_alerter_new(&loop, &cfg, 2, &a, &diag), 0);
	dk_alerter_set_clock(a, fake_clock);

	/* A one-minute window: the first record at once, the follow-up on a tick. */
	r.dedup_minutes = 1;
	r.severity = DK_SEVERITY_LOW;
	fake_now = 1000;
	post_from_threads(a, &r, 2, 1, 10);
	ec = (struct emitted_ctx){a, 1};
	assert_true(run_until(&loop, emitted_reached, &ec, 5000));
	fake_now = 1000 + 60000;
	ec.want = 2;
	assert_true(run_until(&loop, emitted_reached, &ec, 5000));
	for (int i = 0; i < 2; i++) {
		ssize_t len = recv(fd, dgram, sizeof(dgram) - 1, 0);
		const char *msg;

		assert_true(len > 0);
		dgram[len] = '\0';
		msg = check_rfc5424(dgram, LOG_DAEMON | LOG_NOTICE);
		assert_non_null(strstr(msg, "\"class_uid\":4003"));
		assert_non_null(strstr(msg, i == 0 ? "\"count\":1," : "\"count\":2,"));
		if (i == 1)
			printf("rfc5424: %s\n", dgram);
	}
	assert_int_equal(recv(fd, dgram, sizeof(dgram), 0), -1);
	finish_loop(&loop, a);
	assert_int_equal(pol.refs, 1);
	close(fd);
}

struct queued_ctx {
	struct dk_alerter *a;
	uint64_t queued;
};

static bool queue_is(void *p)
{
	struct queued_ctx *c = p;
	struct dk_alert_stats st;

	dk_alerter_stats(c->a, &st);
	return st.queued == c->queued && st.emitted + st.lost_sink == st.events;
}

static void test_alerter_tcp_late(void **state)
{
	uv_loop_t loop;
	struct dk_config cfg;
	struct dk_alerter *a = NULL;
	struct dk_diag diag;
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t slen = sizeof(sin);
	struct queued_ctx qc;
	struct dk_alert_stats st;
	bool seen[16] = {false};
	char buf[65536];
	size_t got_len = 0, frames = 0;
	int lfd, cfd, one = 1;

	(void)state;
	/* Find a free port, then leave it closed: the collector is away. */
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &slen), 0);
	close(lfd);

	memset(&cfg, 0, sizeof(cfg));
	dk_config_set_defaults(&cfg);
	cfg.alerts.transport = DK_SYSLOG_TCP;
	cfg.alerts.ident = "dnsink-test";
	cfg.alerts.facility = LOG_DAEMON;
	cfg.alerts.server.in4 = sin;
	cfg.alerts.server.len = sizeof(sin);
	cfg.alerts.queue = 4;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(dk_alerter_new(&loop, &cfg, 2, &a, &diag), 0);

	post_from_threads(a, &rule_pool, 4, 2, 1);
	qc = (struct queued_ctx){a, 4};
	assert_true(run_until(&loop, queue_is, &qc, 5000));
	/* Let a reconnect attempt or two fail before the collector appears. */
	run_until(&loop, queue_is, &(struct queued_ctx){a, 99}, 700);
	dk_alerter_stats(a, &st);
	assert_int_equal(st.queued, 4);
	assert_int_equal(st.lost_sink, 2);

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	qc.queued = 0;
	assert_true(run_until(&loop, queue_is, &qc, 10000));
	cfd = accept(lfd, NULL, NULL);
	assert_true(cfd >= 0);
	finish_loop(&loop, a);

	/* Everything the alerter wrote is in; read to EOF. */
	for (;;) {
		struct pollfd pfd = {.fd = cfd, .events = POLLIN};
		ssize_t n;

		assert_int_equal(poll(&pfd, 1, 3000), 1);
		n = read(cfd, buf + got_len, sizeof(buf) - 1 - got_len);
		assert_true(n >= 0);
		if (n == 0)
			break;
		got_len += (size_t)n;
	}
	buf[got_len] = '\0';
	/* Octet counting: LEN SP MSG, back to back. */
	for (size_t off = 0; off < got_len; frames++) {
		char *end, *msg, *p;
		unsigned long len = strtoul(buf + off, &end, 10);
		char save;

		assert_true(end > buf + off && *end == ' ');
		msg = end + 1;
		assert_true(msg + len <= buf + got_len);
		save = msg[len];
		msg[len] = '\0';
		p = strstr(check_rfc5424(msg, LOG_DAEMON | LOG_WARNING), "\"source_port\":");
		assert_non_null(p);
		unsigned port = (unsigned)strtoul(p + 14, NULL, 10);
		assert_true(port < DK_ARRAY_SIZE(seen));
		assert_false(seen[port]);
		seen[port] = true;
		msg[len] = save;
		off = (size_t)(msg + len - buf);
	}
	assert_int_equal(frames, 4);
	close(cfd);
	close(lfd);
}

static void test_alerter_reconfigure(void **state)
{
	uv_loop_t loop;
	struct dk_config cfg;
	struct dk_alerter *a = NULL;
	struct dk_diag diag;
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t slen = sizeof(sin);
	struct emitted_ctx ec;
	char path1[96], path2[96], dgram[4096], *text;
	bool seen[16] = {false};
	ssize_t len;
	int fd;

	(void)state;
	snprintf(path1, sizeof(path1), "%s/re1.jsonl", tmpdir);
	snprintf(path2, sizeof(path2), "%s/re2.jsonl", tmpdir);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);

	/* Start with a unix collector that does not exist: records are lost, counted. */
	memset(&cfg, 0, sizeof(cfg));
	dk_config_set_defaults(&cfg);
	cfg.alerts.transport = DK_SYSLOG_UNIX;
	cfg.alerts.unix_path = "/nonexistent/dnsink-test.sock";
	cfg.alerts.ident = "dnsink-test";
	cfg.alerts.facility = LOG_DAEMON;
	cfg.alerts.file = path1;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(dk_alerter_new(&loop, &cfg, 2, &a, &diag), 0);
	post_from_threads(a, &rule_pool, 1, 1, 1);
	ec = (struct emitted_ctx){a, 2};
	assert_true(run_until(&loop, emitted_reached, &ec, 5000));

	/* Then UDP and another file. */
	cfg.alerts.transport = DK_SYSLOG_UDP;
	cfg.alerts.server.in4 = sin;
	cfg.alerts.server.len = sizeof(sin);
	cfg.alerts.file = path2;
	assert_int_equal(dk_alerter_reconfigure(a, &cfg), 0);
	post_from_threads(a, &rule_pool, 1, 1, 3);
	ec.want = 4;
	assert_true(run_until(&loop, emitted_reached, &ec, 5000));
	len = recv(fd, dgram, sizeof(dgram) - 1, 0);
	assert_true(len > 0);
	dgram[len] = '\0';
	check_rfc5424(dgram, LOG_DAEMON | LOG_WARNING);
	assert_true(recv(fd, dgram, sizeof(dgram) - 1, 0) > 0);
	assert_int_equal(recv(fd, dgram, sizeof(dgram), 0), -1);
	finish_loop(&loop, a);

	text = read_file(path1);
	assert_int_equal(check_lines(text, seen, DK_ARRAY_SIZE(seen)), 2);
	free(text);
	text = read_file(path2);
	assert_int_equal(check_lines(text, seen, DK_ARRAY_SIZE(seen)), 2);
	free(text);
	assert_true(seen[1] && seen[2] && seen[3] && seen[4]);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_json_checker),
	        cmocka_unit_test(test_ring_basic),
	        cmocka_unit_test(test_ring_thread),
	        cmocka_unit_test_setup(test_dedup_threshold1, reset_got),
	        cmocka_unit_test_setup(test_dedup_threshold3, reset_got),
	        cmocka_unit_test_setup(test_dedup_keys, reset_got),
	        cmocka_unit_test_setup(test_dedup_zero, reset_got),
	        cmocka_unit_test_setup(test_dedup_bound, reset_got),
	        cmocka_unit_test(test_format_native_v4),
	        cmocka_unit_test(test_format_native_v6_wildcard),
	        cmocka_unit_test(test_format_native_odd),
	        cmocka_unit_test(test_time_text),
	        cmocka_unit_test(test_format_ocsf),
	        cmocka_unit_test_setup(test_alerter_file_unix, reset_got),
	        cmocka_unit_test_setup(test_alerter_udp, reset_got),
	        cmocka_unit_test_setup(test_alerter_tcp_late, reset_got),
	        cmocka_unit_test_setup(test_alerter_reconfigure, reset_got),
	};

	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
