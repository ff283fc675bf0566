/* SPDX-License-Identifier: MIT */
/* The prefix table (src/core/prefix.c): longest prefix wins, IPv4 and IPv6, edges. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dnsink/prefix.h"

/* Builds a table of the prefixes @p texts with values 0, 1, 2... */
static struct dk_prefix_table *table(const char *const *texts, size_t n)
{
	struct dk_cidr c[16];
	uint16_t v[16];
	struct dk_prefix_table *t;

	assert_true(n <= 16);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(dk_cidr_parse(texts[i], &c[i]), 0);
		v[i] = (uint16_t)i;
	}
	assert_int_equal(dk_prefix_table_new(c, v, n, &t, NULL), 0);
	return t;
}

/* The value for address @p text, or -1 when nothing matches. */
static int lookup(const struct dk_prefix_table *t, const char *text)
{
	uint8_t a[16];
	uint16_t v = 0xffff;
	int family = strchr(text, ':') ? AF_INET6 : AF_INET;

	assert_int_equal(inet_pton(family, text, a), 1);
	return dk_prefix_lookup(t, family, a, &v) ? v : -1;
}

static void test_v4_nested(void **state)
{
	const char *p[] = {"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3/32",
	                   "192.168.1.0/25"};
	struct dk_prefix_table *t = table(p, DK_ARRAY_SIZE(p));

	(void)state;
	assert_int_equal(lookup(t, "10.9.9.9"), 0);
	assert_int_equal(lookup(t, "10.1.9.9"), 1);
	assert_int_equal(lookup(t, "10.1.2.4"), 2);
	assert_int_equal(lookup(t, "10.1.2.3"), 3);
	assert_int_equal(lookup(t, "192.168.1.127"), 4);
	assert_int_equal(lookup(t, "192.168.1.128"), -1); /* the /25's upper half */
	assert_int_equal(lookup(t, "11.0.0.0"), -1);
	/* No IPv6 prefix: an IPv6 address matches nothing. */
	assert_int_equal(lookup(t, "::1"), -1);
	assert_int_equal(dk_prefix_table_count(t), 5);
	dk_prefix_table_free(t);
}

static void test_v6_nested(void **state)
{
	const char *p[] = {"fd00::/8", "fd00:1::/64",   "fd00:1::/48",
	                   "::1/128",  "fd00:1::5/128", "fd00:1:0:0:8000::/65"};
	struct dk_prefix_table *t = table(p, DK_ARRAY_SIZE(p));

	(void)state;
	assert_int_equal(lookup(t, "fd12::1"), 0);
	assert_int_equal(lookup(t, "fd00:1::6"), 1);
	assert_int_equal(lookup(t, "fd00:1:0:1::1"), 2); /* in the /48, not the /64 */
	assert_int_equal(lookup(t, "::1"), 3);
	assert_int_equal(lookup(t, "::2"), -1);
	assert_int_equal(lookup(t, "fd00:1::5"), 4);
	assert_int_equal(lookup(t, "fd00:1::8000:0:0:1"), 5); /* odd length, /65 */
	assert_int_equal(lookup(t, "fe80::1"), -1);
	assert_int_equal(lookup(t, "10.0.0.1"), -1);
	dk_prefix_table_free(t);
}

