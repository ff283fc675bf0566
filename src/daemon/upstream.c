/* SPDX-License-Identifier: MIT */
/*
 * Forwarding: a worker's fixed table of pending slots, upstream IDs and
 * source ports that an off-path attacker cannot guess, per-try timeouts,
 * failover along the configured upstreams, and TCP (for TCP clients and for
 * truncated UDP answers).
 *
 * IDs come from a buffer of getrandom() bytes refilled in bulk, and an
 * id→slot table makes them unique per worker and finds an answer's slot in
 * one lookup. Queries leave from one of several unconnected UDP sockets bound
 * to kernel-chosen ephemeral ports, picked at random per query. An answer is
 * taken only from the exact upstream address and port, with the expected ID
 * and the same question; everything else is counted and dropped. An answer
 * that passes those checks but whose records do not parse fails the try.
 *
 * Over TCP, queries are pipelined on a few connections per upstream and
 * answers matched by ID in any order; idle connections stay open a while.
 *
 * Before an answer goes to the client, the targets of its CNAME and DNAME
 * records are matched against the policy too (CNAME cloaking): a blocked
 * target turns the answer into the rule's local answer for the question
 * asked, an alert rule lets it pass with a record naming both names.
 */
#include <errno.h>
#include <time.h> /* before linux/errqueue.h, which uses struct timespec */
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "dnsink/name.h"
#include "log.h"
#include "server_internal.h"

/** Answer records looked at for CNAME/DNAME targets; real chains are far shorter. */
#define UP_CHAIN_RRS 64
#define RR_CNAME     5
#define RR_DNAME     39

/** Queries in flight on one upstream TCP connection (RFC 7766 pipelining). */
#define UP_PIPELINE 32
/** Open upstream TCP connections kept per worker once they have nothing in flight. */
#define UP_IDLE_MAX 16
/** An idle connection older than this is closed rather than reused. */
#define UP_IDLE_MS 5000
/** Queries waiting to be written on one connection. */
#define UP_WBUF 16384

/**
 * A TCP connection to an upstream. Several queries ride it at once and the
 * answers, in any order, find their slot by ID. Once idle it stays open a
 * while for the next queries, which saves a handshake and a TIME_WAIT socket
 * per query. Objects are pooled and freed only at teardown.
 */
struct dk_up_tcp {
	uv_tcp_t h;
	uv_connect_t creq;
	uv_write_t wreq;
	struct dk_worker *w;
	struct dk_up_tcp *next_free;
	struct dk_up_tcp *next_all;
	struct dk_up_tcp *next_open; /**< worker's list of open connections */
	struct dk_addr addr;         /**< the upstream it is connected to */
	uint64_t idle_since;         /**< loop time inflight became 0 */
	unsigned inflight;           /**< slots attached */
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

static void slot_try(struct dk_slot *s);

static void rnd_refill(struct dk_upstream *up)
{
	size_t got = 0;

	/* Bounded: getrandom() on the urandom pool fails only when interrupted. */
	for (int i = 0; i < 8 && got < sizeof(up->rnd); i++) {
		ssize_t n = getrandom(up->rnd + got, sizeof(up->rnd) - got, 0);
		if (n > 0)
			got += (size_t)n;
	}
	if (got < sizeof(up->rnd))
		dk_log(DK_LOG_ERR, "getrandom() failed: %s", strerror(errno));
	up->rnd_pos = 0;
}

static uint16_t rnd16(struct dk_upstream *up)
{
	if (up->rnd_pos + 2 > sizeof(up->rnd))
		rnd_refill(up);
	uint16_t v = (uint16_t)(up->rnd[up->rnd_pos] << 8 | up->rnd[up->rnd_pos + 1]);
	up->rnd_pos += 2;
	return v;
}

static void id_assign(struct dk_upstream *up, struct dk_slot *s)
{
	uint16_t id = rnd16(up);

	/*
	 * The table is at most half full (max_inflight <= 32768), so a few
	 * draws find a free ID; the scan only guards against a bad generator.
	 */
	for (int i = 0; i < 16 && up->id2slot[id]; i++)
		id = rnd16(up);
	while (up->id2slot[id])
		id++;
	s->id = id;
	up->id2slot[id] = (uint16_t)(s - up->slots + 1);
}

static void id_release(struct dk_upstream *up, struct dk_slot *s)
{
	if (up->id2slot[s->id] == (uint16_t)(s - up->slots + 1))
		up->id2slot[s->id] = 0;
}

static bool addr_equal(const struct dk_addr *a, const struct sockaddr *sa)
{
	if (a->sa.sa_family != sa->sa_family)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *b = (const struct sockaddr_in *)sa;
		return a->in4.sin_port == b->sin_port &&
		       a->in4.sin_addr.s_addr == b->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)sa;
	return a->in6.sin6_port == b->sin6_port &&
	       memcmp(&a->in6.sin6_addr, &b->sin6_addr, sizeof(b->sin6_addr)) == 0;
}

