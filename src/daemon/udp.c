/* SPDX-License-Identifier: MIT */
/*
 * UDP listeners of a worker: one SO_REUSEPORT socket per listen address and
 * worker, read with recvmmsg into the worker's receive buffer (no allocation
 * per datagram). Replies are copied into the batch and leave with one
 * sendmmsg when the batch is full or when the worker flushes it, at the
 * latest when the loop iteration that produced them ends, so a busy worker
 * makes one send call per batch instead of one per reply.
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

struct listener {
	uv_udp_t h;
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
};

static void udp_reply(const struct dk_client *cl, const uint8_t *ans, size_t len);

static const struct dk_client_ops udp_ops = {.reply = udp_reply};

static void rx_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct listener *l = h->data;

	(void)suggested;
	/*
	 * Every UDP handle of the worker shares one buffer: each datagram is
	 * handled completely inside its receive callback, so the next read may
	 * overwrite it. libuv's recvmmsg cuts it into 64 KiB chunks.
	 */
	buf->base = (char *)l->u->rxbuf;
	buf->len = DK_RXBUF_SIZE;
}

static void udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                     unsigned flags)
{
	struct listener *l = h->data;
	struct dk_udp *u = l->u;

	/*
	 * nread == 0 comes with UV_UDP_MMSG_FREE after a recvmmsg batch, or
	 * when nothing was read; the buffer is the worker's, nothing to free.
	 */
	if (nread <= 0 || !addr)
		return;
	struct dk_client cl = {.ops = &udp_ops, .conn = l, .transport = DK_TRANSPORT_UDP};
	if (addr->sa_family == AF_INET) {
		cl.peer.in4 = *(const struct sockaddr_in *)addr;
		cl.peer.len = sizeof(struct sockaddr_in);
	} else if (addr->sa_family == AF_INET6) {
		cl.peer.in6 = *(const struct sockaddr_in6 *)addr;
		cl.peer.len = sizeof(struct sockaddr_in6);
	} else {
		return;
	}
	u->on_query(u->ctx, &cl, (const uint8_t *)buf->base,
	            flags & UV_UDP_PARTIAL ? 0 : (size_t)nread);
}

/* Sends @p n queued replies that all leave through @p l. */
static void send_run(struct dk_udp *u, struct listener *l, const struct out *o, unsigned n)
{
	struct mmsghdr mh[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	uv_os_fd_t fd;
	unsigned k = 0;

	if (uv_is_closing((uv_handle_t *)&l->h) || uv_fileno((uv_handle_t *)&l->h, &fd) < 0) {
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
	int rc = uv_udp_init_ex(u->loop, &l->h, AF_UNSPEC | UV_UDP_RECVMMSG);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	/* From here the handle exists and is closed by dk_udp_close(). */
	u->n_ls++;
	l->u = u;
	l->h.data = l;
	rc = uv_udp_open(&l->h, fd);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return uv_udp_recv_start(&l->h, rx_alloc, udp_recv);
}

void dk_udp_stop(struct dk_udp *u)
{
	for (size_t i = 0; i < u->n_ls; i++)
		uv_udp_recv_stop(&u->ls[i].h);
}

void dk_udp_close(struct dk_udp *u)
{
	u->n_out = 0;
	u->out_used = 0;
	for (size_t i = 0; i < u->n_ls; i++)
		if (!uv_is_closing((uv_handle_t *)&u->ls[i].h))
			uv_close((uv_handle_t *)&u->ls[i].h, NULL);
}

void dk_udp_free(struct dk_udp *u)
{
	if (!u)
		return;
	free(u->ls);
	free(u);
}
