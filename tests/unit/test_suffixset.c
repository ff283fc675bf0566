/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of suffixset.c. Every lookup is checked against a reference
 * matcher written here from the header's rules alone: a sorted list of the
 * added entries, searched suffix by suffix, longest first, folding the values
 * of equal names with the same merge function in the order they were added.
 * The reference knows nothing of hashing, tags or arenas. A few tables also
 * spell out the expected answer, for the cases the spec names (parent,
 * sibling, "notmoneropool.ru", "*.name" apex, root entry).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dnsink/name.h"
#include "dnsink/suffixset.h"

/* ---- The reference matcher. ------------------------------------------- */

struct ref_entry {
	uint32_t off; /* into ref.names */
	uint8_t len;
	bool below_only;
	uint16_t value;
	uint32_t seq; /* order of addition */
};

struct ref {
	uint8_t *names;
	size_t names_len, names_cap;
	struct ref_entry *e;
	size_t n, cap;
	dk_suffixset_merge_fn merge;
	void *ctx;
	bool sorted;
};

static void ref_add(struct ref *r, const uint8_t *wire, size_t len, bool below_only, uint16_t value)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 64;
		r->e = realloc(r->e, r->cap * sizeof(*r->e));
		assert_non_null(r->e);
	}
	if (r->names_len + len > r->names_cap) {
		r->names_cap = (r->names_cap + len) * 2;
		r->names = realloc(r->names, r->names_cap);
		assert_non_null(r->names);
	}
	memcpy(r->names + r->names_len, wire, len);
	r->e[r->n] = (struct ref_entry){(uint32_t)r->names_len, (uint8_t)len, below_only, value,
	                                (uint32_t)r->n};
	r->names_len += len;
	r->n++;
	r->sorted = false;
}

static const struct ref *sort_ref;

static int ref_cmp_name(const struct ref *r, const struct ref_entry *a, const uint8_t *w,
                        size_t len)
{
	if (a->len != len)
		return a->len < len ? -1 : 1;
	return memcmp(r->names + a->off, w, len);
}

