/* SPDX-License-Identifier: MIT */
/*
 * Benchmark of the response cache alone: what a forwarded query that misses
 * pays for the cache (one lookup that misses, one insert of the upstream's
 * answer), and what a hit costs, with no network in the way. It fills a cache
 * of SIZE MiB with unique names until CLOCK evicts on every insert (the state
 * of a busy resolver), then times rounds of miss + insert of new names, then
 * lookups of names that are in it.
 *
 * With -t THREADS it answers the design question of issue 11, per-worker or
 * shared: THREADS threads each do OPS hits, either each on a cache of its
 * own (SIZE_MB / THREADS, as dnsink's workers) or, with -S, all on one cache
 * of SIZE_MB behind a mutex (the simplest shared design: a hit writes the
 * entry's reference bit and copies it out, so a reader lock would not do).
 * It prints the hits per second of all threads together.
 *
 *   bench_cache [-m SIZE_MB] [-n OPS] [-t THREADS [-S]]
 *
 * Build it in release mode for meaningful figures:
 *   meson setup build-bench --buildtype=release && ninja -C build-bench
 *   ./build-bench/tools/bench/bench_cache -m 64
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dnsink/cache.h"
#include "dnsink/msg.h"
#include "dnsink/name.h"

static double thread_cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes "n<i>-<hex>.fwd.bench.test" in wire form; returns its length. */
static size_t make_name(uint64_t i, uint8_t out[DK_NAME_MAX])
{
	char text[64];
	size_t len;
	int n = snprintf(text, sizeof(text), "n%llu-%08llx.fwd.bench.test", (unsigned long long)i,
	                 (unsigned long long)((i * 0x9e3779b97f4a7c15ULL) >> 32));

	if (dk_name_from_text(text, (size_t)n, 0, out, &len) < 0)
		abort();
	return len;
}

/* An upstream's answer to NAME A IN: the question and one A record by pointer. */
static size_t make_answer(const uint8_t *name, size_t nlen, uint8_t *out)
{
	static const uint8_t hdr[DK_HEADER_LEN] = {0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0};
	static const uint8_t rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x01, 0x2c, 0, 4, 192, 0, 2, 1};
	size_t p = 0;

	memcpy(out, hdr, sizeof(hdr));
	p += sizeof(hdr);
	memcpy(out + p, name, nlen);
	p += nlen;
	out[p++] = 0;
	out[p++] = 1;
	out[p++] = 0;
	out[p++] = 1;
	memcpy(out + p, rr, sizeof(rr));
	return p + sizeof(rr);
}

