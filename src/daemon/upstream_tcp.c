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
 *
 * A TLS connection (tls:// upstream) runs its session (tls.h) over the same
 * socket: reads land in a ciphertext buffer and are decrypted into the
 * framing buffer; queries are padded and encrypted, and until the handshake
 * has verified the certificate (and the pin) they wait in the connection in
 * clear, unsent. A failed handshake closes the connection, is logged once a
 * minute per upstream, and fails the queries on it. The pool remembers, per
 * upstream, the last session ticket, and a new connection resumes with it.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dnsink/msg.h"
#include "dnsink/pad.h"
#include "log.h"
#include "upstream_doh.h"
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
/** Ciphertext read at once from a TLS connection (a TLS record and its header). */
#define UP_CBUF (16384 + 512)
/** Room a TLS query may take beyond its frame: padding and the record's overhead. */
#define UP_TLS_EXTRA (4 + DK_PAD_QUERY_BLOCK + 64)
/** Upstreams (address, name, pin) whose TLS session tickets the pool keeps. */
#define UP_TLS_HOSTS 64
/** A handshake failure is logged at most this often per upstream. */
#define UP_TLS_LOG_MS 60000

/** What the pool keeps of one tls:// upstream between its connections. */
struct tls_host {
	struct dk_addr addr;
	struct dk_up_opts opts;
	gnutls_datum_t ticket; /**< the last session's resumption data (gnutls_malloc'ed) */
	unsigned quiet;        /**< failures on this worker not logged since the last message */
};

/*
 * When a handshake failure was last logged, for all workers together (ms on
 * the monotonic clock, offset so that 0 means never), by a hash of the
 * upstream: two upstreams sharing a slot share the limit, which only makes
 * the log quieter.
 */
#define UP_TLS_LOG_SLOTS 64
static _Atomic uint64_t tls_logged[UP_TLS_LOG_SLOTS];

/* FNV-1a over what names the upstream. */
static uint32_t host_hash(const struct tls_host *h)
{
	const uint8_t *p = (const uint8_t *)&h->addr.sa;
	uint32_t x = 2166136261u;

	for (socklen_t i = 0; i < h->addr.len; i++)
		x = (x ^ p[i]) * 16777619u;
	for (const char *c = h->opts.name; *c; c++)
		x = (x ^ (uint8_t)*c) * 16777619u;
	return x;
}

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
	struct dk_up_tcp *next_open;   /**< pool's list of open connections */
	struct dk_up_tcp *next_corked; /**< pool's list of TLS connections holding queries */
	bool corked;                   /**< queries wait in the session for the flush */
	size_t clen;                   /**< octets of plaintext corked */
	struct dk_addr addr;           /**< the upstream it is connected to */
	struct tls_host *host;         /**< the tls:// upstream, or NULL: cleartext */
	struct dk_tls_sess tls;        /**< with host: the session */
	struct dk_doh_client *doh;     /**< https:// host, once the handshake chose h2 */
	bool tls_failed;               /**< the handshake failed */
	bool ticket_saved;             /**< this session's ticket is in host */
	uint32_t stat;                 /**< counter slot for TLS events */
	uint64_t idle_since;           /**< loop time inflight became 0 */
	unsigned inflight;             /**< queries attached */
	bool connected;
	bool closing;
	bool writing;  /**< wreq in flight for wbuf[0..wsent) */
	bool draining; /**< a query timed out on it: no new ones, close when empty */
	size_t got;
	size_t wlen;
	size_t wsent;
	size_t plen;
	uint8_t wbuf[UP_WBUF]; /**< framed queries (TLS: records) not yet taken by the kernel */
	uint8_t buf[2 + DK_MSG_MAX]; /**< answers being read (TLS: decrypted) */
	uint8_t pbuf[UP_WBUF];       /**< TLS: framed, padded queries waiting for the handshake */
	uint8_t cbuf[UP_CBUF];       /**< TLS: ciphertext being read */
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
	bool closed;                /**< the pool is shutting down: nothing is kept idle */
	struct dk_tls_creds *creds; /**< for new TLS connections; NULL: none */
	struct tls_host hosts[UP_TLS_HOSTS];
	unsigned n_hosts;
	struct dk_up_tcp *corked; /**< connections to uncork at the next flush */
	unsigned host_next;       /**< the entry reused when the table is full */
};

