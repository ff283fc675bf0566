/* SPDX-License-Identifier: MIT */
/*
 * DNS over HTTPS clients (see https.h).
 *
 * A connection is a TCP socket, a TLS session (tls.h) driven by its reads,
 * and, once ALPN has settled, either an nghttp2 server session (HTTP/2) or
 * the HTTP/1.1 reader below. Decrypted input goes to nghttp2 with
 * nghttp2_session_mem_recv(); its output is taken with
 * nghttp2_session_mem_send(), encrypted and written with uv_try_write, the
 * rest into the connection's output buffer. nghttp2 must not be re-entered
 * from its own callbacks, and a local answer (a sinkhole) is made inside
 * one, so output is pumped after each call into nghttp2 and after each
 * answer that comes later (from an upstream).
 *
 * Each request gets a stream slot from the connection's table (allocated
 * when the connection chooses its protocol): the request being read (doh.c
 * into the slot's query buffer) and the answer being sent. An answer longer
 * than the slot's own buffer is the one allocation per query here (rare:
 * over 1232 octets). A slot whose stream the client reset while its query
 * was upstream is freed when the query ends.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "dnsink/doh.h"
#include "dnsink/msg.h"
#include "https.h"
#include "sock.h"

/** Ciphertext read at once: a TLS record and its header. */
#define CBUF_CAP (16384 + 512)
/** Output held for a slow client; over half of it, nghttp2's output waits. */
#define WBUF_CAP (256 * 1024)
/** A DNS query in a request (POST body or GET dns=): larger ones get 413 or 414. */
#define QBUF 1232
/** Answers up to this size are sent from the slot's own buffer. */
#define ABUF 1232
/** HTTP/1.1: request head and body read ahead. */
#define H1BUF (DK_HTTP1_HEAD_MAX + QBUF)

struct hconn;

struct hstream {
	struct hconn *c;
	struct hstream *next_free;
	int32_t id;     /**< HTTP/2 stream; 0 for the HTTP/1.1 request */
	bool used;      /**< taken by a request */
	bool upstream;  /**< its query is held (hold() without done() yet) */
	bool dead;      /**< the stream closed before the answer came */
	bool answering; /**< a response was submitted */
	struct dk_doh_req req;
	uint8_t *ans; /**< the answer being sent: abuf or an allocation */
	size_t ans_len;
	size_t ans_off;
	char clen[12];   /**< content-length value */
	char maxage[32]; /**< cache-control value */
	uint8_t qbuf[QBUF];
	uint8_t abuf[ABUF];
};

struct listener {
	uv_tcp_t h;
	struct dk_https *hs;
};

struct hconn {
	uv_tcp_t h;
	uv_timer_t idle;
	uv_write_t wreq;
	struct dk_https *hs;
	struct hconn *prev, *next;
	struct dk_addr peer;
	unsigned inflight; /**< queries held upstream */
	unsigned handles;
	bool closing;
	bool writing;
	bool in_ng;    /**< inside a call into nghttp2: no pumping now */
	bool h1;       /**< ALPN chose HTTP/1.1 (or nothing) */
	bool h1_busy;  /**< HTTP/1.1: a request is being answered */
	bool h1_close; /**< HTTP/1.1: close once the answer is out */
	bool in_h1;    /**< inside h1_next(): an answer made there does not call it again */
	size_t wlen, wsent;
	uint8_t *wbuf;
	struct dk_tls_sess tls;
	nghttp2_session *ng;
	struct hstream *streams; /**< DK_HTTPS_STREAMS slots (one for HTTP/1.1) */
	unsigned n_streams;
	struct hstream *free;
	size_t h1len;
	uint8_t *h1buf; /**< H1BUF octets */
	uint8_t cbuf[CBUF_CAP];
	uint8_t pbuf[CBUF_CAP]; /**< decrypted input */
};

struct dk_https {
	uv_loop_t *loop;
	dk_query_fn *on_query;
	void *ctx;
	struct dk_https_counters *ctr;
	struct listener *ls;
	size_t n_ls, cap_ls;
	struct hconn *conns;
	size_t n_conns;
	size_t max_clients;
	unsigned idle_ms, handshake_ms;
	struct dk_tls_creds *creds;
	nghttp2_session_callbacks *cbs;
	bool stopping;
};

static void s_reply(const struct dk_client *cl, const uint8_t *ans, size_t len);
static void s_hold(const struct dk_client *cl);
static void s_done(const struct dk_client *cl);

