/* SPDX-License-Identifier: MIT */
/*
 * Behavioural Sigma rules: correlations (event_count, value_count,
 * temporal) and legacy "| count([F]) by G > N" aggregations, counted in a
 * fixed table per scratch (one per worker thread), allocated when the engine
 * is fitted and never on the query path.
 *
 * A group is (behavioural rule, values of its group-by fields). Its window
 * is tumbling: it opens at the group's first event and lasts timespan; the
 * first event that takes the count across the threshold raises one alert,
 * and later events of that window raise none. Distinct values (value_count)
 * are counted exactly up to EXACT_MAX (by 32-bit hash), then with a
 * HyperLogLog of HLL_M registers fed with every value so far (standard error
 * 1.04 / sqrt(128) = 9.2%, less in the linear counting range below about
 * 320). A slot holds about 300 octets, so the table takes 1.2 MiB a worker. A full table evicts the
 * group seen least recently among the PROBE slots of the new one, and counts the eviction: an
 * evicted group starts again from zero (fails open: a missed alert, never a
 * blocked query).
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "dnsink/name.h"
#include "sigma_int.h"

#define CT_SLOTS  4096
#define PROBE     8
#define HLL_M     128
#define EXACT_MAX 32

struct centry {
	uint64_t key; /* 0: empty */
	uint64_t window_start;
	uint64_t last_seen;
	uint64_t count;
	uint32_t seen_mask; /* temporal: which base rules were seen */
	uint16_t corr;
	bool alerted;
	bool hll_on;
	uint8_t n_exact;
	uint32_t exact[EXACT_MAX];
	uint8_t hll[HLL_M];
};

struct dk__sg_ctable {
	struct centry *e;
	size_t mask;
	uint64_t groups, evictions;
};

int dk__sg_ctable_fit(struct dk__sg_ctable **ctp, size_t n_corrs)
{
	if (*ctp) {
		/* A reload renumbers the rules: what was counted no longer applies. */
		memset((*ctp)->e, 0, ((*ctp)->mask + 1) * sizeof(struct centry));
		(*ctp)->groups = 0;
		return 0;
	}
	if (!n_corrs)
		return 0;
	struct dk__sg_ctable *ct = calloc(1, sizeof(*ct));
	if (!ct || !(ct->e = calloc(CT_SLOTS, sizeof(struct centry)))) {
		free(ct);
		return -ENOMEM;
	}
	ct->mask = CT_SLOTS - 1;
	*ctp = ct;
	return 0;
}

void dk__sg_ctable_free(struct dk__sg_ctable *ct)
{
	if (!ct)
		return;
	free(ct->e);
	free(ct);
}

void dk__sg_ctable_stats(const struct dk__sg_ctable *ct, struct dk_sigma_count_stats *st)
{
	st->groups = ct ? ct->groups : 0;
	st->evictions = ct ? ct->evictions : 0;
}

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * UINT64_C(0x100000001b3);
	return dk_hash_mix64(h);
}

/* What the group-by and value fields read from one query. */
struct facts {
	const psl_ctx_t *psl;
	const struct dk_sigma_query *q;
	char text[DK_NAME_MAX * 4 + 1];
	size_t tlen;
	size_t regdom;
	bool have_regdom;
};

static const void *field_value(struct facts *f, uint8_t field, size_t *n, uint8_t buf[16])
{
	switch (field) {
	case DK_SIGMA_F_CLIENT: {
		const struct sockaddr *sa = f->q->client;
		if (sa && sa->sa_family == AF_INET) {
			memcpy(buf, &((const struct sockaddr_in *)sa)->sin_addr, 4);
			*n = 4;
		} else if (sa && sa->sa_family == AF_INET6) {
			memcpy(buf, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
			*n = 16;
		} else {
			*n = 0;
		}
		return buf;
	}
	case DK_SIGMA_F_QTYPE:
		buf[0] = (uint8_t)(f->q->qtype >> 8);
		buf[1] = (uint8_t)f->q->qtype;
		*n = 2;
		return buf;
	case DK_SIGMA_F_REGDOM:
		if (!f->have_regdom) {
			f->regdom = dk__sg_regdom(f->psl, f->text, f->tlen);
			f->have_regdom = true;
		}
		*n = f->tlen - f->regdom;
		return f->text + f->regdom;
	default: *n = f->tlen; return f->text;
	}
}

static const char *field_label(uint8_t field)
{
	switch (field) {
	case DK_SIGMA_F_CLIENT: return "src_ip";
	case DK_SIGMA_F_QTYPE: return "qtype";
	case DK_SIGMA_F_REGDOM: return "registered_domain";
	default: return "query";
	}
}

/* "src_ip=10.0.0.5,registered_domain=example.com" for the alert. */
static void key_text(struct facts *f, const struct dk__sg_corr *c, char *out, size_t size)
{
	size_t o = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < c->n_group && o < size; i++) {
		uint8_t buf[16];
		size_t n;
		const void *v = field_value(f, c->group[i], &n, buf);
		char val[DK_NAME_MAX * 4 + 1];
		if (c->group[i] == DK_SIGMA_F_CLIENT)
			inet_ntop(n == 4 ? AF_INET : AF_INET6, v, val, sizeof(val));
		else if (c->group[i] == DK_SIGMA_F_QTYPE)
			snprintf(val, sizeof(val), "%u", f->q->qtype);
		else
			snprintf(val, sizeof(val), "%.*s", (int)n, (const char *)v);
		int w = snprintf(out + o, size - o, "%s%s=%s", i ? "," : "",
		                 field_label(c->group[i]), val);
		if (w < 0)
			break;
		o += (size_t)w;
	}
	if (o >= size)
		out[size - 1] = '\0';
}

