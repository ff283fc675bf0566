/* SPDX-License-Identifier: MIT */
/*
 * Pooled upstream TCP connections (see upstream_tcp.h). Connection objects
 * are kept on a free list once closed and freed only with the pool, so the
 * pool grows to the most connections ever open at once and then reuses them.
 *
 * Idle connections are closed by a sweep once a second, not when a query
 * finds them stale: a closed object returns to the free list only in its
 * close callback, a loop iteration later, so closing on the query path would
 * make the query that needs a connection allocate a new one.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dnsink/msg.h"
#include "upstream_tcp.h"

/** Queries in flight on one upstream TCP connection (RFC 7766 pipelining). */
#define UP_PIPELINE 32
/** Open upstream TCP connections kept per worker once they have nothing in flight. */
#define UP_IDLE_MAX 16
/** An idle connection older than this is closed rather than reused. */
#define UP_IDLE_MS 5000
/** How often idle connections are looked at. */
#define UP_SWEEP_MS 1000
/** Queries waiting to be written on one connection. */
#define UP_WBUF 16384

/**
 * A TCP connection to an upstream. Several queries ride it at once and the
 * answers, in any order, go to the pool's answer callback.
 */
struct dk_up_tcp {
	uv_tcp_t h;
	uv_connect_t creq;
	uv_write_t wreq;
	struct dk_up_tcp_pool *pool;
	struct dk_up_tcp *next_free;
	struct dk_up_tcp *next_all;
	struct dk_up_tcp *next_open; /**< pool's list of open connections */
	struct dk_addr addr;         /**< the upstream it is connected to */
	uint64_t idle_since;         /**< loop time inflight became 0 */
	unsigned inflight;           /**< queries attached */
	bool connected;
	bool closing;
	bool writing;  /**< wreq in flight for wbuf[0..wsent) */
	bool draining; /**< a query timed out on it: no new ones, close when empty */
	size_t got;
	size_t wlen;
	size_t wsent;
	uint8_t wbuf[UP_WBUF];       /**< framed queries not yet taken by the kernel */
	uint8_t buf[2 + DK_MSG_MAX]; /**< answers being read */
};

struct dk_up_tcp_pool {
	uv_loop_t *loop;
	uv_timer_t sweep; /**< closes connections idle past UP_IDLE_MS */
	bool sweep_init;
	struct dk_up_tcp_cbs cbs;
	struct dk_up_tcp *free; /**< closed connections, reusable */
	struct dk_up_tcp *all;  /**< every connection object, for teardown */
	struct dk_up_tcp *open; /**< open connections (busy or idle) */
	unsigned n_open;
	bool closed; /**< the pool is shutting down: nothing is kept idle */
};

static void up_tcp_closed(uv_handle_t *h)
{
	struct dk_up_tcp *u = (struct dk_up_tcp *)h;

	u->next_free = u->pool->free;
	u->pool->free = u;
}

static void unlink_open(struct dk_up_tcp *u)
{
	struct dk_up_tcp_pool *p = u->pool;

	for (struct dk_up_tcp **pp = &p->open; *pp; pp = &(*pp)->next_open) {
		if (*pp == u) {
			*pp = u->next_open;
			p->n_open--;
			return;
		}
	}
}

void dk_up_tcp_close(struct dk_up_tcp *u)
{
	if (u->closing)
		return;
	u->closing = true;
	unlink_open(u);
	/* Closing cancels the connect and write requests; their callbacks see u->closing. */
	uv_close((uv_handle_t *)&u->h, up_tcp_closed);
	if (u->inflight)
		u->pool->cbs.lost(u->pool->cbs.ctx, u);
}

void dk_up_tcp_detach(struct dk_up_tcp *u)
{
	struct dk_up_tcp_pool *p = u->pool;

	if (dk_fails_assert(u->inflight > 0))
		return;
	if (--u->inflight > 0 || u->closing)
		return;
	u->idle_since = uv_now(p->loop);
	if (u->draining || p->closed || p->n_open > UP_IDLE_MAX)
		dk_up_tcp_close(u);
}