static double wall(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define HOT_NAMES 10000

struct worker {
	uint8_t names[HOT_NAMES][DK_NAME_MAX]; /* made before the clock starts */
	uint8_t lens[HOT_NAMES];
	pthread_t tid;
	struct dk_cache *cache;
	pthread_mutex_t *lock; /* NULL: the cache is this thread's own */
	uint64_t first, ops, hits;
};

static void fill_hot(struct worker *w)
{
	uint8_t ans[512];

	for (uint64_t j = 0; j < HOT_NAMES; j++) {
		struct dk_cache_key k = {.name = w->names[j], .qtype = 1, .qclass = 1};
		k.name_len = w->lens[j] = (uint8_t)make_name(w->first + j, w->names[j]);
		dk_cache_insert(w->cache, &k, ans, make_answer(k.name, k.name_len, ans), 1000,
		                NULL);
	}
}

static void *hit_loop(void *arg)
{
	struct worker *w = arg;
	uint8_t out[DK_MSG_MAX];
	struct dk_cache_hit hit;

	for (uint64_t j = 0; j < w->ops; j++) {
		struct dk_cache_key k = {.name = w->names[j % HOT_NAMES], .qtype = 1, .qclass = 1};
		k.name_len = w->lens[j % HOT_NAMES];
		if (w->lock)
			pthread_mutex_lock(w->lock);
		int n = dk_cache_lookup(w->cache, &k, 2000, 0, out, sizeof(out), &hit);
		if (w->lock)
			pthread_mutex_unlock(w->lock);
		w->hits += n > 0;
	}
	return NULL;
}

/* -t: THREADS threads of OPS hits each, on caches of their own or one shared. */
static int run_threads(size_t mb, uint64_t ops, unsigned nt, bool shared)
{
	static struct worker w[64];
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct dk_cache *one = NULL;

	if (shared && dk_cache_new(mb << 20, 7, &one) < 0)
		return 1;
	for (unsigned t = 0; t < nt; t++) {
		w[t].first = (uint64_t)t * HOT_NAMES * 2;
		w[t].ops = ops;
		w[t].hits = 0;
		if (shared) {
			w[t].cache = one;
			w[t].lock = &lock;
		} else if (dk_cache_new((mb << 20) / nt, 7 + t, &w[t].cache) < 0) {
			return 1;
		}
		fill_hot(&w[t]);
	}
	double t0 = wall();
	for (unsigned t = 0; t < nt; t++)
		pthread_create(&w[t].tid, NULL, hit_loop, &w[t]);
	uint64_t hits = 0;
	for (unsigned t = 0; t < nt; t++) {
		pthread_join(w[t].tid, NULL);
		hits += w[t].hits;
	}
	double dt = wall() - t0;
	printf("cache benchmark: %u threads, %s, %zu MiB: %.2f M hits/s in all (%llu hits of "
	       "%llu)\n",
	       nt, shared ? "one shared cache behind a mutex" : "a cache per thread", mb,
	       (double)hits / dt / 1e6, (unsigned long long)hits, (unsigned long long)(ops * nt));
	for (unsigned t = 0; t < nt; t++) {
		if (!shared)
			dk_cache_free(w[t].cache);
	}
	dk_cache_free(one);
	return 0;
}

int main(int argc, char **argv)
{
	size_t mb = 64;
	uint64_t ops = 2000000;
	unsigned threads = 0;
	bool shared = false;
	int opt;

	while ((opt = getopt(argc, argv, "m:n:t:S")) != -1) {
		if (opt == 'm')
			mb = strtoull(optarg, NULL, 10);
		else if (opt == 'n')
			ops = strtoull(optarg, NULL, 10);
		else if (opt == 't')
			threads = (unsigned)strtoul(optarg, NULL, 10);
		else if (opt == 'S')
			shared = true;
		else {
			fprintf(stderr,
			        "usage: bench_cache [-m SIZE_MB] [-n OPS] [-t THREADS [-S]]\n");
			return 2;
		}
	}
	if (threads > 64) {
		fprintf(stderr, "bench_cache: at most 64 threads\n");
		return 2;
	}
	if (threads)
		return run_threads(mb, ops, threads, shared);

	struct dk_cache *c;
	if (dk_cache_new(mb << 20, 0x1234567, &c) < 0) {
		fprintf(stderr, "bench_cache: dk_cache_new failed\n");
		return 1;
	}
	struct dk_cache_limits lim = {.min_ttl = 0,
	                              .max_ttl = 86400,
	                              .negative_max_ttl = 3600,
	                              .failure_ttl = 5,
	                              .stale_max_s = 3600};
	dk_cache_set_limits(c, &lim);

	uint8_t name[DK_NAME_MAX], ans[512], out[DK_MSG_MAX];
	struct dk_cache_hit hit;
	struct dk_cache_stats st;
	uint64_t i = 0, now = 1000;

	/* Fill: insert until evictions begin, then as many again. */
	for (;; i++) {
		struct dk_cache_key k = {.name = name, .qtype = 1, .qclass = 1};
		k.name_len = (uint8_t)make_name(i, name);
		size_t alen = make_answer(name, k.name_len, ans);
		unsigned ev = 0;
		dk_cache_insert(c, &k, ans, alen, now, &ev);
		if (ev)
			break;
	}
	dk_cache_stats(c, &st);
	uint64_t full = i;
	for (uint64_t j = 0; j < full; j++, i++) {
		struct dk_cache_key k = {.name = name, .qtype = 1, .qclass = 1};
		k.name_len = (uint8_t)make_name(i, name);
		dk_cache_insert(c, &k, ans, make_answer(name, k.name_len, ans), now, NULL);
	}

	/* The miss path: a lookup of a new name, then the insert of its answer. */
	double name_t0 = thread_cpu();
	for (uint64_t j = 0; j < ops; j++)
		make_name(i + j, name);
	double name_cost = thread_cpu() - name_t0;

	double t0 = thread_cpu();
	uint64_t misses = 0;
	for (uint64_t j = 0; j < ops; j++, i++) {
		struct dk_cache_key k = {.name = name, .qtype = 1, .qclass = 1};
		k.name_len = (uint8_t)make_name(i, name);
		if (dk_cache_lookup(c, &k, now, 0, out, sizeof(out), &hit) == 0)
			misses++;
		dk_cache_insert(c, &k, ans, make_answer(name, k.name_len, ans), now, NULL);
	}
	double miss_cost = thread_cpu() - t0 - name_cost;

	/* The hit path: the half of the entries inserted last are all in the cache. */
	uint64_t hot = full / 2 < ops ? full / 2 : ops;
	uint64_t base = i - hot, hits = 0;
	t0 = thread_cpu();
	for (uint64_t j = 0; j < ops; j++) {
		struct dk_cache_key k = {.name = name, .qtype = 1, .qclass = 1};
		k.name_len = (uint8_t)make_name(base + j % hot, name);
		if (dk_cache_lookup(c, &k, now + 1000, 0, out, sizeof(out), &hit) > 0)
			hits++;
	}
	double hit_cost = thread_cpu() - t0 - name_cost;

	dk_cache_stats(c, &st);
	printf("cache benchmark: %zu MiB, %llu entries when full (%.1f octets each in all)\n", mb,
	       (unsigned long long)full, (double)(mb << 20) / (double)full);
	printf("  miss + insert, ns/op            %8.1f   (%llu misses of %llu)\n",
	       miss_cost * 1e9 / (double)ops, (unsigned long long)misses, (unsigned long long)ops);
	printf("  hit, ns/op                      %8.1f   (%llu hits of %llu)\n",
	       hit_cost * 1e9 / (double)ops, (unsigned long long)hits, (unsigned long long)ops);
	printf("  entries %zu, bytes %zu of %zu, evictions %llu\n", st.entries, st.bytes,
	       st.capacity, (unsigned long long)st.evictions);
	dk_cache_free(c);
	return 0;
}
