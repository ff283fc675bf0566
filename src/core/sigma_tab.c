/* SPDX-License-Identifier: MIT */
/*
 * The bottom of the Sigma modules: the flat tables' memory, the field table
 * (which Sigma field names mean what to a resolver), DNS type and rcode
 * names, the reference glob matcher that decides Sigma string semantics,
 * and the registered domain of a name. The loader, the condition parser,
 * the engine and the counters all build on it; it uses none of them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <ldns/rr.h>
#include <pcre2.h>

#include "sigma_int.h"

int dk__sg_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap * 2 : 16;
	while (n < need)
		n *= 2;
	void *q = realloc(*arr, n * elem);
	if (!q)
		return -ENOMEM;
	*arr = q;
	*cap = n;
	return 0;
}

/* ---- the field table --------------------------------------------------------- */

/*
 * Field names of the DNS logsources SigmaHQ's rules are written for:
 * Sysmon / Windows DNS client (QueryName, QueryType, QueryResults,
 * QueryStatus), Zeek dns.log (query, qtype_name, answers, rcode_name,
 * id.orig_h), ECS (dns.question.name...), OCSF (query.hostname...), AWS
 * Route 53 resolver logs (query_name, query_type, srcaddr), and generic
 * names. Compared case-insensitively: backends disagree on the case.
 */
static const struct {
	const char *name;
	enum dk_sigma_field field;
} fields[] = {
        {"query", DK_SIGMA_F_QUERY},
        {"QueryName", DK_SIGMA_F_QUERY},
        {"query_name", DK_SIGMA_F_QUERY},
        {"dns.question.name", DK_SIGMA_F_QUERY},
        {"dns_query", DK_SIGMA_F_QUERY},
        {"dns.query", DK_SIGMA_F_QUERY},
        {"query.hostname", DK_SIGMA_F_QUERY},
        {"qname", DK_SIGMA_F_QUERY},
        {"question.name", DK_SIGMA_F_QUERY},
        {"record_type", DK_SIGMA_F_QTYPE},
        {"QueryType", DK_SIGMA_F_QTYPE},
        {"qtype", DK_SIGMA_F_QTYPE},
        {"qtype_name", DK_SIGMA_F_QTYPE},
        {"query_type", DK_SIGMA_F_QTYPE},
        {"query.type", DK_SIGMA_F_QTYPE},
        {"dns.question.type", DK_SIGMA_F_QTYPE},
        {"answer", DK_SIGMA_F_ANSWER},
        {"answers", DK_SIGMA_F_ANSWER},
        {"QueryResults", DK_SIGMA_F_ANSWER},
        {"dns.answers.data", DK_SIGMA_F_ANSWER},
        {"dns.resolved_ip", DK_SIGMA_F_ANSWER},
        {"answers.rdata", DK_SIGMA_F_ANSWER},
        {"resolved_ip", DK_SIGMA_F_ANSWER},
        {"answer_type", DK_SIGMA_F_ATYPE},
        {"dns.answers.type", DK_SIGMA_F_ATYPE},
        {"answers.type", DK_SIGMA_F_ATYPE},
        {"rcode", DK_SIGMA_F_RCODE},
        {"rcode_name", DK_SIGMA_F_RCODE},
        {"QueryStatus", DK_SIGMA_F_RCODE},
        {"dns.response_code", DK_SIGMA_F_RCODE},
        {"response_code", DK_SIGMA_F_RCODE},
        {"src_ip", DK_SIGMA_F_CLIENT},
        {"ClientIP", DK_SIGMA_F_CLIENT},
        {"client_ip", DK_SIGMA_F_CLIENT},
        {"id.orig_h", DK_SIGMA_F_CLIENT},
        {"source.ip", DK_SIGMA_F_CLIENT},
        {"client.ip", DK_SIGMA_F_CLIENT},
        {"src_endpoint.ip", DK_SIGMA_F_CLIENT},
        {"srcaddr", DK_SIGMA_F_CLIENT},
        {"c-ip", DK_SIGMA_F_CLIENT},
        {"SourceIp", DK_SIGMA_F_CLIENT},
        {"query_length", DK_SIGMA_F_QLEN},
        {"registered_domain", DK_SIGMA_F_REGDOM},
        {"parent_domain", DK_SIGMA_F_REGDOM},
        {"dns.question.registered_domain", DK_SIGMA_F_REGDOM},
};

/* Fields of the endpoint and of HTTP that a resolver never sees; named in the reason. */
static const char *const process_fields[] = {
        "Image",       "User",           "ProcessId",         "ProcessGuid",
        "CommandLine", "ParentImage",    "ParentCommandLine", "OriginalFileName",
        "Hashes",      "Computer",       "EventID",           "Provider_Name",
        "Channel",     "TargetFilename", "IntegrityLevel",
};