/* TCP to the upstream. */

static void up_tcp_closed(uv_handle_t *h)
{
	struct dk_up_tcp *u = (struct dk_up_tcp *)h;
	struct dk_upstream *up = &u->w->up;

	u->next_free = up->tcp_free;
	up->tcp_free = u;
}

static void slot_tcp_lost(struct dk_slot *s);

/* Closes @p u; the queries still on it are tried again elsewhere. */
static void up_tcp_close(struct dk_up_tcp *u)
{
	struct dk_upstream *up = &u->w->up;

	if (u->closing)
		return;
	u->closing = true;
	for (struct dk_up_tcp **p = &up->tcp_open; *p; p = &(*p)->next_open) {
		if (*p == u) {
			*p = u->next_open;
			up->n_tcp_open--;
			break;
		}
	}
	/* Closing cancels the connect and write requests; their callbacks see u->closing. */
	uv_close((uv_handle_t *)&u->h, up_tcp_closed);
	/* Rare (a reset, or the upstream closing under load): a scan of the table is fine. */
	for (size_t i = 0; u->inflight && i < up->n_slots; i++) {
		struct dk_slot *s = &up->slots[i];
		if (s->busy && s->utcp == u)
			slot_tcp_lost(s);
	}
}

static void tcp_detach(struct dk_slot *s)
{
	struct dk_up_tcp *u = s->utcp;

	if (!u)
		return;
	s->utcp = NULL;
	if (--u->inflight > 0 || u->closing)
		return;
	u->idle_since = uv_now(&u->w->loop);
	if (u->draining || u->w->finished || u->w->up.n_tcp_open > UP_IDLE_MAX)
		up_tcp_close(u);
}

static void slot_release(struct dk_slot *s)
{
	struct dk_worker *w = s->w;
	struct dk_upstream *up = &w->up;
	struct dk_client cl = s->cl;

	uv_timer_stop(&s->timer);
	tcp_detach(s);
	id_release(up, s);
	s->busy = false;
	s->next_free = up->free;
	up->free = s;
	up->busy--;
	dk__client_done(w, &cl);
	if (w->stopping && up->busy == 0)
		dk__worker_idle(w);
}

/* Every upstream failed: the client gets SERVFAIL. */
static void slot_fail(struct dk_slot *s)
{
	s->w->ctr.out[s->cl.transport][DK_OUT_SERVFAIL]++;
	dk_msg_set_id(s->pkt, s->q.id);
	dk__client_error(s->w, &s->cl, s->pkt, &s->q, 2 /* SERVFAIL */, 0);
	slot_release(s);
}

/** A rule that matched a CNAME/DNAME target of an answer. */
struct chain_hit {
	struct dk_verdict v;
	size_t target_len;
	uint8_t target[DK_NAME_MAX];
};

/*
 * Walks the answer section of @p ans for CNAME and DNAME records and matches
 * their targets against @p pol. The first target a blocking rule matches wins;
 * else the first an alert rule matches. Targets an allow rule matches are
 * exempt. Stops at the first malformed record: what comes after cannot be
 * located, and the client gets the answer as the upstream sent it.
 */
static bool chain_scan(const struct dk_policy *pol, const uint8_t *ans, size_t len,
                       struct chain_hit *hit)
{
	unsigned an = (unsigned)ans[6] << 8 | ans[7];
	size_t off = DK_HEADER_LEN;
	bool found = false;

	if (dk_name_from_wire_compressed(ans, len, &off, NULL, NULL) < 0 || len - off < 4)
		return false;
	off += 4;
	for (unsigned i = 0; i < an && i < UP_CHAIN_RRS; i++) {
		if (dk_name_from_wire_compressed(ans, len, &off, NULL, NULL) < 0 || len - off < 10)
			break;
		unsigned type = (unsigned)ans[off] << 8 | ans[off + 1];
		size_t rdlen = (size_t)ans[off + 8] << 8 | ans[off + 9];
		off += 10;
		if (len - off < rdlen)
			break;
		size_t end = off + rdlen;
		if (type == RR_CNAME || type == RR_DNAME) {
			uint8_t name[DK_NAME_MAX];
			size_t nlen, p = off;
			struct dk_verdict v;
			/* The target must lie within the rdata; pointers only reach back. */
			if (dk_name_from_wire_compressed(ans, end, &p, name, &nlen) == 0 &&
			    dk_policy_match(pol, name, nlen, &v) &&
			    v.rule->action != DK_ACTION_ALLOW) {
				bool blocks = v.rule->action != DK_ACTION_ALERT;
				if (!found || blocks) {
					hit->v = v;
					hit->target_len = nlen;
					memcpy(hit->target, name, nlen);
					found = true;
				}
				if (blocks)
					break;
			}
		}
		off = end;
	}
	return found;
}

