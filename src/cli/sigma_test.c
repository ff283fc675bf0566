/* SPDX-License-Identifier: MIT */
/*
 * `dnsink test` for Sigma rules: a Sigma rule "name.yml" may have its test
 * cases in a sidecar file "name.tests.yml" beside it (the loader skips that
 * name), in the "tests:" format of dnsink rules. A case's log record names
 * fields as the rule does (query / QueryName, record_type / QueryType,
 * src_ip, answers, rcode); a case with answers or an rcode is judged on an
 * answer message built from them (addresses become A/AAAA records, names
 * CNAME, anything else TXT). Each case judges its rule alone: the rule must
 * (or must not) be among those that match.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#include <ldns/rr.h>

#include "dnsink/config.h"
#include "dnsink/name.h"
#include "dnsink/policy.h"
#include "dnsink/sigma.h"

#include "cli.h"

/* What one test case asks. */
struct tcase {
	char name[200];
	bool expect;
	unsigned line;
	char query[DK_NAME_MAX * 4 + 1];
	int qtype;
	struct dk_addr client;
	bool answered;
	int rcode;
	const char *answers[16];
	size_t n_answers;
};

static const char *scalar(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int type_of(const char *s)
{
	char *end;
	unsigned long n = strtoul(s, &end, 10);

	if (*s && !*end)
		return n <= 65535 ? (int)n : -1;
	ldns_rr_type t = ldns_get_rr_type_by_name(s);
	return t ? (int)t : -1;
}

static int rcode_of(const char *s)
{
	static const char *const names[] = {"NOERROR",  "FORMERR", "SERVFAIL",
	                                    "NXDOMAIN", "NOTIMP",  "REFUSED"};
	char *end;
	unsigned long n = strtoul(s, &end, 10);

	if (*s && !*end)
		return n >= 9001 && n <= 9010 ? (int)(n - 9000) : (int)(n & 15);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcasecmp(names[i], s))
			return (int)i;
	}
	return -1;
}

/* Reads one log field into @p t; false when its value is unusable. */
static bool log_field(yaml_document_t *doc, const char *key, yaml_node_t *v, struct tcase *t)
{
	int f = dk_sigma_field_of(key);
	const char *s = scalar(v);

	switch (f) {
	case DK_SIGMA_F_QUERY:
		if (!s)
			return false;
		snprintf(t->query, sizeof(t->query), "%s", s);
		return true;
	case DK_SIGMA_F_QTYPE: return s && (t->qtype = type_of(s)) >= 0;
	case DK_SIGMA_F_CLIENT: return s && dk_addr_parse(s, 0, &t->client) == 0;
	case DK_SIGMA_F_RCODE: t->answered = true; return s && (t->rcode = rcode_of(s)) >= 0;
	case DK_SIGMA_F_ANSWER:
		t->answered = true;
		if (s) {
			t->answers[t->n_answers++] = s;
			return true;
		}
		if (v->type != YAML_SEQUENCE_NODE)
			return false;
		for (yaml_node_item_t *it = v->data.sequence.items.start;
		     it < v->data.sequence.items.top && t->n_answers < 16; it++) {
			const char *a = scalar(yaml_document_get_node(doc, *it));
			if (!a)
				return false;
			t->answers[t->n_answers++] = a;
		}
		return true;
	default:
		/* Fields a resolver never sees cannot change a verdict here. */
		return true;
	}
}

static size_t put16(uint8_t *p, size_t o, unsigned v)
{
	p[o] = (uint8_t)(v >> 8);
	p[o + 1] = (uint8_t)v;
	return o + 2;
}

