/* SPDX-License-Identifier: MIT */
/*
 * The status a feed thread (xfr.c, fetch.c) leaves next to a feed's copy in
 * state_dir ("COPY.status": last attempt and its result, last good one, the
 * results counted by name), so that `dnsink check`, which runs without the
 * daemon, can print how the transfers or downloads went
 * (dk_feed_status_read() reads it back).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/**
 * Writes "@p copy.status" (a temporary file renamed into place). @p names
 * and @p counts are the @p n results and how often each happened. Returns 0
 * or a negative errno; a failure costs only what check can print.
 */
int dk_feed_status_write(const char *copy, double last_time, const char *last_result,
                         double last_ok_time, const char *const *names, const uint64_t *counts,
                         size_t n);
