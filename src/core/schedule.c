/* SPDX-License-Identifier: MIT */
/* Schedules of client groups (see schedule.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dnsink/common.h"
#include "dnsink/schedule.h"

static const char *const day_names[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

bool dk_sched_window_active(const struct dk_sched_window *w, const struct dk_localtime *lt)
{
	unsigned prev = (lt->wday + 6) % 7;

	if (w->end > w->start)
		return (w->days >> lt->wday & 1) && lt->minute >= w->start && lt->minute < w->end;
	/* Past midnight: the evening of an opening day, or the morning after one. */
	return ((w->days >> lt->wday & 1) && lt->minute >= w->start) ||
	       ((w->days >> prev & 1) && lt->minute < w->end);
}

static int day_of(const char *s, size_t n)
{
	for (int i = 0; i < 7; i++)
		if (n == 3 && !strncmp(s, day_names[i], 3))
			return i;
	return -1;
}

int dk_sched_parse_days(const char *s, uint8_t *days)
{
	const char *dash = strchr(s, '-');

	if (!strcmp(s, "all")) {
		*days |= DK_SCHED_ALL_DAYS;
		return 0;
	}
	if (!dash) {
		int d = day_of(s, strlen(s));
		if (d < 0)
			return DK_ESYNTAX;
		*days |= (uint8_t)(1u << d);
		return 0;
	}
	int a = day_of(s, (size_t)(dash - s)), b = day_of(dash + 1, strlen(dash + 1));
	if (a < 0 || b < 0)
		return DK_ESYNTAX;
	for (int d = a;; d = (d + 1) % 7) {
		*days |= (uint8_t)(1u << d);
		if (d == b)
			break;
	}
	return 0;
}

/* "HH:MM" into minutes; @p end allows 24:00. Returns the length read or -1. */
static int parse_hhmm(const char *s, bool end, uint16_t *out)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' || s[2] != ':' || s[3] < '0' ||
	    s[3] > '5' || s[4] < '0' || s[4] > '9')
		return -1;
	unsigned h = (unsigned)(s[0] - '0') * 10 + (unsigned)(s[1] - '0');
	unsigned m = (unsigned)(s[3] - '0') * 10 + (unsigned)(s[4] - '0');
	if (h > 24 || (h == 24 && (m || !end)))
		return -1;
	*out = (uint16_t)(h * 60 + m);
	return 5;
}

int dk_sched_parse_hours(const char *s, struct dk_sched_window *w)
{
	uint16_t a, b;

	if (strlen(s) != 11 || parse_hhmm(s, false, &a) < 0 || s[5] != '-' ||
	    parse_hhmm(s + 6, true, &b) < 0)
		return DK_ESYNTAX;
	/* An empty window is a mistake, not "never"; a whole day is 00:00-24:00. */
	if (a == b || (a == 0 && b == 0))
		return DK_ESYNTAX;
	w->start = a;
	w->end = b;
	return 0;
}

bool dk_tz_valid(const char *name)
{
	const char *dir = getenv("TZDIR");
	char path[512];
	struct stat st;

	if (!strcmp(name, "local"))
		return true;
	if (!*name || name[0] == '/' || strstr(name, ".."))
		return false;
	if (snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo",
	             name) >= (int)sizeof(path))
		return false;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Offset east of UTC of zone @p name at @p t, read through localtime_r(). */
static int zone_offset(const char *name, time_t t, int32_t *off)
{
	/* UTC needs no look-up, and no switch of TZ under the other threads' feet. */
	if (!strcmp(name, "UTC") || !strcmp(name, "Etc/UTC")) {
		*off = 0;
		return 0;
	}
	const char *old = getenv("TZ");
	char *saved = old ? strdup(old) : NULL;
	char want[300];
	struct tm tm;
	int rc = 0;

	if (old && !saved)
		return -ENOMEM;
	if (strcmp(name, "local") == 0) {
		unsetenv("TZ");
	} else {
		snprintf(want, sizeof(want), ":%s", name);
		setenv("TZ", want, 1);
	}
	tzset();
	if (!localtime_r(&t, &tm))
		rc = -EOVERFLOW;
	else
		*off = (int32_t)tm.tm_gmtoff;
	if (saved)
		setenv("TZ", saved, 1);
	else
		unsetenv("TZ");
	tzset();
	free(saved);
	return rc;
}

int dk_tz_localtime(struct dk_tz *tz, int64_t now, struct dk_localtime *out)
{
	if (now >= tz->valid_until || now < tz->valid_until - 900) {
		int rc = zone_offset(tz->name, (time_t)now, &tz->offset);
		if (rc < 0)
			return rc;
		tz->valid_until = now - now % 900 + 900;
	}
	int64_t local = now + tz->offset;
	int64_t days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
	int64_t sec = local - days * 86400;
	/* 1970-01-01 was a Thursday. */
	out->wday = (uint8_t)(((days % 7) + 7 + 4) % 7);
	out->minute = (uint16_t)(sec / 60);
	return 0;
}