/*
 * Applies the policy to the CNAME/DNAME targets of answer @p ans. Returns
 * true when the client was answered locally instead (or the answer dropped).
 */
static bool slot_chain_check(struct dk_slot *s, const uint8_t *ans, size_t len)
{
	struct dk_worker *w = s->w;
	const struct dk_snapshot *snap = w->snap;
	struct chain_hit hit;
	struct dk_verdict qv;

	if (!snap->pol || (ans[6] == 0 && ans[7] == 0) || !chain_scan(snap->pol, ans, len, &hit))
		return false;
	/* An allow exception on the name asked covers its whole answer. */
	if (dk_policy_match(snap->pol, s->q.qname, s->q.qname_len, &qv) &&
	    qv.rule->action == DK_ACTION_ALLOW)
		return false;

	const struct dk_rule *r = hit.v.rule;
	uint8_t rcode = ans[3] & 0x0f;
	int n = 0;
	bool pass = false;
	dk_msg_set_id(s->pkt, s->q.id);
	switch (r->action) {
	case DK_ACTION_SINKHOLE:
		rcode = 0;
		n = dk_msg_write_sinkhole(s->pkt, &s->q, &snap->cfg->sinkhole, DK_EDE_BLOCKED,
		                          w->txbuf, DK_LOCAL_MAX);
		break;
	case DK_ACTION_NXDOMAIN:
		rcode = 3;
		n = dk_msg_write_error(s->pkt, &s->q, rcode, DK_EDE_BLOCKED, w->txbuf,
		                       DK_LOCAL_MAX);
		break;
	case DK_ACTION_REFUSED:
		rcode = 5;
		n = dk_msg_write_error(s->pkt, &s->q, rcode, DK_EDE_BLOCKED, w->txbuf,
		                       DK_LOCAL_MAX);
		break;
	case DK_ACTION_ALERT:
	case DK_ACTION_ALLOW: pass = true; break;
	}
	dk__rule_hit(w, r->index);
	if (r->alert)
		dk__worker_alert(w, &s->cl, &s->q, &hit.v, rcode, hit.target, hit.target_len);
	if (pass) {
		w->ctr.cname_alerted++;
		return false;
	}
	w->ctr.cname_blocked++;
	if (n > 0)
		dk__client_reply(w, &s->cl, w->txbuf, (size_t)n);
	else
		w->ctr.out[s->cl.transport][DK_OUT_DROPPED]++;
	return true;
}

/* Counts an answer accepted from the current try's upstream, with its latency. */
static void up_answered(struct dk_slot *s)
{
	struct dk_up_stats *us = dk__up_stats(s->w, s->up_stat);
	uint64_t us_taken = (uv_hrtime() - s->sent_ns) / 1000;
	unsigned b = 0;

	if (!us)
		return;
	while (b < DK_LAT_BUCKETS - 1 && us_taken > dk__lat_bounds_us[b])
		b++;
	us->answers++;
	us->lat[b]++;
	us->lat_sum_us += us_taken;
}

/* Counts a failed send or connection to the current try's upstream. */
static void up_error(struct dk_slot *s)
{
	struct dk_up_stats *us = dk__up_stats(s->w, s->up_stat);

	s->w->ctr.up_errors++;
	if (us)
		us->errors++;
}

static void slot_deliver(struct dk_slot *s, uint8_t *ans, size_t len)
{
	struct dk_worker *w = s->w;
	size_t max =
	        s->cl.transport == DK_TRANSPORT_UDP ? dk_msg_client_udp_max(&s->q) : DK_MSG_MAX;

	w->ctr.answers++;
	up_answered(s);
	if (slot_chain_check(s, ans, len)) {
		slot_release(s);
		return;
	}
	dk_msg_set_id(s->pkt, s->q.id);
	len = dk_msg_answer_for_client(ans, len, s->pkt, &s->q, max);
	dk_msg_set_id(ans, s->q.id);
	dk__client_reply(w, &s->cl, ans, len);
	slot_release(s);
}

/* The current try failed: the next upstream, over the client's transport. */
static void slot_next(struct dk_slot *s)
{
	uv_timer_stop(&s->timer);
	tcp_detach(s);
	id_release(&s->w->up, s);
	s->up_index++;
	s->tcp = s->cl.transport == DK_TRANSPORT_TCP;
	s->tcp_retried = false;
	slot_try(s);
}

