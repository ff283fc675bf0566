/* SPDX-License-Identifier: MIT */
/*
 * Client groups (src/core/groups.c, group_conf.c): a config and rule files
 * written to a temporary folder and loaded as the daemon loads them
 * (dk_load()), then the group of a client and its view of the rules, the
 * schedules with a fake clock, and the FILE:LINE errors.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "dnsink/groups.h"
#include "dnsink/load.h"
#include "dnsink/name.h"
#include "dnsink/policy.h"

static char dir[64];

static const char rules_yml[] = "id: R.Mining\n"
                                "name: mining\n"
                                "severity: high\n"
                                "action: sinkhole\n"
                                "tags: [crypto]\n"
                                "domains: [pool.example, deep.pool.example]\n"
                                "---\n"
                                "id: R.DynDNS\n"
                                "name: dyndns\n"
                                "severity: medium\n"
                                "action: alert\n"
                                "domains: [\"*.dyn.example\"]\n"
                                "---\n"
                                "id: R.Wide\n"
                                "name: wide\n"
                                "severity: low\n"
                                "action: nxdomain\n"
                                "tags: [crypto, wide]\n"
                                "domains: [example]\n";

static void write_file(const char *name, const char *text)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/dk-groups-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	write_file("rules.yml", rules_yml);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Loads a config of @p groups (the text after "groups:"); 0 or the error with @p diag. */
static int load(const char *groups, struct dk_config **cfg, struct dk_policy **pol,
                struct dk_diag *diag)
{
	char text[4096], path[128];
	snprintf(text, sizeof(text),
	         "upstreams: [127.0.0.1:5399]\n"
	         "rules: [%s/rules.yml]\n"
	         "groups:\n%s",
	         dir, groups);
	write_file("dnsink.yml", text);
	snprintf(path, sizeof(path), "%s/dnsink.yml", dir);
	return dk_load(path, NULL, cfg, pol, diag);
}

static const struct dk_group *group_of(const struct dk_policy *p, const char *ip)
{
	struct sockaddr_storage ss = {0};
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
	} else {
		struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
		in4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, &in4->sin_addr), 1);
	}
	return dk_groups_lookup(p->groups, (struct sockaddr *)&ss);
}

/* "rule-id action" for @p name asked by @p ip, or "-" for no match. */
static const char *verdict(const struct dk_policy *p, const char *ip, const char *name)
{
	static char out[128];
	uint8_t wire[DK_NAME_MAX];
	size_t len;
	struct dk_verdict v;
	const struct dk_group *g = group_of(p, ip);

	assert_int_equal(dk_name_from_text(name, strlen(name), 0, wire, &len), 0);
	if (!dk_group_match(p, g, dk_group_view(p->groups, g), wire, len, &v))
		return "-";
	snprintf(out, sizeof(out), "%s %s", v.rule->id, dk_action_name(v.action));
	return out;
}

static const char base_groups[] = "  - name: lab\n"
                                  "    clients: [127.0.0.2/32, \"fd00:1::/64\"]\n"
                                  "    disable: [R.Mining]\n"
                                  "    actions: { R.DynDNS: sinkhole }\n"
                                  "    allow: [ok.example]\n"
                                  "  - name: wide\n"
                                  "    clients: [127.0.0.0/8]\n"
                                  "    disable: [crypto]\n"
                                  "    allow: [example]\n"
                                  "  - name: quiet\n"
                                  "    clients: [\"::1/128\"]\n"
                                  "    allow_clients: []\n";

