/* SPDX-License-Identifier: MIT */
/*
 * A worker's TCP client side (RFC 7766): its listeners, a cap on concurrent
 * connections, two-octet length framing across partial reads, pipelined
 * queries answered as they complete (in any order), an idle timeout, and a
 * clean close. Queries go to the dk_query_fn given at creation with a client
 * handle whose reply() frames the answer onto the connection and whose
 * hold()/done() keep the connection's memory while a query is upstream.
 * Everything here runs on the worker's loop.
 */
#pragma once

#include <stddef.h>
#include <uv.h>

#include "client.h"
#include "counters.h"
#include "tls.h"

struct dk_tcp;

/**
 * Creates the TCP side on @p loop with room for @p n_listen listeners;
 * counters go to @p ctr. Call dk_tcp_configure() before the first listener. Returns 0 and sets @p
 * *out, or -ENOMEM. Free with dk_tcp_free() after dk_tcp_close() and the loop's end.
 */
int dk_tcp_new(uv_loop_t *loop, size_t n_listen, dk_query_fn *on_query, void *ctx,
               struct dk_tcp_counters *ctr, struct dk_tcp **out);

/** Opens the next listener, on @p a. Returns 0 or a negative errno. */
int dk_tcp_listen(struct dk_tcp *t, const struct dk_addr *a);

/**
 * Opens the next listener, on @p a, for DNS over TLS (RFC 7858): the same
 * framing, caps and query path, with alert records saying "tls". Clients
 * are turned away while no certificate is set (dk_tcp_set_tls()).
 */
int dk_tcp_listen_tls(struct dk_tcp *t, const struct dk_addr *a);

/**
 * The certificate for TLS clients accepted from now on (@p creds referenced;
 * NULL: none) and the time they have to finish the handshake.
 */
void dk_tcp_set_tls(struct dk_tcp *t, struct dk_tls_creds *creds, unsigned handshake_ms);

/**
 * Applies the limits of the config in force: at most @p max_clients open
 * connections, closed after @p idle_ms without a complete query. Connections
 * already open keep the idle period they started with.
 */
void dk_tcp_configure(struct dk_tcp *t, size_t max_clients, unsigned idle_ms);

/**
 * Shutdown, first step: stops listening and reading, closes the connections
 * with nothing in flight; the others stay for their answers.
 */
void dk_tcp_stop(struct dk_tcp *t);

/** Closes every listener and connection. */
void dk_tcp_close(struct dk_tcp *t);

/** Frees @p t and its connections once the loop has ended. NULL is a no-op. */
void dk_tcp_free(struct dk_tcp *t);