static int ref_cmp(const void *pa, const void *pb)
{
	const struct ref_entry *a = pa, *b = pb;
	int c = ref_cmp_name(sort_ref, a, sort_ref->names + b->off, b->len);

	if (c)
		return c;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void ref_sort(struct ref *r)
{
	sort_ref = r;
	qsort(r->e, r->n, sizeof(*r->e), ref_cmp);
	r->sorted = true;
}

static size_t ref_distinct(struct ref *r)
{
	size_t d = 0;

	if (!r->sorted)
		ref_sort(r);
	for (size_t i = 0; i < r->n; i++) {
		if (i == 0 || ref_cmp_name(r, &r->e[i - 1], r->names + r->e[i].off, r->e[i].len))
			d++;
	}
	return d;
}

static bool ref_lookup(struct ref *r, const uint8_t *wire, size_t len, struct dk_suffixset_match *m)
{
	uint8_t offs[DK_LABELS_MAX + 1];
	int n = dk_name_labels(wire, len, offs);

	if (!r->sorted)
		ref_sort(r);
	offs[n] = (uint8_t)(len - 1);
	for (int i = 0; i <= n; i++) {
		const uint8_t *suf = wire + offs[i];
		size_t slen = len - offs[i];
		size_t lo = 0, hi = r->n;

		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (ref_cmp_name(r, &r->e[mid], suf, slen) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		uint16_t v = DK_SUFFIXSET_NONE;
		for (size_t k = lo; k < r->n && !ref_cmp_name(r, &r->e[k], suf, slen); k++) {
			if (i == 0 && r->e[k].below_only)
				continue;
			if (v == DK_SUFFIXSET_NONE)
				v = r->e[k].value;
			else if (r->merge)
				v = r->merge(v, r->e[k].value, r->ctx);
		}
		if (v != DK_SUFFIXSET_NONE) {
			m->value = v;
			m->offset = offs[i];
			m->labels = (uint8_t)i;
			m->below = i > 0;
			return true;
		}
	}
	return false;
}

static void ref_free(struct ref *r)
{
	free(r->names);
	free(r->e);
}

/* ---- Helpers. ---------------------------------------------------------- */

static size_t wire_of(const char *text, uint8_t *out)
{
	size_t len;
	int rc = dk_name_from_text(text, strlen(text), 0, out, &len);

	if (rc != 0)
		fail_msg("bad test name \"%s\": %d", text, rc);
	return len;
}

/* Adds text entry @text ("name" or "*.name") to both the builder and @r. */
static void add_both(struct dk_suffixset_builder *b, struct ref *r, const char *text,
                     uint16_t value)
{
	uint8_t w[DK_NAME_MAX];
	bool below = text[0] == '*' && text[1] == '.';
	size_t len = wire_of(below ? text + 2 : text, w);

	assert_int_equal(dk_suffixset_builder_add(b, w, len, below, value), 0);
	if (r)
		ref_add(r, w, len, below, value);
}

static void check_same(struct ref *r, const struct dk_suffixset *s, const uint8_t *w, size_t len)
{
	struct dk_suffixset_match got, want;
	bool g, x;

	memset(&got, 0x5a, sizeof(got));
	memset(&want, 0x5a, sizeof(want));
	g = dk_suffixset_lookup(s, w, len, &got);
	x = ref_lookup(r, w, len, &want);
	if (g != x) {
		char t[1100];
		dk_name_to_text(w, len, t, sizeof(t));
		fail_msg("%s: set says %d, reference %d", t, g, x);
	}
	if (!g)
		return;
	assert_int_equal(got.value, want.value);
	assert_int_equal(got.offset, want.offset);
	assert_int_equal(got.labels, want.labels);
	assert_int_equal(got.below, want.below);
}

static unsigned merge_calls;

/* The smaller value wins, like an earlier-loaded rule; checks the contract. */
static uint16_t merge_min(uint16_t old, uint16_t add, void *ctx)
{
	assert_ptr_equal(ctx, &merge_calls);
	assert_int_not_equal(old, DK_SUFFIXSET_NONE);
	assert_int_not_equal(add, DK_SUFFIXSET_NONE);
	merge_calls++;
	return old < add ? old : add;
}

static uint16_t merge_max(uint16_t old, uint16_t add, void *ctx)
{
	assert_int_not_equal(old, DK_SUFFIXSET_NONE);
	merge_calls++;
	(void)ctx;
	return old > add ? old : add;
}

/* ---- Tables named by the spec. ------------------------------------------ */

struct entry {
	const char *text;
	uint16_t value;
};

static const struct entry basic_entries[] = {
        {"moneropool.ru", 1},      {"*.hopto.org", 2}, {"example.com", 3}, {"www.example.com", 4},
        {"*.deep.example.com", 5}, {"a\\.b.com", 6},   {"org", 7},         {"Mixed.CASE.net.", 8},
        {"xn--80ak6aa92e.com", 9},
};

struct query {
	const char *text;
	int value; /* -1: no match */
	int labels;
	bool below;
};

static const struct query basic_queries[] = {
        {"moneropool.ru", 1, 0, false},
        {"MoneroPool.RU.", 1, 0, false},
        {"abc.abc.moneropool.ru.", 1, 2, true},
        {"notmoneropool.ru", -1, 0, false},
        {"moneropool.ru.evil", -1, 0, false},
        {"ru", -1, 0, false},
        {"pool.ru", -1, 0, false},
        {"hopto.org", 7, 1, true}, /* the wildcard skips the apex; "org" applies */
        {"x.hopto.org", 2, 1, true},
        {"a.b.hopto.org", 2, 2, true},
        {"org", 7, 0, false},
        {"example.com", 3, 0, false},
        {"mail.example.com", 3, 1, true},
        {"www.example.com", 4, 0, false},
        {"x.www.example.com", 4, 1, true},
        {"deep.example.com", 3, 1, true},
        {"x.deep.example.com", 5, 1, true},
        {"y.x.deep.example.com", 5, 2, true},
        {"example.net", -1, 0, false},
        {"com", -1, 0, false},
        {"a.b.com", -1, 0, false},
        {"b.com", -1, 0, false},
        {"a\\.b.com", 6, 0, false},
        {"x.a\\.b.com", 6, 1, true},
        {"mixed.case.net", 8, 0, false},
        {"SUB.MIXED.case.NET", 8, 1, true},
        {".", -1, 0, false},
};

static struct dk_suffixset *build(const struct entry *e, size_t n, struct ref *r,
                                  dk_suffixset_merge_fn merge, void *ctx)
{
	struct dk_suffixset_builder *b = dk_suffixset_builder_new(n, merge, ctx);

	assert_non_null(b);
	for (size_t i = 0; i < n; i++)
		add_both(b, r, e[i].text, e[i].value);
	struct dk_suffixset *s = dk_suffixset_builder_finish(b);
	assert_non_null(s);
	return s;
}

static void run_queries(struct ref *r, const struct dk_suffixset *s, const struct query *q,
                        size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t w[DK_NAME_MAX];
		size_t len = wire_of(q[i].text, w);
		struct dk_suffixset_match m;
		bool hit = dk_suffixset_lookup(s, w, len, &m);

		if (hit != (q[i].value >= 0))
			fail_msg("%s: match %d, want %d", q[i].text, hit, q[i].value >= 0);
		if (hit) {
			uint8_t offs[DK_LABELS_MAX];
			int nl = dk_name_labels(w, len, offs);
			size_t at = q[i].labels < nl ? offs[q[i].labels] : len - 1;

			if (m.value != q[i].value)
				fail_msg("%s: value %u, want %d", q[i].text, m.value, q[i].value);
			assert_int_equal(m.labels, q[i].labels);
			assert_int_equal(m.below, q[i].below);
			assert_int_equal(m.offset, at);
		}
		check_same(r, s, w, len);
	}
}

static void test_basic(void **state)
{
	struct ref r = {0};
	struct dk_suffixset *s;

	(void)state;
	s = build(basic_entries, DK_ARRAY_SIZE(basic_entries), &r, NULL, NULL);
	assert_int_equal(dk_suffixset_count(s), DK_ARRAY_SIZE(basic_entries));
	run_queries(&r, s, basic_queries, DK_ARRAY_SIZE(basic_queries));
	dk_suffixset_free(s);
	ref_free(&r);
}

static void test_root_entry(void **state)
{
	static const struct entry e[] = {{".", 11}, {"example.com", 12}, {"*.org", 13}};
	static const struct query q[] = {
	        {".", 11, 0, false},
	        {"com", 11, 1, true},
	        {"a.b.c.d.e.f.g", 11, 7, true},
	        {"example.com", 12, 0, false},
	        {"x.example.com", 12, 1, true},
	        {"org", 11, 1, true},
	        {"x.org", 13, 1, true},
	};
	struct ref r = {0};
	struct dk_suffixset *s;

	(void)state;
	s = build(e, DK_ARRAY_SIZE(e), &r, NULL, NULL);
	run_queries(&r, s, q, DK_ARRAY_SIZE(q));
	dk_suffixset_free(s);
	ref_free(&r);

	/* "*." (below the root only): every name but the root itself. */
	uint8_t w[DK_NAME_MAX];
	struct dk_suffixset_builder *b = dk_suffixset_builder_new(0, NULL, NULL);
	struct dk_suffixset_match m;
	assert_int_equal(dk_suffixset_builder_add(b, (const uint8_t *)"", 1, true, 20), 0);
	s = dk_suffixset_builder_finish(b);
	assert_false(dk_suffixset_lookup(s, w, wire_of(".", w), &m));
	assert_true(dk_suffixset_lookup(s, w, wire_of("net", w), &m));
	assert_int_equal(m.value, 20);
	assert_int_equal(m.offset, 4);
	dk_suffixset_free(s);
}

static void test_merge(void **state)
{
	static const struct entry e[] = {
	        {"a.com", 5},   {"*.a.com", 9}, {"a.com", 7}, /* self 5,7; below 5,9,7 */
	        {"*.b.com", 1}, {"b.com", 2},                 /* self 2 alone; below 1,2 */
	        {"c.com", 3},   {"c.com", 3},                 /* identical twice */
	};
	static const struct query q[] = {
	        {"a.com", 7, 0, false},  {"x.a.com", 9, 1, true}, {"b.com", 2, 0, false},
	        {"x.b.com", 2, 1, true}, {"c.com", 3, 0, false},  {"x.c.com", 3, 1, true},
	};
	struct ref r = {0};
	struct dk_suffixset *s;

	(void)state;
	merge_calls = 0;
	r.merge = merge_max;
	s = build(e, DK_ARRAY_SIZE(e), &r, merge_max, NULL);
	/* a.com: below 1 + self 1 + below 1; b.com: below 1; c.com: 2. */
	assert_int_equal(merge_calls, 6);
	assert_int_equal(dk_suffixset_count(s), 3);
	run_queries(&r, s, q, DK_ARRAY_SIZE(q));
	dk_suffixset_free(s);
	ref_free(&r);

	/* Without a merge function the first value stays. */
	static const struct query q_first[] = {
	        {"a.com", 5, 0, false},
	        {"x.a.com", 5, 1, true},
	        {"b.com", 2, 0, false},
	        {"x.b.com", 1, 1, true},
	};
	struct ref r2 = {0};
	s = build(e, DK_ARRAY_SIZE(e), &r2, NULL, NULL);
	run_queries(&r2, s, q_first, DK_ARRAY_SIZE(q_first));
	dk_suffixset_free(s);
	ref_free(&r2);

	/* The context reaches the merge function. */
	merge_calls = 0;
	struct ref r3 = {.merge = merge_min, .ctx = &merge_calls};
	s = build(e, DK_ARRAY_SIZE(e), &r3, merge_min, &merge_calls);
	assert_int_equal(merge_calls, 6);
	static const struct query q_min[] = {
	        {"a.com", 5, 0, false},
	        {"x.a.com", 5, 1, true},
	        {"x.b.com", 1, 1, true},
	};
	run_queries(&r3, s, q_min, DK_ARRAY_SIZE(q_min));
	dk_suffixset_free(s);
	ref_free(&r3);
}

/*
 * An entry stored with one value that a later entry gives a second, different
 * value moves to the end of the arena; the rehashes that growth brings after
 * that must keep the moved entry and drop the one left behind.
 */
static void test_entry_grows(void **state)
{
	(void)state;
	struct dk_suffixset_builder *b = dk_suffixset_builder_new(0, merge_max, NULL);
	struct dk_suffixset_match m;
	uint8_t w[DK_NAME_MAX];
	size_t len;

	assert_non_null(b);
	len = wire_of("x.example", w);
	assert_int_equal(dk_suffixset_builder_add_slots(b, w, len, DK_SUFFIXSET_SELF, 7), 0);
	assert_int_equal(dk_suffixset_builder_add_slots(b, w, len, DK_SUFFIXSET_BELOW, 9), 0);
	len = wire_of("y.example", w);
	assert_int_equal(dk_suffixset_builder_add(b, w, len, false, 3), 0);
	assert_int_equal(dk_suffixset_builder_add_slots(b, w, len, DK_SUFFIXSET_BELOW, 5), 0);
	for (unsigned i = 0; i < 300; i++) {
		char t[32];
		snprintf(t, sizeof(t), "n%u.example", i);
		len = wire_of(t, w);
		assert_int_equal(dk_suffixset_builder_add(b, w, len, i % 2, (uint16_t)i), 0);
	}
	assert_int_equal(dk_suffixset_builder_count(b), 302);
	struct dk_suffixset *s = dk_suffixset_builder_finish(b);
	assert_non_null(s);
	assert_int_equal(dk_suffixset_count(s), 302);

	len = wire_of("x.example", w);
	assert_true(dk_suffixset_lookup(s, w, len, &m));
	assert_int_equal(m.value, 7);
	len = wire_of("a.x.example", w);
	assert_true(dk_suffixset_lookup(s, w, len, &m));
	assert_int_equal(m.value, 9);
	assert_true(m.below);
	len = wire_of("y.example", w);
	assert_true(dk_suffixset_lookup(s, w, len, &m));
	assert_int_equal(m.value, 3);
	len = wire_of("b.y.example", w);
	assert_true(dk_suffixset_lookup(s, w, len, &m));
	assert_int_equal(m.value, 5);
	len = wire_of("n7.example", w);
	assert_false(dk_suffixset_lookup(s, w, len, &m)); /* "*.n7": below only */
	len = wire_of("c.n7.example", w);
	assert_true(dk_suffixset_lookup(s, w, len, &m));
	assert_int_equal(m.value, 7);
	dk_suffixset_free(s);
}

static void test_empty_and_invalid(void **state)
{
	struct dk_suffixset_builder *b;
	struct dk_suffixset *s;
	struct dk_suffixset_match m;
	uint8_t w[DK_NAME_MAX];
	size_t len = wire_of("example.com", w);

	(void)state;
	assert_false(dk_suffixset_lookup(NULL, w, len, &m));
	assert_int_equal(dk_suffixset_count(NULL), 0);
	assert_int_equal(dk_suffixset_bytes(NULL), 0);
	dk_suffixset_free(NULL);
	dk_suffixset_builder_free(NULL);

	b = dk_suffixset_builder_new(0, NULL, NULL);
	assert_non_null(b);
	assert_int_equal(dk_suffixset_builder_count(b), 0);
	assert_int_equal(dk_suffixset_builder_add(b, w, len, false, DK_SUFFIXSET_NONE), -EINVAL);
	assert_int_equal(dk_suffixset_builder_add(b, w, len - 1, false, 1), -EINVAL);
	assert_int_equal(dk_suffixset_builder_add(b, w, 0, false, 1), -EINVAL);
	assert_int_equal(dk_suffixset_builder_count(b), 0);
	s = dk_suffixset_builder_finish(b);
	assert_non_null(s);
	assert_int_equal(dk_suffixset_count(s), 0);
	assert_false(dk_suffixset_lookup(s, w, len, &m));
	dk_suffixset_free(s);

	/* An unfinished builder with content frees cleanly. */
	b = dk_suffixset_builder_new(3, NULL, NULL);
	assert_int_equal(dk_suffixset_builder_add(b, w, len, false, 1), 0);
	dk_suffixset_builder_free(b);

	/* Malformed query names never match, even over a root entry. */
	b = dk_suffixset_builder_new(1, NULL, NULL);
	assert_int_equal(dk_suffixset_builder_add(b, (const uint8_t *)"", 1, false, 1), 0);
	s = dk_suffixset_builder_finish(b);
	assert_true(dk_suffixset_lookup(s, w, len, &m));
	assert_false(dk_suffixset_lookup(s, w, len - 1, &m));
	assert_false(dk_suffixset_lookup(s, w, 0, &m));
	dk_suffixset_free(s);
}

/* ---- Many names. -------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* splitmix64 */
	uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static const char *const tlds[] = {"com", "net", "org", "ru", "de", "io", "xyz", "info"};

/* A random name of @labels labels (the last one a TLD) in wire form. */
static size_t random_name(uint8_t *w, int labels)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789-";
	size_t n = 0;

	for (int l = 0; l < labels - 1; l++) {
		size_t ll = 1 + rnd() % 12;
		w[n++] = (uint8_t)ll;
		for (size_t i = 0; i < ll; i++)
			w[n++] = (uint8_t)alphabet[rnd() % (sizeof(alphabet) - 1)];
	}
	const char *t = tlds[rnd() % DK_ARRAY_SIZE(tlds)];
	w[n++] = (uint8_t)strlen(t);
	memcpy(w + n, t, strlen(t));
	n += strlen(t);
	w[n++] = 0;
	return n;
}

