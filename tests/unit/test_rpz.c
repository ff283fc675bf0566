/* SPDX-License-Identifier: MIT */
/*
 * Tests of RPZ zones: the reader (src/core/rpz.c) on a zone with every
 * trigger and action, bad records counted with their line, the policy a
 * "rpz:" rule becomes (QNAME exact and wildcard, client IP, answer IP, local
 * data written as an answer, an action override), the address sets
 * (src/core/ipset.c) and the precedence between a zone and other rules.
 */
#include <arpa/inet.h>
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

#include "dnsink/ipset.h"
#include "dnsink/msg.h"
#include "dnsink/name.h"
#include "dnsink/policy.h"
#include "dnsink/rpz.h"

#define DATA "tests/data/rules/rpz/"

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static unsigned line_of(const char *path, const char *marker)
{
	size_t len;
	char *buf = read_all(path, &len);
	unsigned line = 1;
	char *hit = strstr(buf, marker);

	assert_non_null(hit);
	for (char *q = buf; q < hit; q++)
		line += *q == '\n';
	free(buf);
	return line;
}

struct collected {
	size_t n;
	size_t local;
	unsigned bad_line;
};

static int collect(void *ctx, const struct dk_rpz_rec *rec)
{
	struct collected *c = ctx;

	c->n++;
	c->local += rec->action == DK_RPZ_LOCAL;
	return 0;
}

static void origin(const char *text, uint8_t *w, size_t *len)
{
	assert_int_equal(dk_name_from_text(text, strlen(text), 0, w, len), 0);
}

static void test_reader(void **state)
{
	size_t len, olen;
	char *zone = read_all(DATA "feed.rpz", &len);
	uint8_t o[DK_NAME_MAX];
	struct dk_rpz_stats st;
	struct collected c = {0};

	(void)state;
	origin("feed.rpz.", o, &olen);
	assert_int_equal(dk_rpz_parse(zone, len, o, olen, collect, &c, &st), 0);
	assert_true(st.has_soa);
	assert_int_equal(st.serial, 2026120101u);
	assert_int_equal(st.refresh, 3600);
	assert_int_equal(st.retry, 600);
	assert_int_equal(st.expire, 86400);
	assert_int_equal(st.minimum, 60);
	assert_int_equal(st.triggers[DK_RPZ_QNAME], 14);
	assert_int_equal(st.triggers[DK_RPZ_CLIENT_IP], 3);
	assert_int_equal(st.triggers[DK_RPZ_IP], 3);
	assert_int_equal(st.triggers[DK_RPZ_NSDNAME], 1);
	assert_int_equal(st.triggers[DK_RPZ_NSIP], 1);
	assert_int_equal(st.actions[DK_RPZ_NXDOMAIN], 7);
	assert_int_equal(st.actions[DK_RPZ_NODATA], 2);
	assert_int_equal(st.actions[DK_RPZ_PASSTHRU], 3);
	assert_int_equal(st.actions[DK_RPZ_DROP], 2);
	assert_int_equal(st.actions[DK_RPZ_TCP_ONLY], 1);
	assert_int_equal(st.actions[DK_RPZ_LOCAL], 5);
	assert_int_equal(c.n, 20);
	assert_int_equal(c.local, 5);
	assert_int_equal(st.invalid, 4);
	assert_int_equal(st.first_invalid_line, line_of(DATA "feed.rpz", "bad..example"));
	assert_int_equal(st.unsupported, 2);
	free(zone);
}

