/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for what the daemon's local interfaces are sent: each
 * input is read both as a control-socket request line (up to its first
 * newline, as the control socket hands it over) and as the head of an HTTP
 * request to the metrics listener (target, query parameters, bearer token).
 * Properties checked with abort(): a parsed command's argument lies inside
 * the line and holds no blank; a path and query lie inside the request.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dnsink/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LINE_MAX_LEN 1024

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[LINE_MAX_LEN + 1];
	const char *req = (const char *)data;
	const uint8_t *nl = memchr(data, '\n', size);
	size_t n = nl ? (size_t)(nl - data) : size;
	struct dk_ctl_req r;
	const char *why = NULL;

	if (n > LINE_MAX_LEN)
		n = LINE_MAX_LEN;
	memcpy(line, data, n);
	line[n] = '\0';
	if (dk_ctl_parse(line, n, &r, &why) == 0) {
		if (r.arg && (r.arg < line || r.arg > line + n || strpbrk(r.arg, " \t")))
			abort();
	} else if (!why) {
		abort();
	}

	const char *path, *query;
	size_t plen, qlen;
	if (dk_http_target(req, size, &path, &plen, &query, &qlen)) {
		if (path < req || path + plen > req + size || query < req ||
		    query + qlen > req + size)
			abort();
		unsigned v = dk_query_uint(query, qlen, "n", 10, 1, 50);
		if (v < 1 || v > 50)
			abort();
		(void)dk_http_has_token(req, size, query, qlen, "token-of-the-fuzzer");
	}
	return 0;
}
