/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the log readers of `dnsink hunt` (json_scan.c, logrec.c,
 * logfmt_*.c) and of the verdict on a logged lookup (hunt.c): the JSON
 * scanner's paths, leniency and bounds; times in every form the formats
 * use; BIND lines with and without their optional parts; Zeek headers;
 * which format a JSON line is; and the daemon's precedence of name and
 * answer checks, against the repo's rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "dnsink/hunt.h"
#include "dnsink/json_scan.h"
#include "dnsink/logrec.h"
#include "dnsink/name.h"

struct seen {
	char paths[16][64];
	int n;
};

static bool collect(void *ctx, const struct dk_json_leaf *l)
{
	struct seen *s = ctx;

	if (s->n < 16)
		snprintf(s->paths[s->n++], 64, "%.*s/%.*s[%d]=%.*s", (int)l->parent.len,
		         l->parent.p, (int)l->key.len, l->key.p, l->index, (int)l->val.len,
		         l->val.p);
	return true;
}

static void test_json_paths(void **state)
{
	(void)state;
	struct seen s = {0};
	const char *j = "{\"a\":1,\"q\":{\"hostname\":\"x.y\",},\"answers\":[{\"Type\":\"CNAME\"},"
	                "{\"Type\":\"A\"}],\"z\":[\"s1\",\"s2\"],bare:true,}";

	assert_int_equal(dk_json_scan(j, strlen(j), collect, &s), 0);
	assert_int_equal(s.n, 7);
	assert_string_equal(s.paths[0], "/a[-1]=1");
	assert_string_equal(s.paths[1], "q/hostname[-1]=x.y");
	assert_string_equal(s.paths[2], "answers/Type[0]=CNAME");
	assert_string_equal(s.paths[3], "answers/Type[1]=A");
	assert_string_equal(s.paths[4], "/z[0]=s1");
	assert_string_equal(s.paths[5], "/z[1]=s2");
	assert_string_equal(s.paths[6], "/bare[-1]=true");
}

static void test_json_bad(void **state)
{
	(void)state;
	static const char *const bad[] = {
	        "{",    "{\"a\":}",    "{\"a\" 1}",        "{\"a\":1", "[1,2", "{\"a\":\"x}",
	        "{} x", "{\"a\":tru}", "{\"a\":\"\x01\"}", "",         "{,}",  "{\"a\":-}",
	};
	char deep[200];
	struct seen s;

	for (size_t i = 0; i < DK_ARRAY_SIZE(bad); i++) {
		memset(&s, 0, sizeof(s));
		assert_int_equal(dk_json_scan(bad[i], strlen(bad[i]), collect, &s), DK_ESYNTAX);
	}
	/* Nesting past DK_JSON_DEPTH is refused, not recursed into. */
	memset(deep, '[', sizeof(deep));
	assert_int_equal(dk_json_scan(deep, sizeof(deep), collect, &s), DK_ESYNTAX);
}

static void test_json_unescape(void **state)
{
	(void)state;
	char out[32];
	struct dk_json_str s = {"a\\u0062\\n\\\"\\ud83d\\ude00", 23};

	assert_int_equal(dk_json_unescape(s, out, sizeof(out)), 8);
	assert_memory_equal(out, "ab\n\"\xf0\x9f\x98\x80", 8);
	s = (struct dk_json_str){"\\ud83d", 6}; /* a lone high surrogate */
	assert_int_equal(dk_json_unescape(s, out, sizeof(out)), DK_ESYNTAX);
	s = (struct dk_json_str){"abcdef", 6};
	assert_int_equal(dk_json_unescape(s, out, 4), DK_ESPACE);
}