void dk_up_tcp_drain(struct dk_up_tcp *u)
{
	u->draining = true;
}

static void up_tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct dk_up_tcp *u = (struct dk_up_tcp *)h;

	(void)suggested;
	buf->base = (char *)u->buf + u->got;
	buf->len = sizeof(u->buf) - u->got;
}

static void up_tcp_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
	struct dk_up_tcp *u = (struct dk_up_tcp *)h;
	const struct dk_up_tcp_cbs *cbs = &u->pool->cbs;

	(void)buf;
	if (nread == 0 || u->closing)
		return;
	if (nread < 0) {
		dk_up_tcp_close(u);
		return;
	}
	u->got += (size_t)nread;
	size_t off = 0;
	while (!u->closing && u->got - off >= 2) {
		size_t len = (size_t)u->buf[off] << 8 | u->buf[off + 1];
		if (u->got - off < 2 + len)
			break;
		cbs->answer(cbs->ctx, u, u->buf + off + 2, len);
		off += 2 + len;
	}
	/* A closed connection's buffer is dropped with it; it is reset on reuse. */
	if (u->closing)
		return;
	memmove(u->buf, u->buf + off, u->got - off);
	u->got -= off;
}

static void up_tcp_flush(struct dk_up_tcp *u);

static void up_tcp_written(uv_write_t *req, int status)
{
	struct dk_up_tcp *u = req->data;

	u->writing = false;
	if (u->closing)
		return;
	if (status < 0) {
		dk_up_tcp_close(u);
		return;
	}
	memmove(u->wbuf, u->wbuf + u->wsent, u->wlen - u->wsent);
	u->wlen -= u->wsent;
	u->wsent = 0;
	up_tcp_flush(u);
}

static void up_tcp_flush(struct dk_up_tcp *u)
{
	if (!u->connected || u->writing || u->wlen == 0 || u->closing)
		return;
	uv_buf_t b = uv_buf_init((char *)u->wbuf, (unsigned)u->wlen);
	u->wsent = u->wlen;
	u->wreq.data = u;
	if (uv_write(&u->wreq, (uv_stream_t *)&u->h, &b, 1, up_tcp_written) < 0) {
		dk_up_tcp_close(u);
		return;
	}
	u->writing = true;
}

/*
 * Straight to the kernel when nothing waits, else (or for the part the kernel
 * did not take) into u->wbuf, which dk_up_tcp_get() made sure has room.
 */
int dk_up_tcp_send(struct dk_up_tcp *u, const uint8_t *pkt, size_t len)
{
	uint8_t pre[2] = {(uint8_t)(len >> 8), (uint8_t)len};
	size_t skip = 0;

	if (u->connected && !u->writing && u->wlen == 0) {
		uv_buf_t b[2] = {
		        uv_buf_init((char *)pre, 2),
		        uv_buf_init((char *)pkt, (unsigned)len),
		};
		int n = uv_try_write((uv_stream_t *)&u->h, b, 2);
		if (n == (int)(2 + len))
			return 0;
		if (n < 0 && n != UV_EAGAIN)
			return n;
		skip = n > 0 ? (size_t)n : 0;
	}
	if (skip < 2) {
		memcpy(u->wbuf + u->wlen, pre + skip, 2 - skip);
		u->wlen += 2 - skip;
		skip = 2;
	}
	memcpy(u->wbuf + u->wlen, pkt + (skip - 2), len - (skip - 2));
	u->wlen += len - (skip - 2);
	up_tcp_flush(u);
	return 0;
}

static void up_tcp_connected(uv_connect_t *req, int status)
{
	struct dk_up_tcp *u = req->data;

	if (u->closing)
		return;
	if (status < 0 || uv_read_start((uv_stream_t *)&u->h, up_tcp_alloc, up_tcp_read) < 0) {
		dk_up_tcp_close(u);
		return;
	}
	u->connected = true;
	up_tcp_flush(u);
}

