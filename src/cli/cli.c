/* SPDX-License-Identifier: MIT */
/*
 * The offline subcommands. `check` loads the configuration and every rule and
 * prints what the server would run with; `match` prints the verdict the server
 * would give for names; `test` runs the tests embedded in rule files, each
 * judging its rule alone, as Panther's rule tests do. Output is line-oriented
 * and stable so scripts can grep it; errors read FILE:LINE: message.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dnsink/config.h"
#include "dnsink/idna.h"
#include "dnsink/name.h"
#include "dnsink/policy.h"
#include "dnsink/suffixset.h"

#include "cli.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void print_diag(const struct dk_diag *d)
{
	char buf[1200];

	dk_diag_format(d, buf, sizeof(buf));
	fprintf(stderr, "%s\n", buf);
}

static int load_config(const char *path, struct dk_config **cfg)
{
	struct dk_diag d = {0};
	int err = dk_config_load(path, NULL, cfg, &d);

	if (err) {
		if (!d.msg[0])
			dk_diag_set(&d, path, 0, "%s", dk_strerror(err));
		print_diag(&d);
	}
	return err;
}

static int load_policy_state(const char *const *paths, size_t n, const char *state_dir,
                             unsigned flags, struct dk_policy **p)
{
	struct dk_diag d = {0};
	int err = dk_policy_load_state(paths, n, NULL, state_dir, flags, p, &d);

	if (err) {
		if (!d.msg[0])
			dk_diag_set(&d, NULL, 0, "%s", dk_strerror(err));
		print_diag(&d);
	}
	return err;
}

static int load_policy(const char *const *paths, size_t n, unsigned flags, struct dk_policy **p)
{
	return load_policy_state(paths, n, NULL, flags, p);
}

static void print_cidr(const struct dk_cidr *c)
{
	char ip[INET6_ADDRSTRLEN];

	if (!inet_ntop(c->family, c->addr, ip, sizeof(ip)))
		snprintf(ip, sizeof(ip), "?");
	printf(" %s/%u", ip, c->prefix);
}

static void print_addrs(const char *what, const struct dk_addr *a, size_t n, const char *note)
{
	char buf[64];

	printf("%-14s", what);
	if (!n)
		printf(" (none)");
	for (size_t i = 0; i < n; i++) {
		if (dk_addr_format(&a[i], buf, sizeof(buf)) < 0)
			snprintf(buf, sizeof(buf), "?");
		printf(" %s", buf);
	}
	printf("%s\n", note);
}

/* How the daemon's last transfers or downloads of a feed went, from its status file. */
static void print_feed_status(const char *copy, const char *what)
{
	struct dk_feed_status fs;
	char when[32] = "never", ok[32] = "never";
	time_t t;
	struct tm tm;

	if (!copy || dk_feed_status_read(copy, &fs) < 0)
		return;
	if (fs.last_time > 0) {
		t = (time_t)fs.last_time;
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	}
	if (fs.last_ok_time > 0) {
		t = (time_t)fs.last_ok_time;
		strftime(ok, sizeof(ok), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	}
	printf("    last %s %s: %s, last good %s; %s\n", what, when, fs.last_result, ok,
	       fs.results);
}

static void print_zone(const struct dk_zone *z)
{
	const struct dk_rpz_stats *st = &z->st;

	printf("  %s: %zu triggers", z->origin, z->entries);
	if (st->has_soa)
		printf(", serial %u", st->serial);
	printf(" (qname %zu, client-ip %zu, ip %zu;", st->triggers[DK_RPZ_QNAME],
	       st->triggers[DK_RPZ_CLIENT_IP], st->triggers[DK_RPZ_IP]);
	for (int a = 0; a < DK_RPZ_ACTION_MAX; a++)
		printf(" %s %zu", dk_rpz_action_name((enum dk_rpz_action)a), st->actions[a]);
	printf("), %zu invalid records skipped", st->invalid);
	if (st->first_invalid_line)
		printf(" (first at line %u)", st->first_invalid_line);
	if (st->unsupported)
		printf(", %zu unsupported", st->unsupported);
	/* A forwarder sees no name servers: these triggers are read, counted and left out. */
	if (st->triggers[DK_RPZ_NSDNAME] || st->triggers[DK_RPZ_NSIP])
		printf(", %zu nsdname and %zu nsip triggers not evaluated",
		       st->triggers[DK_RPZ_NSDNAME], st->triggers[DK_RPZ_NSIP]);
	printf(" [%s] %s%s%s\n", z->rule->id,
	       z->from_state ? z->state_file
	       : z->file     ? z->file
	                     : "(no copy yet)",
	       z->primary ? " primary " : "", z->primary ? z->primary : "");
	if (z->primary)
		print_feed_status(z->state_file, "transfer");
}

static void print_warning(void *ctx, const char *file, unsigned line, const char *msg)
{
	(void)ctx;
	if (line)
		printf("%s:%u: warning: %s\n", file, line, msg);
	else
		printf("%s: warning: %s\n", file, msg);
}

int dk_cli_check(const char *config_path)
{
	struct dk_config *cfg = NULL;
	struct dk_policy *p = NULL;

	if (load_config(config_path, &cfg))
		return 1;
	double t0 = now_ms();
	if (load_policy_state((const char *const *)cfg->rules, cfg->n_rules, cfg->state_dir, 0,
	                      &p)) {
		dk_config_free(cfg);
		return 1;
	}
	double ms = now_ms() - t0;

	printf("config         %s\n", config_path);
	print_addrs("listen", cfg->listen, cfg->n_listen, " (udp+tcp)");
	print_addrs("upstreams", cfg->upstreams, cfg->n_upstreams,
	            cfg->upstreams_from_resolv ? " (from /etc/resolv.conf)" : "");
	printf("allow_clients ");
	if (!cfg->n_allow)
		printf(" (none: every query is refused)");
	for (size_t i = 0; i < cfg->n_allow; i++)
		print_cidr(&cfg->allow[i]);
	printf("\nrule paths    ");
	for (size_t i = 0; i < cfg->n_rules; i++)
		printf(" %s", cfg->rules[i]);
	printf("\n\n");

	printf("rules:\n");
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct dk_rule *r = &p->rules[i];
		if (r->variant)
			continue;
		/* An RPZ rule with variants acts as each record says. */
		const char *action = r->zone && r->zone->variant[DK_RPZ_NODATA] != r->index
		                             ? "rpz"
		                             : dk_action_name(r->action);
		printf("  %-32s action %-8s severity %-8s entries %zu%s  (%s:%u)\n", r->id, action,
		       dk_severity_name(r->severity), r->n_entries, r->alert ? "" : "  silent",
		       r->file, r->line);
	}
	if (p->n_urls)
		printf("urls:\n");
	for (size_t i = 0; i < p->n_urls; i++) {
		const struct dk_url_list *u = &p->urls[i];
		printf("  %s: refresh %u s, max_shrink %u%%, ", u->url, u->refresh_s,
		       u->max_shrink);
		if (u->list >= 0)
			printf("last good copy %zu entries (%s)", p->lists[u->list].entries,
			       u->state_file);
		else
			printf("no copy yet");
		printf(" [%s]\n", u->rule->id);
		print_feed_status(u->state_file, "download");
	}
	if (p->n_zones)
		printf("zones:\n");
	for (size_t i = 0; i < p->n_zones; i++)
		print_zone(&p->zones[i]);
	if (p->n_lists)
		printf("lists:\n");
	for (size_t i = 0; i < p->n_lists; i++) {
		const struct dk_list_stats *l = &p->lists[i];
		printf("  %s: %zu entries, %zu invalid lines skipped", l->file, l->entries,
		       l->invalid);
		if (l->first_invalid_line)
			printf(" (first at line %u)", l->first_invalid_line);
		printf(" [%s]\n", l->rule->id);
	}
	printf("\ntotal: %zu rules, %zu entries, %zu distinct names, %zu invalid list lines, "
	       "%zu KiB, loaded in %.1f ms\n",
	       dk_policy_rule_count(p), p->n_entries, p->n_names, p->n_invalid,
	       dk_suffixset_bytes(p->set) / 1024, ms);
	/* Last, so that they stand out below the summary. */
	dk_policy_warnings(p, print_warning, NULL);
	dk_policy_unref(p);
	dk_config_free(cfg);
	return 0;
}