static const struct dk_client_ops https_ops = {
        .reply = s_reply,
        .hold = s_hold,
        .done = s_done,
};

static void conn_close(struct hconn *c);
static void pump(struct hconn *c);

static void conn_free(struct hconn *c)
{
	struct dk_https *hs = c->hs;

	if (c->prev)
		c->prev->next = c->next;
	else
		hs->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->ng)
		nghttp2_session_del(c->ng);
	dk_tls_sess_deinit(&c->tls);
	for (unsigned i = 0; i < c->n_streams; i++)
		if (c->streams[i].ans && c->streams[i].ans != c->streams[i].abuf)
			free(c->streams[i].ans);
	free(c->streams);
	free(c->h1buf);
	free(c->wbuf);
	free(c);
}

static void conn_closed(uv_handle_t *h)
{
	struct hconn *c = h->data;

	if (--c->handles == 0 && c->inflight == 0)
		conn_free(c);
}

static void conn_close(struct hconn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	c->hs->n_conns--;
	uv_close((uv_handle_t *)&c->h, conn_closed);
	uv_close((uv_handle_t *)&c->idle, conn_closed);
}

/* Stream slots. */

static struct hstream *stream_take(struct hconn *c)
{
	struct hstream *st = c->free;

	if (!st)
		return NULL;
	c->free = st->next_free;
	st->used = true;
	st->upstream = st->dead = st->answering = false;
	st->ans = NULL;
	st->ans_len = st->ans_off = 0;
	dk_doh_req_init(&st->req, st->qbuf, sizeof(st->qbuf));
	return st;
}

static void stream_release(struct hstream *st)
{
	struct hconn *c = st->c;

	if (st->ans && st->ans != st->abuf)
		free(st->ans);
	st->ans = NULL;
	st->used = false;
	st->next_free = c->free;
	c->free = st;
}

/* Output: encrypted, then to the kernel or the output buffer. */

static void conn_written(uv_write_t *req, int status);

static void conn_flush(struct hconn *c)
{
	if (c->writing || c->wlen == 0 || c->closing)
		return;
	uv_buf_t b = uv_buf_init((char *)c->wbuf, (unsigned)c->wlen);
	c->wsent = c->wlen;
	c->writing = true;
	c->wreq.data = c;
	if (uv_write(&c->wreq, (uv_stream_t *)&c->h, &b, 1, conn_written) < 0) {
		c->writing = false;
		conn_close(c);
	}
}

static void h1_next(struct hconn *c);

static void conn_written(uv_write_t *req, int status)
{
	struct hconn *c = req->data;

	c->writing = false;
	if (c->closing)
		return;
	if (status < 0) {
		conn_close(c);
		return;
	}
	memmove(c->wbuf, c->wbuf + c->wsent, c->wlen - c->wsent);
	c->wlen -= c->wsent;
	c->wsent = 0;
	conn_flush(c);
	/* Room again: what nghttp2 held back may go now. */
	if (c->ng)
		pump(c);
}

static int tls_push(void *ctx, const uint8_t *data, size_t len)
{
	struct hconn *c = ctx;
	size_t skip = 0;

	if (!c->writing && c->wlen == 0) {
		uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
		int n = uv_try_write((uv_stream_t *)&c->h, &b, 1);
		if (n == (int)len)
			return 0;
		if (n < 0 && n != UV_EAGAIN)
			return n;
		skip = n > 0 ? (size_t)n : 0;
	}
	if (!c->wbuf && !(c->wbuf = malloc(WBUF_CAP)))
		return -ENOMEM;
	if (c->wlen + len - skip > WBUF_CAP) {
		dk_ctr_inc(&c->hs->ctr->slow);
		return -ENOBUFS;
	}
	memcpy(c->wbuf + c->wlen, data + skip, len - skip);
	c->wlen += len - skip;
	conn_flush(c);
	return 0;
}

/* Sends what nghttp2 has to send, while the output buffer has room. */
static void pump(struct hconn *c)
{
	if (!c->ng || c->in_ng || c->closing)
		return;
	/* Every frame of this round (HEADERS and DATA of many answers) in as few records. */
	gnutls_record_cork(c->tls.s);
	while (c->wlen < WBUF_CAP / 2) {
		const uint8_t *data;
		c->in_ng = true;
		ssize_t n = nghttp2_session_mem_send(c->ng, &data);
		c->in_ng = false;
		if (n < 0) {
			conn_close(c);
			return;
		}
		if (n == 0)
			break;
		if (dk_tls_sess_send(&c->tls, data, (size_t)n) < 0) {
			conn_close(c);
			return;
		}
	}
	if (gnutls_record_uncork(c->tls.s, GNUTLS_RECORD_WAIT) < 0) {
		conn_close(c);
		return;
	}
	if (!nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng) &&
	    c->wlen == 0 && !c->writing)
		conn_close(c);
}

