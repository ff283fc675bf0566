/* SPDX-License-Identifier: MIT */
/* Upstream health and choice (src/core/infra.c), with the time passed in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dnsink/infra.h"

static struct dk_infra in;
static const uint32_t slots[3] = {7, 3, 5};

static struct dk_infra_choice choice(enum dk_upstream_strategy st, uint64_t failed, uint64_t now)
{
	return (struct dk_infra_choice){
	        .slot = slots, .n = 3, .strategy = st, .failed = failed, .now_ms = now};
}

static int reset(void **state)
{
	(void)state;
	memset(&in, 0, sizeof(in));
	return 0;
}

static void test_down_hold_probe_back(void **state)
{
	struct dk_infra_host *h = dk_infra_host(&in, 7);

	(void)state;
	dk_infra_answered(h, 2000);
	for (int i = 0; i < DK_INFRA_DOWN_AFTER - 1; i++)
		assert_int_equal(dk_infra_failed(h, true, 100), DK_INFRA_SAME);
	assert_int_equal(dk_infra_failed(h, true, 100), DK_INFRA_DOWN);
	assert_true(dk_infra_held_down(h, 100));
	assert_true(dk_infra_held_down(h, 100 + DK_INFRA_HOLD_MIN_MS - 1));
	assert_false(dk_infra_held_down(h, 100 + DK_INFRA_HOLD_MIN_MS));
	/* A probe's timeout is the round trip's, not the backed-off one (floor 100 ms). */
	assert_int_equal(dk_infra_timeout_ms(h, 1500), DK_RTT_MIN_MS);
	/* The probe fails: held down twice as long. */
	assert_int_equal(dk_infra_failed(h, true, 1200), DK_INFRA_SAME);
	assert_true(dk_infra_held_down(h, 1200 + 2 * DK_INFRA_HOLD_MIN_MS - 1));
	assert_false(dk_infra_held_down(h, 1200 + 2 * DK_INFRA_HOLD_MIN_MS));
	/* Failures while held down (no other upstream) do not lengthen it. */
	dk_infra_failed(h, true, 1300);
	assert_false(dk_infra_held_down(h, 1200 + 2 * DK_INFRA_HOLD_MIN_MS));
	/* The hold-down never passes its maximum. */
	for (uint64_t t = 10000; t < 1000000; t += 70000)
		dk_infra_failed(h, true, t);
	assert_true(h->hold_ms <= DK_INFRA_HOLD_MAX_MS);
	assert_int_equal(dk_infra_answered(h, 2000), DK_INFRA_UP);
	assert_false(dk_infra_held_down(h, 0));
	assert_int_equal(h->fails, 0);
}

static void test_pick_ordered(void **state)
{
	(void)state;
	struct dk_infra_choice c = choice(DK_STRATEGY_ORDERED, 0, 0);
	assert_int_equal(dk_infra_pick(&in, &c, 3, 0), 0);
	assert_int_equal(dk_infra_pick(&in, &c, 0, 0), 1);
	assert_int_equal(dk_infra_pick(&in, &c, 2, 0), 0);
	/* Failed ones are skipped; the current one only when nothing else is left. */
	c.failed = 1u << 1 | 1u << 2;
	assert_int_equal(dk_infra_pick(&in, &c, 0, 0), 0);
	c.failed = 7;
	assert_int_equal(dk_infra_pick(&in, &c, 0, 0), 3);
	/* A held-down upstream comes after the current one, and only when nothing else is left. */
	struct dk_infra_host *h = dk_infra_host(&in, slots[1]);
	for (int i = 0; i < DK_INFRA_DOWN_AFTER; i++)
		dk_infra_failed(h, true, 0);
	c = choice(DK_STRATEGY_ORDERED, 0, 0);
	assert_int_equal(dk_infra_pick(&in, &c, 0, 0), 2);
	c.failed = 1u << 2;
	assert_int_equal(dk_infra_pick(&in, &c, 0, 0), 0);
	c.failed = 1u << 0 | 1u << 2;
	assert_int_equal(dk_infra_pick(&in, &c, 0, 0), 1);
	/* Its hold-down over, it is asked in its turn again (a probe). */
	c = choice(DK_STRATEGY_ORDERED, 0, DK_INFRA_HOLD_MIN_MS);
	assert_int_equal(dk_infra_pick(&in, &c, 0, 0), 1);
}

static void test_pick_fastest(void **state)
{
	(void)state;
	dk_infra_answered(dk_infra_host(&in, slots[0]), 50000); /* 50 ms: RTO 150 ms */
	dk_infra_answered(dk_infra_host(&in, slots[1]), 5000);  /* 5 ms */
	/* slots[2] has no sample: the initial 376 ms. */
	struct dk_infra_choice c = choice(DK_STRATEGY_FASTEST, 0, 0);
	assert_int_equal(dk_infra_pick(&in, &c, 3, 0), 1);
	/* After a try to it, the next fastest of the others. */
	assert_int_equal(dk_infra_pick(&in, &c, 1, 0), 0);
	/* One first pick in DK_INFRA_PROBE_EVERY goes to the upstream rnd names. */
	unsigned probes = 0;
	for (int i = 0; i < DK_INFRA_PROBE_EVERY * 4; i++)
		probes += dk_infra_pick(&in, &c, 3, 2) == 2;
	assert_int_equal(probes, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup(test_down_hold_probe_back, reset),
	        cmocka_unit_test_setup(test_pick_ordered, reset),
	        cmocka_unit_test_setup(test_pick_fastest, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