static int tcp_start(struct dk_slot *s);

/*
 * An answer with our ID and question whose records cannot be walked (cut
 * short, counts that lie, octets after the last record) cannot go to the
 * client: the try failed, and the next upstream gets the query at once rather
 * than at the timeout. Truncated (TC) answers may end anywhere and are
 * exempt. Returns true when @p s moved on.
 */
static bool slot_malformed(struct dk_slot *s, const uint8_t *ans, size_t len)
{
	if (dk_msg_check_answer_body(ans, len) == 0)
		return false;
	s->w->ctr.malformed++;
	slot_next(s);
	return true;
}

/*
 * The connection carrying @p s broke. A connection that sat idle may have
 * been closed by the upstream just as we wrote: once per upstream the query
 * goes again on another connection before it counts as a failed try.
 */
static void slot_tcp_lost(struct dk_slot *s)
{
	tcp_detach(s);
	if (!s->tcp_retried) {
		s->tcp_retried = true;
		if (tcp_start(s) == 0)
			return;
	}
	up_error(s);
	slot_next(s);
}

static void up_tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct dk_up_tcp *u = (struct dk_up_tcp *)h;

	(void)suggested;
	buf->base = (char *)u->buf + u->got;
	buf->len = sizeof(u->buf) - u->got;
}

/* One framed answer read on @p u: its slot is found by ID, like over UDP. */
static void up_tcp_answer(struct dk_up_tcp *u, uint8_t *ans, size_t len)
{
	struct dk_upstream *up = &u->w->up;

	if (len < DK_HEADER_LEN) {
		u->w->ctr.mismatched++;
		return;
	}
	uint16_t idx = up->id2slot[(uint16_t)(ans[0] << 8 | ans[1])];
	struct dk_slot *s = idx ? &up->slots[idx - 1] : NULL;
	/* A late answer for a query that moved on is no reason to drop the connection. */
	if (!s || s->utcp != u || dk_msg_check_answer(ans, len, s->id, &s->q) != 0) {
		u->w->ctr.mismatched++;
		return;
	}
	if (slot_malformed(s, ans, len))
		return;
	slot_deliver(s, ans, len);
}

static void up_tcp_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
	struct dk_up_tcp *u = (struct dk_up_tcp *)h;

	(void)buf;
	if (nread == 0 || u->closing)
		return;
	if (nread < 0) {
		up_tcp_close(u);
		return;
	}
	u->got += (size_t)nread;
	size_t off = 0;
	while (!u->closing && u->got - off >= 2) {
		size_t len = (size_t)u->buf[off] << 8 | u->buf[off + 1];
		if (u->got - off < 2 + len)
			break;
		up_tcp_answer(u, u->buf + off + 2, len);
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
		up_tcp_close(u);
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
		up_tcp_close(u);
		return;
	}
	u->writing = true;
}

/*
 * Frames @p s's query onto @p u: straight to the kernel when nothing waits,
 * else (or for the part the kernel did not take) into u->wbuf, which the
 * caller made sure has room. The slot's buffer is never referenced after.
 */