static void test_times(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		uint64_t ms;
	} ok[] = {
	        {"2022-06-25 00:27:53", 1656116873000ULL},
	        {"2022-06-25T00:27:53Z", 1656116873000ULL},
	        {"2021-02-04 17:51:55.123", 1612461115123ULL},
	        {"2021-02-04T17:51:55.123456Z", 1612461115123ULL},
	        {"2021-02-04T18:51:55+01:00", 1612461115000ULL},
	        {"2021-02-04T12:51:55.5-0500", 1612461115500ULL},
	        {"2000-02-29T00:00:00Z", 951782400000ULL},
	};
	static const char *const bad[] = {"2022-13-01 00:00:00",  "2022-06-25",
	                                  "2022-06-25 00:27",     "2022-06-25T00:27:53Q",
	                                  "2022-06-25T00:27:53.", "1969-12-31T23:59:59Z"};
	uint64_t ms;

	for (size_t i = 0; i < DK_ARRAY_SIZE(ok); i++) {
		assert_int_equal(dk_log_parse_iso_time(ok[i].s, strlen(ok[i].s), &ms), 0);
		assert_int_equal(ms, ok[i].ms);
	}
	for (size_t i = 0; i < DK_ARRAY_SIZE(bad); i++)
		assert_int_equal(dk_log_parse_iso_time(bad[i], strlen(bad[i]), &ms),
		                 DK_LOGERR_TIME);
	assert_int_equal(dk_log_parse_epoch("1591367999.305988", 17, &ms), 0);
	assert_int_equal(ms, 1591367999305ULL);
	assert_int_equal(dk_log_parse_epoch("12a", 3, &ms), DK_LOGERR_TIME);
}

static void assert_qname(const struct dk_logrec *r, const char *text)
{
	char t[DK_NAME_MAX * 4 + 1];

	assert_true(dk_name_to_text(r->qname, r->qname_len, t, sizeof(t)) >= 0);
	assert_string_equal(t, text);
}

static void test_bind_lines(void **state)
{
	(void)state;
	struct dk_logrec r;
	const char *l1 = "01-Dec-2026 11:00:00.123 queries: info: client @0x7f2d4c01a168 "
	                 "10.0.0.5#53211 (MoneroPool.RU): view internal: query: MoneroPool.RU IN "
	                 "AAAA +TE(0)K (10.0.0.1)";
	const char *l2 = "client 2001:db8::5#1053 (a\\.b.example): query: a\\.b.example IN TXT - "
	                 "(2001:db8::1)";
	const char *l3 = "2026-12-01T11:00:00.250Z client @0x1 192.0.2.1#5 (x.org): query: x.org "
	                 "IN A + (192.0.2.53)";

	assert_int_equal(dk_log_parse_bind(l1, strlen(l1), &r), 0);
	assert_qname(&r, "moneropool.ru");
	assert_int_equal(r.qtype, 28);
	assert_int_equal(r.transport, DK_TRANSPORT_TCP);
	assert_int_equal(r.family, AF_INET);
	assert_int_equal(r.port, 53211);
	assert_true(r.time_ms > 0);
	assert_int_equal(dk_log_parse_bind(l2, strlen(l2), &r), 0);
	assert_int_equal(r.family, AF_INET6);
	assert_int_equal(r.transport, DK_TRANSPORT_UDP);
	assert_int_equal(r.qname[0], 3); /* "a.b" is one label */
	assert_int_equal(r.time_ms, 0);
	assert_int_equal(dk_log_parse_bind(l3, strlen(l3), &r), 0);
	assert_int_equal(r.time_ms, 1796122800250ULL);
	assert_int_equal(dk_log_parse_bind("named starting", 14, &r), DK_LOGERR_BIND);
	assert_int_equal(dk_log_parse_bind("", 0, &r), DK_LOG_SKIP);
	const char *l4 = "client @0x1 notanip#5 (x): query: x IN A +";
	assert_int_equal(dk_log_parse_bind(l4, strlen(l4), &r), DK_LOGERR_ADDR);
}

static void test_zeek_header(void **state)
{
	(void)state;
	struct dk_zeek_tsv z;
	struct dk_logrec r;
	const char *data = "1.5,x,10.1.1.1,5,udp,a.example,1,0,b.example|1.2.3.4";

	dk_zeek_tsv_init(&z);
	assert_int_equal(dk_log_parse_zeek_tsv(&z, data, strlen(data), &r), DK_LOGERR_ZEEK);
	assert_int_equal(dk_log_parse_zeek_tsv(&z, "#separator ,", 12, &r), DK_LOG_SKIP);
	const char *f = "#fields,ts,uid,id.orig_h,id.orig_p,proto,query,qtype,rcode,answers";
	assert_int_equal(dk_log_parse_zeek_tsv(&z, f, strlen(f), &r), DK_LOG_SKIP);
	/* The set separator is ',' too in this odd log; answers split on it: only 'b.example|...'.
	 */
	assert_int_equal(dk_log_parse_zeek_tsv(&z, data, strlen(data), &r), 0);
	assert_qname(&r, "a.example");
	assert_int_equal(r.time_ms, 1500);
	assert_int_equal(r.rcode, 0);
	assert_int_equal(dk_log_parse_zeek_tsv(&z, "1.5,x", 5, &r), DK_LOGERR_ZEEK);
}

