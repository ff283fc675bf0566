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
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dnsink/common.h"
#include "dnsink/config.h"
#include "dnsink/load.h"
#include "dnsink/idna.h"
#include "dnsink/name.h"
#include "dnsink/policy.h"
#include "dnsink/sigma.h"
#include "dnsink/suffixset.h"
#include "dnsink/upstream_spec.h"

#include <ldns/rr.h>

#include "cli.h"
#include "cli_groups.h"

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

/* The rules of @p cfg (RPZ copies from its state_dir) with its client groups, as the daemon runs
 * them. */
static int load_rules(const struct dk_config *cfg, struct dk_policy **p)
{
	struct dk_diag d = {0};

	if (load_policy_state((const char *const *)cfg->rules, cfg->n_rules, cfg->state_dir, 0, p))
		return 1;
	/* As the daemon loads: Sigma actions first, then the groups' views that copy them. */
	if (dk_load_apply(cfg, *p, &d) < 0) {
		print_diag(&d);
		dk_policy_unref(*p);
		*p = NULL;
		return 1;
	}
	return 0;
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

/* How a loaded Sigma rule runs, for `check`: "suffix+vectorscan, answer-side". */
static void sigma_how(unsigned how, char *out, size_t size)
{
	static const struct {
		unsigned bit;
		const char *name;
	} parts[] = {
	        {DK_SIGMA_HOW_SUFFIX, "suffix-set"},
	        {DK_SIGMA_HOW_HS, "vectorscan"},
	        {DK_SIGMA_HOW_PCRE, "pcre2"},
	        {DK_SIGMA_HOW_DIRECT, "direct"},
	        {DK_SIGMA_HOW_ANSWER, "answer-side"},
	        {DK_SIGMA_HOW_COUNT, "behavioural"},
	        {DK_SIGMA_HOW_NOALERT, "feeds-correlation"},
	};
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		if (!(how & parts[i].bit) || o >= size)
			continue;
		o += (size_t)snprintf(out + o, size - o, "%s%s", o ? "+" : "", parts[i].name);
	}
	if (!out[0])
		snprintf(out, size, "direct");
}

