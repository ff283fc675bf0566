/* SPDX-License-Identifier: MIT */
/*
 * TCP clients (RFC 7766): per-worker listeners, a cap on concurrent
 * connections, two-octet length framing across partial reads, pipelined
 * queries answered as they complete (in any order), an idle timeout that
 * also bounds how long one query may take to arrive, and a clean close when
 * the client closes.
 *
 * A connection owns a 64 KiB read buffer allocated at accept. Answers are
 * written with uv_try_write first, which on a healthy connection sends them
 * at once; whatever the kernel does not take is copied to a per-connection
 * output buffer (allocated on first need, bounded) and written with the
 * connection's one uv_write_t. A client that stops reading until that buffer
 * is full is disconnected. Queries still in flight when a connection closes
 * keep its memory alive; their answers are discarded.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "server_internal.h"

/** Output held for a client that reads slowly: two largest answers. */
#define WBUF_CAP (2 * (2 + DK_MSG_MAX))

struct dk_tcp_conn {
	uv_tcp_t h;
	uv_timer_t idle;
	uv_write_t wreq;
	struct dk_worker *w;
	struct dk_tcp_conn *prev;
	struct dk_tcp_conn *next;
	struct dk_addr peer;
	unsigned inflight; /**< queries gone upstream, not ended */
	unsigned handles;  /**< handles not yet closed */
	bool closing;
	bool writing; /**< wreq in flight for wbuf[0..wsent) */
	size_t rlen;
	size_t wlen;
	size_t wsent;
	uint8_t *wbuf;
	uint8_t rbuf[2 + DK_MSG_MAX];
};

static unsigned idle_ms(const struct dk_worker *w)
{
	unsigned ms = w->snap->cfg->tcp_idle_ms;
	return ms ? ms : 10000;
}

static void conn_free(struct dk_tcp_conn *c)
{
	struct dk_worker *w = c->w;

	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c->wbuf);
	free(c);
}

static void conn_closed(uv_handle_t *h)
{
	struct dk_tcp_conn *c = h->data;

	if (--c->handles == 0 && c->inflight == 0)
		conn_free(c);
}

static void conn_close(struct dk_tcp_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	c->w->n_conns--;
	uv_close((uv_handle_t *)&c->h, conn_closed);
	uv_close((uv_handle_t *)&c->idle, conn_closed);
}

void dk__tcp_query_hold(struct dk_tcp_conn *c)
{
	c->inflight++;
}

void dk__tcp_query_done(struct dk_worker *w, struct dk_tcp_conn *c)
{
	(void)w;
	if (--c->inflight == 0 && c->closing && c->handles == 0) {
		conn_free(c);
		return;
	}
	/* The idle period of a connection that waited on its answers starts now. */
	if (c->inflight == 0 && !c->closing)
		uv_timer_again(&c->idle);
}

static void conn_written(uv_write_t *req, int status);

static void conn_flush(struct dk_tcp_conn *c)
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

static void conn_written(uv_write_t *req, int status)
{
	struct dk_tcp_conn *c = req->data;

	c->writing = false;
	if (c->closing)
		return;
	if (status < 0) {
		conn_close(c);
		return;
	}
	/* Answers appended while the write ran wait behind the part just sent. */
	memmove(c->wbuf, c->wbuf + c->wsent, c->wlen - c->wsent);
	c->wlen -= c->wsent;
	c->wsent = 0;
	conn_flush(c);
}

/* Copies @p n octets of the frame (prefix, then answer) from @p skip on to the output buffer. */
static bool conn_queue(struct dk_tcp_conn *c, const uint8_t pre[2], const uint8_t *ans, size_t len,
                       size_t skip)
{
	size_t n = 2 + len - skip;

	if (!c->wbuf) {
		c->wbuf = malloc(WBUF_CAP);
		if (!c->wbuf)
			return false;
	}
	if (c->wlen + n > WBUF_CAP)
		return false;
	if (skip < 2) {
		memcpy(c->wbuf + c->wlen, pre + skip, 2 - skip);
		c->wlen += 2 - skip;
		skip = 2;
	}
	memcpy(c->wbuf + c->wlen, ans + (skip - 2), len - (skip - 2));
	c->wlen += len - (skip - 2);
	return true;
}

void dk__tcp_reply(struct dk_worker *w, struct dk_tcp_conn *c, const uint8_t *ans, size_t len)
{
	uint8_t pre[2] = {(uint8_t)(len >> 8), (uint8_t)len};
	size_t skip = 0;

	if (c->closing)
		return;
	if (!c->writing && c->wlen == 0) {
		uv_buf_t b[2] = {
		        uv_buf_init((char *)pre, 2),
		        uv_buf_init((char *)ans, (unsigned)len),
		};
		int n = uv_try_write((uv_stream_t *)&c->h, b, 2);
		if (n == (int)len + 2)
			return;
		if (n < 0 && n != UV_EAGAIN) {
			conn_close(c);
			return;
		}
		skip = n > 0 ? (size_t)n : 0;
	}
	if (!conn_queue(c, pre, ans, len, skip)) {
		w->ctr.tcp_slow++;
		conn_close(c);
		return;
	}
	conn_flush(c);
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct dk_tcp_conn *c = h->data;

	(void)suggested;
	buf->base = (char *)c->rbuf + c->rlen;
	buf->len = sizeof(c->rbuf) - c->rlen;
}