static void test_json_shapes(void **state)
{
	(void)state;
	static const struct {
		const char *line;
		int rc;
		enum dk_logfmt fmt;
	} cases[] = {
	        {"{\"query_name\":\"a.example.\",\"srcaddr\":\"10.0.0.1\",\"query_timestamp\":"
	         "\"2021-02-04T17:51:55Z\",\"answers\":[{\"Type\":\"CNAME\",\"Rdata\":\"c.example."
	         "\"}]}",
	         0, DK_LOGFMT_ROUTE53},
	        {"{\"class_uid\":4003,\"query\":{\"hostname\":\"a.example\"},\"time\":"
	         "1700000000123}",
	         0, DK_LOGFMT_OCSF},
	        {"{\"rule_id\":\"R\",\"dns_query\":\"a.example\",\"source_ip\":\"::1\"}", 0,
	         DK_LOGFMT_DNSINK},
	        {"{\"ts\":1.0,\"query\":\"a.example\",\"id.orig_h\":\"10.0.0.1\"}", 0,
	         DK_LOGFMT_ZEEK},
	        {"{\"EventID\":22,\"QueryName\":\"a.example\"}", 0, DK_LOGFMT_SYSMON},
	        {"{\"EventID\":3,\"Image\":\"x\"}", DK_LOG_SKIP, DK_LOGFMT_SYSMON},
	        {"{\"query_name\":\"a..example\"}", DK_LOGERR_NAME, DK_LOGFMT_ROUTE53},
	        {"{\"query_name\":\"a.example\",\"srcaddr\":\"10.0.0\"}", DK_LOGERR_ADDR,
	         DK_LOGFMT_ROUTE53},
	        {"{\"query_name\":\"a.example\",\"query_timestamp\":\"yesterday\"}", DK_LOGERR_TIME,
	         DK_LOGFMT_ROUTE53},
	        {"{\"hello\":1}", DK_LOGERR_SHAPE, DK_LOGFMT_AUTO},
	        {"not json", DK_LOGERR_JSON, DK_LOGFMT_AUTO},
	};
	struct dk_logrec r;

	for (size_t i = 0; i < DK_ARRAY_SIZE(cases); i++) {
		int rc =
		        dk_log_parse_json(cases[i].line, strlen(cases[i].line), DK_LOGFMT_AUTO, &r);
		assert_int_equal(rc, cases[i].rc);
		if (rc == 0) {
			assert_int_equal(r.fmt, cases[i].fmt);
			assert_qname(&r, "a.example");
		}
	}
	assert_int_equal(
	        dk_log_parse_json(cases[0].line, strlen(cases[0].line), DK_LOGFMT_ROUTE53, &r), 0);
	assert_int_equal(r.n_targets, 1);
	assert_int_equal(r.time_ms, 1612461115000ULL);
	assert_int_equal(
	        dk_log_parse_json(cases[1].line, strlen(cases[1].line), DK_LOGFMT_OCSF, &r), 0);
	assert_int_equal(r.time_ms, 1700000000123ULL);
	/* Forced to another format, a line is not taken for what it is not. */
	assert_int_equal(
	        dk_log_parse_json(cases[0].line, strlen(cases[0].line), DK_LOGFMT_OCSF, &r),
	        DK_LOGERR_SHAPE);
}

static struct dk_logrec *rec(const char *qname, const char *target)
{
	static struct dk_logrec r;

	dk_logrec_reset(&r, DK_LOGFMT_ROUTE53);
	assert_int_equal(dk_logrec_set_qname(&r, qname, strlen(qname)), 0);
	assert_int_equal(dk_logrec_set_addr(&r, "10.0.0.7", 8), 0);
	r.rcode = 3;
	if (target)
		assert_int_equal(dk_logrec_add_target(&r, target, strlen(target)), 0);
	return &r;
}

