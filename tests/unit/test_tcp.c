/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the TCP client side (src/daemon/tcp.c) alone, on a real
 * libuv loop on loopback, with plain test sockets as clients: RFC 7766
 * framing across partial writes, pipelined queries, the zero-length frame,
 * reply framing (in any order), hold/done keeping a connection's memory past
 * the client's close, the connection cap and the idle timeout. A ticker
 * timer wakes the loop while the test waits on its own sockets. The listen
 * port is picked by the test and probed free first. Each test closes
 * every handle and asserts uv_loop_close() == 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "daemon/sock.h"
#include "free_port.h"
#include "daemon/tcp.h"
#include "dnsink/alert.h"

#define QMAX    16
#define IDLE_MS 2000

struct fx {
	uv_loop_t loop;
	uv_timer_t ticker;
	struct dk_tcp_counters ctr;
	struct dk_tcp *t;
	struct dk_addr listen;
	bool hold;    /**< on_query holds each query */
	bool echo;    /**< on_query replies at once: the query with 'R' before it */
	unsigned got; /**< queries seen */
	struct dk_client cl[QMAX];
	uint8_t pkt[QMAX][64];
	size_t len[QMAX];
};

static void on_query(void *ctx, const struct dk_client *cl, const uint8_t *pkt, size_t len)
{
	struct fx *fx = ctx;

	assert_true(fx->got < QMAX);
	assert_true(len <= sizeof(fx->pkt[0]));
	fx->cl[fx->got] = *cl;
	memcpy(fx->pkt[fx->got], pkt, len);
	fx->len[fx->got] = len;
	fx->got++;
	if (fx->hold)
		cl->ops->hold(cl);
	if (fx->echo) {
		uint8_t ans[65];
		ans[0] = 'R';
		memcpy(ans + 1, pkt, len);
		dk_client_reply(cl, ans, len + 1);
	}
}

static void tick(uv_timer_t *t)
{
	(void)t;
}

/* Runs the loop for about @p ms (the ticker wakes it while the test's sockets wait). */
static void run_for(struct fx *fx, unsigned ms)
{
	uint64_t end = uv_now(&fx->loop) + ms;

	do
		uv_run(&fx->loop, UV_RUN_ONCE);
	while (uv_now(&fx->loop) < end);
}

static void run_until_got(struct fx *fx, unsigned want, unsigned ms)
{
	uint64_t end = uv_now(&fx->loop) + ms;

	while (fx->got < want && uv_now(&fx->loop) < end)
		uv_run(&fx->loop, UV_RUN_ONCE);
}

static int client_connect(struct fx *fx)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	/* Loopback: the kernel completes the handshake before the accept. */
	assert_int_equal(connect(fd, &fx->listen.sa, fx->listen.len), 0);
	assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	return fd;
}