/* Closes the connections idle for too long: the upstream may drop them any moment. */
static void sweep(uv_timer_t *t)
{
	struct dk_up_tcp_pool *p = t->data;
	uint64_t now = uv_now(p->loop);

	for (struct dk_up_tcp *u = p->open, *next; u; u = next) {
		next = u->next_open;
		if (u->inflight == 0 && now - u->idle_since > UP_IDLE_MS)
			dk_up_tcp_close(u);
	}
}

/*
 * An open connection to @p addr with room for @p len more octets. One the
 * sweep is about to close is still good: should the upstream have dropped it,
 * the query goes again on a new one (upstream.c, slot_tcp_lost).
 */
static struct dk_up_tcp *tcp_pick(struct dk_up_tcp_pool *p, const struct dk_addr *addr, size_t len)
{
	for (struct dk_up_tcp *u = p->open; u; u = u->next_open)
		if (!u->draining && u->inflight < UP_PIPELINE && u->wlen + 2 + len <= UP_WBUF &&
		    dk_sockaddr_equal(&u->addr.sa, &addr->sa))
			return u;
	return NULL;
}

static struct dk_up_tcp *tcp_open(struct dk_up_tcp_pool *p, const struct dk_addr *addr)
{
	struct dk_up_tcp *u = p->free;

	if (u) {
		p->free = u->next_free;
	} else {
		/* Grows to the most connections ever open at once, then reused. */
		u = malloc(sizeof(*u));
		if (!u)
			return NULL;
		u->pool = p;
		u->next_all = p->all;
		p->all = u;
	}
	u->addr = *addr;
	u->inflight = 0;
	u->connected = u->closing = u->writing = u->draining = false;
	u->got = u->wlen = u->wsent = 0;
	u->idle_since = uv_now(p->loop);
	if (uv_tcp_init(p->loop, &u->h) < 0) {
		u->next_free = p->free;
		p->free = u;
		return NULL;
	}
	u->next_open = p->open;
	p->open = u;
	p->n_open++;
	u->creq.data = u;
	if (uv_tcp_connect(&u->creq, &u->h, &addr->sa, up_tcp_connected) < 0) {
		dk_up_tcp_close(u);
		return NULL;
	}
	return u;
}

struct dk_up_tcp *dk_up_tcp_get(struct dk_up_tcp_pool *p, const struct dk_addr *addr, size_t len)
{
	struct dk_up_tcp *u = tcp_pick(p, addr, len);

	if (!u)
		u = tcp_open(p, addr);
	if (u)
		u->inflight++;
	return u;
}

struct dk_up_tcp_pool *dk_up_tcp_pool_new(uv_loop_t *loop, const struct dk_up_tcp_cbs *cbs)
{
	struct dk_up_tcp_pool *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->loop = loop;
	p->cbs = *cbs;
	if (uv_timer_init(loop, &p->sweep) < 0) {
		free(p);
		return NULL;
	}
	p->sweep_init = true;
	p->sweep.data = p;
	uv_timer_start(&p->sweep, sweep, UP_SWEEP_MS, UP_SWEEP_MS);
	return p;
}

void dk_up_tcp_pool_close(struct dk_up_tcp_pool *p)
{
	p->closed = true;
	if (p->sweep_init && !uv_is_closing((uv_handle_t *)&p->sweep))
		uv_close((uv_handle_t *)&p->sweep, NULL);
	for (struct dk_up_tcp *u = p->open; u; u = u->next_open)
		u->inflight = 0;
	while (p->open)
		dk_up_tcp_close(p->open);
}

void dk_up_tcp_pool_free(struct dk_up_tcp_pool *p)
{
	if (!p)
		return;
	while (p->all) {
		struct dk_up_tcp *u = p->all;
		p->all = u->next_all;
		free(u);
	}
	free(p);
}
