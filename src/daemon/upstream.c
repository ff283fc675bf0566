/* SPDX-License-Identifier: MIT */
/*
 * Forwarding (see upstream.h): a worker's fixed table of pending slots,
 * upstream IDs and source ports that an off-path attacker cannot guess,
 * per-try timeouts, failover along the configured upstreams, ICMP errors,
 * and TCP through the pool of upstream_tcp.c.
 *
 * IDs come from a buffer of getrandom() bytes refilled in bulk, and an
 * id→slot table makes them unique per worker and finds an answer's slot in
 * one lookup. Queries leave from one of several unconnected UDP sockets bound
 * to kernel-chosen ephemeral ports, picked at random per query. An answer is
 * taken only from the exact upstream address and port, with the expected ID
 * and the same question; everything else is counted and dropped. An answer
 * that passes those checks but whose records do not parse fails the try.
 *
 * A query lives until resolve_timeout_ms and may take several tries: each
 * UDP try waits the upstream's retransmission timeout (rtt.h; TCP tries the
 * whole upstream_timeout_ms), then the query goes again with a fresh ID to
 * the next upstream that has not failed it (pick_next()), the same one when
 * it is alone. Errors mark an upstream failed for the query; timeouts do not,
 * since a datagram may just have been lost. The try before the current one
 * keeps its ID, so its answer still counts when it was only late.
 */
#include <errno.h>
#include <limits.h>
#include <time.h> /* before linux/errqueue.h, which uses struct timespec */
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <ldns/wire2host.h>

#include "dnsink/infra.h"
#include "log.h"
#include "sock.h"
#include "upstream.h"
#include "upstream_tcp.h"

/** UDP queries to upstreams sent by one sendmmsg (per address family). */
#define UP_BATCH 64
/** Unconnected UDP sockets per address family per worker (random source ports). */
#define UP_SOCKS 8
/** Tries of one query at most, retransmissions included. */
#define UP_TRIES_MAX 16
/** One upstream query in flight. */
struct slot {
	struct dk_upstream *up;
	struct slot *next_free;
	bool busy;
	bool tcp;             /**< the current try goes over TCP */
	bool client_tcp;      /**< each upstream's first try goes over TCP */
	bool tcp_retried;     /**< the current upstream's TCP try already lost a connection */
	bool up_tls;          /**< the current upstream is tls://: never UDP, never clear TCP */
	uint16_t id;          /**< our ID for the current try */
	uint8_t up_index;     /**< index of the current upstream */
	uint8_t tries;        /**< sent so far, retransmissions included */
	uint64_t failed;      /**< upstreams (by index) that failed this query, not by a timeout */
	uint64_t deadline_ms; /**< loop time by which the query ends (resolve_timeout_ms) */
	/*
	 * The UDP try before the current one, when it timed out: its answer,
	 * merely late, is still taken (a retransmission must not throw away
	 * the answer it raced with).
	 */
	bool prev;
	uint8_t prev_index;
	uint16_t prev_id;
	uint32_t prev_stat;
	struct dk_addr prev_addr;
	uint64_t prev_sent_ns;
	struct dk_addr up_addr; /**< the current upstream, copied: a reload may drop it */
	uv_timer_t timer;       /**< per-try timeout */
	struct dk_up_tcp *utcp; /**< connection of the current TCP try, or NULL */
	dk_forward_done_fn *done;
	void *ctx;
	struct dk_query q;
	uint16_t len;
	uint8_t *pkt;     /**< DK_QUERY_MAX octets: the query as sent upstream (our ID) */
	uint32_t up_stat; /**< counter slot of the current upstream */
	uint64_t sent_ns; /**< uv_hrtime() when the current try went out */
};