static void test_views(void **state)
{
	struct dk_config *cfg;
	struct dk_policy *pol;
	struct dk_diag d;

	(void)state;
	int rc = load(base_groups, &cfg, &pol, &d);
	if (rc)
		fail_msg("%s:%u: %s", d.file, d.line, d.msg);
	assert_non_null(pol->groups);
	assert_int_equal(pol->groups->n, 4);
	assert_string_equal(group_of(pol, "10.0.0.1")->name, "default");
	assert_string_equal(group_of(pol, "127.0.0.2")->name, "lab");
	assert_string_equal(group_of(pol, "127.0.0.3")->name, "wide");
	assert_string_equal(group_of(pol, "fd00:1::9")->name, "lab");
	assert_string_equal(group_of(pol, "::1")->name, "quiet");
	assert_true(group_of(pol, "::1")->own_acl);
	assert_int_equal(group_of(pol, "::1")->n_acl, 0);

	/* default: the rules as loaded. */
	assert_string_equal(verdict(pol, "10.0.0.1", "pool.example"), "R.Mining sinkhole");
	assert_string_equal(verdict(pol, "10.0.0.1", "a.dyn.example"), "R.DynDNS alert");
	assert_string_equal(verdict(pol, "10.0.0.1", "ok.example"), "R.Wide nxdomain");
	/* lab: mining off, so the shorter entry of R.Wide decides; DynDNS sinkholed. */
	assert_string_equal(verdict(pol, "127.0.0.2", "pool.example"), "R.Wide nxdomain");
	assert_string_equal(verdict(pol, "127.0.0.2", "x.deep.pool.example"), "R.Wide nxdomain");
	assert_string_equal(verdict(pol, "127.0.0.2", "a.dyn.example"), "R.DynDNS sinkhole");
	/* lab's own allow entry beats the shorter rule entry, and covers below it. */
	assert_string_equal(verdict(pol, "127.0.0.2", "ok.example"), "group:lab:allow allow");
	assert_string_equal(verdict(pol, "127.0.0.2", "a.ok.example"), "group:lab:allow allow");
	/* wide: the tag "crypto" turns off both tagged rules. */
	assert_string_equal(verdict(pol, "127.0.0.3", "pool.example"), "-");
	/* Its allow entry "example" is shorter than the rule's "*.dyn.example": the rule wins. */
	assert_string_equal(verdict(pol, "127.0.0.3", "a.dyn.example"), "R.DynDNS alert");
	/* quiet changes no rule: no tables of its own. */
	assert_null(group_of(pol, "::1")->views);
	dk_policy_unref(pol);
	dk_config_free(cfg);
}

static void test_default_entry(void **state)
{
	struct dk_config *cfg;
	struct dk_policy *pol;
	struct dk_diag d;

	(void)state;
	assert_int_equal(load("  - name: default\n"
	                      "    disable: [R.Wide]\n"
	                      "  - name: lab\n"
	                      "    clients: [10.0.0.0/8]\n",
	                      &cfg, &pol, &d),
	                 0);
	assert_int_equal(pol->groups->n, 2);
	assert_string_equal(verdict(pol, "192.0.2.1", "ok.example"), "-");
	assert_string_equal(verdict(pol, "10.0.0.1", "ok.example"), "R.Wide nxdomain");
	dk_policy_unref(pol);
	dk_config_free(cfg);
}

static void test_schedule(void **state)
{
	struct dk_config *cfg;
	struct dk_policy *pol;
	struct dk_diag d;

	(void)state;
	assert_int_equal(load("  - name: guest\n"
	                      "    clients: [192.168.50.0/24]\n"
	                      "    disable: [R.Wide]\n"
	                      "    schedules:\n"
	                      "      - days: [mon-fri]\n"
	                      "        hours: \"22:00-06:00\"\n"
	                      "        tz: Europe/Berlin\n"
	                      "        enable: [R.Wide]\n"
	                      "        actions: { R.DynDNS: refused }\n",
	                      &cfg, &pol, &d),
	                 0);
	struct dk_groups *gs = pol->groups;
	struct tm tm = {.tm_year = 126, .tm_mon = 11, .tm_mday = 1, .tm_hour = 12};
	int64_t noon = (int64_t)timegm(&tm); /* Tuesday 1 Dec 2026 12:00 UTC, 13:00 CET */

	assert_int_equal(dk_groups_tick(gs, noon), 0);
	assert_string_equal(verdict(pol, "192.168.50.7", "ok.example"), "-");
	assert_string_equal(verdict(pol, "192.168.50.7", "a.dyn.example"), "R.DynDNS alert");
	/* 21:30 UTC is 22:30 in Berlin: the night set applies. */
	assert_int_equal(dk_groups_tick(gs, noon + 9 * 3600 + 1800), 1);
	assert_string_equal(verdict(pol, "192.168.50.7", "ok.example"), "R.Wide nxdomain");
	assert_string_equal(verdict(pol, "192.168.50.7", "a.dyn.example"), "R.DynDNS refused");
	/* Other groups are not touched by it. */
	assert_string_equal(verdict(pol, "10.0.0.1", "a.dyn.example"), "R.DynDNS alert");
	/* Saturday 05:00 Berlin is still Friday's night; 06:00 is not. */
	int64_t sat = noon + 4 * 86400 - 12 * 3600 + 4 * 3600; /* Sat 04:00 UTC = 05:00 CET */
	assert_int_equal(dk_groups_tick(gs, sat), 1);
	assert_int_equal(dk_groups_tick(gs, sat + 3600), 0);
	/* Saturday night is not a weekday night. */
	assert_int_equal(dk_groups_tick(gs, sat + 18 * 3600), 0);
	dk_policy_unref(pol);
	dk_config_free(cfg);
}