static int up_tcp_send(struct dk_up_tcp *u, struct dk_slot *s)
{
	uint8_t pre[2] = {(uint8_t)(s->len >> 8), (uint8_t)s->len};
	size_t skip = 0;

	if (u->connected && !u->writing && u->wlen == 0) {
		uv_buf_t b[2] = {
		        uv_buf_init((char *)pre, 2),
		        uv_buf_init((char *)s->pkt, s->len),
		};
		int n = uv_try_write((uv_stream_t *)&u->h, b, 2);
		if (n == 2 + s->len)
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
	memcpy(u->wbuf + u->wlen, s->pkt + (skip - 2), s->len - (skip - 2));
	u->wlen += s->len - (skip - 2);
	up_tcp_flush(u);
	return 0;
}

static void up_tcp_connected(uv_connect_t *req, int status)
{
	struct dk_up_tcp *u = req->data;

	if (u->closing)
		return;
	if (status < 0 || uv_read_start((uv_stream_t *)&u->h, up_tcp_alloc, up_tcp_read) < 0) {
		up_tcp_close(u);
		return;
	}
	u->connected = true;
	up_tcp_flush(u);
}

/*
 * An open connection to @p s's upstream with room for one more query;
 * idle ones gone stale on the way are closed.
 */
static struct dk_up_tcp *tcp_pick(struct dk_worker *w, const struct dk_slot *s)
{
	struct dk_upstream *up = &w->up;
	uint64_t now = uv_now(&w->loop);
	struct dk_up_tcp *u = up->tcp_open;

	while (u) {
		struct dk_up_tcp *next = u->next_open;
		if (u->inflight == 0 && now - u->idle_since > UP_IDLE_MS)
			up_tcp_close(u);
		else if (!u->draining && u->inflight < UP_PIPELINE &&
		         u->wlen + 2 + s->len <= UP_WBUF && addr_equal(&u->addr, &s->up_addr.sa))
			return u;
		u = next;
	}
	return NULL;
}

static struct dk_up_tcp *tcp_open(struct dk_worker *w, const struct dk_addr *addr)
{
	struct dk_upstream *up = &w->up;
	struct dk_up_tcp *u = up->tcp_free;

	if (u) {
		up->tcp_free = u->next_free;
	} else {
		/* Grows to the most connections ever open at once, then reused. */
		u = malloc(sizeof(*u));
		if (!u)
			return NULL;
		u->w = w;
		u->next_all = up->tcp_all;
		up->tcp_all = u;
	}
	u->addr = *addr;
	u->inflight = 0;
	u->connected = u->closing = u->writing = u->draining = false;
	u->got = u->wlen = u->wsent = 0;
	u->idle_since = uv_now(&w->loop);
	if (uv_tcp_init(&w->loop, &u->h) < 0) {
		u->next_free = up->tcp_free;
		up->tcp_free = u;
		return NULL;
	}
	u->next_open = up->tcp_open;
	up->tcp_open = u;
	up->n_tcp_open++;
	u->creq.data = u;
	if (uv_tcp_connect(&u->creq, &u->h, &addr->sa, up_tcp_connected) < 0) {
		up_tcp_close(u);
		return NULL;
	}
	return u;
}

static int tcp_start(struct dk_slot *s)
{
	struct dk_worker *w = s->w;
	struct dk_up_tcp *u = tcp_pick(w, s);

	if (!u)
		u = tcp_open(w, &s->up_addr);
	if (!u)
		return -ECONNREFUSED;
	s->utcp = u;
	u->inflight++;
	int rc = up_tcp_send(u, s);
	if (rc < 0) {
		/* This query fails here and now; the others on @p u go elsewhere. */
		s->utcp = NULL;
		u->inflight--;
		up_tcp_close(u);
	}
	return rc;
}

/* UDP to the upstream. */

/*
 * ICMP errors (port or host unreachable) for our queries, read from the
 * socket's error queue (IP_RECVERR): each names the upstream the datagram
 * went to and quotes our query, so the try it belongs to fails now and the
 * next upstream gets the query without waiting for the timeout. Only an
 * unreachable error counts (not a PMTU or TTL message), and only when the
 * quoted octets are those of the try's own query with its current ID: a
 * stale or forged error cannot end another try.
 */
static void up_udp_errors(struct dk_worker *w, uv_udp_t *h, bool *pending)
{
	struct dk_upstream *up = &w->up;
	uv_os_fd_t fd;

	if (uv_fileno((uv_handle_t *)h, &fd) < 0)
		return;
	/* Bounded per call; what is left keeps EPOLLERR up and brings us back. */
	for (int i = 0; i < 64; i++) {
		struct dk_addr to = {0};
		uint8_t quote[DK_QUERY_MAX];
		char ctl[512];
		struct iovec iov = {.iov_base = quote, .iov_len = sizeof(quote)};
		struct msghdr mh = {
		        .msg_name = &to.sa,
		        .msg_namelen = sizeof(to.in6),
		        .msg_iov = &iov,
		        .msg_iovlen = 1,
		        .msg_control = ctl,
		        .msg_controllen = sizeof(ctl),
		};
		ssize_t n = recvmsg(fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				*pending = false;
			return;
		}
		bool unreachable = false;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) ||
			    (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR)) {
				const struct sock_extended_err *ee = (const void *)CMSG_DATA(c);
				unreachable =
				        (ee->ee_origin == SO_EE_ORIGIN_ICMP ||
				         ee->ee_origin == SO_EE_ORIGIN_ICMP6) &&
				        (ee->ee_errno == ECONNREFUSED ||
				         ee->ee_errno == EHOSTUNREACH ||
				         ee->ee_errno == ENETUNREACH || ee->ee_errno == EACCES);
			}
		}
		if (!unreachable || n < DK_HEADER_LEN)
			continue;
		uint16_t idx = up->id2slot[(uint16_t)(quote[0] << 8 | quote[1])];
		if (!idx)
			continue;
		struct dk_slot *s = &up->slots[idx - 1];
		size_t cmp = (size_t)n < s->len ? (size_t)n : s->len;
		if (!s->busy || s->tcp || !addr_equal(&s->up_addr, &to.sa) ||
		    memcmp(quote, s->pkt, cmp) != 0)
			continue;
		up_error(s);
		slot_next(s);
		/* The last query ending during shutdown may have closed this socket. */
		if (w->finished || uv_is_closing((uv_handle_t *)h))
			return;
	}
}

