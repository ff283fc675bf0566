/* SPDX-License-Identifier: MIT */
/*
 * Schedules of client groups: weekly windows of local wall-clock time in a
 * named time zone ("mon-fri 22:00-06:00 Europe/Berlin"), during which a
 * group's other rule set applies. Pure: the caller passes the time, so tests
 * drive it with a fake clock.
 *
 * Windows are judged in local time: a window 08:00-17:00 opens at 08:00 on
 * either side of a DST change. A window whose end is not after its start
 * runs past midnight into the next day ("fri 22:00-06:00" covers Saturday
 * 00:00-06:00); the day list names the day a window opens. A local time that
 * a DST change skips never happens, so a window lying wholly in the skipped
 * hour does not open that day.
 *
 * Local time comes from the system's time zone database through
 * localtime_r(), which reads the zone from the TZ environment variable; so
 * dk_tz_offset() switches TZ, and must be called from one thread only, off
 * the query path (the daemon's main thread, once per second at most, and
 * once per zone in 15 minutes thanks to struct dk_tz).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/** Days of the week as a bit mask: bit 0 Sunday ... bit 6 Saturday (as tm_wday). */
#define DK_SCHED_ALL_DAYS 0x7f

/** A weekly window. */
struct dk_sched_window {
	uint8_t days;   /**< days it opens on (DK_SCHED_ALL_DAYS...) */
	uint16_t start; /**< minute of the day it opens, 0..1439 */
	uint16_t end;   /**< minute it closes, 1..1440; not after start: the next day */
};

/** A local wall-clock time, as the window test needs it. */
struct dk_localtime {
	uint8_t wday;    /**< 0 Sunday .. 6 Saturday */
	uint16_t minute; /**< minute of the day, 0..1439 */
};

/** True when @p lt falls in window @p w. */
bool dk_sched_window_active(const struct dk_sched_window *w, const struct dk_localtime *lt);

/**
 * Parses a day list item: "mon".."sun", a range "mon-fri" (may wrap:
 * "fri-mon"), or "all"; ORs its days into @p *days. Returns 0 or DK_ESYNTAX.
 */
int dk_sched_parse_days(const char *s, uint8_t *days);

/** Parses "HH:MM-HH:MM" (24:00 allowed as an end) into @p w. 0 or DK_ESYNTAX. */
int dk_sched_parse_hours(const char *s, struct dk_sched_window *w);

/**
 * True when @p name is a zone of the time zone database (a file under
 * $TZDIR or /usr/share/zoneinfo) or "local", the system's own zone. Names
 * holding ".." are refused.
 */
bool dk_tz_valid(const char *name);

/** A time zone with its offset cached until the next quarter hour. */
struct dk_tz {
	const char *name;    /**< as dk_tz_valid() accepts; borrowed */
	int64_t valid_until; /**< UTC seconds until which @p offset holds */
	int32_t offset;      /**< seconds east of UTC */
};

/**
 * Local time of UTC second @p now in zone @p tz into @p out. Looks the offset
 * up (switching TZ) only when the cached one is stale: every zone in use
 * changes offset on a quarter hour of UTC, so one look-up holds until the
 * next one. Single thread only (see above). Returns 0 or a negative errno.
 */
int dk_tz_localtime(struct dk_tz *tz, int64_t now, struct dk_localtime *out);