static void up_tcp_closed(uv_handle_t *h)
{
	struct dk_up_tcp *u = (struct dk_up_tcp *)h;

	/* Here, not at close: a read callback may still be inside the session then. */
	if (u->host)
		dk_tls_sess_deinit(&u->tls);
	dk_doh_client_free(u->doh);
	u->doh = NULL;

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
	if (u->corked) {
		struct dk_up_tcp **pp = &u->pool->corked;
		while (*pp && *pp != u)
			pp = &(*pp)->next_corked;
		if (*pp)
			*pp = u->next_corked;
		u->corked = false;
	}
	if (u->host)
		u->pool->cbs.tls(u->pool->cbs.ctx, u->stat, DK_UP_TLS_CLOSED, 0);
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
	if (u->host) {
		buf->base = (char *)u->cbuf;
		buf->len = sizeof(u->cbuf);
		return;
	}
	buf->base = (char *)u->buf + u->got;
	buf->len = sizeof(u->buf) - u->got;
}

/* Hands every complete frame in u->buf to the owner and keeps the rest. */
static void deliver(struct dk_up_tcp *u)
{
	const struct dk_up_tcp_cbs *cbs = &u->pool->cbs;
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

static void tls_step(struct dk_up_tcp *u);

/* The session's latest ticket goes to its upstream's entry, for the next connection. */
static void tls_save_ticket(struct dk_up_tcp *u)
{
	gnutls_datum_t d;

	if (u->ticket_saved || dk_tls_sess_ticket(&u->tls, &d) < 0)
		return;
	gnutls_free(u->host->ticket.data);
	u->host->ticket = d;
	u->ticket_saved = true;
}

/* Ciphertext arrived on a TLS connection: the handshake goes on, or answers are decrypted. */
static void tls_read(struct dk_up_tcp *u, size_t n)
{
	dk_tls_sess_feed(&u->tls, u->cbuf, n);
	if (!u->tls.ready) {
		tls_step(u);
		if (u->closing || !u->tls.ready)
			return;
	}
	for (;;) {
		ssize_t got = dk_tls_sess_recv(&u->tls, u->buf + u->got, sizeof(u->buf) - u->got);
		if (got == -EAGAIN)
			break;
		if (got <= 0) {
			dk_up_tcp_close(u);
			return;
		}
		if (u->doh) {
			/* HTTP/2: the buffer is only scratch; answers come out of the client. */
			if (dk_doh_client_input(u->doh, u->buf, (size_t)got) < 0)
				dk_up_tcp_close(u);
			if (u->closing)
				return;
			continue;
		}
		u->got += (size_t)got;
		deliver(u);
		if (u->closing)
			return;
	}
	tls_save_ticket(u);
}

static void up_tcp_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
	struct dk_up_tcp *u = (struct dk_up_tcp *)h;

	(void)buf;
	if (nread == 0 || u->closing)
		return;
	if (nread < 0) {
		dk_up_tcp_close(u);
		return;
	}
	if (u->host) {
		tls_read(u, (size_t)nread);
		return;
	}
	u->got += (size_t)nread;
	deliver(u);
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
 * Writes @p a then @p b (either may be empty): straight to the kernel when
 * nothing waits, else (or for the part the kernel did not take) into
 * u->wbuf. Returns 0, or -ENOBUFS when wbuf has no room (dk_up_tcp_get()
 * makes sure it has for a query), or another negative errno.
 */
static int raw_send(struct dk_up_tcp *u, const uint8_t *a, size_t alen, const uint8_t *b,
                    size_t blen)
{
	size_t skip = 0;

	if (u->connected && !u->writing && u->wlen == 0) {
		uv_buf_t v[2] = {
		        uv_buf_init((char *)a, (unsigned)alen),
		        uv_buf_init((char *)b, (unsigned)blen),
		};
		int n = uv_try_write((uv_stream_t *)&u->h, v, 2);
		if (n == (int)(alen + blen))
			return 0;
		if (n < 0 && n != UV_EAGAIN)
			return n;
		skip = n > 0 ? (size_t)n : 0;
	}
	if (u->wlen + alen + blen - skip > UP_WBUF)
		return -ENOBUFS;
	if (skip < alen) {
		memcpy(u->wbuf + u->wlen, a + skip, alen - skip);
		u->wlen += alen - skip;
		skip = alen;
	}
	memcpy(u->wbuf + u->wlen, b + (skip - alen), blen - (skip - alen));
	u->wlen += blen - (skip - alen);
	up_tcp_flush(u);
	return 0;
}

/* The session's ciphertext goes out as cleartext queries do. */
static int tls_push(void *ctx, const uint8_t *data, size_t len)
{
	return raw_send(ctx, data, len, NULL, 0);
}

/* Logs a failed handshake to @p u's upstream, at most once a minute per upstream. */
static void tls_log_fail(struct dk_up_tcp *u)
{
	static const char *const why[DK_TLS_FAIL_MAX] = {
	        [DK_TLS_FAIL_NAME] = "certificate name mismatch",
	        [DK_TLS_FAIL_CA] = "certificate not signed by a trusted CA",
	        [DK_TLS_FAIL_EXPIRED] = "certificate expired or not yet valid",
	        [DK_TLS_FAIL_PIN] = "pin_sha256 mismatch",
	        [DK_TLS_FAIL_PROTOCOL] = "protocol error",
	};
	struct tls_host *host = u->host;
	uint64_t now = dk_mono_ns() / 1000000 + UP_TLS_LOG_MS;
	_Atomic uint64_t *last = &tls_logged[host_hash(host) % UP_TLS_LOG_SLOTS];
	uint64_t was = atomic_load_explicit(last, memory_order_relaxed);
	char addr[64];

	/* Every worker fails the same way: one of them logs, the others count. */
	if ((was && now - was < UP_TLS_LOG_MS) ||
	    !atomic_compare_exchange_strong_explicit(last, &was, now, memory_order_relaxed,
	                                             memory_order_relaxed)) {
		host->quiet++;
		return;
	}
	dk_addr_format(&u->addr, addr, sizeof(addr));
	dk_log(DK_LOG_WARN,
	       "upstream %s://%s%s#%s: TLS handshake failed: %s (%s); no query sent to it%s",
	       host->opts.proto == DK_UP_HTTPS ? "https" : "tls", addr, host->opts.path,
	       host->opts.name, why[u->tls.fail < DK_TLS_FAIL_MAX ? u->tls.fail : 0],
	       gnutls_strerror(u->tls.gnutls_err),
	       host->quiet ? "; more failures since the last message" : "");
	host->quiet = 0;
}

static int doh_send(void *ctx, const uint8_t *data, size_t len)
{
	struct dk_up_tcp *u = ctx;

	return dk_tls_sess_send(&u->tls, data, len);
}

static void doh_answer(void *ctx, uint8_t *ans, size_t len)
{
	struct dk_up_tcp *u = ctx;

	if (!u->closing)
		u->pool->cbs.answer(u->pool->cbs.ctx, u, ans, len);
}

static void doh_failed(void *ctx, uint16_t id, int status)
{
	struct dk_up_tcp *u = ctx;

	(void)status;
	if (!u->closing)
		u->pool->cbs.failed(u->pool->cbs.ctx, u, id);
}

/* The HTTP/2 client of an https:// connection, once ALPN has agreed on h2 (RFC 8484 section 5.2).
 */
static int doh_start(struct dk_up_tcp *u)
{
	const struct dk_up_opts *o = &u->host->opts;
	const struct dk_doh_client_cbs cbs = {
	        .send = doh_send, .answer = doh_answer, .failed = doh_failed, .ctx = u};
	char ip[64];

	if (!dk_tls_sess_alpn_is(&u->tls, "h2"))
		return -EPROTO;
	if (!o->name[0] && dk_addr_format(&u->addr, ip, sizeof(ip)) < 0)
		return -EINVAL;
	return dk_doh_client_new(&cbs, o->name[0] ? o->name : ip, o->path, UP_PIPELINE, &u->doh);
}

/*
 * Drives the handshake of @p u. Once it is done the queries held in pbuf go
 * out encrypted; when it fails the connection closes with them unsent.
 */
static void tls_step(struct dk_up_tcp *u)
{
	const struct dk_up_tcp_cbs *cbs = &u->pool->cbs;
	int rc = dk_tls_sess_handshake(&u->tls);

	if (rc == -EAGAIN)
		return;
	if (rc < 0) {
		u->tls_failed = true;
		cbs->tls(cbs->ctx, u->stat, DK_UP_TLS_FAILED, (int)u->tls.fail);
		tls_log_fail(u);
		dk_up_tcp_close(u);
		return;
	}
	if (u->host->opts.proto == DK_UP_HTTPS && doh_start(u) < 0) {
		u->tls_failed = true;
		u->tls.fail = DK_TLS_FAIL_PROTOCOL;
		u->tls.gnutls_err = GNUTLS_E_NO_APPLICATION_PROTOCOL;
		cbs->tls(cbs->ctx, u->stat, DK_UP_TLS_FAILED, (int)u->tls.fail);
		tls_log_fail(u);
		dk_up_tcp_close(u);
		return;
	}
	cbs->tls(cbs->ctx, u->stat, DK_UP_TLS_HANDSHAKE, 0);
	if (dk_tls_sess_resumed(&u->tls))
		cbs->tls(cbs->ctx, u->stat, DK_UP_TLS_RESUMED, 0);
	tls_save_ticket(u);
	if (u->doh) {
		/* The queries that waited go out as POSTs, one stream each. */
		for (size_t off = 0; off + 2 <= u->plen;) {
			size_t n = (size_t)u->pbuf[off] << 8 | u->pbuf[off + 1];
			if (dk_doh_client_query(u->doh, u->pbuf + off + 2, n) < 0) {
				dk_up_tcp_close(u);
				return;
			}
			off += 2 + n;
		}
		u->plen = 0;
		if (dk_doh_client_flush(u->doh) < 0)
			dk_up_tcp_close(u);
		return;
	}
	if (u->plen && dk_tls_sess_send(&u->tls, u->pbuf, u->plen) < 0) {
		dk_up_tcp_close(u);
		return;
	}
	u->plen = 0;
}

/* Pads and frames @p pkt into @p out (2 + DK_MSG_MAX octets). Returns the frame's length. */
static size_t tls_frame(const uint8_t *pkt, size_t len, uint8_t *out)
{
	int n = dk_pad_query(pkt, len, DK_PAD_QUERY_BLOCK, out + 2, DK_MSG_MAX);

	if (n < 0) {
		/* Not paddable (records we cannot walk): as it is; the upstream judges it. */
		memcpy(out + 2, pkt, len);
		n = (int)len;
	}
	out[0] = (uint8_t)(n >> 8);
	out[1] = (uint8_t)n;
	return 2 + (size_t)n;
}

int dk_up_tcp_send(struct dk_up_tcp *u, const uint8_t *pkt, size_t len)
{
	if (u->host) {
		uint8_t frame[2 + DK_MSG_MAX];
		size_t n = tls_frame(pkt, len, frame);
		if (u->doh) {
			/* Submitted now, sent at the loop's flush with the others (as below). */
			int rc = dk_doh_client_query(u->doh, frame + 2, n - 2);
			if (rc == 0 && !u->corked) {
				u->corked = true;
				u->next_corked = u->pool->corked;
				u->pool->corked = u;
			}
			return rc;
		}
		if (u->tls.ready) {
			/*
			 * Corked until the loop's flush (dk_up_tcp_pool_flush()): the
			 * queries of one loop iteration leave in one TLS record and one
			 * write instead of one each.
			 */
			if (!u->corked) {
				gnutls_record_cork(u->tls.s);
				u->corked = true;
				u->next_corked = u->pool->corked;
				u->pool->corked = u;
			}
			u->clen += n;
			return dk_tls_sess_send(&u->tls, frame, n);
		}
		if (u->plen + n > sizeof(u->pbuf))
			return -ENOBUFS;
		memcpy(u->pbuf + u->plen, frame, n);
		u->plen += n;
		return 0;
	}
	uint8_t pre[2] = {(uint8_t)(len >> 8), (uint8_t)len};
	return raw_send(u, pre, 2, pkt, len);
}

bool dk_up_tcp_tls_failed(const struct dk_up_tcp *u)
{
	return u->tls_failed;
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
	if (u->host) {
		struct tls_host *host = u->host;
		const gnutls_datum_t *t = host->ticket.size ? &host->ticket : NULL;
		static const char *const h2[] = {"h2"};
		if (dk_tls_sess_client(&u->tls, u->pool->creds, &host->opts, t, tls_push, u) < 0 ||
		    (host->opts.proto == DK_UP_HTTPS && dk_tls_sess_alpn(&u->tls, h2, 1) < 0)) {
			dk_up_tcp_close(u);
			return;
		}
		tls_step(u);
		return;
	}
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
 * An open connection to @p addr (over TLS to @p host, when not NULL) with
 * room for @p len more octets. One the sweep is about to close is still good:
 * should the upstream have dropped it, the query goes again on a new one
 * (upstream.c, slot_tcp_lost).
 */
static struct dk_up_tcp *tcp_pick(struct dk_up_tcp_pool *p, const struct dk_addr *addr,
                                  const struct tls_host *host, size_t len)
{
	size_t need = 2 + len + (host ? UP_TLS_EXTRA : 0);

	for (struct dk_up_tcp *u = p->open; u; u = u->next_open)
		if (!u->draining && u->inflight < UP_PIPELINE && u->host == host &&
		    u->wlen + u->clen + need <= UP_WBUF && (!host || u->plen + need <= UP_WBUF) &&
		    dk_sockaddr_equal(&u->addr.sa, &addr->sa))
			return u;
	return NULL;
}

/*
 * The pool's entry for tls:// upstream @p addr with @p o, made on first use
 * (a connection's set-up, not a query's path); when the table is full an
 * old entry is taken over, losing only its ticket.
 */
static struct tls_host *host_get(struct dk_up_tcp_pool *p, const struct dk_addr *addr,
                                 const struct dk_up_opts *o)
{
	struct tls_host *h;

	for (unsigned i = 0; i < p->n_hosts; i++) {
		h = &p->hosts[i];
		if (dk_sockaddr_equal(&h->addr.sa, &addr->sa) && h->opts.has_pin == o->has_pin &&
		    h->opts.proto == o->proto && !strcmp(h->opts.name, o->name) &&
		    !strcmp(h->opts.path, o->path) &&
		    (!o->has_pin || !memcmp(h->opts.pin, o->pin, DK_PIN_LEN)))
			return h;
	}
	if (p->n_hosts < UP_TLS_HOSTS) {
		h = &p->hosts[p->n_hosts++];
	} else {
		h = &p->hosts[p->host_next];
		p->host_next = (p->host_next + 1) % UP_TLS_HOSTS;
		/* Connections still open on it now belong to the new entry: close them. */
		for (struct dk_up_tcp *u = p->open, *next; u; u = next) {
			next = u->next_open;
			if (u->host == h)
				dk_up_tcp_drain(u);
		}
		gnutls_free(h->ticket.data);
	}
	memset(h, 0, sizeof(*h));
	h->addr = *addr;
	h->opts = *o;
	return h;
}

static struct dk_up_tcp *tcp_open(struct dk_up_tcp_pool *p, const struct dk_addr *addr,
                                  struct tls_host *host, uint32_t stat)
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
	u->host = host;
	u->stat = stat;
	u->tls_failed = u->ticket_saved = false;
	memset(&u->tls, 0, sizeof(u->tls));
	u->doh = NULL;
	u->inflight = 0;
	u->connected = u->closing = u->writing = u->draining = false;
	u->got = u->wlen = u->wsent = u->plen = u->clen = 0;
	u->corked = false;
	u->idle_since = uv_now(p->loop);
	if (uv_tcp_init(p->loop, &u->h) < 0) {
		u->next_free = p->free;
		p->free = u;
		return NULL;
	}
	/*
	 * Small writes back to back (a query after the handshake's last flight,
	 * HTTP/2's HEADERS then DATA) must not wait for the peer's delayed ACK.
	 */
	uv_tcp_nodelay(&u->h, 1);
	u->next_open = p->open;
	p->open = u;
	p->n_open++;
	if (host)
		p->cbs.tls(p->cbs.ctx, stat, DK_UP_TLS_OPENED, 0);
	u->creq.data = u;
	if (uv_tcp_connect(&u->creq, &u->h, &addr->sa, up_tcp_connected) < 0) {
		dk_up_tcp_close(u);
		return NULL;
	}
	return u;
}

struct dk_up_tcp *dk_up_tcp_get(struct dk_up_tcp_pool *p, const struct dk_addr *addr,
                                const struct dk_up_opts *opts, uint32_t stat, size_t len)
{
	struct tls_host *host = NULL;

	if (opts && opts->proto != DK_UP_DNS) {
		/* Without credentials there is no way to verify it: never in clear instead. */
		if (!p->creds)
			return NULL;
		host = host_get(p, addr, opts);
	}
	struct dk_up_tcp *u = tcp_pick(p, addr, host, len);
	if (!u)
		u = tcp_open(p, addr, host, stat);
	if (u)
		u->inflight++;
	return u;
}

bool dk_up_tcp_pool_pending(const struct dk_up_tcp_pool *p)
{
	return p->corked != NULL;
}

void dk_up_tcp_pool_flush(struct dk_up_tcp_pool *p)
{
	while (p->corked) {
		struct dk_up_tcp *u = p->corked;
		p->corked = u->next_corked;
		u->corked = false;
		u->clen = 0;
		if (u->doh) {
			/* HTTP/2 frames of every query submitted, in as few records. */
			gnutls_record_cork(u->tls.s);
			if (dk_doh_client_flush(u->doh) < 0) {
				gnutls_record_uncork(u->tls.s, 0);
				dk_up_tcp_close(u);
				continue;
			}
		}
		/* Room for it in wbuf was made sure of query by query (tcp_pick). */
		if (gnutls_record_uncork(u->tls.s, GNUTLS_RECORD_WAIT) < 0)
			dk_up_tcp_close(u);
	}
}

void dk_up_tcp_pool_set_tls(struct dk_up_tcp_pool *p, struct dk_tls_creds *c)
{
	if (c == p->creds)
		return;
	dk_tls_creds_unref(p->creds);
	p->creds = dk_tls_creds_ref(c);
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
	for (unsigned i = 0; i < p->n_hosts; i++)
		gnutls_free(p->hosts[i].ticket.data);
	dk_tls_creds_unref(p->creds);
	free(p);
}
