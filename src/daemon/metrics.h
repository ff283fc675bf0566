/* SPDX-License-Identifier: MIT */
/*
 * The Prometheus endpoint: a small HTTP/1.0 server on the main (control)
 * loop, never on a worker loop, that answers "GET /metrics" with the text
 * exposition format (version 0.0.4), other GET paths through the http hook
 * of its source (the dashboard), anything else with 404. With metrics.token
 * set, every request must carry it ("Authorization: Bearer TOKEN", or
 * "token=TOKEN" in the query) or gets 401. Each
 * connection gets one answer and is closed; a request larger than 4 KiB or
 * slower than 2 s is dropped. The numbers are the per-worker counters summed
 * at scrape time, the alerter's counters, the loaded policy and the result of
 * the last (re)load. Off unless "metrics.listen" is configured.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "counters.h"
#include "dnsink/config.h"

struct dk_worker;
struct dk_alerter;
struct dk_snapshot;

/** An answer to a path other than /metrics (the dashboard's). */
struct dk_http_answer {
	int status;              /**< 200, 400, 404... */
	const char *type;        /**< Content-Type */
	char *body;              /**< malloc'ed, freed with the connection; or NULL ... */
	const char *static_body; /**< ... and this, not freed */
	size_t len;
};

/**
 * Answers GET @p path (@p query: what follows '?', may be empty) for a
 * client that @p loopback tells whether it is on a loopback address.
 * Returns 0 with @p out filled, or a negative code (the connection is closed).
 */
typedef int dk_http_fn(void *ctx, const char *path, size_t path_len, const char *query,
                       size_t query_len, bool loopback, struct dk_http_answer *out);

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
	dk_http_fn *http;               /**< every other path; NULL: 404 */
	void *http_ctx;
	struct dk_xfr *xfr;     /**< RPZ zone transfers; NULL: none */
	struct dk_fetch *fetch; /**< lists on URLs; NULL: none */
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

/**
 * The counters of upstream @p i of the config in force, summed over the
 * workers (the SRTT the mean of those that have one; down is the number of
 * workers that hold it down). Returns 0, or -ENOENT when there is no such
 * upstream.
 */
int dk_metrics_upstream(const struct dk_metrics_src *src, size_t i, struct dk_up_stats *out);

/** Matches of rule @p i of the policy in force, summed over the workers (0: none). */
uint64_t dk_metrics_rule_hits(const struct dk_metrics_src *src, size_t i);
