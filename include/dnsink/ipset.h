/* SPDX-License-Identifier: MIT */
/*
 * An immutable set of IP prefixes with a value each, for the RPZ triggers on
 * addresses: client prefixes ("rpz-client-ip") and answer addresses
 * ("rpz-ip"). A lookup finds the longest prefix that holds the address, with
 * one binary search per distinct prefix length present, and allocates
 * nothing, so it runs on the query path of every worker at once.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** One prefix and its value; bits past the prefix must be zero. */
struct dk_ipset_entry {
	uint8_t family; /**< AF_INET or AF_INET6 */
	uint8_t prefix; /**< 0..32 or 0..128 */
	uint8_t addr[16];
	uint32_t value;
};

struct dk_ipset;

/**
 * Decides which of two values stands when two entries have the same prefix;
 * returns the winner.
 */
typedef uint32_t (*dk_ipset_merge_fn)(uint32_t old, uint32_t add, void *ctx);

/**
 * Builds a set from @p n entries at @p e, which it takes over (freed by the
 * set, or on failure; e may be NULL with n == 0). @p merge with @p ctx
 * settles equal prefixes; NULL keeps the first. Returns the set or NULL on
 * allocation failure. The caller owns the set (dk_ipset_free()).
 */
struct dk_ipset *dk_ipset_new(struct dk_ipset_entry *e, size_t n, dk_ipset_merge_fn merge,
                              void *ctx);

/** Frees a set. NULL is a no-op. */
void dk_ipset_free(struct dk_ipset *s);

/**
 * Looks up address @p addr (4 or 16 octets, by @p family). Returns true with
 * the value and prefix length of the longest prefix holding it. Pure,
 * allocation-free; @p s may be NULL (empty).
 */
bool dk_ipset_lookup(const struct dk_ipset *s, int family, const uint8_t *addr, uint32_t *value,
                     uint8_t *prefix);

/** Prefixes in the set. */
size_t dk_ipset_count(const struct dk_ipset *s);
