/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the forwarder (src/daemon/upstream.c) alone, on a real libuv
 * loop on loopback. The test owns the upstreams: two UDP fake servers (the
 * first with a TCP listener on the same port, for TC retries and TCP
 * queries) and a spoofing socket, all handles on the forwarder's loop, whose
 * behaviour each test picks. The loop runs dk_upstream_flush() from a check
 * and a prepare handle, as the worker does. Each test closes every handle
 * and asserts uv_loop_close() == 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "daemon/sock.h"
#include "daemon/upstream.h"
#include "dnsink/msg.h"

/** Per-try timeout: short, yet long enough for loopback under valgrind. */
#define TIMEOUT_MS 80
/** Slots of the forwarder under test. */
#define SLOTS 4
/** The client's ID in every query. */
#define CLIENT_ID 0x1234

/** What a fake UDP server does with each query. */
enum mode {
	SILENT,     /**< never answers */
	ANSWER,     /**< answers with the query's ID and question */
	WRONG_ID,   /**< answers with another ID */
	SPOOF,      /**< answers correctly, but from another port */
	TRUNCATE,   /**< answers with TC set */
	LOSE_FIRST, /**< the first query is lost, the others answered */
	LATE,       /**< the first query is answered only when the second arrives, not the second */
};

struct fx;

struct fake_udp {
	uv_udp_t h;
	struct fx *fx;
	enum mode mode;
	unsigned got;                     /**< queries received */
	uint8_t first[DK_QUERY_MAX + 16]; /**< LATE: the first query, answered late */
	size_t first_len;
	uint8_t last[DK_QUERY_MAX + 16];
	size_t last_len;
	uint8_t rbuf[8192];
};

struct fake_conn {
	uv_tcp_t h;
	struct fx *fx;
	bool used;
	size_t len;
	uint8_t buf[8192];
};

struct fx {
	uv_loop_t loop;
	uv_check_t check;
	uv_prepare_t prep;
	uv_timer_t guard;
	bool expired;
	uint8_t *rxbuf;
	struct dk_up_counters ctr;
	struct dk_up_stats stats[4];
	uint32_t stat_slot[2];
	struct dk_addr addrs[2];
	struct fake_udp srv[2];
	uv_udp_t spoofer;
	uv_tcp_t tlisten;
	struct fake_conn conns[4];
	unsigned tcp_got; /**< queries the fake TCP server answered */
	uint8_t tcp_last[DK_QUERY_MAX + 16];
	struct dk_upstream *up;

	/* What the done callback saw. */
	bool forwarding; /**< inside dk_upstream_forward() */
	unsigned done;
	unsigned done_inside; /**< calls from inside dk_upstream_forward() */
	unsigned done_null;   /**< calls without an answer */
	uint8_t ans[DK_QUERY_MAX + 16];
	size_t ans_len;
	uint8_t query[DK_QUERY_MAX + 16];
	size_t qlen;
	uint16_t q_id;
	unsigned idle;
	unsigned done_at_idle;
};

/* A query for example.test/A with RD, ID @p id; returns its length. */
static size_t make_query(uint8_t *p, uint16_t id)
{
	static const uint8_t q[] = {
	        0, 0,   0x01, 0x00, 0,   1,   0,   0,   0, 0,   0,   0,           /* header */
	        7, 'e', 'x',  'a',  'm', 'p', 'l', 'e', 4, 't', 'e', 's', 't', 0, /* name */
	        0, 1,   0,    1,                                                  /* A IN */
	};

	memcpy(p, q, sizeof(q));
	dk_msg_set_id(p, id);
	return sizeof(q);
}

/* Turns query @p p into an answer in place: QR and RA, TC when @p tc. */
static void make_answer(uint8_t *p, bool tc)
{
	p[2] |= 0x80;
	if (tc)
		p[2] |= 0x02;
	p[3] |= 0x80;
}

static uint16_t wire_id(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void flush_check(uv_check_t *c)
{
	struct fx *fx = c->data;

	if (fx->up)
		dk_upstream_flush(fx->up);
}

static void flush_prep(uv_prepare_t *p)
{
	struct fx *fx = p->data;

	if (fx->up)
		dk_upstream_flush(fx->up);
}

static void guard_fired(uv_timer_t *t)
{
	struct fx *fx = t->data;

	fx->expired = true;
}

/* Runs the loop until @p *count reaches @p want or @p ms pass. */
static void run_until(struct fx *fx, const unsigned *count, unsigned want, unsigned ms)
{
	fx->expired = false;
	uv_timer_start(&fx->guard, guard_fired, ms, 0);
	while (*count < want && !fx->expired)
		uv_run(&fx->loop, UV_RUN_ONCE);
	uv_timer_stop(&fx->guard);
}

/* Runs the loop for @p ms. */
static void run_for(struct fx *fx, unsigned ms)
{
	const unsigned never = 0;

	run_until(fx, &never, 1, ms);
}

static void srv_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct fake_udp *s = h->data;

	(void)suggested;
	*buf = uv_buf_init((char *)s->rbuf, sizeof(s->rbuf));
}