/* The error-queue flag of upstream socket @p h. */
static bool *errq_of(struct dk_upstream *up, const uv_udp_t *h)
{
	int fam = h >= &up->socks[1][0];
	return &up->errq[fam][h - &up->socks[fam][0]];
}

static void up_udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags)
{
	struct dk_worker *w = h->data;
	struct dk_upstream *up = &w->up;
	uint8_t *ans = (uint8_t *)buf->base;

	(void)flags;
	if (nread <= 0 || !addr) {
		/*
		 * With IP_RECVERR an ICMP error surfaces here as ECONNREFUSED and
		 * co., or, once a send took that error, as a wake-up with nothing
		 * to read (EPOLLERR stays up while the error queue is not empty).
		 */
		bool *pending = errq_of(up, h);
		if (nread < 0)
			*pending = true;
		if (*pending)
			up_udp_errors(w, h, pending);
		return;
	}
	if (nread < DK_HEADER_LEN) {
		w->ctr.mismatched++;
		return;
	}
	uint16_t id = (uint16_t)(ans[0] << 8 | ans[1]);
	uint16_t idx = up->id2slot[id];
	if (!idx) {
		w->ctr.mismatched++;
		return;
	}
	struct dk_slot *s = &up->slots[idx - 1];
	if (s->tcp || !addr_equal(&s->up_addr, addr) ||
	    dk_msg_check_answer(ans, (size_t)nread, s->id, &s->q) != 0) {
		w->ctr.mismatched++;
		return;
	}
	if (ans[2] & 0x02) {
		/* Truncated: the same upstream, over TCP, with a fresh ID. */
		w->ctr.tc_retries++;
		uv_timer_stop(&s->timer);
		id_release(up, s);
		s->tcp = true;
		s->tcp_retried = false;
		slot_try(s);
		return;
	}
	if (slot_malformed(s, ans, (size_t)nread))
		return;
	slot_deliver(s, ans, (size_t)nread);
}

static bool send_refused(int err)
{
	return err == ECONNREFUSED || err == EHOSTUNREACH || err == ENETUNREACH || err == EHOSTDOWN;
}

/*
 * Sends the datagrams of tries @p q[0..n) with sendmmsg on socket @p pick of
 * family @p fam. Returns how many went out from the first on; when fewer than
 * @p n, @p *err is the error of the first that did not (-EAGAIN: none of the
 * rest can go now). IP_RECVERR makes an ICMP error for an earlier datagram
 * fail the next send too, with nothing sent: such a send is retried once. Any
 * error, and a partial send (whose error sendmmsg does not report), marks the
 * socket's error queue for reading, since an ICMP error may wait there with
 * EPOLLERR up, waking the loop until it is read.
 */
static unsigned send_tries(struct dk_upstream *up, int fam, unsigned pick, struct dk_slot **q,
                           unsigned n, int *err)
{
	struct mmsghdr mh[DK_UP_BATCH];
	struct iovec iov[DK_UP_BATCH];
	uv_os_fd_t fd;
	unsigned k = 0;
	bool retried = false;

	if (uv_fileno((uv_handle_t *)&up->socks[fam][pick], &fd) < 0) {
		*err = -EBADF;
		return 0;
	}
	memset(mh, 0, sizeof(mh[0]) * n);
	for (unsigned i = 0; i < n; i++) {
		iov[i].iov_base = q[i]->pkt;
		iov[i].iov_len = q[i]->len;
		mh[i].msg_hdr.msg_name = &q[i]->up_addr.sa;
		mh[i].msg_hdr.msg_namelen = q[i]->up_addr.len;
		mh[i].msg_hdr.msg_iov = &iov[i];
		mh[i].msg_hdr.msg_iovlen = 1;
	}
	while (k < n) {
		int r = sendmmsg(fd, mh + k, n - k, MSG_DONTWAIT);
		if (r > 0) {
			if ((unsigned)r < n - k)
				up->errq[fam][pick] = true;
			k += (unsigned)r;
			retried = false;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			*err = -EAGAIN;
			return k;
		}
		*err = r < 0 ? -errno : -EIO;
		up->errq[fam][pick] = true;
		if (r < 0 && send_refused(errno) && !retried) {
			retried = true;
			continue;
		}
		return k;
	}
	return k;
}

/*
 * Queues the try's datagram for dk__upstream_flush(), which the loop runs
 * before it next waits; a full queue sends at once. Returns 0 or a negative
 * code (the try failed now).
 */
