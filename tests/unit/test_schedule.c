/* SPDX-License-Identifier: MIT */
/*
 * Schedules (src/core/schedule.c) with a fake clock: the caller's UTC second
 * goes in, so each case states the instant it judges. Windows past midnight
 * and across the week's end, time zones of the system database, and both
 * DST changes of Europe/Berlin and America/New_York in 2026.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "dnsink/common.h"
#include "dnsink/schedule.h"

/* UTC second of a calendar instant (timegm: no zone involved). */
static int64_t utc(int y, int mon, int d, int h, int min)
{
	struct tm tm = {
	        .tm_year = y - 1900, .tm_mon = mon - 1, .tm_mday = d, .tm_hour = h, .tm_min = min};
	return (int64_t)timegm(&tm);
}

static struct dk_sched_window window(const char *days, const char *hours)
{
	struct dk_sched_window w = {0};
	char buf[64], *save = NULL;

	strcpy(buf, days);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
		assert_int_equal(dk_sched_parse_days(t, &w.days), 0);
	assert_int_equal(dk_sched_parse_hours(hours, &w), 0);
	return w;
}

static bool at(const struct dk_sched_window *w, unsigned wday, unsigned h, unsigned m)
{
	struct dk_localtime lt = {.wday = (uint8_t)wday, .minute = (uint16_t)(h * 60 + m)};
	return dk_sched_window_active(w, &lt);
}

static void test_parse(void **state)
{
	struct dk_sched_window w = {0};
	uint8_t d = 0;

	(void)state;
	assert_int_equal(dk_sched_parse_days("mon-fri", &d), 0);
	assert_int_equal(d, 0x3e);
	d = 0;
	assert_int_equal(dk_sched_parse_days("fri-mon", &d), 0); /* wraps over the weekend */
	assert_int_equal(d, 0x63);
	d = 0;
	assert_int_equal(dk_sched_parse_days("all", &d), 0);
	assert_int_equal(d, DK_SCHED_ALL_DAYS);
	assert_int_equal(dk_sched_parse_days("monday", &d), DK_ESYNTAX);
	assert_int_equal(dk_sched_parse_days("mon-", &d), DK_ESYNTAX);
	assert_int_equal(dk_sched_parse_hours("08:00-17:30", &w), 0);
	assert_int_equal(w.start, 480);
	assert_int_equal(w.end, 1050);
	assert_int_equal(dk_sched_parse_hours("00:00-24:00", &w), 0);
	assert_int_equal(w.end, 1440);
	assert_int_equal(dk_sched_parse_hours("24:00-01:00", &w), DK_ESYNTAX);
	assert_int_equal(dk_sched_parse_hours("08:00-08:00", &w), DK_ESYNTAX);
	assert_int_equal(dk_sched_parse_hours("8:00-17:00", &w), DK_ESYNTAX);
	assert_int_equal(dk_sched_parse_hours("08:60-17:00", &w), DK_ESYNTAX);
	assert_int_equal(dk_sched_parse_hours("08:00-17:00x", &w), DK_ESYNTAX);
}

static void test_window_day(void **state)
{
	struct dk_sched_window w = window("mon-fri", "08:00-17:00");

	(void)state;
	assert_false(at(&w, 1, 7, 59));
	assert_true(at(&w, 1, 8, 0));
	assert_true(at(&w, 5, 16, 59));
	assert_false(at(&w, 5, 17, 0)); /* the end is not in the window */
	assert_false(at(&w, 6, 12, 0));
	assert_false(at(&w, 0, 12, 0));
}

static void test_midnight_wrap(void **state)
{
	struct dk_sched_window w = window("fri,sat", "22:00-06:00");

	(void)state;
	assert_false(at(&w, 5, 21, 59));
	assert_true(at(&w, 5, 22, 0));
	assert_true(at(&w, 5, 23, 59));
	assert_true(at(&w, 6, 0, 0)); /* Saturday morning: Friday's night */
	assert_true(at(&w, 6, 5, 59));
	assert_false(at(&w, 6, 6, 0));
	assert_false(at(&w, 6, 12, 0));
	assert_true(at(&w, 6, 22, 30));
	assert_true(at(&w, 0, 3, 0)); /* Sunday morning: Saturday's night, across the week's end */
	assert_false(at(&w, 0, 22, 30));
	assert_false(at(&w, 1, 3, 0));
	/* Sunday night runs into Monday, day 0 into day 1. */
	struct dk_sched_window s = window("sun", "23:00-01:00");
	assert_true(at(&s, 1, 0, 30));
	assert_false(at(&s, 6, 23, 30));
}