/* An answer message for @p t: question, then one record per answer value. */
static size_t build_answer(const struct tcase *t, const uint8_t *wire, size_t wlen, uint8_t *m,
                           size_t size)
{
	size_t o = 12;

	memset(m, 0, 12);
	m[2] = 0x81;
	m[3] = (uint8_t)(0x80 | (t->rcode & 15));
	put16(m, 4, 1);
	memcpy(m + o, wire, wlen);
	o = put16(m, o + wlen, (unsigned)t->qtype);
	o = put16(m, o, 1);
	unsigned an = 0;
	for (size_t i = 0; i < t->n_answers; i++) {
		const char *a = t->answers[i];
		uint8_t rd[512], tw[DK_NAME_MAX];
		size_t rl, tl;
		unsigned type;
		if (inet_pton(AF_INET, a, rd) == 1) {
			type = LDNS_RR_TYPE_A;
			rl = 4;
		} else if (inet_pton(AF_INET6, a, rd) == 1) {
			type = LDNS_RR_TYPE_AAAA;
			rl = 16;
		} else if (!strchr(a, ' ') &&
		           dk_name_from_text(a, strlen(a), DK_NAME_HOSTNAME, tw, &tl) == 0) {
			type = LDNS_RR_TYPE_CNAME;
			memcpy(rd, tw, tl);
			rl = tl;
		} else {
			size_t n = strlen(a) > 255 ? 255 : strlen(a);
			type = LDNS_RR_TYPE_TXT;
			rd[0] = (uint8_t)n;
			memcpy(rd + 1, a, n);
			rl = n + 1;
		}
		if (o + 12 + rl > size)
			break;
		o = put16(m, o, 0xc00c);
		o = put16(m, o, type);
		o = put16(m, o, 1);
		o = put16(m, o, 0);
		o = put16(m, o, 60);
		o = put16(m, o, (unsigned)rl);
		memcpy(m + o, rd, rl);
		o += rl;
		an++;
	}
	put16(m, 6, an);
	return o;
}

/* Runs case @p t against policy rule @p ri; true when it matched. */
static bool run_case(const struct dk_policy *p, struct dk_sigma_scratch *sc, unsigned ri,
                     const struct tcase *t)
{
	uint8_t wire[DK_NAME_MAX], msg[4096];
	size_t wlen;
	struct dk_sigma_hits h;

	if (dk_name_from_text(t->query, strlen(t->query), 0, wire, &wlen))
		return false;
	struct dk_sigma_query q = {.qname = wire,
	                           .qname_len = wlen,
	                           .qtype = (uint16_t)t->qtype,
	                           .client = &t->client.sa};
	if (t->answered || dk_sigma_has_answer_rules(p->sigma)) {
		size_t n = build_answer(t, wire, wlen, msg, sizeof(msg));
		dk_sigma_match_answer(p->sigma, sc, &q, msg, n, &h);
		for (unsigned i = 0; i < h.n_eng; i++) {
			if (h.all[i] == ri)
				return true;
		}
	}
	dk_sigma_match_query(p->sigma, sc, &q, &h);
	for (unsigned i = 0; i < h.n_eng; i++) {
		if (h.all[i] == ri)
			return true;
	}
	return false;
}

/* Reads one case; returns false (and prints why) when it is malformed. */
static bool read_case(yaml_document_t *doc, yaml_node_t *c, struct tcase *t, const char *path)
{
	memset(t, 0, sizeof(*t));
	t->qtype = LDNS_RR_TYPE_A;
	dk_addr_parse("127.0.0.1", 0, &t->client);
	t->line = (unsigned)c->start_mark.line + 1;
	if (c->type != YAML_MAPPING_NODE)
		goto bad;
	bool have_expect = false;
	for (yaml_node_pair_t *pr = c->data.mapping.pairs.start; pr < c->data.mapping.pairs.top;
	     pr++) {
		const char *k = scalar(yaml_document_get_node(doc, pr->key));
		yaml_node_t *v = yaml_document_get_node(doc, pr->value);
		if (!k)
			goto bad;
		if (!strcmp(k, "name") && scalar(v)) {
			snprintf(t->name, sizeof(t->name), "%s", scalar(v));
		} else if (!strcmp(k, "expect") && scalar(v)) {
			t->expect = !strcmp(scalar(v), "true");
			have_expect = true;
		} else if (!strcmp(k, "log") && v->type == YAML_MAPPING_NODE) {
			for (yaml_node_pair_t *q = v->data.mapping.pairs.start;
			     q < v->data.mapping.pairs.top; q++) {
				const char *f = scalar(yaml_document_get_node(doc, q->key));
				if (!f ||
				    !log_field(doc, f, yaml_document_get_node(doc, q->value), t)) {
					printf("FAIL %s:%u: bad log field '%s'\n", path, t->line,
					       f ? f : "?");
					return false;
				}
			}
		} else {
			goto bad;
		}
	}
	if (have_expect && t->query[0])
		return true;
bad:
	printf("FAIL %s:%u: a test needs name, expect and log with a query\n", path, t->line);
	return false;
}