static uint64_t hll_estimate(const struct centry *e)
{
	double sum = 0;
	unsigned zeros = 0;

	for (unsigned i = 0; i < HLL_M; i++) {
		sum += ldexp(1.0, -(int)e->hll[i]);
		zeros += e->hll[i] == 0;
	}
	double m = HLL_M, est = (0.7213 / (1 + 1.079 / m)) * m * m / sum;
	if (est <= 2.5 * m && zeros)
		est = m * log(m / zeros);
	return (uint64_t)(est + 0.5);
}

static void hll_add(struct centry *e, uint32_t h32)
{
	/* Spread the 32-bit value hash over 64 bits for index and rank. */
	uint64_t h = dk_hash_mix64((uint64_t)h32 << 32 | h32);
	unsigned idx = (unsigned)(h & (HLL_M - 1));
	uint64_t w = h >> 7;
	uint8_t rank = (uint8_t)(w ? __builtin_ctzll(w) + 1 : 58);

	if (rank > e->hll[idx])
		e->hll[idx] = rank;
}

/* Adds value hash @p h to the distinct count of @p e. */
static void distinct_add(struct centry *e, uint64_t h)
{
	uint32_t h32 = (uint32_t)(h >> 32);

	if (!e->hll_on) {
		for (unsigned i = 0; i < e->n_exact; i++) {
			if (e->exact[i] == h32)
				return;
		}
		if (e->n_exact < EXACT_MAX) {
			e->exact[e->n_exact++] = h32;
			e->count = e->n_exact;
			return;
		}
		/* Past the exact room: the sketch takes every value seen so far. */
		e->hll_on = true;
		for (unsigned i = 0; i < e->n_exact; i++)
			hll_add(e, e->exact[i]);
	}
	hll_add(e, h32);
	uint64_t est = hll_estimate(e);
	e->count = est > EXACT_MAX ? est : EXACT_MAX + 1;
}

static struct centry *lookup(struct dk__sg_ctable *ct, uint64_t key, uint16_t corr, uint64_t now)
{
	struct centry *victim = NULL;

	for (unsigned i = 0; i < PROBE; i++) {
		struct centry *e = &ct->e[(key + i) & ct->mask];
		if (e->key == key && e->corr == corr)
			return e;
		if (!e->key) {
			if (!victim || victim->key)
				victim = e;
		} else if (!victim || (victim->key && e->last_seen < victim->last_seen)) {
			victim = e;
		}
	}
	if (victim->key)
		ct->evictions++;
	else
		ct->groups++;
	memset(victim, 0, sizeof(*victim));
	victim->key = key;
	victim->corr = corr;
	victim->window_start = now;
	return victim;
}

static bool crossed(const struct dk__sg_corr *c, uint64_t n)
{
	switch (c->cmp) {
	case SG_CMP_GT: return n > c->threshold;
	case SG_CMP_EQ: return n == c->threshold;
	default: return n >= c->threshold;
	}
}

void dk__sg_count(struct dk__sg_ctable *ct, const struct dk__sg_tables *t, const psl_ctx_t *psl,
                  const struct dk_sigma_query *q, uint64_t now_ms, struct dk_sigma_hits *hits)
{
	struct facts f = {.psl = psl, .q = q};
	bool have_text = false;

	if (!hits->n_eng)
		return;
	for (size_t ci = 0; ci < t->n_corrs; ci++) {
		const struct dk__sg_corr *c = &t->corrs[ci];
		uint32_t mask = 0;

		for (unsigned j = 0; j < c->n_base; j++) {
			for (unsigned k = 0; k < hits->n_eng; k++) {
				if (hits->eng[k] == c->base[j])
					mask |= 1u << j;
			}
		}
		if (!mask)
			continue;
		if (!have_text) {
			int n = dk_name_to_text(q->qname, q->qname_len, f.text, sizeof(f.text));
			f.tlen = n > 1 || (n == 1 && f.text[0] != '.') ? (size_t)n : 0;
			have_text = true;
		}
		uint64_t key = hash_bytes(UINT64_C(0xcbf29ce484222325) ^ ci, NULL, 0);
		for (unsigned g = 0; g < c->n_group; g++) {
			uint8_t buf[16];
			size_t n;
			const void *v = field_value(&f, c->group[g], &n, buf);
			key = hash_bytes(key ^ g, v, n);
		}
		key |= 1; /* never 0, the empty slot */
		struct centry *e = lookup(ct, key, (uint16_t)ci, now_ms);
		e->last_seen = now_ms;
		if (now_ms - e->window_start >= c->timespan_ms) {
			memset(&e->window_start, 0,
			       sizeof(*e) - offsetof(struct centry, window_start));
			e->corr = (uint16_t)ci;
			e->window_start = now_ms;
			e->last_seen = now_ms;
		}
		switch (c->type) {
		case SG_CORR_EVENT_COUNT: e->count++; break;
		case SG_CORR_VALUE_COUNT: {
			uint8_t buf[16];
			size_t n;
			const void *v = field_value(&f, c->value_field, &n, buf);
			distinct_add(e, hash_bytes(UINT64_C(0x84222325cbf29ce4), v, n));
			break;
		}
		case SG_CORR_TEMPORAL:
			e->seen_mask |= mask;
			e->count = (uint64_t)__builtin_popcount(e->seen_mask);
			break;
		}
		if (e->alerted || !crossed(c, e->count))
			continue;
		e->alerted = true;
		if (hits->n_corr >= DK_ARRAY_SIZE(hits->corr))
			continue;
		hits->corr[hits->n_corr].rule = c->policy_index;
		hits->corr[hits->n_corr].count = e->count;
		key_text(&f, c, hits->corr[hits->n_corr].key, sizeof(hits->corr[0].key));
		hits->n_corr++;
	}
}
