/* SPDX-License-Identifier: MIT */
/*
 * Tests of matching (src/policy.c): the precedence table of SPEC.md (longest
 * entry wins; at equal length allow, then higher severity, then load order),
 * "*.name" against "name", matching a rule alone for rule tests, the text of
 * the matched entry, and the keyword tables.
 *
 * Most cases build a snapshot by hand, through the same merge function the
 * loader uses, so each case states exactly which rules hold which entries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dnsink/name.h"
#include "dnsink/policy.h"
#include "dnsink/suffixset.h"

#include "core/rules.h"

#define MAX_ENTRIES 4

/* A rule of a hand-made snapshot. */
struct rdef {
	enum dk_action action;
	enum dk_severity severity;
	const char *entries[MAX_ENTRIES]; /* "name" or "*.name"; NULL ends */
};

static void to_wire(const char *text, uint8_t wire[DK_NAME_MAX], size_t *len)
{
	assert_int_equal(dk_name_from_text(text, strlen(text), 0, wire, len), 0);
}

static void add_entry(struct dk_suffixset_builder *b, const char *e, size_t idx)
{
	uint8_t wire[DK_NAME_MAX];
	size_t len;
	bool wild = strncmp(e, "*.", 2) == 0;

	to_wire(wild ? e + 2 : e, wire, &len);
	assert_int_equal(dk_suffixset_builder_add(b, wire, len, wild, (uint16_t)(idx << 1 | wild)),
	                 0);
}

/* Builds a snapshot of @p n rules in load order, with per-rule sets. */
static struct dk_policy *make_policy(const struct rdef *defs, size_t n)
{
	struct dk_policy *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	p->refs = 1;
	p->rules = calloc(n, sizeof(*p->rules));
	assert_non_null(p->rules);
	p->n_rules = n;
	for (size_t i = 0; i < n; i++) {
		char id[24];
		snprintf(id, sizeof(id), "R%zu", i);
		p->rules[i].id = strdup(id);
		p->rules[i].index = (uint16_t)i;
		p->rules[i].action = defs[i].action;
		p->rules[i].severity = defs[i].severity;
	}
	struct dk_suffixset_builder *all = dk_suffixset_builder_new(0, dk__policy_merge, p->rules);
	assert_non_null(all);
	for (size_t i = 0; i < n; i++) {
		struct dk_suffixset_builder *own =
		        dk_suffixset_builder_new(0, dk__policy_merge, p->rules);
		assert_non_null(own);
		for (size_t j = 0; j < MAX_ENTRIES && defs[i].entries[j]; j++) {
			add_entry(all, defs[i].entries[j], i);
			add_entry(own, defs[i].entries[j], i);
		}
		p->rules[i].own = dk_suffixset_builder_finish(own);
		assert_non_null(p->rules[i].own);
	}
	p->set = dk_suffixset_builder_finish(all);
	assert_non_null(p->set);
	return p;
}

/* Matches @p query; returns the winning rule index or -1, and the entry text. */
static int match(const struct dk_policy *p, const char *query, char *entry, size_t size)
{
	uint8_t wire[DK_NAME_MAX];
	size_t len;
	struct dk_verdict v;

	to_wire(query, wire, &len);
	if (!dk_policy_match(p, wire, len, &v)) {
		assert_null(v.rule);
		entry[0] = '\0';
		return -1;
	}
	assert_non_null(v.rule);
	assert_true(dk_verdict_entry_text(&v, wire, len, entry, size) > 0);
	return v.rule->index;
}

#define S     DK_ACTION_SINKHOLE
#define A     DK_ACTION_ALERT
#define ALLOW DK_ACTION_ALLOW
#define NX    DK_ACTION_NXDOMAIN

struct prec_case {
	const char *what;
	struct rdef rules[3];
	size_t n_rules;
	const char *query;
	int want;          /* rule index, -1: no match */
	const char *entry; /* matched entry text */
};

