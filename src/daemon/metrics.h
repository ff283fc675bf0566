/* SPDX-License-Identifier: MIT */
/*
 * The Prometheus endpoint: a small HTTP/1.0 server on the main (control)
 * loop, never on a worker loop, that answers "GET /metrics" with the text
 * exposition format (version 0.0.4) and anything else with 404. Each
 * connection gets one answer and is closed; a request larger than 4 KiB or
 * slower than 2 s is dropped. The numbers are the per-worker counters summed
 * at scrape time, the alerter's counters, the loaded policy and the result of
 * the last (re)load. Off unless "metrics.listen" is configured.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "dnsink/config.h"

struct dk_worker;
struct dk_alerter;
struct dk_snapshot;

/**
 * What a scrape reads. Owned by the server and updated by it on the main
 * thread only (the workers' counters excepted, see metrics.c).
 */
struct dk_metrics_src {
	const struct dk_worker *const *workers;
	unsigned n_workers;
	const struct dk_alerter *alerter;
	const struct dk_snapshot *snap; /**< the snapshot in force */
	double reload_time;             /**< Unix time of the last load attempt (start or reload) */
	bool reload_ok;                 /**< whether it succeeded */
	struct dk_xfr *xfr;             /**< RPZ zone transfers; NULL: none */
	struct dk_fetch *fetch;         /**< lists on URLs; NULL: none */
};

struct dk_metrics;
struct dk_xfr;
struct dk_fetch;

/**
 * Starts the endpoint on @p loop (the main loop), listening on @p addr.
 * @p src is borrowed and must outlive the endpoint. Returns 0 or a negative
 * code; either way @p *out is set (NULL only when out of memory) and the
 * caller closes it with dk_metrics_close() and frees it with dk_metrics_free().
 */
int dk_metrics_new(uv_loop_t *loop, const struct dk_addr *addr, const struct dk_metrics_src *src,
                   struct dk_metrics **out);

/**
 * Closes the listener and every open connection. Free with dk_metrics_free()
 * once the loop has run the close callbacks. NULL is a no-op.
 */
void dk_metrics_close(struct dk_metrics *m);

/** Frees a closed endpoint. NULL is a no-op. */
void dk_metrics_free(struct dk_metrics *m);

/**
 * Writes the exposition text of @p src into a new buffer (caller frees) and
 * its length into @p *len. Returns NULL when out of memory.
 */
char *dk_metrics_render(const struct dk_metrics_src *src, size_t *len);
