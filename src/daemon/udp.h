/* SPDX-License-Identifier: MIT */
/*
 * A worker's UDP client side: its listeners (one SO_REUSEPORT socket per
 * listen address) and the batch its replies leave in. Queries go to the
 * dk_query_fn given at creation, with a client handle whose reply() queues
 * the answer in the batch; dk_udp_flush() sends the batch with one sendmmsg
 * per listener run. Everything here runs on the worker's loop.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "client.h"
#include "counters.h"

struct dk_udp;

/**
 * Creates the UDP side on @p loop with room for @p n_listen listeners.
 * @p rxbuf (DK_RXBUF_SIZE octets, sock.h) is lent: every batch of datagrams is read
 * into it and handled before the next read, so the worker's UDP handles can share one.
 * @p ctr is where the counters go (the worker's). Returns 0 and sets @p *out,
 * or -ENOMEM. Free with dk_udp_free() after dk_udp_close() and the loop's end.
 */
int dk_udp_new(uv_loop_t *loop, size_t n_listen, uint8_t *rxbuf, dk_query_fn *on_query, void *ctx,
               struct dk_udp_counters *ctr, struct dk_udp **out);

/** Opens the next listener, on @p a. Returns 0 or a negative errno. */
int dk_udp_listen(struct dk_udp *u, const struct dk_addr *a);

/** Sends every queued reply. */
void dk_udp_flush(struct dk_udp *u);

/** True when replies wait for dk_udp_flush(). */
bool dk_udp_pending(const struct dk_udp *u);

/** Stops reading; the sockets stay open so answers in flight can still leave. */
void dk_udp_stop(struct dk_udp *u);

/** Closes every listener (queued replies are dropped: flush first). */
void dk_udp_close(struct dk_udp *u);

/** Frees @p u once its handles are closed. NULL is a no-op. */
void dk_udp_free(struct dk_udp *u);
