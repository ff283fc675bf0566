/* SPDX-License-Identifier: MIT */
/*
 * Zone transfer of RPZ zones from their primaries (rpz: primary:), off the
 * worker loops: one thread does every transfer with blocking, time-bounded
 * sockets. AXFR first (or when no copy is known), then IXFR with the serial
 * in force, on the SOA refresh timer (retry after a failure; expire logged
 * and counted, the last copy kept), and at once on a NOTIFY that a worker
 * accepted from the zone's primary. TSIG signs every query and is checked on
 * every answer when the rule has a key.
 *
 * A transfer that is refused (bad or missing TSIG, error rcode), cut short
 * (the connection ends or times out before the closing SOA), goes backwards
 * (a serial older than the one in force) or leaves the zone without a single
 * trigger keeps the previous copy; it is logged and counted by reason. A good
 * one is written to state_dir (rpz-ORIGIN.zone, renamed into place) and the
 * main loop is told, which reloads the policy as SIGHUP does: the new
 * snapshot is swapped in as on any reload, and a restart reads the copy when
 * the primary cannot be reached.
 */
#pragma once

#include <stdint.h>
#include <uv.h>

#include "dnsink/config.h"
#include "dnsink/policy.h"

/** Why a transfer failed; the label of dnsink_rpz_transfers_total{result}. */
enum dk_xfr_result {
	DK_XFR_OK,         /**< a new copy, written and loaded */
	DK_XFR_UP_TO_DATE, /**< the primary has no newer serial */
	DK_XFR_CONNECT,    /**< no TCP connection to the primary */
	DK_XFR_CUT,        /**< the stream ended or timed out before the closing SOA */
	DK_XFR_TSIG,       /**< TSIG missing, wrong, or refused by the primary (NOTAUTH) */
	DK_XFR_RCODE,      /**< an error rcode (REFUSED, SERVFAIL, NOTIMP...) */
	DK_XFR_MALFORMED,  /**< an answer that is no transfer of the zone */
	DK_XFR_SERIAL,     /**< the serial went backwards */
	DK_XFR_EMPTY,      /**< the zone would hold no trigger at all */
	DK_XFR_WRITE,      /**< the copy could not be written to state_dir */
	DK_XFR_RESULT_MAX,
};

/** "ok", "up_to_date", "connect", "cut", "tsig", ... */
const char *dk_xfr_result_name(enum dk_xfr_result r);

/** What metrics and logs show of one zone; a copy taken under the module's lock. */
struct dk_xfr_zone_stats {
	char origin[DK_NAME_MAX * 4 + 2];
	bool have_serial;
	uint32_t serial;     /**< of the copy in force */
	double last_time;    /**< wall clock of the last transfer attempt, seconds; 0: none */
	double last_ok_time; /**< of the last good one; 0: none */
	enum dk_xfr_result last_result;
	uint64_t results[DK_XFR_RESULT_MAX];
	uint64_t notifies; /**< NOTIFYs accepted from the primary */
	bool expired;      /**< no good transfer for longer than the SOA's expire */
};

struct dk_xfr;

/** Called on the main loop after a transfer wrote a new copy: reload the policy. */
typedef void (*dk_xfr_changed_fn)(void *ctx);

/**
 * Creates the module on main loop @p loop and starts its thread; @p changed
 * with @p ctx is called on that loop after a good transfer. Returns 0 and
 * sets @p *out, or a negative code.
 */
int dk_xfr_new(uv_loop_t *loop, dk_xfr_changed_fn changed, void *ctx, struct dk_xfr **out);

/**
 * Main thread: the zones with a primary in @p pol (may be NULL) are the ones
 * to keep current from now on. A zone already known keeps its state; a new
 * one is transferred at once. The policy is not kept: what is needed is
 * copied.
 */
void dk_xfr_update(struct dk_xfr *x, const struct dk_policy *pol);

/**
 * Any thread (a worker): a NOTIFY for zone @p origin (text, final dot) came
 * from its primary; transfer now. Never blocks: when the hand-over pipe is
 * full the NOTIFY is dropped, as a lost datagram would be (the refresh timer
 * still runs). Returns 0 or -EAGAIN.
 */
int dk_xfr_notify(struct dk_xfr *x, const char *origin);

/**
 * Main thread: copies the stats of up to @p cap zones into @p out; returns
 * how many zones there are.
 */
size_t dk_xfr_stats(struct dk_xfr *x, struct dk_xfr_zone_stats *out, size_t cap);

/** Main thread: stops the thread (a transfer in progress ends at its next timeout). */
void dk_xfr_stop(struct dk_xfr *x);

/** Main thread, after dk_xfr_stop(): closes the loop handle and frees. NULL is a no-op. */
void dk_xfr_free(struct dk_xfr *x);
