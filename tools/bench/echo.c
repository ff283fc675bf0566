/* SPDX-License-Identifier: MIT */
/*
 * The benchmark floor: a UDP server that does the least any DNS server must do.
 * It reads each datagram with recvfrom(2), turns the query header into a response
 * header (QR and RA set, RCODE NXDOMAIN) and sends the same bytes back with
 * sendto(2). No parsing, no lookup, no allocation: whatever a real server spends
 * above this per query is the cost of its own work, not of the kernel's.
 *
 * With --batch N it reads up to N datagrams per recvmmsg(2) call (blocking for the
 * first only, MSG_WAITFORONE) and sends the answers with one sendmmsg(2): the floor
 * of a server that batches its system calls, as dnsink does (libuv's recvmmsg, and
 * one sendmmsg per batch of replies), so its cost per query is compared with the
 * kernel's per-datagram work and not with the system calls it saves.
 *
 * usage: echo ADDR PORT [--batch N]   (for example: echo 127.0.0.1 5390 --batch 64)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DNS_HEADER_LEN 12
#define RCODE_NXDOMAIN 3
#define BATCH_MAX      256
#define DGRAM_MAX      4096

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Turns query @p buf of @p n octets into its answer; false when it is not a query. */
static int answer(unsigned char *buf, size_t n)
{
	/* Anything shorter than a header is not DNS; a real server drops it too. */
	if (n < DNS_HEADER_LEN || (buf[2] & 0x80))
		return 0;
	buf[2] |= 0x80;
	buf[3] = (unsigned char)(0x80 | RCODE_NXDOMAIN);
	return 1;
}

static unsigned char bufs[BATCH_MAX][DGRAM_MAX];
static struct sockaddr_storage peers[BATCH_MAX];
static struct iovec iov[BATCH_MAX];
static struct mmsghdr in[BATCH_MAX], out[BATCH_MAX];

/* The batched loop: one recvmmsg and one sendmmsg per batch. */
static void run_batched(int fd, unsigned batch)
{
	while (!stop) {
		for (unsigned i = 0; i < batch; i++) {
			iov[i] = (struct iovec){.iov_base = bufs[i], .iov_len = DGRAM_MAX};
			in[i].msg_hdr = (struct msghdr){.msg_name = &peers[i],
			                                .msg_namelen = sizeof(peers[i]),
			                                .msg_iov = &iov[i],
			                                .msg_iovlen = 1};
		}
		int n = recvmmsg(fd, in, batch, MSG_WAITFORONE, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("echo: recvmmsg");
			return;
		}
		unsigned m = 0;
		for (int i = 0; i < n; i++) {
			if (!answer(bufs[i], in[i].msg_len))
				continue;
			iov[i].iov_len = in[i].msg_len;
			out[m++].msg_hdr = (struct msghdr){.msg_name = &peers[i],
			                                   .msg_namelen = in[i].msg_hdr.msg_namelen,
			                                   .msg_iov = &iov[i],
			                                   .msg_iovlen = 1};
		}
		for (unsigned done = 0; done < m;) {
			int k = sendmmsg(fd, out + done, m - done, 0);
			if (k < 0) {
				if (errno != EINTR && errno != EAGAIN && errno != ENOBUFS)
					perror("echo: sendmmsg");
				break;
			}
			done += (unsigned)k;
		}
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	unsigned char buf[65536];
	struct sigaction sa = {.sa_handler = on_signal};
	unsigned batch = 0;
	int fd;

	if (argc == 5 && strcmp(argv[3], "--batch") == 0)
		batch = (unsigned)atoi(argv[4]);
	if ((argc != 3 && argc != 5) || (argc == 5 && (batch < 1 || batch > BATCH_MAX)) ||
	    inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
		fprintf(stderr, "usage: echo IPV4-ADDR PORT [--batch N (1..%d)]\n", BATCH_MAX);
		return 2;
	}
	addr.sin_port = htons((unsigned short)atoi(argv[2]));

	/* No SA_RESTART: a signal must interrupt the blocking recvfrom so we exit. */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		perror("echo: socket/bind");
		return 1;
	}
	if (batch) {
		run_batched(fd, batch);
		close(fd);
		return 0;
	}
	while (!stop) {
		struct sockaddr_storage peer;
		socklen_t peerlen = sizeof(peer);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &peerlen);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("echo: recvfrom");
			break;
		}
		if (!answer(buf, (size_t)n))
			continue;
		if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&peer, peerlen) < 0 &&
		    errno != EINTR && errno != EAGAIN && errno != ENOBUFS)
			perror("echo: sendto");
	}
	close(fd);
	return 0;
}
