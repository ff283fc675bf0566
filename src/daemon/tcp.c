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

#include "dnsink/alert.h"
#include "dnsink/msg.h"
#include "sock.h"
#include "tcp.h"

/** Output held for a client that reads slowly: two largest answers. */
#define WBUF_CAP (2 * (2 + DK_MSG_MAX))

struct listener {
	uv_tcp_t h;
	struct dk_tcp *t;
};

struct conn {
	uv_tcp_t h;
	uv_timer_t idle;
	uv_write_t wreq;
	struct dk_tcp *t;
	struct conn *prev;
	struct conn *next;
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

struct dk_tcp {
	uv_loop_t *loop;
	dk_query_fn *on_query;
	void *ctx;
	struct dk_tcp_counters *ctr;
	struct listener *ls;
	size_t n_ls;        /**< initialized (to close) */
	size_t cap_ls;      /**< room in ls */
	struct conn *conns; /**< every live connection */
	size_t n_conns;     /**< open ones (the cap counts these) */
	size_t max_clients;
	unsigned idle_ms;
	bool stopping;
};

static void conn_reply(const struct dk_client *cl, const uint8_t *ans, size_t len);
static void conn_hold(const struct dk_client *cl);
static void conn_done(const struct dk_client *cl);

static const struct dk_client_ops tcp_ops = {
        .reply = conn_reply,
        .hold = conn_hold,
        .done = conn_done,
};

static void conn_free(struct conn *c)
{
	struct dk_tcp *t = c->t;

	if (c->prev)
		c->prev->next = c->next;
	else
		t->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c->wbuf);
	free(c);
}

static void conn_closed(uv_handle_t *h)
{
	struct conn *c = h->data;

	if (--c->handles == 0 && c->inflight == 0)
		conn_free(c);
}

static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	c->t->n_conns--;
	uv_close((uv_handle_t *)&c->h, conn_closed);
	uv_close((uv_handle_t *)&c->idle, conn_closed);
}

static void conn_hold(const struct dk_client *cl)
{
	struct conn *c = cl->conn;

	c->inflight++;
}

static void conn_done(const struct dk_client *cl)
{
	struct conn *c = cl->conn;

	if (dk_fails_assert(c->inflight > 0))
		return;
	if (--c->inflight == 0 && c->closing && c->handles == 0) {
		conn_free(c);
		return;
	}
	/* The idle period of a connection that waited on its answers starts now. */
	if (c->inflight == 0 && !c->closing)
		uv_timer_again(&c->idle);
}

static void conn_written(uv_write_t *req, int status);

static void conn_flush(struct conn *c)
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
	struct conn *c = req->data;

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
static bool conn_queue(struct conn *c, const uint8_t pre[2], const uint8_t *ans, size_t len,
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

static void conn_reply(const struct dk_client *cl, const uint8_t *ans, size_t len)
{
	struct conn *c = cl->conn;
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
		dk_ctr_inc(&c->t->ctr->slow);
		conn_close(c);
		return;
	}
	conn_flush(c);
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;

	(void)suggested;
	buf->base = (char *)c->rbuf + c->rlen;
	buf->len = sizeof(c->rbuf) - c->rlen;
}

static void conn_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = h->data;
	struct dk_tcp *t = c->t;

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
		struct dk_client cl = {
		        .ops = &tcp_ops, .conn = c, .peer = c->peer, .transport = DK_TRANSPORT_TCP};
		t->on_query(t->ctx, &cl, c->rbuf + off + 2, n);
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
	struct conn *c = t->data;

	/* A connection waiting for answers is busy, not idle. */
	if (c->inflight || c->writing)
		return;
	conn_close(c);
}

static void reject_closed(uv_handle_t *h)
{
	free(h);
}

