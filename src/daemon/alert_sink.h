/* SPDX-License-Identifier: MIT */
/*
 * The alerter: runs on the main (control) loop, never on a worker loop. Each
 * worker owns one SPSC ring (struct dk_alert_ring) and posts match events into
 * it; the alerter drains the rings, folds events through dedup/threshold,
 * formats records and writes them to the configured sinks: syslog(3), RFC 5424
 * over UDP, TCP (octet counting, reconnect with backoff, bounded queue) or a
 * unix socket, and an optional JSON-lines file. A sink that is away costs
 * counted, logged losses, never a stalled worker.
 */
#pragma once

#include <stdint.h>
#include <uv.h>

#include "dnsink/alert.h"
#include "dnsink/config.h"

struct dk_alerter;

/** Counters, read by the metrics endpoint and logged at exit. */
struct dk_alert_stats {
	uint64_t events;       /**< events drained from the rings */
	uint64_t emitted;      /**< records written to at least one sink */
	uint64_t deduplicated; /**< events that got no record of their own when they happened
	                        *   (a repeat in a dedup window, or below the threshold) */
	uint64_t lost_ring;    /**< events refused by a full ring */
	uint64_t lost_sink;    /**< records a sink could not take (queue full, write error) */
	uint64_t queued;       /**< records waiting for an absent collector */
	uint64_t resent; /**< TCP records sent again: not acknowledged when a connection ended */
};

/**
 * Creates the alerter on @p loop (the main loop) for @p n_workers workers,
 * with sinks from @p cfg (not kept: what it needs is copied). Returns 0 and
 * sets @p *out, or a negative code with @p diag set. @p cfg holds every
 * value it uses, nothing is filled in here: one from dk_config_load() does,
 * and one built by hand starts from dk_config_set_defaults() and sets
 * alerts.ident (-EINVAL without it, or with a zero queue or dedup_max).
 */
int dk_alerter_new(uv_loop_t *loop, const struct dk_config *cfg, unsigned n_workers,
                   struct dk_alerter **out, struct dk_diag *diag);

/**
 * Applies a reloaded config: reopens the file sink (log rotation), reconnects
 * the collector if its address changed, new ident/facility/format. Main loop only.
 */
int dk_alerter_reconfigure(struct dk_alerter *a, const struct dk_config *cfg);

/**
 * Worker @p worker posts @p ev: copied into its ring and the main loop woken
 * when the ring was empty. Lock-free, allocation-free, never blocks; a full
 * ring counts a loss. Callable from worker threads only, one thread per index.
 */
void dk_alerter_post(struct dk_alerter *a, unsigned worker, const struct dk_alert_event *ev);

/** Drains every ring now. Main loop only; call before dropping an old policy. */
void dk_alerter_drain(struct dk_alerter *a);

/** Reopens the file sink (SIGHUP, SIGUSR1). Main loop only. */
void dk_alerter_reopen(struct dk_alerter *a);

/**
 * Drains the rings, flushes dedup windows as follow-up records, flushes
 * sinks (bounded wait) and closes the alerter's handles. Free it with
 * dk_alerter_free() once the loop has run the close callbacks.
 */
void dk_alerter_close(struct dk_alerter *a);

/** Frees a closed alerter. NULL is a no-op. */
void dk_alerter_free(struct dk_alerter *a);

void dk_alerter_stats(const struct dk_alerter *a, struct dk_alert_stats *out);

/**
 * What the alerter shows an observer (the dashboard and control socket's
 * recent activity), called on the main loop: every event as it is drained,
 * before dedup (its rule is valid during the call only), and every record as
 * formatted for the sinks. Either function may be NULL.
 */
struct dk_alert_observer {
	void (*event)(void *ctx, const struct dk_alert_event *ev);
	void (*record)(void *ctx, const char *json, size_t len);
	void *ctx;
};

/** Sets the observer (copied); NULL removes it. Main loop only. */
void dk_alerter_observe(struct dk_alerter *a, const struct dk_alert_observer *o);

/** Test hook: the clock dedup uses, ms; NULL restores the wall clock. */
void dk_alerter_set_clock(struct dk_alerter *a, uint64_t (*now_ms)(void));
