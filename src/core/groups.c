/* SPDX-License-Identifier: MIT */
/*
 * Client groups, the built half (see groups.h): resolving the config against
 * a policy snapshot into verdict tables, the schedule mask, and matching a
 * name for a client's group.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsink/groups.h"
#include "dnsink/name.h"
#include "dnsink/prefix.h"
#include "dnsink/suffixset.h"

/* ---- building --------------------------------------------------------- */

struct build {
	const struct dk_policy *pol;
	const char *file;
	struct dk_diag *diag;
	struct dk_groups *gs;
};

static size_t n_rules_of(const struct dk_policy *p)
{
	return p ? p->n_rules : 0;
}

/*
 * Sets table entries of the rules @p ref names (an id, else a tag) to
 * @p off ? DK_GROUP_OFF : the rule's own action. DK_ESCHEMA when it names none.
 */
static int apply_ref(struct build *b, uint8_t *view, const struct dk_group_ref *ref, bool off)
{
	const struct dk_policy *p = b->pol;
	bool found = false;

	for (size_t i = 0; i < n_rules_of(p); i++) {
		const struct dk_rule *r = &p->rules[i];
		bool hit = strcmp(r->id, ref->text) == 0;
		for (size_t t = 0; !hit && t < r->n_tags; t++)
			hit = strcmp(r->tags[t], ref->text) == 0;
		if (!hit)
			continue;
		found = true;
		view[i] = off ? DK_GROUP_OFF : (uint8_t)r->action;
	}
	if (!found) {
		dk_diag_set(b->diag, b->file, ref->line, "groups: unknown rule id or tag '%s'",
		            ref->text);
		return DK_ESCHEMA;
	}
	return 0;
}

static int apply_rules(struct build *b, uint8_t *view, const struct dk_group_rules *rs)
{
	const struct dk_policy *p = b->pol;
	int rc;

	for (size_t i = 0; i < rs->n_disable; i++)
		if ((rc = apply_ref(b, view, &rs->disable[i], true)) < 0)
			return rc;
	for (size_t i = 0; i < rs->n_enable; i++)
		if ((rc = apply_ref(b, view, &rs->enable[i], false)) < 0)
			return rc;
	for (size_t i = 0; i < rs->n_actions; i++) {
		const struct dk_group_action *a = &rs->actions[i];
		size_t r = 0;
		while (r < n_rules_of(p) && strcmp(p->rules[r].id, a->rule) != 0)
			r++;
		if (r == n_rules_of(p)) {
			dk_diag_set(b->diag, b->file, a->line,
			            "groups: action for unknown rule id '%s'", a->rule);
			return DK_ESCHEMA;
		}
		/* An override of a rule turned off here turns it back on. */
		view[r] = (uint8_t)a->action;
	}
	return 0;
}

static bool rules_empty(const struct dk_group_rules *rs)
{
	return !rs->n_disable && !rs->n_enable && !rs->n_actions;
}

static int zone_index(struct dk_groups *gs, const char *name, uint16_t *out)
{
	for (size_t i = 0; i < gs->n_zones; i++) {
		if (strcmp(gs->zones[i].name, name) == 0) {
			*out = (uint16_t)i;
			return 0;
		}
	}
	struct dk_tz *z = realloc(gs->zones, (gs->n_zones + 1) * sizeof(*z));
	if (!z)
		return -ENOMEM;
	gs->zones = z;
	char *copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	z[gs->n_zones] = (struct dk_tz){.name = copy};
	*out = (uint16_t)gs->n_zones++;
	return 0;
}

