/* SPDX-License-Identifier: MIT */
/* Listening sockets with SO_REUSEPORT (see sock.h). */
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sock.h"

int dk_socket_bound(const struct dk_addr *a, int type, bool reuseport)
{
	int one = 1;
	int fam = a->sa.sa_family;
	socklen_t len = fam == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	int fd = socket(fam, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	if (fam == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, &a->sa, len) < 0)
		goto fail;
	return fd;
fail:;
	int err = -errno;
	close(fd);
	return err;
}

int dk_socket_probe_free(const struct dk_addr *a)
{
	int types[2] = {SOCK_DGRAM, SOCK_STREAM};

	for (int i = 0; i < 2; i++) {
		int fd = dk_socket_bound(a, types[i], false);
		if (fd < 0)
			return fd;
		close(fd);
	}
	return 0;
}