static void srv_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                     unsigned flags)
{
	struct fake_udp *s = h->data;
	uint8_t *p = (uint8_t *)buf->base;

	(void)flags;
	if (nread <= 0 || !addr)
		return;
	s->got++;
	memcpy(s->last, p, (size_t)nread);
	s->last_len = (size_t)nread;
	if (s->mode == SILENT || nread < DK_HEADER_LEN)
		return;
	if ((s->mode == LOSE_FIRST || s->mode == LATE) && s->got == 1) {
		memcpy(s->first, p, (size_t)nread);
		s->first_len = (size_t)nread;
		return;
	}
	if (s->mode == LATE) {
		/* The answer to the first copy, only now: the second is never answered. */
		memcpy(p, s->first, s->first_len);
		nread = (ssize_t)s->first_len;
	}
	make_answer(p, s->mode == TRUNCATE);
	if (s->mode == WRONG_ID)
		dk_msg_set_id(p, (uint16_t)(wire_id(p) + 1));
	uv_buf_t b = uv_buf_init((char *)p, (unsigned)nread);
	uv_udp_t *from = s->mode == SPOOF ? &s->fx->spoofer : &s->h;
	assert_int_equal(uv_udp_try_send(from, &b, 1, addr), nread);
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct fake_conn *c = h->data;

	(void)suggested;
	*buf = uv_buf_init((char *)c->buf + c->len, (unsigned)(sizeof(c->buf) - c->len));
}

/* The fake TCP server: answers every framed query at once, TC clear. */
static void conn_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
	struct fake_conn *c = h->data;

	(void)buf;
	if (nread < 0) {
		uv_close((uv_handle_t *)h, NULL);
		return;
	}
	c->len += (size_t)nread;
	while (c->len >= 2) {
		size_t n = (size_t)c->buf[0] << 8 | c->buf[1];
		if (c->len < 2 + n)
			break;
		c->fx->tcp_got++;
		memcpy(c->fx->tcp_last, c->buf + 2, n);
		make_answer(c->buf + 2, false);
		uv_buf_t b = uv_buf_init((char *)c->buf, (unsigned)(2 + n));
		assert_int_equal(uv_try_write(h, &b, 1), (int)(2 + n));
		memmove(c->buf, c->buf + 2 + n, c->len - 2 - n);
		c->len -= 2 + n;
	}
}

static void on_connection(uv_stream_t *server, int status)
{
	struct fx *fx = server->data;
	struct fake_conn *c = NULL;

	assert_int_equal(status, 0);
	for (size_t i = 0; i < sizeof(fx->conns) / sizeof(fx->conns[0]) && !c; i++)
		if (!fx->conns[i].used)
			c = &fx->conns[i];
	assert_non_null(c);
	c->used = true;
	c->fx = fx;
	assert_int_equal(uv_tcp_init(&fx->loop, &c->h), 0);
	c->h.data = c;
	assert_int_equal(uv_accept(server, (uv_stream_t *)&c->h), 0);
	assert_int_equal(uv_read_start((uv_stream_t *)&c->h, conn_alloc, conn_read), 0);
}

static void udp_open(struct fx *fx, uv_udp_t *h, struct dk_addr *bound)
{
	struct sockaddr_in any;
	int len = sizeof(bound->in4);

	assert_int_equal(uv_udp_init(&fx->loop, h), 0);
	assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &any), 0);
	assert_int_equal(uv_udp_bind(h, (const struct sockaddr *)&any, 0), 0);
	if (bound) {
		memset(bound, 0, sizeof(*bound));
		assert_int_equal(uv_udp_getsockname(h, &bound->sa, &len), 0);
		bound->len = (socklen_t)len;
	}
}

/*
 * A loopback address whose port is free for both UDP and TCP: a TCP socket
 * takes an ephemeral port, then a UDP socket binds the same one (retried
 * when some UDP socket already has it). Both sockets are returned bound.
 */