static void reject(struct dk_tcp *t, uv_stream_t *server)
{
	/* Over the cap: take the connection off the queue and close it at once. */
	uv_tcp_t *h = malloc(sizeof(*h));

	dk_ctr_inc(&t->ctr->rejected);
	if (!h)
		return;
	if (uv_tcp_init(t->loop, h) < 0) {
		free(h);
		return;
	}
	uv_accept(server, (uv_stream_t *)h);
	uv_close((uv_handle_t *)h, reject_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct listener *l = server->data;
	struct dk_tcp *t = l->t;

	if (status < 0)
		return;
	if (t->n_conns >= t->max_clients || t->stopping) {
		reject(t, server);
		return;
	}
	struct conn *c = malloc(sizeof(*c));
	if (!c) {
		reject(t, server);
		return;
	}
	memset(c, 0, offsetof(struct conn, rbuf));
	c->t = t;
	if (uv_tcp_init(t->loop, &c->h) < 0) {
		free(c);
		reject(t, server);
		return;
	}
	c->h.data = c;
	c->handles = 1;
	uv_timer_init(t->loop, &c->idle);
	c->idle.data = c;
	c->handles = 2;
	c->next = t->conns;
	if (t->conns)
		t->conns->prev = c;
	t->conns = c;
	t->n_conns++;
	dk_ctr_inc(&t->ctr->accepted);

	int len = sizeof(c->peer.in6);
	if (uv_accept(server, (uv_stream_t *)&c->h) < 0 ||
	    uv_tcp_getpeername(&c->h, &c->peer.sa, &len) < 0) {
		conn_close(c);
		return;
	}
	c->peer.len = (socklen_t)len;
	uv_tcp_nodelay(&c->h, 1);
	uv_timer_start(&c->idle, conn_idle, t->idle_ms, t->idle_ms);
	if (uv_read_start((uv_stream_t *)&c->h, conn_alloc, conn_read) < 0)
		conn_close(c);
}

int dk_tcp_new(uv_loop_t *loop, size_t n_listen, dk_query_fn *on_query, void *ctx,
               struct dk_tcp_counters *ctr, struct dk_tcp **out)
{
	struct dk_tcp *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (!t)
		return -ENOMEM;
	t->ls = calloc(n_listen ? n_listen : 1, sizeof(*t->ls));
	if (!t->ls) {
		free(t);
		return -ENOMEM;
	}
	t->cap_ls = n_listen;
	t->loop = loop;
	t->on_query = on_query;
	t->ctx = ctx;
	t->ctr = ctr;
	*out = t;
	return 0;
}

void dk_tcp_configure(struct dk_tcp *t, size_t max_clients, unsigned idle_ms)
{
	t->max_clients = max_clients;
	t->idle_ms = idle_ms;
}

int dk_tcp_listen(struct dk_tcp *t, const struct dk_addr *a)
{
	if (t->n_ls == t->cap_ls)
		return -ENOSPC;
	struct listener *l = &t->ls[t->n_ls];
	int fd = dk_socket_bound(a, SOCK_STREAM, true);
	if (fd < 0)
		return fd;
	int rc = uv_tcp_init(t->loop, &l->h);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	/* From here the handle exists and is closed by dk_tcp_close(). */
	t->n_ls++;
	l->t = t;
	l->h.data = l;
	rc = uv_tcp_open(&l->h, fd);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return uv_listen((uv_stream_t *)&l->h, 128, on_connection);
}

static void close_listeners(struct dk_tcp *t)
{
	for (size_t i = 0; i < t->n_ls; i++)
		if (!uv_is_closing((uv_handle_t *)&t->ls[i].h))
			uv_close((uv_handle_t *)&t->ls[i].h, NULL);
}

void dk_tcp_stop(struct dk_tcp *t)
{
	t->stopping = true;
	close_listeners(t);
	for (struct conn *c = t->conns; c; c = c->next) {
		if (c->closing)
			continue;
		if (c->inflight == 0 && !c->writing)
			conn_close(c);
		else
			uv_read_stop((uv_stream_t *)&c->h);
	}
}

void dk_tcp_close(struct dk_tcp *t)
{
	t->stopping = true;
	close_listeners(t);
	for (struct conn *c = t->conns; c; c = c->next)
		conn_close(c);
}

void dk_tcp_free(struct dk_tcp *t)
{
	if (!t)
		return;
	while (t->conns)
		conn_free(t->conns);
	free(t->ls);
	free(t);
}
