/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the UDP client side (src/daemon/udp.c) alone, on a real
 * libuv loop on loopback: datagrams sent from plain test sockets reach the
 * dk_query_fn with a client handle, replies through the handle wait in the
 * batch until dk_udp_flush() and then all leave, from the listener the query
 * came to. The listen port is picked by the test and probed free first
 * (udp.h exposes no getsockname, and needs none). Each test closes
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
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "daemon/sock.h"
#include "free_port.h"
#include "daemon/udp.h"
#include "dnsink/alert.h"

#define QMAX 64

struct fx {
	uv_loop_t loop;
	uv_timer_t guard;
	bool expired;
	uint8_t *rxbuf;
	struct dk_udp_counters ctr;
	struct dk_udp *u;
	struct dk_addr listen[2];
	int cfd;                  /**< the test's client socket */
	struct sockaddr_in cname; /**< its address */
	unsigned got;
	struct dk_client cl[QMAX];
	uint8_t pkt[QMAX][64];
	size_t len[QMAX];
};

static int client_socket(struct sockaddr_in *name)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	socklen_t len = sizeof(*name);

	assert_true(fd >= 0);
	memset(name, 0, sizeof(*name));
	name->sin_family = AF_INET;
	name->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)name, sizeof(*name)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)name, &len), 0);
	return fd;
}

static void on_query(void *ctx, const struct dk_client *cl, const uint8_t *pkt, size_t len)
{
	struct fx *fx = ctx;

	assert_true(fx->got < QMAX);
	assert_true(len <= sizeof(fx->pkt[0]));
	fx->cl[fx->got] = *cl;
	memcpy(fx->pkt[fx->got], pkt, len);
	fx->len[fx->got] = len;
	fx->got++;
}

static void guard_fired(uv_timer_t *t)
{
	struct fx *fx = t->data;

	fx->expired = true;
}

static void run_until(struct fx *fx, unsigned want, unsigned ms)
{
	fx->expired = false;
	uv_timer_start(&fx->guard, guard_fired, ms, 0);
	while (fx->got < want && !fx->expired)
		uv_run(&fx->loop, UV_RUN_ONCE);
	uv_timer_stop(&fx->guard);
}

static void send_to(struct fx *fx, const struct dk_addr *to, const char *msg)
{
	assert_int_equal(sendto(fx->cfd, msg, strlen(msg), 0, &to->sa, to->len),
	                 (ssize_t)strlen(msg));
}

/* The next datagram on the client socket, or -1 when none waits; its source in @p from. */
static ssize_t client_recv(struct fx *fx, char *buf, size_t cap, struct sockaddr_in *from)
{
	socklen_t len = sizeof(*from);

	return recvfrom(fx->cfd, buf, cap, MSG_DONTWAIT, (struct sockaddr *)from, &len);
}

static int setup_n(void **state, size_t n_listen)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	assert_int_equal(uv_loop_init(&fx->loop), 0);
	assert_int_equal(uv_timer_init(&fx->loop, &fx->guard), 0);
	fx->guard.data = fx;
	fx->rxbuf = malloc(DK_RXBUF_SIZE);
	assert_non_null(fx->rxbuf);
	assert_int_equal(dk_udp_new(&fx->loop, n_listen, fx->rxbuf, on_query, fx, &fx->ctr, &fx->u),
	                 0);
	for (size_t i = 0; i < n_listen; i++) {
		free_addr(&fx->listen[i]);
		assert_int_equal(dk_udp_listen(fx->u, &fx->listen[i]), 0);
	}
	fx->cfd = client_socket(&fx->cname);
	*state = fx;
	return 0;
}

static int setup(void **state)
{
	return setup_n(state, 1);
}

static int setup2(void **state)
{
	return setup_n(state, 2);
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	dk_udp_close(fx->u);
	uv_close((uv_handle_t *)&fx->guard, NULL);
	uv_run(&fx->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&fx->loop), 0);
	dk_udp_free(fx->u);
	free(fx->rxbuf);
	close(fx->cfd);
	free(fx);
	return 0;
}

static void test_receive(void **state)
{
	struct fx *fx = *state;
	static const char *const msgs[] = {"first", "second", "third"};

	for (int i = 0; i < 3; i++)
		send_to(fx, &fx->listen[0], msgs[i]);
	run_until(fx, 3, 2000);
	assert_int_equal(fx->got, 3);
	for (int i = 0; i < 3; i++) {
		const struct dk_client *cl = &fx->cl[i];
		assert_int_equal(fx->len[i], strlen(msgs[i]));
		assert_memory_equal(fx->pkt[i], msgs[i], fx->len[i]);
		assert_int_equal(cl->transport, DK_TRANSPORT_UDP);
		assert_non_null(cl->ops);
		assert_non_null(cl->ops->reply);
		/* Nothing to keep for UDP: the listener lives as long as the worker. */
		assert_null(cl->ops->hold);
		assert_null(cl->ops->done);
		assert_true(dk_sockaddr_equal(&cl->peer.sa, (const struct sockaddr *)&fx->cname));
		assert_int_equal(cl->peer.len, sizeof(struct sockaddr_in));
	}
	assert_false(dk_udp_pending(fx->u));
}

