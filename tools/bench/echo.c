/* SPDX-License-Identifier: MIT */
/*
 * The benchmark floor: a UDP server that does the least any DNS server must do.
 * It reads each datagram with recvfrom(2), turns the query header into a response
 * header (QR and RA set, RCODE NXDOMAIN) and sends the same bytes back with
 * sendto(2). No parsing, no lookup, no allocation: whatever a real server spends
 * above this per query is the cost of its own work, not of the kernel's.
 *
 * usage: echo ADDR PORT      (for example: echo 127.0.0.1 5390)
 */
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

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	unsigned char buf[65536];
	struct sigaction sa = {.sa_handler = on_signal};
	int fd;

	if (argc != 3 || inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
		fprintf(stderr, "usage: echo IPV4-ADDR PORT\n");
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
		/* Anything shorter than a header is not DNS; a real server drops it too. */
		if (n < DNS_HEADER_LEN || (buf[2] & 0x80))
			continue;
		buf[2] |= 0x80;
		buf[3] = (unsigned char)(0x80 | RCODE_NXDOMAIN);
		if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&peer, peerlen) < 0 &&
		    errno != EINTR && errno != EAGAIN && errno != ENOBUFS)
			perror("echo: sendto");
	}
	close(fd);
	return 0;
}
