/* SPDX-License-Identifier: MIT */
/*
 * Benchmark of the Sigma engine alone, on one thread: loads the rules of the
 * folders given (e.g. the 60 of tools/bench/sigma_rules.py), then times
 * dk_sigma_match_query() + dk_sigma_count() over synthetic query names shaped
 * like the end-to-end benchmark's (random labels under random TLDs, and
 * names under fwd.bench.test), and dk_sigma_match_answer() on a one-record
 * answer. Reports CPU nanoseconds per query for each, and the load time.
 *
 *   bench_sigma [-n QUERIES] DIR...
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dnsink/name.h"
#include "dnsink/policy.h"
#include "dnsink/sigma.h"

static uint64_t rng = 42;

static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void name(char *out, size_t size, int i)
{
	static const char *const tlds[] = {"com", "net", "org", "ru", "io", "info", "xyz", "de"};
	char l1[16], l2[16];
	int n1 = 4 + (int)(rnd() % 11), n2 = 4 + (int)(rnd() % 11);

	for (int k = 0; k < n1; k++)
		l1[k] = (char)('a' + rnd() % 26);
	l1[n1] = '\0';
	for (int k = 0; k < n2; k++)
		l2[k] = (char)('a' + rnd() % 26);
	l2[n2] = '\0';
	if (i % 2)
		snprintf(out, size, "f%d-%s.fwd.bench.test", i, l1);
	else
		snprintf(out, size, "%s.%s.%s", l1, l2, tlds[rnd() % 8]);
}

int main(int argc, char **argv)
{
	int n = 1000000, opt;
	struct dk_policy *p = NULL;
	struct dk_diag d = {0};
	struct dk_sigma_scratch *sc = NULL;

	while ((opt = getopt(argc, argv, "n:")) != -1) {
		if (opt == 'n')
			n = atoi(optarg);
		else
			return 2;
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: bench_sigma [-n QUERIES] DIR...\n");
		return 2;
	}
	double t0 = cpu_ns();
	if (dk_policy_load((const char *const *)argv + optind, (size_t)(argc - optind), 0, &p,
	                   &d)) {
		fprintf(stderr, "%s:%u: %s\n", d.file, d.line, d.msg);
		return 1;
	}
	double t1 = cpu_ns();
	if (!p->sigma || dk_sigma_scratch_new(p->sigma, &sc)) {
		fprintf(stderr, "no Sigma rules loaded\n");
		return 1;
	}
	enum { POOL = 4096 };
	static uint8_t wire[POOL][DK_NAME_MAX];
	static size_t wlen[POOL];
	for (int i = 0; i < POOL; i++) {
		char text[300];
		name(text, sizeof(text), i);
		dk_name_from_text(text, strlen(text), 0, wire[i], &wlen[i]);
	}
	struct sockaddr_in sa = {.sin_family = AF_INET};
	inet_pton(AF_INET, "10.1.2.3", &sa.sin_addr);
	unsigned long hits = 0;
	double q0 = cpu_ns();
	for (int i = 0; i < n; i++) {
		struct dk_sigma_hits h;
		struct dk_sigma_query q = {wire[i % POOL], wlen[i % POOL], 1,
		                           (const struct sockaddr *)&sa};
		sa.sin_addr.s_addr = htonl(0x0a000000u | (uint32_t)(i % 64));
		hits += dk_sigma_match_query(p->sigma, sc, &q, &h);
		dk_sigma_count(p->sigma, sc, &q, (uint64_t)i / 1000, &h);
	}
	double q1 = cpu_ns();
	/* An A answer 192.0.2.1 to "www.example.test". */
	static const uint8_t ans[] = {
	        0x12, 0x34, 0x81, 0x80, 0,   1,   0,   1, 0,   0,   0,   0,   3,   'w', 'w', 'w', 7,
	        'e',  'x',  'a',  'm',  'p', 'l', 'e', 4, 't', 'e', 's', 't', 0,   0,   1,   0,   1,
	        0xc0, 0x0c, 0,    1,    0,   1,   0,   0, 0,   60,  0,   4,   192, 0,   2,   1};
	double a0 = cpu_ns();
	for (int i = 0; i < n; i++) {
		struct dk_sigma_hits h;
		struct dk_sigma_query q = {wire[i % POOL], wlen[i % POOL], 1,
		                           (const struct sockaddr *)&sa};
		hits += dk_sigma_match_answer(p->sigma, sc, &q, ans, sizeof(ans), &h);
	}
	double a1 = cpu_ns();
	printf("rules %zu loaded (%zu rejected), load %.1f ms CPU\n", p->sigma_report.loaded,
	       p->sigma_report.rejected, (t1 - t0) / 1e6);
	printf("query side + counting: %.0f ns/query; answer side: %.0f ns/answer (%lu hits)\n",
	       (q1 - q0) / n, (a1 - a0) / n, hits);
	dk_sigma_scratch_free(sc);
	dk_policy_unref(p);
	return 0;
}