static void tcp_udp_pair(struct dk_addr *a, int *ufd, int *tfd)
{
	for (int tries = 0; tries < 50; tries++) {
		socklen_t len = sizeof(a->in4);

		memset(a, 0, sizeof(*a));
		a->in4.sin_family = AF_INET;
		a->in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*tfd = socket(AF_INET, SOCK_STREAM, 0);
		*ufd = socket(AF_INET, SOCK_DGRAM, 0);
		assert_true(*tfd >= 0 && *ufd >= 0);
		assert_int_equal(bind(*tfd, &a->sa, sizeof(a->in4)), 0);
		assert_int_equal(getsockname(*tfd, &a->sa, &len), 0);
		a->len = len;
		if (bind(*ufd, &a->sa, a->len) == 0)
			return;
		close(*tfd);
		close(*ufd);
	}
	fail_msg("no port free for both UDP and TCP");
}

/*
 * The forwarder's config: both fake servers, counted into slots 2 and 0;
 * queries may take @p resolve_ms; upstreams picked by @p strategy.
 */
static void configure_tries(struct fx *fx, size_t n_addrs, unsigned timeout_ms, unsigned resolve_ms,
                            enum dk_upstream_strategy strategy)
{
	const struct dk_upstream_conf conf = {
	        .addrs = fx->addrs,
	        .n_addrs = n_addrs,
	        .timeout_ms = timeout_ms,
	        .resolve_timeout_ms = resolve_ms,
	        .strategy = strategy,
	        .stat_slot = fx->stat_slot,
	        .stats = fx->stats,
	        .n_stats = 4,
	};

	dk_upstream_configure(fx->up, &conf);
}

static void configure_full(struct fx *fx, size_t n_addrs, unsigned resolve_ms,
                           enum dk_upstream_strategy strategy)
{
	configure_tries(fx, n_addrs, TIMEOUT_MS, resolve_ms, strategy);
}

static void configure_resolve(struct fx *fx, size_t n_addrs, unsigned resolve_ms)
{
	configure_full(fx, n_addrs, resolve_ms, DK_STRATEGY_ORDERED);
}

/* As configure_resolve(), with time for one try per upstream, as most cases expect. */
static void configure(struct fx *fx, size_t n_addrs)
{
	configure_resolve(fx, n_addrs, (unsigned)n_addrs * TIMEOUT_MS + TIMEOUT_MS / 2);
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	assert_int_equal(uv_loop_init(&fx->loop), 0);
	assert_int_equal(uv_check_init(&fx->loop, &fx->check), 0);
	assert_int_equal(uv_prepare_init(&fx->loop, &fx->prep), 0);
	assert_int_equal(uv_timer_init(&fx->loop, &fx->guard), 0);
	fx->check.data = fx->prep.data = fx->guard.data = fx;
	uv_check_start(&fx->check, flush_check);
	uv_prepare_start(&fx->prep, flush_prep);

	/* The first upstream: UDP and TCP on one port. */
	int ufd, tfd;
	tcp_udp_pair(&fx->addrs[0], &ufd, &tfd);
	assert_int_equal(uv_udp_init(&fx->loop, &fx->srv[0].h), 0);
	assert_int_equal(uv_udp_open(&fx->srv[0].h, ufd), 0);
	assert_int_equal(uv_tcp_init(&fx->loop, &fx->tlisten), 0);
	assert_int_equal(uv_tcp_open(&fx->tlisten, tfd), 0);
	fx->tlisten.data = fx;
	assert_int_equal(uv_listen((uv_stream_t *)&fx->tlisten, 8, on_connection), 0);
	udp_open(fx, &fx->srv[1].h, &fx->addrs[1]);
	for (int i = 0; i < 2; i++) {
		struct fake_udp *s = &fx->srv[i];
		s->fx = fx;
		s->h.data = s;
		assert_int_equal(uv_udp_recv_start(&s->h, srv_alloc, srv_recv), 0);
	}
	udp_open(fx, &fx->spoofer, NULL);

	fx->stat_slot[0] = 2;
	fx->stat_slot[1] = 0;
	fx->rxbuf = malloc(DK_RXBUF_SIZE);
	assert_non_null(fx->rxbuf);
	assert_int_equal(dk_upstream_new(&fx->loop, SLOTS, fx->rxbuf, &fx->ctr, &fx->up), 0);
	configure(fx, 2);
	*state = fx;
	return 0;
}

static void close_if_open(uv_handle_t *h)
{
	if (h->loop && !uv_is_closing(h))
		uv_close(h, NULL);
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	dk_upstream_close(fx->up);
	for (int i = 0; i < 2; i++)
		close_if_open((uv_handle_t *)&fx->srv[i].h);
	close_if_open((uv_handle_t *)&fx->spoofer);
	close_if_open((uv_handle_t *)&fx->tlisten);
	for (size_t i = 0; i < sizeof(fx->conns) / sizeof(fx->conns[0]); i++)
		if (fx->conns[i].used)
			close_if_open((uv_handle_t *)&fx->conns[i].h);
	close_if_open((uv_handle_t *)&fx->check);
	close_if_open((uv_handle_t *)&fx->prep);
	close_if_open((uv_handle_t *)&fx->guard);
	uv_run(&fx->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&fx->loop), 0);
	dk_upstream_free(fx->up);
	free(fx->rxbuf);
	free(fx);
	return 0;
}