/* Requests and answers. */

static unsigned refused_slot(int status)
{
	switch (status) {
	case 400: return 0;
	case 404: return 1;
	case 405: return 2;
	case 413: return 3;
	case 414: return 4;
	case 415: return 5;
	default: return 6;
	}
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

static ssize_t body_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *user)
{
	struct hstream *st = src->ptr;
	size_t left = st->ans_len - st->ans_off;
	size_t n = left < len ? left : len;

	(void)ng;
	(void)id;
	(void)user;
	memcpy(buf, st->ans + st->ans_off, n);
	st->ans_off += n;
	if (st->ans_off == st->ans_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static nghttp2_nv nv(const char *k, const char *v)
{
	/* Names are literals; values are copied by nghttp2 (the status is on the stack). */
	return (nghttp2_nv){(uint8_t *)k, (uint8_t *)v, strlen(k), strlen(v),
	                    NGHTTP2_NV_FLAG_NO_COPY_NAME};
}

/* The HTTP/2 response of @p st: @p status, and the answer in st->ans when 200. */
static void h2_respond(struct hstream *st, int status)
{
	struct hconn *c = st->c;
	char code[4];
	nghttp2_nv h[4];
	size_t n = 0;
	long age = status == 200 ? dk_doh_max_age(st->ans, st->ans_len) : -1;

	snprintf(code, sizeof(code), "%d", status);
	snprintf(st->clen, sizeof(st->clen), "%zu", status == 200 ? st->ans_len : 0);
	h[n++] = nv(":status", code);
	if (status == 200)
		h[n++] = nv("content-type", DK_DOH_CT);
	h[n++] = nv("content-length", st->clen);
	if (age >= 0) {
		snprintf(st->maxage, sizeof(st->maxage), "max-age=%ld", age);
		h[n++] = nv("cache-control", st->maxage);
	}
	nghttp2_data_provider dp = {.source.ptr = st, .read_callback = body_read};
	st->answering = true;
	if (nghttp2_submit_response(c->ng, st->id, h, n, status == 200 ? &dp : NULL) != 0)
		nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
}

/* The HTTP/1.1 response: head and body in one TLS record. */
static void h1_respond(struct hstream *st, int status)
{
	struct hconn *c = st->c;
	char head[320], age[48] = "";
	size_t body = status == 200 ? st->ans_len : 0;
	long maxage = status == 200 ? dk_doh_max_age(st->ans, st->ans_len) : -1;
	if (maxage >= 0)
		snprintf(age, sizeof(age), "Cache-Control: max-age=%ld\r\n", maxage);
	int n = snprintf(
	        head, sizeof(head), "HTTP/1.1 %d %s\r\n%s%sContent-Length: %zu\r\n%s%s\r\n", status,
	        reason(status), status == 200 ? "Content-Type: " DK_DOH_CT : "",
	        status == 200 ? "\r\n" : "", body, age, c->h1_close ? "Connection: close\r\n" : "");

	gnutls_record_cork(c->tls.s);
	bool ok = dk_tls_sess_send(&c->tls, (const uint8_t *)head, (size_t)n) == 0 &&
	          (!body || dk_tls_sess_send(&c->tls, st->ans, body) == 0) &&
	          gnutls_record_uncork(c->tls.s, GNUTLS_RECORD_WAIT) >= 0;
	if (!ok) {
		conn_close(c);
		return;
	}
	stream_release(st);
	c->h1_busy = false;
	if (c->h1_close) {
		/* The rest of the output drains; reading is over. */
		uv_read_stop((uv_stream_t *)&c->h);
		if (c->wlen == 0 && !c->writing)
			conn_close(c);
		return;
	}
	if (!c->in_h1)
		h1_next(c);
}

static void respond(struct hstream *st, int status)
{
	if (status != 200)
		dk_ctr_inc(&st->c->hs->ctr->refused[refused_slot(status)]);
	if (st->c->h1)
		h1_respond(st, status);
	else
		h2_respond(st, status);
}

/* A complete request on @p st: refused with its status, or its query goes to the query module. */
static void dispatch(struct hstream *st)
{
	struct hconn *c = st->c;
	int status = dk_doh_finish(&st->req);

	dk_ctr_inc(&c->hs->ctr->requests);
	if (status) {
		respond(st, status);
		return;
	}
	struct dk_client cl = {
	        .ops = &https_ops, .conn = st, .peer = c->peer, .transport = DK_TRANSPORT_HTTPS};
	c->hs->on_query(c->hs->ctx, &cl, st->req.buf, st->req.len);
	uv_timer_again(&c->idle);
}

static void s_reply(const struct dk_client *cl, const uint8_t *ans, size_t len)
{
	struct hstream *st = cl->conn;
	struct hconn *c = st->c;

	if (c->closing || st->dead || st->answering)
		return;
	st->ans = len <= sizeof(st->abuf) ? st->abuf : malloc(len);
	if (!st->ans) {
		respond(st, 500);
		pump(c);
		return;
	}
	memcpy(st->ans, ans, len);
	st->ans_len = len;
	st->ans_off = 0;
	respond(st, 200);
	pump(c);
}

static void s_hold(const struct dk_client *cl)
{
	struct hstream *st = cl->conn;

	st->upstream = true;
	st->c->inflight++;
}

static void s_done(const struct dk_client *cl)
{
	struct hstream *st = cl->conn;
	struct hconn *c = st->c;

	st->upstream = false;
	if (st->dead)
		stream_release(st);
	if (dk_fails_assert(c->inflight > 0))
		return;
	if (--c->inflight == 0 && c->closing && c->handles == 0)
		conn_free(c);
}

/* HTTP/2 callbacks (nghttp2). */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
	struct hconn *c = user;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	struct hstream *st = stream_take(c);
	if (!st) {
		dk_ctr_inc(&c->hs->ctr->streams_refused);
		nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id,
		                          NGHTTP2_REFUSED_STREAM);
		return 0;
	}
	st->id = f->hd.stream_id;
	nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, st);
	return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
	struct hstream *st = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);

	(void)flags;
	(void)user;
	if (st && f->hd.type == NGHTTP2_HEADERS)
		dk_doh_header(&st->req, (const char *)name, nlen, (const char *)value, vlen);
	return 0;
}

