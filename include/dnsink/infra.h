/* SPDX-License-Identifier: MIT */
/*
 * What a worker knows of its upstreams, and which one a try goes to (as
 * Unbound's infra cache): per upstream its round trips (rtt.h) and its
 * health. An upstream with DK_INFRA_DOWN_AFTER tries in a row unanswered is
 * down: skipped while another can be asked; once its hold-down is over
 * (DK_INFRA_HOLD_MIN_MS, doubling per failed probe to DK_INFRA_HOLD_MAX_MS)
 * the next query tries it again, with the timeout its round trips had before
 * the backoff (a probe costs that query little), and its first answer
 * brings it back.
 *
 * Upstreams are known by their counter slot (stats.h), so what is learnt
 * outlives reloads. Pure: the caller passes the time; one per worker, no
 * locks.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnsink/config.h"
#include "dnsink/rtt.h"

/** Upstreams (counter slots) with a memory; stats.c has as many. */
#define DK_INFRA_SLOTS 256
/** Upstreams one query can mark as failed; later ones only time out. */
#define DK_INFRA_MARKED      64
#define DK_INFRA_DOWN_AFTER  5
#define DK_INFRA_HOLD_MIN_MS 1000
#define DK_INFRA_HOLD_MAX_MS 60000
/** With "fastest", one query in this many starts at a random upstream (a probe). */
#define DK_INFRA_PROBE_EVERY 32

struct dk_infra_host {
	struct dk_rtt rtt;
	uint8_t fails; /**< tries in a row without an answer */
	bool down;
	uint32_t hold_ms;  /**< the current hold-down */
	uint64_t until_ms; /**< when the hold-down ends: then a query probes it */
};

struct dk_infra {
	struct dk_infra_host host[DK_INFRA_SLOTS];
	struct dk_infra_host none; /**< for an upstream without a slot: it never learns */
	unsigned picks;            /**< first picks made, for the probes of "fastest" */
};

/** A change of health, for the caller to log and count. */
enum dk_infra_change {
	DK_INFRA_SAME,
	DK_INFRA_DOWN, /**< the upstream just went down */
	DK_INFRA_UP,   /**< it just came back */
};

/** The memory of counter slot @p slot (UINT32_MAX or beyond: a scratch one, reset). */
struct dk_infra_host *dk_infra_host(struct dk_infra *in, uint32_t slot);

/** @p h answered a try; @p rtt_us > 0 is that try's round trip (UDP only: a TCP one may hold a
 * handshake). */
enum dk_infra_change dk_infra_answered(struct dk_infra_host *h, uint32_t rtt_us);

/** A try to @p h at @p now_ms got no answer: @p timed_out (its timeout backs off) or an error. */
enum dk_infra_change dk_infra_failed(struct dk_infra_host *h, bool timed_out, uint64_t now_ms);

/** Whether @p h is down and its hold-down not over at @p now_ms. */
bool dk_infra_held_down(const struct dk_infra_host *h, uint64_t now_ms);

/** The timeout of a try to @p h, in ms, at most @p cap (for a down one: before its backoff). */
unsigned dk_infra_timeout_ms(const struct dk_infra_host *h, unsigned cap);

/** The upstreams a pick chooses from. */
struct dk_infra_choice {
	const uint32_t *slot; /**< counter slot per upstream index, or NULL */
	size_t n;             /**< upstreams */
	enum dk_upstream_strategy strategy;
	uint64_t failed; /**< bit i: upstream i failed this query (not by a timeout) */
	uint64_t now_ms;
};

/**
 * The upstream for the next try after upstream @p cur (@p c->n: the first
 * try of a query): another that has not failed the query and is not held
 * down — with "ordered" the next in the list, wrapping around, with
 * "fastest" the one with the shortest timeout; else @p cur again (a lone
 * upstream that lost a datagram); else, rather than nothing, one held down.
 * With "fastest", one first try in DK_INFRA_PROBE_EVERY goes to upstream
 * @p rnd % n instead. Returns @p c->n when every upstream failed the query.
 */
size_t dk_infra_pick(struct dk_infra *in, const struct dk_infra_choice *c, size_t cur,
                     unsigned rnd);