static void client_send(int fd, const void *p, size_t len)
{
	assert_int_equal(send(fd, p, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Sends @p msg framed. */
static void client_send_frame(int fd, const char *msg)
{
	uint8_t buf[128];
	size_t n = strlen(msg);

	buf[0] = (uint8_t)(n >> 8);
	buf[1] = (uint8_t)n;
	memcpy(buf + 2, msg, n);
	client_send(fd, buf, n + 2);
}

/*
 * Reads exactly @p want octets from @p fd into @p buf, running the loop,
 * for at most @p ms. Returns what was read; 0 octets and @p *eof when the
 * server closed (a reset counts as closed).
 */
static size_t client_read(struct fx *fx, int fd, uint8_t *buf, size_t want, unsigned ms, bool *eof)
{
	uint64_t end = uv_now(&fx->loop) + ms;
	size_t got = 0;

	*eof = false;
	while (got < want) {
		ssize_t n = recv(fd, buf + got, want - got, MSG_DONTWAIT);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
			*eof = true;
			break;
		}
		if (uv_now(&fx->loop) >= end)
			break;
		uv_run(&fx->loop, UV_RUN_ONCE);
	}
	return got;
}

/* Reads one framed answer into @p buf; returns its length. */
static size_t client_read_frame(struct fx *fx, int fd, uint8_t *buf, size_t cap)
{
	uint8_t pre[2];
	bool eof;

	assert_int_equal(client_read(fx, fd, pre, 2, 2000, &eof), 2);
	size_t n = (size_t)pre[0] << 8 | pre[1];
	assert_true(n <= cap);
	assert_int_equal(client_read(fx, fd, buf, n, 2000, &eof), n);
	return n;
}

/* True when the server closes @p fd within @p ms (nothing else arrives first). */
static bool client_sees_close(struct fx *fx, int fd, unsigned ms)
{
	uint8_t b;
	bool eof;

	return client_read(fx, fd, &b, 1, ms, &eof) == 0 && eof;
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	assert_int_equal(uv_loop_init(&fx->loop), 0);
	assert_int_equal(uv_timer_init(&fx->loop, &fx->ticker), 0);
	uv_timer_start(&fx->ticker, tick, 2, 2);
	assert_int_equal(dk_tcp_new(&fx->loop, 1, on_query, fx, &fx->ctr, &fx->t), 0);
	dk_tcp_configure(fx->t, 8, IDLE_MS);
	free_addr(&fx->listen);
	assert_int_equal(dk_tcp_listen(fx->t, &fx->listen), 0);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	dk_tcp_close(fx->t);
	uv_close((uv_handle_t *)&fx->ticker, NULL);
	uv_run(&fx->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&fx->loop), 0);
	dk_tcp_free(fx->t);
	free(fx);
	return 0;
}

static void test_partial_frame(void **state)
{
	struct fx *fx = *state;
	const char *msg = "byte-by-byte";
	uint8_t pre[2] = {0, (uint8_t)strlen(msg)};
	struct sockaddr_in me;
	socklen_t mlen = sizeof(me);
	int fd = client_connect(fx);

	assert_int_equal(getsockname(fd, (struct sockaddr *)&me, &mlen), 0);
	client_send(fd, pre, 2);
	run_for(fx, 10);
	for (size_t i = 0; i < strlen(msg); i++) {
		assert_int_equal(fx->got, 0);
		client_send(fd, msg + i, 1);
		run_for(fx, 3);
	}
	run_until_got(fx, 1, 2000);
	assert_int_equal(fx->got, 1);
	assert_int_equal(fx->len[0], strlen(msg));
	assert_memory_equal(fx->pkt[0], msg, strlen(msg));
	assert_int_equal(fx->cl[0].transport, DK_TRANSPORT_TCP);
	assert_true(dk_sockaddr_equal(&fx->cl[0].peer.sa, (struct sockaddr *)&me));
	assert_non_null(fx->cl[0].ops->hold);
	assert_non_null(fx->cl[0].ops->done);
	assert_int_equal(dk_ctr_get(&fx->ctr.accepted), 1);
	close(fd);
}

static void test_pipelined_and_reply_framing(void **state)
{
	struct fx *fx = *state;
	uint8_t two[] = {0, 3, 'o', 'n', 'e', 0, 3, 't', 'w', 'o'};
	uint8_t ans[64];
	int fd = client_connect(fx);

	client_send(fd, two, sizeof(two));
	run_until_got(fx, 2, 2000);
	assert_int_equal(fx->got, 2);
	assert_memory_equal(fx->pkt[0], "one", 3);
	assert_memory_equal(fx->pkt[1], "two", 3);
	assert_ptr_equal(fx->cl[0].conn, fx->cl[1].conn);
	/* Answered in any order: each answer is its own frame. */
	dk_client_reply(&fx->cl[1], (const uint8_t *)"answer-two", 10);
	dk_client_reply(&fx->cl[0], (const uint8_t *)"a1", 2);
	assert_int_equal(client_read_frame(fx, fd, ans, sizeof(ans)), 10);
	assert_memory_equal(ans, "answer-two", 10);
	assert_int_equal(client_read_frame(fx, fd, ans, sizeof(ans)), 2);
	assert_memory_equal(ans, "a1", 2);
	close(fd);
}

/* A large answer, and one split frame followed by a whole one, with replies from the callback. */
static void test_echo_large(void **state)
{
	struct fx *fx = *state;
	uint8_t *big = malloc(2 + 65535);
	uint8_t *got = malloc(65535);
	uint8_t ans[64];
	int fd = client_connect(fx);

	assert_non_null(big);
	assert_non_null(got);
	fx->echo = true;
	client_send(fd, (const uint8_t[]){0, 4, 'a', 'b'}, 4);
	run_for(fx, 10);
	assert_int_equal(fx->got, 0);
	client_send(fd, (const uint8_t[]){'c', 'd', 0, 1, 'e'}, 5);
	run_until_got(fx, 2, 2000);
	assert_int_equal(fx->got, 2);
	assert_int_equal(client_read_frame(fx, fd, ans, sizeof(ans)), 5);
	assert_memory_equal(ans, "Rabcd", 5);
	assert_int_equal(client_read_frame(fx, fd, ans, sizeof(ans)), 2);
	assert_memory_equal(ans, "Re", 2);

	/* A 60000-octet answer through reply(): framed whole, whatever the kernel took at once. */
	fx->echo = false;
	for (size_t i = 0; i < 60000; i++)
		big[i] = (uint8_t)(i * 7);
	dk_client_reply(&fx->cl[0], big, 60000);
	assert_int_equal(client_read_frame(fx, fd, got, 65535), 60000);
	assert_memory_equal(got, big, 60000);
	free(big);
	free(got);
	close(fd);
}

static void test_zero_length_closes(void **state)
{
	struct fx *fx = *state;
	int fd = client_connect(fx);

	/* A zero-length frame, then a query behind it that must not be read. */
	client_send(fd, (const uint8_t[]){0, 0, 0, 1, 'x'}, 5);
	assert_true(client_sees_close(fx, fd, 2000));
	assert_int_equal(fx->got, 0);
	close(fd);
}

/* A held query keeps its connection past the idle period; its answer arrives, then done(). */
static void test_hold_keeps_open(void **state)
{
	struct fx *fx = *state;
	uint8_t ans[16];
	int fd;

	dk_tcp_configure(fx->t, 8, 40);
	fd = client_connect(fx);
	fx->hold = true;
	client_send_frame(fd, "slow");
	run_until_got(fx, 1, 2000);
	assert_int_equal(fx->got, 1);
	/* Three idle periods: the connection waits on its answer, it is not idle. */
	assert_false(client_sees_close(fx, fd, 150));
	dk_client_reply(&fx->cl[0], (const uint8_t *)"late", 4);
	fx->cl[0].ops->done(&fx->cl[0]);
	assert_int_equal(client_read_frame(fx, fd, ans, sizeof(ans)), 4);
	assert_memory_equal(ans, "late", 4);
	/* Nothing in flight now: the idle period runs again and closes it. */
	assert_true(client_sees_close(fx, fd, 2000));
	close(fd);
}

/* The client goes away while a query is held: reply and done later are safe, nothing leaks. */
static void test_hold_after_client_close(void **state)
{
	struct fx *fx = *state;
	int fd = client_connect(fx);

	fx->hold = true;
	client_send_frame(fd, "q1");
	client_send_frame(fd, "q2");
	run_until_got(fx, 2, 2000);
	assert_int_equal(fx->got, 2);
	close(fd);
	/* The connection sees the EOF and closes its handles; its memory stays for the two queries.
	 */
	run_for(fx, 30);
	dk_client_reply(&fx->cl[0], (const uint8_t *)"gone", 4);
	fx->cl[0].ops->done(&fx->cl[0]);
	run_for(fx, 5);
	dk_client_reply(&fx->cl[1], (const uint8_t *)"gone", 4);
	/* The last done() frees the connection (valgrind checks it is not used after). */
	fx->cl[1].ops->done(&fx->cl[1]);
	run_for(fx, 5);

	/* The side still accepts and serves new clients. */
	fx->hold = false;
	fx->echo = true;
	fd = client_connect(fx);
	client_send_frame(fd, "again");
	uint8_t ans[16];
	assert_int_equal(client_read_frame(fx, fd, ans, sizeof(ans)), 6);
	assert_memory_equal(ans, "Ragain", 6);
	close(fd);
}

/* A query still held when the side closes: dk_tcp_free() frees its connection. */
static void test_held_at_close(void **state)
{
	struct fx *fx = *state;
	int fd = client_connect(fx);

	fx->hold = true;
	client_send_frame(fd, "q");
	run_until_got(fx, 1, 2000);
	assert_int_equal(fx->got, 1);
	close(fd);
}

static void test_max_clients(void **state)
{
	struct fx *fx = *state;
	uint8_t ans[16];

	dk_tcp_configure(fx->t, 1, IDLE_MS);
	fx->echo = true;
	int a = client_connect(fx);
	client_send_frame(a, "a");
	assert_int_equal(client_read_frame(fx, a, ans, sizeof(ans)), 2);

	int b = client_connect(fx);
	assert_true(client_sees_close(fx, b, 2000));
	assert_int_equal(dk_ctr_get(&fx->ctr.accepted), 1);
	assert_int_equal(dk_ctr_get(&fx->ctr.rejected), 1);
	close(b);

	/* The first is unharmed; once it is gone, there is room again. */
	client_send_frame(a, "b");
	assert_int_equal(client_read_frame(fx, a, ans, sizeof(ans)), 2);
	assert_memory_equal(ans, "Rb", 2);
	close(a);
	run_for(fx, 30);
	int c = client_connect(fx);
	client_send_frame(c, "c");
	assert_int_equal(client_read_frame(fx, c, ans, sizeof(ans)), 2);
	assert_int_equal(dk_ctr_get(&fx->ctr.accepted), 2);
	assert_int_equal(dk_ctr_get(&fx->ctr.rejected), 1);
	close(c);
}

static void test_idle_timeout(void **state)
{
	struct fx *fx = *state;
	uint8_t ans[16];

	dk_tcp_configure(fx->t, 8, 60);
	fx->echo = true;
	int fd = client_connect(fx);
	uint64_t t0 = uv_hrtime();

	/* Complete queries restart the idle period. */
	for (int i = 0; i < 3; i++) {
		assert_false(client_sees_close(fx, fd, 30));
		client_send_frame(fd, "k");
		assert_int_equal(client_read_frame(fx, fd, ans, sizeof(ans)), 2);
	}
	/* A frame trickled in does not: it must be whole within the period. */
	client_send(fd, (const uint8_t[]){0, 9, 'x'}, 3);
	assert_true(client_sees_close(fx, fd, 2000));
	uint64_t ms = (uv_hrtime() - t0) / 1000000;
	assert_true(ms >= 90 + 55);
	close(fd);
}

/* Stop: deaf, idle connections closed, one with a held query stays for its answer. */
static void test_stop(void **state)
{
	struct fx *fx = *state;
	uint8_t ans[16];
	int idle = client_connect(fx);
	int busy = client_connect(fx);

	fx->hold = true;
	client_send_frame(busy, "q");
	run_until_got(fx, 1, 2000);
	assert_int_equal(fx->got, 1);
	run_for(fx, 10);
	dk_tcp_stop(fx->t);
	assert_true(client_sees_close(fx, idle, 2000));
	dk_client_reply(&fx->cl[0], (const uint8_t *)"ans", 3);
	assert_int_equal(client_read_frame(fx, busy, ans, sizeof(ans)), 3);
	fx->cl[0].ops->done(&fx->cl[0]);
	close(idle);
	close(busy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_partial_frame, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_pipelined_and_reply_framing, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_echo_large, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_zero_length_closes, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_hold_keeps_open, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_hold_after_client_close, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_held_at_close, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_max_clients, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
