/* SPDX-License-Identifier: MIT */
/*
 * UDP listeners of a worker: one SO_REUSEPORT socket per listen address and
 * worker, polled by libuv and read here with recvmmsg, UDP_RX_BATCH
 * datagrams a call, into slots of the worker's receive buffer (no
 * allocation per datagram). libuv's own recvmmsg (uv_udp_t) reads at most 20
 * a call and walks its batch through a callback per datagram; the wider
 * batch cost 1-3% less CPU per query (A/B in the commit). Replies are copied
 * into the batch and leave with one sendmmsg when the batch is full or when
 * the worker flushes it, at the latest when the loop iteration that produced
 * them ends, so a busy worker makes one send call per batch instead of one
 * per reply.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dnsink/alert.h"
#include "sock.h"
#include "udp.h"

/** UDP replies sent by one sendmmsg, and the octets they may take together. */
#define UDP_BATCH  32
#define UDP_OUTBUF 65536

/**
 * Datagrams read by one recvmmsg, and the room each gets in the receive
 * buffer: a query that does not fit (no client sends one; the largest
 * answers, not questions, are what EDNS sizes are about) arrives truncated
 * and is dropped as unreadable.
 */
#define UDP_RX_BATCH 64
#define UDP_RX_SLOT  (DK_RXBUF_SIZE / UDP_RX_BATCH)

/** recvmmsg calls per readable event at most, so one busy socket cannot starve the loop. */
#define UDP_RX_ROUNDS 8

struct listener {
	uv_poll_t h;
	int fd; /**< owned: closed once the handle is */
	struct dk_udp *u;
};

/** A reply waiting in the batch. */
struct out {
	struct listener *l;
	struct dk_addr peer;
	uint32_t off; /**< in outbuf */
	uint32_t len;
};

struct dk_udp {
	uv_loop_t *loop;
	uint8_t *rxbuf; /**< lent, DK_RXBUF_SIZE octets */
	dk_query_fn *on_query;
	void *ctx;
	struct dk_udp_counters *ctr;
	struct listener *ls;
	size_t n_ls;   /**< initialized (to close) */
	size_t cap_ls; /**< room in ls */
	struct out out[UDP_BATCH];
	unsigned n_out;
	size_t out_used;
	uint8_t outbuf[UDP_OUTBUF];
	/* The receive batch: headers, vectors and source addresses of UDP_RX_BATCH reads. */
	struct mmsghdr rx_mh[UDP_RX_BATCH];
	struct iovec rx_iov[UDP_RX_BATCH];
	struct sockaddr_storage rx_from[UDP_RX_BATCH];
};

static void udp_reply(const struct dk_client *cl, const uint8_t *ans, size_t len);

static const struct dk_client_ops udp_ops = {.reply = udp_reply};

/* Handles datagram @p i of the batch just read through @p l. */
static void handle_one(struct dk_udp *u, struct listener *l, unsigned i)
{
	const struct sockaddr *addr = (const struct sockaddr *)&u->rx_from[i];
	const struct msghdr *mh = &u->rx_mh[i].msg_hdr;
	struct dk_client cl = {.ops = &udp_ops, .conn = l, .transport = DK_TRANSPORT_UDP};

	if (addr->sa_family == AF_INET && mh->msg_namelen >= sizeof(struct sockaddr_in)) {
		cl.peer.in4 = *(const struct sockaddr_in *)addr;
		cl.peer.len = sizeof(struct sockaddr_in);
	} else if (addr->sa_family == AF_INET6 && mh->msg_namelen >= sizeof(struct sockaddr_in6)) {
		cl.peer.in6 = *(const struct sockaddr_in6 *)addr;
		cl.peer.len = sizeof(struct sockaddr_in6);
	} else {
		return;
	}
	u->on_query(u->ctx, &cl, u->rx_iov[i].iov_base,
	            mh->msg_flags & MSG_TRUNC ? 0 : u->rx_mh[i].msg_len);
}

/* Reads one batch from @p l and handles it; returns the datagrams read (0: none waiting). */
static int read_batch(struct dk_udp *u, struct listener *l)
{
	for (unsigned i = 0; i < UDP_RX_BATCH; i++) {
		u->rx_mh[i].msg_hdr.msg_name = &u->rx_from[i];
		u->rx_mh[i].msg_hdr.msg_namelen = sizeof(u->rx_from[i]);
		u->rx_mh[i].msg_hdr.msg_flags = 0;
	}
	int n = recvmmsg(l->fd, u->rx_mh, UDP_RX_BATCH, MSG_DONTWAIT, NULL);
	if (n <= 0)
		return 0;
	for (int i = 0; i < n; i++)
		handle_one(u, l, (unsigned)i);
	return n;
}

static void udp_readable(uv_poll_t *h, int status, int events)
{
	struct listener *l = h->data;

	if (status < 0 || !(events & UV_READABLE))
		return;
	/* A short batch means the socket is drained. */
	for (unsigned r = 0; r < UDP_RX_ROUNDS; r++)
		if (read_batch(l->u, l) < UDP_RX_BATCH || uv_is_closing((uv_handle_t *)h))
			break;
}

