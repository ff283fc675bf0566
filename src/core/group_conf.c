/* SPDX-License-Identifier: MIT */
/*
 * The "groups:" config key (see group_conf.h and dnsink.yml(5), CLIENT GROUPS):
 *
 *   groups:
 *     - name: build-servers
 *       clients: [10.1.0.0/16, "fd00:1::/64"]
 *       disable: [DNS.Crypto.MiningPool]          # rule ids or tags
 *       enable: [...]                             # undo a disable (schedules)
 *       actions: { DNS.DynDNS.SuspiciousProvider: sinkhole }
 *       allow: [updates.example.com, "*.cdn.example.com"]
 *       allow_clients: [10.1.2.0/24]              # replaces the global list
 *       schedules:
 *         - days: [mon-fri]
 *           hours: "22:00-06:00"
 *           tz: Europe/Berlin
 *           enable: [...]  disable: [...]  actions: {...}
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dnsink/config.h"
#include "dnsink/groups.h"
#include "dnsink/schedule.h"
#include "group_conf.h"
#include "yaml_helpers.h"

static void refs_free(struct dk_group_ref *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(r[i].text);
	free(r);
}

static void rules_deinit(struct dk_group_rules *r)
{
	refs_free(r->disable, r->n_disable);
	refs_free(r->enable, r->n_enable);
	for (size_t i = 0; i < r->n_actions; i++)
		free(r->actions[i].rule);
	free(r->actions);
}

void dk_group_confs_free(struct dk_group_conf *g, size_t n)
{
	if (!g)
		return;
	for (size_t i = 0; i < n; i++) {
		free(g[i].name);
		refs_free(g[i].clients, g[i].n_clients);
		rules_deinit(&g[i].rules);
		refs_free(g[i].allow, g[i].n_allow);
		refs_free(g[i].allow_clients, g[i].n_allow_clients);
		for (size_t s = 0; s < g[i].n_schedules; s++) {
			free(g[i].schedules[s].tz);
			rules_deinit(&g[i].schedules[s].rules);
		}
		free(g[i].schedules);
	}
	free(g);
}

struct gctx {
	yaml_document_t *doc;
	const char *path;
	struct dk_diag *diag;
};

#define FAIL(c, node, code, ...)                                                                   \
	(dk_diag_set((c)->diag, (c)->path, dk__yaml_line(node), __VA_ARGS__), (code))

static int want_text(struct gctx *c, yaml_node_t *n, const char *what, const char **out)
{
	const char *s = dk__yaml_scalar(n);

	if (!s || !*s || dk__yaml_has_nul(n))
		return FAIL(c, n, DK_ESCHEMA, "groups: %s: expected a non-empty string, got %s",
		            what, dk__yaml_kind(n));
	*out = s;
	return 0;
}

static int want_seq(struct gctx *c, yaml_node_t *n, const char *what)
{
	if (n->type != YAML_SEQUENCE_NODE)
		return FAIL(c, n, DK_ESCHEMA, "groups: %s: expected a list, got %s", what,
		            dk__yaml_kind(n));
	return 0;
}

static int refs_parse(struct gctx *c, yaml_node_t *n, const char *what, struct dk_group_ref **out,
                      size_t *n_out)
{
	int rc = want_seq(c, n, what);
	if (rc)
		return rc;
	size_t len = dk__yaml_seq_len(n);
	struct dk_group_ref *r = calloc(len ? len : 1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	*out = r;
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *it = dk__yaml_seq_item(c->doc, n, i);
		const char *s;
		if ((rc = want_text(c, it, what, &s)))
			return rc;
		if (!(r[i].text = strdup(s)))
			return -ENOMEM;
		r[i].line = dk__yaml_line(it);
		*n_out = i + 1;
	}
	return 0;
}

static int actions_parse(struct gctx *c, yaml_node_t *n, struct dk_group_rules *rs)
{
	if (n->type != YAML_MAPPING_NODE)
		return FAIL(c, n, DK_ESCHEMA,
		            "groups: actions: expected a mapping of rule id to action, got %s",
		            dk__yaml_kind(n));
	size_t len = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	rs->actions = calloc(len ? len : 1, sizeof(*rs->actions));
	if (!rs->actions)
		return -ENOMEM;
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		const char *id, *act;
		struct dk_group_action *a = &rs->actions[rs->n_actions];
		int rc;

		if ((rc = want_text(c, k, "actions", &id)) ||
		    (rc = want_text(c, v, "actions", &act)))
			return rc;
		if (dk__yaml_earlier_key(c->doc, n, p))
			return FAIL(c, k, DK_EDUP, "groups: actions: rule '%s' given twice", id);
		if (dk_action_parse(act, &a->action) < 0)
			return FAIL(c, v, DK_ESCHEMA,
			            "groups: actions: '%s' is not an action (sinkhole, nxdomain, "
			            "refused, alert, allow)",
			            act);
		if (!(a->rule = strdup(id)))
			return -ENOMEM;
		a->line = dk__yaml_line(k);
		rs->n_actions++;
	}
	return 0;
}

/* A key of a group or schedule that changes rules; 1 when @p key is none of them. */
static int rules_key(struct gctx *c, const char *key, yaml_node_t *v, struct dk_group_rules *rs)
{
	if (!strcmp(key, "disable"))
		return refs_parse(c, v, "disable", &rs->disable, &rs->n_disable);
	if (!strcmp(key, "enable"))
		return refs_parse(c, v, "enable", &rs->enable, &rs->n_enable);
	if (!strcmp(key, "actions"))
		return actions_parse(c, v, rs);
	return 1;
}