struct dk_upstream {
	uv_loop_t *loop;
	uint8_t *rxbuf; /**< lent, DK_RXBUF_SIZE octets */
	struct dk_up_counters *ctr;
	struct dk_upstream_conf conf;
	struct slot *slots;
	size_t n_slots;
	/*
	 * Query buffers apart from the slots: the slots (and their timers) are
	 * touched at start, the buffers only when used, and the LIFO free list
	 * keeps the pages in use few.
	 */
	uint8_t *pkts;
	size_t busy;
	struct slot *free;
	uint16_t *id2slot; /**< 65536 entries: slot index + 1, 0 when the ID is free */
	uint8_t rnd[4096]; /**< getrandom() bytes, used up front to back */
	size_t rnd_pos;
	uv_udp_t socks[2][UP_SOCKS]; /**< [0] IPv4, [1] IPv6 */
	unsigned n_socks[2];         /**< initialized (to close) */
	bool socks_ok[2];            /**< all bound and reading (to use) */
	bool errq[2][UP_SOCKS];      /**< ICMP errors may wait in the socket's error queue */
	/** UDP tries waiting for dk_upstream_flush(): the slot and the ID it was sent with. */
	struct {
		struct slot *s;
		uint16_t id;
	} out[UP_BATCH];
	unsigned n_out;
	struct dk_up_tcp_pool *tcp;
	struct dk_infra infra;   /**< round trips and health of the upstreams, by counter slot */
	void (*idle)(void *ctx); /**< draining: called when nothing is in flight */
	void *idle_ctx;
	bool closed;
};

static void slot_try(struct slot *s);

const uint32_t dk_lat_bounds_us[DK_LAT_BUCKETS - 1] = {
        500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
};

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

static void id_assign(struct dk_upstream *up, struct slot *s)
{
	uint16_t id = rnd16(up);

	/*
	 * The table is at most half full (two IDs a slot, DK_INFLIGHT_MAX
	 * slots), so a few draws find a free ID; the scan only guards against a
	 * bad generator.
	 */
	for (int i = 0; i < 16 && up->id2slot[id]; i++)
		id = rnd16(up);
	while (up->id2slot[id])
		id++;
	s->id = id;
	up->id2slot[id] = (uint16_t)(s - up->slots + 1);
}

static void id_free(struct dk_upstream *up, struct slot *s, uint16_t id)
{
	if (up->id2slot[id] == (uint16_t)(s - up->slots + 1))
		up->id2slot[id] = 0;
}

static void id_release(struct dk_upstream *up, struct slot *s)
{
	id_free(up, s, s->id);
}

/* Counters of the current try's upstream, or NULL when it has none. */
static struct dk_up_stats *up_stats(struct slot *s)
{
	const struct dk_upstream_conf *c = &s->up->conf;

	return s->up_stat < c->n_stats ? &c->stats[s->up_stat] : NULL;
}

static struct dk_infra_host *host_of(struct slot *s)
{
	return dk_infra_host(&s->up->infra, s->up_stat);
}

/* Shows and logs a change of health of the current try's upstream. */
static void health(struct slot *s, enum dk_infra_change ch)
{
	struct dk_up_stats *us = up_stats(s);
	char addr[64];

	if (ch == DK_INFRA_SAME)
		return;
	if (us)
		dk_ctr_set(&us->down, ch == DK_INFRA_DOWN);
	dk_addr_format(&s->up_addr, addr, sizeof(addr));
	if (ch == DK_INFRA_DOWN)
		dk_log(DK_LOG_WARN,
		       "upstream %s is down: no answer to its last %d tries; skipped "
		       "while others answer",
		       addr, DK_INFRA_DOWN_AFTER);
	else
		dk_log(DK_LOG_WARN, "upstream %s answers again: back in use", addr);
}

/*
 * Counts an answer accepted from the current try's upstream, with its
 * latency; a UDP try's round trip feeds the upstream's estimator (a TCP try's
 * may hold a handshake).
 */
static void up_answered(struct slot *s)
{
	struct dk_up_stats *us = up_stats(s);
	uint64_t us_taken = (uv_hrtime() - s->sent_ns) / 1000;
	unsigned b = 0;

	struct dk_infra_host *h = host_of(s);
	uint32_t rtt = us_taken >= UINT32_MAX ? UINT32_MAX : (uint32_t)us_taken + 1;

	dk_ctr_inc(&s->up->ctr->answers);
	health(s, dk_infra_answered(h, s->tcp ? 0 : rtt));
	if (!s->tcp && us)
		dk_ctr_set(&us->srtt_us, h->rtt.srtt_us);
	if (!us)
		return;
	while (b < DK_LAT_BUCKETS - 1 && us_taken > dk_lat_bounds_us[b])
		b++;
	dk_ctr_inc(&us->answers);
	dk_ctr_inc(&us->lat[b]);
	dk_ctr_add(&us->lat_sum_us, us_taken);
}

