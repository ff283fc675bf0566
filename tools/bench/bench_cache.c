/* SPDX-License-Identifier: MIT */
/*
 * Benchmark of the response cache alone: what a forwarded query that misses
 * pays for the cache (one lookup that misses, one insert of the upstream's
 * answer), and what a hit costs, with no network in the way. It fills a cache
 * of SIZE MiB with unique names until CLOCK evicts on every insert (the state
 * of a busy resolver), then times rounds of miss + insert of new names, then
 * lookups of names that are in it.
 *
 *   bench_cache [-m SIZE_MB] [-n OPS]
 *
 * Build it in release mode for meaningful figures:
 *   meson setup build-bench --buildtype=release && ninja -C build-bench
 *   ./build-bench/tools/bench/bench_cache -m 64
 */
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

int main(int argc, char **argv)
{
	size_t mb = 64;
	uint64_t ops = 2000000;
	int opt;

	while ((opt = getopt(argc, argv, "m:n:")) != -1) {
		if (opt == 'm')
			mb = strtoull(optarg, NULL, 10);
		else if (opt == 'n')
			ops = strtoull(optarg, NULL, 10);
		else {
			fprintf(stderr, "usage: bench_cache [-m SIZE_MB] [-n OPS]\n");
			return 2;
		}
	}

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
