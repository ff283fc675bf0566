/* SPDX-License-Identifier: MIT */
/*
 * Pooled TCP connections to the upstreams, for upstream.c: queries are
 * pipelined on a few connections per upstream (RFC 7766), in cleartext or,
 * for a tls:// upstream, over TLS (RFC 7858: tls.h), answers come back
 * in any order through the pool's answer callback, and idle connections stay
 * open a while for the next queries, which saves a handshake and a TIME_WAIT
 * socket per query. The pool knows nothing of the queries riding a
 * connection but their number; upstream.c matches answers to its slots.
 * Runs on the worker's loop.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dnsink/config.h"
#include "dnsink/upstream_spec.h"
#include "tls.h"

struct dk_up_tcp;

/** What happened to a TLS connection, for the upstream's counters. */
enum dk_up_tls_event {
	DK_UP_TLS_OPENED,    /**< a connection to it was opened (connecting) */
	DK_UP_TLS_CLOSED,    /**< one was closed */
	DK_UP_TLS_HANDSHAKE, /**< a handshake succeeded (full or resumed) */
	DK_UP_TLS_RESUMED,   /**< of those, one resumed an earlier session */
	DK_UP_TLS_FAILED,    /**< a handshake failed, for enum dk_tls_fail @p reason */
};
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
	/**
	 * A DoH upstream refused the query sent on @p u with DNS ID @p id (an
	 * HTTP error, a body that is no DNS message): that try failed.
	 */
	void (*failed)(void *ctx, struct dk_up_tcp *u, uint16_t id);
	/** A TLS event on a connection opened for counter slot @p stat (see dk_up_tcp_get()). */
	void (*tls)(void *ctx, uint32_t stat, enum dk_up_tls_event ev, int reason);
	void *ctx;
};

/** A new, empty pool on @p loop. Returns NULL when out of memory. */
struct dk_up_tcp_pool *dk_up_tcp_pool_new(uv_loop_t *loop, const struct dk_up_tcp_cbs *cbs);

/**
 * TLS credentials for connections opened from now on (@p c referenced; the
 * previous ones are dropped when their last connection closes). NULL: none,
 * and tls:// upstreams cannot be reached.
 */
void dk_up_tcp_pool_set_tls(struct dk_up_tcp_pool *p, struct dk_tls_creds *c);

/**
 * A connection to @p addr with room for one more query of @p len octets: an
 * open one, else a new one (connecting). Over TLS when @p opts (borrowed for
 * the call; NULL: plain) says tls://, and then only one made for the same
 * name and pin; its TLS events are reported for counter slot @p stat. The
 * query is attached to it. Returns NULL when no connection can be opened.
 */
struct dk_up_tcp *dk_up_tcp_get(struct dk_up_tcp_pool *p, const struct dk_addr *addr,
                                const struct dk_up_opts *opts, uint32_t stat, size_t len);

/**
 * True when @p u closed because its TLS handshake failed: the upstream
 * failed, and a new connection would fail the same way.
 */
bool dk_up_tcp_tls_failed(const struct dk_up_tcp *u);

/**
 * Frames query @p pkt (@p len octets) onto @p u, which dk_up_tcp_get() gave
 * with room for it; @p pkt is not referenced after the call. Over TLS the
 * query is padded (pad.h) and, until the handshake is done and the
 * certificate verified, held in the connection, never written in clear.
 * Returns 0 or a negative errno (the caller detaches and closes @p u).
 */
int dk_up_tcp_send(struct dk_up_tcp *u, const uint8_t *pkt, size_t len);

/** True when TLS connections hold queries for dk_up_tcp_pool_flush(). */
bool dk_up_tcp_pool_pending(const struct dk_up_tcp_pool *p);

/**
 * Sends the queries TLS connections were given since the last call, each
 * connection's in one record. Called between callbacks, with the UDP flush.
 */
void dk_up_tcp_pool_flush(struct dk_up_tcp_pool *p);

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