/* Sends @p n queued replies that all leave through @p l. */
static void send_run(struct dk_udp *u, struct listener *l, const struct out *o, unsigned n)
{
	struct mmsghdr mh[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	int fd = l->fd;
	unsigned k = 0;

	if (uv_is_closing((uv_handle_t *)&l->h)) {
		dk_ctr_add(&u->ctr->send_fail, n);
		return;
	}
	memset(mh, 0, sizeof(mh[0]) * n);
	for (unsigned i = 0; i < n; i++) {
		iov[i].iov_base = u->outbuf + o[i].off;
		iov[i].iov_len = o[i].len;
		mh[i].msg_hdr.msg_name = (void *)&o[i].peer.sa;
		mh[i].msg_hdr.msg_namelen = o[i].peer.len;
		mh[i].msg_hdr.msg_iov = &iov[i];
		mh[i].msg_hdr.msg_iovlen = 1;
	}
	while (k < n) {
		int r = sendmmsg(fd, mh + k, n - k, MSG_DONTWAIT);
		if (r > 0) {
			k += (unsigned)r;
		} else if (r < 0 && errno == EINTR) {
			continue;
		} else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* A full socket buffer drops the rest: clients retry, we never block. */
			dk_ctr_add(&u->ctr->send_fail, n - k);
			return;
		} else {
			/* This one datagram was refused (an odd address): skip it only. */
			dk_ctr_inc(&u->ctr->send_fail);
			k++;
		}
	}
}

void dk_udp_flush(struct dk_udp *u)
{
	unsigned i = 0;

	while (i < u->n_out) {
		unsigned j = i + 1;
		while (j < u->n_out && u->out[j].l == u->out[i].l)
			j++;
		send_run(u, u->out[i].l, u->out + i, j - i);
		i = j;
	}
	u->n_out = 0;
	u->out_used = 0;
}

bool dk_udp_pending(const struct dk_udp *u)
{
	return u->n_out != 0;
}

static void udp_reply(const struct dk_client *cl, const uint8_t *ans, size_t len)
{
	struct listener *l = cl->conn;
	struct dk_udp *u = l->u;

	if (uv_is_closing((uv_handle_t *)&l->h) || len > UDP_OUTBUF) {
		dk_ctr_inc(&u->ctr->send_fail);
		return;
	}
	if (u->n_out == UDP_BATCH || u->out_used + len > UDP_OUTBUF)
		dk_udp_flush(u);
	struct out *o = &u->out[u->n_out++];
	o->l = l;
	o->peer = cl->peer;
	o->off = (uint32_t)u->out_used;
	o->len = (uint32_t)len;
	memcpy(u->outbuf + u->out_used, ans, len);
	u->out_used += len;
}

int dk_udp_new(uv_loop_t *loop, size_t n_listen, uint8_t *rxbuf, dk_query_fn *on_query, void *ctx,
               struct dk_udp_counters *ctr, struct dk_udp **out)
{
	struct dk_udp *u = calloc(1, sizeof(*u));

	*out = NULL;
	if (!u)
		return -ENOMEM;
	u->ls = calloc(n_listen ? n_listen : 1, sizeof(*u->ls));
	if (!u->ls) {
		free(u);
		return -ENOMEM;
	}
	u->cap_ls = n_listen;
	u->loop = loop;
	u->rxbuf = rxbuf;
	u->on_query = on_query;
	u->ctx = ctx;
	u->ctr = ctr;
	for (unsigned i = 0; i < UDP_RX_BATCH; i++) {
		u->rx_iov[i] = (struct iovec){rxbuf + (size_t)i * UDP_RX_SLOT, UDP_RX_SLOT};
		u->rx_mh[i].msg_hdr.msg_iov = &u->rx_iov[i];
		u->rx_mh[i].msg_hdr.msg_iovlen = 1;
	}
	*out = u;
	return 0;
}

int dk_udp_listen(struct dk_udp *u, const struct dk_addr *a)
{
	if (u->n_ls == u->cap_ls)
		return -ENOSPC;
	struct listener *l = &u->ls[u->n_ls];
	int fd = dk_socket_bound(a, SOCK_DGRAM, true);
	if (fd < 0)
		return fd;
	int rc = uv_poll_init_socket(u->loop, &l->h, fd);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	/* From here the handle exists and dk_udp_close() closes it and the socket. */
	u->n_ls++;
	l->u = u;
	l->fd = fd;
	l->h.data = l;
	return uv_poll_start(&l->h, UV_READABLE, udp_readable);
}

void dk_udp_stop(struct dk_udp *u)
{
	for (size_t i = 0; i < u->n_ls; i++)
		uv_poll_stop(&u->ls[i].h);
}

/* The socket outlives its poll handle, which must not watch a closed descriptor. */
static void listener_closed(uv_handle_t *h)
{
	struct listener *l = h->data;

	close(l->fd);
	l->fd = -1;
}

void dk_udp_close(struct dk_udp *u)
{
	u->n_out = 0;
	u->out_used = 0;
	for (size_t i = 0; i < u->n_ls; i++)
		if (!uv_is_closing((uv_handle_t *)&u->ls[i].h))
			uv_close((uv_handle_t *)&u->ls[i].h, listener_closed);
}

void dk_udp_free(struct dk_udp *u)
{
	if (!u)
		return;
	free(u->ls);
	free(u);
}