int dk__sg_field_lookup(const char *name, const char **why)
{
	for (size_t i = 0; i < DK_ARRAY_SIZE(fields); i++) {
		if (strcasecmp(fields[i].name, name) == 0)
			return (int)fields[i].field;
	}
	*why = "a field dnsink does not see";
	for (size_t i = 0; i < DK_ARRAY_SIZE(process_fields); i++) {
		if (strcasecmp(process_fields[i], name) == 0)
			*why = "a host/process field a resolver cannot see";
	}
	if (!strncasecmp(name, "c-uri", 5) || !strncasecmp(name, "cs-", 3) ||
	    !strncasecmp(name, "sc-", 3) || !strncasecmp(name, "http.", 5) ||
	    !strncasecmp(name, "url.", 4))
		*why = "an HTTP field a resolver cannot see";
	return -1;
}

int dk_sigma_field_of(const char *name)
{
	const char *why;

	return dk__sg_field_lookup(name, &why);
}

int dk__sg_qtype_parse(const char *s)
{
	char *end;

	if (!*s)
		return -1;
	unsigned long n = strtoul(s, &end, 10);
	if (!*end)
		return n <= 65535 ? (int)n : -1;
	ldns_rr_type t = ldns_get_rr_type_by_name(s);
	if (t == 0 && strcasecmp(s, "TYPE0") != 0)
		return -1;
	return (int)t;
}

int dk__sg_rcode_parse(const char *s)
{
	static const char *const names[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
	                                    "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
	                                    "NXRRSET", "NOTAUTH", "NOTZONE"};
	char *end;

	if (!*s)
		return -1;
	unsigned long n = strtoul(s, &end, 10);
	if (!*end) {
		/* Windows reports DNS_ERROR_RCODE_BASE (9000) + rcode; 0 is success. */
		if (n >= 9001 && n <= 9010)
			return (int)(n - 9000);
		return n <= 4095 ? (int)n : -1;
	}
	for (size_t i = 0; i < DK_ARRAY_SIZE(names); i++) {
		if (strcasecmp(names[i], s) == 0)
			return (int)i;
	}
	if (strcasecmp(s, "NOTIMPL") == 0)
		return 4;
	return -1;
}

/* ---- the reference glob matcher ------------------------------------------------- */

bool dk__sg_glob_match(const char *pat, size_t plen, const char *s, size_t n)
{
	size_t p = 0, i = 0, star_p = (size_t)-1, star_i = 0;

	/* Greedy with one backtrack point: linear enough for names of 253 octets. */
	while (i < n) {
		if (p < plen && (pat[p] == SG_QMARK || pat[p] == s[i])) {
			p++;
			i++;
		} else if (p < plen && pat[p] == SG_STAR) {
			star_p = p++;
			star_i = i;
		} else if (star_p != (size_t)-1) {
			p = star_p + 1;
			i = ++star_i;
		} else {
			return false;
		}
	}
	while (p < plen && pat[p] == SG_STAR)
		p++;
	return p == plen;
}

void dk__sg_tables_free(struct dk__sg_tables *t)
{
	for (size_t i = 0; i < t->n_atoms; i++) {
		free(t->atoms[i].pat);
		pcre2_code_free(t->atoms[i].pcre);
	}
	free(t->atoms);
	free(t->fcs);
	free(t->alts);
	for (size_t i = 0; i < t->n_sels; i++)
		free(t->sels[i].name);
	free(t->sels);
	free(t->ops);
	for (size_t i = 0; i < t->n_rules; i++) {
		free(t->rules[i].id);
		free(t->rules[i].name);
	}
	free(t->rules);
	for (size_t i = 0; i < t->n_corrs; i++) {
		for (size_t j = 0; j < SG_CORR_RULES_MAX; j++)
			free(t->corrs[i].ref[j]);
		free(t->corrs[i].file);
	}
	free(t->corrs);
	memset(t, 0, sizeof(*t));
}

size_t dk__sg_regdom(const psl_ctx_t *psl, const char *text, size_t n)
{
	const char *rd = psl ? psl_registrable_domain(psl, text) : NULL;

	if (rd && rd >= text && rd <= text + n)
		return (size_t)(rd - text);
	/* No list, or the name is a public suffix itself: the last two labels. */
	size_t dots = 0, i = n;
	while (i > 0) {
		if (text[i - 1] == '.' && ++dots == 2)
			return i;
		i--;
	}
	return 0;
}
