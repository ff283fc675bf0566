/* SPDX-License-Identifier: MIT */
/*
 * Tests of the rule loader (src/rules.c): the shipped rules/ folder, every
 * schema and file error with its exact FILE:LINE, folder order and disabled
 * rules, and each list line format (plain, wildcard, hosts, adblock, comments,
 * BOM, CRLF, invalid lines counted with the first one's line).
 *
 * Fixtures live in tests/data/rules/. Expected error lines are not written
 * here: each case names a marker text and the test finds the line of the
 * fixture that holds it, so a fixture edit cannot silently shift a check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dnsink/name.h"
#include "dnsink/policy.h"
#include "dnsink/suffixset.h"

#define DATA "tests/data/rules/"

/* The 1-based line of @p path that first holds @p marker (0: none). */
static unsigned line_of_marker(const char *path, const char *marker)
{
	FILE *f = fopen(path, "r");
	char buf[1024];
	unsigned line = 0, found = 0;

	assert_non_null(f);
	while (fgets(buf, sizeof(buf), f)) {
		line++;
		if (strstr(buf, marker)) {
			found = line;
			break;
		}
	}
	fclose(f);
	if (!found)
		fail_msg("marker '%s' not in %s", marker, path);
	return found;
}

static const struct dk_rule *find_rule(const struct dk_policy *p, const char *id)
{
	for (size_t i = 0; i < p->n_rules; i++) {
		if (strcmp(p->rules[i].id, id) == 0)
			return &p->rules[i];
	}
	return NULL;
}

/* The id of the rule @p name matches in @p p, or NULL; the entry into @p entry. */
static const char *verdict(const struct dk_policy *p, const char *name, char *entry, size_t size)
{
	uint8_t wire[DK_NAME_MAX];
	size_t len;
	struct dk_verdict v;

	assert_int_equal(dk_name_from_text(name, strlen(name), 0, wire, &len), 0);
	if (!dk_policy_match(p, wire, len, &v))
		return NULL;
	assert_true(dk_verdict_entry_text(&v, wire, len, entry, size) > 0);
	return v.rule->id;
}

/* ---- the shipped rules ------------------------------------------------------ */

/* Counts lines of @p path under "domains:" that are list items ("  - "). */
static size_t count_domain_items(const char *path)
{
	FILE *f = fopen(path, "r");
	char buf[1024];
	size_t n = 0;
	bool in = false;

	assert_non_null(f);
	while (fgets(buf, sizeof(buf), f)) {
		if (strncmp(buf, "domains:", 8) == 0)
			in = true;
		else if (buf[0] != ' ' && buf[0] != '#')
			in = false;
		else if (in && strncmp(buf, "  - ", 4) == 0)
			n++;
	}
	fclose(f);
	return n;
}

/* Loads @p path; a load error fails the test with its FILE:LINE: message. */
static struct dk_policy *load_ok(const char *path, unsigned flags)
{
	const char *paths[] = {path};
	struct dk_policy *p = NULL;
	struct dk_diag d;

	if (dk_policy_load(paths, 1, flags, &p, &d))
		fail_msg("%s:%u: %s", d.file, d.line, d.msg);
	return p;
}

