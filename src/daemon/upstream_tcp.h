/* SPDX-License-Identifier: MIT */
/*
 * Pooled TCP connections to the upstreams, for upstream.c: queries are
 * pipelined on a few connections per upstream (RFC 7766), answers come back
 * in any order through the pool's answer callback, and idle connections stay
 * open a while for the next queries, which saves a handshake and a TIME_WAIT
 * socket per query. The pool knows nothing of the queries riding a
 * connection but their number; upstream.c matches answers to its slots.
 * Runs on the worker's loop.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dnsink/config.h"

struct dk_up_tcp;
struct dk_up_tcp_pool;

/** What the pool tells its owner. */
struct dk_up_tcp_cbs {
	/** A framed answer of @p len octets was read on @p u (valid during the call). */
	void (*answer)(void *ctx, struct dk_up_tcp *u, uint8_t *ans, size_t len);
	/**
	 * @p u broke or was closed with queries attached: the owner detaches
	 * each of them (dk_up_tcp_detach()) and tries it again elsewhere.
	 */
	void (*lost)(void *ctx, struct dk_up_tcp *u);
	void *ctx;
};

/** A new, empty pool on @p loop. Returns NULL when out of memory. */
struct dk_up_tcp_pool *dk_up_tcp_pool_new(uv_loop_t *loop, const struct dk_up_tcp_cbs *cbs);

/**
 * A connection to @p addr with room for one more query of @p len octets: an
 * open one, else a new one (connecting). The query is attached to it.
 * Returns NULL when no connection can be opened.
 */
struct dk_up_tcp *dk_up_tcp_get(struct dk_up_tcp_pool *p, const struct dk_addr *addr, size_t len);

/**
 * Frames query @p pkt (@p len octets) onto @p u, which dk_up_tcp_get() gave
 * with room for it; @p pkt is not referenced after the call. Returns 0 or a
 * negative errno (the caller detaches and closes @p u).
 */
int dk_up_tcp_send(struct dk_up_tcp *u, const uint8_t *pkt, size_t len);

/** One query left @p u (answered, timed out, moved on). */
void dk_up_tcp_detach(struct dk_up_tcp *u);

/** A query timed out on @p u, which may be stuck: nothing new goes on it. */
void dk_up_tcp_drain(struct dk_up_tcp *u);

/** Closes @p u; the queries still attached are reported through lost(). */
void dk_up_tcp_close(struct dk_up_tcp *u);

/** Closes every connection (the queries still attached are abandoned, not reported). */
void dk_up_tcp_pool_close(struct dk_up_tcp_pool *p);

/** Frees @p p and its connection objects once the loop has ended. NULL is a no-op. */
void dk_up_tcp_pool_free(struct dk_up_tcp_pool *p);
