/* SPDX-License-Identifier: MIT */
/*
 * IP prefix sets (see ipset.h). The entries are sorted by family, prefix
 * length (longest first) and address; each run of one family and length is
 * a group, and a lookup tries the groups of its family in order, masking
 * the address to the group's length and searching the run. The first hit is
 * the longest prefix. Real RPZ feeds hold a handful of distinct lengths
 * (/32, /24, /128, /64), so this is a few binary searches.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dnsink/ipset.h"

struct group {
	uint8_t family, prefix;
	size_t start, n;
};

struct dk_ipset {
	struct dk_ipset_entry *e;
	size_t n;
	struct group *groups;
	size_t n_groups;
};

static size_t addr_len(uint8_t family)
{
	return family == AF_INET ? 4 : 16;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct dk_ipset_entry *x = a, *y = b;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	if (x->prefix != y->prefix)
		return x->prefix > y->prefix ? -1 : 1;
	return memcmp(x->addr, y->addr, 16);
}

static void mask(uint8_t *out, const uint8_t *addr, size_t len, unsigned prefix)
{
	memset(out, 0, 16);
	for (size_t b = 0; b < len; b++) {
		unsigned keep = prefix >= (b + 1) * 8 ? 8
		                : prefix > b * 8      ? prefix - (unsigned)b * 8
		                                      : 0;
		out[b] = addr[b] & (uint8_t)(0xff00u >> keep);
	}
}

struct dk_ipset *dk_ipset_new(struct dk_ipset_entry *e, size_t n, dk_ipset_merge_fn merge,
                              void *ctx)
{
	struct dk_ipset *s = calloc(1, sizeof(*s));

	if (!s) {
		free(e);
		return NULL;
	}
	/* Bits past the prefix are cleared here too, so that lookups compare whole addresses. */
	for (size_t i = 0; i < n; i++) {
		uint8_t m[16];
		mask(m, e[i].addr, addr_len(e[i].family), e[i].prefix);
		memcpy(e[i].addr, m, 16);
	}
	if (n)
		qsort(e, n, sizeof(*e), cmp_entry);
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		if (w && cmp_entry(&e[w - 1], &e[i]) == 0) {
			e[w - 1].value =
			        merge ? merge(e[w - 1].value, e[i].value, ctx) : e[w - 1].value;
			continue;
		}
		e[w++] = e[i];
	}
	s->e = e;
	s->n = w;
	for (size_t i = 0; i < w; i++) {
		if (i == 0 || e[i].family != e[i - 1].family || e[i].prefix != e[i - 1].prefix)
			s->n_groups++;
	}
	if (s->n_groups && !(s->groups = calloc(s->n_groups, sizeof(*s->groups)))) {
		dk_ipset_free(s);
		return NULL;
	}
	size_t g = 0;
	for (size_t i = 0; i < w; i++) {
		if (i == 0 || e[i].family != e[i - 1].family || e[i].prefix != e[i - 1].prefix)
			s->groups[g++] = (struct group){e[i].family, e[i].prefix, i, 0};
		s->groups[g - 1].n++;
	}
	return s;
}

void dk_ipset_free(struct dk_ipset *s)
{
	if (!s)
		return;
	free(s->e);
	free(s->groups);
	free(s);
}

bool dk_ipset_lookup(const struct dk_ipset *s, int family, const uint8_t *addr, uint32_t *value,
                     uint8_t *prefix)
{
	if (!s || (family != AF_INET && family != AF_INET6))
		return false;
	size_t len = addr_len((uint8_t)family);
	for (size_t g = 0; g < s->n_groups; g++) {
		const struct group *gr = &s->groups[g];
		if (gr->family != family)
			continue;
		uint8_t m[16];
		mask(m, addr, len, gr->prefix);
		size_t lo = gr->start, hi = gr->start + gr->n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			int c = memcmp(s->e[mid].addr, m, 16);
			if (c == 0) {
				*value = s->e[mid].value;
				*prefix = gr->prefix;
				return true;
			}
			if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
	}
	return false;
}

size_t dk_ipset_count(const struct dk_ipset *s)
{
	return s ? s->n : 0;
}