/* Counts a failed send or connection to the current try's upstream. */
static void up_error(struct slot *s)
{
	struct dk_up_stats *us = up_stats(s);

	health(s, dk_infra_failed(host_of(s), false, uv_now(s->up->loop)));
	dk_ctr_inc(&s->up->ctr->errors);
	if (us)
		dk_ctr_inc(&us->errors);
}

static void tcp_detach(struct slot *s)
{
	struct dk_up_tcp *u = s->utcp;

	if (!u)
		return;
	s->utcp = NULL;
	dk_up_tcp_detach(u);
}

/* Forgets the previous try: its answer is no longer taken. */
static void prev_release(struct dk_upstream *up, struct slot *s)
{
	if (s->prev)
		id_free(up, s, s->prev_id);
	s->prev = false;
}

/* The current UDP try timed out: it becomes the previous one, its ID still taken. */
static void prev_keep(struct dk_upstream *up, struct slot *s)
{
	prev_release(up, s);
	s->prev = true;
	s->prev_index = s->up_index;
	s->prev_id = s->id;
	s->prev_stat = s->up_stat;
	s->prev_addr = s->up_addr;
	s->prev_sent_ns = s->sent_ns;
}

/* A late answer to the previous try came: it becomes the current try again, to end with it. */
static void prev_promote(struct dk_upstream *up, struct slot *s)
{
	uv_timer_stop(&s->timer);
	tcp_detach(s);
	id_release(up, s);
	s->tcp = false;
	s->up_index = s->prev_index;
	s->id = s->prev_id;
	s->up_stat = s->prev_stat;
	s->up_addr = s->prev_addr;
	s->sent_ns = s->prev_sent_ns;
	s->prev = false;
}

/*
 * The query ended: its caller hears of it (with the answer, or NULL when
 * every upstream failed), then the slot is free again.
 */
static void slot_end(struct slot *s, uint8_t *ans, size_t len)
{
	struct dk_upstream *up = s->up;

	/* A slot ends once: a second end would free it twice into the list. */
	if (dk_fails_assert(s->busy))
		return;
	uv_timer_stop(&s->timer);
	tcp_detach(s);
	id_release(up, s);
	prev_release(up, s);
	dk_msg_set_id(s->pkt, s->q.id);
	s->done(s->ctx, ans, len, s->pkt, s->len, &s->q);
	s->busy = false;
	s->next_free = up->free;
	up->free = s;
	up->busy--;
	dk_ctr_set(&up->ctr->inflight, up->busy);
	if (up->idle && up->busy == 0)
		up->idle(up->idle_ctx);
}

/* The timeout of a try to upstream @p i, from its round trips, at most @p cap. */
static unsigned pick_timeout(struct dk_upstream *up, size_t i, unsigned cap)
{
	const uint32_t *slot = up->conf.stat_slot;

	return dk_infra_timeout_ms(dk_infra_host(&up->infra, slot ? slot[i] : UINT32_MAX), cap);
}

/* The upstream for a try after upstream @p cur (n_addrs: the first) of a query that @p failed. */
static size_t pick(struct dk_upstream *up, uint64_t failed, size_t cur)
{
	const struct dk_upstream_conf *conf = &up->conf;
	const struct dk_infra_choice c = {
	        .slot = conf->stat_slot,
	        .n = conf->n_addrs,
	        .strategy = conf->strategy,
	        .failed = failed,
	        .now_ms = uv_now(up->loop),
	};

	return dk_infra_pick(&up->infra, &c, cur,
	                     conf->strategy == DK_STRATEGY_FASTEST ? rnd16(up) : 0);
}

/* The upstream for the next try of @p s, into s->up_index; false when none is left. */
static bool pick_next(struct slot *s)
{
	size_t i = pick(s->up, s->failed, s->up_index);

	if (i >= s->up->conf.n_addrs)
		return false;
	s->up_index = (uint8_t)i;
	return true;
}

/*
 * The current try ended without an answer: the query goes on with the next
 * upstream (pick_next()), over the client's transport. @p failed marks the
 * upstream as failed for this query (an error, a broken answer); a timeout
 * does not, so a lone upstream that lost a datagram is asked again.
 */
