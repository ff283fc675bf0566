/* SPDX-License-Identifier: MIT */
/*
 * Matching against a policy snapshot, and the snapshot's lifetime. A name is
 * looked up once in the snapshot's suffix set; the value found there names the
 * winning rule, because every tie between entries on the same name was already
 * settled when the set was built (dk__policy_merge()). So the per-query path is
 * one suffix walk and an array index: no allocation, no comparison of rules.
 *
 * Values in the suffix set are (rule index << 1) | wildcard, where wildcard
 * marks an entry written "*.name".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include "dnsink/config.h"
#include "dnsink/ipset.h"
#include "dnsink/name.h"
#include "dnsink/policy.h"
#include "dnsink/suffixset.h"

#include "rules.h"

bool dk_rule_precedes(const struct dk_rule *a, const struct dk_rule *b)
{
	bool a_allow = a->action == DK_ACTION_ALLOW;
	bool b_allow = b->action == DK_ACTION_ALLOW;

	if (a_allow != b_allow)
		return a_allow;
	if (a->severity != b->severity)
		return a->severity > b->severity;
	return a->index < b->index;
}

void dk_policy_sigma_actions(struct dk_policy *p, const struct dk_sigma_conf *sc)
{
	static const char *const levels[] = {
	        [DK_SEVERITY_INFO] = "informational", [DK_SEVERITY_LOW] = "low",
	        [DK_SEVERITY_MEDIUM] = "medium",      [DK_SEVERITY_HIGH] = "high",
	        [DK_SEVERITY_CRITICAL] = "critical",
	};

	if (!p || !sc)
		return;
	for (size_t i = 0; i < p->n_rules; i++) {
		struct dk_rule *r = &p->rules[i];
		int by_level = -1, by_id = -1;
		if (!r->sigma)
			continue;
		for (size_t j = 0; j < sc->n_actions; j++) {
			const char *k = sc->actions[j].key;
			if (!strcmp(k, r->id))
				by_id = sc->actions[j].action;
			else if (!strcmp(k, levels[r->severity]) ||
			         (r->severity == DK_SEVERITY_INFO && !strcmp(k, "info")))
				by_level = sc->actions[j].action;
		}
		r->action = (enum dk_action)(by_id >= 0      ? by_id
		                             : by_level >= 0 ? by_level
		                                             : sc->default_action);
	}
}

uint16_t dk__policy_merge(uint16_t old, uint16_t add, void *ctx)
{
	const struct dk_rule *rules = ctx;
	unsigned ro = old >> 1, ra = add >> 1;

	/*
	 * Within one rule, "name" and "*.name" both cover what is below name;
	 * keep the plain entry so the alert names the entry that covers more.
	 */
	if (ro == ra)
		return (old & 1) ? add : old;
	return dk_rule_precedes(&rules[ra], &rules[ro]) ? add : old;
}

static bool verdict_from(const struct dk_rule *rule, const struct dk_suffixset_match *m,
                         struct dk_verdict *v)
{
	v->rule = rule;
	v->matched_off = m->offset;
	v->wildcard = m->value & 1;
	v->action = (uint8_t)rule->action;
	v->local = 0;
	v->group_key = NULL;
	v->group_count = 0;
	return true;
}

static bool no_verdict(struct dk_verdict *v)
{
	v->rule = NULL;
	v->matched_off = 0;
	v->wildcard = false;
	v->action = 0;
	v->local = 0;
	v->group_key = NULL;
	v->group_count = 0;
	return false;
}

static bool ip_verdict(const struct dk_policy *p, const struct dk_ipset *set, int family,
                       const uint8_t *addr, struct dk_verdict *v)
{
	uint32_t value;
	uint8_t prefix;

	if (!p || !dk_ipset_lookup(set, family, addr, &value, &prefix) ||
	    (value & 0xffff) >= p->n_rules)
		return no_verdict(v);
	v->rule = &p->rules[value & 0xffff];
	v->matched_off = 0;
	v->wildcard = false;
	v->action = (uint8_t)v->rule->action;
	v->local = value >> 16;
	v->group_key = NULL;
	v->group_count = 0;
	return true;
}