/*
 * Reads a name as the server would see it in a query: any octet, escapes
 * decoded; a Unicode name as the A-label form a browser would ask for.
 */
static int name_arg(const char *text, uint8_t wire[DK_NAME_MAX], size_t *len)
{
	size_t n = strlen(text);

	/* The root name is written "."; "" is no name. */
	return dk_idna_name_from_text(text, n, 0, wire, len);
}

int dk_cli_match(const char *config_path, char *const *names, int n)
{
	struct dk_config *cfg = NULL;
	struct dk_policy *p = NULL;
	int status = 0;

	if (load_config(config_path, &cfg))
		return 1;
	if (load_policy_state((const char *const *)cfg->rules, cfg->n_rules, cfg->state_dir, 0,
	                      &p)) {
		dk_config_free(cfg);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		uint8_t wire[DK_NAME_MAX];
		size_t len;
		char text[DK_NAME_MAX * 4 + 1], entry[DK_NAME_MAX * 4 + 3];
		struct dk_verdict v;
		int err = name_arg(names[i], wire, &len);

		if (err) {
			fprintf(stderr, "%s: invalid name: %s\n", names[i], dk_strerror(err));
			status = 1;
			continue;
		}
		dk_name_to_text(wire, len, text, sizeof(text));
		if (!dk_policy_match(p, wire, len, &v)) {
			printf("%s: no match\n", text);
			continue;
		}
		if (dk_verdict_entry_text(&v, wire, len, entry, sizeof(entry)) < 0)
			snprintf(entry, sizeof(entry), "?");
		printf("%s: rule %s action %s matched %s (severity %s)\n", text, v.rule->id,
		       dk_action_name(v.rule->action), entry, dk_severity_name(v.rule->severity));
	}
	fflush(stdout);
	dk_policy_unref(p);
	dk_config_free(cfg);
	return status;
}