/* Prepends @k random labels to @w (@len octets); returns the new length. */
static size_t prepend(uint8_t *w, size_t len, int k)
{
	uint8_t tmp[DK_NAME_MAX];
	size_t n = 0;

	for (int i = 0; i < k; i++) {
		size_t ll = 1 + rnd() % 8;
		if (n + 1 + ll + len > DK_NAME_MAX)
			break;
		tmp[n++] = (uint8_t)ll;
		for (size_t j = 0; j < ll; j++)
			tmp[n++] = (uint8_t)('a' + rnd() % 26);
	}
	memmove(w + n, w, len);
	memcpy(w, tmp, n);
	return n + len;
}

/* Not commutative, so a builder passing old and new the wrong way round shows. */
static uint16_t merge_skew(uint16_t old, uint16_t add, void *ctx)
{
	assert_ptr_equal(ctx, &merge_calls);
	assert_int_not_equal(old, DK_SUFFIXSET_NONE);
	return (uint16_t)((old * 3u + add) % 1000u);
}

static void many(size_t count, size_t expected, dk_suffixset_merge_fn merge)
{
	struct ref r = {.merge = merge, .ctx = &merge_calls};
	struct dk_suffixset_builder *b = dk_suffixset_builder_new(expected, merge, &merge_calls);
	uint8_t w[DK_NAME_MAX];

	assert_non_null(b);
	rng_state = 42 + count;
	for (size_t i = 0; i < count; i++) {
		size_t len = random_name(w, 2 + (int)(rnd() % 4));
		bool below = rnd() % 4 == 0;
		uint16_t v = (uint16_t)(rnd() % 1000);

		assert_int_equal(dk_suffixset_builder_add(b, w, len, below, v), 0);
		ref_add(&r, w, len, below, v);
		/* Some parents and repeats, so merging and walking up both happen. */
		if (rnd() % 8 == 0) {
			uint8_t offs[DK_LABELS_MAX];
			int n = dk_name_labels(w, len, offs);
			if (n > 2) {
				size_t at = offs[1];
				v = (uint16_t)(rnd() % 1000);
				assert_int_equal(
				        dk_suffixset_builder_add(b, w + at, len - at, false, v), 0);
				ref_add(&r, w + at, len - at, false, v);
			}
		}
		if (rnd() % 16 == 0) {
			v = (uint16_t)(rnd() % 1000);
			below = rnd() % 2;
			assert_int_equal(dk_suffixset_builder_add(b, w, len, below, v), 0);
			ref_add(&r, w, len, below, v);
		}
	}
	size_t distinct = ref_distinct(&r);
	assert_int_equal(dk_suffixset_builder_count(b), distinct);
	struct dk_suffixset *s = dk_suffixset_builder_finish(b);
	assert_non_null(s);
	assert_int_equal(dk_suffixset_count(s), distinct);
	/* The design budget is 64 octets a name, everything included. */
	size_t bytes = dk_suffixset_bytes(s);
	assert_true(bytes > distinct * 8);
	assert_true(bytes <= distinct * 64 + 4096);

	/* Every stored name, exactly and with labels in front of it. */
	size_t hits = 0;
	for (size_t i = 0; i < r.n; i++) {
		struct dk_suffixset_match m;
		memcpy(w, r.names + r.e[i].off, r.e[i].len);
		size_t len = r.e[i].len;
		check_same(&r, s, w, len);
		len = prepend(w, len, 1 + (int)(rnd() % 3));
		check_same(&r, s, w, len);
		hits += dk_suffixset_lookup(s, w, len, &m);
	}
	assert_int_equal(hits, r.n);

	/* Fresh random names: the reference decides, nearly all are misses. */
	size_t misses = 0;
	for (size_t i = 0; i < count; i++) {
		struct dk_suffixset_match m;
		size_t len = random_name(w, 1 + (int)(rnd() % 6));
		check_same(&r, s, w, len);
		misses += !dk_suffixset_lookup(s, w, len, &m);
	}
	assert_true(misses > count * 9 / 10);

	dk_suffixset_free(s);
	ref_free(&r);
}