static int on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *user)
{
	struct hstream *st = nghttp2_session_get_stream_user_data(ng, id);

	(void)flags;
	(void)user;
	if (st)
		dk_doh_body(&st->req, data, len);
	return 0;
}

static int on_frame(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
	(void)user;
	if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
	    !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	struct hstream *st = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
	if (st && !st->answering)
		dispatch(st);
	return 0;
}

static int on_close(nghttp2_session *ng, int32_t id, uint32_t err, void *user)
{
	struct hstream *st = nghttp2_session_get_stream_user_data(ng, id);

	(void)err;
	(void)user;
	if (!st)
		return 0;
	nghttp2_session_set_stream_user_data(ng, id, NULL);
	if (st->upstream)
		st->dead = true; /* freed when its query ends (s_done) */
	else
		stream_release(st);
	return 0;
}

/* Sets up the protocol ALPN chose, with its stream table. */
static int conn_protocol(struct hconn *c)
{
	struct dk_https *hs = c->hs;
	unsigned n = 1;

	c->h1 = !dk_tls_sess_alpn_is(&c->tls, "h2");
	if (!c->h1) {
		n = DK_HTTPS_STREAMS;
		dk_ctr_inc(&hs->ctr->h2);
		if (nghttp2_session_server_new(&c->ng, hs->cbs, c) != 0)
			return -ENOMEM;
		nghttp2_settings_entry set[] = {
		        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, DK_HTTPS_STREAMS},
		};
		nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, set, 1);
	} else if (!(c->h1buf = malloc(H1BUF))) {
		return -ENOMEM;
	}
	c->streams = calloc(n, sizeof(*c->streams));
	if (!c->streams)
		return -ENOMEM;
	c->n_streams = n;
	for (unsigned i = n; i-- > 0;) {
		c->streams[i].c = c;
		c->streams[i].next_free = c->free;
		c->free = &c->streams[i];
	}
	return 0;
}

/* HTTP/1.1: the next request in the input, one at a time (answers go in order). */
static void h1_read(struct hconn *c);

static void h1_next(struct hconn *c)
{
	c->in_h1 = true;
	h1_read(c);
	c->in_h1 = false;
}

