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
 *
 * A listener opened with dk_tcp_listen_tls() serves DNS over TLS (RFC 7858)
 * on the same connections: reads land in a ciphertext buffer (allocated at
 * accept) and are decrypted into the frame buffer, answers are encrypted on
 * their way to the same output path. The handshake is driven by the reads;
 * until it is done the connection has the handshake timeout instead of the
 * idle one, so a client that opens a connection and stalls holds it only
 * that long. Certificates come with the snapshot (dk_tcp_set_tls()), so a
 * reload that brings a new one applies to the connections accepted after it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dnsink/alert.h"
#include "dnsink/msg.h"
#include "sock.h"
#include "tcp.h"
#include "tls.h"

/** Output held for a client that reads slowly: two largest answers. */
#define WBUF_CAP (2 * (2 + DK_MSG_MAX))
/** Ciphertext read at once from a TLS client: a whole TLS record and its header. */
#define CBUF_CAP (16384 + 512)

struct listener {
	uv_tcp_t h;
	struct dk_tcp *t;
	bool tls; /**< DNS over TLS */
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
	bool is_tls;            /**< accepted on a TLS listener */
	struct dk_tls_sess tls; /**< with is_tls: the session */
	uint8_t *cbuf;          /**< with is_tls: CBUF_CAP octets of ciphertext read */
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
	unsigned handshake_ms;      /**< a TLS client's time to finish its handshake */
	struct dk_tls_creds *creds; /**< certificate for new TLS clients; NULL: none */
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
	if (c->is_tls)
		dk_tls_sess_deinit(&c->tls);
	free(c->cbuf);
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

/*
 * Writes @p a then @p b (either may be empty) to the client: with
 * uv_try_write when nothing waits, the rest into the output buffer. Returns
 * false when the client does not read and the buffer is full (counted), or
 * the connection failed; the caller closes it.
 */
static bool conn_write(struct conn *c, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t skip = 0;

	if (!c->writing && c->wlen == 0) {
		uv_buf_t v[2] = {
		        uv_buf_init((char *)a, (unsigned)alen),
		        uv_buf_init((char *)b, (unsigned)blen),
		};
		int n = uv_try_write((uv_stream_t *)&c->h, v, 2);
		if (n == (int)(alen + blen))
			return true;
		if (n < 0 && n != UV_EAGAIN)
			return false;
		skip = n > 0 ? (size_t)n : 0;
	}
	if (!c->wbuf) {
		c->wbuf = malloc(WBUF_CAP);
		if (!c->wbuf)
			return false;
	}
	if (c->wlen + alen + blen - skip > WBUF_CAP) {
		dk_ctr_inc(&c->t->ctr->slow);
		return false;
	}
	if (skip < alen) {
		memcpy(c->wbuf + c->wlen, a + skip, alen - skip);
		c->wlen += alen - skip;
		skip = alen;
	}
	memcpy(c->wbuf + c->wlen, b + (skip - alen), blen - (skip - alen));
	c->wlen += blen - (skip - alen);
	conn_flush(c);
	return true;
}

/* The session's ciphertext goes out as cleartext answers do. */
static int conn_tls_push(void *ctx, const uint8_t *data, size_t len)
{
	return conn_write(ctx, data, len, NULL, 0) ? 0 : -ENOBUFS;
}

static void conn_reply(const struct dk_client *cl, const uint8_t *ans, size_t len)
{
	struct conn *c = cl->conn;
	uint8_t pre[2] = {(uint8_t)(len >> 8), (uint8_t)len};
	bool ok;

	if (c->closing)
		return;
	if (c->is_tls) {
		/* Corked: the prefix and the answer leave in one TLS record. */
		gnutls_record_cork(c->tls.s);
		ok = dk_tls_sess_send(&c->tls, pre, 2) == 0 &&
		     dk_tls_sess_send(&c->tls, ans, len) == 0 &&
		     gnutls_record_uncork(c->tls.s, GNUTLS_RECORD_WAIT) >= 0;
	} else {
		ok = conn_write(c, pre, 2, ans, len);
	}
	if (!ok)
		conn_close(c);
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;

	(void)suggested;
	if (c->is_tls) {
		buf->base = (char *)c->cbuf;
		buf->len = CBUF_CAP;
		return;
	}
	buf->base = (char *)c->rbuf + c->rlen;
	buf->len = sizeof(c->rbuf) - c->rlen;
}

/* Hands every complete query in c->rbuf to the query module and keeps the rest. */
static void conn_frames(struct conn *c)
{
	struct dk_tcp *t = c->t;
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
		        .ops = &tcp_ops,
		        .conn = c,
		        .peer = c->peer,
		        .transport = c->is_tls ? DK_TRANSPORT_TLS : DK_TRANSPORT_TCP,
		};
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

static void conn_idle(uv_timer_t *t);

/* Ciphertext from a TLS client: the handshake goes on, or queries are decrypted. */
static void conn_tls_read(struct conn *c, size_t n)
{
	struct dk_tcp *t = c->t;

	dk_tls_sess_feed(&c->tls, c->cbuf, n);
	if (!c->tls.ready) {
		int rc = dk_tls_sess_handshake(&c->tls);
		if (rc == -EAGAIN)
			return;
		if (rc < 0) {
			dk_ctr_inc(&t->ctr->tls_failed);
			conn_close(c);
			return;
		}
		dk_ctr_inc(&t->ctr->tls_handshakes);
		if (dk_tls_sess_resumed(&c->tls))
			dk_ctr_inc(&t->ctr->tls_resumed);
		/* From now on the idle period applies, as to a cleartext client. */
		uv_timer_start(&c->idle, conn_idle, t->idle_ms, t->idle_ms);
	}
	while (!c->closing) {
		ssize_t got =
		        dk_tls_sess_recv(&c->tls, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen);
		if (got == -EAGAIN)
			return;
		if (got <= 0) {
			/* close_notify or a broken record: answers in flight are discarded. */
			conn_close(c);
			return;
		}
		c->rlen += (size_t)got;
		conn_frames(c);
	}
}

static void conn_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = h->data;