int dk_cli_test(char *const *paths, int n)
{
	static const char *const def[] = {DK_DEFAULT_RULES};
	const char *const *list = n > 0 ? (const char *const *)paths : def;
	size_t count = n > 0 ? (size_t)n : 1;
	struct dk_policy *p = NULL;
	size_t passed = 0, failed = 0;

	if (load_policy(list, count, DK_POLICY_PER_RULE_SETS, &p))
		return 1;
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct dk_rule *r = &p->rules[i];
		for (size_t j = 0; j < r->n_tests; j++) {
			const struct dk_rule_test *t = &r->tests[j];
			uint8_t wire[DK_NAME_MAX];
			size_t len;
			char entry[DK_NAME_MAX * 4 + 3];
			struct dk_verdict v;

			/* The loader checked the query; a failure here is a test failure too. */
			bool got = name_arg(t->query, wire, &len) == 0 &&
			           dk_rule_match(r, wire, len, &v);
			if (got == t->expect) {
				passed++;
				continue;
			}
			failed++;
			printf("FAIL %s: %s: query %s expected %s, got ", r->id, t->name, t->query,
			       t->expect ? "match" : "no match");
			if (got && dk_verdict_entry_text(&v, wire, len, entry, sizeof(entry)) >= 0)
				printf("match on %s (%s:%u)\n", entry, r->file, t->line);
			else
				printf("no match (%s:%u)\n", r->file, t->line);
		}
	}
	printf("%zu passed, %zu failed\n", passed, failed);
	dk_policy_unref(p);
	return failed ? 1 : 0;
}