/* The error of loading @p groups must be "dnsink.yml:LINE: ...@p what...". */
static void expect_error(const char *groups, unsigned line, const char *what)
{
	struct dk_config *cfg = (void *)1;
	struct dk_policy *pol = (void *)1;
	struct dk_diag d;
	char msg[600], want[64];

	assert_true(load(groups, &cfg, &pol, &d) < 0);
	assert_null(cfg);
	assert_null(pol);
	dk_diag_format(&d, msg, sizeof(msg));
	snprintf(want, sizeof(want), "dnsink.yml:%u: ", line);
	if (!strstr(msg, want) || !strstr(msg, what))
		fail_msg("got '%s', want line %u and '%s'", msg, line, what);
}

static void test_errors(void **state)
{
	(void)state;
	/* Line 4 is the first line of the group list (after upstreams, rules, groups). */
	expect_error("  - name: a\n"
	             "    clients: [10.0.0.0/8]\n"
	             "  - name: b\n"
	             "    clients: [10.1.0.0/16, 10.0.0.0/8]\n",
	             7, "prefix listed twice, in group 'a' and in group 'b' (line 5)");
	expect_error("  - name: a\n"
	             "    clients: [10.0.0.0/8]\n"
	             "    disable: [R.Mining, R.Nope]\n",
	             6, "unknown rule id or tag 'R.Nope'");
	expect_error("  - name: a\n"
	             "    clients: [10.0.0.0/8]\n"
	             "    actions:\n"
	             "      R.Missing: alert\n",
	             7, "action for unknown rule id 'R.Missing'");
	expect_error("  - name: a\n"
	             "    clients: [10.0.0.0/8]\n"
	             "    actions: { R.Mining: block }\n",
	             6, "'block' is not an action");
	expect_error("  - name: a\n"
	             "    clients: [10.0.0.0/33]\n",
	             5, "not an address or prefix");
	expect_error("  - name: a\n"
	             "    clients: [10.0.0.0/8]\n"
	             "  - name: a\n"
	             "    clients: [10.1.0.0/16]\n",
	             6, "group 'a' defined twice (first at line 4)");
	expect_error("  - name: a\n"
	             "    clients: [10.0.0.0/8]\n"
	             "    schedules:\n"
	             "      - days: [mon]\n"
	             "        hours: \"09:00-17:00\"\n"
	             "        tz: Mars/Olympus\n",
	             9, "'Mars/Olympus' is not a zone");
	expect_error("  - name: a\n"
	             "    clients: [10.0.0.0/8]\n"
	             "    schedules:\n"
	             "      - days: [someday]\n",
	             7, "'someday' is not a day");
	expect_error("  - name: a\n"
	             "    color: red\n",
	             5, "unknown key 'color'");
	expect_error("  - name: a\n", 4, "group 'a' lists no 'clients'");
	expect_error("  - name: default\n"
	             "    clients: [10.0.0.0/8]\n",
	             4, "group 'default' takes the clients no group names");
	expect_error("  - name: a\n"
	             "    clients: [10.0.0.0/8]\n"
	             "    allow: [\"bad..name\"]\n",
	             6, "allow entry 'bad..name' is not a domain name");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_views),
	        cmocka_unit_test(test_default_entry),
	        cmocka_unit_test(test_schedule),
	        cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
