/* SPDX-License-Identifier: MIT */
/*
 * The HTTP/2 client of one DNS-over-HTTPS upstream connection (RFC 8484),
 * on nghttp2, for upstream_tcp.c: each query is a POST of
 * application/dns-message on a stream of its own, many at once on one
 * connection. It never touches a socket: plaintext goes out through the
 * send callback (to the connection's TLS session) and comes in through
 * dk_doh_client_input(). An answer is a 200 response of type
 * application/dns-message; anything else (another status, another type, a
 * reset stream, a body too short or too long) fails that query, reported
 * with the DNS ID it was sent with, so the forwarder moves it on.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct dk_doh_client;

/** What the client tells its connection. */
struct dk_doh_client_cbs {
	/** Writes @p len octets of HTTP/2 for the server. Returns 0 or a negative errno. */
	int (*send)(void *ctx, const uint8_t *data, size_t len);
	/** The DNS answer of a 200 response (valid during the call; may be rewritten in place). */
	void (*answer)(void *ctx, uint8_t *ans, size_t len);
	/** The query sent with DNS ID @p id got no answer: HTTP status @p status (0: none). */
	void (*failed)(void *ctx, uint16_t id, int status);
	void *ctx;
};

/**
 * A client for server @p authority (the :authority header) and request path
 * @p path (both copied), with @p streams concurrent queries at most. Returns
 * 0 and sets @p *out, or -ENOMEM.
 */
int dk_doh_client_new(const struct dk_doh_client_cbs *cbs, const char *authority, const char *path,
                      unsigned streams, struct dk_doh_client **out);

/**
 * Submits query @p q (@p len octets, copied) as a POST. Returns 0, or
 * -ENOBUFS when every stream is taken, or another negative code. Call
 * dk_doh_client_flush() to send it.
 */
int dk_doh_client_query(struct dk_doh_client *d, const uint8_t *q, size_t len);

/**
 * Feeds @p len octets of plaintext from the server; answers and failures are
 * reported from inside. Returns 0, or a negative code when the connection is
 * beyond use (a protocol error, GOAWAY with nothing left to wait for).
 */
int dk_doh_client_input(struct dk_doh_client *d, const uint8_t *data, size_t len);

/** Sends what is pending. Returns 0 or a negative code. No-op inside dk_doh_client_input(). */
int dk_doh_client_flush(struct dk_doh_client *d);

/** Frees @p d; queries still on it are not reported. NULL is a no-op. */
void dk_doh_client_free(struct dk_doh_client *d);