static void test_judge(void **state)
{
	(void)state;
	static const char *const paths[] = {"rules/"};
	struct dk_policy *p = NULL;
	struct dk_diag d;
	struct dk_alert_event ev[DK_HUNT_EVENTS_MAX];

	assert_int_equal(dk_policy_load(paths, 1, 0, &p, &d), 0);
	/* A blocking rule on the name ends it: the answer never came. */
	assert_int_equal(dk_hunt_judge(p, NULL, rec("moneropool.ru", "x.webhop.net"), ev), 1);
	assert_int_equal(ev[0].target_len, 0);
	assert_int_equal(ev[0].rcode, 0); /* the sinkhole's NOERROR, not the logged NXDOMAIN */
	/* An alert rule on the name, then a blocking rule on a target: two events. */
	assert_int_equal(dk_hunt_judge(p, NULL, rec("a.webhop.net", "pool.moneropool.ru"), ev), 2);
	assert_int_equal(ev[0].rule->action, DK_ACTION_ALERT);
	assert_int_equal(ev[1].rule->action, DK_ACTION_SINKHOLE);
	assert_true(ev[1].target_len > 0);
	/* An alert rule on a target takes the logged rcode. */
	assert_int_equal(dk_hunt_judge(p, NULL, rec("clean.example", "b.webhop.net"), ev), 1);
	assert_int_equal(ev[0].rcode, 3);
	assert_int_equal(dk_hunt_judge(p, NULL, rec("clean.example", "also.clean.example"), ev), 0);
	/* The address of a record in an answer is no target. */
	struct dk_logrec *r = rec("clean.example", NULL);
	assert_int_equal(dk_logrec_add_target(r, "192.0.2.1", 9), DK_EFULL);
	/* A dnstap response whose query was logged: only its answer is judged. */
	r = rec("moneropool.ru", NULL);
	r->answer_only = true;
	assert_int_equal(dk_hunt_judge(p, NULL, r, ev), 0);
	dk_policy_unref(p);
}

/* ---- the dnstap protobuf walker ---- */

struct pb {
	uint8_t b[1024];
	size_t n;
};

static void pb_varint_put(struct pb *p, uint64_t v)
{
	do {
		uint8_t o = v & 0x7f;
		v >>= 7;
		p->b[p->n++] = o | (v ? 0x80 : 0);
	} while (v);
}

static void pb_key(struct pb *p, unsigned num, unsigned wire)
{
	pb_varint_put(p, (uint64_t)num << 3 | wire);
}

static void pb_bytes(struct pb *p, unsigned num, const void *d, size_t n)
{
	pb_key(p, num, 2);
	pb_varint_put(p, n);
	memcpy(p->b + p->n, d, n);
	p->n += n;
}

static void pb_uint(struct pb *p, unsigned num, uint64_t v)
{
	pb_key(p, num, 0);
	pb_varint_put(p, v);
}

static void pb_fixed32(struct pb *p, unsigned num, uint32_t v)
{
	pb_key(p, num, 5);
	for (int i = 0; i < 4; i++)
		p->b[p->n++] = (uint8_t)(v >> (8 * i));
}

/* A CLIENT_QUERY for www.Example.test AAAA from 192.0.2.7:5300 over TCP, with extras. */
static size_t tap_frame(uint8_t *out, bool unknown_fields)
{
	static const uint8_t dns[] = {
	        0x12, 0x34, 0x01, 0x00, 0,   1,   0,   0, 0,   0,   0,   0,   3, 'w', 'w', 'w', 7,
	        'E',  'x',  'a',  'm',  'p', 'l', 'e', 4, 't', 'e', 's', 't', 0, 0,   28,  0,   1};
	static const uint8_t addr[] = {192, 0, 2, 7};
	struct pb m = {.n = 0}, d = {.n = 0};

	pb_uint(&m, 1, 5); /* CLIENT_QUERY */
	pb_uint(&m, 2, 1); /* INET */
	pb_uint(&m, 3, 2); /* TCP */
	pb_bytes(&m, 4, addr, sizeof(addr));
	pb_uint(&m, 6, 5300);
	pb_uint(&m, 8, 1700000000);
	pb_fixed32(&m, 9, 250000000);
	if (unknown_fields) {
		pb_bytes(&m, 15, "policy", 6); /* a later schema's field */
		pb_key(&m, 99, 1);             /* an unknown fixed64 */
		for (int i = 0; i < 8; i++)
			m.b[m.n++] = 0xee;
	}
	pb_bytes(&m, 10, dns, sizeof(dns));
	pb_bytes(&d, 1, "id", 2);
	pb_bytes(&d, 14, m.b, m.n);
	pb_uint(&d, 15, 1); /* MESSAGE */
	memcpy(out, d.b, d.n);
	return d.n;
}