static void test_shipped_rules(void **state)
{
	struct dk_policy *p = load_ok("rules/", DK_POLICY_PER_RULE_SETS);
	char entry[300];

	(void)state;
	assert_int_equal(p->n_rules, 2);
	/* Name order: dynamic-dns.yml before mining-pools.yml. */
	assert_string_equal(p->rules[0].file, "rules/dynamic-dns.yml");
	assert_string_equal(p->rules[1].file, "rules/mining-pools.yml");

	const struct dk_rule *mp = find_rule(p, "DNS.Crypto.MiningPool");
	assert_non_null(mp);
	assert_int_equal(mp->severity, DK_SEVERITY_HIGH);
	assert_int_equal(mp->action, DK_ACTION_SINKHOLE);
	assert_int_equal(mp->n_mitre, 1);
	assert_string_equal(mp->mitre[0], "TA0040:T1496");
	assert_true(mp->alert);
	assert_int_equal(mp->dedup_minutes, 60);
	assert_int_equal(mp->threshold, 1);
	assert_int_equal(mp->n_tests, 10);
	/* Panther's list has 251 names, all distinct; every one must be loaded. */
	assert_int_equal(mp->n_entries, count_domain_items("rules/mining-pools.yml"));
	assert_int_equal(mp->n_entries, 251);

	const struct dk_rule *dd = find_rule(p, "DNS.DynDNS.SuspiciousProvider");
	assert_non_null(dd);
	assert_int_equal(dd->action, DK_ACTION_ALERT);
	assert_int_equal(dd->severity, DK_SEVERITY_MEDIUM);
	assert_int_equal(dd->n_entries, count_domain_items("rules/dynamic-dns.yml"));
	assert_int_equal(dd->n_entries, 70);

	assert_int_equal(p->n_entries, mp->n_entries + dd->n_entries);
	/* mooo.com is in both lists, so one name fewer than entries. */
	assert_int_equal(p->n_names, p->n_entries - 1);
	assert_int_equal(p->n_names, dk_suffixset_count(p->set));

	/* Every embedded test passes when judged by its rule alone. */
	size_t run = 0;
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct dk_rule *r = &p->rules[i];
		for (size_t j = 0; j < r->n_tests; j++) {
			uint8_t wire[DK_NAME_MAX];
			size_t len;
			struct dk_verdict v;
			const struct dk_rule_test *t = &r->tests[j];
			assert_int_equal(
			        dk_name_from_text(t->query, strlen(t->query), 0, wire, &len), 0);
			if (dk_rule_match(r, wire, len, &v) != t->expect)
				fail_msg("%s: %s: %s", r->id, t->name, t->query);
			run++;
		}
	}
	assert_true(run >= 14);

	/* Panther records: AWS.VPCDns query_name and OCSF query.hostname. */
	assert_string_equal(mp->tests[0].name, "Non Crypto Query");
	assert_false(mp->tests[0].expect);
	assert_string_equal(mp->tests[0].query, "dynamodb.us-west-2.amazonaws.com");
	assert_string_equal(mp->tests[9].name, "Crypto Query - OCSF");
	assert_string_equal(mp->tests[9].query, "moneropool.ru");

	/* Overlaps settle by precedence: high sinkhole over medium alert. */
	assert_string_equal(verdict(p, "x.mooo.com", entry, sizeof(entry)),
	                    "DNS.Crypto.MiningPool");
	assert_string_equal(entry, "mooo.com");
	assert_string_equal(verdict(p, "a.webservicepag.webhop.net", entry, sizeof(entry)),
	                    "DNS.Crypto.MiningPool");
	assert_string_equal(verdict(p, "other.webhop.net", entry, sizeof(entry)),
	                    "DNS.DynDNS.SuspiciousProvider");
	assert_string_equal(entry, "*.webhop.net");
	assert_null(verdict(p, "webhop.net", entry, sizeof(entry)));
	assert_null(verdict(p, "notmoneropool.ru", entry, sizeof(entry)));
	dk_policy_unref(p);
}

/* ---- errors ------------------------------------------------------------------- */

struct err_case {
	const char *file;   /* under DATA */
	const char *marker; /* text on the line the error must name; NULL: no line */
	int code;
	const char *msg; /* must appear in the message */
};

static const struct err_case err_cases[] = {
        {"bad/unknown-key.yml", "severty:", DK_ESCHEMA, "unknown key 'severty'"},
        {"bad/severity.yml", "severity:", DK_ESCHEMA,
         "severity must be one of info, low, medium, high, critical"},
        {"bad/action.yml", "action:", DK_ESCHEMA,
         "action must be one of sinkhole, nxdomain, refused, alert, allow"},
        {"bad/missing-id.yml", "name: no id", DK_ESCHEMA, "rule has no 'id'"},
        {"bad/missing-action.yml", "id: Bad.MissingAction", DK_ESCHEMA, "rule has no 'action'"},
        {"bad/domains-type.yml", "domains:", DK_ESCHEMA, "'domains' must be a list"},
        {"bad/alert-type.yml", "alert:", DK_ESCHEMA, "'alert' must be true or false"},
        {"bad/threshold.yml", "threshold:", DK_ESCHEMA, "'threshold' must be an integer from 1"},
        {"bad/dedup.yml", "dedup_minutes:", DK_ESCHEMA,
         "'dedup_minutes' must be an integer from 0"},
        {"bad/domain.yml", "bad..example.com", DK_ENAME, "invalid domain 'bad..example.com'"},
        {"bad/domain-ip.yml", "192.0.2.1", DK_ENAME, "invalid domain '192.0.2.1'"},
        {"bad/syntax.yml", "domains:", DK_ESYNTAX, "YAML syntax error: "},
        {"bad/missing-list.yml", "does-not-exist", -2 /* -ENOENT */,
         "cannot read list 'lists/does-not-exist.txt'"},
        {"bad/dup-key.yml", "severity: high", DK_ESCHEMA, "duplicate key 'severity'"},
        {"bad/test-noquery.yml", "log:", DK_ESCHEMA,
         "test log has no query_name, query.hostname or query"},
        {"bad/test-key.yml", "expected:", DK_ESCHEMA, "unknown key 'expected' in test"},
        {"bad/not-mapping.yml", "- id:", DK_ESCHEMA, "a rule must be a mapping"},
        {"bad/no-entries.yml", "id:", DK_ESCHEMA,
         "neither 'domains', 'domain_files', 'domain_urls' nor 'rpz'"},
        {"bad/mitre.yml", "Impact", DK_ESCHEMA, "mitre entry 'Impact'"},
        {"bad/id-chars.yml", "id:", DK_ESCHEMA, "id 'Bad Id' may hold only"},
        {"bad/empty.yml", NULL, DK_ESCHEMA, "no rule in file"},
        {"nope.yml", NULL, -2 /* -ENOENT */, "No such file or directory"},
};

