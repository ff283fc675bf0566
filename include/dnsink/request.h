/* SPDX-License-Identifier: MIT */
/*
 * Parsing of what the daemon's local interfaces are sent: a control-socket
 * request line ("COMMAND [ARG]") and the head of an HTTP request to the
 * metrics listener (request target, query parameters, bearer token). Pure,
 * bounded by the lengths given, no allocation; fuzzed by tests/fuzz/fuzz_request.c.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/** The control socket's commands. */
enum dk_ctl_cmd {
	DK_CTL_STATUS,
	DK_CTL_STATS,
	DK_CTL_RELOAD,
	DK_CTL_FLUSH,     /**< flush NAME */
	DK_CTL_FLUSH_ALL, /**< flush-all */
	DK_CTL_TOP,       /**< top [N] */
	DK_CTL_MATCH,     /**< match NAME */
};

/** A parsed request line; @p arg points into the line given to dk_ctl_parse(). */
struct dk_ctl_req {
	enum dk_ctl_cmd cmd;
	const char *arg; /**< NUL-terminated; NULL: none */
};

/**
 * Parses request line @p line (@p len octets without its newline, and a NUL
 * at line[len]; changed in place: NULs end the words, a final CR is cut). Words are separated by
 * spaces or tabs. Returns 0 and fills @p out, or -EINVAL with @p *why set to a message (static
 * text) for an empty line, an unknown command, a missing or extra argument, or a NUL inside the
 * line.
 */
int dk_ctl_parse(char *line, size_t len, struct dk_ctl_req *out, const char **why);

/**
 * Reads the request line of HTTP request head @p req (@p len octets): for
 * "GET TARGET ...", sets @p path (up to '?', ' ' or the line end) and
 * @p query (after '?', may be empty), both pointing into @p req, and returns
 * true; false for any other method or a truncated line.
 */
bool dk_http_target(const char *req, size_t len, const char **path, size_t *path_len,
                    const char **query, size_t *query_len);

/**
 * True when head @p req carries bearer token @p token: an
 * "Authorization: Bearer TOKEN" header (name and scheme in any case) or a
 * "token=TOKEN" query parameter of @p query. The comparison takes the same
 * time wherever the first difference is.
 */
bool dk_http_has_token(const char *req, size_t len, const char *query, size_t query_len,
                       const char *token);

/**
 * The decimal value of parameter @p key in query string @p q (@p qlen
 * octets), clamped to [@p lo, @p hi]; @p def when absent or not a number.
 */
unsigned dk_query_uint(const char *q, size_t qlen, const char *key, unsigned def, unsigned lo,
                       unsigned hi);