static void test_dnstap_frames(void **state)
{
	(void)state;
	static struct dk_dnstap_state st;
	struct dk_logrec r;
	uint8_t f[1024], name[DK_NAME_MAX];
	size_t len, nlen;

	for (int unknown = 0; unknown < 2; unknown++) {
		dk_dnstap_state_init(&st);
		len = tap_frame(f, unknown);
		assert_int_equal(dk_log_parse_dnstap(&st, f, len, &r), 0);
		assert_int_equal(dk_name_from_text("www.example.test", 16, 0, name, &nlen), 0);
		assert_int_equal(r.qname_len, nlen);
		assert_memory_equal(r.qname, name, nlen);
		assert_int_equal(r.qtype, 28);
		assert_int_equal(r.family, AF_INET);
		assert_int_equal(r.addr[3], 7);
		assert_int_equal(r.port, 5300);
		assert_int_equal(r.transport, DK_TRANSPORT_TCP);
		assert_int_equal(r.time_ms, 1700000000250ULL);
		assert_false(r.answer_only);
	}
	/* Every cut of the frame is refused or read, never read past its end. */
	len = tap_frame(f, true);
	for (size_t n = 0; n < len; n++) {
		uint8_t *cut = malloc(n ? n : 1);
		memcpy(cut, f, n);
		dk_dnstap_state_init(&st);
		int rc = dk_log_parse_dnstap(&st, cut, n, &r);
		assert_true(rc == DK_LOGERR_DNSTAP || rc == DK_LOGERR_DNSMSG || rc == 0);
		free(cut);
	}
	/* The wrong wire type for a known field, a group, a varint of 11 octets. */
	struct pb bad = {.n = 0};
	pb_key(&bad, 15, 2);
	pb_varint_put(&bad, 0);
	assert_int_equal(dk_log_parse_dnstap(&st, bad.b, bad.n, &r), DK_LOGERR_DNSTAP);
	bad.n = 0;
	pb_key(&bad, 15, 3);
	assert_int_equal(dk_log_parse_dnstap(&st, bad.b, bad.n, &r), DK_LOGERR_DNSTAP);
	bad.n = 0;
	pb_key(&bad, 15, 0);
	for (int i = 0; i < 10; i++)
		bad.b[bad.n++] = 0xff;
	bad.b[bad.n++] = 0x01;
	assert_int_equal(dk_log_parse_dnstap(&st, bad.b, bad.n, &r), DK_LOGERR_DNSTAP);
	/* No message, or a message without its required type. */
	bad.n = 0;
	pb_uint(&bad, 15, 1);
	assert_int_equal(dk_log_parse_dnstap(&st, bad.b, bad.n, &r), DK_LOGERR_DNSTAP);
	bad.n = 0;
	pb_bytes(&bad, 14, "\x20\x05", 2); /* field 4 as a varint: the wrong wire type */
	pb_uint(&bad, 15, 1);
	assert_int_equal(dk_log_parse_dnstap(&st, bad.b, bad.n, &r), DK_LOGERR_DNSTAP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_json_paths),    cmocka_unit_test(test_json_bad),
	        cmocka_unit_test(test_json_unescape), cmocka_unit_test(test_times),
	        cmocka_unit_test(test_bind_lines),    cmocka_unit_test(test_zeek_header),
	        cmocka_unit_test(test_json_shapes),   cmocka_unit_test(test_judge),
	        cmocka_unit_test(test_dnstap_frames),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
