/* SPDX-License-Identifier: MIT */
/*
 * Per-client rate limiting: a token bucket per client prefix (an IPv4
 * address, or an IPv6 /64 by default) held in a fixed-size table that is
 * allocated once and never grows. Each worker owns one table, so there is no
 * locking; the caller passes the time, which keeps the module pure (no I/O,
 * no clock) and lets tests drive it with a fake clock.
 *
 * The table is a hash of small sets: a client's prefix hashes (keyed with a
 * random secret, so clients cannot aim at one set) to a set of a few
 * buckets. A client not in its set takes a free bucket there, or the one
 * least recently refilled. A flood of spoofed sources can thus evict a real
 * client's bucket; the client then starts again with a full bucket, so the
 * table fails open, never closed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/** Limits applied by dk_ratelimit_allow(). */
struct dk_ratelimit_limits {
	uint32_t qps;        /**< tokens added per second; 0: no limit */
	uint32_t burst;      /**< bucket size in queries (at least 1) */
	uint8_t ipv4_prefix; /**< bits of an IPv4 source that name a client (1..32) */
	uint8_t ipv6_prefix; /**< bits of an IPv6 source that name a client (1..128) */
};

struct dk_ratelimit;

/**
 * Creates a table of at least @p buckets buckets (rounded up to a power of
 * two, at least one set) in @p *out; free with dk_ratelimit_free(). Returns
 * 0 or -ENOMEM.
 */
int dk_ratelimit_new(size_t buckets, struct dk_ratelimit **out);

/** Frees @p rl. NULL is a no-op. */
void dk_ratelimit_free(struct dk_ratelimit *rl);

/** Number of buckets of @p rl (after rounding). */
size_t dk_ratelimit_size(const struct dk_ratelimit *rl);

/**
 * Takes one token for source @p sa at time @p now_ms (any monotonic
 * millisecond clock) under @p lim. Returns true when the query may go on,
 * false when the client is over its limit. An IPv4-mapped IPv6 source counts
 * as IPv4. Sources of other families are always allowed. Never allocates.
 */
bool dk_ratelimit_allow(struct dk_ratelimit *rl, const struct sockaddr *sa, uint64_t now_ms,
                        const struct dk_ratelimit_limits *lim);
