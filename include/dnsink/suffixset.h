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
 * The root name is accepted (it matches everything). Returns 0, -EINVAL
 * for a malformed name, or -ENOMEM. Insertion trails the call by a few names
 * (so that the table's cache misses overlap), so -ENOMEM may be an earlier
 * name's; once returned, every later call and finish() fail too.
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
 * entry for exactly that name (an RPZ QNAME trigger without "*.", a Sigma
 * value "x", which matches "x" and not "a.x"), BELOW
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

/** Decides whether a matched value applies; see dk_suffixset_lookup_if(). */
typedef bool (*dk_suffixset_accept_fn)(uint16_t value, const void *ctx);

/**
 * Like dk_suffixset_lookup(), but a value that @p accept (called with
 * @p ctx) refuses is passed over and the walk goes on to shorter suffixes.
 * Client groups use it to skip rules they turn off.
 */
bool dk_suffixset_lookup_if(const struct dk_suffixset *s, const uint8_t *wire, size_t len,
                            dk_suffixset_accept_fn accept, const void *ctx,
                            struct dk_suffixset_match *m);

/**
 * Like dk_suffixset_builder_new(), but the set takes the hash keys of
 * @p like (NULL: keys of its own), so that dk_suffixset_lookup_both() can
 * probe both sets after hashing a name once.
 */
struct dk_suffixset_builder *dk_suffixset_builder_new_like(size_t expected,
                                                           dk_suffixset_merge_fn merge, void *ctx,
                                                           const struct dk_suffixset *like);

/**
 * dk_suffixset_lookup_if() on @p s, and when that matches, dk_suffixset_lookup()
 * on @p also (may be NULL) over the suffixes at least as long as the match,
 * hashing the name once when @p also was made like @p s. Returns bit 0 set
 * when @p s matched (@p m filled), bit 1 when @p also did too (@p m_also
 * filled). Allocation-free.
 */
unsigned dk_suffixset_lookup_both(const struct dk_suffixset *s, const struct dk_suffixset *also,
                                  const uint8_t *wire, size_t len, dk_suffixset_accept_fn accept,
                                  const void *ctx, struct dk_suffixset_match *m,
                                  struct dk_suffixset_match *m_also);

/**
 * Like dk_suffixset_lookup() but reports every applicable entry, most
 * specific first, into @p out (at most @p max). Returns how many.
 * Allocation-free.
 */
size_t dk_suffixset_lookup_all(const struct dk_suffixset *s, const uint8_t *wire, size_t len,
                               struct dk_suffixset_match *out, size_t max);

/** Distinct names in the set. */
size_t dk_suffixset_count(const struct dk_suffixset *s);

/** Bytes of heap the set holds (table plus name storage). */
size_t dk_suffixset_bytes(const struct dk_suffixset *s);
