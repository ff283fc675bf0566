/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of ratelimit.c, driven by a fake millisecond clock: the burst,
 * refill at the configured rate (exact, no rounding loss over a long run),
 * the cap at the burst after idling, independent clients, IPv4 and IPv6
 * prefixes (/64 by default, IPv4-mapped IPv6 counted as IPv4), limits that
 * change between calls (reload), a clock that goes backwards, and a table
 * flooded by more clients than it holds (bounded, and failing open).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "dnsink/ratelimit.h"

static struct sockaddr_storage v4(const char *ip)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	in->sin_family = AF_INET;
	in->sin_port = htons(40000);
	assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage v6(const char *ip)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(40000);
	assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
	return ss;
}

static bool allow(struct dk_ratelimit *rl, const struct sockaddr_storage *ss, uint64_t now,
                  const struct dk_ratelimit_limits *lim)
{
	return dk_ratelimit_allow(rl, (const struct sockaddr *)ss, now, lim);
}

/* How many of @p n queries at time @p now are allowed. */
static unsigned allowed_of(struct dk_ratelimit *rl, const struct sockaddr_storage *ss, uint64_t now,
                           unsigned n, const struct dk_ratelimit_limits *lim)
{
	unsigned ok = 0;

	for (unsigned i = 0; i < n; i++)
		ok += allow(rl, ss, now, lim);
	return ok;
}

static struct dk_ratelimit *mk(size_t n)
{
	struct dk_ratelimit *rl;

	assert_int_equal(dk_ratelimit_new(n, &rl), 0);
	assert_non_null(rl);
	return rl;
}

static void test_burst_then_refill(void **state)
{
	(void)state;
	struct dk_ratelimit *rl = mk(1024);
	struct dk_ratelimit_limits lim = {.qps = 10, .burst = 5};
	struct sockaddr_storage a = v4("192.0.2.1");

	/* The first moment: the burst, and not one more. */
	assert_int_equal(allowed_of(rl, &a, 1000, 20, &lim), 5);
	/* 10 per second is one per 100 ms: 99 ms gives nothing, 100 ms one. */
	assert_false(allow(rl, &a, 1099, &lim));
	assert_true(allow(rl, &a, 1100, &lim));
	assert_false(allow(rl, &a, 1100, &lim));
	/* 350 ms later: three and a half queries' worth; the half is kept. */
	assert_int_equal(allowed_of(rl, &a, 1450, 10, &lim), 3);
	assert_int_equal(allowed_of(rl, &a, 1500, 10, &lim), 1);
	/* A long idle refills to the burst only. */
	assert_int_equal(allowed_of(rl, &a, 100000, 100, &lim), 5);
	dk_ratelimit_free(rl);
}

static void test_long_run_is_exact(void **state)
{
	(void)state;
	struct dk_ratelimit *rl = mk(64);
	struct dk_ratelimit_limits lim = {.qps = 50, .burst = 20};
	struct sockaddr_storage a = v4("198.51.100.7");
	unsigned ok = 0;

	/* One query every millisecond for 10 s: burst + 9999 ms * 50/s, rounded down. */
	for (uint64_t t = 0; t < 10000; t++)
		ok += allow(rl, &a, t, &lim);
	assert_int_equal(ok, 20 + 9999 * 50 / 1000);
	dk_ratelimit_free(rl);
}

static void test_clients_apart(void **state)
{
	(void)state;
	struct dk_ratelimit *rl = mk(1024);
	struct dk_ratelimit_limits lim = {.qps = 1, .burst = 3};
	struct sockaddr_storage a = v4("127.0.0.2"), b = v4("127.0.0.1");

	assert_int_equal(allowed_of(rl, &a, 5, 50, &lim), 3);
	assert_int_equal(allowed_of(rl, &b, 5, 50, &lim), 3);
	assert_false(allow(rl, &a, 6, &lim));
	/* A /24 prefix makes them one client, sharing one bucket. */
	struct dk_ratelimit *rl24 = mk(1024);
	struct dk_ratelimit_limits lim24 = {.qps = 1, .burst = 3, .ipv4_prefix = 24};
	assert_int_equal(allowed_of(rl24, &a, 5, 2, &lim24), 2);
	assert_int_equal(allowed_of(rl24, &b, 5, 5, &lim24), 1);
	dk_ratelimit_free(rl24);
	dk_ratelimit_free(rl);
}

static void test_ipv6_prefixes(void **state)
{
	(void)state;
	struct dk_ratelimit *rl = mk(1024);
	struct dk_ratelimit_limits lim = {.qps = 1, .burst = 4};
	struct sockaddr_storage a = v6("2001:db8:1:2::1"), a2 = v6("2001:db8:1:2:ffff::9");
	struct sockaddr_storage other = v6("2001:db8:1:3::1");

	/* Default /64: the two addresses of one /64 share a bucket, the next /64 does not. */
	assert_int_equal(allowed_of(rl, &a, 0, 2, &lim), 2);
	assert_int_equal(allowed_of(rl, &a2, 0, 10, &lim), 2);
	assert_int_equal(allowed_of(rl, &other, 0, 10, &lim), 4);
	/* /128: each address on its own. */
	struct dk_ratelimit *full = mk(1024);
	struct dk_ratelimit_limits lim128 = {.qps = 1, .burst = 4, .ipv6_prefix = 128};
	assert_int_equal(allowed_of(full, &a, 0, 10, &lim128), 4);
	assert_int_equal(allowed_of(full, &a2, 0, 10, &lim128), 4);
	dk_ratelimit_free(full);
	dk_ratelimit_free(rl);
}

