/* SPDX-License-Identifier: MIT */
/*
 * DNS over HTTPS requests (RFC 8484), pure: what an HTTP request for
 * /dns-query carries and which HTTP status refuses it. The daemon's HTTPS
 * listener feeds it the headers (from nghttp2 for HTTP/2, or from
 * dk_http1_head() for HTTP/1.1) and the body; here the method, path, query
 * string, base64url and content type are judged, into a caller's buffer, so
 * the same code is unit-tested and fuzzed without a socket.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** The one path served (RFC 8484 section 4.1 leaves it to the server; this is the usual). */
#define DK_DOH_PATH "/dns-query"
/** Media type of a DNS message in a DoH request or response. */
#define DK_DOH_CT "application/dns-message"
/** Largest HTTP/1.1 request head (request line and headers) read. */
#define DK_HTTP1_HEAD_MAX 8192

enum dk_doh_method {
	DK_DOH_OTHER,
	DK_DOH_GET,
	DK_DOH_POST,
};

/** One request being read. */
struct dk_doh_req {
	uint8_t method; /**< enum dk_doh_method */
	bool has_method;
	bool has_path;
	bool path_ok; /**< the path is DK_DOH_PATH (with or without a query) */
	bool has_ct;
	bool ct_ok;          /**< content-type is DK_DOH_CT */
	bool keep_alive;     /**< HTTP/1.1: the connection stays open after the answer */
	int status;          /**< the first error seen (an HTTP status), 0 while none */
	long content_length; /**< -1: none given */
	uint8_t *buf;        /**< the DNS message: decoded from dns= (GET) or the body (POST) */
	size_t cap;
	size_t len;
};

/** Starts request @p r, the DNS message to go into @p buf (@p cap octets, lent). */
void dk_doh_req_init(struct dk_doh_req *r, uint8_t *buf, size_t cap);

/**
 * One header of @p r: @p name (lowercase, as HTTP/2 requires; pseudo-headers
 * ":method", ":path" included) and @p value, neither NUL-terminated. Returns
 * 0, or an HTTP status (400, 404, 405, 414, 415) that the request then gets;
 * the first error sticks.
 */
int dk_doh_header(struct dk_doh_req *r, const char *name, size_t nlen, const char *value,
                  size_t vlen);

/** @p len more octets of body. Returns 0, or 413 when it is more than fits, or 400 for a GET. */
int dk_doh_body(struct dk_doh_req *r, const uint8_t *data, size_t len);

/**
 * The request is complete. Returns 0 with the DNS message in r->buf
 * (r->len octets, at least a header long), or the HTTP status to answer.
 */
int dk_doh_finish(struct dk_doh_req *r);

/**
 * The freshness lifetime of DoH answer @p ans (@p len octets) for its
 * Cache-Control header (RFC 8484 section 5.1): the smallest TTL of its
 * records (the OPT record aside), or -1 when it has none or does not parse
 * (then no header is sent).
 */
long dk_doh_max_age(const uint8_t *ans, size_t len);

/**
 * Parses the HTTP/1.1 request head at @p buf (@p len octets read so far)
 * into @p r: the request line's method and target (as ":method" and
 * ":path"), then each header, lowercased, through dk_doh_header(). Returns
 * the length of the head (through the empty line) once complete, 0 while
 * more is needed, or a negative HTTP status (-400 malformed, -431 head over
 * DK_HTTP1_HEAD_MAX, -505 not HTTP/1.x, -501 chunked bodies).
 */
long dk_http1_head(const char *buf, size_t len, struct dk_doh_req *r);