static const struct prec_case prec_cases[] = {
        {"longest wins over severity",
         {{S, DK_SEVERITY_LOW, {"a.example.com"}}, {S, DK_SEVERITY_CRITICAL, {"example.com"}}},
         2,
         "x.a.example.com",
         0,
         "a.example.com"},
        {"longest wins, loaded second",
         {{S, DK_SEVERITY_CRITICAL, {"example.com"}}, {S, DK_SEVERITY_LOW, {"a.example.com"}}},
         2,
         "x.a.example.com",
         1,
         "a.example.com"},
        {"longest wins over allow",
         {{ALLOW, DK_SEVERITY_INFO, {"example.com"}}, {S, DK_SEVERITY_LOW, {"bad.example.com"}}},
         2,
         "bad.example.com",
         1,
         "bad.example.com"},
        {"allow covers the rest of its zone",
         {{ALLOW, DK_SEVERITY_INFO, {"example.com"}}, {S, DK_SEVERITY_LOW, {"bad.example.com"}}},
         2,
         "good.example.com",
         0,
         "example.com"},
        {"equal length: allow beats a later critical",
         {{ALLOW, DK_SEVERITY_INFO, {"example.com"}}, {S, DK_SEVERITY_CRITICAL, {"example.com"}}},
         2,
         "www.example.com",
         0,
         "example.com"},
        {"equal length: allow beats an earlier critical",
         {{S, DK_SEVERITY_CRITICAL, {"example.com"}}, {ALLOW, DK_SEVERITY_INFO, {"example.com"}}},
         2,
         "example.com",
         1,
         "example.com"},
        {"equal length: higher severity, loaded last",
         {{S, DK_SEVERITY_LOW, {"example.com"}},
          {A, DK_SEVERITY_MEDIUM, {"example.com"}},
          {NX, DK_SEVERITY_HIGH, {"example.com"}}},
         3,
         "example.com",
         2,
         "example.com"},
        {"equal length: higher severity, loaded first",
         {{NX, DK_SEVERITY_HIGH, {"example.com"}},
          {A, DK_SEVERITY_MEDIUM, {"example.com"}},
          {S, DK_SEVERITY_LOW, {"example.com"}}},
         3,
         "a.example.com",
         0,
         "example.com"},
        {"equal length and severity: first loaded",
         {{A, DK_SEVERITY_MEDIUM, {"other.test"}},
          {NX, DK_SEVERITY_HIGH, {"example.com"}},
          {S, DK_SEVERITY_HIGH, {"example.com"}}},
         3,
         "example.com",
         1,
         "example.com"},
        {"wildcard does not match its apex",
         {{S, DK_SEVERITY_HIGH, {"*.example.com"}}},
         1,
         "example.com",
         -1,
         ""},
        {"wildcard matches one label below",
         {{S, DK_SEVERITY_HIGH, {"*.example.com"}}},
         1,
         "a.example.com",
         0,
         "*.example.com"},
        {"wildcard matches deep below",
         {{S, DK_SEVERITY_HIGH, {"*.example.com"}}},
         1,
         "a.b.c.example.com",
         0,
         "*.example.com"},
        {"plain entry matches itself",
         {{S, DK_SEVERITY_HIGH, {"example.com"}}},
         1,
         "example.com",
         0,
         "example.com"},
        {"not across a label boundary",
         {{S, DK_SEVERITY_HIGH, {"example.com"}}},
         1,
         "notexample.com",
         -1,
         ""},
        {"parent is not matched by a child entry",
         {{S, DK_SEVERITY_HIGH, {"a.example.com"}}},
         1,
         "example.com",
         -1,
         ""},
        {"sibling is not matched",
         {{S, DK_SEVERITY_HIGH, {"a.example.com"}}},
         1,
         "b.example.com",
         -1,
         ""},
        {"apex: only the plain entry's rule applies",
         {{S, DK_SEVERITY_CRITICAL, {"*.example.com"}}, {A, DK_SEVERITY_LOW, {"example.com"}}},
         2,
         "example.com",
         1,
         "example.com"},
        {"below: wildcard and plain tie, severity decides",
         {{S, DK_SEVERITY_CRITICAL, {"*.example.com"}}, {A, DK_SEVERITY_LOW, {"example.com"}}},
         2,
         "a.example.com",
         0,
         "*.example.com"},
        {"below: plain beats wildcard of lower severity",
         {{S, DK_SEVERITY_LOW, {"*.example.com"}}, {A, DK_SEVERITY_HIGH, {"example.com"}}},
         2,
         "a.example.com",
         1,
         "example.com"},
        {"one rule, both forms: the plain entry is reported",
         {{S, DK_SEVERITY_HIGH, {"*.example.com", "example.com"}}},
         1,
         "a.example.com",
         0,
         "example.com"},
        {"one rule, both forms, other order",
         {{S, DK_SEVERITY_HIGH, {"example.com", "*.example.com"}}},
         1,
         "a.example.com",
         0,
         "example.com"},
        {"wildcard below a plain entry of another rule is longer",
         {{A, DK_SEVERITY_CRITICAL, {"example.com"}}, {S, DK_SEVERITY_INFO, {"*.a.example.com"}}},
         2,
         "x.a.example.com",
         1,
         "*.a.example.com"},
        {"... and its apex falls back to the shorter entry",
         {{A, DK_SEVERITY_CRITICAL, {"example.com"}}, {S, DK_SEVERITY_INFO, {"*.a.example.com"}}},
         2,
         "a.example.com",
         0,
         "example.com"},
        {"case and trailing dot change nothing",
         {{S, DK_SEVERITY_HIGH, {"example.com"}}},
         1,
         "WWW.Example.COM.",
         0,
         "example.com"},
        {"unrelated name",
         {{S, DK_SEVERITY_HIGH, {"example.com", "*.example.net"}}},
         1,
         "example.org",
         -1,
         ""},
};

