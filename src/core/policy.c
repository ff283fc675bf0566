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
#include <stdlib.h>
#include <string.h>

#include "dnsink/config.h"
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
	return true;
}

bool dk_policy_match(const struct dk_policy *p, const uint8_t *wire, size_t len,
                     struct dk_verdict *v)
{
	struct dk_suffixset_match m;

	if (!p || !dk_suffixset_lookup(p->set, wire, len, &m)) {
		v->rule = NULL;
		v->matched_off = 0;
		v->wildcard = false;
		return false;
	}
	return verdict_from(&p->rules[m.value >> 1], &m, v);
}

bool dk_rule_match(const struct dk_rule *rule, const uint8_t *wire, size_t len,
                   struct dk_verdict *v)
{
	struct dk_suffixset_match m;

	if (!rule->own || !dk_suffixset_lookup(rule->own, wire, len, &m)) {
		v->rule = NULL;
		v->matched_off = 0;
		v->wildcard = false;
		return false;
	}
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

void dk__rule_deinit(struct dk_rule *r)
{
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
	dk_suffixset_free(p->set);
	if (p->groups_free)
		p->groups_free(p->groups);
	dk_sigma_free(p->sigma);
	dk_sigma_report_deinit(&p->sigma_report);
	free(p);
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