/* The group's own allow-list entries, as one suffix set. */
static int build_allow(struct build *b, struct dk_group *g, const struct dk_group_conf *c)
{
	struct dk_suffixset_builder *sb;

	if (!c->n_allow)
		return 0;
	/* The rules' hash keys: a query's name is hashed once for both sets. */
	if (!(sb = dk_suffixset_builder_new_like(c->n_allow, NULL, NULL,
	                                         b->pol ? b->pol->set : NULL)))
		return -ENOMEM;
	for (size_t i = 0; i < c->n_allow; i++) {
		const char *t = c->allow[i].text;
		bool below = t[0] == '*' && t[1] == '.';
		uint8_t wire[DK_NAME_MAX];
		size_t len;

		if (!strcmp(t, "*"))
			t = ".", below = true;
		else if (below)
			t += 2;
		if (dk_name_from_text(t, strlen(t), DK_NAME_HOSTNAME, wire, &len) < 0) {
			dk_suffixset_builder_free(sb);
			dk_diag_set(b->diag, b->file, c->allow[i].line,
			            "groups: allow entry '%s' is not a domain name",
			            c->allow[i].text);
			return DK_ESCHEMA;
		}
		if (dk_suffixset_builder_add(sb, wire, len, below, below) < 0) {
			dk_suffixset_builder_free(sb);
			return -ENOMEM;
		}
	}
	if (!(g->allow = dk_suffixset_builder_finish(sb)))
		return -ENOMEM;
	return 0;
}

static int cidr_of(struct build *b, const struct dk_group_ref *r, const char *what,
                   struct dk_cidr *out)
{
	if (dk_cidr_parse(r->text, out) == 0)
		return 0;
	dk_diag_set(b->diag, b->file, r->line, "groups: %s: not an address or prefix: %s", what,
	            r->text);
	return DK_ESCHEMA;
}

/* Fills group @p g from config @p c (NULL: the implicit "default"). */
static int build_group(struct build *b, struct dk_group *g, const struct dk_group_conf *c)
{
	struct dk_groups *gs = b->gs;
	size_t nr = n_rules_of(b->pol);
	int rc;

	g->name = strdup(c ? c->name : DK_GROUP_DEFAULT);
	if (!g->name)
		return -ENOMEM;
	g->conf = c;
	g->sched_first = (uint16_t)gs->n_sched;
	if (!c)
		return 0;
	char id[128];
	snprintf(id, sizeof(id), "group:%s:allow", c->name);
	g->allow_rule = (struct dk_rule){
	        .id = strdup(id),
	        .name = strdup("group allow-list"),
	        .severity = DK_SEVERITY_INFO,
	        .action = DK_ACTION_ALLOW,
	        .alert = false,
	        .threshold = 1,
	        .index = UINT16_MAX,
	};
	if (!g->allow_rule.id || !g->allow_rule.name)
		return -ENOMEM;
	if ((rc = build_allow(b, g, c)) < 0)
		return rc;
	if (c->has_allow_clients) {
		g->own_acl = true;
		g->acl = malloc((c->n_allow_clients ? c->n_allow_clients : 1) * sizeof(*g->acl));
		if (!g->acl)
			return -ENOMEM;
		for (size_t i = 0; i < c->n_allow_clients; i++, g->n_acl++)
			if ((rc = cidr_of(b, &c->allow_clients[i], "allow_clients", &g->acl[i])) <
			    0)
				return rc;
	}
	bool same = rules_empty(&c->rules);
	for (size_t s = 0; s < c->n_schedules; s++)
		same = same && rules_empty(&c->schedules[s].rules);
	if (gs->n_sched + c->n_schedules > DK_SCHEDULES_MAX) {
		dk_diag_set(b->diag, b->file, c->n_schedules ? c->schedules[0].line : c->line,
		            "groups: more than %d schedules in all", DK_SCHEDULES_MAX);
		return DK_EFULL;
	}
	/* A group that changes no rule shares the rules as loaded: no tables. */
	if (same)
		return 0;
	/* One octet more: with no rules at all, unknown ids are still reported below. */
	g->views = malloc((1 + c->n_schedules) * nr + 1);
	if (!g->views)
		return -ENOMEM;
	for (size_t r = 0; r < nr; r++)
		g->views[r] = (uint8_t)b->pol->rules[r].action;
	if ((rc = apply_rules(b, g->views, &c->rules)) < 0)
		return rc;
	for (size_t s = 0; s < c->n_schedules; s++) {
		const struct dk_group_sched_conf *sc = &c->schedules[s];
		uint8_t *v = g->views + (1 + s) * nr;
		memcpy(v, g->views, nr);
		if ((rc = apply_rules(b, v, &sc->rules)) < 0)
			return rc;
		struct dk_groups_sched *gsc = &gs->sched[gs->n_sched + s];
		gsc->window = sc->window;
		if ((rc = zone_index(gs, sc->tz, &gsc->zone)) < 0)
			return rc;
	}
	g->n_sched = (uint16_t)c->n_schedules;
	gs->n_sched += c->n_schedules;
	return 0;
}