static int udp_send(struct dk_slot *s)
{
	struct dk_upstream *up = &s->w->up;
	int fam = s->up_addr.sa.sa_family == AF_INET6;
	int err = 0;

	if (!up->socks_ok[fam])
		return -EAFNOSUPPORT;
	if (up->n_out < DK_UP_BATCH) {
		up->out[up->n_out].s = s;
		up->out[up->n_out].id = s->id;
		up->n_out++;
		return 0;
	}
	unsigned pick = (unsigned)(rnd16(up) % up->n_socks[fam]);
	return send_tries(up, fam, pick, &s, 1, &err) == 1 ? 0 : err;
}

/* Sends the @p n queued tries @p q, all of family @p fam, on one random socket. */
static void flush_family(struct dk_worker *w, int fam, struct dk_slot **q, unsigned n)
{
	struct dk_upstream *up = &w->up;
	unsigned pick = (unsigned)(rnd16(up) % up->n_socks[fam]);
	unsigned k = 0;

	while (k < n) {
		int err = 0;
		k += send_tries(up, fam, pick, q + k, n - k, &err);
		/* The try at k did not go out (none of the rest, for EAGAIN): fail over. */
		unsigned upto = err == -EAGAIN ? n : k + 1;
		for (; k < upto && k < n; k++) {
			up_error(q[k]);
			slot_next(q[k]);
		}
	}
}

void dk__upstream_flush(struct dk_worker *w)
{
	struct dk_upstream *up = &w->up;

	/* A failed try queues its next one: go on until none is left (bounded by the upstreams). */
	while (up->n_out) {
		struct dk_slot *q[2][DK_UP_BATCH];
		unsigned n[2] = {0, 0};

		for (unsigned i = 0; i < up->n_out; i++) {
			struct dk_slot *s = up->out[i].s;
			/* Skip a try that ended or moved on since it was queued. */
			if (!s->busy || s->tcp || s->id != up->out[i].id)
				continue;
			int fam = s->up_addr.sa.sa_family == AF_INET6;
			q[fam][n[fam]++] = s;
		}
		up->n_out = 0;
		for (int fam = 0; fam < 2; fam++)
			if (n[fam])
				flush_family(w, fam, q[fam], n[fam]);
	}
}

static void slot_timeout(uv_timer_t *t)
{
	struct dk_slot *s = t->data;
	unsigned i = s->up_index < DK_UP_COUNTED ? s->up_index : DK_UP_COUNTED - 1;
	struct dk_up_stats *us = dk__up_stats(s->w, s->up_stat);

	s->w->ctr.timeouts[i]++;
	if (us)
		us->timeouts++;
	/* A connection that let a query time out may be stuck: nothing new goes on it. */
	if (s->utcp)
		s->utcp->draining = true;
	slot_next(s);
}

/* Sends the current try; moves along the upstreams while sending fails. */
static void slot_try(struct dk_slot *s)
{
	struct dk_worker *w = s->w;
	const struct dk_config *cfg = w->snap->cfg;
	const uint32_t *up_slot = w->snap->up_slot;

	while (s->up_index < cfg->n_upstreams) {
		s->up_addr = cfg->upstreams[s->up_index];
		s->up_stat = up_slot ? up_slot[s->up_index] : UINT32_MAX;
		s->sent_ns = uv_hrtime();
		id_assign(&w->up, s);
		dk_msg_set_id(s->pkt, s->id);
		int rc = s->tcp ? tcp_start(s) : udp_send(s);
		if (rc == 0) {
			unsigned ms = cfg->upstream_timeout_ms ? cfg->upstream_timeout_ms : 1500;
			struct dk_up_stats *us = dk__up_stats(w, s->up_stat);
			if (us)
				us->tries++;
			uv_timer_start(&s->timer, slot_timeout, ms, 0);
			return;
		}
		up_error(s);
		id_release(&w->up, s);
		s->up_index++;
		s->tcp = s->cl.transport == DK_TRANSPORT_TCP;
		s->tcp_retried = false;
	}
	slot_fail(s);
}

int dk__upstream_forward(struct dk_worker *w, const struct dk_client *cl, const uint8_t *pkt,
                         size_t len, const struct dk_query *q)
{
	struct dk_upstream *up = &w->up;

	if (len > DK_QUERY_MAX)
		return DK_ESPACE;
	struct dk_slot *s = up->free;
	if (!s) {
		w->ctr.pending_full++;
		return DK_EFULL;
	}
	up->free = s->next_free;
	up->busy++;
	s->busy = true;
	s->cl = *cl;
	s->q = *q;
	s->len = (uint16_t)len;
	memcpy(s->pkt, pkt, len);
	s->up_index = 0;
	s->tcp = cl->transport == DK_TRANSPORT_TCP;
	s->utcp = NULL;
	s->tcp_retried = false;
	w->ctr.out[cl->transport][DK_OUT_FORWARDED]++;
	slot_try(s);
	return 0;
}