static void test_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < DK_ARRAY_SIZE(err_cases); i++) {
		const struct err_case *c = &err_cases[i];
		char path[256];
		struct dk_policy *sentinel = (struct dk_policy *)&path, *p = sentinel;
		struct dk_diag d;

		snprintf(path, sizeof(path), DATA "%s", c->file);
		const char *paths[] = {path};
		int rc = dk_policy_load(paths, 1, 0, &p, &d);
		unsigned want_line = c->marker ? line_of_marker(path, c->marker) : 0;

		if (rc != c->code || strcmp(d.file, path) != 0 || d.line != want_line ||
		    !strstr(d.msg, c->msg))
			fail_msg("%s: got %d %s:%u: %s; want %d %s:%u: ...%s...", c->file, rc,
			         d.file, d.line, d.msg, c->code, path, want_line, c->msg);
		/* On error the output is left untouched. */
		assert_ptr_equal(p, sentinel);
	}
}

/* ATT&CK references: tactic, technique, sub-technique, tactic:technique; nothing else. */
static void test_mitre_forms(void **state)
{
	static const struct {
		const char *mitre;
		bool ok;
	} cases[] = {
	        {"TA0040:T1496", true}, {"TA0040", true},           {"T1496", true},
	        {"T1496.001", true},    {"TA0040:T1496.001", true}, {"TA004", false},
	        {"TA00400", false},     {"TA0040:", false},         {"TA0040-T1496", false},
	        {"T149", false},        {"T1496.01", false},        {"T1496.0011", false},
	        {"T1496.", false},      {"t1496", false},           {"Impact", false},
	};
	char dir[] = "/tmp/dnsink-test-mitre-XXXXXX";
	char path[64];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/r.yml", dir);
	for (size_t i = 0; i < DK_ARRAY_SIZE(cases); i++) {
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fprintf(f,
		        "id: T.M\nname: n\nseverity: low\naction: alert\nmitre: [\"%s\"]\n"
		        "domains: [a.test]\n",
		        cases[i].mitre);
		fclose(f);
		const char *paths[] = {path};
		struct dk_policy *p = NULL;
		struct dk_diag d;
		int rc = dk_policy_load(paths, 1, 0, &p, &d);
		if ((rc == 0) != cases[i].ok)
			fail_msg("mitre '%s': load gave %d (%s)", cases[i].mitre, rc, d.msg);
		dk_policy_unref(p);
	}
	unlink(path);
	rmdir(dir);
}