/* Small zones that must read the same whatever their layout. */
static void test_reader_forms(void **state)
{
	static const struct {
		const char *text;
		size_t records, invalid, callbacks;
	} cases[] = {
	        /* relative, absolute, @, a TTL with units, class before TTL */
	        {"a CNAME .\nb.z. 1h IN CNAME .\n@ SOA ns x 1 2 3 4 5\nc IN 60 A 192.0.2.1\n", 4, 0,
	         3},
	        /* $ORIGIN below the zone, names relative to it */
	        {"$ORIGIN sub.z.\nx CNAME .\n", 1, 0, 1},
	        /* an owner outside the zone, a $INCLUDE, unbalanced parentheses */
	        {"x.other. CNAME .\n$INCLUDE /etc/passwd\ny CNAME ( .\n", 1, 3, 0},
	        /* an unterminated quote; a blank-led line with no owner before it */
	        {"t TXT \"open\n  A 192.0.2.1\n", 1, 2, 0},
	        /* "*" alone at the apex would match every name */
	        {"* CNAME .\n", 1, 1, 0},
	        /* CRLF, a BOM, a comment after the record */
	        {"\xEF\xBB\xBFq CNAME . ; why\r\n", 1, 0, 1},
	        /* TXT escapes */
	        {"t TXT \"a\\\"b\" \\065\n", 1, 0, 1},
	        {"", 0, 0, 0},
	};
	uint8_t o[DK_NAME_MAX];
	size_t olen;

	(void)state;
	origin("z.", o, &olen);
	for (size_t i = 0; i < DK_ARRAY_SIZE(cases); i++) {
		struct dk_rpz_stats st;
		struct collected c = {0};
		assert_int_equal(dk_rpz_parse(cases[i].text, strlen(cases[i].text), o, olen,
		                              collect, &c, &st),
		                 0);
		if (st.records != cases[i].records || st.invalid != cases[i].invalid ||
		    c.n != cases[i].callbacks)
			fail_msg("case %zu: records %zu invalid %zu callbacks %zu", i, st.records,
			         st.invalid, c.n);
	}
}

static struct dk_policy *load(const char *path, unsigned flags)
{
	const char *paths[] = {path};
	struct dk_policy *p = NULL;
	struct dk_diag d;

	if (dk_policy_load(paths, 1, flags, &p, &d))
		fail_msg("%s:%u: %s", d.file, d.line, d.msg);
	return p;
}

/* The action of the rule that matches @p name, or -1. */
static int name_action(const struct dk_policy *p, const char *name, bool *wildcard)
{
	uint8_t w[DK_NAME_MAX];
	size_t len;
	struct dk_verdict v;

	assert_int_equal(dk_name_from_text(name, strlen(name), 0, w, &len), 0);
	if (!dk_policy_match(p, w, len, &v))
		return -1;
	if (wildcard)
		*wildcard = v.wildcard;
	return (int)v.rule->action;
}

static int addr_action(const struct dk_policy *p, const char *ip, bool client, uint32_t *local)
{
	struct sockaddr_storage ss = {0};
	uint8_t a[16];
	int family = strchr(ip, ':') ? AF_INET6 : AF_INET;
	struct dk_verdict v;
	bool hit;

	assert_int_equal(inet_pton(family, ip, a), 1);
	if (client) {
		if (family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			s4->sin_family = AF_INET;
			memcpy(&s4->sin_addr, a, 4);
		} else {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			s6->sin6_family = AF_INET6;
			memcpy(&s6->sin6_addr, a, 16);
		}
		hit = dk_policy_match_client(p, (struct sockaddr *)&ss, &v);
	} else {
		hit = dk_policy_match_ip(p, family, a, &v);
	}
	if (local)
		*local = v.local;
	return hit ? (int)v.rule->action : -1;
}