bool dk_policy_match_client(const struct dk_policy *p, const struct sockaddr *sa,
                            struct dk_verdict *v)
{
	if (!p || !p->client_ips)
		return no_verdict(v);
	if (sa->sa_family == AF_INET)
		return ip_verdict(p, p->client_ips, AF_INET,
		                  (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr, v);
	if (sa->sa_family == AF_INET6)
		return ip_verdict(p, p->client_ips, AF_INET6,
		                  (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr,
		                  v);
	return no_verdict(v);
}

bool dk_policy_match_ip(const struct dk_policy *p, int family, const uint8_t *addr,
                        struct dk_verdict *v)
{
	if (!p || !p->response_ips)
		return no_verdict(v);
	return ip_verdict(p, p->response_ips, family, addr, v);
}

static bool same_host(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
		              &((const struct sockaddr_in *)b)->sin_addr, 4) == 0;
	if (a->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		              &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
	return false;
}

const struct dk_zone *dk_policy_notify_zone(const struct dk_policy *p, const struct sockaddr *from,
                                            const uint8_t *wire, size_t len)
{
	for (size_t i = 0; p && i < p->n_zones; i++) {
		const struct dk_zone *z = &p->zones[i];
		if (z->primary && dk_name_equal_nocase(z->origin_wire, z->origin_len, wire, len) &&
		    same_host(&z->primary_addr.sa, from))
			return z;
	}
	return NULL;
}

int dk__local_cmp(const struct dk_policy *p, const struct dk_local_data *e, uint16_t rule,
                  bool wildcard, const uint8_t *owner, size_t owner_len)
{
	if (e->rule != rule)
		return e->rule < rule ? -1 : 1;
	if (e->wildcard != wildcard)
		return e->wildcard < wildcard ? -1 : 1;
	size_t n = e->owner_len < owner_len ? e->owner_len : owner_len;
	int c = memcmp(p->local_blob + e->owner_off, owner, n);
	if (c)
		return c;
	return e->owner_len == owner_len ? 0 : e->owner_len < owner_len ? -1 : 1;
}

const struct dk_local_data *dk_policy_local(const struct dk_policy *p, const struct dk_verdict *v,
                                            const uint8_t *wire, size_t len)
{
	if (!p || !v->rule || !p->n_local)
		return NULL;
	if (v->local)
		return v->local <= p->n_local ? &p->local[v->local - 1] : NULL;
	if (v->matched_off >= len)
		return NULL;
	const uint8_t *owner = wire + v->matched_off;
	size_t owner_len = len - v->matched_off;
	size_t lo = 0, hi = p->n_local;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = dk__local_cmp(p, &p->local[mid], v->rule->index, v->wildcard, owner,
		                      owner_len);
		if (c == 0)
			return &p->local[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

bool dk_policy_match(const struct dk_policy *p, const uint8_t *wire, size_t len,
                     struct dk_verdict *v)
{
	struct dk_suffixset_match m;

	if (!p || !dk_suffixset_lookup(p->set, wire, len, &m))
		return no_verdict(v);
	return verdict_from(&p->rules[m.value >> 1], &m, v);
}

bool dk_rule_match(const struct dk_rule *rule, const uint8_t *wire, size_t len,
                   struct dk_verdict *v)
{
	struct dk_suffixset_match m;

	if (!rule->own || !dk_suffixset_lookup(rule->own, wire, len, &m))
		return no_verdict(v);
	return verdict_from(rule, &m, v);
}

int dk_verdict_entry_text(const struct dk_verdict *v, const uint8_t *wire, size_t len, char *out,
                          size_t size)
{
	size_t pre = v->wildcard ? 2 : 0;

	if (v->matched_off >= len || size <= pre)
		return DK_ESPACE;
	int n = dk_name_to_text(wire + v->matched_off, len - v->matched_off, out + pre, size - pre);
	if (n < 0)
		return n;
	if (pre) {
		/* "*." before the root would read "*.."; the root entry is "*". */
		if (n == 1 && out[pre] == '.') {
			out[0] = '*';
			out[1] = '\0';
			return 1;
		}
		out[0] = '*';
		out[1] = '.';
	}
	return (int)pre + n;
}

size_t dk_policy_warnings(const struct dk_policy *p, dk_policy_warn_fn fn, void *ctx)
{
	char msg[256];
	size_t n = 0;

	if (!p)
		return 0;
	for (size_t i = 0; i < p->n_lists; i++) {
		const struct dk_list_stats *l = &p->lists[i];
		if (l->entries == 0) {
			snprintf(msg, sizeof(msg),
			         "list loads 0 entries (%zu lines, %zu invalid) for rule %s",
			         l->lines, l->invalid, l->rule->id);
			fn(ctx, l->file, 0, msg);
			n++;
		} else if (l->invalid * 2 > l->lines) {
			snprintf(msg, sizeof(msg),
			         "%zu of %zu lines are invalid, more than half (is this a list?); "
			         "rule %s",
			         l->invalid, l->lines, l->rule->id);
			fn(ctx, l->file, l->first_invalid_line, msg);
			n++;
		}
		if (l->single_label && !l->rule->single_label_ok) {
			snprintf(msg, sizeof(msg),
			         "%zu single-label entries (each blocks a whole TLD); say "
			         "'single_label: true' in rule %s if that is intended",
			         l->single_label, l->rule->id);
			fn(ctx, l->file, l->first_single_label, msg);
			n++;
		}
	}
	for (size_t i = 0; i < p->n_urls; i++) {
		const struct dk_url_list *u = &p->urls[i];
		if (u->list >= 0)
			continue;
		snprintf(msg, sizeof(msg),
		         "list %s has no copy in state_dir yet: rule %s gets its entries after "
		         "the first download",
		         u->url, u->rule->id);
		fn(ctx, u->rule->file, u->line, msg);
		n++;
	}
	for (size_t i = 0; i < p->n_zones; i++) {
		const struct dk_zone *z = &p->zones[i];
		const char *file = z->file ? z->file : z->rule->file;
		unsigned line = z->file ? 0 : z->line;
		if (z->entries == 0) {
			snprintf(msg, sizeof(msg),
			         "zone %s loads 0 triggers (%zu records, %zu invalid) for rule %s",
			         z->origin, z->st.records, z->st.invalid, z->rule->id);
			fn(ctx, file, line, msg);
			n++;
		} else if (z->st.invalid * 2 > z->st.records) {
			snprintf(msg, sizeof(msg),
			         "zone %s: %zu of %zu records are invalid, more than half; rule %s",
			         z->origin, z->st.invalid, z->st.records, z->rule->id);
			fn(ctx, file, z->st.first_invalid_line, msg);
			n++;
		}
	}
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct dk_rule *r = &p->rules[i];
		if (!r->n_single_label || r->single_label_ok)
			continue;
		snprintf(msg, sizeof(msg),
		         "%zu single-label entries in 'domains' (each blocks a whole TLD); say "
		         "'single_label: true' in rule %s if that is intended",
		         r->n_single_label, r->id);
		fn(ctx, r->file, r->first_single_label, msg);
		n++;
	}
	return n;
}

void dk__rule_deinit(struct dk_rule *r)
{
	/* A variant's strings are its base's; only its own (empty) set is its own. */
	if (r->variant) {
		dk_suffixset_free(r->own);
		return;
	}
	free(r->id);
	free(r->name);
	free(r->description);
	for (size_t i = 0; i < r->n_mitre; i++)
		free(r->mitre[i]);
	free(r->mitre);
	for (size_t i = 0; i < r->n_references; i++)
		free(r->references[i]);
	free(r->references);
	for (size_t i = 0; i < r->n_tags; i++)
		free(r->tags[i]);
	free(r->tags);
	for (size_t i = 0; i < r->n_tests; i++) {
		free(r->tests[i].name);
		free(r->tests[i].query);
		free(r->tests[i].client);
	}
	free(r->tests);
	free(r->file);
	dk_suffixset_free(r->own);
}

void dk__zone_deinit(struct dk_zone *z)
{
	free(z->file);
	free(z->origin);
	free(z->primary);
	free(z->state_file);
	free(z->tsig.name);
	free(z->tsig.algorithm);
	free(z->tsig.secret);
}

void dk__policy_free(struct dk_policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_rules; i++)
		dk__rule_deinit(&p->rules[i]);
	free(p->rules);
	for (size_t i = 0; i < p->n_lists; i++)
		free(p->lists[i].file);
	free(p->lists);
	for (size_t i = 0; i < p->n_zones; i++)
		dk__zone_deinit(&p->zones[i]);
	free(p->zones);
	for (size_t i = 0; i < p->n_urls; i++) {
		free(p->urls[i].url);
		free(p->urls[i].state_file);
	}
	free(p->urls);
	dk_ipset_free(p->client_ips);
	dk_ipset_free(p->response_ips);
	free(p->local);
	free(p->local_blob);
	dk_suffixset_free(p->set);
	if (p->groups_free)
		p->groups_free(p->groups);
	dk_sigma_free(p->sigma);
	dk_sigma_report_deinit(&p->sigma_report);
	free(p);
}

int dk_url_state_path(const char *state_dir, const char *url, char *out, size_t size)
{
	/* FNV-1a, 64 bits: stable across versions and machines, unlike a seeded hash. */
	uint64_t h = 0xcbf29ce484222325u;

	for (const char *c = url; *c; c++) {
		h ^= (uint8_t)*c;
		h *= 0x100000001b3u;
	}
	int n = snprintf(out, size, "%s/list-%016llx.txt", state_dir, (unsigned long long)h);
	return n < 0 || (size_t)n >= size ? DK_ESPACE : n;
}

int dk_feed_status_read(const char *copy, struct dk_feed_status *out)
{
	char path[4200], line[600];
	FILE *f;

	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), "%s.status", copy);
	if (!(f = fopen(path, "r")))
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "last_attempt ", 13) == 0)
			sscanf(line + 13, "%lf %31s", &out->last_time, out->last_result);
		else if (strncmp(line, "last_ok ", 8) == 0)
			sscanf(line + 8, "%lf", &out->last_ok_time);
		else if (strncmp(line, "results ", 8) == 0) {
			size_t n = strlen(line + 8);
			if (n >= sizeof(out->results))
				n = sizeof(out->results) - 1;
			memcpy(out->results, line + 8, n);
			out->results[n] = '\0';
		}
	}
	fclose(f);
	return 0;
}

size_t dk_policy_rule_count(const struct dk_policy *p)
{
	size_t n = 0;

	for (size_t i = 0; p && i < p->n_rules; i++)
		n += !p->rules[i].variant;
	return n;
}

struct dk_policy *dk_policy_ref(struct dk_policy *p)
{
	p->refs++;
	return p;
}

void dk_policy_unref(struct dk_policy *p)
{
	if (!p)
		return;
	if (p->refs > 1) {
		p->refs--;
		return;
	}
	dk__policy_free(p);
}
