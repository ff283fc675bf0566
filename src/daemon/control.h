/* SPDX-License-Identifier: MIT */
/*
 * The control socket (control.socket), what `dnsink ctl` talks to: a unix
 * stream socket on the main loop, never on a worker loop. One request line
 * per connection ("COMMAND [ARG]\n", at most DK_CONTROL_REQ_MAX octets), one
 * answer ("ok\n" or "error: what\n", then the text), then the daemon closes
 * it. At most DK_CONTROL_CONN_MAX connections at once; one that has not sent
 * its line within DK_CONTROL_TIMEOUT_MS is closed. The socket is made mode
 * 0660 and given to group "dnsink" when that group exists.
 *
 * Commands: status, stats, reload, flush NAME, flush-all, top [N], match
 * NAME (see dnsink(8)). Everything but reload and flush reads what the main
 * loop already holds; reload is the server's (a callback), and a flush is
 * done by each worker on its own loop (dk_worker_flush()).
 */
#pragma once

#include <stddef.h>
#include <uv.h>

#include "activity.h"
#include "metrics.h"

/** Longest request line, the newline included. */
#define DK_CONTROL_REQ_MAX 1024
/** Connections served at once; more are closed at once. */
#define DK_CONTROL_CONN_MAX 16
/** A connection that has not sent its line (or whose flush took) longer is closed. */
#define DK_CONTROL_TIMEOUT_MS 5000

struct dk_worker;

/** What the commands read and call; borrowed, must outlive the control socket. */
struct dk_control_env {
	const struct dk_metrics_src *src; /**< workers, snapshot, alerter, last load */
	struct dk_worker *const *workers; /**< the same workers, for flushes */
	const struct dk_activity *act;    /**< top; NULL: none */
	const char *config_path;
	/**
	 * Reloads config and rules now, as SIGHUP does. Returns 0 with a summary
	 * in @p msg, or a negative code with the error (FILE:LINE: what) in @p msg;
	 * -EBUSY while a reload is under way.
	 */
	int (*reload)(void *ctx, char *msg, size_t size);
	void *ctx;
};

struct dk_control;

/**
 * Listens on unix socket @p path on @p loop (the main loop). A stale socket
 * file left by a daemon that is gone is replaced; one a live daemon answers
 * on is an error (-EADDRINUSE). Returns 0, or a negative code with @p why
 * set; either way @p *out is set when memory allowed, to be closed with
 * dk_control_close() and freed with dk_control_free().
 */
int dk_control_new(uv_loop_t *loop, const char *path, const struct dk_control_env *env,
                   struct dk_control **out, const char **why);

/**
 * Closes the listener and every connection, and removes the socket file.
 * NULL is a no-op.
 */
void dk_control_close(struct dk_control *c);

/**
 * Frees a closed control socket, after the loop ran the close callbacks
 * and after the workers are freed (a flush job may still be in one's
 * mailbox). NULL is a no-op.
 */
void dk_control_free(struct dk_control *c);