/* The client prefixes of every group, in one table; a prefix listed twice is an error. */
static int build_clients(struct build *b, const struct dk_group_conf *confs, size_t n,
                         const uint16_t *index)
{
	size_t total = 0, k = 0, dup = 0;

	for (size_t i = 0; i < n; i++)
		total += confs[i].n_clients;
	struct dk_cidr *c = malloc((total ? total : 1) * sizeof(*c));
	uint16_t *v = malloc((total ? total : 1) * sizeof(*v));
	const struct dk_group_conf **owner = malloc((total ? total : 1) * sizeof(*owner));
	unsigned *line = malloc((total ? total : 1) * sizeof(*line));
	int rc = -ENOMEM;

	if (!c || !v || !owner || !line)
		goto out;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < confs[i].n_clients; j++, k++) {
			if ((rc = cidr_of(b, &confs[i].clients[j], "clients", &c[k])) < 0)
				goto out;
			v[k] = index[i];
			owner[k] = &confs[i];
			line[k] = confs[i].clients[j].line;
		}
	}
	rc = dk_prefix_table_new(c, v, total, &b->gs->clients, &dup);
	if (rc == DK_EDUP) {
		/* Name the first listing too: which two groups disagree. */
		size_t first = 0;
		while (first < dup &&
		       (c[first].family != c[dup].family || c[first].prefix != c[dup].prefix ||
		        memcmp(c[first].addr, c[dup].addr, 16)))
			first++;
		dk_diag_set(b->diag, b->file, line[dup],
		            "groups: prefix listed twice, in group '%s' and in group '%s' "
		            "(line %u)",
		            owner[first]->name, owner[dup]->name, line[first]);
		rc = DK_EDUP;
	}
out:
	free(c);
	free(v);
	free(owner);
	free(line);
	return rc;
}

int dk_groups_build(const struct dk_group_conf *confs, size_t n, const struct dk_policy *pol,
                    const char *file, int64_t now, struct dk_groups **out, struct dk_diag *diag)
{
	struct dk_groups *gs;
	struct build b = {.pol = pol, .file = file, .diag = diag};
	uint16_t *index = NULL;
	int rc = -ENOMEM;

	*out = NULL;
	if (!n)
		return 0;
	if (n >= DK_GROUPS_MAX) {
		dk_diag_set(diag, file, confs[DK_GROUPS_MAX - 1].line, "groups: more than %d",
		            DK_GROUPS_MAX - 1);
		return DK_EFULL;
	}
	if (!(gs = calloc(1, sizeof(*gs))))
		return -ENOMEM;
	b.gs = gs;
	gs->n_rules = n_rules_of(pol);
	gs->g = calloc(n + 1, sizeof(*gs->g));
	gs->sched = calloc(DK_SCHEDULES_MAX, sizeof(*gs->sched));
	index = calloc(n, sizeof(*index));
	if (!gs->g || !gs->sched || !index)
		goto fail;
	/* "default" is g[0]; a config entry of that name (no clients) shapes it. */
	const struct dk_group_conf *def = NULL;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < i; j++) {
			if (strcmp(confs[i].name, confs[j].name) == 0) {
				dk_diag_set(diag, file, confs[i].line,
				            "groups: group '%s' defined twice (first at line %u)",
				            confs[i].name, confs[j].line);
				rc = DK_EDUP;
				goto fail;
			}
		}
		if (strcmp(confs[i].name, DK_GROUP_DEFAULT) == 0) {
			if (confs[i].n_clients) {
				dk_diag_set(diag, file, confs[i].line,
				            "groups: group 'default' takes the clients no group "
				            "names; it lists no clients of its own");
				rc = DK_ESCHEMA;
				goto fail;
			}
			def = &confs[i];
		}
	}
	gs->n = 1;
	if ((rc = build_group(&b, &gs->g[0], def)) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if (&confs[i] == def)
			continue;
		struct dk_group *g = &gs->g[gs->n];
		g->index = (uint16_t)gs->n;
		index[i] = g->index;
		gs->n++;
		if ((rc = build_group(&b, g, &confs[i])) < 0)
			goto fail;
	}
	if ((rc = build_clients(&b, confs, n, index)) < 0)
		goto fail;
	free(index);
	dk_groups_tick(gs, now);
	*out = gs;
	return 0;