static void test_zero_and_full(void **state)
{
	const char *p[] = {"0.0.0.0/0", "::/0", "127.0.0.2/32", "::1/128"};
	struct dk_prefix_table *t = table(p, DK_ARRAY_SIZE(p));

	(void)state;
	assert_int_equal(lookup(t, "8.8.8.8"), 0);
	assert_int_equal(lookup(t, "0.0.0.0"), 0);
	assert_int_equal(lookup(t, "255.255.255.255"), 0);
	assert_int_equal(lookup(t, "127.0.0.2"), 2);
	assert_int_equal(lookup(t, "127.0.0.3"), 0);
	assert_int_equal(lookup(t, "2001:db8::1"), 1);
	assert_int_equal(lookup(t, "::1"), 3);
	assert_int_equal(lookup(t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 1);
	dk_prefix_table_free(t);
}

static void test_host_bits_and_dup(void **state)
{
	struct dk_cidr c[3];
	uint16_t v[3] = {7, 8, 9};
	struct dk_prefix_table *t = (void *)1;
	size_t dup = 99;

	(void)state;
	/* Host bits written in the prefix are ignored when it is stored. */
	c[0] = (struct dk_cidr){.family = AF_INET, .prefix = 24, .addr = {10, 0, 0, 77}};
	assert_int_equal(dk_cidr_parse("10.0.1.0/24", &c[1]), 0);
	assert_int_equal(dk_prefix_table_new(c, v, 2, &t, NULL), 0);
	assert_int_equal(lookup(t, "10.0.0.1"), 7);
	assert_int_equal(lookup(t, "10.0.1.1"), 8);
	dk_prefix_table_free(t);
	/* The same prefix twice is refused and the second one named. */
	assert_int_equal(dk_cidr_parse("10.0.0.0/24", &c[2]), 0);
	assert_int_equal(dk_prefix_table_new(c, v, 3, &t, &dup), DK_EDUP);
	assert_null(t);
	assert_int_equal(dup, 2);
	/* Same address, other length: not a duplicate. */
	assert_int_equal(dk_cidr_parse("10.0.0.0/23", &c[2]), 0);
	assert_int_equal(dk_prefix_table_new(c, v, 3, &t, &dup), 0);
	assert_int_equal(lookup(t, "10.0.1.1"), 8);
	dk_prefix_table_free(t);
}

static void test_mapped_and_empty(void **state)
{
	const char *p[] = {"127.0.0.0/8", "::ffff:127.0.0.9/128"};
	struct dk_prefix_table *t = table(p, DK_ARRAY_SIZE(p)), *e;
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
	struct sockaddr_in in4 = {.sin_family = AF_INET};
	uint16_t v = 0;

	(void)state;
	assert_int_equal(inet_pton(AF_INET6, "::ffff:127.0.0.5", &in6.sin6_addr), 1);
	assert_true(dk_prefix_lookup_sa(t, (struct sockaddr *)&in6, &v));
	assert_int_equal(v, 0);
	/* An IPv6 prefix naming the mapped form wins over the IPv4 one. */
	assert_int_equal(inet_pton(AF_INET6, "::ffff:127.0.0.9", &in6.sin6_addr), 1);
	assert_true(dk_prefix_lookup_sa(t, (struct sockaddr *)&in6, &v));
	assert_int_equal(v, 1);
	assert_int_equal(inet_pton(AF_INET, "127.1.2.3", &in4.sin_addr), 1);
	assert_true(dk_prefix_lookup_sa(t, (struct sockaddr *)&in4, &v));
	assert_int_equal(v, 0);
	dk_prefix_table_free(t);

	assert_int_equal(dk_prefix_table_new(NULL, NULL, 0, &e, NULL), 0);
	assert_int_equal(lookup(e, "1.2.3.4"), -1);
	assert_false(dk_prefix_lookup_sa(NULL, (struct sockaddr *)&in4, &v));
	dk_prefix_table_free(e);
}

/* Many prefixes of many lengths: every one found, as a linear scan finds it. */
static void test_many(void **state)
{
	enum { N = 1000 };
	static struct dk_cidr c[N];
	static uint16_t v[N];
	struct dk_prefix_table *t;

	(void)state;
	for (unsigned i = 0; i < N; i++) {
		c[i] = (struct dk_cidr){.family = AF_INET, .prefix = (uint8_t)(16 + i % 17)};
		c[i].addr[0] = 10;
		c[i].addr[1] = (uint8_t)(i / 17);
		c[i].addr[2] = (uint8_t)(i % 17);
		c[i].addr[3] = (uint8_t)i;
		v[i] = (uint16_t)i;
	}
	/* Host bits differ, so mask them first or /16s of the same i/17 collide. */
	for (unsigned i = 0; i < N; i++) {
		unsigned len = c[i].prefix;
		for (unsigned b = len; b < 32; b++)
			c[i].addr[b / 8] &= (uint8_t) ~(0x80 >> (b % 8));
	}
	size_t dup = 0;
	int rc = dk_prefix_table_new(c, v, N, &t, &dup);
	/* Some masked prefixes coincide; drop those and build again. */
	while (rc == DK_EDUP) {
		c[dup].prefix = 32;
		c[dup].addr[0] = 172;
		c[dup].addr[1] = (uint8_t)(dup >> 8);
		c[dup].addr[2] = (uint8_t)dup;
		rc = dk_prefix_table_new(c, v, N, &t, &dup);
	}
	assert_int_equal(rc, 0);
	for (unsigned i = 0; i < N; i++) {
		uint16_t got;
		/* The linear answer: the longest prefix holding c[i]'s network address. */
		int best = -1;
		for (unsigned j = 0; j < N; j++) {
			unsigned len = c[j].prefix, full = len / 8, rest = len % 8;
			if (memcmp(c[j].addr, c[i].addr, full))
				continue;
			if (rest && (c[i].addr[full] & (0xff << (8 - rest))) != c[j].addr[full])
				continue;
			if (best < 0 || len > c[best].prefix)
				best = (int)j;
		}
		assert_true(dk_prefix_lookup(t, AF_INET, c[i].addr, &got));
		assert_int_equal(got, best);
	}
	dk_prefix_table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_v4_nested),        cmocka_unit_test(test_v6_nested),
	        cmocka_unit_test(test_zero_and_full),    cmocka_unit_test(test_host_bits_and_dup),
	        cmocka_unit_test(test_mapped_and_empty), cmocka_unit_test(test_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