static void test_duplicate_ids(void **state)
{
	const char *dup[] = {DATA "dup"};
	const char *disabled[] = {DATA "order", DATA "order-c-again.yml"};
	struct dk_policy *p = NULL;
	struct dk_diag d;
	char want[600];

	(void)state;
	/* Reported at the second definition, naming the first. */
	assert_int_equal(dk_policy_load(dup, 1, 0, &p, &d), DK_EDUP);
	assert_null(p);
	assert_string_equal(d.file, DATA "dup/b.yml");
	assert_int_equal(d.line, line_of_marker(DATA "dup/b.yml", "id: Dup.Rule"));
	snprintf(want, sizeof(want), "duplicate rule id 'Dup.Rule' (first defined at %s:%u)",
	         DATA "dup/a.yml", line_of_marker(DATA "dup/a.yml", "id: Dup.Rule"));
	assert_string_equal(d.msg, want);

	/* A disabled rule keeps its id taken. */
	assert_int_equal(dk_policy_load(disabled, 2, 0, &p, &d), DK_EDUP);
	assert_null(p);
	assert_string_equal(d.file, DATA "order-c-again.yml");
	assert_int_equal(d.line, line_of_marker(DATA "order-c-again.yml", "id: Order.C"));
	assert_non_null(strstr(d.msg, DATA "order/c.yml:"));

	/* The same file twice is a duplicate too. */
	const char *twice[] = {DATA "dup/a.yml", DATA "dup/a.yml"};
	assert_int_equal(dk_policy_load(twice, 2, 0, &p, &d), DK_EDUP);
}

static void test_folder_order(void **state)
{
	char entry[64];

	(void)state;
	/*
	 * a.yml then b.yaml; c.yml is disabled; readme.txt, the hidden (and
	 * broken) .hidden.yml and the folder sub.yml are not rule files.
	 */
	struct dk_policy *p = load_ok(DATA "order/", 0);
	assert_int_equal(p->n_rules, 2);
	assert_string_equal(p->rules[0].id, "Order.A");
	assert_int_equal(p->rules[0].index, 0);
	assert_string_equal(p->rules[0].file, DATA "order/a.yml");
	assert_int_equal(p->rules[0].line, 1);
	assert_string_equal(p->rules[1].id, "Order.B");
	assert_int_equal(p->rules[1].index, 1);
	assert_null(p->rules[0].own);
	/* Defaults. */
	assert_true(p->rules[0].alert);
	assert_int_equal(p->rules[0].dedup_minutes, 60);
	assert_int_equal(p->rules[0].threshold, 1);
	assert_null(p->rules[0].description);
	assert_string_equal(verdict(p, "b.example", entry, sizeof(entry)), "Order.B");
	assert_null(verdict(p, "c.example", entry, sizeof(entry)));
	assert_int_equal(p->n_entries, 2);
	dk_policy_unref(p);
}

/* ---- list files ------------------------------------------------------------------ */

static void test_list_formats(void **state)
{
	struct dk_policy *p = load_ok(DATA "lists/formats.yml", DK_POLICY_PER_RULE_SETS);
	char entry[300];

	(void)state;
	assert_int_equal(p->n_lists, 3);

	const struct dk_list_stats *f = &p->lists[0];
	assert_string_equal(f->file, DATA "lists/formats.txt");
	assert_ptr_equal(f->rule, &p->rules[0]);
	assert_int_equal(f->lines, 29);
	assert_int_equal(f->entries, 14);
	assert_int_equal(f->invalid, 12);
	assert_int_equal(f->first_invalid_line, line_of_marker(f->file, "192.0.2.1"));

	/* Relative to the rule file, into a subfolder. */
	assert_string_equal(p->lists[1].file, DATA "lists/sub/hosts.txt");
	assert_int_equal(p->lists[1].lines, 3);
	assert_int_equal(p->lists[1].entries, 2);
	assert_int_equal(p->lists[1].invalid, 0);
	assert_int_equal(p->lists[1].first_invalid_line, 0);
	assert_int_equal(p->lists[2].lines, 0);
	assert_int_equal(p->lists[2].entries, 0);

	assert_int_equal(p->n_entries, 1 + 14 + 2);
	assert_int_equal(p->rules[0].n_entries, p->n_entries);
	assert_int_equal(p->n_invalid, 12);

	static const struct {
		const char *name;
		const char *entry; /* NULL: no match */
	} cases[] = {
	        {"bom.example", "bom.example"},     /* BOM stripped, CRLF */
	        {"plain.example", "plain.example"}, /* trailing blanks */
	        {"x.plain.example", "plain.example"},
	        {"wild.example", NULL}, /* "*.wild.example" */
	        {"a.wild.example", "*.wild.example"},
	        {"inline.example", "inline.example"}, /* "# comment" after it */
	        {"hosts1.example", "hosts1.example"},
	        {"hosts2.example", "hosts2.example"}, /* several names a line */
	        {"www.hosts3.example", "hosts3.example"},
	        {"localhost", NULL}, /* skipped, not invalid */
	        {"ip6-loopback", NULL},
	        {"adblock.example", "adblock.example"},
	        {"sub.adblock.example", "adblock.example"},
	        {"adblock-imp.example", "adblock-imp.example"},
	        {"opts.example", NULL},      /* adblock options */
	        {"exception.example", NULL}, /* adblock exception */
	        {"example.org", NULL},       /* cosmetic "##" rule */
	        {"two.example", NULL},
	        {"good.example", "good.example"}, /* kept from a bad line */
	        {"upper.example", "upper.example"},
	        {"indented.example", "indented.example"},           /* tab, CR */
	        {"last.example", "last.example"},                   /* no final newline */
	        {"xn--bcher-kva.example", "xn--bcher-kva.example"}, /* "bücher.example" */
	        {"example.com", NULL},                              /* from "example.com:8080" */
	        {"sub1.example", "sub1.example"},
	        {"inline-rule.example", "inline-rule.example"},
	};
	for (size_t i = 0; i < DK_ARRAY_SIZE(cases); i++) {
		const char *id = verdict(p, cases[i].name, entry, sizeof(entry));
		if (!cases[i].entry && id)
			fail_msg("%s matched %s", cases[i].name, entry);
		if (cases[i].entry && (!id || strcmp(entry, cases[i].entry) != 0))
			fail_msg("%s: got %s, want %s", cases[i].name, id ? entry : "no match",
			         cases[i].entry);
	}
	/* The rule's own set holds the same entries. */
	assert_non_null(p->rules[0].own);
	assert_int_equal(dk_suffixset_count(p->rules[0].own), dk_suffixset_count(p->set));
	dk_policy_unref(p);
}

