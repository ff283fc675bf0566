/* SPDX-License-Identifier: MIT */
/*
 * UDP listeners of a worker: one SO_REUSEPORT socket per listen address and
 * worker, read with recvmmsg into the worker's receive buffer (no allocation
 * per datagram). Replies are copied into the worker's batch and leave with
 * one sendmmsg when the batch is full or, at the latest, when the loop
 * iteration that produced them ends (a uv_check handle), so a busy worker
 * makes one send call per batch instead of one per reply. The same handles
 * send the queries queued for the upstreams (upstream.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "server_internal.h"

void dk__udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct dk_worker *w = h->data;

	(void)suggested;
	/*
	 * Every UDP handle of the worker shares one buffer: each datagram is
	 * handled completely inside its receive callback, so the next read may
	 * overwrite it. libuv's recvmmsg cuts it into 64 KiB chunks.
	 */
	buf->base = (char *)w->rxbuf;
	buf->len = DK_RXBUF_SIZE;
}

static void udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                     unsigned flags)
{
	struct dk_udp_listener *l = (struct dk_udp_listener *)h;
	struct dk_worker *w = l->w;

	/*
	 * nread == 0 comes with UV_UDP_MMSG_FREE after a recvmmsg batch, or
	 * when nothing was read; the buffer is the worker's, nothing to free.
	 */
	if (nread <= 0 || !addr)
		return;
	if (flags & UV_UDP_PARTIAL) {
		w->ctr.queries[DK_TRANSPORT_UDP]++;
		w->ctr.out[DK_TRANSPORT_UDP][DK_OUT_DROPPED]++;
		return;
	}
	struct dk_client cl = {.transport = DK_TRANSPORT_UDP, .udp = l};
	if (addr->sa_family == AF_INET) {
		cl.peer.in4 = *(const struct sockaddr_in *)addr;
		cl.peer.len = sizeof(struct sockaddr_in);
	} else if (addr->sa_family == AF_INET6) {
		cl.peer.in6 = *(const struct sockaddr_in6 *)addr;
		cl.peer.len = sizeof(struct sockaddr_in6);
	} else {
		return;
	}
	dk__worker_query(w, &cl, (const uint8_t *)buf->base, (size_t)nread);
}

/* Sends @p n queued replies that all leave through @p l. */
static void send_run(struct dk_worker *w, struct dk_udp_listener *l, const struct dk_udp_out *o,
                     unsigned n)
{
	struct mmsghdr mh[DK_UDP_BATCH];
	struct iovec iov[DK_UDP_BATCH];
	uv_os_fd_t fd;
	unsigned k = 0;

	if (uv_is_closing((uv_handle_t *)&l->h) || uv_fileno((uv_handle_t *)&l->h, &fd) < 0) {
		w->ctr.udp_send_fail += n;
		return;
	}
	memset(mh, 0, sizeof(mh[0]) * n);
	for (unsigned i = 0; i < n; i++) {
		iov[i].iov_base = w->outbuf + o[i].off;
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
			w->ctr.udp_send_fail += n - k;
			return;
		} else {
			/* This one datagram was refused (an odd address): skip it only. */
			w->ctr.udp_send_fail++;
			k++;
		}
	}
}

void dk__udp_flush(struct dk_worker *w)
{
	unsigned i = 0;

	while (i < w->n_out) {
		unsigned j = i + 1;
		while (j < w->n_out && w->out[j].l == w->out[i].l)
			j++;
		send_run(w, w->out[i].l, w->out + i, j - i);
		i = j;
	}
	w->n_out = 0;
	w->out_used = 0;
}

void dk__udp_reply(struct dk_worker *w, struct dk_udp_listener *l, const struct dk_addr *peer,
                   const uint8_t *ans, size_t len)
{
	if (uv_is_closing((uv_handle_t *)&l->h) || len > DK_UDP_OUTBUF) {
		w->ctr.udp_send_fail++;
		return;
	}
	if (w->n_out == DK_UDP_BATCH || w->out_used + len > DK_UDP_OUTBUF)
		dk__udp_flush(w);
	struct dk_udp_out *o = &w->out[w->n_out++];
	o->l = l;
	o->peer = *peer;
	o->off = (uint32_t)w->out_used;
	o->len = (uint32_t)len;
	memcpy(w->outbuf + w->out_used, ans, len);
	w->out_used += len;
}

/* Queries to the upstreams first: a try that cannot be sent may answer SERVFAIL. */
static void flush_all(struct dk_worker *w)
{
	if (w->up.n_out)
		dk__upstream_flush(w);
	if (w->n_out)
		dk__udp_flush(w);
}

static void flush_cb(uv_check_t *c)
{
	flush_all(c->data);
}

static void flush_pre_cb(uv_prepare_t *p)
{
	flush_all(p->data);
}

int dk__udp_batch_init(struct dk_worker *w)
{
	w->outbuf = malloc(DK_UDP_OUTBUF);
	if (!w->outbuf)
		return -ENOMEM;
	/*
	 * Replies made by I/O callbacks leave after the poll phase (check);
	 * those made by timers and deferred callbacks leave before the loop
	 * blocks in the next poll (prepare).
	 */
	uv_check_init(&w->loop, &w->flush);
	uv_prepare_init(&w->loop, &w->flush_pre);
	w->flush.data = w->flush_pre.data = w;
	w->flush_init = true;
	uv_check_start(&w->flush, flush_cb);
	return uv_prepare_start(&w->flush_pre, flush_pre_cb);
}

int dk__udp_listen(struct dk_worker *w, struct dk_udp_listener *l, const struct dk_addr *a)
{
	int fd = dk__socket_bound(a, SOCK_DGRAM, true);
	if (fd < 0)
		return fd;
	int rc = uv_udp_init_ex(&w->loop, &l->h, AF_UNSPEC | UV_UDP_RECVMMSG);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	/* From here the handle exists: l->w tells the caller to close it. */
	l->w = w;
	l->h.data = w;
	rc = uv_udp_open(&l->h, fd);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return uv_udp_recv_start(&l->h, dk__udp_alloc, udp_recv);
}