static void slot_next(struct slot *s, bool failed)
{
	uv_timer_stop(&s->timer);
	tcp_detach(s);
	if (!failed && !s->tcp)
		prev_keep(s->up, s);
	else
		id_release(s->up, s);
	if (failed && s->up_index < DK_INFRA_MARKED)
		s->failed |= (uint64_t)1 << s->up_index;
	s->tcp = s->client_tcp;
	s->tcp_retried = false;
	if (!pick_next(s)) {
		s->up_index = (uint8_t)s->up->conf.n_addrs;
		s->failed = ~(uint64_t)0;
	}
	slot_try(s);
}

/*
 * An answer with our ID and question whose records cannot be walked (cut
 * short, counts that lie, octets after the last record) cannot go to the
 * client: the try failed, and the next upstream gets the query at once rather
 * than at the timeout. Truncated (TC) answers may end anywhere and are
 * exempt. Otherwise the answer ends the query.
 */
static void slot_answer(struct slot *s, uint8_t *ans, size_t len)
{
	if (dk_msg_check_answer_body(ans, len) != 0) {
		dk_ctr_inc(&s->up->ctr->malformed);
		slot_next(s, true);
		return;
	}
	up_answered(s);
	slot_end(s, ans, len);
}

/* TCP to the upstream. */

/*
 * The TLS options of the current try's upstream. A try that goes again after
 * a reload finds them only if its upstream is still at its index; a tls://
 * one that is not gets none, and then no connection at all.
 */
static const struct dk_up_opts *tls_opts(const struct slot *s)
{
	const struct dk_upstream_conf *c = &s->up->conf;

	if (!s->up_tls || !c->opts || s->up_index >= c->n_addrs ||
	    c->opts[s->up_index].proto == DK_UP_DNS ||
	    !dk_sockaddr_equal(&c->addrs[s->up_index].sa, &s->up_addr.sa))
		return NULL;
	return &c->opts[s->up_index];
}

static int tcp_start(struct slot *s)
{
	const struct dk_up_opts *o = tls_opts(s);

	if (s->up_tls && !o)
		return -ECONNREFUSED;
	struct dk_up_tcp *u = dk_up_tcp_get(s->up->tcp, &s->up_addr, o, s->up_stat, s->len);
	if (!u)
		return -ECONNREFUSED;
	s->utcp = u;
	int rc = dk_up_tcp_send(u, s->pkt, s->len);
	if (rc < 0) {
		/* This query fails here and now; the others on @p u go elsewhere. */
		s->utcp = NULL;
		dk_up_tcp_detach(u);
		dk_up_tcp_close(u);
	}
	return rc;
}

/*
 * The connection carrying @p s broke. A connection that sat idle may have
 * been closed by the upstream just as we wrote: once per upstream the query
 * goes again on another connection before it counts as a failed try. A
 * failed TLS handshake would only fail again: the try fails now.
 */
static void slot_tcp_lost(struct slot *s, bool tls_failed)
{
	tcp_detach(s);
	if (!s->tcp_retried && !tls_failed) {
		s->tcp_retried = true;
		if (tcp_start(s) == 0)
			return;
	}
	up_error(s);
	slot_next(s, true);
}

/* Pool callback: @p u broke. Rare (a reset, the upstream closing under load): a scan is fine. */
static void tcp_lost(void *ctx, struct dk_up_tcp *u)
{
	struct dk_upstream *up = ctx;

	for (size_t i = 0; i < up->n_slots; i++) {
		struct slot *s = &up->slots[i];
		if (s->busy && s->utcp == u)
			slot_tcp_lost(s, dk_up_tcp_tls_failed(u));
	}
}

/* Pool callback: a DoH upstream refused the query it got with ID @p id on @p u. */
static void tcp_failed(void *ctx, struct dk_up_tcp *u, uint16_t id)
{
	struct dk_upstream *up = ctx;
	uint16_t idx = up->id2slot[id];
	struct slot *s = idx ? &up->slots[idx - 1] : NULL;

	if (!s || !s->busy || s->utcp != u || s->id != id)
		return;
	struct dk_up_stats *us = up_stats(s);
	if (us)
		dk_ctr_inc(&us->http_errors);
	up_error(s);
	slot_next(s, true);
}