static void test_precedence_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < DK_ARRAY_SIZE(prec_cases); i++) {
		const struct prec_case *c = &prec_cases[i];
		struct dk_policy *p = make_policy(c->rules, c->n_rules);
		char entry[DK_NAME_MAX * 4 + 3];
		int got = match(p, c->query, entry, sizeof(entry));

		if (got != c->want || strcmp(entry, c->entry) != 0)
			fail_msg("case '%s': query %s: got rule %d entry '%s', want rule %d '%s'",
			         c->what, c->query, got, entry, c->want, c->entry);
		dk_policy_unref(p);
	}
}

static void test_rule_precedes(void **state)
{
	struct dk_rule a = {0}, b = {0};

	(void)state;
	a.index = 0;
	b.index = 1;
	a.action = b.action = DK_ACTION_SINKHOLE;
	a.severity = b.severity = DK_SEVERITY_HIGH;
	assert_true(dk_rule_precedes(&a, &b));
	assert_false(dk_rule_precedes(&b, &a));
	/* A rule never precedes itself: the order is strict. */
	assert_false(dk_rule_precedes(&a, &a));

	b.severity = DK_SEVERITY_CRITICAL;
	assert_true(dk_rule_precedes(&b, &a));
	assert_false(dk_rule_precedes(&a, &b));

	a.action = DK_ACTION_ALLOW;
	a.severity = DK_SEVERITY_INFO;
	assert_true(dk_rule_precedes(&a, &b));
	assert_false(dk_rule_precedes(&b, &a));

	b.action = DK_ACTION_ALLOW;
	assert_true(dk_rule_precedes(&b, &a));
}

