/* SPDX-License-Identifier: MIT */
/*
 * A worker: one thread, one libuv loop, and the rooms that serve queries on
 * it, wired together here and nowhere else: the UDP and TCP transports bring
 * queries to the query module, which answers through the client handles and
 * forwards through the upstream module. The worker holds them as opaque
 * pointers, runs the per-iteration flush (upstream queries first, then the
 * reply batch), takes new snapshots, and stops in two steps (deaf, then
 * closed once nothing is in flight or the grace period is over).
 *
 * The main thread talks to a running worker only through dk_worker_offer()
 * and dk_worker_stop(), and reads its counters; everything else in it is
 * touched by its own thread.
 */
#pragma once

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "alert_sink.h"
#include "counters.h"
#include "dnsink/common.h"
#include "snapshot.h"
#include "stats.h"

/** How long in-flight queries may finish after SIGTERM. */
#define DK_GRACE_MS 2000

struct dk_worker;
struct dk_dnstap;

/**
 * A cache flush asked of every worker (the control socket's flush and
 * flush-all). The asker owns it and keeps it alive until @p left is zero, or
 * until the workers are freed. Each worker flushes its own
 * cache on its own loop, adds what it removed to @p removed and then counts
 * @p left down (release): the asker polls @p left for zero.
 */
struct dk_flush_job {
	uint8_t name[DK_NAME_MAX]; /**< lowercase wire form */
	size_t name_len;           /**< 0: flush everything */
	atomic_uint left;
	atomic_size_t removed;
};

/** What a worker tells the main thread; both run on the worker's thread. */
struct dk_worker_hooks {
	void (*took)(void *ctx);  /**< the worker switched to the snapshot offered */
	void (*ended)(void *ctx); /**< the worker's loop ended */
	/** A NOTIFY from the primary of RPZ zone @p origin was accepted; must not block. */
	void (*notify)(void *ctx, const char *origin);
	void *ctx;
};

/**
 * Creates worker @p index of @p n_workers on the main thread (each takes its
 * share of the cache's size): its loop, listeners on every
 * address of @p snap's config, upstream sockets; counting into @p stats
 * (taken over), alerts to @p alerter (borrowed), queries and answers to
 * @p dnstap (borrowed; NULL: off) through a queue of its own. Returns 0, or a negative
 * code (logged). Either way @p *out is set when memory allowed: free it with
 * dk_worker_free().
 */
int dk_worker_new(unsigned index, unsigned n_workers, struct dk_snapshot *snap,
                  struct dk_wstats *stats, struct dk_alerter *alerter, struct dk_dnstap *dnstap,
                  const struct dk_worker_hooks *hooks, struct dk_worker **out);

/** Starts the worker's thread. Returns 0 or a negative code (logged). */
int dk_worker_start(struct dk_worker *w);

/** Main thread: the worker switches to @p s soon and says so through hooks.took. */
void dk_worker_offer(struct dk_worker *w, struct dk_snapshot *s);

/**
 * Main thread: the worker flushes its cache for @p job soon (see struct
 * dk_flush_job). One job at a time per worker: a second one before the first
 * was taken replaces it (the asker allows one at a time).
 */
void dk_worker_flush(struct dk_worker *w, struct dk_flush_job *job);

/** Main thread: the worker stops; hooks.ended follows. */
void dk_worker_stop(struct dk_worker *w);

/**
 * Main thread: frees @p w, joining its thread first when it runs (after
 * hooks.ended, or asking it to stop first) and closing what a worker that
 * never ran has opened. NULL is a no-op.
 */
void dk_worker_free(struct dk_worker *w);

/** The worker's counters, read from any thread (see counters.h). */
const struct dk_counters *dk_worker_counters(const struct dk_worker *w);

/**
 * Adds the dnstap messages worker @p w handed to the writer and those it
 * lost (queue full, too large) to @p sent and @p lost; nothing when dnstap
 * is off. Any thread (relaxed atomics of a single writer).
 */
void dk_worker_dnstap_counts(const struct dk_worker *w, uint64_t *sent, uint64_t *lost);

/** The worker's counter block by slot; the main thread frees old ones only after a reload. */
struct dk_wstats *dk_worker_stats(const struct dk_worker *w);

/** Upstream queries the worker may hold at once. */
size_t dk_worker_capacity(const struct dk_worker *w);

/** Client buckets of the worker's rate-limit table (0: off). Before the thread starts. */
size_t dk_worker_ratelimit_size(const struct dk_worker *w);