static void print_sigma(const struct dk_policy *p)
{
	const struct dk_sigma_report *rep = &p->sigma_report;
	static const char *const st[] = {"loaded", "skipped", "rejected"};

	if (!rep->n)
		return;
	printf("sigma:\n");
	for (size_t i = 0; i < rep->n; i++) {
		const struct dk_sigma_entry *e = &rep->entries[i];
		char how[128];
		if (e->status == DK_SIGMA_LOADED) {
			const struct dk_rule *r = &p->rules[e->rule_index];
			sigma_how(e->how, how, sizeof(how));
			printf("  %-8s %s  action %s severity %s  [%s]  %s  (%s:%u)\n",
			       st[e->status], e->id, dk_action_name(r->action),
			       dk_severity_name(r->severity), how, e->title ? e->title : "",
			       e->file, e->line);
			if (e->note)
				printf("           note: %s\n", e->note);
		} else {
			printf("  %-8s %s  %s: %s  (%s:%u)\n", st[e->status], e->id,
			       e->title ? e->title : "", e->reason ? e->reason : "", e->file,
			       e->line);
		}
	}
	printf("sigma total: %zu loaded, %zu skipped (not DNS), %zu rejected\n", rep->loaded,
	       rep->skipped, rep->rejected);
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

int dk_cli_check(const char *config_path, bool strict)
{
	struct dk_config *cfg = NULL;
	struct dk_policy *p = NULL;

	if (load_config(config_path, &cfg))
		return 1;
	double t0 = (double)dk_mono_ns() / 1e6;
	if (load_rules(cfg, &p)) {
		dk_config_free(cfg);
		return 1;
	}
	double ms = (double)dk_mono_ns() / 1e6 - t0;

	printf("config         %s\n", config_path);
	print_addrs("listen", cfg->listen, cfg->n_listen, " (udp+tcp)");
	printf("%-14s", "upstreams");
	for (size_t i = 0; i < cfg->n_upstreams; i++) {
		char up[400];
		if (dk_upstream_format(cfg, i, up, sizeof(up)) < 0)
			snprintf(up, sizeof(up), "?");
		printf(" %s", up);
	}
	printf("%s\n", cfg->upstreams_from_resolv ? " (from /etc/resolv.conf)" : "");
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
		if (r->sigma || r->variant)
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
	dk__cli_print_groups(p);
	printf("\ntotal: %zu rules, %zu entries, %zu distinct names, %zu invalid list lines, "
	       "%zu KiB, loaded in %.1f ms\n",
	       dk_policy_rule_count(p), p->n_entries, p->n_names, p->n_invalid,
	       dk_suffixset_bytes(p->set) / 1024, ms);
	print_sigma(p);
	/* Last, so that they stand out below the summary. */
	dk_policy_warnings(p, print_warning, NULL);
	int status = strict && p->sigma_report.rejected ? 1 : 0;
	if (status)
		fprintf(stderr, "check: --strict: %zu Sigma rules rejected\n",
		        p->sigma_report.rejected);
	dk_policy_unref(p);
	dk_config_free(cfg);
	return status;
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

/* The query type of `match --type`: a name ("TXT", "TYPE65") or a number. */
static int type_arg(const char *s)
{
	char *end;
	unsigned long n = strtoul(s, &end, 10);

	if (*s && !*end)
		return n <= 65535 ? (int)n : -1;
	ldns_rr_type t = ldns_get_rr_type_by_name(s);
	return t ? (int)t : -1;
}

/*
 * Prints the Sigma rules @p hits names for one name, with the actions of
 * group view @p view (NULL: as loaded); returns how many it printed.
 */
static unsigned print_sigma_hits(const struct dk_policy *p, const uint8_t *view, const char *text,
                                 const struct dk_sigma_hits *hits)
{
	unsigned printed = 0;

	for (unsigned i = 0; i < hits->n_eng; i++) {
		const struct dk_rule *r = &p->rules[hits->all[i]];
		uint8_t action = view ? view[hits->all[i]] : (uint8_t)r->action;
		bool alerts = false;
		if (action == DK_GROUP_OFF)
			continue;
		for (unsigned j = 0; j < hits->n; j++)
			alerts |= hits->rule[j] == hits->all[i];
		printf("%s: sigma rule %s action %s (severity %s) %s%s\n", text, r->id,
		       dk_action_name((enum dk_action)action), dk_severity_name(r->severity),
		       r->name,
		       alerts ? "" : " [counted by a behavioural rule, no alert of its own]");
		printed++;
	}
	return printed;
}

int dk_cli_match(const char *config_path, const struct dk_cli_match_opts *o, char *const *names,
                 int n)
{
	struct dk_config *cfg = NULL;
	struct dk_policy *p = NULL;
	struct dk_sigma_scratch *sc = NULL;
	struct dk_addr client;
	int status = 0;
	int qtype = type_arg(o->type);
	bool bad;

	if (qtype < 0) {
		fprintf(stderr, "match: --type %s: not a record type\n", o->type);
		return 2;
	}
	if (dk_addr_parse(o->client, 0, &client) < 0) {
		fprintf(stderr, "match: --client %s: not an address\n", o->client);
		return 2;
	}
	if (load_config(config_path, &cfg))
		return 1;
	if (load_rules(cfg, &p)) {
		dk_config_free(cfg);
		return 1;
	}
	/* The verdict is the one this client's group gets (dnsink(8): the client is 127.0.0.1
	 * unless --client says otherwise). */
	const struct dk_group *g = dk__cli_group_of(p, o->client, &bad);
	if (bad) {
		fprintf(stderr, "--client %s: not an IP address\n", o->client);
		dk_policy_unref(p);
		dk_config_free(cfg);
		return 2;
	}
	const uint8_t *view = g ? dk_group_view(p->groups, g) : NULL;
	char in_group[96] = "";
	if (g)
		snprintf(in_group, sizeof(in_group), " group %s", g->name);
	if (dk_sigma_scratch_new(p->sigma, &sc) < 0) {
		fprintf(stderr, "match: out of memory\n");
		dk_policy_unref(p);
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
		struct dk_sigma_query sq = {.qname = wire,
		                            .qname_len = len,
		                            .qtype = (uint16_t)qtype,
		                            .client = &client.sa};
		struct dk_sigma_hits hits;
		dk_sigma_match_query(p->sigma, sc, &sq, &hits);
		unsigned ns = print_sigma_hits(p, view, text, &hits);
		if (!dk_group_match(p, g, view, wire, len, &v)) {
			if (!ns)
				printf("%s: no match%s\n", text, in_group);
			continue;
		}
		if (dk_verdict_entry_text(&v, wire, len, entry, sizeof(entry)) < 0)
			snprintf(entry, sizeof(entry), "?");
		printf("%s: rule %s action %s matched %s (severity %s)%s\n", text, v.rule->id,
		       dk_action_name((enum dk_action)v.action), entry,
		       dk_severity_name(v.rule->severity), in_group);
	}
	fflush(stdout);
	dk_sigma_scratch_free(sc);
	dk_policy_unref(p);
	dk_config_free(cfg);
	return status;
}

int dk_cli_test(const char *config_path, char *const *paths, int n)
{
	static const char *const def[] = {DK_DEFAULT_RULES};
	const char *const *list = n > 0 ? (const char *const *)paths : def;
	size_t count = n > 0 ? (size_t)n : 1;
	struct dk_policy *p = NULL;
	struct dk_config *cfg = NULL;
	size_t passed = 0, failed = 0;

	if (load_policy(list, count, DK_POLICY_PER_RULE_SETS, &p))
		return 1;
	/* With -c, a test that names a client is judged as the client's group sees its rule. */
	if (config_path) {
		struct dk_diag d = {0};
		if (load_config(config_path, &cfg) || dk_load_groups(cfg, p, &d) < 0) {
			if (d.msg[0])
				print_diag(&d);
			dk_config_free(cfg);
			dk_policy_unref(p);
			return 1;
		}
	}
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
			const char *group = "";
			if (got && t->client) {
				bool bad;
				const struct dk_group *g = dk__cli_group_of(p, t->client, &bad);
				const uint8_t *view = g ? dk_group_view(p->groups, g) : NULL;
				got = !view || view[r->index] != DK_GROUP_OFF;
				group = g ? g->name : "";
			}
			if (got == t->expect) {
				passed++;
				continue;
			}
			failed++;
			printf("FAIL %s: %s: query %s%s%s%s%s expected %s, got ", r->id, t->name,
			       t->query, t->client ? " client " : "", t->client ? t->client : "",
			       *group ? " group " : "", group, t->expect ? "match" : "no match");
			if (got && dk_verdict_entry_text(&v, wire, len, entry, sizeof(entry)) >= 0)
				printf("match on %s (%s:%u)\n", entry, r->file, t->line);
			else
				printf("no match (%s:%u)\n", r->file, t->line);
		}
	}
	if (dk__cli_sigma_tests(p, &passed, &failed) < 0) {
		fprintf(stderr, "test: out of memory\n");
		failed++;
	}
	printf("%zu passed, %zu failed\n", passed, failed);
	dk_policy_unref(p);
	dk_config_free(cfg);
	return failed ? 1 : 0;
}
