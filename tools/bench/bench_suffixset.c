/* SPDX-License-Identifier: MIT */
/*
 * Benchmark of the suffix set, the structure every query is matched against.
 * It generates N synthetic domains with a fixed-seed generator (2 to 6 labels,
 * label lengths and TLDs skewed the way real blocklists are), converts them
 * from text, builds the set, and reports build time, heap and resident memory
 * per name, then times single-threaded lookups over a prepared mix of queries:
 * half at or below a stored name, half unrelated.
 *
 *   bench_suffixset [-n NAMES] [-l LOOKUPS] [-s SEED]
 *
 * Build it in release mode for meaningful figures:
 *   meson setup build-bench --buildtype=release && ninja -C build-bench
 *   ./build-bench/tools/bench/bench_suffixset
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dnsink/name.h"
#include "dnsink/suffixset.h"

static uint64_t rng;

static uint64_t rnd(void)
{
	/* splitmix64: tiny, fast and deterministic for a given seed. */
	uint64_t z = (rng += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * CPU time of this thread: on a shared machine it leaves out the time we sat
 * descheduled, so it is the steadier figure when others are busy.
 */
static double cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_bytes(void)
{
	long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &resident) != 2)
		resident = -1;
	fclose(f);
	return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

/* TLDs with rough weights (per mille) in the spirit of public blocklists. */
static const struct {
	const char *tld;
	unsigned weight;
} tlds[] = {
        {"com", 430},   {"net", 80},  {"org", 50}, {"ru", 50},    {"info", 40}, {"de", 30},
        {"xyz", 30},    {"top", 30},  {"io", 25},  {"co.uk", 20}, {"cn", 20},   {"br", 20},
        {"online", 20}, {"site", 20}, {"fr", 15},  {"jp", 15},    {"nl", 15},   {"pl", 15},
        {"club", 15},   {"biz", 10},  {"in", 10},  {"eu", 10},    {"me", 10},   {"tk", 10},
};

static const char *pick_tld(void)
{
	unsigned total = 0, r;

	for (size_t i = 0; i < DK_ARRAY_SIZE(tlds); i++)
		total += tlds[i].weight;
	r = (unsigned)(rnd() % total);
	for (size_t i = 0; i < DK_ARRAY_SIZE(tlds); i++) {
		if (r < tlds[i].weight)
			return tlds[i].tld;
		r -= tlds[i].weight;
	}
	return "com";
}

/* Label length: mostly 3-12, some short (ads, cdn), some long (trackers, DGA). */
static size_t pick_len(void)
{
	unsigned r = (unsigned)(rnd() % 100);

	if (r < 10)
		return 1 + rnd() % 2;
	if (r < 80)
		return 3 + rnd() % 10;
	if (r < 95)
		return 13 + rnd() % 8;
	return 21 + rnd() % 20;
}

/* Appends one random label and a dot to @p; returns the octets written. */
static size_t gen_label(char *p)
{
	static const char letters[] = "abcdefghijklmnopqrstuvwxyz";
	static const char other[] = "0123456789-";
	size_t len = pick_len();

	for (size_t i = 0; i < len; i++) {
		/* Hyphens inside only, so names stay valid host names. */
		if (rnd() % 8 == 0 && i > 0 && i + 1 < len)
			p[i] = other[rnd() % (sizeof(other) - 1)];
		else
			p[i] = letters[rnd() % (sizeof(letters) - 1)];
	}
	p[len] = '.';
	return len + 1;
}

/* A random name of @labels labels (counting the TLD's) as text, no final dot. */
static size_t gen_name(char *out, int labels)
{
	const char *tld = pick_tld();
	int tld_labels = strchr(tld, '.') ? 2 : 1;
	size_t n = 0;

	for (int i = 0; i < labels - tld_labels; i++)
		n += gen_label(out + n);
	memcpy(out + n, tld, strlen(tld));
	return n + strlen(tld);
}

/* Wire names back to back, each found by its offset. */
struct names {
	uint8_t *buf;
	uint32_t *off;
	uint8_t *len;
	size_t n, used;
};