static int days_parse(struct gctx *c, yaml_node_t *v, uint8_t *days)
{
	const char *s = "";
	int rc;

	if (v->type == YAML_SCALAR_NODE) {
		if ((rc = want_text(c, v, "days", &s)))
			return rc;
		if (dk_sched_parse_days(s, days) < 0)
			goto bad;
		return 0;
	}
	if ((rc = want_seq(c, v, "days")))
		return rc;
	for (size_t i = 0; i < dk__yaml_seq_len(v); i++) {
		yaml_node_t *it = dk__yaml_seq_item(c->doc, v, i);
		if ((rc = want_text(c, it, "days", &s)))
			return rc;
		if (dk_sched_parse_days(s, days) < 0) {
			v = it;
			goto bad;
		}
	}
	return 0;
bad:
	return FAIL(c, v, DK_ESCHEMA,
	            "groups: days: '%s' is not a day (mon..sun), a range "
	            "(mon-fri) or all",
	            s);
}

static int sched_parse(struct gctx *c, yaml_node_t *n, struct dk_group_sched_conf *sc)
{
	bool has_hours = false;
	int rc;

	if (n->type != YAML_MAPPING_NODE)
		return FAIL(c, n, DK_ESCHEMA, "groups: schedules: expected a mapping, got %s",
		            dk__yaml_kind(n));
	sc->line = dk__yaml_line(n);
	sc->window.start = 0;
	sc->window.end = 1440;
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		const char *key = dk__yaml_scalar(k), *s = "";

		if (!key)
			return FAIL(c, k, DK_ESCHEMA, "groups: keys must be plain words");
		if (dk__yaml_earlier_key(c->doc, n, p))
			return FAIL(c, k, DK_EDUP, "groups: schedules: duplicate key '%s'", key);
		if (!strcmp(key, "days")) {
			rc = days_parse(c, v, &sc->window.days);
		} else if (!strcmp(key, "hours")) {
			if ((rc = want_text(c, v, "hours", &s)))
				return rc;
			if (dk_sched_parse_hours(s, &sc->window) < 0)
				return FAIL(c, v, DK_ESCHEMA,
				            "groups: hours: '%s' is not HH:MM-HH:MM (a non-empty "
				            "window; 00:00-24:00 is the whole day)",
				            s);
			has_hours = true;
		} else if (!strcmp(key, "tz")) {
			if ((rc = want_text(c, v, "tz", &s)))
				return rc;
			if (!dk_tz_valid(s))
				return FAIL(c, v, DK_ESCHEMA,
				            "groups: tz: '%s' is not a zone of the time zone "
				            "database (Europe/Berlin, UTC...) nor 'local'",
				            s);
			free(sc->tz);
			if (!(sc->tz = strdup(s)))
				return -ENOMEM;
		} else if ((rc = rules_key(c, key, v, &sc->rules)) == 1) {
			return FAIL(c, k, DK_ESCHEMA,
			            "groups: unknown key '%s' in a schedule "
			            "(days, hours, tz, disable, enable, actions)",
			            key);
		}
		if (rc)
			return rc;
	}
	(void)has_hours;
	if (!sc->window.days)
		return FAIL(c, n, DK_ESCHEMA, "groups: a schedule needs 'days'");
	if (!sc->tz && !(sc->tz = strdup("local")))
		return -ENOMEM;
	return 0;
}