static void on_done(void *ctx, uint8_t *ans, size_t len, const uint8_t *query, size_t qlen,
                    const struct dk_query *q)
{
	struct fx *fx = ctx;

	fx->done++;
	if (fx->forwarding)
		fx->done_inside++;
	if (!ans) {
		fx->done_null++;
	} else {
		assert_true(len <= sizeof(fx->ans));
		memcpy(fx->ans, ans, len);
		fx->ans_len = len;
	}
	assert_true(qlen <= sizeof(fx->query));
	memcpy(fx->query, query, qlen);
	fx->qlen = qlen;
	fx->q_id = q->id;
}

static void on_idle(void *ctx)
{
	struct fx *fx = ctx;

	fx->idle++;
	fx->done_at_idle = fx->done;
}

/* Forwards @p pkt/@p len (parsed from the first @p qlen octets) and returns the result. */
static int forward_raw(struct fx *fx, const uint8_t *pkt, size_t len, size_t qlen, bool tcp)
{
	struct dk_query q;

	assert_int_equal(dk_msg_parse_query(pkt, qlen, &q), 0);
	fx->forwarding = true;
	int rc = dk_upstream_forward(fx->up, pkt, len, &q, tcp, on_done, fx);
	fx->forwarding = false;
	return rc;
}

/* Forwards the test query; it must be taken, with no callback yet. */
static void forward(struct fx *fx, bool tcp)
{
	uint8_t pkt[64];
	size_t len = make_query(pkt, CLIENT_ID);

	/*
	 * Timers count from the loop's cached time, which the setup (slow under
	 * valgrind) left behind: without this the first try could time out at once.
	 */
	uv_update_time(&fx->loop);
	assert_int_equal(forward_raw(fx, pkt, len, len, tcp), 0);
	assert_int_equal(fx->done_inside, 0);
}

static uint64_t lat_total(const struct dk_up_stats *st)
{
	uint64_t n = 0;

	for (int b = 0; b < DK_LAT_BUCKETS; b++)
		n += dk_ctr_get(&st->lat[b]);
	return n;
}

/* The query handed back has the client's ID and octets, whatever ID went upstream. */
static void assert_query_back(const struct fx *fx)
{
	uint8_t want[64];
	size_t len = make_query(want, CLIENT_ID);

	assert_int_equal(fx->qlen, len);
	assert_memory_equal(fx->query, want, len);
	assert_int_equal(fx->q_id, CLIENT_ID);
}

/* The accepted answer is the one @p seen (the query as the server got it) became. */
static void assert_answer_to(const struct fx *fx, const uint8_t *seen, size_t len)
{
	assert_int_equal(fx->ans_len, len);
	/* Our upstream ID is still in it, QR is set, the question is the same. */
	assert_int_equal(wire_id(fx->ans), wire_id(seen));
	assert_true(fx->ans[2] & 0x80);
	assert_false(fx->ans[2] & 0x02);
	assert_memory_equal(fx->ans + 4, seen + 4, len - 4);
}

static void test_answer(void **state)
{
	struct fx *fx = *state;
	uint8_t want[64];
	size_t len = make_query(want, CLIENT_ID);

	fx->srv[0].mode = ANSWER;
	forward(fx, false);
	assert_int_equal(dk_upstream_inflight(fx->up), 1);
	assert_int_equal(dk_ctr_get(&fx->ctr.inflight), 1);
	assert_true(dk_upstream_pending(fx->up));
	run_until(fx, &fx->done, 1, 2000);
	assert_int_equal(fx->done, 1);
	assert_int_equal(fx->done_null, 0);
	assert_int_equal(fx->srv[0].got, 1);
	assert_int_equal(fx->srv[1].got, 0);
	/* The server saw the client's query under another ID (rewritten, then restored). */
	assert_int_equal(fx->srv[0].last_len, len);
	assert_memory_equal(fx->srv[0].last + 2, want + 2, len - 2);
	assert_answer_to(fx, fx->srv[0].last, len);
	assert_query_back(fx);

	assert_int_equal(dk_upstream_inflight(fx->up), 0);
	assert_int_equal(dk_ctr_get(&fx->ctr.inflight), 0);
	assert_int_equal(dk_ctr_get(&fx->ctr.answers), 1);
	assert_int_equal(dk_ctr_get(&fx->ctr.mismatched), 0);
	assert_int_equal(dk_ctr_get(&fx->ctr.timeouts[0]), 0);
	/* Upstream 0 counts into slot 2 (stat_slot), upstream 1 into slot 0. */
	assert_int_equal(dk_ctr_get(&fx->stats[2].tries), 1);
	assert_int_equal(dk_ctr_get(&fx->stats[2].answers), 1);
	assert_int_equal(dk_ctr_get(&fx->stats[2].timeouts), 0);
	assert_int_equal(lat_total(&fx->stats[2]), 1);
	assert_int_equal(dk_ctr_get(&fx->stats[0].tries), 0);
	assert_int_equal(dk_ctr_get(&fx->stats[1].tries), 0);
	assert_int_equal(dk_ctr_get(&fx->stats[3].tries), 0);
}