static void test_policy(void **state)
{
	struct dk_policy *p = load(DATA "feed.yml", DK_POLICY_PER_RULE_SETS);
	bool wild = false;

	(void)state;
	assert_int_equal(p->n_zones, 1);
	/* The rule as written and one variant per other action. */
	assert_int_equal(p->n_rules, DK_RPZ_ACTION_MAX);
	assert_false(p->rules[0].variant);
	for (size_t i = 1; i < p->n_rules; i++) {
		assert_true(p->rules[i].variant);
		assert_int_equal(p->rules[i].base, 0);
		assert_ptr_equal(p->rules[i].id, p->rules[0].id);
	}
	const struct dk_zone *z = &p->zones[0];
	assert_string_equal(z->origin, "feed.rpz.");
	assert_ptr_equal(z->rule, &p->rules[0]);
	assert_int_equal(z->st.serial, 2026120101u);
	/* 12 QNAME names (local.example once) + 6 address triggers. */
	assert_int_equal(z->entries, 14 - 2 + 6);
	assert_int_equal(p->rules[0].n_entries, z->entries);

	static const struct {
		const char *name;
		int action; /* -1: no match */
		bool wildcard;
	} cases[] = {
	        {"nx.example", DK_ACTION_NXDOMAIN, false},
	        {"a.nx.example", DK_ACTION_NXDOMAIN, true},
	        {"pass.nx.example", DK_ACTION_ALLOW, false},
	        {"a.pass.nx.example", DK_ACTION_NXDOMAIN, true}, /* exact is that name alone */
	        {"nodata.example", DK_ACTION_NODATA, false},
	        {"x.nodata.example", -1, false},
	        {"drop.example", DK_ACTION_DROP, false},
	        {"tcp.example", DK_ACTION_TCP_ONLY, false},
	        {"wild.example", -1, false},
	        {"a.b.wild.example", DK_ACTION_NXDOMAIN, true},
	        {"self.example", DK_ACTION_ALLOW, false},
	        {"garden.example", DK_ACTION_LOCAL, false},
	        {"local.example", DK_ACTION_LOCAL, false},
	        {"upper.example", DK_ACTION_NXDOMAIN, false},
	        {"xn--bcher-kva.example", DK_ACTION_NXDOMAIN, false},
	        {"mx.example", -1, false},
	        {"example", -1, false},
	        {"bad.example", -1, false},
	        {"ns.bad.example", -1, false}, /* NSDNAME: not a QNAME trigger */
	};
	for (size_t i = 0; i < DK_ARRAY_SIZE(cases); i++) {
		int a = name_action(p, cases[i].name, &wild);
		if (a != cases[i].action || (a >= 0 && wild != cases[i].wildcard))
			fail_msg("%s: action %d wildcard %d, want %d %d", cases[i].name, a, wild,
			         cases[i].action, cases[i].wildcard);
	}
	uint32_t local = 0;
	assert_int_equal(addr_action(p, "10.0.0.5", true, NULL), DK_ACTION_DROP);
	assert_int_equal(addr_action(p, "10.0.0.6", true, NULL), -1);
	assert_int_equal(addr_action(p, "198.0.2.77", true, NULL), DK_ACTION_NXDOMAIN);
	assert_int_equal(addr_action(p, "2001:db8::1", true, NULL), DK_ACTION_ALLOW);
	assert_int_equal(addr_action(p, "2001:db8::2", true, NULL), -1);
	/* Client triggers are not answer triggers, and the other way round. */
	assert_int_equal(addr_action(p, "10.0.0.5", false, NULL), -1);
	assert_int_equal(addr_action(p, "192.0.2.66", true, NULL), -1);
	assert_int_equal(addr_action(p, "192.0.2.66", false, NULL), DK_ACTION_NXDOMAIN);
	assert_int_equal(addr_action(p, "192.0.2.67", false, NULL), -1);
	assert_int_equal(addr_action(p, "203.0.113.5", false, &local), DK_ACTION_LOCAL);
	assert_true(local > 0);
	assert_int_equal(addr_action(p, "2001:db8:1::5", false, NULL), DK_ACTION_NODATA);
	assert_int_equal(addr_action(p, "2001:db8:2::5", false, NULL), -1);

	/* The rule's own set (for dnsink test) holds the zone's names too. */
	uint8_t w[DK_NAME_MAX];
	size_t len;
	struct dk_verdict v;
	assert_int_equal(dk_name_from_text("nx.example", 10, 0, w, &len), 0);
	assert_true(dk_rule_match(&p->rules[0], w, len, &v));
	dk_policy_unref(p);
}

/* Builds a query for @p name/@p type, parses it, and writes the local answer of its verdict. */
static ldns_pkt *local_reply(const struct dk_policy *p, const char *name, ldns_rr_type type)
{
	ldns_rdf *dname = ldns_dname_new_frm_str(name);
	ldns_pkt *qp = ldns_pkt_query_new(dname, type, LDNS_RR_CLASS_IN, LDNS_RD);
	uint8_t *wire;
	size_t wlen;
	struct dk_query q;
	uint8_t out[1232];
	struct dk_verdict v;
	ldns_pkt *ans = NULL;

	assert_int_equal(ldns_pkt2wire(&wire, qp, &wlen), LDNS_STATUS_OK);
	ldns_pkt_free(qp);
	assert_int_equal(dk_msg_parse_query(wire, wlen, &q), 0);
	assert_true(dk_policy_match(p, q.qname, q.qname_len, &v));
	assert_int_equal(v.rule->action, DK_ACTION_LOCAL);
	const struct dk_local_data *ld = dk_policy_local(p, &v, q.qname, q.qname_len);
	assert_non_null(ld);
	int n = dk_msg_write_records(wire, &q, p->local_blob + ld->rr_off, ld->rr_len,
	                             DK_EDE_FORGED, out, sizeof(out));
	assert_true(n > 0);
	assert_int_equal(ldns_wire2pkt(&ans, out, (size_t)n), LDNS_STATUS_OK);
	/* Too small a buffer is refused whole. */
	assert_int_equal(
	        dk_msg_write_records(wire, &q, p->local_blob + ld->rr_off, ld->rr_len, 0, out, 20),
	        DK_ESPACE);
	free(wire);
	return ans;
}