static void test_rule_match_alone(void **state)
{
	const struct rdef defs[] = {
	        {ALLOW, DK_SEVERITY_INFO, {"ok.example.com"}},
	        {S, DK_SEVERITY_HIGH, {"example.com", "*.wild.test"}},
	};
	struct dk_policy *p = make_policy(defs, 2);
	uint8_t wire[DK_NAME_MAX];
	size_t len;
	struct dk_verdict v;

	(void)state;
	/* Overall the allow rule wins, but a rule test judges its rule alone. */
	to_wire("x.ok.example.com", wire, &len);
	assert_true(dk_policy_match(p, wire, len, &v));
	assert_ptr_equal(v.rule, &p->rules[0]);
	assert_true(dk_rule_match(&p->rules[1], wire, len, &v));
	assert_ptr_equal(v.rule, &p->rules[1]);
	assert_false(dk_rule_match(&p->rules[0],
	                           (const uint8_t *)"\x07"
	                                            "example\x03"
	                                            "com",
	                           13, &v));
	assert_null(v.rule);

	to_wire("wild.test", wire, &len);
	assert_false(dk_rule_match(&p->rules[1], wire, len, &v));
	to_wire("a.wild.test", wire, &len);
	assert_true(dk_rule_match(&p->rules[1], wire, len, &v));
	assert_true(v.wildcard);
	assert_int_equal(v.matched_off, 2);

	/* Without per-rule sets nothing matches a rule alone. */
	struct dk_rule bare = p->rules[1];
	bare.own = NULL;
	assert_false(dk_rule_match(&bare, wire, len, &v));
	dk_policy_unref(p);
}

static void test_entry_text(void **state)
{
	const struct rdef defs[] = {
	        {S, DK_SEVERITY_HIGH, {"b.example.com", "*.wild.test"}},
	};
	struct dk_policy *p = make_policy(defs, 1);
	uint8_t wire[DK_NAME_MAX];
	size_t len;
	struct dk_verdict v;
	char out[64];

	(void)state;
	to_wire("A.B.Example.Com", wire, &len);
	assert_true(dk_policy_match(p, wire, len, &v));
	assert_false(v.wildcard);
	assert_int_equal(v.matched_off, 2);
	assert_int_equal(dk_verdict_entry_text(&v, wire, len, out, sizeof(out)), 13);
	assert_string_equal(out, "b.example.com");
	/* Exactly big enough, then one octet short. */
	assert_int_equal(dk_verdict_entry_text(&v, wire, len, out, 14), 13);
	assert_int_equal(dk_verdict_entry_text(&v, wire, len, out, 13), DK_ESPACE);

	to_wire("x.y.wild.test", wire, &len);
	assert_true(dk_policy_match(p, wire, len, &v));
	assert_true(v.wildcard);
	assert_int_equal(dk_verdict_entry_text(&v, wire, len, out, sizeof(out)), 11);
	assert_string_equal(out, "*.wild.test");
	assert_int_equal(dk_verdict_entry_text(&v, wire, len, out, 12), 11);
	assert_int_equal(dk_verdict_entry_text(&v, wire, len, out, 11), DK_ESPACE);
	assert_int_equal(dk_verdict_entry_text(&v, wire, len, out, 2), DK_ESPACE);
	dk_policy_unref(p);
}

static void test_no_policy(void **state)
{
	struct dk_verdict v = {.rule = (const struct dk_rule *)1};

	(void)state;
	assert_false(dk_policy_match(NULL, (const uint8_t *)"\0", 1, &v));
	assert_null(v.rule);
	dk_policy_unref(NULL);
}

static void test_refcount(void **state)
{
	const struct rdef defs[] = {{S, DK_SEVERITY_HIGH, {"example.com"}}};
	struct dk_policy *p = make_policy(defs, 1);

	(void)state;
	assert_ptr_equal(dk_policy_ref(p), p);
	assert_int_equal(p->refs, 2);
	dk_policy_unref(p);
	assert_int_equal(p->refs, 1);
	/* Still usable after dropping the extra reference. */
	char entry[64];
	assert_int_equal(match(p, "example.com", entry, sizeof(entry)), 0);
	dk_policy_unref(p);
}