/* A datagram the first upstream sends that is refused: the timeout moves on to the second. */
static void refused_then_failover(struct fx *fx, enum mode first)
{
	uint8_t want[64];
	size_t len = make_query(want, CLIENT_ID);
	uint64_t t0;

	fx->srv[0].mode = first;
	fx->srv[1].mode = ANSWER;
	/* Timers count from the loop's cached time, which setup left behind. */
	uv_update_time(&fx->loop);
	t0 = uv_hrtime();
	forward(fx, false);
	run_until(fx, &fx->done, 1, 3000);
	uint64_t took_ms = (uv_hrtime() - t0) / 1000000;

	assert_int_equal(fx->done, 1);
	assert_int_equal(fx->done_null, 0);
	assert_int_equal(fx->srv[0].got, 1);
	assert_int_equal(fx->srv[1].got, 1);
	/* The refused datagram did not end the try: only its timeout did. */
	assert_true(took_ms + 2 >= TIMEOUT_MS);
	assert_answer_to(fx, fx->srv[1].last, len);
	/* A new ID for the second try. */
	assert_int_not_equal(wire_id(fx->srv[0].last), wire_id(fx->srv[1].last));
	assert_query_back(fx);
	assert_int_equal(dk_ctr_get(&fx->ctr.mismatched), 1);
	assert_int_equal(dk_ctr_get(&fx->ctr.timeouts[0]), 1);
	assert_int_equal(dk_ctr_get(&fx->ctr.timeouts[1]), 0);
	assert_int_equal(dk_ctr_get(&fx->ctr.answers), 1);
	assert_int_equal(dk_ctr_get(&fx->stats[2].tries), 1);
	assert_int_equal(dk_ctr_get(&fx->stats[2].timeouts), 1);
	assert_int_equal(dk_ctr_get(&fx->stats[2].answers), 0);
	assert_int_equal(dk_ctr_get(&fx->stats[0].tries), 1);
	assert_int_equal(dk_ctr_get(&fx->stats[0].answers), 1);
	assert_int_equal(dk_ctr_get(&fx->stats[0].timeouts), 0);
	assert_int_equal(lat_total(&fx->stats[0]), 1);
	assert_int_equal(lat_total(&fx->stats[2]), 0);
}

/* A lone upstream loses the first copy: the query goes to it again, with a new ID, and is answered.
 */
static void test_retransmit_lone_upstream(void **state)
{
	struct fx *fx = *state;
	uint64_t t0;

	configure_resolve(fx, 1, 1000);
	fx->srv[0].mode = LOSE_FIRST;
	uv_update_time(&fx->loop);
	t0 = uv_hrtime();
	forward(fx, false);
	run_until(fx, &fx->done, 1, 3000);
	uint64_t took_ms = (uv_hrtime() - t0) / 1000000;

	assert_int_equal(fx->done, 1);
	assert_int_equal(fx->done_null, 0);
	assert_int_equal(fx->srv[0].got, 2);
	assert_int_not_equal(wire_id(fx->srv[0].first), wire_id(fx->srv[0].last));
	/* No sample yet: the first try waited the upstream timeout (below the initial RTO). */
	assert_true(took_ms + 2 >= TIMEOUT_MS);
	assert_query_back(fx);
	assert_int_equal(dk_ctr_get(&fx->stats[2].tries), 2);
	assert_int_equal(dk_ctr_get(&fx->stats[2].retransmits), 1);
	assert_int_equal(dk_ctr_get(&fx->stats[2].timeouts), 1);
	assert_int_equal(dk_ctr_get(&fx->stats[2].answers), 1);
	/* The answer timed the second try: the upstream has a smoothed RTT now. */
	assert_true(dk_ctr_get(&fx->stats[2].srtt_us) > 0);
	assert_int_equal(dk_ctr_get(&fx->ctr.mismatched), 0);
}

