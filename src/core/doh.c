/* SPDX-License-Identifier: MIT */
/*
 * DNS over HTTPS requests (see doh.h). Everything is bounded by the lengths
 * given; nothing is NUL-terminated or allocated.
 */
#include <string.h>
#include <strings.h>

#include "dnsink/common.h"
#include "dnsink/doh.h"
#include "dnsink/msg.h"
#include "dnsink/upstream_spec.h"

void dk_doh_req_init(struct dk_doh_req *r, uint8_t *buf, size_t cap)
{
	memset(r, 0, sizeof(*r));
	r->content_length = -1;
	r->keep_alive = true;
	r->buf = buf;
	r->cap = cap;
}

static int fail(struct dk_doh_req *r, int status)
{
	if (!r->status)
		r->status = status;
	return r->status;
}

static bool is(const char *s, size_t n, const char *lit)
{
	return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

/* The value of parameter "dns" in query string @p q (@p n chars): base64url, no padding. */
static int query_string(struct dk_doh_req *r, const char *q, size_t n)
{
	bool found = false;

	while (n) {
		const char *amp = memchr(q, '&', n);
		size_t plen = amp ? (size_t)(amp - q) : n;
		if (plen > 4 && memcmp(q, "dns=", 4) == 0) {
			if (found)
				return fail(r, 400);
			found = true;
			int got = dk_base64_decode(q + 4, plen - 4, false, r->buf, r->cap);
			if (got == DK_ESPACE)
				return fail(r, 414);
			if (got < 0)
				return fail(r, 400);
			r->len = (size_t)got;
		}
		q += plen;
		n -= plen;
		if (n) {
			q++;
			n--;
		}
	}
	return found ? 0 : fail(r, 400);
}

static int path(struct dk_doh_req *r, const char *v, size_t n)
{
	const char *qm = memchr(v, '?', n);
	size_t plen = qm ? (size_t)(qm - v) : n;

	if (r->has_path)
		return fail(r, 400);
	r->has_path = true;
	if (!is(v, plen, DK_DOH_PATH))
		return fail(r, 404);
	r->path_ok = true;
	/* The query string matters for GET only; the method may come after the path. */
	if (qm) {
		size_t qn = n - plen - 1;
		if (qn > r->cap * 4 / 3 + 8)
			return fail(r, 414);
		return query_string(r, qm + 1, qn);
	}
	return 0;
}

/* "application/dns-message", maybe with parameters, in any case. */
static bool media_ok(const char *v, size_t n)
{
	size_t want = strlen(DK_DOH_CT);

	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	const char *semi = memchr(v, ';', n);
	if (semi)
		n = (size_t)(semi - v);
	while (n && v[n - 1] == ' ')
		n--;
	return n == want && strncasecmp(v, DK_DOH_CT, want) == 0;
}

int dk_doh_header(struct dk_doh_req *r, const char *name, size_t nlen, const char *value,
                  size_t vlen)
{
	if (is(name, nlen, ":method")) {
		if (r->has_method)
			return fail(r, 400);
		r->has_method = true;
		r->method = is(value, vlen, "GET")    ? DK_DOH_GET
		            : is(value, vlen, "POST") ? DK_DOH_POST
		                                      : DK_DOH_OTHER;
		return 0;
	}
	if (is(name, nlen, ":path"))
		return path(r, value, vlen);
	if (is(name, nlen, "content-type")) {
		if (r->has_ct)
			return fail(r, 400);
		r->has_ct = true;
		r->ct_ok = media_ok(value, vlen);
		return 0;
	}
	if (is(name, nlen, "content-length")) {
		long v = 0;
		if (vlen == 0 || vlen > 9 || r->content_length >= 0)
			return fail(r, 400);
		for (size_t i = 0; i < vlen; i++) {
			if (value[i] < '0' || value[i] > '9')
				return fail(r, 400);
			v = v * 10 + (value[i] - '0');
		}
		if ((size_t)v > r->cap)
			return fail(r, 413);
		r->content_length = v;
		return 0;
	}
	return 0;
}

int dk_doh_body(struct dk_doh_req *r, const uint8_t *data, size_t len)
{
	if (len == 0)
		return r->status;
	if (r->method == DK_DOH_GET)
		return fail(r, 400);
	if (len > r->cap - r->len)
		return fail(r, 413);
	memcpy(r->buf + r->len, data, len);
	r->len += len;
	return r->status;
}

int dk_doh_finish(struct dk_doh_req *r)
{
	if (r->status)
		return r->status;
	if (!r->has_method || !r->has_path)
		return fail(r, 400);
	if (r->method == DK_DOH_OTHER)
		return fail(r, 405);
	if (r->method == DK_DOH_POST && (!r->has_ct || !r->ct_ok))
		return fail(r, 415);
	if (r->content_length >= 0 && (size_t)r->content_length != r->len)
		return fail(r, 400);
	/* A GET without dns= was refused by the path; a POST needs a body. */
	if (r->len < 12)
		return fail(r, 400);
	return 0;
}

long dk_doh_max_age(const uint8_t *ans, size_t len)
{
	struct dk_rr_iter it;
	struct dk_rr rr;
	long min = -1;
	int ret;

	if (dk_msg_rr_iter_init(&it, ans, len) < 0)
		return -1;
	do {
		while ((ret = dk_msg_rr_next(&it, &rr)) > 0) {
			if (rr.type == 41 /* OPT */)
				continue;
			long ttl = rr.ttl > 0x7fffffffu ? 0 : (long)rr.ttl;
			if (min < 0 || ttl < min)
				min = ttl;
		}
		if (ret < 0)
			return -1;
	} while (dk_msg_rr_next_section(&it) > 0);
	return min;
}

/* One header line "Name: value" (no CRLF): lowercased name, trimmed value. */
static int head_line(struct dk_doh_req *r, const char *l, size_t n)
{
	char name[64];
	const char *colon = memchr(l, ':', n);

	if (!colon || colon == l || (size_t)(colon - l) >= sizeof(name))
		return colon && colon != l ? 0 : -400; /* a long unknown name is skipped */
	size_t nlen = (size_t)(colon - l);
	for (size_t i = 0; i < nlen; i++) {
		char ch = l[i];
		if (ch <= ' ' || ch >= 127)
			return -400;
		name[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
	}
	const char *v = colon + 1, *end = l + n;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	size_t vlen = (size_t)(end - v);
	if (is(name, nlen, "transfer-encoding"))
		return -501;
	if (is(name, nlen, "connection")) {
		if (vlen == 5 && strncasecmp(v, "close", 5) == 0)
			r->keep_alive = false;
		return 0;
	}
	/* Pseudo-headers come from the request line only. */
	if (name[0] == ':')
		return -400;
	dk_doh_header(r, name, nlen, v, vlen);
	return 0;
}

long dk_http1_head(const char *buf, size_t len, struct dk_doh_req *r)
{
	size_t scan = len < DK_HTTP1_HEAD_MAX ? len : DK_HTTP1_HEAD_MAX;
	const char *end = NULL;

	for (size_t i = 0; i + 3 < scan; i++)
		if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' &&
		    buf[i + 3] == '\n') {
			end = buf + i;
			break;
		}
	if (!end)
		return len >= DK_HTTP1_HEAD_MAX ? -431 : 0;

	/* Request line: METHOD SP target SP HTTP/1.x */
	const char *eol = memchr(buf, '\r', (size_t)(end - buf) + 1);
	const char *sp1 = memchr(buf, ' ', (size_t)(eol - buf));
	if (!sp1 || sp1 == buf)
		return -400;
	const char *sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
	if (!sp2 || sp2 == sp1 + 1)
		return -400;
	size_t vlen = (size_t)(eol - sp2 - 1);
	if (vlen != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
		return -505;
	if (sp2[8] == '0')
		r->keep_alive = false;
	else if (sp2[8] != '1')
		return -505;
	dk_doh_header(r, ":method", 7, buf, (size_t)(sp1 - buf));
	dk_doh_header(r, ":path", 5, sp1 + 1, (size_t)(sp2 - sp1 - 1));

	const char *l = eol + 2;
	while (l < end + 2) {
		const char *le = l;
		while (le < end && !(le[0] == '\r' && le[1] == '\n'))
			le++;
		if (le == l)
			break;
		/* Obsolete line folding (RFC 9112 section 5.2) is refused. */
		if (*l == ' ' || *l == '\t')
			return -400;
		int rc = head_line(r, l, (size_t)(le - l));
		if (rc < 0)
			return rc;
		l = le + 2;
	}
	return (long)(end - buf) + 4;
}