static void test_utc(void **state)
{
	struct dk_tz tz = {.name = "UTC"};
	struct dk_localtime lt;

	(void)state;
	/* Tuesday 1 December 2026, 10:05 UTC. */
	assert_int_equal(dk_tz_localtime(&tz, utc(2026, 12, 1, 10, 5), &lt), 0);
	assert_int_equal(lt.wday, 2);
	assert_int_equal(lt.minute, 605);
	assert_int_equal(tz.offset, 0);
	/* Before the epoch too (days round down). */
	assert_int_equal(dk_tz_localtime(&tz, utc(1969, 12, 31, 23, 0), &lt), 0);
	assert_int_equal(lt.wday, 3);
	assert_int_equal(lt.minute, 23 * 60);
}

static void test_berlin_dst(void **state)
{
	struct dk_tz tz = {.name = "Europe/Berlin"};
	struct dk_sched_window w = window("sun", "08:00-09:00");
	struct dk_localtime lt;

	(void)state;
	/* Winter: CET, UTC+1. Sunday 22 March 2026, 07:30 UTC is 08:30 local. */
	assert_int_equal(dk_tz_localtime(&tz, utc(2026, 3, 22, 7, 30), &lt), 0);
	assert_int_equal(tz.offset, 3600);
	assert_true(dk_sched_window_active(&w, &lt));
	/* Summer from 29 March 2026 01:00 UTC: the same window opens an hour earlier in UTC. */
	assert_int_equal(dk_tz_localtime(&tz, utc(2026, 3, 29, 0, 59), &lt), 0);
	assert_int_equal(lt.minute, 119); /* 01:59 CET */
	assert_int_equal(dk_tz_localtime(&tz, utc(2026, 3, 29, 1, 0), &lt), 0);
	assert_int_equal(tz.offset, 7200);
	assert_int_equal(lt.minute, 180); /* 03:00 CEST: 02:00-02:59 never happened */
	assert_int_equal(dk_tz_localtime(&tz, utc(2026, 3, 29, 6, 30), &lt), 0);
	assert_true(dk_sched_window_active(&w, &lt));
	assert_int_equal(dk_tz_localtime(&tz, utc(2026, 3, 29, 7, 30), &lt), 0);
	assert_false(dk_sched_window_active(&w, &lt)); /* 09:30 local */
	/* A window wholly inside the skipped hour does not open that night. */
	struct dk_sched_window skipped = window("sun", "02:15-02:45");
	for (int m = 0; m < 180; m++) {
		assert_int_equal(dk_tz_localtime(&tz, utc(2026, 3, 29, 0, 0) + m * 60, &lt), 0);
		assert_false(dk_sched_window_active(&skipped, &lt));
	}
	/* Back to CET on 25 October 2026 at 01:00 UTC: 02:30 local happens twice. */
	struct dk_sched_window twice = window("sun", "02:00-03:00");
	int open = 0;
	for (int m = 0; m < 240; m += 15) {
		assert_int_equal(dk_tz_localtime(&tz, utc(2026, 10, 24, 23, 0) + m * 60, &lt), 0);
		open += dk_sched_window_active(&twice, &lt);
	}
	assert_int_equal(open, 8); /* two local hours, eight quarters */
	assert_int_equal(tz.offset, 3600);
}

static void test_new_york_and_cache(void **state)
{
	struct dk_tz tz = {.name = "America/New_York"};
	struct dk_localtime lt;

	(void)state;
	/* Tuesday 1 December 2026 03:00 UTC is Monday 22:00 EST. */
	assert_int_equal(dk_tz_localtime(&tz, utc(2026, 12, 1, 3, 0), &lt), 0);
	assert_int_equal(tz.offset, -5 * 3600);
	assert_int_equal(lt.wday, 1);
	assert_int_equal(lt.minute, 22 * 60);
	/* The offset is kept to the next quarter hour, then looked up again. */
	assert_int_equal(tz.valid_until, utc(2026, 12, 1, 3, 15));
	/* A clock set back is not served the stale cache. */
	assert_int_equal(dk_tz_localtime(&tz, utc(2026, 7, 1, 3, 0), &lt), 0);
	assert_int_equal(tz.offset, -4 * 3600);
	/* The process's own TZ is left as it was. */
	assert_null(getenv("TZ"));
}

static void test_tz_valid(void **state)
{
	(void)state;
	assert_true(dk_tz_valid("Europe/Berlin"));
	assert_true(dk_tz_valid("UTC"));
	assert_true(dk_tz_valid("local"));
	assert_false(dk_tz_valid("Europe/Atlantis"));
	assert_false(dk_tz_valid("../../etc/passwd"));
	assert_false(dk_tz_valid("/etc/localtime"));
	assert_false(dk_tz_valid("Europe")); /* a folder, not a zone */
	assert_false(dk_tz_valid(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse),         cmocka_unit_test(test_window_day),
	        cmocka_unit_test(test_midnight_wrap), cmocka_unit_test(test_utc),
	        cmocka_unit_test(test_berlin_dst),    cmocka_unit_test(test_new_york_and_cache),
	        cmocka_unit_test(test_tz_valid),
	};
	unsetenv("TZ");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