/* The first copy's answer comes while the retransmission waits: it is taken, not refused. */
static void test_late_answer_taken(void **state)
{
	struct fx *fx = *state;

	configure_resolve(fx, 1, 1000);
	fx->srv[0].mode = LATE;
	uv_update_time(&fx->loop);
	forward(fx, false);
	run_until(fx, &fx->done, 1, 3000);

	assert_int_equal(fx->done, 1);
	assert_int_equal(fx->done_null, 0);
	assert_int_equal(fx->srv[0].got, 2);
	assert_query_back(fx);
	assert_int_equal(dk_ctr_get(&fx->ctr.mismatched), 0);
	assert_int_equal(dk_ctr_get(&fx->stats[2].answers), 1);
	assert_int_equal(dk_upstream_inflight(fx->up), 0);
	/* The second try's ID is free again: nothing answers to it any more. */
	run_for(fx, TIMEOUT_MS);
	assert_int_equal(fx->done, 1);
}

/* A silent lone upstream is asked again until resolve_timeout_ms, then the query fails. */
static void test_resolve_timeout_bounds(void **state)
{
	struct fx *fx = *state;
	uint64_t t0;

	configure_resolve(fx, 1, 5 * TIMEOUT_MS);
	fx->srv[0].mode = SILENT;
	uv_update_time(&fx->loop);
	t0 = uv_hrtime();
	forward(fx, false);
	run_until(fx, &fx->done, 1, 3000);
	uint64_t took_ms = (uv_hrtime() - t0) / 1000000;

	assert_int_equal(fx->done_null, 1);
	assert_true(took_ms + 2 >= 4 * TIMEOUT_MS);
	/*
	 * Bounded by resolve_timeout_ms (400), not the 3000 ms of run_until();
	 * the slack is for timers fired late under valgrind on a busy machine.
	 */
	assert_true(took_ms <= 5 * TIMEOUT_MS + 200);
	assert_true(fx->srv[0].got >= 2);
	assert_int_equal(dk_ctr_get(&fx->stats[2].retransmits), fx->srv[0].got - 1);
}

/* One query, answered; returns the number of it each server got. */
static void ask_once(struct fx *fx, unsigned n_done)
{
	uv_update_time(&fx->loop);
	forward(fx, false);
	run_until(fx, &fx->done, n_done, 3000);
	assert_int_equal(fx->done, n_done);
	assert_int_equal(fx->done_null, 0);
}

/*
 * "fastest": the upstream with the shorter timeout first; after a timeout the
 * query goes to the other one, which is first once it has answered faster.
 */
static void test_fastest(void **state)
{
	struct fx *fx = *state;

	configure_full(fx, 2, 1000, DK_STRATEGY_FASTEST);
	fx->srv[0].mode = ANSWER;
	fx->srv[1].mode = ANSWER;
	/* Neither has answered yet: the first in the list; then it is the known fast one. */
	ask_once(fx, 1);
	ask_once(fx, 2);
	assert_int_equal(fx->srv[0].got, 2);
	assert_int_equal(fx->srv[1].got, 0);
	/* It goes silent: the retransmission goes to the other, not to it again. */
	fx->srv[0].mode = SILENT;
	ask_once(fx, 3);
	assert_int_equal(fx->srv[0].got, 3);
	assert_int_equal(fx->srv[1].got, 1);
	/* Backed off, it is now the slower one: the next query starts at the other. */
	ask_once(fx, 4);
	assert_int_equal(fx->srv[0].got, 3);
	assert_int_equal(fx->srv[1].got, 2);
	assert_int_equal(dk_ctr_get(&fx->stats[0].retransmits), 1);
}

/*
 * An upstream that stops answering is marked down after 5 tries in a row,
 * skipped while the other answers, probed by one query once its hold-down
 * (1 s, then 2 s) is over, and back in use after it answers a probe.
 */
static void test_down_and_back(void **state)
{
	struct fx *fx = *state;
	unsigned n = 0;

	configure_resolve(fx, 2, 1000);
	fx->srv[0].mode = SILENT;
	fx->srv[1].mode = ANSWER;
	for (int i = 0; i < 5; i++)
		ask_once(fx, ++n);
	assert_int_equal(fx->srv[0].got, 5);
	assert_int_equal(dk_ctr_get(&fx->stats[2].down), 1);
	/* Down: the next queries go to the other one at once. */
	ask_once(fx, ++n);
	ask_once(fx, ++n);
	assert_int_equal(fx->srv[0].got, 5);
	assert_int_equal(fx->srv[1].got, 7);
	/* The hold-down is over: one query probes it; it fails, and the hold doubles. */
	run_for(fx, 1100);
	ask_once(fx, ++n);
	assert_int_equal(fx->srv[0].got, 6);
	run_for(fx, 1100);
	ask_once(fx, ++n);
	assert_int_equal(fx->srv[0].got, 6);
	/* It answers the next probe and is back: first again. */
	fx->srv[0].mode = ANSWER;
	run_for(fx, 1000);
	ask_once(fx, ++n);
	assert_int_equal(fx->srv[0].got, 7);
	assert_int_equal(dk_ctr_get(&fx->stats[2].down), 0);
	ask_once(fx, ++n);
	assert_int_equal(fx->srv[0].got, 8);
	assert_int_equal(fx->srv[1].got, 9);
}