static void test_many_sized(void **state)
{
	(void)state;
	many(100000, 100000, merge_min);
}

/* Starting from an empty builder exercises every doubling and rehash. */
static void test_many_growing(void **state)
{
	(void)state;
	many(100000, 0, merge_skew);
}

/* A builder sized far too large shrinks to fit at finish. */
static void test_shrink(void **state)
{
	(void)state;
	many(50, 1000000, merge_skew);

	struct dk_suffixset_builder *b = dk_suffixset_builder_new(1000000, NULL, NULL);
	uint8_t w[DK_NAME_MAX];
	assert_int_equal(dk_suffixset_builder_add(b, w, wire_of("example.com", w), false, 1), 0);
	struct dk_suffixset *s = dk_suffixset_builder_finish(b);
	assert_true(dk_suffixset_bytes(s) < 1024);
	dk_suffixset_free(s);
}

/* ---- Concurrent readers. ------------------------------------------------ */

struct reader {
	const struct dk_suffixset *s;
	struct ref *r;
	uint64_t seed;
	size_t bad;
};

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	uint64_t x = rd->seed;

	for (int i = 0; i < 200000; i++) {
		struct dk_suffixset_match m;
		x = x * 6364136223846793005u + 1442695040888963407u;
		const struct ref_entry *e = &rd->r->e[(x >> 33) % rd->r->n];
		if (!dk_suffixset_lookup(rd->s, rd->r->names + e->off, e->len, &m))
			rd->bad++;
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct ref r = {0};
	struct dk_suffixset_builder *b = dk_suffixset_builder_new(0, NULL, NULL);
	uint8_t w[DK_NAME_MAX];
	pthread_t t[4];
	struct reader rd[4];

	(void)state;
	rng_state = 7;
	for (int i = 0; i < 20000; i++) {
		size_t len = random_name(w, 3);
		assert_int_equal(dk_suffixset_builder_add(b, w, len, false, 1), 0);
		ref_add(&r, w, len, false, 1);
	}
	struct dk_suffixset *s = dk_suffixset_builder_finish(b);
	ref_sort(&r);
	for (int i = 0; i < 4; i++) {
		rd[i] = (struct reader){s, &r, (uint64_t)i + 1, 0};
		assert_int_equal(pthread_create(&t[i], NULL, reader_main, &rd[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(rd[i].bad, 0);
	}
	dk_suffixset_free(s);
	ref_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_basic),
	        cmocka_unit_test(test_entry_grows),
	        cmocka_unit_test(test_root_entry),
	        cmocka_unit_test(test_merge),
	        cmocka_unit_test(test_empty_and_invalid),
	        cmocka_unit_test(test_many_sized),
	        cmocka_unit_test(test_many_growing),
	        cmocka_unit_test(test_shrink),
	        cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