/* A generated list: counts must follow what was written, line for line. */
static void test_list_generated(void **state)
{
	char dir[] = "/tmp/dk-test-rules-XXXXXX";
	char rule[128], list[128];
	const size_t n = 20000;
	size_t want_valid = 0, want_invalid = 0;
	unsigned first_bad = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(rule, sizeof(rule), "%s/r.yml", dir);
	snprintf(list, sizeof(list), "%s/l.txt", dir);
	FILE *f = fopen(list, "w");
	assert_non_null(f);
	for (size_t i = 0; i < n; i++) {
		switch (i % 7) {
		case 3:
			fprintf(f, "10.0.%zu.%zu\n", i / 250 % 250, i % 250);
			want_invalid++;
			if (!first_bad)
				first_bad = (unsigned)i + 1;
			break;
		case 5: fprintf(f, "# comment %zu\n", i); break;
		case 6:
			fprintf(f, "0.0.0.0 h%zu.example\r\n", i);
			want_valid++;
			break;
		default: fprintf(f, "n%zu.example\n", i); want_valid++;
		}
	}
	fclose(f);
	f = fopen(rule, "w");
	assert_non_null(f);
	fprintf(f, "id: Gen\nname: generated\nseverity: low\naction: nxdomain\n"
	           "domain_files: [l.txt]\n");
	fclose(f);

	struct dk_policy *p = load_ok(rule, 0);
	unlink(rule);
	unlink(list);
	rmdir(dir);
	assert_int_equal(p->lists[0].lines, n);
	assert_int_equal(p->lists[0].entries, want_valid);
	assert_int_equal(p->lists[0].invalid, want_invalid);
	assert_int_equal(p->lists[0].first_invalid_line, first_bad);
	assert_int_equal(p->n_names, want_valid);
	char entry[64];
	assert_string_equal(verdict(p, "x.h6.example", entry, sizeof(entry)), "Gen");
	assert_null(verdict(p, "n3.example", entry, sizeof(entry)));
	dk_policy_unref(p);
}

/*
 * A list read in chunks (1 MiB): names that straddle a chunk boundary, a
 * byte order mark, a hosts line longer than a chunk and a last line
 * without a newline all load as written.
 */
