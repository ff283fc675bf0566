/* SPDX-License-Identifier: MIT */
/*
 * The prefix table (see prefix.h). Why a hash per length and not a trie: a
 * lookup costs one probe per distinct prefix length, and configs hold few
 * lengths (/8, /16, /24, /32, /48, /64, /128...) however many prefixes they
 * list, so it stays a handful of cache lines while a binary trie walks up to
 * 128 nodes for an IPv6 client. The table is at most half full, so a probe
 * sequence is short.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "dnsink/prefix.h"

struct slot {
	uint8_t addr[16]; /* masked network address; 4 octets used for IPv4 */
	uint8_t used;
	uint8_t v6;
	uint8_t len; /* prefix length in bits */
	uint16_t value;
};

struct dk_prefix_table {
	struct slot *slots;
	size_t mask; /* slots - 1, a power of two minus one */
	size_t count;
	/* Prefix lengths present, longest first, per family (0: IPv4, 1: IPv6). */
	uint8_t lens[2][129];
	uint8_t n_lens[2];
};

/* Copies @p a (@p bytes octets) into @p out with the bits past @p len cleared. */
static void mask_addr(const uint8_t *a, unsigned bytes, unsigned len, uint8_t out[16])
{
	unsigned full = len / 8, rest = len % 8;

	memset(out, 0, 16);
	memcpy(out, a, full);
	if (rest && full < bytes)
		out[full] = (uint8_t)(a[full] & (0xff << (8 - rest)));
}

/* FNV-1a over what identifies a prefix: family, length and masked address. */
static size_t hash(unsigned v6, unsigned len, const uint8_t addr[16])
{
	uint64_t h = 0xcbf29ce484222325ull;
	unsigned bytes = v6 ? 16 : 4;

	h = (h ^ (v6 << 8 | len)) * 0x100000001b3ull;
	for (unsigned i = 0; i < bytes; i++)
		h = (h ^ addr[i]) * 0x100000001b3ull;
	return (size_t)(h ^ (h >> 29));
}

static struct slot *find(const struct dk_prefix_table *t, unsigned v6, unsigned len,
                         const uint8_t addr[16])
{
	unsigned bytes = v6 ? 16 : 4;

	for (size_t i = hash(v6, len, addr) & t->mask;; i = (i + 1) & t->mask) {
		struct slot *s = &t->slots[i];
		if (!s->used || (s->v6 == v6 && s->len == len && !memcmp(s->addr, addr, bytes)))
			return s;
	}
}

static void add_len(struct dk_prefix_table *t, unsigned v6, uint8_t len)
{
	uint8_t *l = t->lens[v6];
	unsigned n = t->n_lens[v6], i = 0;

	while (i < n && l[i] > len)
		i++;
	if (i < n && l[i] == len)
		return;
	memmove(l + i + 1, l + i, n - i);
	l[i] = len;
	t->n_lens[v6]++;
}

int dk_prefix_table_new(const struct dk_cidr *cidrs, const uint16_t *values, size_t n,
                        struct dk_prefix_table **out, size_t *dup)
{
	struct dk_prefix_table *t = calloc(1, sizeof(*t));
	size_t cap = 8;

	*out = NULL;
	if (!t)
		return -ENOMEM;
	while (cap < n * 2)
		cap *= 2;
	t->slots = calloc(cap, sizeof(*t->slots));
	if (!t->slots) {
		free(t);
		return -ENOMEM;
	}
	t->mask = cap - 1;
	for (size_t i = 0; i < n; i++) {
		const struct dk_cidr *c = &cidrs[i];
		unsigned v6 = c->family == AF_INET6;
		unsigned max = v6 ? 128 : 32;
		uint8_t a[16];

		if ((c->family != AF_INET && !v6) || c->prefix > max) {
			dk_prefix_table_free(t);
			return -EINVAL;
		}
		mask_addr(c->addr, v6 ? 16 : 4, c->prefix, a);
		struct slot *s = find(t, v6, c->prefix, a);
		if (s->used) {
			if (dup)
				*dup = i;
			dk_prefix_table_free(t);
			return DK_EDUP;
		}
		memcpy(s->addr, a, 16);
		s->used = 1;
		s->v6 = (uint8_t)v6;
		s->len = c->prefix;
		s->value = values[i];
		t->count++;
		add_len(t, v6, c->prefix);
	}
	*out = t;
	return 0;
}

void dk_prefix_table_free(struct dk_prefix_table *t)
{
	if (!t)
		return;
	free(t->slots);
	free(t);
}

size_t dk_prefix_table_count(const struct dk_prefix_table *t)
{
	return t ? t->count : 0;
}

bool dk_prefix_lookup(const struct dk_prefix_table *t, int family, const uint8_t *addr,
                      uint16_t *value)
{
	unsigned v6 = family == AF_INET6;

	if (!t || !t->count || (family != AF_INET && !v6))
		return false;
	for (unsigned i = 0; i < t->n_lens[v6]; i++) {
		uint8_t a[16];
		unsigned len = t->lens[v6][i];

		mask_addr(addr, v6 ? 16 : 4, len, a);
		const struct slot *s = find(t, v6, len, a);
		if (s->used) {
			*value = s->value;
			return true;
		}
	}
	return false;
}

bool dk_prefix_lookup_sa(const struct dk_prefix_table *t, const struct sockaddr *sa,
                         uint16_t *value)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (sa->sa_family == AF_INET)
		return dk_prefix_lookup(
		        t, AF_INET, (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr,
		        value);
	if (sa->sa_family != AF_INET6)
		return false;
	const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	if (dk_prefix_lookup(t, AF_INET6, a, value))
		return true;
	return !memcmp(a, mapped, sizeof(mapped)) && dk_prefix_lookup(t, AF_INET, a + 12, value);
}