/* The sidecar of @p rule_file: "x.yml" -> "x.tests.yml". Returns false when none. */
static bool sidecar(const char *rule_file, char *out, size_t size)
{
	size_t n = strlen(rule_file);
	struct stat st;

	if (n < 4 || strcmp(rule_file + n - 4, ".yml"))
		return false;
	snprintf(out, size, "%.*s.tests.yml", (int)(n - 4), rule_file);
	return stat(out, &st) == 0 && S_ISREG(st.st_mode);
}

int dk__cli_sigma_tests(const struct dk_policy *p, size_t *passed, size_t *failed)
{
	const struct dk_sigma_report *rep = &p->sigma_report;
	struct dk_sigma_scratch *sc = NULL;

	if (!p->sigma)
		return 0;
	if (dk_sigma_scratch_new(p->sigma, &sc) < 0)
		return -1;
	for (size_t i = 0; i < rep->n; i++) {
		const struct dk_sigma_entry *e = &rep->entries[i];
		char path[4096];
		if (e->status != DK_SIGMA_LOADED || !sidecar(e->file, path, sizeof(path)))
			continue;
		/* A multi-document file holds several rules: its sidecar tests the first. */
		if (i > 0 && rep->entries[i - 1].status == DK_SIGMA_LOADED &&
		    !strcmp(rep->entries[i - 1].file, e->file))
			continue;
		FILE *f = fopen(path, "rb");
		yaml_parser_t ps;
		yaml_document_t doc;
		if (!f || !yaml_parser_initialize(&ps)) {
			if (f)
				fclose(f);
			printf("FAIL %s: cannot read\n", path);
			(*failed)++;
			continue;
		}
		yaml_parser_set_input_file(&ps, f);
		if (!yaml_parser_load(&ps, &doc)) {
			printf("FAIL %s:%zu: YAML: %s\n", path, ps.problem_mark.line + 1,
			       ps.problem ? ps.problem : "syntax error");
			(*failed)++;
		} else {
			yaml_node_t *root = yaml_document_get_root_node(&doc);
			yaml_node_t *tests = NULL;
			for (yaml_node_pair_t *pr = root && root->type == YAML_MAPPING_NODE
			                                    ? root->data.mapping.pairs.start
			                                    : NULL;
			     pr && pr < root->data.mapping.pairs.top; pr++) {
				const char *k = scalar(yaml_document_get_node(&doc, pr->key));
				if (k && !strcmp(k, "tests"))
					tests = yaml_document_get_node(&doc, pr->value);
			}
			if (!tests || tests->type != YAML_SEQUENCE_NODE) {
				printf("FAIL %s: no 'tests:' list\n", path);
				(*failed)++;
			}
			for (yaml_node_item_t *it = tests && tests->type == YAML_SEQUENCE_NODE
			                                    ? tests->data.sequence.items.start
			                                    : NULL;
			     it && it < tests->data.sequence.items.top; it++) {
				struct tcase t;
				if (!read_case(&doc, yaml_document_get_node(&doc, *it), &t, path)) {
					(*failed)++;
					continue;
				}
				bool got = run_case(p, sc, e->rule_index, &t);
				if (got == t.expect) {
					(*passed)++;
					continue;
				}
				(*failed)++;
				printf("FAIL %s: %s: query %s expected %s, got %s (%s:%u)\n", e->id,
				       t.name, t.query, t.expect ? "match" : "no match",
				       got ? "match" : "no match", path, t.line);
			}
			yaml_document_delete(&doc);
		}
		yaml_parser_delete(&ps);
		fclose(f);
	}
	dk_sigma_scratch_free(sc);
	return 0;
}
