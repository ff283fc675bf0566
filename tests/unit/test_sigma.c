/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the Sigma modules: the exact-only suffix-set entries and
 * lookup_all the engine adds, the glob matcher against a reference written
 * here (recursive, straight from the spec: '*' any run, '?' one character,
 * backslash escapes), the behavioural counters with an explicit clock
 * (event_count, value_count, temporal; one alert per window per group; the
 * table's counted eviction), and loader errors with FILE:LINE.
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

#include "core/sigma_int.h"
#include "dnsink/name.h"
#include "dnsink/policy.h"
#include "dnsink/sigma.h"
#include "dnsink/suffixset.h"

static void wire_of(const char *text, uint8_t w[DK_NAME_MAX], size_t *len)
{
	assert_int_equal(dk_name_from_text(text, strlen(text), 0, w, len), 0);
}

static void test_suffixset_exact_and_all(void **state)
{
	(void)state;
	struct dk_suffixset_builder *b = dk_suffixset_builder_new(4, NULL, NULL);
	uint8_t w[DK_NAME_MAX];
	size_t len;
	struct dk_suffixset_match m[8];

	wire_of("x.test", w, &len);
	assert_int_equal(dk_suffixset_builder_add_slots(b, w, len, DK_SUFFIXSET_SELF, 1), 0);
	assert_int_equal(dk_suffixset_builder_add(b, w, len, true, 2), 0);
	wire_of("test", w, &len);
	assert_int_equal(dk_suffixset_builder_add(b, w, len, true, 3), 0);
	struct dk_suffixset *s = dk_suffixset_builder_finish(b);
	assert_non_null(s);

	wire_of("x.test", w, &len);
	assert_int_equal(dk_suffixset_lookup_all(s, w, len, m, 8), 2);
	assert_int_equal(m[0].value, 1); /* exact on the name itself */
	assert_int_equal(m[1].value, 3); /* below test */
	wire_of("a.x.test", w, &len);
	assert_int_equal(dk_suffixset_lookup_all(s, w, len, m, 8), 2);
	assert_int_equal(m[0].value, 2);
	assert_int_equal(m[1].value, 3);
	/* Exact-only applies to nothing below. */
	assert_true(dk_suffixset_lookup(s, w, len, &m[0]));
	assert_int_equal(m[0].value, 2);
	wire_of("nox.test", w, &len);
	assert_int_equal(dk_suffixset_lookup_all(s, w, len, m, 8), 1);
	wire_of("test", w, &len);
	assert_int_equal(dk_suffixset_lookup_all(s, w, len, m, 8), 0);
	assert_int_equal(dk_suffixset_lookup_all(s, w, len, m, 0), 0);
	dk_suffixset_free(s);
}

/* The reference: Sigma wildcards on a pattern in glob form, by recursion. */
static bool ref_glob(const char *p, size_t pn, const char *s, size_t n)
{
	if (!pn)
		return !n;
	if (*p == SG_STAR)
		return ref_glob(p + 1, pn - 1, s, n) || (n && ref_glob(p, pn, s + 1, n - 1));
	if (!n)
		return false;
	return (*p == SG_QMARK || *p == *s) && ref_glob(p + 1, pn - 1, s + 1, n - 1);
}

static void test_glob_against_reference(void **state)
{
	(void)state;
	/* '*' and '?' stand for SG_STAR and SG_QMARK. */
	static const char *const pats[] = {"*",   "",    "a",        "a*",     "*a",
	                                   "*a*", "a?c", "*.x.test", "a*b*c",  "**",
	                                   "?",   "*?*", "x*?y",     "*ab*ab*"};
	static const char *const texts[] = {"",       "a",     "abc", "ac",   "a.x.test",
	                                    "x.test", "aXbYc", "ab",  "abab", "xy",
	                                    "xqy",    "xaby",  "cab"};
	unsigned checked = 0;

	for (size_t i = 0; i < sizeof(pats) / sizeof(pats[0]); i++) {
		char g[32];
		size_t n = strlen(pats[i]);
		for (size_t k = 0; k < n; k++)
			g[k] = pats[i][k] == '*'   ? SG_STAR
			       : pats[i][k] == '?' ? SG_QMARK
			                           : pats[i][k];
		for (size_t j = 0; j < sizeof(texts) / sizeof(texts[0]); j++) {
			bool want = ref_glob(g, n, texts[j], strlen(texts[j]));
			bool got = dk__sg_glob_match(g, n, texts[j], strlen(texts[j]));
			if (want != got)
				fail_msg("glob '%s' on '%s': want %d got %d", pats[i], texts[j],
				         want, got);
			checked++;
		}
	}
	assert_true(checked > 150);
}

/* A policy from corpus files and a scratch over it. */
struct fx {
	struct dk_policy *p;
	struct dk_sigma_scratch *sc;
};

static void load(struct fx *f, const char *path)
{
	struct dk_diag d = {0};
	const char *paths[] = {path};

	if (dk_policy_load(paths, 1, 0, &f->p, &d))
		fail_msg("%s:%u: %s", d.file, d.line, d.msg);
	assert_non_null(f->p->sigma);
	assert_int_equal(dk_sigma_scratch_new(f->p->sigma, &f->sc), 0);
}

static void unload(struct fx *f)
{
	dk_sigma_scratch_free(f->sc);
	dk_policy_unref(f->p);
}

/* One query at @p now_ms; returns the behavioural alerts (and their first count). */
static unsigned ask(struct fx *f, const char *name, uint16_t qtype, const char *client,
                    uint64_t now_ms, uint64_t *count, char *key)
{
	uint8_t w[DK_NAME_MAX];
	size_t len;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct dk_sigma_hits h;

	wire_of(name, w, &len);
	assert_int_equal(inet_pton(AF_INET, client, &sa.sin_addr), 1);
	struct dk_sigma_query q = {w, len, qtype, (const struct sockaddr *)&sa};
	dk_sigma_match_query(f->p->sigma, f->sc, &q, &h);
	dk_sigma_count(f->p->sigma, f->sc, &q, now_ms, &h);
	if (h.n_corr && count)
		*count = h.corr[0].count;
	if (h.n_corr && key)
		strcpy(key, h.corr[0].key);
	return h.n_corr;
}

static void test_value_count(void **state)
{
	(void)state;
	struct fx f;
	char name[64], key[80];
	uint64_t count = 0;
	unsigned alerts = 0;

	load(&f, "tests/sigma/corpus/corr_value.yml");
	/* The same name again and again is one distinct value. */
	for (int i = 0; i < 50; i++)
		alerts += ask(&f, "same.tunnel-cv.test", 16, "10.0.0.1", 1000 + i, NULL, NULL);
	assert_int_equal(alerts, 0);
	for (int i = 0; i < 18; i++) {
		snprintf(name, sizeof(name), "n%d.tunnel-cv.test", i);
		alerts += ask(&f, name, 16, "10.0.0.1", 2000 + i, NULL, NULL);
	}
	assert_int_equal(alerts, 0); /* 19 distinct */
	assert_int_equal(ask(&f, "n18.tunnel-cv.test", 16, "10.0.0.1", 3000, &count, key), 1);
	assert_int_equal(count, 20);
	assert_string_equal(key, "src_ip=10.0.0.1,registered_domain=tunnel-cv.test");
	/* The rest of the window: no second alert. */
	for (int i = 19; i < 200; i++) {
		snprintf(name, sizeof(name), "n%d.tunnel-cv.test", i);
		alerts += ask(&f, name, 16, "10.0.0.1", 4000 + i, NULL, NULL);
	}
	assert_int_equal(alerts, 0);
	/* Another client below the threshold never alerts. */
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "m%d.tunnel-cv.test", i);
		alerts += ask(&f, name, 16, "10.0.0.2", 5000 + i, NULL, NULL);
	}
	assert_int_equal(alerts, 0);
	/* A new window (1m after the first event) counts afresh and alerts again. */
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "w%d.tunnel-cv.test", i);
		alerts += ask(&f, name, 16, "10.0.0.1", 62000 + i, NULL, NULL);
	}
	assert_int_equal(alerts, 1);
	unload(&f);
}

