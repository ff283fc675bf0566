/* SPDX-License-Identifier: MIT */
/*
 * dnstap out (config "dnstap:"): every client query and answer as a dnstap
 * CLIENT_QUERY / CLIENT_RESPONSE message to a Frame Streams receiver on a
 * unix socket, or to a file. libfstrm's I/O thread does the writing (and
 * reconnects to a socket that comes back, once a second); a worker only
 * encodes into a slot of its own fixed ring and hands it to its own
 * bounded queue of that thread, so it never blocks, never allocates, and
 * counts a message it cannot hand over (queue full, receiver away) as lost,
 * logged at most once a second.
 *
 * The verdict travels in the answer's `extra` field, as text:
 * "dnsink rule=ID action=ACTION matched=ENTRY[ target=NAME]" when the
 * answer was the subject of an alert (see README, "dnstap"); so `dnsink
 * hunt` on dnsink's own dnstap gives the daemon's alerts back, those on a
 * CNAME target included, whose local answer no longer holds the target.
 *
 * The worker-side hook sits between the transports and the query module
 * (dk_dnstap_handle() wraps dk_queries_handle() and the client handle's
 * reply), so query.c does not change.
 */
#pragma once

#include <stdint.h>

#include "dnsink/alert.h"
#include "dnsink/config.h"

#include "client.h"

struct dk_dnstap;
struct dk_dnstap_worker;

/**
 * Starts the writer for config @p cfg (cfg->dnstap), with one input queue
 * for each of @p n_workers. Returns 0 with @p *out NULL when dnstap is off,
 * 0 with the writer, or a negative code (logged).
 */
int dk_dnstap_new(const struct dk_config *cfg, unsigned n_workers, struct dk_dnstap **out);

/** Flushes what is queued and stops the writer (after the workers). NULL is a no-op. */
void dk_dnstap_free(struct dk_dnstap *t);

/**
 * A worker's side: its queue and its ring of @p slots messages. Returns
 * NULL when @p t is NULL or memory runs out. Used by one worker thread only.
 */
struct dk_dnstap_worker *dk_dnstap_worker_new(struct dk_dnstap *t);
void dk_dnstap_worker_free(struct dk_dnstap_worker *tw);

/** The worker's query module, called through dk_dnstap_handle(). */
void dk_dnstap_worker_set_next(struct dk_dnstap_worker *tw, dk_query_fn *next, void *next_ctx);

/** A dk_query_fn (@p ctx the dk_dnstap_worker): logs the query, then hands it on. */
void dk_dnstap_handle(void *ctx, const struct dk_client *cl, const uint8_t *pkt, size_t len);

/** Notes an alert event of this worker, so the answer that follows carries its verdict. */
void dk_dnstap_note(struct dk_dnstap_worker *tw, const struct dk_alert_event *ev);

/** Messages handed to the writer and lost by this worker so far. */
void dk_dnstap_worker_counts(const struct dk_dnstap_worker *tw, uint64_t *sent, uint64_t *lost);
