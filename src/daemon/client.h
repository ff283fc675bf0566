/* SPDX-License-Identifier: MIT */
/*
 * Who asked, and how the answer goes back: the handle a transport (udp.c,
 * tcp.c) gives the query module with each query. The query module answers
 * through the handle's operations and never needs to know UDP from TCP; the
 * transport's code runs behind them (as dnsdist's TCPQuerySender: the answer
 * goes back through the sender that asked).
 *
 * A handle is small and copied by value; what it points to (a listener, a
 * connection) is the transport's and stays valid until done() for a handle
 * that was held.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "dnsink/alert.h"
#include "dnsink/config.h"

struct dk_client;

/** A transport's side of a client handle. */
struct dk_client_ops {
	/** Sends @p len octets of answer to the client (a datagram, a framed message). */
	void (*reply)(const struct dk_client *cl, const uint8_t *ans, size_t len);
	/**
	 * The query goes upstream: keeps what reply() needs until done(). NULL
	 * when nothing needs keeping (UDP: the listener lives as long as the worker).
	 */
	void (*hold)(const struct dk_client *cl);
	/** A query held by hold() ended (answered or not). NULL with hold. */
	void (*done)(const struct dk_client *cl);
};

struct dk_client {
	const struct dk_client_ops *ops;
	void *conn;          /**< the transport's: the UDP listener or the TCP connection */
	struct dk_addr peer; /**< the client's address */
	uint8_t transport;   /**< enum dk_transport: counters, alerts, the UDP size limit */
};

/** Sends @p len octets of answer to @p cl. */
static inline void dk_client_reply(const struct dk_client *cl, const uint8_t *ans, size_t len)
{
	cl->ops->reply(cl, ans, len);
}

/**
 * Called by the transport for each query it reads: @p pkt/@p len is the
 * message, valid during the call only, @p cl the client's handle (copy it to
 * keep it). A datagram that could not be read whole comes with @p len 0, so
 * it is counted as received and dropped.
 */
typedef void dk_query_fn(void *ctx, const struct dk_client *cl, const uint8_t *pkt, size_t len);
