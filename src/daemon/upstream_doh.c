/* SPDX-License-Identifier: MIT */
/*
 * The HTTP/2 client of a DoH upstream connection (see upstream_doh.h).
 *
 * Streams come from a fixed table made with the client (one per query the
 * connection may carry): the request body (the query) and the response body
 * being read. A response body longer than a stream's own buffer takes an
 * allocation (answers over 4 KiB, rare), freed when the stream ends.
 * nghttp2 must not be re-entered from its callbacks, and an answer reported
 * from inside one may submit the next query: output is sent after each
 * input, and by dk_doh_client_flush() otherwise.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nghttp2/nghttp2.h>

#include "dnsink/doh.h"
#include "dnsink/msg.h"
#include "dnsink/upstream_spec.h"
#include "upstream_doh.h"

/** A query, padded, as sent: the forwarder's largest and its padding. */
#define REQ_MAX (4096 + 4 + 128)
/** Response bodies up to this size are read into the stream's own buffer. */
#define RESP_INLINE 4096

struct dstream {
	struct dk_doh_client *d;
	struct dstream *next_free;
	int32_t id;
	uint16_t dns_id;
	int status;
	bool ct_ok;
	bool too_long;
	size_t qlen, qoff;
	size_t rlen;
	uint8_t *resp; /**< rinline, or an allocation for a long body */
	size_t rcap;
	char clen[12];
	uint8_t q[REQ_MAX];
	uint8_t rinline[RESP_INLINE];
};

struct dk_doh_client {
	struct dk_doh_client_cbs cbs;
	nghttp2_session *ng;
	bool in_ng;
	char authority[256];
	char path[DK_UP_PATH_MAX];
	struct dstream *free;
	unsigned n;
	struct dstream streams[];
};

static void stream_put(struct dstream *st)
{
	struct dk_doh_client *d = st->d;

	if (st->resp && st->resp != st->rinline)
		free(st->resp);
	st->resp = NULL;
	st->id = 0;
	st->next_free = d->free;
	d->free = st;
}

static ssize_t body_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *user)
{
	struct dstream *st = src->ptr;
	size_t n = st->qlen - st->qoff < len ? st->qlen - st->qoff : len;

	(void)ng;
	(void)id;
	(void)user;
	memcpy(buf, st->q + st->qoff, n);
	st->qoff += n;
	if (st->qoff == st->qlen)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
	struct dstream *st = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);

	(void)flags;
	(void)user;
	if (!st || f->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (nlen == 7 && !memcmp(name, ":status", 7)) {
		int s = 0;
		for (size_t i = 0; i < vlen && i < 3; i++)
			s = s * 10 + (value[i] - '0');
		st->status = s;
	} else if (nlen == 12 && !memcmp(name, "content-type", 12)) {
		size_t want = strlen(DK_DOH_CT);
		st->ct_ok = vlen >= want && !strncasecmp((const char *)value, DK_DOH_CT, want) &&
		            (vlen == want || value[want] == ';' || value[want] == ' ');
	}
	return 0;
}

static int on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *user)
{
	struct dstream *st = nghttp2_session_get_stream_user_data(ng, id);

	(void)flags;
	(void)user;
	if (!st || st->too_long)
		return 0;
	if (st->rlen + len > DK_MSG_MAX) {
		st->too_long = true;
		return 0;
	}
	if (st->rlen + len > st->rcap) {
		/* A long answer: the one allocation of this path (see the top of the file). */
		uint8_t *big = malloc(DK_MSG_MAX);
		if (!big) {
			st->too_long = true;
			return 0;
		}
		memcpy(big, st->resp, st->rlen);
		st->resp = big;
		st->rcap = DK_MSG_MAX;
	}
	memcpy(st->resp + st->rlen, data, len);
	st->rlen += len;
	return 0;
}

static int on_close(nghttp2_session *ng, int32_t id, uint32_t err, void *user)
{
	struct dk_doh_client *d = user;
	struct dstream *st = nghttp2_session_get_stream_user_data(ng, id);

	if (!st)
		return 0;
	nghttp2_session_set_stream_user_data(ng, id, NULL);
	if (err == NGHTTP2_NO_ERROR && st->status == 200 && st->ct_ok && !st->too_long &&
	    st->rlen >= DK_HEADER_LEN)
		d->cbs.answer(d->cbs.ctx, st->resp, st->rlen);
	else
		d->cbs.failed(d->cbs.ctx, st->dns_id, st->status);
	stream_put(st);
	return 0;
}

