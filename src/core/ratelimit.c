/* SPDX-License-Identifier: MIT */
/*
 * Per-client token buckets in a fixed table (see dnsink/ratelimit.h).
 *
 * Tokens are counted in thousandths of a query, so that a rate of qps
 * queries per second adds exactly qps thousandths per millisecond and no
 * fraction is ever lost to rounding. A set is SET_WAYS buckets side by side
 * (256 octets, four cache lines); lookup compares keys in the one set the
 * client hashes to, so a query touches one set and never allocates.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "dnsink/ratelimit.h"

/** Buckets per set: the candidates for a client and for eviction. */
#define SET_WAYS 8
/** One query in bucket units. */
#define MILLI 1000u
/** Longest idle time credited at once; keeps elapsed * qps far from overflow. */
#define ELAPSED_MAX (24ull * 3600 * 1000)

struct bucket {
	uint8_t key[16];  /**< the client's prefix, host bits zero */
	uint64_t last_ms; /**< last refill */
	uint32_t tokens;  /**< in thousandths of a query */
	uint8_t family;   /**< 0: free, 4 or 6 */
};

struct dk_ratelimit {
	struct bucket *b;
	size_t mask;   /**< sets - 1 */
	uint64_t seed; /**< hash key: clients cannot predict their set */
};

int dk_ratelimit_new(size_t buckets, struct dk_ratelimit **out)
{
	struct dk_ratelimit *rl = calloc(1, sizeof(*rl));
	size_t sets = 1;

	*out = NULL;
	if (!rl)
		return -ENOMEM;
	while (sets * SET_WAYS < buckets && sets < ((size_t)1 << 30))
		sets <<= 1;
	rl->b = calloc(sets * SET_WAYS, sizeof(*rl->b));
	if (!rl->b) {
		free(rl);
		return -ENOMEM;
	}
	rl->mask = sets - 1;
	/* Without getrandom() the hash is still fine for honest clients. */
	if (getrandom(&rl->seed, sizeof(rl->seed), GRND_NONBLOCK) != sizeof(rl->seed))
		rl->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uintptr_t)rl;
	*out = rl;
	return 0;
}

void dk_ratelimit_free(struct dk_ratelimit *rl)
{
	if (!rl)
		return;
	free(rl->b);
	free(rl);
}

size_t dk_ratelimit_size(const struct dk_ratelimit *rl)
{
	return (rl->mask + 1) * SET_WAYS;
}

/* Keeps the first @p bits bits of @p a (of @p len octets) and zeroes the rest. */
static void prefix_mask(uint8_t *a, size_t len, unsigned bits)
{
	for (size_t i = 0; i < len; i++) {
		if (i * 8 >= bits)
			a[i] = 0;
		else if (i * 8 + 8 > bits)
			a[i] &= (uint8_t)(0xff << (8 - (bits - i * 8)));
	}
}

/* A keyed mix of the 16 key octets and the family (a multiply-xorshift hash). */
static uint64_t key_hash(uint64_t seed, const uint8_t *key, uint8_t family)
{
	uint64_t h = seed ^ family;

	for (int i = 0; i < 2; i++) {
		uint64_t word;
		memcpy(&word, key + 8 * i, 8);
		h ^= word;
		h *= 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
	}
	h *= 0xbf58476d1ce4e5b9ull;
	return h ^ (h >> 32);
}

bool dk_ratelimit_allow(struct dk_ratelimit *rl, const struct sockaddr *sa, uint64_t now_ms,
                        const struct dk_ratelimit_limits *lim)
{
	uint8_t key[16] = {0};
	uint8_t family;

	if (!rl || lim->qps == 0)
		return true;
	if (sa->sa_family == AF_INET) {
		memcpy(key, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		family = 4;
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		/* A dual-stack socket's IPv4 client is the same client as over IPv4. */
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			memcpy(key, a6->s6_addr + 12, 4);
			family = 4;
		} else {
			memcpy(key, a6->s6_addr, 16);
			family = 6;
		}
	} else {
		return true;
	}
	if (family == 4)
		prefix_mask(key, 4, lim->ipv4_prefix ? lim->ipv4_prefix : 32);
	else
		prefix_mask(key, 16, lim->ipv6_prefix ? lim->ipv6_prefix : 64);

	uint32_t burst = lim->burst ? lim->burst : 1;
	uint64_t cap = (uint64_t)burst * MILLI;
	if (cap > UINT32_MAX)
		cap = UINT32_MAX - UINT32_MAX % MILLI;
	struct bucket *set = rl->b + (key_hash(rl->seed, key, family) & rl->mask) * SET_WAYS;
	struct bucket *b = NULL, *victim = set;
	for (int i = 0; i < SET_WAYS; i++) {
		struct bucket *c = &set[i];
		if (c->family == family && memcmp(c->key, key, 16) == 0) {
			b = c;
			break;
		}
		/* A free bucket first, then the one seen longest ago. */
		if (victim->family && (!c->family || c->last_ms < victim->last_ms))
			victim = c;
	}
	if (!b) {
		b = victim;
		memcpy(b->key, key, 16);
		b->family = family;
		b->last_ms = now_ms;
		b->tokens = (uint32_t)cap;
	} else if (now_ms > b->last_ms) {
		uint64_t elapsed = now_ms - b->last_ms;
		if (elapsed > ELAPSED_MAX)
			elapsed = ELAPSED_MAX;
		uint64_t t = b->tokens + elapsed * lim->qps;
		b->tokens = (uint32_t)(t < cap ? t : cap);
		b->last_ms = now_ms;
	} else if (b->tokens > cap) {
		/* The burst was lowered by a reload. */
		b->tokens = (uint32_t)cap;
	}
	if (b->tokens < MILLI)
		return false;
	b->tokens -= MILLI;
	return true;
}