static void test_keywords(void **state)
{
	static const char *const actions[] = {"sinkhole", "nxdomain", "refused", "alert", "allow"};
	static const char *const sev[] = {"info", "low", "medium", "high", "critical"};
	enum dk_action a;
	enum dk_severity s;

	(void)state;
	for (size_t i = 0; i < DK_ARRAY_SIZE(actions); i++) {
		assert_int_equal(dk_action_parse(actions[i], &a), 0);
		assert_int_equal(a, (enum dk_action)i);
		assert_string_equal(dk_action_name(a), actions[i]);
	}
	for (size_t i = 0; i < DK_ARRAY_SIZE(sev); i++) {
		assert_int_equal(dk_severity_parse(sev[i], &s), 0);
		assert_int_equal(s, (enum dk_severity)i);
		assert_string_equal(dk_severity_name(s), sev[i]);
	}
	/* Keywords are exact and lowercase. */
	assert_int_equal(dk_action_parse("Sinkhole", &a), DK_ESYNTAX);
	assert_int_equal(dk_action_parse("block", &a), DK_ESYNTAX);
	assert_int_equal(dk_action_parse("", &a), DK_ESYNTAX);
	assert_int_equal(dk_severity_parse("severe", &s), DK_ESYNTAX);
	assert_int_equal(dk_severity_parse("High", &s), DK_ESYNTAX);
	assert_string_equal(dk_action_name((enum dk_action)99), "unknown");
	assert_string_equal(dk_severity_name((enum dk_severity)99), "unknown");
}

/* The same precedence through the loader: rule files in tests/data/rules/prec/. */
static void test_loaded_precedence(void **state)
{
	const char *paths[] = {"tests/data/rules/prec"};
	struct dk_policy *p = NULL;
	struct dk_diag d;
	struct {
		const char *query;
		const char *rule; /* NULL: no match */
		const char *entry;
	} cases[] = {
	        {"example.com", "Prec.Allow", "example.com"},
	        {"www.example.com", "Prec.Allow", "example.com"},
	        {"ok.example.com", "Prec.Allow", "ok.example.com"},
	        {"deep.ok.example.com", "Prec.Deep", "deep.ok.example.com"},
	        {"x.deep.ok.example.com", "Prec.Deep", "deep.ok.example.com"},
	        /* Same name and slot: high beats low, and the plain entry is named. */
	        {"x.wild.example", "Prec.High", "wild.example"},
	        {"wild.example", "Prec.High", "wild.example"},
	        {"example.net", NULL, NULL},
	};

	(void)state;
	assert_int_equal(dk_policy_load(paths, 1, DK_POLICY_PER_RULE_SETS, &p, &d), 0);
	assert_int_equal(p->n_rules, 4);
	for (size_t i = 0; i < DK_ARRAY_SIZE(cases); i++) {
		uint8_t wire[DK_NAME_MAX];
		size_t len;
		struct dk_verdict v;
		char entry[64];

		to_wire(cases[i].query, wire, &len);
		bool hit = dk_policy_match(p, wire, len, &v);
		if (!cases[i].rule) {
			assert_false(hit);
			continue;
		}
		assert_true(hit);
		if (strcmp(v.rule->id, cases[i].rule) != 0)
			fail_msg("%s: got %s, want %s", cases[i].query, v.rule->id, cases[i].rule);
		assert_true(dk_verdict_entry_text(&v, wire, len, entry, sizeof(entry)) > 0);
		assert_string_equal(entry, cases[i].entry);
	}
	/* Prec.Low alone: its own "*.wild.example" entry, not the apex. */
	const struct dk_rule *low = &p->rules[0];
	assert_string_equal(low->id, "Prec.Low");
	assert_int_equal(low->n_tests, 2);
	for (size_t i = 0; i < low->n_tests; i++) {
		uint8_t wire[DK_NAME_MAX];
		size_t len;
		struct dk_verdict v;
		to_wire(low->tests[i].query, wire, &len);
		assert_int_equal(dk_rule_match(low, wire, len, &v), low->tests[i].expect);
	}
	dk_policy_unref(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_precedence_table), cmocka_unit_test(test_rule_precedes),
	        cmocka_unit_test(test_rule_match_alone), cmocka_unit_test(test_entry_text),
	        cmocka_unit_test(test_no_policy),        cmocka_unit_test(test_refcount),
	        cmocka_unit_test(test_keywords),         cmocka_unit_test(test_loaded_precedence),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
