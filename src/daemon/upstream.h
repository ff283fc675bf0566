/* SPDX-License-Identifier: MIT */
/*
 * The forwarder of one worker: a fixed table of pending slots, upstream IDs
 * and source ports an off-path attacker cannot guess, per-try timeouts,
 * failover along the configured upstreams, ICMP errors, and TCP (for TCP
 * clients and for truncated UDP answers, upstream_tcp.c).
 *
 * It knows nothing of clients, policy or alerts: a query goes in with
 * dk_upstream_forward() and its end comes back through the caller's
 * dk_forward_done_fn (as Unbound's outside_network answers only through
 * cb(cb_arg)). Runs on the worker's loop.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "counters.h"
#include "dnsink/config.h"
#include "dnsink/msg.h"
#include "dnsink/upstream_spec.h"
#include "tls.h"

/** Largest query a pending slot holds; bigger ones are refused (DK_ESPACE). */
#define DK_QUERY_MAX 4096
/**
 * Pending slots at most: the ID space must stay sparse (at most half full),
 * and a slot may hold two IDs (its try and the one it retransmits).
 */
#define DK_INFLIGHT_MAX 16384

struct dk_upstream;

/**
 * How a forwarded query ended. @p ans is the accepted answer, @p len octets,
 * with our upstream ID still in it, in a buffer the callee may rewrite in
 * place; NULL when every upstream failed. @p query (@p qlen octets, the
 * client's ID restored) and @p q are the query as forwarded. All valid during
 * the call only. The callback may forward again.
 */
typedef void dk_forward_done_fn(void *ctx, uint8_t *ans, size_t len, const uint8_t *query,
                                size_t qlen, const struct dk_query *q);

/** The upstreams to use, from the snapshot in force (borrowed until the next call). */
struct dk_upstream_conf {
	const struct dk_addr *addrs; /**< tried in order */
	size_t n_addrs;
	/** Per address: tls:// and what its certificate must show; NULL: all plain. */
	const struct dk_up_opts *opts;
	/** Credentials for tls:// upstreams (referenced by the connections made with them). */
	struct dk_tls_creds *tls;
	unsigned timeout_ms;         /**< the longest one try may wait (upstream_timeout_ms) */
	unsigned resolve_timeout_ms; /**< the longest a query may wait, all tries */
	enum dk_upstream_strategy strategy;
	const uint32_t *stat_slot; /**< per address: index into @p stats, or NULL */
	struct dk_up_stats *stats; /**< counters by slot (the worker's block) */
	uint32_t n_stats;
};

/**
 * Creates the forwarder on @p loop with @p max_inflight slots (clamped to
 * DK_INFLIGHT_MAX), its UDP sockets bound and reading into @p rxbuf
 * (DK_RXBUF_SIZE octets, lent; see sock.h). Counters go to @p ctr. Returns 0
 * and sets @p *out; on an error @p *out may still be set, to close and free.
 */
int dk_upstream_new(uv_loop_t *loop, size_t max_inflight, uint8_t *rxbuf,
                    struct dk_up_counters *ctr, struct dk_upstream **out);

/** Switches to @p conf (a reload); queries in flight use it from their next try. */
void dk_upstream_configure(struct dk_upstream *up, const struct dk_upstream_conf *conf);

/**
 * Forwards query @p pkt (@p len octets, parsed as @p q), over TCP from the
 * first try when @p tcp. Returns 0, and @p done(@p ctx, ...) is called once
 * when it ends (never from inside this call); or DK_EFULL (every slot taken)
 * or DK_ESPACE (query too large), and @p done is never called.
 */
int dk_upstream_forward(struct dk_upstream *up, const uint8_t *pkt, size_t len,
                        const struct dk_query *q, bool tcp, dk_forward_done_fn *done, void *ctx);

/** Slots in the table (max_inflight as clamped). */
size_t dk_upstream_capacity(const struct dk_upstream *up);

/** Queries in flight now. */
size_t dk_upstream_inflight(const struct dk_upstream *up);

/**
 * Sends the UDP queries queued for the upstreams, one sendmmsg per address
 * family; a try whose datagram could not be sent moves to the next upstream.
 * Called between callbacks (the worker's check and prepare handles).
 */
void dk_upstream_flush(struct dk_upstream *up);

/** True when UDP queries wait for dk_upstream_flush(). */
bool dk_upstream_pending(const struct dk_upstream *up);

/**
 * Shutdown: calls @p idle(@p ctx) once no query is in flight, at once when
 * none is. The callback may close the forwarder.
 */
void dk_upstream_drain(struct dk_upstream *up, void (*idle)(void *ctx), void *ctx);

/** Closes every handle (timers, sockets, TCP); queries in flight are abandoned. */
void dk_upstream_close(struct dk_upstream *up);

/** Frees @p up once its handles are closed. NULL is a no-op. */
void dk_upstream_free(struct dk_upstream *up);
