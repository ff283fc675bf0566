/* SPDX-License-Identifier: MIT */
/* The round-trip estimator (src/core/rtt.c): RFC 6298 smoothing, backoff, bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dnsink/rtt.h"

static void test_initial(void **state)
{
	struct dk_rtt r = {0};

	(void)state;
	assert_int_equal(dk_rtt_timeout_ms(&r, 1500), DK_RTT_INITIAL_MS);
	/* Never more than the cap (upstream_timeout_ms). */
	assert_int_equal(dk_rtt_timeout_ms(&r, 200), 200);
}

static void test_first_sample(void **state)
{
	struct dk_rtt r = {0};

	(void)state;
	dk_rtt_sample(&r, 40000); /* 40 ms */
	assert_true(r.valid);
	assert_int_equal(r.srtt_us, 40000);
	assert_int_equal(r.rttvar_us, 20000);
	/* 40 + 4 * 20 = 120 ms. */
	assert_int_equal(dk_rtt_timeout_ms(&r, 1500), 120);
}

static void test_smoothing(void **state)
{
	struct dk_rtt r = {0};

	(void)state;
	dk_rtt_sample(&r, 40000);
	dk_rtt_sample(&r, 80000);
	/* SRTT 7/8 * 40 + 1/8 * 80 = 45 ms; RTTVAR 3/4 * 20 + 1/4 * 40 = 25 ms. */
	assert_int_equal(r.srtt_us, 45000);
	assert_int_equal(r.rttvar_us, 25000);
	assert_int_equal(dk_rtt_timeout_ms(&r, 1500), 145);
	/* A steady upstream: the variance shrinks, the timeout comes down to the floor. */
	for (int i = 0; i < 200; i++)
		dk_rtt_sample(&r, 1000);
	assert_true(r.srtt_us < 1500);
	assert_int_equal(dk_rtt_timeout_ms(&r, 1500), DK_RTT_MIN_MS);
}

static void test_backoff(void **state)
{
	struct dk_rtt r = {0};

	(void)state;
	dk_rtt_sample(&r, 1000);
	unsigned base = dk_rtt_timeout_ms(&r, 60000);
	dk_rtt_timed_out(&r);
	assert_int_equal(dk_rtt_timeout_ms(&r, 60000), 2 * base);
	dk_rtt_timed_out(&r);
	assert_int_equal(dk_rtt_timeout_ms(&r, 60000), 4 * base);
	for (int i = 0; i < 20; i++)
		dk_rtt_timed_out(&r);
	assert_int_equal(r.backoff, DK_RTT_BACKOFF_MAX);
	assert_int_equal(dk_rtt_timeout_ms(&r, 60000), base << DK_RTT_BACKOFF_MAX);
	assert_int_equal(dk_rtt_timeout_ms(&r, 1500), 1500);
	/* An answer ends the backoff. */
	dk_rtt_sample(&r, 1000);
	assert_int_equal(dk_rtt_timeout_ms(&r, 60000), base);
	/* Without a sample, the initial timeout doubles too. */
	struct dk_rtt fresh = {0};
	dk_rtt_timed_out(&fresh);
	assert_int_equal(dk_rtt_timeout_ms(&fresh, 60000), 2 * DK_RTT_INITIAL_MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_initial),
	        cmocka_unit_test(test_first_sample),
	        cmocka_unit_test(test_smoothing),
	        cmocka_unit_test(test_backoff),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
