/* SPDX-License-Identifier: MIT */
/*
 * For the unit tests that listen (udp, tcp, metrics): a loopback address
 * nobody uses yet. The port is random and below the kernel's ephemeral range,
 * so that no socket bound to port 0, in this test or in one running beside
 * it, can take it meanwhile; it is checked free over UDP and TCP.
 */
#pragma once

#include <netinet/in.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/sock.h"

static void free_addr(struct dk_addr *a)
{
	static unsigned seed;

	if (!seed)
		seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	for (int tries = 0; tries < 100; tries++) {
		memset(a, 0, sizeof(*a));
		a->in4.sin_family = AF_INET;
		a->in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a->in4.sin_port = htons((uint16_t)(20000 + rand_r(&seed) % 12000));
		a->len = sizeof(a->in4);
		if (dk_socket_probe_free(a) == 0)
			return;
	}
	fail_msg("no free port");
}