static void names_init(struct names *ns, size_t count)
{
	ns->buf = malloc(count * 64);
	ns->off = malloc(count * sizeof(*ns->off));
	ns->len = malloc(count);
	ns->n = ns->used = 0;
	if (!ns->buf || !ns->off || !ns->len) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
}

static void names_push(struct names *ns, const uint8_t *w, size_t len)
{
	memcpy(ns->buf + ns->used, w, len);
	ns->off[ns->n] = (uint32_t)ns->used;
	ns->len[ns->n] = (uint8_t)len;
	ns->used += len;
	ns->n++;
}

static void names_free(struct names *ns)
{
	free(ns->buf);
	free(ns->off);
	free(ns->len);
}

static int labels_of(const uint8_t *w, size_t len)
{
	uint8_t offs[DK_LABELS_MAX];
	return dk_name_labels(w, len, offs);
}

int main(int argc, char **argv)
{
	size_t n_names = 1000000, n_lookups = 5000000;
	uint64_t seed = 1;
	int opt;

	while ((opt = getopt(argc, argv, "n:l:s:h")) != -1) {
		switch (opt) {
		case 'n': n_names = strtoul(optarg, NULL, 10); break;
		case 'l': n_lookups = strtoul(optarg, NULL, 10); break;
		case 's': seed = strtoull(optarg, NULL, 10); break;
		default:
			fprintf(stderr, "usage: %s [-n NAMES] [-l LOOKUPS] [-s SEED]\n", argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (n_names == 0 || n_names > 50000000 || n_lookups == 0) {
		fprintf(stderr, "NAMES must be 1..50000000 and LOOKUPS at least 1\n");
		return 2;
	}
	rng = seed;

	/* 1. Names as text, the way list files hold them. */
	size_t text_cap = n_names * 64;
	char *text = malloc(text_cap);
	uint32_t *text_off = malloc((n_names + 1) * sizeof(*text_off));
	if (!text || !text_off)
		return 1;
	size_t tn = 0;
	for (size_t i = 0; i < n_names; i++) {
		text_off[i] = (uint32_t)tn;
		tn += gen_name(text + tn, 2 + (int)(rnd() % 5));
	}
	text_off[n_names] = (uint32_t)tn;

	/* 2. Text to wire form, as the rule loader does it. */
	struct names stored;
	names_init(&stored, n_names);
	double t0 = now();
	for (size_t i = 0; i < n_names; i++) {
		uint8_t w[DK_NAME_MAX];
		size_t len;
		if (dk_name_from_text(text + text_off[i], text_off[i + 1] - text_off[i],
		                      DK_NAME_HOSTNAME, w, &len) != 0) {
			fprintf(stderr, "generated an invalid name\n");
			return 1;
		}
		names_push(&stored, w, len);
	}
	double t_parse = now() - t0;
	free(text);
	free(text_off);

	/* 3. Build; one in eight entries is a "*.name" entry. */
	long rss0 = rss_bytes();
	double c0 = cpu();
	t0 = now();
	struct dk_suffixset_builder *b = dk_suffixset_builder_new(n_names, NULL, NULL);
	if (!b)
		return 1;
	for (size_t i = 0; i < n_names; i++) {
		if (dk_suffixset_builder_add(b, stored.buf + stored.off[i], stored.len[i],
		                             (i & 7) == 7, (uint16_t)(i & 0x7fff)) != 0) {
			fprintf(stderr, "builder_add failed\n");
			return 1;
		}
	}
	struct dk_suffixset *s = dk_suffixset_builder_finish(b);
	double t_build = now() - t0;
	double c_build = cpu() - c0;
	long rss1 = rss_bytes();
	if (!s)
		return 1;
	size_t count = dk_suffixset_count(s);

	/*
	 * 4. Queries: half are a stored name with 0-2 labels in front (never
	 * more than 6 labels in all), half fresh names of 2-6 labels from the
	 * same generator, mixed at random. They are laid out in the order they
	 * will be looked up, so reading them streams through memory the way
	 * packets arrive, and what is timed is the set, not query fetching.
	 */
	size_t n_queries = n_names < 1000000 ? n_names : 1000000;
	struct names q;
	names_init(&q, n_queries);
	for (size_t i = 0; i < n_queries; i++) {
		char t[512];
		uint8_t w[DK_NAME_MAX];
		size_t len, tl = 0;

		if (rnd() % 2 == 0) {
			size_t k = rnd() % n_names;
			const uint8_t *base = stored.buf + stored.off[k];
			int room = 6 - labels_of(base, stored.len[k]);
			int extra =
			        room <= 0 ? 0 : (int)(rnd() % (unsigned)(room < 2 ? room + 1 : 3));
			for (int e = 0; e < extra; e++)
				tl += gen_label(t + tl);
			dk_name_to_text(base, stored.len[k], t + tl, sizeof(t) - tl);
			tl += strlen(t + tl);
		} else {
			tl = gen_name(t, 2 + (int)(rnd() % 5));
		}
		if (dk_name_from_text(t, tl, 0, w, &len) != 0) {
			fprintf(stderr, "generated an invalid query\n");
			return 1;
		}
		names_push(&q, w, len);
	}

	/* 5. Lookups, one thread. */
	size_t done = 0, hits = 0;
	uint64_t sink = 0;
	c0 = cpu();
	t0 = now();
	while (done < n_lookups) {
		for (size_t i = 0; i < n_queries && done < n_lookups; i++, done++) {
			struct dk_suffixset_match m;
			if (dk_suffixset_lookup(s, q.buf + q.off[i], q.len[i], &m)) {
				hits++;
				sink += m.value + m.offset;
			}
		}
	}
	double t_lookup = now() - t0;
	double c_lookup = cpu() - c0;

	/* 6. For scale: reading the same names out of messages, per query. */
	size_t wire_done = 0;
	t0 = now();
	for (size_t i = 0; i < n_queries; i++) {
		uint8_t w[DK_NAME_MAX];
		size_t off = q.off[i], len;
		if (dk_name_from_wire(q.buf, q.used, &off, w, &len) == 0) {
			wire_done++;
			sink += w[0];
		}
	}
	double t_wire = now() - t0;

	size_t bytes = dk_suffixset_bytes(s);
	printf("suffix set benchmark: %zu names generated (seed %" PRIu64 ")\n", n_names, seed);
	printf("  %-40s %12s %12s\n", "metric", "wall clock", "thread CPU");
	printf("  %-40s %12zu\n", "distinct names in set", count);
	printf("  %-40s %12.1f\n", "mean wire name length, octets",
	       (double)stored.used / (double)n_names);
	printf("  %-40s %12.1f\n", "text to wire, ns/name", t_parse * 1e9 / (double)n_names);
	printf("  %-40s %12.3f %12.3f\n", "build time, s", t_build, c_build);
	printf("  %-40s %12.1f\n", "heap bytes/name (dk_suffixset_bytes)",
	       (double)bytes / (double)count);
	if (rss0 >= 0 && rss1 >= 0)
		printf("  %-40s %12.1f\n", "resident growth bytes/name (statm)",
		       (double)(rss1 - rss0) / (double)count);
	printf("  %-40s %12zu\n", "lookups (1 thread)", done);
	printf("  %-40s %12.2f %12.2f\n", "lookups/s, millions", (double)done / t_lookup / 1e6,
	       (double)done / c_lookup / 1e6);
	printf("  %-40s %12.1f %12.1f\n", "ns/lookup", t_lookup * 1e9 / (double)done,
	       c_lookup * 1e9 / (double)done);
	printf("  %-40s %11.1f%%\n", "hit share", 100.0 * (double)hits / (double)done);
	printf("  %-40s %12.1f\n", "dk_name_from_wire, ns/name",
	       t_wire * 1e9 / (double)(wire_done ? wire_done : 1));
	if (sink == 42)
		printf("\n"); /* keeps the loops' results alive */

	names_free(&q);
	names_free(&stored);
	dk_suffixset_free(s);
	return 0;
}
