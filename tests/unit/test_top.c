/* SPDX-License-Identifier: MIT */
/* The busiest keys of the last minutes (src/core/top.c): counts, windows, Space-Saving bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dnsink/top.h"

#define MIN_MS 60000ULL
#define T0     (1000 * MIN_MS) /* any minute boundary */

static void add(struct dk_top *t, uint64_t now, const char *client, const char *name,
                const char *rule)
{
	const char *const k[DK_TOP_DIMS] = {client, name, rule};

	dk_top_add(t, now, k);
}

static void test_counts_and_order(void **state)
{
	struct dk_top *t;
	struct dk_top_item it[4];

	(void)state;
	assert_int_equal(dk_top_new(&t), 0);
	for (int i = 0; i < 5; i++)
		add(t, T0 + 1000, "10.0.0.1", "a.test", "R1");
	for (int i = 0; i < 3; i++)
		add(t, T0 + 2000, "10.0.0.2", "b.test", "R1");
	add(t, T0 + 3000, "10.0.0.3", "c.test", NULL);
	assert_int_equal(dk_top_events(t, T0 + 4000, 1), 9);
	assert_int_equal(dk_top_query(t, T0 + 4000, 5, DK_TOP_CLIENT, it, 4), 3);
	assert_string_equal(it[0].key, "10.0.0.1");
	assert_int_equal(it[0].count, 5);
	assert_int_equal(it[0].error, 0);
	assert_string_equal(it[1].key, "10.0.0.2");
	assert_int_equal(it[1].count, 3);
	assert_string_equal(it[2].key, "10.0.0.3");
	/* No key: not counted in that dimension. */
	assert_int_equal(dk_top_query(t, T0 + 4000, 5, DK_TOP_RULE, it, 4), 1);
	assert_string_equal(it[0].key, "R1");
	assert_int_equal(it[0].count, 8);
	/* n caps the answer. */
	assert_int_equal(dk_top_query(t, T0 + 4000, 5, DK_TOP_NAME, it, 1), 1);
	assert_string_equal(it[0].key, "a.test");
	dk_top_free(t);
}

static void test_minutes_merge_and_expire(void **state)
{
	struct dk_top *t;
	struct dk_top_item it[2];

	(void)state;
	assert_int_equal(dk_top_new(&t), 0);
	add(t, T0, "c", "x.test", "R");
	add(t, T0 + 2 * MIN_MS, "c", "x.test", "R");
	add(t, T0 + 2 * MIN_MS + 1, "d", "y.test", "R");
	/* Both minutes in a 3-minute window, only the last one in a 1-minute one. */
	assert_int_equal(dk_top_query(t, T0 + 2 * MIN_MS + 5, 3, DK_TOP_CLIENT, it, 2), 2);
	assert_string_equal(it[0].key, "c");
	assert_int_equal(it[0].count, 2);
	assert_int_equal(dk_top_query(t, T0 + 2 * MIN_MS + 5, 1, DK_TOP_CLIENT, it, 2), 2);
	assert_int_equal(it[0].count, 1);
	assert_int_equal(dk_top_events(t, T0 + 2 * MIN_MS + 5, 10), 3);
	/* Past the ring, a minute's slot is reused: the old counts are gone. */
	add(t, T0 + DK_TOP_MINUTES * MIN_MS, "e", "z.test", "R");
	assert_int_equal(dk_top_events(t, T0 + DK_TOP_MINUTES * MIN_MS, 10), 3);
	assert_int_equal(dk_top_query(t, T0 + DK_TOP_MINUTES * MIN_MS, 10, DK_TOP_CLIENT, it, 2),
	                 2);
	assert_string_equal(it[0].key, "c"); /* the one of T0 + 2 min, still in the window */
	assert_int_equal(it[0].count, 1);
	/* Long after: nothing in the window. */
	assert_int_equal(dk_top_query(t, T0 + 100 * MIN_MS, 10, DK_TOP_CLIENT, it, 2), 0);
	assert_int_equal(dk_top_events(t, T0 + 100 * MIN_MS, 10), 0);
	dk_top_free(t);
}

/* A flood of distinct keys cannot push out a heavy one, and the bounds hold. */
static void test_space_saving_bounds(void **state)
{
	struct dk_top *t;
	struct dk_top_item it[3];
	char key[32];

	(void)state;
	assert_int_equal(dk_top_new(&t), 0);
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "spoof-%d", i);
		add(t, T0 + 10, key, NULL, NULL);
		if (i % 10 == 0)
			add(t, T0 + 10, "heavy", NULL, NULL);
	}
	assert_int_equal(dk_top_query(t, T0 + 20, 1, DK_TOP_CLIENT, it, 3), 3);
	assert_string_equal(it[0].key, "heavy");
	assert_true(it[0].count >= 500);
	assert_true(it[0].count - it[0].error <= 500);
	dk_top_free(t);
}

static void test_long_key_cut(void **state)
{
	struct dk_top *t;
	struct dk_top_item it[1];
	char key[DK_TOP_KEY_MAX + 50];

	(void)state;
	memset(key, 'a', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	assert_int_equal(dk_top_new(&t), 0);
	add(t, T0, NULL, key, NULL);
	add(t, T0, NULL, key, NULL);
	assert_int_equal(dk_top_query(t, T0, 1, DK_TOP_NAME, it, 1), 1);
	assert_int_equal(strlen(it[0].key), DK_TOP_KEY_MAX - 1);
	assert_int_equal(it[0].count, 2);
	assert_int_equal(dk_top_query(t, T0, 1, DK_TOP_DIMS, it, 1), -22);
	dk_top_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_counts_and_order),
	        cmocka_unit_test(test_minutes_merge_and_expire),
	        cmocka_unit_test(test_space_saving_bounds),
	        cmocka_unit_test(test_long_key_cut),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