static void h1_read(struct hconn *c)
{
	while (!c->closing && !c->h1_busy && c->h1len) {
		struct hstream *st = stream_take(c);
		if (dk_fails_assert(st))
			return;
		long head = dk_http1_head((const char *)c->h1buf, c->h1len, &st->req);
		if (head == 0) {
			stream_release(st);
			if (c->h1len == H1BUF)
				conn_close(c);
			return;
		}
		c->h1_busy = true;
		if (head < 0) {
			/* A head we cannot read: answer it and close, its end is unknown. */
			c->h1_close = true;
			c->h1len = 0;
			respond(st, (int)-head);
			return;
		}
		size_t need = st->req.content_length > 0 ? (size_t)st->req.content_length : 0;
		if ((size_t)head + need > H1BUF) {
			c->h1_close = true;
			c->h1len = 0;
			respond(st, 413);
			return;
		}
		if (c->h1len < (size_t)head + need) {
			/* The body is still coming: read more, then parse this head again. */
			c->h1_busy = false;
			stream_release(st);
			return;
		}
		dk_doh_body(&st->req, c->h1buf + head, need);
		c->h1_close = !st->req.keep_alive;
		size_t used = (size_t)head + need;
		memmove(c->h1buf, c->h1buf + used, c->h1len - used);
		c->h1len -= used;
		dispatch(st);
	}
}

/* Input: TLS first, then HTTP. */

static void conn_idle_cb(uv_timer_t *t);

static void conn_plain(struct hconn *c, const uint8_t *data, size_t n)
{
	if (c->h1) {
		if (n > H1BUF - c->h1len) {
			conn_close(c);
			return;
		}
		memcpy(c->h1buf + c->h1len, data, n);
		c->h1len += n;
		h1_next(c);
		return;
	}
	c->in_ng = true;
	ssize_t rc = nghttp2_session_mem_recv(c->ng, data, n);
	c->in_ng = false;
	if (rc < 0) {
		conn_close(c);
		return;
	}
	pump(c);
}

static void conn_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
	struct hconn *c = h->data;
	struct dk_https *hs = c->hs;

	(void)buf;
	if (nread < 0) {
		conn_close(c);
		return;
	}
	if (nread == 0 || c->closing)
		return;
	dk_tls_sess_feed(&c->tls, c->cbuf, (size_t)nread);
	if (!c->tls.ready) {
		int rc = dk_tls_sess_handshake(&c->tls);
		if (rc == -EAGAIN)
			return;
		if (rc < 0 || conn_protocol(c) < 0) {
			dk_ctr_inc(&hs->ctr->tls_failed);
			conn_close(c);
			return;
		}
		dk_ctr_inc(&hs->ctr->tls_handshakes);
		uv_timer_start(&c->idle, conn_idle_cb, hs->idle_ms, hs->idle_ms);
		pump(c);
	}
	while (!c->closing) {
		ssize_t got = dk_tls_sess_recv(&c->tls, c->pbuf, sizeof(c->pbuf));
		if (got == -EAGAIN)
			return;
		if (got <= 0) {
			conn_close(c);
			return;
		}
		conn_plain(c, c->pbuf, (size_t)got);
	}
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct hconn *c = h->data;

	(void)suggested;
	buf->base = (char *)c->cbuf;
	buf->len = sizeof(c->cbuf);
}

static void conn_idle_cb(uv_timer_t *t)
{
	struct hconn *c = t->data;

	if (!c->tls.ready) {
		dk_ctr_inc(&c->hs->ctr->tls_timeouts);
		conn_close(c);
		return;
	}
	if (c->inflight || c->writing || c->h1_busy)
		return;
	conn_close(c);
}

static void reject_closed(uv_handle_t *h)
{
	free(h);
}