static void conn_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
	struct dk_tcp_conn *c = h->data;
	struct dk_worker *w = c->w;

	(void)buf;
	if (nread < 0) {
		/* EOF or reset: answers still in flight are discarded. */
		conn_close(c);
		return;
	}
	if (nread == 0)
		return;
	c->rlen += (size_t)nread;

	size_t off = 0;
	while (!c->closing && c->rlen - off >= 2) {
		size_t n = (size_t)c->rbuf[off] << 8 | c->rbuf[off + 1];
		if (n == 0) {
			conn_close(c);
			return;
		}
		if (c->rlen - off < 2 + n)
			break;
		struct dk_client cl = {.transport = DK_TRANSPORT_TCP, .conn = c, .peer = c->peer};
		dk__worker_query(w, &cl, c->rbuf + off + 2, n);
		off += 2 + n;
	}
	if (c->closing)
		return;
	/*
	 * Only a complete query restarts the idle period: a client that
	 * trickles a frame in a byte at a time (or announces more than it
	 * sends) has until the timer fires to finish it, whatever it sends.
	 */
	if (off)
		uv_timer_again(&c->idle);
	memmove(c->rbuf, c->rbuf + off, c->rlen - off);
	c->rlen -= off;
}

static void conn_idle(uv_timer_t *t)
{
	struct dk_tcp_conn *c = t->data;

	/* A connection waiting for answers is busy, not idle. */
	if (c->inflight || c->writing)
		return;
	conn_close(c);
}

static void reject_closed(uv_handle_t *h)
{
	free(h);
}

static void reject(struct dk_worker *w, uv_stream_t *server)
{
	/* Over the cap: take the connection off the queue and close it at once. */
	uv_tcp_t *t = malloc(sizeof(*t));

	w->ctr.tcp_rejected++;
	if (!t)
		return;
	if (uv_tcp_init(&w->loop, t) < 0) {
		free(t);
		return;
	}
	uv_accept(server, (uv_stream_t *)t);
	uv_close((uv_handle_t *)t, reject_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct dk_tcp_listener *l = (struct dk_tcp_listener *)server;
	struct dk_worker *w = l->w;
	size_t cap = w->snap->cfg->tcp_max_clients ? w->snap->cfg->tcp_max_clients : 256;

	if (status < 0)
		return;
	if (w->n_conns >= cap || w->stopping) {
		reject(w, server);
		return;
	}
	struct dk_tcp_conn *c = malloc(sizeof(*c));
	if (!c) {
		reject(w, server);
		return;
	}
	memset(c, 0, offsetof(struct dk_tcp_conn, rbuf));
	c->w = w;
	if (uv_tcp_init(&w->loop, &c->h) < 0) {
		free(c);
		reject(w, server);
		return;
	}
	c->h.data = c;
	c->handles = 1;
	uv_timer_init(&w->loop, &c->idle);
	c->idle.data = c;
	c->handles = 2;
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->n_conns++;
	w->ctr.tcp_accepted++;

	int len = sizeof(c->peer.in6);
	if (uv_accept(server, (uv_stream_t *)&c->h) < 0 ||
	    uv_tcp_getpeername(&c->h, &c->peer.sa, &len) < 0) {
		conn_close(c);
		return;
	}
	c->peer.len = (socklen_t)len;
	uv_tcp_nodelay(&c->h, 1);
	unsigned ms = idle_ms(w);
	uv_timer_start(&c->idle, conn_idle, ms, ms);
	if (uv_read_start((uv_stream_t *)&c->h, conn_alloc, conn_read) < 0)
		conn_close(c);
}

int dk__tcp_listen(struct dk_worker *w, struct dk_tcp_listener *l, const struct dk_addr *a)
{
	int fd = dk__socket_bound(a, SOCK_STREAM, true);
	if (fd < 0)
		return fd;
	int rc = uv_tcp_init(&w->loop, &l->h);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	/* From here the handle exists: l->w tells the caller to close it. */
	l->w = w;
	l->h.data = w;
	rc = uv_tcp_open(&l->h, fd);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return uv_listen((uv_stream_t *)&l->h, 128, on_connection);
}

void dk__tcp_stop(struct dk_worker *w)
{
	for (struct dk_tcp_conn *c = w->conns; c; c = c->next) {
		if (c->closing)
			continue;
		if (c->inflight == 0 && !c->writing)
			conn_close(c);
		else
			uv_read_stop((uv_stream_t *)&c->h);
	}
}

void dk__tcp_close_all(struct dk_worker *w)
{
	for (struct dk_tcp_conn *c = w->conns; c; c = c->next)
		conn_close(c);
}

void dk__tcp_free_all(struct dk_worker *w)
{
	while (w->conns)
		conn_free(w->conns);
}