static void test_wrong_id(void **state)
{
	refused_then_failover(*state, WRONG_ID);
}

static void test_wrong_source(void **state)
{
	refused_then_failover(*state, SPOOF);
}

static void test_all_silent(void **state)
{
	struct fx *fx = *state;
	uint64_t t0;

	uv_update_time(&fx->loop);
	t0 = uv_hrtime();
	forward(fx, false);
	run_until(fx, &fx->done, 1, 3000);
	uint64_t took_ms = (uv_hrtime() - t0) / 1000000;

	assert_int_equal(fx->done, 1);
	assert_int_equal(fx->done_null, 1);
	assert_true(took_ms + 4 >= 2 * TIMEOUT_MS);
	assert_int_equal(fx->srv[0].got, 1);
	assert_int_equal(fx->srv[1].got, 1);
	assert_query_back(fx);
	assert_int_equal(dk_ctr_get(&fx->ctr.timeouts[0]), 1);
	assert_int_equal(dk_ctr_get(&fx->ctr.timeouts[1]), 1);
	assert_int_equal(dk_ctr_get(&fx->ctr.answers), 0);
	assert_int_equal(dk_ctr_get(&fx->stats[2].timeouts), 1);
	assert_int_equal(dk_ctr_get(&fx->stats[0].timeouts), 1);
	assert_int_equal(dk_upstream_inflight(fx->up), 0);
	/* Exactly once: nothing more comes later. */
	run_for(fx, TIMEOUT_MS);
	assert_int_equal(fx->done, 1);
}

static void test_tc_retries_over_tcp(void **state)
{
	struct fx *fx = *state;
	uint8_t want[64];
	size_t len = make_query(want, CLIENT_ID);

	/* Not a timing case: tries long enough for a TCP exchange under valgrind. */
	configure_tries(fx, 2, 1000, 2500, DK_STRATEGY_ORDERED);
	fx->srv[0].mode = TRUNCATE;
	forward(fx, false);
	run_until(fx, &fx->done, 1, 3000);
	assert_int_equal(fx->done, 1);
	assert_int_equal(fx->done_null, 0);
	assert_int_equal(fx->srv[0].got, 1);
	assert_int_equal(fx->srv[1].got, 0);
	assert_int_equal(fx->tcp_got, 1);
	/* The answer that came over TCP is the one taken, TC clear. */
	assert_answer_to(fx, fx->tcp_last, len);
	assert_query_back(fx);
	assert_int_equal(dk_ctr_get(&fx->ctr.tc_retries), 1);
	assert_int_equal(dk_ctr_get(&fx->ctr.mismatched), 0);
	assert_int_equal(dk_ctr_get(&fx->ctr.timeouts[0]), 0);
	/* Each try counts: the UDP one and the TCP one. */
	assert_int_equal(dk_ctr_get(&fx->stats[2].tries), 2);
	assert_int_equal(dk_ctr_get(&fx->stats[2].answers), 1);
}

static void test_tcp_first(void **state)
{
	struct fx *fx = *state;
	uint8_t want[64];
	size_t len = make_query(want, CLIENT_ID);

	forward(fx, true);
	run_until(fx, &fx->done, 1, 3000);
	assert_int_equal(fx->done, 1);
	assert_int_equal(fx->done_null, 0);
	assert_int_equal(fx->srv[0].got, 0);
	assert_int_equal(fx->tcp_got, 1);
	assert_answer_to(fx, fx->tcp_last, len);
	assert_query_back(fx);

	/* A second query reuses the pooled connection. */
	forward(fx, true);
	run_until(fx, &fx->done, 2, 3000);
	assert_int_equal(fx->done, 2);
	assert_int_equal(fx->tcp_got, 2);
	assert_true(fx->conns[0].used);
	assert_false(fx->conns[1].used);
}