static void test_replies_leave_in_one_flush(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_in from;
	char buf[128];

	for (int i = 0; i < 3; i++)
		send_to(fx, &fx->listen[0], "q");
	run_until(fx, 3, 2000);
	assert_int_equal(fx->got, 3);
	for (int i = 0; i < 3; i++) {
		char ans[16];
		int n = snprintf(ans, sizeof(ans), "answer-%d", i);
		dk_client_reply(&fx->cl[i], (const uint8_t *)ans, (size_t)n);
	}
	/* Queued, not sent. */
	assert_true(dk_udp_pending(fx->u));
	assert_int_equal(client_recv(fx, buf, sizeof(buf), &from), -1);
	assert_int_equal(errno, EAGAIN);

	dk_udp_flush(fx->u);
	assert_false(dk_udp_pending(fx->u));
	/* All three left in that one flush, in order, from the listen address. */
	for (int i = 0; i < 3; i++) {
		char want[16];
		int n = snprintf(want, sizeof(want), "answer-%d", i);
		ssize_t got = client_recv(fx, buf, sizeof(buf), &from);
		assert_int_equal(got, n);
		assert_memory_equal(buf, want, (size_t)n);
		assert_true(dk_sockaddr_equal((struct sockaddr *)&from, &fx->listen[0].sa));
	}
	assert_int_equal(client_recv(fx, buf, sizeof(buf), &from), -1);
	assert_int_equal(dk_ctr_get(&fx->ctr.send_fail), 0);
	/* An empty flush is harmless. */
	dk_udp_flush(fx->u);
}

/* More replies than one batch holds: the full batch leaves on its own, nothing is lost. */
static void test_batch_overflow(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_in from;
	char buf[128];
	const unsigned n = 40;

	send_to(fx, &fx->listen[0], "q");
	run_until(fx, 1, 2000);
	assert_int_equal(fx->got, 1);
	for (unsigned i = 0; i < n; i++) {
		uint8_t ans[4] = {'a', (uint8_t)i, 0, 0};
		dk_client_reply(&fx->cl[0], ans, sizeof(ans));
	}
	dk_udp_flush(fx->u);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(client_recv(fx, buf, sizeof(buf), &from), 4);
		assert_int_equal((uint8_t)buf[1], i);
	}
	assert_int_equal(client_recv(fx, buf, sizeof(buf), &from), -1);
	assert_int_equal(dk_ctr_get(&fx->ctr.send_fail), 0);
}

static void test_reply_too_large(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_in from;
	char buf[16];
	uint8_t *big = calloc(1, 65537);

	assert_non_null(big);
	send_to(fx, &fx->listen[0], "q");
	run_until(fx, 1, 2000);
	assert_int_equal(fx->got, 1);
	dk_client_reply(&fx->cl[0], big, 65537);
	free(big);
	assert_int_equal(dk_ctr_get(&fx->ctr.send_fail), 1);
	assert_false(dk_udp_pending(fx->u));
	dk_udp_flush(fx->u);
	assert_int_equal(client_recv(fx, buf, sizeof(buf), &from), -1);
}

/* Two listeners: each reply leaves from the address its query came to. */
static void test_two_listeners(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_in from;
	char buf[16];
	struct dk_addr extra;

	/* Room for two only. */
	free_addr(&extra);
	assert_int_equal(dk_udp_listen(fx->u, &extra), -ENOSPC);

	send_to(fx, &fx->listen[0], "zero");
	run_until(fx, 1, 2000);
	send_to(fx, &fx->listen[1], "one");
	run_until(fx, 2, 2000);
	assert_int_equal(fx->got, 2);
	assert_ptr_not_equal(fx->cl[0].conn, fx->cl[1].conn);
	/* Replies interleaved by listener: each still goes out its own socket. */
	dk_client_reply(&fx->cl[1], (const uint8_t *)"r1", 2);
	dk_client_reply(&fx->cl[0], (const uint8_t *)"r0", 2);
	dk_client_reply(&fx->cl[1], (const uint8_t *)"r1", 2);
	dk_udp_flush(fx->u);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(client_recv(fx, buf, sizeof(buf), &from), 2);
		int l = buf[1] - '0';
		assert_true(l == 0 || l == 1);
		assert_true(dk_sockaddr_equal((struct sockaddr *)&from, &fx->listen[l].sa));
	}
	assert_int_equal(client_recv(fx, buf, sizeof(buf), &from), -1);
}

/* Stopped: deaf, but replies to queries already read still leave. */
static void test_stop(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_in from;
	char buf[16];

	send_to(fx, &fx->listen[0], "q");
	run_until(fx, 1, 2000);
	assert_int_equal(fx->got, 1);
	dk_udp_stop(fx->u);
	send_to(fx, &fx->listen[0], "late");
	run_until(fx, 2, 100);
	assert_int_equal(fx->got, 1);
	dk_client_reply(&fx->cl[0], (const uint8_t *)"ok", 2);
	dk_udp_flush(fx->u);
	assert_int_equal(client_recv(fx, buf, sizeof(buf), &from), 2);
	assert_memory_equal(buf, "ok", 2);
}

/* After dk_udp_close() a reply is dropped and counted, never sent on a closing handle. */
static void test_reply_after_close(void **state)
{
	struct fx *fx = *state;

	send_to(fx, &fx->listen[0], "q");
	run_until(fx, 1, 2000);
	assert_int_equal(fx->got, 1);
	dk_udp_close(fx->u);
	dk_client_reply(&fx->cl[0], (const uint8_t *)"no", 2);
	assert_int_equal(dk_ctr_get(&fx->ctr.send_fail), 1);
	assert_false(dk_udp_pending(fx->u));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_receive, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_replies_leave_in_one_flush, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_batch_overflow, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_reply_too_large, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_two_listeners, setup2, teardown),
	        cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_reply_after_close, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
