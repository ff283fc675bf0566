/* SPDX-License-Identifier: MIT */
/*
 * Recent activity, for the control socket (top) and the dashboard: the
 * busiest clients, names and rules of the match events of the last minutes
 * (dnsink/top.h), the newest alert records, and the query rate with the
 * blocked share over the last hour (the workers' counters sampled every
 * DK_ACTIVITY_STEP_S seconds). Runs on the main loop only: it is fed by the
 * alerter's observer (events and records come to the main loop anyway) and
 * by a timer, so the workers pay nothing for it. Bounded: fixed tables made
 * at creation.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "alert_sink.h"
#include "dnsink/top.h"
#include "metrics.h"

/** Seconds between two samples of the query counters. */
#define DK_ACTIVITY_STEP_S 10
/** Samples kept: one hour. */
#define DK_ACTIVITY_POINTS (3600 / DK_ACTIVITY_STEP_S)
/** Newest alert records kept. */
#define DK_ACTIVITY_RECORDS 50
/** Longest record kept (a longer one is counted, not kept). */
#define DK_ACTIVITY_RECORD_MAX 4096

/** Queries in one step: [t_ms - step, t_ms). The newest point is the step under way. */
struct dk_activity_point {
	uint64_t t_ms;    /**< wall clock at the end of the step (or now) */
	uint32_t step_ms; /**< its length */
	uint64_t queries; /**< queries answered or dropped, every outcome */
	uint64_t blocked; /**< answered by a rule: sinkholed, nxdomain, refused */
};

struct dk_activity;

/**
 * Starts on @p loop, reading the workers' counters through @p src (borrowed,
 * must outlive it). Returns 0 and sets @p *out, or a negative code. Close it
 * with dk_activity_close(), free it after the loop ran the close callbacks.
 */
int dk_activity_new(uv_loop_t *loop, const struct dk_metrics_src *src, struct dk_activity **out);

/** The observer to give dk_alerter_observe(). */
void dk_activity_observer(struct dk_activity *act, struct dk_alert_observer *o);

/** dk_top_query() over the events seen; @p minutes 1..DK_TOP_MINUTES. */
int dk_activity_top(const struct dk_activity *act, enum dk_top_dim dim, unsigned minutes,
                    struct dk_top_item *out, size_t n);

/** Events counted in the last @p minutes. */
uint64_t dk_activity_events(const struct dk_activity *act, unsigned minutes);

/**
 * Up to @p n points, oldest first, the last one the step under way; returns
 * how many.
 */
size_t dk_activity_series(const struct dk_activity *act, struct dk_activity_point *out, size_t n);

/**
 * The newest records, newest first: calls @p fn for each of up to @p n
 * (NUL-terminated JSON). Returns how many.
 */
size_t dk_activity_records(const struct dk_activity *act, size_t n,
                           void (*fn)(void *ctx, const char *json, size_t len), void *ctx);

/** Seconds since dk_activity_new(). */
double dk_activity_uptime(const struct dk_activity *act);

void dk_activity_close(struct dk_activity *act);
void dk_activity_free(struct dk_activity *act);
