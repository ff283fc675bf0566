/* SPDX-License-Identifier: MIT */
/*
 * A worker's DNS over HTTPS clients (RFC 8484, listen_https): TLS listeners
 * that speak HTTP/2 (nghttp2, ALPN "h2", many streams on a connection) and
 * HTTP/1.1 (one request at a time, kept alive), serving GET and POST on
 * /dns-query. Requests are judged by the pure doh.c; the DNS query goes to
 * the dk_query_fn given at creation with a client handle whose reply() sends
 * the HTTP response on its stream, so ACL, rate limit, policy, cache and
 * alerts are those of every other transport (alerts say "https"). Bounded: a
 * connection cap, handshake and idle timeouts, a stream cap per connection,
 * and per-connection buffers allocated once. Runs on the worker's loop.
 */
#pragma once

#include <stddef.h>
#include <uv.h>

#include "client.h"
#include "counters.h"
#include "tls.h"

/** Concurrent HTTP/2 streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
#define DK_HTTPS_STREAMS 128

struct dk_https;

/**
 * Creates the DoH side on @p loop with room for @p n_listen listeners;
 * counters go to @p ctr. Returns 0 and sets @p *out, or -ENOMEM. Free with
 * dk_https_free() after dk_https_close() and the loop's end.
 */
int dk_https_new(uv_loop_t *loop, size_t n_listen, dk_query_fn *on_query, void *ctx,
                 struct dk_https_counters *ctr, struct dk_https **out);

/** Opens the next listener, on @p a. Returns 0 or a negative errno. */
int dk_https_listen(struct dk_https *h, const struct dk_addr *a);

/**
 * The limits and certificate for connections accepted from now on: at most
 * @p max_clients open, @p handshake_ms for the TLS handshake, then closed
 * after @p idle_ms without a request; @p creds referenced (NULL: clients are
 * turned away).
 */
void dk_https_configure(struct dk_https *h, size_t max_clients, unsigned idle_ms,
                        unsigned handshake_ms, struct dk_tls_creds *creds);

/** Shutdown, first step: stops listening; connections with nothing in flight close. */
void dk_https_stop(struct dk_https *h);

/** Closes every listener and connection. */
void dk_https_close(struct dk_https *h);

/** Frees @p h and its connections once the loop has ended. NULL is a no-op. */
void dk_https_free(struct dk_https *h);