	(void)buf;
	if (nread < 0) {
		/* EOF or reset: answers still in flight are discarded. */
		conn_close(c);
		return;
	}
	if (nread == 0)
		return;
	if (c->is_tls) {
		conn_tls_read(c, (size_t)nread);
		return;
	}
	c->rlen += (size_t)nread;
	conn_frames(c);
}

static void conn_idle(uv_timer_t *t)
{
	struct conn *c = t->data;

	if (c->is_tls && !c->tls.ready) {
		/* A handshake that did not finish in time (a stalled or slow client). */
		dk_ctr_inc(&c->t->ctr->tls_timeouts);
		conn_close(c);
		return;
	}
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
	if (t->n_conns >= t->max_clients || t->stopping || (l->tls && !t->creds)) {
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
	if (l->tls) {
		c->cbuf = malloc(CBUF_CAP);
		if (!c->cbuf || dk_tls_sess_server(&c->tls, t->creds, conn_tls_push, c) < 0) {
			conn_close(c);
			return;
		}
		c->is_tls = true;
		uv_timer_start(&c->idle, conn_idle, t->handshake_ms, t->idle_ms);
	} else {
		uv_timer_start(&c->idle, conn_idle, t->idle_ms, t->idle_ms);
	}
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

static int listen_on(struct dk_tcp *t, const struct dk_addr *a, bool tls)
{
	if (t->n_ls == t->cap_ls)
		return -ENOSPC;
	struct listener *l = &t->ls[t->n_ls];
	l->tls = tls;
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

int dk_tcp_listen(struct dk_tcp *t, const struct dk_addr *a)
{
	return listen_on(t, a, false);
}

int dk_tcp_listen_tls(struct dk_tcp *t, const struct dk_addr *a)
{
	return listen_on(t, a, true);
}

void dk_tcp_set_tls(struct dk_tcp *t, struct dk_tls_creds *creds, unsigned handshake_ms)
{
	t->handshake_ms = handshake_ms;
	if (creds == t->creds)
		return;
	dk_tls_creds_unref(t->creds);
	t->creds = dk_tls_creds_ref(creds);
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
	dk_tls_creds_unref(t->creds);
	free(t->ls);
	free(t);
}