static void test_local_answers(void **state)
{
	struct dk_policy *p = load(DATA "feed.yml", 0);
	char *s;

	(void)state;
	ldns_pkt *a = local_reply(p, "local.example.", LDNS_RR_TYPE_A);
	assert_int_equal(ldns_pkt_get_rcode(a), LDNS_RCODE_NOERROR);
	assert_int_equal(ldns_pkt_ancount(a), 1);
	ldns_rr *rr = ldns_rr_list_rr(ldns_pkt_answer(a), 0);
	assert_int_equal(ldns_rr_get_type(rr), LDNS_RR_TYPE_A);
	assert_int_equal(ldns_rr_ttl(rr), 300);
	s = ldns_rdf2str(ldns_rr_rdf(rr, 0));
	assert_string_equal(s, "192.0.2.80");
	free(s);
	s = ldns_rdf2str(ldns_rr_owner(rr));
	assert_string_equal(s, "local.example.");
	free(s);
	ldns_pkt_free(a);

	a = local_reply(p, "LOCAL.example.", LDNS_RR_TYPE_TXT);
	assert_int_equal(ldns_pkt_ancount(a), 1);
	s = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(a), 0), 1));
	assert_string_equal(s, "\"see intranet\"");
	free(s);
	ldns_pkt_free(a);

	a = local_reply(p, "local.example.", LDNS_RR_TYPE_ANY);
	assert_int_equal(ldns_pkt_ancount(a), 3);
	ldns_pkt_free(a);

	/* No record of the type asked: NODATA. */
	a = local_reply(p, "local.example.", LDNS_RR_TYPE_MX);
	assert_int_equal(ldns_pkt_get_rcode(a), LDNS_RCODE_NOERROR);
	assert_int_equal(ldns_pkt_ancount(a), 0);
	ldns_pkt_free(a);

	/* A CNAME answers every type: the walled garden. */
	a = local_reply(p, "garden.example.", LDNS_RR_TYPE_AAAA);
	assert_int_equal(ldns_pkt_ancount(a), 1);
	rr = ldns_rr_list_rr(ldns_pkt_answer(a), 0);
	assert_int_equal(ldns_rr_get_type(rr), LDNS_RR_TYPE_CNAME);
	s = ldns_rdf2str(ldns_rr_rdf(rr, 0));
	assert_string_equal(s, "walled.garden.example.");
	free(s);
	ldns_pkt_free(a);
	dk_policy_unref(p);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* "action:" overrides the records' actions; precedence with other rules is dnsink's. */