static int group_parse(struct gctx *c, yaml_node_t *n, struct dk_group_conf *g)
{
	int rc;

	if (n->type != YAML_MAPPING_NODE)
		return FAIL(c, n, DK_ESCHEMA, "groups: expected a mapping per group, got %s",
		            dk__yaml_kind(n));
	g->line = dk__yaml_line(n);
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		const char *key = dk__yaml_scalar(k), *s = "";

		if (!key)
			return FAIL(c, k, DK_ESCHEMA, "groups: keys must be plain words");
		if (dk__yaml_earlier_key(c->doc, n, p))
			return FAIL(c, k, DK_EDUP, "groups: duplicate key '%s'", key);
		if (dk__yaml_is_null(v))
			continue;
		if (!strcmp(key, "name")) {
			if ((rc = want_text(c, v, "name", &s)))
				return rc;
			for (const char *q = s; *q; q++)
				if (!(*q == '-' || *q == '_' || *q == '.' ||
				      (*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'z') ||
				      (*q >= 'A' && *q <= 'Z')))
					return FAIL(c, v, DK_ESCHEMA,
					            "groups: name '%s': letters, digits, '-', "
					            "'_' and '.' only",
					            s);
			if (strlen(s) > 64)
				return FAIL(c, v, DK_ESCHEMA, "groups: name longer than 64");
			if (!(g->name = strdup(s)))
				return -ENOMEM;
			g->line = dk__yaml_line(v);
		} else if (!strcmp(key, "clients")) {
			rc = refs_parse(c, v, "clients", &g->clients, &g->n_clients);
		} else if (!strcmp(key, "allow")) {
			rc = refs_parse(c, v, "allow", &g->allow, &g->n_allow);
		} else if (!strcmp(key, "allow_clients")) {
			g->has_allow_clients = true;
			rc = refs_parse(c, v, "allow_clients", &g->allow_clients,
			                &g->n_allow_clients);
		} else if (!strcmp(key, "schedules")) {
			if ((rc = want_seq(c, v, "schedules")))
				return rc;
			size_t len = dk__yaml_seq_len(v);
			g->schedules = calloc(len ? len : 1, sizeof(*g->schedules));
			if (!g->schedules)
				return -ENOMEM;
			for (size_t i = 0; i < len && !rc; i++) {
				g->n_schedules = i + 1;
				rc = sched_parse(c, dk__yaml_seq_item(c->doc, v, i),
				                 &g->schedules[i]);
			}
		} else if ((rc = rules_key(c, key, v, &g->rules)) == 1) {
			return FAIL(c, k, DK_ESCHEMA,
			            "groups: unknown key '%s' (name, clients, disable, enable, "
			            "actions, allow, allow_clients, schedules)",
			            key);
		}
		if (rc)
			return rc;
	}
	if (!g->name)
		return FAIL(c, n, DK_ESCHEMA, "groups: a group needs a 'name'");
	if (!g->n_clients && strcmp(g->name, DK_GROUP_DEFAULT) != 0)
		return FAIL(c, n, DK_ESCHEMA, "groups: group '%s' lists no 'clients'", g->name);
	return 0;
}

int dk__group_confs_parse(yaml_document_t *doc, yaml_node_t *n, const char *path,
                          struct dk_group_conf **out, size_t *n_out, struct dk_diag *diag)
{
	struct gctx c = {.doc = doc, .path = path, .diag = diag};
	int rc = want_seq(&c, n, "groups");

	if (rc)
		return rc;
	size_t len = dk__yaml_seq_len(n);
	struct dk_group_conf *g = calloc(len ? len : 1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	size_t done = 0;
	for (size_t i = 0; i < len && !rc; i++, done++)
		rc = group_parse(&c, dk__yaml_seq_item(doc, n, i), &g[i]);
	if (rc) {
		if (rc == -ENOMEM)
			dk_diag_set(diag, path, dk__yaml_line(n), "groups: out of memory");
		dk_group_confs_free(g, done);
		return rc;
	}
	*out = g;
	*n_out = len;
	return 0;
}
