/* SPDX-License-Identifier: MIT */
/*
 * Lists on URLs (domain_urls:), downloaded off the worker loops: one thread
 * runs every download with libcurl (http:// and https://, certificates
 * verified), each URL on its refresh_s timer and at start. A download is
 * conditional (If-None-Match with the last ETag, If-Modified-Since with the
 * last Last-Modified), bounded in size (max_mb) and time (timeout_s).
 *
 * A body is read as a list file is before it is taken; a download is
 * refused and the last good copy kept when it fails (connection, timeout, an
 * HTTP error status, a body cut short or too large), when it yields no entry
 * at all, or when it yields more than max_shrink percent fewer entries than
 * the last good copy, so that a broken feed does not silently unblock
 * everything. A good one is written to state_dir (list-HASH.txt, renamed
 * into place, with its validators in list-HASH.txt.meta) and the main loop
 * reloads the policy, as after a zone transfer; at start that copy is what
 * is served until the URL answers.
 */
#pragma once

#include <stdint.h>
#include <uv.h>

#include "dnsink/policy.h"

enum dk_fetch_result {
	DK_FETCH_OK,           /**< a new copy, written and loaded */
	DK_FETCH_NOT_MODIFIED, /**< 304: the copy in force is current */
	DK_FETCH_CONNECT,      /**< no connection (DNS, refused, TLS handshake or certificate) */
	DK_FETCH_TIMEOUT,      /**< timeout_s passed */
	DK_FETCH_HTTP,         /**< an HTTP status other than 200 and 304 */
	DK_FETCH_CUT,          /**< the body ended before its Content-Length */
	DK_FETCH_TOO_LARGE,    /**< more than max_mb */
	DK_FETCH_EMPTY,        /**< no entry at all */
	DK_FETCH_SHRINK,       /**< far fewer entries than the last good copy */
	DK_FETCH_WRITE,        /**< the copy could not be written */
	DK_FETCH_RESULT_MAX,
};

/** "ok", "not_modified", "connect", ... */
const char *dk_fetch_result_name(enum dk_fetch_result r);

/** What metrics show of one URL; a copy taken under the module's lock. */
struct dk_fetch_url_stats {
	char url[512];
	size_t entries;   /**< of the copy in force */
	double last_time; /**< wall clock of the last attempt; 0: none */
	enum dk_fetch_result last_result;
	long last_status; /**< HTTP status of the last attempt; 0: none */
	uint64_t results[DK_FETCH_RESULT_MAX];
};

struct dk_fetch;

/** Called on the main loop after a download wrote a new copy: reload the policy. */
typedef void (*dk_fetch_changed_fn)(void *ctx);

/** Creates the module on main loop @p loop and starts its thread. 0 or a negative code. */
int dk_fetch_new(uv_loop_t *loop, dk_fetch_changed_fn changed, void *ctx, struct dk_fetch **out);

/** Main thread: the URLs of @p pol (may be NULL) are the ones to keep current. */
void dk_fetch_update(struct dk_fetch *f, const struct dk_policy *pol);

/** Main thread: copies the stats of up to @p cap URLs; returns how many there are. */
size_t dk_fetch_stats(struct dk_fetch *f, struct dk_fetch_url_stats *out, size_t cap);

/** Main thread: stops the thread (a download in progress is aborted). */
void dk_fetch_stop(struct dk_fetch *f);

/** Main thread, after dk_fetch_stop(): closes the loop handle and frees. NULL is a no-op. */
void dk_fetch_free(struct dk_fetch *f);