static void test_list_chunks(void **state)
{
	char dir[] = "/tmp/dk-test-rules-XXXXXX";
	char rule[128], list[128], name[64], entry[64];
	const size_t n = 150000, wide = 70000;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(rule, sizeof(rule), "%s/r.yml", dir);
	snprintf(list, sizeof(list), "%s/l.txt", dir);
	FILE *f = fopen(list, "w");
	assert_non_null(f);
	fputs("\xEF\xBB\xBF", f);
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "n%zu.chunk.example\n", i);
		if (i == n / 2) {
			/* One hosts line of 70,000 names, about 1.3 MiB. */
			fputs("0.0.0.0", f);
			for (size_t k = 0; k < wide; k++)
				fprintf(f, " w%zu.example", k);
			fputc('\n', f);
		}
	}
	fputs("last.chunk.example", f);
	fclose(f);
	f = fopen(rule, "w");
	assert_non_null(f);
	fprintf(f, "id: Chunks\nname: chunks\nseverity: low\naction: nxdomain\n"
	           "domain_files: [l.txt]\n");
	fclose(f);

	struct dk_policy *p = load_ok(rule, 0);
	unlink(rule);
	unlink(list);
	rmdir(dir);
	assert_int_equal(p->lists[0].lines, n + 2);
	assert_int_equal(p->lists[0].entries, n + wide + 1);
	assert_int_equal(p->lists[0].invalid, 0);
	assert_int_equal(p->n_names, n + wide + 1);
	for (size_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "n%zu.chunk.example", i);
		assert_non_null(verdict(p, name, entry, sizeof(entry)));
	}
	for (size_t k = 0; k < wide; k += 997) {
		snprintf(name, sizeof(name), "a.w%zu.example", k);
		assert_non_null(verdict(p, name, entry, sizeof(entry)));
	}
	assert_non_null(verdict(p, "last.chunk.example", entry, sizeof(entry)));
	assert_null(verdict(p, "chunk.example", entry, sizeof(entry)));
	dk_policy_unref(p);
}

/* ---- warnings ------------------------------------------------------------------- */

struct warned {
	char text[8][300];
	size_t n;
};

static void note_warning(void *ctx, const char *file, unsigned line, const char *msg)
{
	struct warned *w = ctx;

	if (w->n < DK_ARRAY_SIZE(w->text))
		snprintf(w->text[w->n++], sizeof(w->text[0]), "%s:%u: %s", file, line, msg);
}

static bool warned_with(const struct warned *w, const char *a, const char *b)
{
	for (size_t i = 0; i < w->n; i++) {
		if (strstr(w->text[i], a) && strstr(w->text[i], b))
			return true;
	}
	return false;
}

static void test_warnings(void **state)
{
	struct dk_policy *p = load_ok(DATA "loud/loud.yml", 0);
	struct warned w = {0};
	char at[64];

	(void)state;
	size_t n = dk_policy_warnings(p, note_warning, &w);
	for (size_t i = 0; i < w.n; i++)
		print_message("%s\n", w.text[i]);
	assert_int_equal(n, 4);
	/* 4 of 5 lines of the CSV are invalid; the first is line 1. */
	assert_true(warned_with(&w, DATA "loud/dyndns.csv:1: ", "4 of 5 lines are invalid"));
	assert_true(warned_with(&w, DATA "loud/empty.txt:0: ", "list loads 0 entries"));
	/* tlds.txt warns for the rule that did not ask for TLDs, not for the one that did. */
	assert_true(warned_with(&w, DATA "loud/tlds.txt:1: ", "rule Loud.Lists "));
	assert_false(warned_with(&w, "tlds.txt", "Loud.TLDs.Intended"));
	snprintf(at, sizeof(at),
	         DATA "loud/loud.yml:%u: ", line_of_marker(DATA "loud/loud.yml", "  - example "));
	assert_true(warned_with(&w, at, "1 single-label entries in 'domains'"));
	assert_false(warned_with(&w, "loud.yml", "Loud.TLDs.Intended"));
	/* The rest loads as usual: a warning is no error. */
	char entry[64];
	assert_string_equal(verdict(p, "x.example", entry, sizeof(entry)), "Loud.Lists");
	assert_string_equal(verdict(p, "a.zip", entry, sizeof(entry)), "Loud.TLDs.Intended");
	dk_policy_unref(p);

	/* The shipped rules are quiet. */
	p = load_ok("rules/", 0);
	assert_int_equal(dk_policy_warnings(p, note_warning, &w), 0);
	dk_policy_unref(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_shipped_rules),  cmocka_unit_test(test_errors),
	        cmocka_unit_test(test_mitre_forms),    cmocka_unit_test(test_duplicate_ids),
	        cmocka_unit_test(test_folder_order),   cmocka_unit_test(test_list_formats),
	        cmocka_unit_test(test_list_generated), cmocka_unit_test(test_list_chunks),
	        cmocka_unit_test(test_warnings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