/* Pool callback: a TLS event for the upstream of counter slot @p stat. */
static void tcp_tls(void *ctx, uint32_t stat, enum dk_up_tls_event ev, int reason)
{
	struct dk_upstream *up = ctx;
	const struct dk_upstream_conf *c = &up->conf;
	struct dk_up_stats *us = stat < c->n_stats ? &c->stats[stat] : NULL;

	if (!us)
		return;
	switch (ev) {
	case DK_UP_TLS_OPENED: dk_ctr_inc(&us->tls_open); break;
	case DK_UP_TLS_CLOSED:
		/* Unsigned wrap-around: the gauge goes down by one. */
		dk_ctr_add(&us->tls_open, UINT64_MAX);
		break;
	case DK_UP_TLS_HANDSHAKE: dk_ctr_inc(&us->tls_handshakes); break;
	case DK_UP_TLS_RESUMED: dk_ctr_inc(&us->tls_resumed); break;
	case DK_UP_TLS_FAILED:
		if (reason >= 0 && reason < DK_TLS_FAILS)
			dk_ctr_inc(&us->tls_failed[reason]);
		break;
	}
}

_Static_assert(DK_TLS_FAILS == DK_TLS_FAIL_MAX, "a counter for each handshake failure");

/* Pool callback: one framed answer read on @p u; its slot is found by ID, like over UDP. */
static void tcp_answer(void *ctx, struct dk_up_tcp *u, uint8_t *ans, size_t len)
{
	struct dk_upstream *up = ctx;

	if (len < DK_HEADER_LEN) {
		dk_ctr_inc(&up->ctr->mismatched);
		return;
	}
	uint16_t idx = up->id2slot[LDNS_ID_WIRE(ans)];
	struct slot *s = idx ? &up->slots[idx - 1] : NULL;
	/* A late answer for a query that moved on is no reason to drop the connection. */
	if (!s || s->utcp != u || dk_msg_check_answer(ans, len, s->id, &s->q) != 0) {
		dk_ctr_inc(&up->ctr->mismatched);
		return;
	}
	slot_answer(s, ans, len);
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
static void up_udp_errors(struct dk_upstream *up, uv_udp_t *h, bool *pending)
{
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
		uint16_t idx = up->id2slot[LDNS_ID_WIRE(quote)];
		if (!idx)
			continue;
		struct slot *s = &up->slots[idx - 1];
		size_t cmp = (size_t)n < s->len ? (size_t)n : s->len;
		if (!s->busy || s->tcp || !dk_sockaddr_equal(&s->up_addr.sa, &to.sa) ||
		    memcmp(quote, s->pkt, cmp) != 0)
			continue;
		up_error(s);
		slot_next(s, true);
		/* The last query ending during shutdown may have closed this socket. */
		if (up->closed)
			return;
	}
}

/* The error-queue flag of upstream socket @p h. */
static bool *errq_of(struct dk_upstream *up, const uv_udp_t *h)
{
	int fam = h >= &up->socks[1][0];
	return &up->errq[fam][h - &up->socks[fam][0]];
}

static void up_udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct dk_upstream *up = h->data;

	(void)suggested;
	/* The worker's receive buffer (see udp.c): each answer is handled before the next read. */
	buf->base = (char *)up->rxbuf;
	buf->len = DK_RXBUF_SIZE;
}