static void test_value_count_large(void **state)
{
	(void)state;
	struct fx f;
	char name[64];
	uint64_t count = 0;

	/* Past the exact room the sketch counts: still one alert, at about 20. */
	load(&f, "tests/sigma/corpus/corr_value.yml");
	unsigned alerts = 0;
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "h%d.tunnel-cv.test", i);
		uint64_t c = 0;
		if (ask(&f, name, 1, "10.0.0.9", 100 + (uint64_t)i, &c, NULL)) {
			alerts++;
			count = c;
		}
	}
	assert_int_equal(alerts, 1);
	assert_in_range(count, 20, 24);
	unload(&f);
}

static void test_temporal(void **state)
{
	(void)state;
	struct fx f;
	char key[80];
	uint64_t count = 0;

	load(&f, "tests/sigma/corpus/corr_temporal.yml");
	assert_int_equal(ask(&f, "stage.x.test", 1, "10.0.0.1", 1000, NULL, NULL), 0);
	assert_int_equal(ask(&f, "stage.y.test", 1, "10.0.0.1", 2000, NULL, NULL), 0);
	assert_int_equal(ask(&f, "beacon.x.test", 1, "10.0.0.2", 3000, NULL, NULL), 0);
	assert_int_equal(ask(&f, "beacon.x.test", 1, "10.0.0.1", 4000, &count, key), 1);
	assert_int_equal(count, 2);
	assert_string_equal(key, "src_ip=10.0.0.1");
	assert_int_equal(ask(&f, "beacon.z.test", 1, "10.0.0.1", 5000, NULL, NULL), 0);
	/* Too far apart: the window of the first is over. */
	assert_int_equal(ask(&f, "stage.x.test", 1, "10.0.0.3", 10000, NULL, NULL), 0);
	assert_int_equal(ask(&f, "beacon.x.test", 1, "10.0.0.3", 71000, NULL, NULL), 0);
	unload(&f);
}

