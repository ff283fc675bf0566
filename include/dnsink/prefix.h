/* SPDX-License-Identifier: MIT */
/*
 * The prefix table: IPv4 and IPv6 network prefixes, each carrying a 16-bit
 * value, looked up by client address with the longest (most specific)
 * prefix winning. Built once with a policy snapshot and immutable after, so
 * many threads may look up at once.
 *
 * The table is a range table per family: the intervals of the address space
 * where the most specific prefix does not change, sorted, so a lookup is one
 * binary search (about 11 steps for 1,000 prefixes, whatever their lengths)
 * and allocates nothing.
 * An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is looked up as IPv4 after
 * its IPv6 prefixes, as the access list (dk_acl_allows()) treats it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dnsink/config.h"

struct dk_prefix_table;

/**
 * Makes a table of the @p n prefixes @p cidrs with values @p values (one
 * each). The same prefix twice is an error, DK_EDUP, with @p *dup set to the
 * index of the second one (when @p dup is not NULL). Returns 0 and sets
 * @p *out (the caller frees it with dk_prefix_table_free()), -ENOMEM or DK_EDUP.
 * An empty table (n = 0) is valid and matches nothing.
 */
int dk_prefix_table_new(const struct dk_cidr *cidrs, const uint16_t *values, size_t n,
                        struct dk_prefix_table **out, size_t *dup);

/** Frees @p t. NULL is a no-op. */
void dk_prefix_table_free(struct dk_prefix_table *t);

/**
 * The value of the longest prefix of @p t holding address @p addr of
 * @p family (AF_INET: 4 octets, AF_INET6: 16). Returns true and sets
 * @p *value, or false when no prefix holds it. @p t may be NULL (empty).
 */
bool dk_prefix_lookup(const struct dk_prefix_table *t, int family, const uint8_t *addr,
                      uint16_t *value);

/** dk_prefix_lookup() of a socket address (AF_INET or AF_INET6; others match nothing). */
bool dk_prefix_lookup_sa(const struct dk_prefix_table *t, const struct sockaddr *sa,
                         uint16_t *value);

/** Prefixes in @p t. */
size_t dk_prefix_table_count(const struct dk_prefix_table *t);
