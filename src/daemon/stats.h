/* SPDX-License-Identifier: MIT */
/*
 * Counters keyed by what outlives a reload: rules by id, upstreams by
 * address. The registry (main thread) gives every rule id and upstream
 * address ever loaded a slot number for the life of the process; each
 * snapshot maps its rule and upstream indexes to slots (struct
 * dk_stats_map); each worker counts into its own block of per-slot counters
 * (struct dk_wstats), so the query path indexes an array it owns.
 */
#pragma once

#include <stdint.h>

#include "counters.h"
#include "dnsink/config.h"
#include "dnsink/policy.h"

/** A worker's counters by slot. Written by its worker only, read by scrapes. */
struct dk_wstats {
	uint32_t n_rules;        /**< rule slots this block holds */
	uint32_t n_ups;          /**< upstream slots this block holds */
	dk_ctr *rule_hits;       /**< [n_rules] queries a rule decided (also by CNAME target) */
	struct dk_up_stats *ups; /**< [n_ups] */
};

/** A snapshot's share of the counters, made by dk_stats_prepare(). */
struct dk_stats_map {
	uint32_t *rule_slot; /**< per rule index; NULL without rules */
	uint32_t *up_slot;   /**< per upstream index */
	/**
	 * Per client group index g: slots 2g (queries) and 2g+1 (hits) among the
	 * rule counters, registered by group name so counts survive reloads;
	 * NULL without groups.
	 */
	uint32_t *group_slot;
	/**
	 * Per worker: a larger counter block to switch to when taking this
	 * snapshot (NULL: the worker's fits); the worker leaves its old block
	 * here in exchange, for the main thread to free.
	 */
	struct dk_wstats **grow;
	unsigned n_grow;
};

struct dk_stats_reg;

/** The registry of counter slots (main thread only). NULL when out of memory. */
struct dk_stats_reg *dk_stats_reg_new(void);
void dk_stats_reg_free(struct dk_stats_reg *r);

/**
 * Fills @p m for a snapshot of @p cfg and @p pol (NULL: no rules),
 * registering rule ids and upstream addresses seen for the first time, with
 * a larger block in m->grow for each of the @p n_workers blocks @p cur (the
 * workers' current ones; none at start) that is too small. Main thread, with
 * no reload in flight. 0 or -ENOMEM; either way dk_stats_map_deinit() frees @p m.
 */
int dk_stats_prepare(struct dk_stats_reg *r, const struct dk_config *cfg,
                     const struct dk_policy *pol, struct dk_stats_map *m,
                     struct dk_wstats *const *cur, unsigned n_workers);

/** A zeroed counter block with room for every slot registered so far. NULL: no memory. */
struct dk_wstats *dk_wstats_new(const struct dk_stats_reg *r);

/**
 * Worker @p worker, counting into @p cur, takes the snapshot of @p m: returns
 * the block to count into from now on, the larger one that came with @p m
 * (with @p cur's counts copied, @p cur left in @p m for the main thread to
 * free) or @p cur itself.
 */
struct dk_wstats *dk_wstats_adopt(struct dk_stats_map *m, unsigned worker, struct dk_wstats *cur);

/** Frees the blocks m->grow holds (main thread, once no worker can use them). */
void dk_stats_release(struct dk_stats_map *m);

/** Frees what @p m owns. */
void dk_stats_map_deinit(struct dk_stats_map *m);
