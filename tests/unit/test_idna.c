/* SPDX-License-Identifier: MIT */
/*
 * Tests of IDNA conversion (src/core/idna.c) and of Unicode entries in rule
 * files and lists: the two homograph domains of the real CoinBlockerLists
 * list block their A-label names, UTS#46 mapping folds case and width, and
 * names that are no IDNA2008 names stay invalid lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dnsink/idna.h"
#include "dnsink/name.h"
#include "dnsink/policy.h"

static void test_to_ascii(void **state)
{
	static const struct {
		const char *in;
		const char *out; /* NULL: DK_ENAME */
	} cases[] = {
	        {"bücher.example", "xn--bcher-kva.example"},
	        {"BÜCHER.example.", "xn--bcher-kva.example."}, /* mapped to lower case */
	        {"faß.de", "xn--fa-hia.de"},                   /* non-transitional: not fass.de */
	        {"ｆｕｌｌ.example", "full.example"},          /* full-width folded */
	        {"xn--bcher-kva.example", "xn--bcher-kva.example"},
	        {"myètherwället.com", "xn--mytherwllet-r8a0c.com"},
	        {"mÿethèrwallét.com", "xn--methrwallt-26ar0z.com"},
	        {"☃.example", NULL},     /* disallowed in IDNA2008 */
	        {"a\xff.example", NULL}, /* not UTF-8 */
	        {"\xd7\x90"
	         "a.example",
	         NULL}, /* bidi rule: Hebrew then Latin in one label */
	        {"", NULL},
	};
	char out[1100];

	(void)state;
	for (size_t i = 0; i < DK_ARRAY_SIZE(cases); i++) {
		int n = dk_idna_to_ascii(cases[i].in, strlen(cases[i].in), out, sizeof(out));
		if (!cases[i].out) {
			if (n != DK_ENAME)
				fail_msg("'%s': got %d (%s), want DK_ENAME", cases[i].in, n,
				         n > 0 ? out : "");
			continue;
		}
		if (n < 0)
			fail_msg("'%s': error %d", cases[i].in, n);
		assert_string_equal(out, cases[i].out);
		assert_int_equal(n, (int)strlen(cases[i].out));
	}
	/* Too small a buffer is said so, not cut. */
	assert_int_equal(dk_idna_to_ascii("bücher.example", 15, out, 8), DK_ESPACE);
	/* A NUL inside the text is no name. */
	assert_int_equal(dk_idna_to_ascii("b\0ü.example", 12, out, sizeof(out)), DK_ENAME);
}

static void test_name_from_text(void **state)
{
	uint8_t wire[DK_NAME_MAX], want[DK_NAME_MAX];
	size_t len, wlen;

	(void)state;
	assert_false(dk_idna_needed("plain.example", 13));
	assert_true(dk_idna_needed("bücher", 7));
	assert_int_equal(dk_idna_name_from_text("Bücher.Example", strlen("Bücher.Example"),
	                                        DK_NAME_HOSTNAME, wire, &len),
	                 0);
	assert_int_equal(dk_name_from_text("xn--bcher-kva.example", 21, 0, want, &wlen), 0);
	assert_memory_equal(wire, want, wlen);
	assert_int_equal(len, wlen);
	/* ASCII goes the old way: escapes still decoded, host-name check still applies. */
	assert_int_equal(dk_idna_name_from_text("a\\.b.example", 12, 0, wire, &len), 0);
	assert_int_equal(wire[0], 3);
	assert_int_equal(dk_idna_name_from_text("a b.example", 11, DK_NAME_HOSTNAME, wire, &len),
	                 DK_ENAME);
	assert_int_equal(dk_idna_name_from_text("☃.example", strlen("☃.example"), 0, wire, &len),
	                 DK_ENAME);
}

static const char *match(const struct dk_policy *p, const char *name)
{
	uint8_t wire[DK_NAME_MAX];
	size_t len;
	struct dk_verdict v;

	assert_int_equal(dk_name_from_text(name, strlen(name), 0, wire, &len), 0);
	return dk_policy_match(p, wire, len, &v) ? v.rule->id : NULL;
}

/* The CoinBlocker case: before IDNA these lines were invalid and nothing was blocked. */
static void test_unicode_list(void **state)
{
	struct dk_policy *p = NULL;
	const char *paths[] = {"tests/data/rules/idna/idna.yml"};
	struct dk_diag d;

	(void)state;
	assert_int_equal(dk_policy_load(paths, 1, 0, &p, &d), 0);
	assert_int_equal(p->n_lists, 1);
	assert_int_equal(p->lists[0].entries, 8);
	assert_int_equal(p->lists[0].invalid, 2); /* the snowman and the bad UTF-8 */

	static const struct {
		const char *name;
		bool blocked;
	} cases[] = {
	        {"xn--mytherwllet-r8a0c.com", true}, /* myètherwället.com */
	        {"www.xn--mytherwllet-r8a0c.com", true},
	        {"xn--methrwallt-26ar0z.com", true}, /* mÿethèrwallét.com */
	        {"myetherwallet.com", false},        /* the real one */
	        {"fullwidth.example", true},
	        {"xn--bcher-kva.example", true},  /* hosts line */
	        {"xn--mnchen-3ya.example", true}, /* adblock line */
	        {"xn--kln-sna.example", false},   /* "*." only below */
	        {"a.xn--kln-sna.example", true},
	        {"phish.example", true}, /* full-width in domains: */
	        {"myzen.cash", true},
	};
	for (size_t i = 0; i < DK_ARRAY_SIZE(cases); i++) {
		bool got = match(p, cases[i].name) != NULL;
		if (got != cases[i].blocked)
			fail_msg("%s: blocked %d, want %d", cases[i].name, got, cases[i].blocked);
	}
	dk_policy_unref(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_to_ascii),
	        cmocka_unit_test(test_name_from_text),
	        cmocka_unit_test(test_unicode_list),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