static void test_too_large(void **state)
{
	struct fx *fx = *state;
	static uint8_t big[DK_QUERY_MAX + 1];
	size_t qlen = make_query(big, CLIENT_ID);

	assert_int_equal(forward_raw(fx, big, sizeof(big), qlen, false), DK_ESPACE);
	assert_int_equal(dk_upstream_inflight(fx->up), 0);
	assert_false(dk_upstream_pending(fx->up));
	/* The largest that fits is taken. */
	assert_int_equal(forward_raw(fx, big, DK_QUERY_MAX, qlen, false), 0);
	assert_int_equal(dk_upstream_inflight(fx->up), 1);
	run_until(fx, &fx->srv[0].got, 1, 2000);
	assert_int_equal(fx->srv[0].last_len, DK_QUERY_MAX);
	run_until(fx, &fx->done, 1, 3000);
	assert_int_equal(fx->done, 1);
	assert_int_equal(fx->done_null, 1);
	assert_int_equal(fx->qlen, DK_QUERY_MAX);
	assert_int_equal(fx->done_inside, 0);
}

static void test_full_and_drain(void **state)
{
	struct fx *fx = *state;
	uint8_t pkt[64];
	size_t len = make_query(pkt, CLIENT_ID);

	assert_int_equal(dk_upstream_capacity(fx->up), SLOTS);
	for (int i = 0; i < SLOTS; i++)
		forward(fx, false);
	assert_int_equal(forward_raw(fx, pkt, len, len, false), DK_EFULL);
	assert_int_equal(dk_upstream_inflight(fx->up), SLOTS);
	assert_int_equal(dk_ctr_get(&fx->ctr.inflight), SLOTS);

	dk_upstream_drain(fx->up, on_idle, fx);
	assert_int_equal(fx->idle, 0);
	run_until(fx, &fx->idle, 1, 3000);
	assert_int_equal(fx->idle, 1);
	/* Idle came after the last query ended, not before. */
	assert_int_equal(fx->done_at_idle, SLOTS);
	assert_int_equal(fx->done, SLOTS);
	assert_int_equal(fx->done_null, SLOTS);
	assert_int_equal(dk_upstream_inflight(fx->up), 0);
	assert_int_equal(dk_ctr_get(&fx->ctr.inflight), 0);
	assert_int_equal(fx->srv[0].got, SLOTS);
	assert_int_equal(fx->srv[1].got, SLOTS);
	assert_int_equal(dk_ctr_get(&fx->stats[2].tries), SLOTS);
	assert_int_equal(dk_ctr_get(&fx->stats[2].timeouts), SLOTS);
	assert_int_equal(dk_ctr_get(&fx->stats[0].timeouts), SLOTS);
}

static void test_drain_when_idle(void **state)
{
	struct fx *fx = *state;

	dk_upstream_drain(fx->up, on_idle, fx);
	assert_int_equal(fx->idle, 1);
}

/*
 * A try that fails while being sent moves on at once; when it was the last
 * upstream, the query ends, and the callback still must not run inside
 * dk_upstream_forward() (upstream.h). A TCP connection to a multicast address
 * fails in connect() itself (ENETUNREACH), so the failure is synchronous.
 */
static void test_sync_failure_calls_back_later(void **state)
{
	struct fx *fx = *state;
	uint8_t pkt[64];
	size_t len = make_query(pkt, CLIENT_ID);

	memset(&fx->addrs[0], 0, sizeof(fx->addrs[0]));
	assert_int_equal(uv_ip4_addr("224.0.0.1", 53, &fx->addrs[0].in4), 0);
	fx->addrs[0].len = sizeof(fx->addrs[0].in4);
	configure(fx, 1);
	assert_int_equal(forward_raw(fx, pkt, len, len, true), 0);
	assert_int_equal(fx->done_inside, 0);
	run_until(fx, &fx->done, 1, 2000);
	assert_int_equal(fx->done, 1);
	assert_int_equal(fx->done_null, 1);
	assert_int_equal(dk_ctr_get(&fx->ctr.errors), 1);
	assert_int_equal(dk_ctr_get(&fx->stats[2].errors), 1);
	assert_int_equal(dk_upstream_inflight(fx->up), 0);

	/* The same with no upstream at all. */
	configure(fx, 0);
	assert_int_equal(forward_raw(fx, pkt, len, len, false), 0);
	assert_int_equal(fx->done_inside, 0);
	run_until(fx, &fx->done, 2, 2000);
	assert_int_equal(fx->done, 2);
	assert_int_equal(fx->done_null, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_answer, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_wrong_id, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_wrong_source, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_all_silent, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_tc_retries_over_tcp, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_tcp_first, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_too_large, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_full_and_drain, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_retransmit_lone_upstream, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_late_answer_taken, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_resolve_timeout_bounds, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_fastest, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_down_and_back, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_drain_when_idle, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_sync_failure_calls_back_later, setup,
	                                        teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