fail:
	if (rc == -ENOMEM)
		dk_diag_set(diag, file, 0, "groups: out of memory");
	free(index);
	dk_groups_free(gs);
	return rc;
}

void dk_groups_free(struct dk_groups *gs)
{
	if (!gs)
		return;
	for (size_t i = 0; gs->g && i < gs->n; i++) {
		struct dk_group *g = &gs->g[i];
		free(g->name);
		free(g->views);
		dk_suffixset_free(g->allow);
		free(g->allow_rule.id);
		free(g->allow_rule.name);
		free(g->acl);
	}
	free(gs->g);
	dk_prefix_table_free(gs->clients);
	free(gs->sched);
	for (size_t i = 0; i < gs->n_zones; i++)
		free((char *)gs->zones[i].name);
	free(gs->zones);
	free(gs);
}

/* ---- at run time ------------------------------------------------------- */

uint64_t dk_groups_tick(struct dk_groups *gs, int64_t now)
{
	struct dk_localtime lt[DK_SCHEDULES_MAX];
	bool have[DK_SCHEDULES_MAX] = {false};
	uint64_t mask = 0;

	if (!gs)
		return 0;
	for (size_t z = 0; z < gs->n_zones && z < DK_SCHEDULES_MAX; z++)
		have[z] = dk_tz_localtime(&gs->zones[z], now, &lt[z]) == 0;
	for (size_t s = 0; s < gs->n_sched; s++) {
		const struct dk_groups_sched *sc = &gs->sched[s];
		if (have[sc->zone] && dk_sched_window_active(&sc->window, &lt[sc->zone]))
			mask |= UINT64_C(1) << s;
	}
	atomic_store_explicit(&gs->open, mask, memory_order_relaxed);
	return mask;
}

const struct dk_group *dk_groups_lookup(const struct dk_groups *gs, const struct sockaddr *sa)
{
	uint16_t i;

	if (dk_prefix_lookup_sa(gs->clients, sa, &i) && i < gs->n)
		return &gs->g[i];
	return &gs->g[0];
}

const uint8_t *dk_group_view(const struct dk_groups *gs, const struct dk_group *g)
{
	if (!g || !g->views)
		return NULL;
	if (g->n_sched) {
		uint64_t open = atomic_load_explicit(&gs->open, memory_order_relaxed);
		/* The first open schedule of the group decides. */
		for (unsigned s = 0; s < g->n_sched; s++)
			if (open >> (g->sched_first + s) & 1)
				return g->views + (size_t)(1 + s) * gs->n_rules;
	}
	return g->views;
}

const char *dk_group_name(const struct dk_group *g)
{
	return g ? g->name : DK_GROUP_DEFAULT;
}

static bool rule_on(uint16_t value, const void *view)
{
	return ((const uint8_t *)view)[value >> 1] != DK_GROUP_OFF;
}

bool dk_group_match(const struct dk_policy *p, const struct dk_group *g, const uint8_t *view,
                    const uint8_t *wire, size_t len, struct dk_verdict *v)
{
	struct dk_suffixset_match m, am;
	unsigned found = 0;

	/*
	 * Not dk_policy_match(): the same walk, with the group's table as a
	 * filter, and the group's exceptions probed with the same hashes. An
	 * exception matters only against a match: without one the query is
	 * forwarded, unrecorded, either way.
	 */
	if (p)
		found = dk_suffixset_lookup_both(p->set, g ? g->allow : NULL, wire, len,
		                                 view ? rule_on : NULL, view, &m, &am);
	if (!(found & 1)) {
		v->rule = NULL;
		v->matched_off = 0;
		v->wildcard = false;
		return false;
	}
	/* At least as specific as the rule's entry, the group's exception wins (as allow rules). */
	if ((found & 2) && am.offset <= m.offset) {
		v->rule = &g->allow_rule;
		v->matched_off = am.offset;
		v->wildcard = am.value & 1;
		v->action = DK_ACTION_ALLOW;
		return true;
	}
	v->rule = &p->rules[m.value >> 1];
	v->matched_off = m.offset;
	v->wildcard = m.value & 1;
	v->action = view ? view[m.value >> 1] : (uint8_t)v->rule->action;
	return true;
}