static void test_event_count_and_eviction(void **state)
{
	(void)state;
	struct fx f;
	char client[32];
	struct dk_sigma_count_stats st;
	uint64_t count = 0;
	unsigned alerts = 0;

	load(&f, "tests/sigma/corpus/agg_txt_rate.yml");
	/* "> 50": the 51st TXT or NULL lookup alerts, once. */
	for (int i = 0; i < 50; i++)
		alerts += ask(&f, "t.example", i % 2 ? 16 : 10, "10.0.0.1", 100 + (uint64_t)i, NULL,
		              NULL);
	assert_int_equal(alerts, 0);
	assert_int_equal(ask(&f, "t.example", 16, "10.0.0.1", 200, &count, NULL), 1);
	assert_int_equal(count, 51);
	for (int i = 0; i < 100; i++)
		alerts += ask(&f, "t.example", 16, "10.0.0.1", 300 + (uint64_t)i, NULL, NULL);
	assert_int_equal(alerts, 0);
	/* A records do not count. */
	for (int i = 0; i < 100; i++)
		alerts += ask(&f, "t.example", 1, "10.0.0.5", 300 + (uint64_t)i, NULL, NULL);
	assert_int_equal(alerts, 0);
	/* Many more groups than the table holds: evicted and counted, never more held. */
	for (int i = 0; i < 10000; i++) {
		snprintf(client, sizeof(client), "10.%d.%d.%d", i >> 16 & 255, i >> 8 & 255,
		         i & 255);
		ask(&f, "t.example", 16, client, 1000 + (uint64_t)i, NULL, NULL);
	}
	dk_sigma_count_stats(f.sc, &st);
	assert_true(st.groups <= 4096);
	assert_true(st.evictions > 0);
	assert_true(st.groups + st.evictions >= 10000);
	unload(&f);
}

/* Writes @p text as a rule file and loads it; returns the code and the message. */
static int load_text(const char *text, char *msg, size_t size, unsigned *line)
{
	char dir[] = "/tmp/dk-sigma-XXXXXX";
	char path[64];
	struct dk_policy *p = NULL;
	struct dk_diag d = {0};

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/r.yml", dir);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	const char *paths[] = {dir};
	int rc = dk_policy_load(paths, 1, 0, &p, &d);
	snprintf(msg, size, "%s", d.msg);
	*line = d.line;
	dk_policy_unref(p);
	unlink(path);
	rmdir(dir);
	return rc;
}

static void test_schema_errors(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		unsigned line;
		const char *msg;
	} cases[] = {
	        {"title: t\nlogsource: {category: dns}\ndetection:\n  sel: {query: a}\n", 4,
	         "has no 'condition'"},
	        {"title: t\nlogsource: {category: dns}\ndetection:\n  sel: {query: a}\n"
	         "  condition: sel and (\n",
	         5, "selection name expected"},
	        {"title: t\nlogsource: {category: dns}\ndetection:\n  sel: {query|exists: maybe}\n"
	         "  condition: sel\n",
	         4, "'exists' takes true or false"},
	        {"title: t\nlogsource: {category: dns}\ndetection:\n  sel: {query|re: '(a'}\n"
	         "  condition: sel\n",
	         4, "invalid regular expression"},
	        {"title: t\nlogsource: {category: dns}\ndetection:\n  sel: {query: a}\n"
	         "  condition: 1 of nosuch*\n",
	         5, "names no selection"},
	        {"logsource: {category: dns}\ndetection:\n  sel: {query: a}\n  condition: sel\n", 1,
	         "no 'title'"},
	        {"title: t\ncorrelation:\n  type: event_count\n  rules: [x]\n  timespan: 5q\n"
	         "  condition: {gte: 3}\n",
	         5, "'timespan'"},
	        {"title: t\nlogsource: {category: dns}\ndetection:\n  sel: {query: a}\n"
	         "  timeframe: soon\n  condition: sel | count() by src_ip > 3\n",
	         5, "'timeframe' must be a duration"},
	};
	char msg[600];
	unsigned line;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = load_text(cases[i].text, msg, sizeof(msg), &line);
		if (rc != DK_ESCHEMA || !strstr(msg, cases[i].msg) || line != cases[i].line)
			fail_msg("case %zu: rc %d line %u msg '%s'", i, rc, line, msg);
	} /* Valid Sigma that dnsink cannot run, or a newer modifier, is not an error. */
	assert_int_equal(load_text("title: t\nlogsource: {category: dns}\ndetection:\n"
	                           "  sel: {query|windash: a}\n  condition: 2 of sel\n",
	                           msg, sizeof(msg), &line),
	                 0);
	assert_int_equal(load_text("title: t\nlogsource: {category: dns}\ndetection:\n"
	                           "  sel: {query|future: a}\n  condition: sel\n",
	                           msg, sizeof(msg), &line),
	                 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_suffixset_exact_and_all),
	        cmocka_unit_test(test_glob_against_reference),
	        cmocka_unit_test(test_value_count),
	        cmocka_unit_test(test_value_count_large),
	        cmocka_unit_test(test_temporal),
	        cmocka_unit_test(test_event_count_and_eviction),
	        cmocka_unit_test(test_schema_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