static void test_override_and_precedence(void **state)
{
	char dir[] = "/tmp/dk-test-rpz-XXXXXX";
	char path[128], zone[128];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(zone, sizeof(zone), "%s/z.rpz", dir);
	write_file(zone, "a.example CNAME rpz-passthru.\nb.example A 192.0.2.1\n"
	                 "*.c.example CNAME .\n");
	snprintf(path, sizeof(path), "%s/r.yml", dir);
	write_file(path, "id: Z.Sink\nname: z\nseverity: low\naction: sinkhole\n"
	                 "rpz: { file: z.rpz, zone: z.rpz }\n"
	                 "---\n"
	                 "id: Allow.C\nname: c\nseverity: low\naction: allow\n"
	                 "domains: [x.c.example]\n"
	                 "---\n"
	                 "id: Block.B\nname: b\nseverity: critical\naction: refused\n"
	                 "domains: [b.example]\n");
	struct dk_policy *p = load(path, 0);
	assert_int_equal(p->n_rules, 3);
	assert_int_equal(p->n_local, 0);
	assert_int_equal(name_action(p, "a.example", NULL), DK_ACTION_SINKHOLE);
	/* Equal length: the higher severity wins, the zone's record or not. */
	assert_int_equal(name_action(p, "b.example", NULL), DK_ACTION_REFUSED);
	/* Longer wins: an allow below a zone's wildcard. */
	assert_int_equal(name_action(p, "x.c.example", NULL), DK_ACTION_ALLOW);
	assert_int_equal(name_action(p, "y.c.example", NULL), DK_ACTION_SINKHOLE);
	/* Below an exact trigger, the plain domain entry still covers. */
	assert_int_equal(name_action(p, "q.b.example", NULL), DK_ACTION_REFUSED);
	dk_policy_unref(p);

	/* Schema errors name their line. */
	write_file(path, "id: Z\nname: z\nseverity: low\nrpz:\n  file: z.rpz\n");
	const char *paths[] = {path};
	struct dk_diag d;
	assert_int_not_equal(dk_policy_load(paths, 1, 0, &p, &d), 0);
	assert_int_equal(d.line, 5); /* where the mapping starts */
	assert_non_null(strstr(d.msg, "'rpz' needs 'zone'"));
	write_file(path, "id: Z\nname: z\nseverity: low\nrpz:\n  zone: z.rpz\n  file: z.rpz\n"
	                 "  tsig: { name: k, algorithm: hmac-sha999, secret: YWJj }\n");
	assert_int_not_equal(dk_policy_load(paths, 1, 0, &p, &d), 0);
	assert_non_null(strstr(d.msg, "hmac-sha999"));
	write_file(path, "id: Z\nname: z\nseverity: low\nrpz: { zone: z.rpz, file: nope.rpz }\n");
	assert_int_not_equal(dk_policy_load(paths, 1, 0, &p, &d), 0);
	assert_non_null(strstr(d.msg, "cannot read zone"));
	/* With a primary, a zone file not there yet is no error: a transfer brings it. */
	write_file(path, "id: Z\nname: z\nseverity: low\n"
	                 "rpz: { zone: z.rpz, file: nope.rpz, primary: 127.0.0.1:5300 }\n");
	p = load(path, 0);
	assert_int_equal(p->zones[0].entries, 0);
	assert_string_equal(p->zones[0].primary, "127.0.0.1:5300");
	dk_policy_unref(p);
	unlink(path);
	unlink(zone);
	rmdir(dir);
}

static void test_ipset(void **state)
{
	struct dk_ipset_entry *e = calloc(4, sizeof(*e));
	uint32_t value;
	uint8_t prefix, a[16];

	(void)state;
	e[0] = (struct dk_ipset_entry){.family = AF_INET, .prefix = 8, .value = 1};
	inet_pton(AF_INET, "10.9.9.9", e[0].addr); /* host bits cleared by the set */
	e[1] = (struct dk_ipset_entry){.family = AF_INET, .prefix = 24, .value = 2};
	inet_pton(AF_INET, "10.1.2.0", e[1].addr);
	e[2] = (struct dk_ipset_entry){.family = AF_INET6, .prefix = 0, .value = 3};
	e[3] = (struct dk_ipset_entry){.family = AF_INET, .prefix = 24, .value = 4};
	inet_pton(AF_INET, "10.1.2.0", e[3].addr); /* same prefix: the first stays */
	struct dk_ipset *s = dk_ipset_new(e, 4, NULL, NULL);
	assert_non_null(s);
	assert_int_equal(dk_ipset_count(s), 3);
	inet_pton(AF_INET, "10.1.2.3", a);
	assert_true(dk_ipset_lookup(s, AF_INET, a, &value, &prefix));
	assert_int_equal(value, 2);
	assert_int_equal(prefix, 24);
	inet_pton(AF_INET, "10.1.3.3", a);
	assert_true(dk_ipset_lookup(s, AF_INET, a, &value, &prefix));
	assert_int_equal(value, 1);
	inet_pton(AF_INET, "11.1.3.3", a);
	assert_false(dk_ipset_lookup(s, AF_INET, a, &value, &prefix));
	inet_pton(AF_INET6, "2001:db8::1", a);
	assert_true(dk_ipset_lookup(s, AF_INET6, a, &value, &prefix));
	assert_int_equal(value, 3);
	assert_false(dk_ipset_lookup(NULL, AF_INET, a, &value, &prefix));
	dk_ipset_free(s);
	dk_ipset_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_reader),
	        cmocka_unit_test(test_reader_forms),
	        cmocka_unit_test(test_policy),
	        cmocka_unit_test(test_local_answers),
	        cmocka_unit_test(test_override_and_precedence),
	        cmocka_unit_test(test_ipset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