static void test_mapped_is_ipv4(void **state)
{
	(void)state;
	struct dk_ratelimit *rl = mk(1024);
	struct dk_ratelimit_limits lim = {.qps = 1, .burst = 3};
	struct sockaddr_storage a = v4("203.0.113.5"), m = v6("::ffff:203.0.113.5");
	struct sockaddr_storage n = v6("::ffff:203.0.113.6");

	assert_int_equal(allowed_of(rl, &a, 0, 2, &lim), 2);
	assert_int_equal(allowed_of(rl, &m, 0, 10, &lim), 1);
	assert_int_equal(allowed_of(rl, &n, 0, 10, &lim), 3);
	dk_ratelimit_free(rl);
}

static void test_off_and_other_families(void **state)
{
	(void)state;
	struct dk_ratelimit *rl = mk(16);
	struct dk_ratelimit_limits off = {.qps = 0, .burst = 1};
	struct dk_ratelimit_limits on = {.qps = 1, .burst = 1};
	struct sockaddr_storage a = v4("192.0.2.9");
	struct sockaddr_storage u;

	assert_int_equal(allowed_of(rl, &a, 0, 1000, &off), 1000);
	assert_int_equal(allowed_of(NULL, &a, 0, 1000, &on), 1000);
	memset(&u, 0, sizeof(u));
	u.ss_family = AF_UNIX;
	assert_int_equal(allowed_of(rl, &u, 0, 1000, &on), 1000);
	assert_int_equal(allowed_of(rl, &a, 0, 1000, &on), 1);
	dk_ratelimit_free(rl);
	dk_ratelimit_free(NULL);
}

static void test_limits_change(void **state)
{
	(void)state;
	struct dk_ratelimit *rl = mk(64);
	struct dk_ratelimit_limits big = {.qps = 100, .burst = 100};
	struct dk_ratelimit_limits small = {.qps = 100, .burst = 2};
	struct sockaddr_storage a = v4("192.0.2.50");

	assert_int_equal(allowed_of(rl, &a, 0, 1, &big), 1);
	/* A reload lowered the burst: the 99 tokens left are cut to 2. */
	assert_int_equal(allowed_of(rl, &a, 0, 50, &small), 2);
	/* Raised again: refill goes on at the new cap from an empty bucket. */
	assert_int_equal(allowed_of(rl, &a, 100, 500, &big), 10);
	dk_ratelimit_free(rl);
}

static void test_clock_backwards(void **state)
{
	(void)state;
	struct dk_ratelimit *rl = mk(64);
	struct dk_ratelimit_limits lim = {.qps = 1000, .burst = 2};
	struct sockaddr_storage a = v4("192.0.2.77");

	assert_int_equal(allowed_of(rl, &a, 5000, 10, &lim), 2);
	/* Earlier than the last refill: no tokens out of thin air. */
	assert_int_equal(allowed_of(rl, &a, 10, 10, &lim), 0);
	assert_int_equal(allowed_of(rl, &a, 5001, 10, &lim), 1);
	dk_ratelimit_free(rl);
}

static void test_table_bounded_fails_open(void **state)
{
	(void)state;
	struct dk_ratelimit *rl = mk(10);
	struct dk_ratelimit_limits lim = {.qps = 1, .burst = 1};
	struct sockaddr_storage a = v4("10.0.0.1");
	char ip[32];

	/* Rounded up to whole sets of a power of two. */
	assert_int_equal(dk_ratelimit_size(rl), 16);
	assert_int_equal(allowed_of(rl, &a, 0, 5, &lim), 1);
	/* Thousands of other clients pass through 16 buckets: each first query allowed. */
	unsigned ok = 0;
	for (unsigned i = 0; i < 5000; i++) {
		snprintf(ip, sizeof(ip), "10.1.%u.%u", i / 250, i % 250 + 1);
		struct sockaddr_storage o = v4(ip);
		ok += allow(rl, &o, 1 + i / 1000, &lim);
	}
	assert_int_equal(ok, 5000);
	/* The first client's bucket was evicted: it starts again full (fail open). */
	assert_true(allow(rl, &a, 10, &lim));
	assert_false(allow(rl, &a, 10, &lim));
	assert_int_equal(dk_ratelimit_size(rl), 16);
	dk_ratelimit_free(rl);
}

static void test_many_clients_kept_apart(void **state)
{
	(void)state;
	struct dk_ratelimit *rl = mk(8192);
	struct dk_ratelimit_limits lim = {.qps = 1, .burst = 2};
	char ip[32];

	/* 500 clients in a table of 8192: each gets its burst, then nothing. */
	for (int round = 0; round < 3; round++) {
		unsigned ok = 0;
		for (unsigned i = 0; i < 500; i++) {
			snprintf(ip, sizeof(ip), "172.16.%u.%u", i / 200, i % 200 + 1);
			struct sockaddr_storage o = v4(ip);
			ok += allow(rl, &o, 100, &lim);
		}
		assert_int_equal(ok, round < 2 ? 500 : 0);
	}
	dk_ratelimit_free(rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_burst_then_refill),
	        cmocka_unit_test(test_long_run_is_exact),
	        cmocka_unit_test(test_clients_apart),
	        cmocka_unit_test(test_ipv6_prefixes),
	        cmocka_unit_test(test_mapped_is_ipv4),
	        cmocka_unit_test(test_off_and_other_families),
	        cmocka_unit_test(test_limits_change),
	        cmocka_unit_test(test_clock_backwards),
	        cmocka_unit_test(test_table_bounded_fails_open),
	        cmocka_unit_test(test_many_clients_kept_apart),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
