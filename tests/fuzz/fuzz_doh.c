/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for DNS over HTTPS request parsing (doh.c), the code that
 * reads what an HTTPS client sends. Each input is read twice: as an HTTP/1.1
 * request (head, then the rest as body), and as HTTP/2 headers in the form
 * "name\0value\0..." up to an empty name, the rest as body. The DNS message
 * goes into a heap buffer of exactly the capacity chosen by the first octet,
 * so AddressSanitizer reports a single octet written past it; then the input is
 * read as a DoH answer for its max-age (dk_doh_max_age()). Properties that
 * must hold whatever the input are checked with abort().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dnsink/doh.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct dk_doh_req *r, int rc)
{
	if (rc == 0 && (r->len < 12 || r->len > r->cap))
		abort();
	if (rc != 0 && (rc < 400 || rc > 599))
		abort();
}

static void http1(const uint8_t *data, size_t size, size_t cap)
{
	uint8_t *buf = malloc(cap ? cap : 1);
	struct dk_doh_req r;

	if (!buf)
		return;
	dk_doh_req_init(&r, buf, cap);
	long head = dk_http1_head((const char *)data, size, &r);
	if (head > (long)size || head < -599)
		abort();
	if (head > 0) {
		size_t body = size - (size_t)head;
		if (r.content_length >= 0 && (size_t)r.content_length < body)
			body = (size_t)r.content_length;
		dk_doh_body(&r, data + head, body);
		check(&r, dk_doh_finish(&r));
	}
	free(buf);
}

static void h2(const uint8_t *data, size_t size, size_t cap)
{
	uint8_t *buf = malloc(cap ? cap : 1);
	struct dk_doh_req r;
	size_t off = 0;

	if (!buf)
		return;
	dk_doh_req_init(&r, buf, cap);
	for (int n = 0; n < 64 && off < size; n++) {
		const uint8_t *name = data + off;
		const uint8_t *z = memchr(name, 0, size - off);
		if (!z || z == name) {
			off = z ? (size_t)(z - data) + 1 : size;
			break;
		}
		const uint8_t *value = z + 1;
		const uint8_t *z2 = memchr(value, 0, size - (size_t)(value - data));
		size_t vlen = z2 ? (size_t)(z2 - value) : size - (size_t)(value - data);
		int rc = dk_doh_header(&r, (const char *)name, (size_t)(z - name),
		                       (const char *)value, vlen);
		if (rc != 0 && (rc < 400 || rc > 599))
			abort();
		off = z2 ? (size_t)(z2 - data) + 1 : size;
	}
	dk_doh_body(&r, data + off, size - off);
	check(&r, dk_doh_finish(&r));
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	/* Small capacities reach the overflow checks; 65535 is what the daemon uses. */
	size_t cap = data[0] < 128 ? data[0] : 65535;
	http1(data + 1, size - 1, cap);
	h2(data + 1, size - 1, cap);
	/* The input as an answer, for its Cache-Control lifetime. */
	long age = dk_doh_max_age(data + 1, size - 1);
	if (age < -1 || age > 0x7fffffffL)
		abort();
	return 0;
}
