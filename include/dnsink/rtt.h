/* SPDX-License-Identifier: MIT */
/*
 * The round-trip estimator of one upstream, as TCP's (RFC 6298) and as
 * Unbound's infra cache keep it: a smoothed RTT and its variance from every
 * answer, a retransmission timeout derived from them, doubled for each try
 * in a row that timed out (exponential backoff) and reset by an answer.
 *
 * An unambiguous sample is guaranteed by the forwarder, not here: every try
 * goes with a fresh ID, so an answer times the try it answers (Karn's
 * problem does not arise). Pure: the caller passes the times.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/** Timeout of a try to an upstream with no sample yet (Unbound's 376 ms). */
#define DK_RTT_INITIAL_MS 376
/**
 * The shortest timeout: below it, an answer merely late on a busy host would
 * be taken for a loss. Unbound's floor is 50 ms; ours is higher because a
 * retransmission drops the first try's answer (a fresh ID), so a try cut
 * short costs an answer.
 */
#define DK_RTT_MIN_MS 100
/** Tries in a row that timed out, as far as the backoff counts them. */
#define DK_RTT_BACKOFF_MAX 5

struct dk_rtt {
	uint32_t srtt_us;   /**< smoothed round-trip time */
	uint32_t rttvar_us; /**< its mean deviation */
	uint8_t backoff;    /**< tries in a row that timed out (the timeout doubles each) */
	bool valid;         /**< at least one sample */
};

/** Takes the round-trip time @p us of an answered try. */
void dk_rtt_sample(struct dk_rtt *r, uint32_t us);

/** A try timed out: the next timeout doubles (up to DK_RTT_BACKOFF_MAX times). */
void dk_rtt_timed_out(struct dk_rtt *r);

/**
 * The timeout of the next try, in ms: SRTT + 4 × RTTVAR (DK_RTT_INITIAL_MS
 * without a sample), doubled per backoff step, at least DK_RTT_MIN_MS and at
 * most @p max_ms.
 */
unsigned dk_rtt_timeout_ms(const struct dk_rtt *r, unsigned max_ms);
