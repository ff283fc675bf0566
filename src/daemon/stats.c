/* SPDX-License-Identifier: MIT */
/*
 * Counter slots by rule id and upstream address (see stats.h).
 *
 * A block only grows, and only at a reload: the main thread allocates the
 * larger blocks with the new snapshot, each worker copies its counts into
 * its new block when it takes the snapshot and leaves the old one in the
 * snapshot, and the main thread frees those once every worker has switched.
 * Scrapes run on the main thread too, so they never see a freed block.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsink/groups.h"
#include "stats.h"

/* Slots at most; what comes later is not counted (a reload loop adding new ids). */
#define RULE_SLOTS_MAX 65536
#define UP_SLOTS_MAX   256
/* Smallest block, so that small reloads rarely need a larger one. */
#define RULE_SLOTS_MIN 64
#define UP_SLOTS_MIN   8

struct dk_stats_reg {
	char **ids; /* rule id of each rule slot */
	uint32_t n_ids;
	uint32_t *index; /* open addressing: rule slot + 1, 0 empty */
	uint32_t mask;
	struct dk_addr *ups; /* address of each upstream slot */
	uint32_t n_ups;
};

static uint32_t hash_str(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static int index_grow(struct dk_stats_reg *r)
{
	uint32_t cap = r->index ? (r->mask + 1) * 2 : 128;
	uint32_t *idx = calloc(cap, sizeof(*idx));

	if (!idx)
		return -ENOMEM;
	for (uint32_t i = 0; i < r->n_ids; i++) {
		uint32_t h = hash_str(r->ids[i]) & (cap - 1);
		while (idx[h])
			h = (h + 1) & (cap - 1);
		idx[h] = i + 1;
	}
	free(r->index);
	r->index = idx;
	r->mask = cap - 1;
	return 0;
}

/* The slot of rule @id, registered when new; UINT32_MAX when full. */
static int rule_slot(struct dk_stats_reg *r, const char *id, uint32_t *out)
{
	uint32_t h;

	*out = UINT32_MAX;
	if (!r->index || (r->n_ids + 1) * 2 > r->mask + 1) {
		if (index_grow(r) < 0)
			return -ENOMEM;
	}
	for (h = hash_str(id) & r->mask; r->index[h]; h = (h + 1) & r->mask) {
		if (strcmp(r->ids[r->index[h] - 1], id) == 0) {
			*out = r->index[h] - 1;
			return 0;
		}
	}
	if (r->n_ids >= RULE_SLOTS_MAX)
		return 0;
	if ((r->n_ids & (r->n_ids - 1)) == 0) {
		/* Grows at 0, 1, 2, 4, ... entries: doubling. */
		char **ids = realloc(r->ids, (r->n_ids ? r->n_ids * 2 : 1) * sizeof(*ids));
		if (!ids)
			return -ENOMEM;
		r->ids = ids;
	}
	r->ids[r->n_ids] = strdup(id);
	if (!r->ids[r->n_ids])
		return -ENOMEM;
	r->index[h] = r->n_ids + 1;
	*out = r->n_ids++;
	return 0;
}

static int up_slot(struct dk_stats_reg *r, const struct dk_addr *a, uint32_t *out)
{
	*out = UINT32_MAX;
	for (uint32_t i = 0; i < r->n_ups; i++) {
		if (dk_sockaddr_equal(&r->ups[i].sa, &a->sa)) {
			*out = i;
			return 0;
		}
	}
	if (r->n_ups >= UP_SLOTS_MAX)
		return 0;
	struct dk_addr *ups = realloc(r->ups, (r->n_ups + 1) * sizeof(*ups));
	if (!ups)
		return -ENOMEM;
	r->ups = ups;
	r->ups[r->n_ups] = *a;
	*out = r->n_ups++;
	return 0;
}

struct dk_stats_reg *dk_stats_reg_new(void)
{
	return calloc(1, sizeof(struct dk_stats_reg));
}

void dk_stats_reg_free(struct dk_stats_reg *r)
{
	if (!r)
		return;
	for (uint32_t i = 0; i < r->n_ids; i++)
		free(r->ids[i]);
	free(r->ids);
	free(r->index);
	free(r->ups);
	free(r);
}

static uint32_t room(uint32_t n, uint32_t min)
{
	uint32_t c = min;

	while (c < n)
		c *= 2;
	return c;
}

/* One allocation: the header, then the rule counters, then the upstreams'. */
static struct dk_wstats *wstats_alloc(uint32_t n_rules, uint32_t n_ups)
{
	size_t size = sizeof(struct dk_wstats) + (size_t)n_rules * sizeof(dk_ctr) +
	              (size_t)n_ups * sizeof(struct dk_up_stats);
	struct dk_wstats *st = calloc(1, size);

	if (!st)
		return NULL;
	st->n_rules = n_rules;
	st->n_ups = n_ups;
	st->rule_hits = (dk_ctr *)(st + 1);
	st->ups = (struct dk_up_stats *)(st->rule_hits + n_rules);
	return st;
}

struct dk_wstats *dk_wstats_new(const struct dk_stats_reg *r)
{
	return wstats_alloc(room(r->n_ids, RULE_SLOTS_MIN), room(r->n_ups, UP_SLOTS_MIN));
}

int dk_stats_prepare(struct dk_stats_reg *r, const struct dk_config *cfg,
                     const struct dk_policy *pol, struct dk_stats_map *m,
                     struct dk_wstats *const *cur, unsigned n_workers)
{
	if (pol && pol->n_rules) {
		m->rule_slot = malloc(pol->n_rules * sizeof(*m->rule_slot));
		if (!m->rule_slot)
			return -ENOMEM;
		for (size_t i = 0; i < pol->n_rules; i++)
			if (rule_slot(r, pol->rules[i].id, &m->rule_slot[i]) < 0)
				return -ENOMEM;
	}
	if (pol && pol->groups) {
		const struct dk_groups *gs = pol->groups;
		m->group_slot = malloc(gs->n * 2 * sizeof(*m->group_slot));
		if (!m->group_slot)
			return -ENOMEM;
		for (size_t i = 0; i < gs->n * 2; i++) {
			/* A rule id never starts with a control character: no clash. */
			char key[96];
			snprintf(key, sizeof(key), "\x01%s:%s", i & 1 ? "hits" : "queries",
			         gs->g[i / 2].name);
			if (rule_slot(r, key, &m->group_slot[i]) < 0)
				return -ENOMEM;
		}
	}
	if (cfg->n_upstreams) {
		m->up_slot = malloc(cfg->n_upstreams * sizeof(*m->up_slot));
		if (!m->up_slot)
			return -ENOMEM;
		for (size_t i = 0; i < cfg->n_upstreams; i++)
			if (up_slot(r, &cfg->upstreams[i], &m->up_slot[i]) < 0)
				return -ENOMEM;
	}
	if (!n_workers)
		return 0;
	m->grow = calloc(n_workers, sizeof(*m->grow));
	if (!m->grow)
		return -ENOMEM;
	m->n_grow = n_workers;
	for (unsigned i = 0; i < n_workers; i++) {
		/* No reload is in flight: the worker does not swap its block now. */
		if (cur[i]->n_rules >= r->n_ids && cur[i]->n_ups >= r->n_ups)
			continue;
		m->grow[i] = wstats_alloc(room(r->n_ids, cur[i]->n_rules),
		                          room(r->n_ups, cur[i]->n_ups));
		if (!m->grow[i])
			return -ENOMEM;
	}
	return 0;
}

struct dk_wstats *dk_wstats_adopt(struct dk_stats_map *m, unsigned worker, struct dk_wstats *cur)
{
	struct dk_wstats *nb;

	if (!m->grow || worker >= m->n_grow || !m->grow[worker])
		return cur;
	nb = m->grow[worker];
	/* Slots keep their numbers: the old counts go to the same places. */
	for (uint32_t i = 0; i < cur->n_rules; i++)
		atomic_init(&nb->rule_hits[i], dk_ctr_get(&cur->rule_hits[i]));
	memcpy(nb->ups, cur->ups, cur->n_ups * sizeof(*cur->ups));
	m->grow[worker] = cur;
	return nb;
}

void dk_stats_release(struct dk_stats_map *m)
{
	for (unsigned i = 0; m->grow && i < m->n_grow; i++) {
		free(m->grow[i]);
		m->grow[i] = NULL;
	}
}

void dk_stats_map_deinit(struct dk_stats_map *m)
{
	dk_stats_release(m);
	free(m->grow);
	free(m->rule_slot);
	free(m->up_slot);
	free(m->group_slot);
	memset(m, 0, sizeof(*m));
}
