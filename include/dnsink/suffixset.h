/* SPDX-License-Identifier: MIT */
/*
 * The suffix set: an immutable open-addressing hash set of lowercase wire
 * names, each carrying two 16-bit values. A lookup walks the suffixes of the
 * query name, longest first, with one hash probe each and no allocation, and
 * returns the first (most specific) suffix that has an applicable value.
 *
 * Every stored name N has two values:
 *  - self:  applies when the query is N itself;
 *  - below: applies when the query is strictly below N.
 * An entry "N" (name and everything below it) feeds both; an entry "*.N"
 * (strictly below) feeds only "below". When several entries land on the same
 * name and slot, the builder's merge function picks the winner, so lookups
 * never compare anything but names.
 *
 * The values are opaque to the set; the policy encodes its rule index in them.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnsink/common.h"

/** The value of a slot that no entry fed. Never a valid value. */
#define DK_SUFFIXSET_NONE UINT16_C(0xffff)

struct dk_suffixset;
struct dk_suffixset_builder;

/**
 * Decides which of two values stands when two entries land on the same name
 * and slot; returns the winner. @p old is never DK_SUFFIXSET_NONE.
 */
typedef uint16_t (*dk_suffixset_merge_fn)(uint16_t old, uint16_t add, void *ctx);

/** What dk_suffixset_lookup() found. */
struct dk_suffixset_match {
	uint16_t value; /**< the applicable value of the matched name */
	uint8_t offset; /**< offset in the query wire name where the match begins */
	uint8_t labels; /**< labels of the query stripped to reach it (0: exact) */
	bool below;     /**< the value came from the "below" slot */
};

/**
 * Creates a builder sized for about @p expected names (0 is fine). @p merge
 * (with @p ctx) resolves collisions; NULL keeps the first value. Returns NULL
 * on allocation failure. The caller owns the builder: finish or free it.
 */
struct dk_suffixset_builder *dk_suffixset_builder_new(size_t expected, dk_suffixset_merge_fn merge,
                                                      void *ctx);

/**
 * Adds lowercase wire name @p wire (@p len octets, as made by
 * dk_name_from_text()) with @p value. @p below_only: the entry is "*.N".
 * The root name is accepted (it matches everything). Returns 0 or -ENOMEM.
 * @p value must not be DK_SUFFIXSET_NONE.
 */
int dk_suffixset_builder_add(struct dk_suffixset_builder *b, const uint8_t *wire, size_t len,
                             bool below_only, uint16_t value);

/** Which slots of a name an entry feeds (dk_suffixset_builder_add_slots()). */
enum dk_suffixset_slots {
	DK_SUFFIXSET_SELF = 1 << 0,  /**< the name itself */
	DK_SUFFIXSET_BELOW = 1 << 1, /**< names strictly below it */
};

/**
 * Like dk_suffixset_builder_add() with the slots named: SELF alone is an
 * entry for exactly that name (an RPZ QNAME trigger without "*."), BELOW
 * alone is "*.N", both is "N". @p slots must not be 0.
 */
int dk_suffixset_builder_add_slots(struct dk_suffixset_builder *b, const uint8_t *wire, size_t len,
                                   unsigned slots, uint16_t value);

/** Distinct names added so far. */
size_t dk_suffixset_builder_count(const struct dk_suffixset_builder *b);

/**
 * Turns the builder into an immutable set and frees the builder (always,
 * even on failure). Returns NULL on allocation failure. Caller owns the set.
 */
struct dk_suffixset *dk_suffixset_builder_finish(struct dk_suffixset_builder *b);

/** Frees an unfinished builder. NULL is a no-op. */
void dk_suffixset_builder_free(struct dk_suffixset_builder *b);

/** Frees a set. NULL is a no-op. */
void dk_suffixset_free(struct dk_suffixset *s);

/**
 * Looks up lowercase wire name @p wire. Returns true and fills @p m with the
 * most specific applicable entry, false when none applies. Allocation-free,
 * safe to call from many threads at once. @p s may be NULL (empty set).
 */
bool dk_suffixset_lookup(const struct dk_suffixset *s, const uint8_t *wire, size_t len,
                         struct dk_suffixset_match *m);

/** Distinct names in the set. */
size_t dk_suffixset_count(const struct dk_suffixset *s);

/** Bytes of heap the set holds (table plus name storage). */
size_t dk_suffixset_bytes(const struct dk_suffixset *s);