static nghttp2_session_callbacks *callbacks(void)
{
	nghttp2_session_callbacks *cbs;

	if (nghttp2_session_callbacks_new(&cbs) != 0)
		return NULL;
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
	return cbs;
}

int dk_doh_client_new(const struct dk_doh_client_cbs *cbs, const char *authority, const char *path,
                      unsigned streams, struct dk_doh_client **out)
{
	struct dk_doh_client *d = calloc(1, sizeof(*d) + streams * sizeof(struct dstream));
	nghttp2_session_callbacks *ngcbs = callbacks();

	*out = NULL;
	if (!d || !ngcbs || nghttp2_session_client_new(&d->ng, ngcbs, d) != 0) {
		if (ngcbs)
			nghttp2_session_callbacks_del(ngcbs);
		free(d);
		return -ENOMEM;
	}
	nghttp2_session_callbacks_del(ngcbs);
	d->cbs = *cbs;
	snprintf(d->authority, sizeof(d->authority), "%s", authority);
	snprintf(d->path, sizeof(d->path), "%s", path);
	d->n = streams;
	for (unsigned i = streams; i-- > 0;) {
		d->streams[i].d = d;
		d->streams[i].next_free = d->free;
		d->free = &d->streams[i];
	}
	nghttp2_settings_entry set[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
	nghttp2_submit_settings(d->ng, NGHTTP2_FLAG_NONE, set, 1);
	*out = d;
	return 0;
}

static nghttp2_nv nv(const char *k, const char *v)
{
	return (nghttp2_nv){(uint8_t *)k, (uint8_t *)v, strlen(k), strlen(v),
	                    NGHTTP2_NV_FLAG_NO_COPY_NAME};
}

int dk_doh_client_query(struct dk_doh_client *d, const uint8_t *q, size_t len)
{
	struct dstream *st = d->free;

	if (!st)
		return -ENOBUFS;
	if (len > sizeof(st->q) || len < DK_HEADER_LEN)
		return -EMSGSIZE;
	d->free = st->next_free;
	memcpy(st->q, q, len);
	st->qlen = len;
	st->qoff = st->rlen = 0;
	st->status = 0;
	st->ct_ok = st->too_long = false;
	st->resp = st->rinline;
	st->rcap = sizeof(st->rinline);
	st->dns_id = (uint16_t)(q[0] << 8 | q[1]);
	snprintf(st->clen, sizeof(st->clen), "%zu", len);
	nghttp2_nv h[] = {
	        nv(":method", "POST"),          nv(":scheme", "https"),
	        nv(":authority", d->authority), nv(":path", d->path),
	        nv("content-type", DK_DOH_CT),  nv("accept", DK_DOH_CT),
	        nv("content-length", st->clen),
	};
	nghttp2_data_provider dp = {.source.ptr = st, .read_callback = body_read};
	int32_t id = nghttp2_submit_request(d->ng, NULL, h, DK_ARRAY_SIZE(h), &dp, st);
	if (id < 0) {
		stream_put(st);
		return -EIO;
	}
	st->id = id;
	return 0;
}

int dk_doh_client_flush(struct dk_doh_client *d)
{
	if (d->in_ng)
		return 0;
	for (;;) {
		const uint8_t *data;
		d->in_ng = true;
		ssize_t n = nghttp2_session_mem_send(d->ng, &data);
		d->in_ng = false;
		if (n < 0)
			return -EPROTO;
		if (n == 0)
			return 0;
		int rc = d->cbs.send(d->cbs.ctx, data, (size_t)n);
		if (rc < 0)
			return rc;
	}
}

int dk_doh_client_input(struct dk_doh_client *d, const uint8_t *data, size_t len)
{
	d->in_ng = true;
	ssize_t rc = nghttp2_session_mem_recv(d->ng, data, len);
	d->in_ng = false;
	if (rc < 0)
		return -EPROTO;
	int f = dk_doh_client_flush(d);
	if (f < 0)
		return f;
	if (!nghttp2_session_want_read(d->ng) && !nghttp2_session_want_write(d->ng))
		return -ECONNRESET;
	return 0;
}

void dk_doh_client_free(struct dk_doh_client *d)
{
	if (!d)
		return;
	nghttp2_session_del(d->ng);
	for (unsigned i = 0; i < d->n; i++)
		if (d->streams[i].resp && d->streams[i].resp != d->streams[i].rinline)
			free(d->streams[i].resp);
	free(d);
}