size_t dk__upstream_inflight(const struct dk_worker *w)
{
	return w->up.busy;
}

/* Asks the kernel to queue ICMP errors on @p h (see up_udp_errors()). */
static int recv_errors(uv_udp_t *h, int fam)
{
	uv_os_fd_t fd;
	int on = 1;

	if (uv_fileno((uv_handle_t *)h, &fd) < 0)
		return 0;
	if (fam ? setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof(on))
	        : setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof(on)))
		return -errno;
	return 0;
}

static int udp_socks_open(struct dk_worker *w, int fam)
{
	struct dk_upstream *up = &w->up;
	struct dk_addr any = {0};

	if (fam == 0) {
		any.in4.sin_family = AF_INET;
		any.len = sizeof(any.in4);
	} else {
		any.in6.sin6_family = AF_INET6;
		any.len = sizeof(any.in6);
	}
	for (unsigned i = 0; i < DK_UP_SOCKS; i++) {
		uv_udp_t *h = &up->socks[fam][i];
		int rc = uv_udp_init_ex(&w->loop, h, (fam ? AF_INET6 : AF_INET) | UV_UDP_RECVMMSG);
		if (rc < 0)
			return rc;
		up->n_socks[fam]++;
		h->data = w;
		/* Port 0: the kernel picks a random ephemeral port per socket. */
		rc = uv_udp_bind(h, &any.sa, fam ? UV_UDP_IPV6ONLY : 0);
		if (rc == 0)
			rc = recv_errors(h, fam);
		if (rc == 0)
			rc = uv_udp_recv_start(h, dk__udp_alloc, up_udp_recv);
		if (rc < 0)
			return rc;
	}
	up->socks_ok[fam] = true;
	return 0;
}

int dk__upstream_init(struct dk_worker *w, size_t max_inflight)
{
	struct dk_upstream *up = &w->up;

	if (max_inflight == 0)
		max_inflight = 1024;
	if (max_inflight > 32768)
		max_inflight = 32768;
	up->slots = calloc(max_inflight, sizeof(*up->slots));
	up->id2slot = calloc(65536, sizeof(*up->id2slot));
	up->pkts = calloc(max_inflight, DK_QUERY_MAX);
	if (!up->slots || !up->id2slot || !up->pkts)
		return -ENOMEM;
	/* Timers are initialized for every slot now, so a query never allocates. */
	for (size_t i = max_inflight; i-- > 0;) {
		struct dk_slot *s = &up->slots[i];
		s->w = w;
		s->pkt = up->pkts + i * DK_QUERY_MAX;
		int rc = uv_timer_init(&w->loop, &s->timer);
		if (rc < 0)
			return rc;
		up->n_slots++;
		s->timer.data = s;
		s->next_free = up->free;
		up->free = s;
	}
	rnd_refill(up);
	int rc = udp_socks_open(w, 0);
	if (rc < 0)
		return rc;
	/* IPv6 may be disabled on the host: then only IPv4 upstreams work. */
	rc = udp_socks_open(w, 1);
	if (rc < 0)
		dk_log(DK_LOG_DEBUG, "worker %u: no IPv6 upstream sockets: %s", w->index,
		       uv_strerror(rc));
	return 0;
}

void dk__upstream_close(struct dk_worker *w)
{
	struct dk_upstream *up = &w->up;

	/* Slots still busy are abandoned: their clients are being closed too. */
	for (size_t i = 0; i < up->n_slots; i++) {
		struct dk_slot *s = &up->slots[i];
		s->utcp = NULL;
		uv_close((uv_handle_t *)&s->timer, NULL);
	}
	for (struct dk_up_tcp *u = up->tcp_open; u; u = u->next_open)
		u->inflight = 0;
	while (up->tcp_open)
		up_tcp_close(up->tcp_open);
	for (int f = 0; f < 2; f++)
		for (unsigned i = 0; i < up->n_socks[f]; i++)
			uv_close((uv_handle_t *)&up->socks[f][i], NULL);
}

void dk__upstream_free(struct dk_worker *w)
{
	struct dk_upstream *up = &w->up;

	while (up->tcp_all) {
		struct dk_up_tcp *u = up->tcp_all;
		up->tcp_all = u->next_all;
		free(u);
	}
	free(up->slots);
	free(up->pkts);
	free(up->id2slot);
	memset(up, 0, sizeof(*up));
}
