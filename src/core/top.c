/* SPDX-License-Identifier: MIT */
/* The busiest keys of the last minutes, Space-Saving per minute (see top.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dnsink/common.h"
#include "dnsink/top.h"

struct slot {
	uint64_t hash; /* 0: empty */
	uint64_t count;
	uint64_t error;
	char key[DK_TOP_KEY_MAX];
};

struct minute {
	uint64_t index; /* minute number (now_ms / 60000) + 1; 0: never used */
	uint64_t events;
	struct slot s[DK_TOP_DIMS][DK_TOP_SLOTS];
	unsigned used[DK_TOP_DIMS];
};

struct dk_top {
	struct minute m[DK_TOP_MINUTES];
};

int dk_top_new(struct dk_top **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void dk_top_free(struct dk_top *t)
{
	free(t);
}

/* FNV-1a; never 0, which marks an empty slot. */
static uint64_t key_hash(const char *k, size_t n)
{
	uint64_t h = 14695981039346656037ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)k[i]) * 1099511628211ULL;
	return h ? h : 1;
}

static struct minute *minute_at(struct dk_top *t, uint64_t now_ms)
{
	uint64_t idx = now_ms / 60000 + 1;
	struct minute *m = &t->m[idx % DK_TOP_MINUTES];

	if (m->index != idx) {
		memset(m, 0, sizeof(*m));
		m->index = idx;
	}
	return m;
}

static void count_key(struct minute *m, enum dk_top_dim d, const char *key)
{
	size_t n = strnlen(key, DK_TOP_KEY_MAX - 1);
	uint64_t h = key_hash(key, n);
	struct slot *s = m->s[d], *min = NULL;

	for (unsigned i = 0; i < m->used[d]; i++) {
		if (s[i].hash == h && strncmp(s[i].key, key, n) == 0 && s[i].key[n] == '\0') {
			s[i].count++;
			return;
		}
		if (!min || s[i].count < min->count)
			min = &s[i];
	}
	if (m->used[d] < DK_TOP_SLOTS) {
		min = &s[m->used[d]++];
		min->count = 0;
		min->error = 0;
	} else {
		/* Space-Saving: the new key inherits the smallest count as its error. */
		min->error = min->count;
	}
	min->hash = h;
	min->count++;
	memcpy(min->key, key, n);
	min->key[n] = '\0';
}

void dk_top_add(struct dk_top *t, uint64_t now_ms, const char *const keys[DK_TOP_DIMS])
{
	struct minute *m = minute_at(t, now_ms);

	m->events++;
	for (int d = 0; d < DK_TOP_DIMS; d++)
		if (keys[d] && keys[d][0])
			count_key(m, (enum dk_top_dim)d, keys[d]);
}

/* Whether minute @p m is one of the @p minutes up to now. */
static bool in_window(const struct minute *m, uint64_t now_ms, unsigned minutes)
{
	uint64_t idx = now_ms / 60000 + 1;

	return m->index && m->index <= idx && idx - m->index < minutes;
}

static unsigned clamp_minutes(unsigned minutes)
{
	return minutes < 1 ? 1 : minutes > DK_TOP_MINUTES ? DK_TOP_MINUTES : minutes;
}

uint64_t dk_top_events(const struct dk_top *t, uint64_t now_ms, unsigned minutes)
{
	uint64_t sum = 0;

	minutes = clamp_minutes(minutes);
	for (unsigned i = 0; i < DK_TOP_MINUTES; i++)
		if (in_window(&t->m[i], now_ms, minutes))
			sum += t->m[i].events;
	return sum;
}

static int item_cmp(const void *a, const void *b)
{
	const struct dk_top_item *x = a, *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp(x->key, y->key);
}

int dk_top_query(const struct dk_top *t, uint64_t now_ms, unsigned minutes, enum dk_top_dim dim,
                 struct dk_top_item *out, size_t n)
{
	struct dk_top_item *all;
	size_t k = 0;

	if ((unsigned)dim >= DK_TOP_DIMS)
		return -EINVAL;
	minutes = clamp_minutes(minutes);
	all = calloc((size_t)DK_TOP_MINUTES * DK_TOP_SLOTS, sizeof(*all));
	if (!all)
		return -ENOMEM;
	/* Merge the minutes: a key's counts (and errors) add up. */
	for (unsigned i = 0; i < DK_TOP_MINUTES; i++) {
		const struct minute *m = &t->m[i];
		if (!in_window(m, now_ms, minutes))
			continue;
		for (unsigned j = 0; j < m->used[dim]; j++) {
			const struct slot *s = &m->s[dim][j];
			size_t x = 0;
			while (x < k && strcmp(all[x].key, s->key) != 0)
				x++;
			if (x == k) {
				memcpy(all[k].key, s->key, sizeof(all[k].key));
				k++;
			}
			all[x].count += s->count;
			all[x].error += s->error;
		}
	}
	qsort(all, k, sizeof(*all), item_cmp);
	if (n > k)
		n = k;
	memcpy(out, all, n * sizeof(*out));
	free(all);
	return (int)n;
}
