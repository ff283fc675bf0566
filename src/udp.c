/* SPDX-License-Identifier: MIT */
/*
 * UDP listeners of a worker: one SO_REUSEPORT socket per listen address and
 * worker, read with recvmmsg into the worker's receive buffer (no allocation
 * per datagram), replies sent with uv_udp_try_send. All replies leave through
 * dk__udp_reply(), the one place a later change can batch them (sendmmsg).
 */
#include <errno.h>
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

void dk__udp_reply(struct dk_worker *w, struct dk_udp_listener *l, const struct dk_addr *peer,
                   const uint8_t *ans, size_t len)
{
	if (uv_is_closing((uv_handle_t *)&l->h)) {
		w->ctr.udp_send_fail++;
		return;
	}
	uv_buf_t b = uv_buf_init((char *)ans, (unsigned)len);
	int rc = uv_udp_try_send(&l->h, &b, 1, &peer->sa);
	/* A full socket buffer drops the reply: the client retries, we never block. */
	if (rc < 0)
		w->ctr.udp_send_fail++;
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
