/* SPDX-License-Identifier: MIT */
/*
 * A growing text buffer for answers built on the main loop (the control
 * socket, the dashboard's API): not for the query path. An allocation
 * failure sticks (oom) and is checked once at the end; the caller owns p.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct dk_text {
	char *p;
	size_t len, cap;
	bool oom;
};

/** Appends printf-formatted text. */
void dk_text_add(struct dk_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Appends @p s (@p n octets) as the inside of a JSON string: quotes, backslashes, controls
 * escaped. */
void dk_text_json(struct dk_text *t, const char *s, size_t n);
