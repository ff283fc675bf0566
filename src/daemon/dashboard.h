/* SPDX-License-Identifier: MIT */
/*
 * The dashboard: GET / of the metrics listener serves a self-contained page
 * (dashboard.html, built into the binary), which reads a small read-only
 * JSON API on the same listener:
 *
 *   /api/v1/summary     version, uptime, workers, query and alert totals,
 *                       rules and names loaded, the last load
 *   /api/v1/series      queries and blocked queries per step over the last hour
 *   /api/v1/top?n=N&minutes=M   top blocked names, clients, names and rules
 *                       of the match events
 *   /api/v1/alerts?n=N  the newest alert records, newest first
 *   /api/v1/upstreams   each upstream: up or down, SRTT, queries, answers,
 *                       timeouts, errors
 *
 * Served to loopback clients only, unless metrics.token is set: then to
 * anyone who presents it (metrics.c checks it before calling here).
 * On the main loop, like the metrics endpoint; answers are built per request.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "activity.h"
#include "metrics.h"

struct dk_dashboard;

/**
 * Makes the dashboard over @p src and @p act (borrowed, must outlive it).
 * Returns 0 and sets @p *out, or -ENOMEM.
 */
int dk_dashboard_new(const struct dk_metrics_src *src, const struct dk_activity *act,
                     struct dk_dashboard **out);

/** Frees @p d. NULL is a no-op. */
void dk_dashboard_free(struct dk_dashboard *d);

/** The http hook of struct dk_metrics_src (ctx: the dashboard). */
int dk_dashboard_http(void *ctx, const char *path, size_t path_len, const char *query,
                      size_t query_len, bool loopback, struct dk_http_answer *out);