static void up_udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags)
{
	struct dk_upstream *up = h->data;
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
			up_udp_errors(up, h, pending);
		return;
	}
	if (nread < DK_HEADER_LEN) {
		dk_ctr_inc(&up->ctr->mismatched);
		return;
	}
	uint16_t id = LDNS_ID_WIRE(ans);
	uint16_t idx = up->id2slot[id];
	if (!idx) {
		dk_ctr_inc(&up->ctr->mismatched);
		return;
	}
	struct slot *s = &up->slots[idx - 1];
	bool late = s->prev && id == s->prev_id;
	const struct dk_addr *from = late ? &s->prev_addr : &s->up_addr;
	if ((!late && s->tcp) || !dk_sockaddr_equal(&from->sa, addr) ||
	    dk_msg_check_answer(ans, (size_t)nread, id, &s->q) != 0) {
		dk_ctr_inc(&up->ctr->mismatched);
		return;
	}
	if (late)
		prev_promote(up, s);
	if (LDNS_TC_WIRE(ans)) {
		/* Truncated: the same upstream, over TCP, with a fresh ID. */
		dk_ctr_inc(&up->ctr->tc_retries);
		uv_timer_stop(&s->timer);
		id_release(up, s);
		s->tcp = true;
		s->tcp_retried = false;
		slot_try(s);
		return;
	}
	slot_answer(s, ans, (size_t)nread);
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
static unsigned send_tries(struct dk_upstream *up, int fam, unsigned pick, struct slot **q,
                           unsigned n, int *err)
{
	struct mmsghdr mh[UP_BATCH];
	struct iovec iov[UP_BATCH];
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
 * Queues the try's datagram for dk_upstream_flush(), which the loop runs
 * before it next waits; a full queue sends at once. Returns 0 or a negative
 * code (the try failed now).
 */
static int udp_send(struct slot *s)
{
	struct dk_upstream *up = s->up;
	int fam = s->up_addr.sa.sa_family == AF_INET6;
	int err = 0;

	if (!up->socks_ok[fam])
		return -EAFNOSUPPORT;
	if (up->n_out < UP_BATCH) {
		up->out[up->n_out].s = s;
		up->out[up->n_out].id = s->id;
		up->n_out++;
		return 0;
	}
	unsigned pick = (unsigned)(rnd16(up) % up->n_socks[fam]);
	return send_tries(up, fam, pick, &s, 1, &err) == 1 ? 0 : err;
}

/* Sends the @p n queued tries @p q, all of family @p fam, on one random socket. */
static void flush_family(struct dk_upstream *up, int fam, struct slot **q, unsigned n)
{
	unsigned pick = (unsigned)(rnd16(up) % up->n_socks[fam]);
	unsigned k = 0;

	while (k < n) {
		int err = 0;
		k += send_tries(up, fam, pick, q + k, n - k, &err);
		/* The try at k did not go out (none of the rest, for EAGAIN): fail over. */
		unsigned upto = err == -EAGAIN ? n : k + 1;
		for (; k < upto && k < n; k++) {
			up_error(q[k]);
			slot_next(q[k], true);
		}
	}
}

void dk_upstream_flush(struct dk_upstream *up)
{
	/* A failed try queues its next one: go on until none is left (bounded by the upstreams). */
	while (up->n_out) {
		struct slot *q[2][UP_BATCH];
		unsigned n[2] = {0, 0};

		for (unsigned i = 0; i < up->n_out; i++) {
			struct slot *s = up->out[i].s;
			/* Skip a try that ended or moved on since it was queued. */
			if (!s->busy || s->tcp || s->id != up->out[i].id)
				continue;
			int fam = s->up_addr.sa.sa_family == AF_INET6;
			q[fam][n[fam]++] = s;
		}
		up->n_out = 0;
		for (int fam = 0; fam < 2; fam++)
			if (n[fam])
				flush_family(up, fam, q[fam], n[fam]);
	}
	if (dk_up_tcp_pool_pending(up->tcp))
		dk_up_tcp_pool_flush(up->tcp);
}

bool dk_upstream_pending(const struct dk_upstream *up)
{
	return up->n_out != 0 || dk_up_tcp_pool_pending(up->tcp);
}

static void slot_timeout(uv_timer_t *t)
{
	struct slot *s = t->data;
	unsigned i = s->up_index < DK_UP_COUNTED ? s->up_index : DK_UP_COUNTED - 1;
	struct dk_up_stats *us = up_stats(s);

	dk_ctr_inc(&s->up->ctr->timeouts[i]);
	if (us)
		dk_ctr_inc(&us->timeouts);
	/* A connection that let a query time out may be stuck: nothing new goes on it. */
	if (s->utcp)
		dk_up_tcp_drain(s->utcp);
	/* Only a UDP try's timeout says something of the round trip (rtt.h). */
	health(s, dk_infra_failed(host_of(s), !s->tcp, uv_now(s->up->loop)));
	slot_next(s, false);
}

static void slot_failed(uv_timer_t *t)
{
	slot_end(t->data, NULL, 0);
}

/*
 * The timeout of the try about to go to the current upstream, in ms, or 0
 * when the query has no time left for one. A UDP try waits as long as the
 * upstream's round trips say (rtt.h), at most upstream_timeout_ms; a TCP try
 * (handshake, the kernel's own retransmissions) the whole upstream_timeout_ms.
 * Either way no longer than half of what resolve_timeout_ms leaves the query
 * (while that is long enough for two tries), so that a lost datagram always
 * leaves time for another try, even behind an upstream whose timeout backed
 * off; and a try that could not last DK_RTT_MIN_MS (or upstream_timeout_ms,
 * if shorter) is not sent: its answer would hardly make it.
 */
static unsigned try_timeout(struct slot *s)
{
	struct dk_upstream *up = s->up;
	uint64_t now = uv_now(up->loop);
	uint64_t left = s->deadline_ms > now ? s->deadline_ms - now : 0;
	unsigned ms =
	        s->tcp ? up->conf.timeout_ms : pick_timeout(up, s->up_index, up->conf.timeout_ms);
	unsigned floor = up->conf.timeout_ms < DK_RTT_MIN_MS ? up->conf.timeout_ms : DK_RTT_MIN_MS;

	if (left < floor || s->tries >= UP_TRIES_MAX)
		return 0;
	if (left >= 2 * (uint64_t)floor && ms > left / 2)
		ms = (unsigned)(left / 2);
	return left < ms ? (unsigned)left : ms;
}

/*
 * Sends the current try; moves along the upstreams while sending fails, until
 * every upstream failed the query or its time is up.
 */
static void slot_try(struct slot *s)
{
	struct dk_upstream *up = s->up;
	const struct dk_upstream_conf *c = &up->conf;
	unsigned ms;

	while (s->up_index < c->n_addrs) {
		s->up_tls = c->opts && c->opts[s->up_index].proto != DK_UP_DNS;
		/* DNS over TLS only (RFC 8310 strict profile): no UDP, no fallback. */
		if (s->up_tls)
			s->tcp = true;
		if ((ms = try_timeout(s)) == 0)
			break;
		s->up_addr = c->addrs[s->up_index];
		s->up_stat = c->stat_slot ? c->stat_slot[s->up_index] : UINT32_MAX;
		s->sent_ns = uv_hrtime();
		id_assign(up, s);
		dk_msg_set_id(s->pkt, s->id);
		int rc = s->tcp ? tcp_start(s) : udp_send(s);
		if (rc == 0) {
			struct dk_up_stats *us = up_stats(s);
			if (us) {
				dk_ctr_inc(&us->tries);
				if (s->tries)
					dk_ctr_inc(&us->retransmits);
			}
			s->tries++;
			uv_timer_start(&s->timer, slot_timeout, ms, 0);
			return;
		}
		up_error(s);
		id_release(up, s);
		if (s->up_index < DK_INFRA_MARKED)
			s->failed |= (uint64_t)1 << s->up_index;
		s->tcp = s->client_tcp;
		s->tcp_retried = false;
		if (!pick_next(s))
			break;
	}
	/*
	 * Every upstream failed. A try can fail while being sent, even from
	 * inside dk_upstream_forward(), whose caller must not hear of the end
	 * from there (upstream.h): the query ends from the loop, by its timer.
	 */
	uv_timer_start(&s->timer, slot_failed, 0, 0);
}

void dk_upstream_configure(struct dk_upstream *up, const struct dk_upstream_conf *conf)
{
	up->conf = *conf;
	dk_up_tcp_pool_set_tls(up->tcp, conf->tls);
}

int dk_upstream_forward(struct dk_upstream *up, const uint8_t *pkt, size_t len,
                        const struct dk_query *q, bool tcp, dk_forward_done_fn *done, void *ctx)
{
	if (len > DK_QUERY_MAX)
		return DK_ESPACE;
	struct slot *s = up->free;
	if (!s)
		return DK_EFULL;
	up->free = s->next_free;
	up->busy++;
	dk_ctr_set(&up->ctr->inflight, up->busy);
	s->busy = true;
	s->done = done;
	s->ctx = ctx;
	s->q = *q;
	s->len = (uint16_t)len;
	memcpy(s->pkt, pkt, len);
	s->up_index = (uint8_t)pick(up, 0, up->conf.n_addrs);
	s->tries = 0;
	s->failed = 0;
	s->deadline_ms = uv_now(up->loop) + up->conf.resolve_timeout_ms;
	s->client_tcp = s->tcp = tcp;
	s->utcp = NULL;
	s->tcp_retried = false;
	slot_try(s);
	return 0;
}

size_t dk_upstream_capacity(const struct dk_upstream *up)
{
	return up->n_slots;
}

size_t dk_upstream_inflight(const struct dk_upstream *up)
{
	return up->busy;
}

void dk_upstream_drain(struct dk_upstream *up, void (*idle)(void *ctx), void *ctx)
{
	up->idle = idle;
	up->idle_ctx = ctx;
	if (up->busy == 0)
		idle(ctx);
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

static int udp_socks_open(struct dk_upstream *up, int fam)
{
	struct dk_addr any = {0};

	if (fam == 0) {
		any.in4.sin_family = AF_INET;
		any.len = sizeof(any.in4);
	} else {
		any.in6.sin6_family = AF_INET6;
		any.len = sizeof(any.in6);
	}
	for (unsigned i = 0; i < UP_SOCKS; i++) {
		uv_udp_t *h = &up->socks[fam][i];
		int rc = uv_udp_init_ex(up->loop, h, (fam ? AF_INET6 : AF_INET) | UV_UDP_RECVMMSG);
		if (rc < 0)
			return rc;
		up->n_socks[fam]++;
		h->data = up;
		/* Port 0: the kernel picks a random ephemeral port per socket. */
		rc = uv_udp_bind(h, &any.sa, fam ? UV_UDP_IPV6ONLY : 0);
		if (rc == 0)
			rc = recv_errors(h, fam);
		if (rc == 0)
			rc = uv_udp_recv_start(h, up_udp_alloc, up_udp_recv);
		if (rc < 0)
			return rc;
	}
	up->socks_ok[fam] = true;
	return 0;
}

int dk_upstream_new(uv_loop_t *loop, size_t max_inflight, uint8_t *rxbuf,
                    struct dk_up_counters *ctr, struct dk_upstream **out)
{
	struct dk_upstream *up = calloc(1, sizeof(*up));

	*out = up;
	if (!up)
		return -ENOMEM;
	const struct dk_up_tcp_cbs cbs = {.answer = tcp_answer,
	                                  .lost = tcp_lost,
	                                  .failed = tcp_failed,
	                                  .tls = tcp_tls,
	                                  .ctx = up};
	if (max_inflight > DK_INFLIGHT_MAX)
		max_inflight = DK_INFLIGHT_MAX;
	up->loop = loop;
	up->rxbuf = rxbuf;
	up->ctr = ctr;
	up->slots = calloc(max_inflight, sizeof(*up->slots));
	up->id2slot = calloc(65536, sizeof(*up->id2slot));
	up->pkts = calloc(max_inflight, DK_QUERY_MAX);
	up->tcp = dk_up_tcp_pool_new(loop, &cbs);
	if (!up->slots || !up->id2slot || !up->pkts || !up->tcp)
		return -ENOMEM;
	/* Timers are initialized for every slot now, so a query never allocates. */
	for (size_t i = max_inflight; i-- > 0;) {
		struct slot *s = &up->slots[i];
		s->up = up;
		s->pkt = up->pkts + i * DK_QUERY_MAX;
		int rc = uv_timer_init(loop, &s->timer);
		if (rc < 0)
			return rc;
		up->n_slots++;
		s->timer.data = s;
		s->next_free = up->free;
		up->free = s;
	}
	rnd_refill(up);
	int rc = udp_socks_open(up, 0);
	if (rc < 0)
		return rc;
	/* IPv6 may be disabled on the host: then only IPv4 upstreams work. */
	rc = udp_socks_open(up, 1);
	if (rc < 0)
		dk_log(DK_LOG_DEBUG, "no IPv6 upstream sockets: %s", uv_strerror(rc));
	return 0;
}

void dk_upstream_close(struct dk_upstream *up)
{
	if (up->closed)
		return;
	up->closed = true;
	/* Slots still busy are abandoned: their clients are being closed too. */
	for (size_t i = 0; i < up->n_slots; i++) {
		struct slot *s = &up->slots[i];
		s->utcp = NULL;
		uv_close((uv_handle_t *)&s->timer, NULL);
	}
	if (up->tcp)
		dk_up_tcp_pool_close(up->tcp);
	for (int f = 0; f < 2; f++)
		for (unsigned i = 0; i < up->n_socks[f]; i++)
			uv_close((uv_handle_t *)&up->socks[f][i], NULL);
}

void dk_upstream_free(struct dk_upstream *up)
{
	if (!up)
		return;
	dk_up_tcp_pool_free(up->tcp);
	free(up->slots);
	free(up->pkts);
	free(up->id2slot);
	free(up);
}