static void reject(struct dk_https *hs, uv_stream_t *server)
{
	uv_tcp_t *h = malloc(sizeof(*h));

	dk_ctr_inc(&hs->ctr->rejected);
	if (!h)
		return;
	if (uv_tcp_init(hs->loop, h) < 0) {
		free(h);
		return;
	}
	uv_accept(server, (uv_stream_t *)h);
	uv_close((uv_handle_t *)h, reject_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
	static const char *const alpn[] = {"h2", "http/1.1"};
	struct listener *l = server->data;
	struct dk_https *hs = l->hs;

	if (status < 0)
		return;
	if (hs->n_conns >= hs->max_clients || hs->stopping || !hs->creds) {
		reject(hs, server);
		return;
	}
	struct hconn *c = calloc(1, sizeof(*c));
	if (!c) {
		reject(hs, server);
		return;
	}
	c->hs = hs;
	if (uv_tcp_init(hs->loop, &c->h) < 0) {
		free(c);
		reject(hs, server);
		return;
	}
	c->h.data = c;
	uv_timer_init(hs->loop, &c->idle);
	c->idle.data = c;
	c->handles = 2;
	c->next = hs->conns;
	if (hs->conns)
		hs->conns->prev = c;
	hs->conns = c;
	hs->n_conns++;
	dk_ctr_inc(&hs->ctr->accepted);
	int len = sizeof(c->peer.in6);
	if (uv_accept(server, (uv_stream_t *)&c->h) < 0 ||
	    uv_tcp_getpeername(&c->h, &c->peer.sa, &len) < 0 ||
	    dk_tls_sess_server(&c->tls, hs->creds, tls_push, c) < 0 ||
	    dk_tls_sess_alpn(&c->tls, alpn, 2) < 0) {
		conn_close(c);
		return;
	}
	c->peer.len = (socklen_t)len;
	uv_tcp_nodelay(&c->h, 1);
	uv_timer_start(&c->idle, conn_idle_cb, hs->handshake_ms, hs->idle_ms);
	if (uv_read_start((uv_stream_t *)&c->h, conn_alloc, conn_read) < 0)
		conn_close(c);
}

int dk_https_new(uv_loop_t *loop, size_t n_listen, dk_query_fn *on_query, void *ctx,
                 struct dk_https_counters *ctr, struct dk_https **out)
{
	struct dk_https *hs = calloc(1, sizeof(*hs));

	*out = NULL;
	if (!hs)
		return -ENOMEM;
	hs->ls = calloc(n_listen ? n_listen : 1, sizeof(*hs->ls));
	if (!hs->ls || nghttp2_session_callbacks_new(&hs->cbs) != 0) {
		free(hs->ls);
		free(hs);
		return -ENOMEM;
	}
	nghttp2_session_callbacks_set_on_begin_headers_callback(hs->cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(hs->cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(hs->cbs, on_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(hs->cbs, on_frame);
	nghttp2_session_callbacks_set_on_stream_close_callback(hs->cbs, on_close);
	hs->cap_ls = n_listen;
	hs->loop = loop;
	hs->on_query = on_query;
	hs->ctx = ctx;
	hs->ctr = ctr;
	*out = hs;
	return 0;
}

void dk_https_configure(struct dk_https *hs, size_t max_clients, unsigned idle_ms,
                        unsigned handshake_ms, struct dk_tls_creds *creds)
{
	hs->max_clients = max_clients;
	hs->idle_ms = idle_ms;
	hs->handshake_ms = handshake_ms;
	if (creds == hs->creds)
		return;
	dk_tls_creds_unref(hs->creds);
	hs->creds = dk_tls_creds_ref(creds);
}

int dk_https_listen(struct dk_https *hs, const struct dk_addr *a)
{
	if (hs->n_ls == hs->cap_ls)
		return -ENOSPC;
	struct listener *l = &hs->ls[hs->n_ls];
	int fd = dk_socket_bound(a, SOCK_STREAM, true);
	if (fd < 0)
		return fd;
	int rc = uv_tcp_init(hs->loop, &l->h);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	hs->n_ls++;
	l->hs = hs;
	l->h.data = l;
	rc = uv_tcp_open(&l->h, fd);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return uv_listen((uv_stream_t *)&l->h, 128, on_connection);
}

static void close_listeners(struct dk_https *hs)
{
	for (size_t i = 0; i < hs->n_ls; i++)
		if (!uv_is_closing((uv_handle_t *)&hs->ls[i].h))
			uv_close((uv_handle_t *)&hs->ls[i].h, NULL);
}

void dk_https_stop(struct dk_https *hs)
{
	hs->stopping = true;
	close_listeners(hs);
	for (struct hconn *c = hs->conns; c; c = c->next) {
		if (c->closing)
			continue;
		if (c->inflight == 0 && !c->writing)
			conn_close(c);
		else
			uv_read_stop((uv_stream_t *)&c->h);
	}
}

void dk_https_close(struct dk_https *hs)
{
	hs->stopping = true;
	close_listeners(hs);
	for (struct hconn *c = hs->conns; c; c = c->next)
		conn_close(c);
}

void dk_https_free(struct dk_https *hs)
{
	if (!hs)
		return;
	while (hs->conns)
		conn_free(hs->conns);
	dk_tls_creds_unref(hs->creds);
	nghttp2_session_callbacks_del(hs->cbs);
	free(hs->ls);
	free(hs);
}
