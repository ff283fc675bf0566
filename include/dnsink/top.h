/* SPDX-License-Identifier: MIT */
/*
 * The busiest keys of the last minutes (clients, names, rules, blocked names
 * of the match events), in bounded memory: one table of DK_TOP_SLOTS keys per dimension
 * per minute, DK_TOP_MINUTES minutes kept in a ring. A table counts with
 * the Space-Saving algorithm (Metwally et al., 2005): a key not in a full
 * table takes the slot of the smallest count and starts from that count
 * plus one, so a key's count is never under its true count and is over it
 * by at most the count it inherited (reported as the error). Every key that
 * occurred more than 1/DK_TOP_SLOTS of a minute's events is in that
 * minute's table.
 *
 * Pure: the caller gives the time (ms of any monotonic clock) and owns the
 * thread; nothing is allocated after dk_top_new() but by dk_top_query().
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/** Minutes kept. */
#define DK_TOP_MINUTES 10
/** Keys counted per dimension per minute. */
#define DK_TOP_SLOTS 128
/** Longest key kept, octets with the NUL (a presentation name is up to 253). */
#define DK_TOP_KEY_MAX 256

enum dk_top_dim {
	DK_TOP_CLIENT,  /**< client address */
	DK_TOP_NAME,    /**< query name */
	DK_TOP_RULE,    /**< rule id */
	DK_TOP_BLOCKED, /**< query name, of the events answered locally (blocked) only */
	DK_TOP_DIMS,
};

/** One key and its count over the minutes asked for. */
struct dk_top_item {
	char key[DK_TOP_KEY_MAX];
	uint64_t count; /**< an upper bound of the true count */
	uint64_t error; /**< count minus error is a lower bound */
};

struct dk_top;

/** Makes an empty table. Returns 0 and sets @p *out (free with dk_top_free()), or -ENOMEM. */
int dk_top_new(struct dk_top **out);

/** Frees @p t. NULL is a no-op. */
void dk_top_free(struct dk_top *t);

/**
 * Counts one event at time @p now_ms for the keys of @p keys (one per
 * dimension, NULL or "" for none). Keys longer than DK_TOP_KEY_MAX - 1 are
 * cut. Never allocates.
 */
void dk_top_add(struct dk_top *t, uint64_t now_ms, const char *const keys[DK_TOP_DIMS]);

/** Events counted in the last @p minutes (1..DK_TOP_MINUTES, the current one included). */
uint64_t dk_top_events(const struct dk_top *t, uint64_t now_ms, unsigned minutes);

/**
 * The @p n busiest keys of dimension @p dim over the last @p minutes
 * (clamped to 1..DK_TOP_MINUTES), busiest first (ties by key), into @p out.
 * Returns how many were written (at most @p n), or -ENOMEM.
 */
int dk_top_query(const struct dk_top *t, uint64_t now_ms, unsigned minutes, enum dk_top_dim dim,
                 struct dk_top_item *out, size_t n);
