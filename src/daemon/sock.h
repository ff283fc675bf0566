/* SPDX-License-Identifier: MIT */
/*
 * Listening sockets, made by hand rather than by libuv so that they get
 * SO_REUSEPORT (one socket per worker and address, the kernel spreads the
 * clients) and IPV6_V6ONLY before bind().
 */
#pragma once

#include <stdbool.h>

#include "dnsink/config.h"

/**
 * The receive buffer of a worker's UDP sockets (client and upstream side):
 * libuv's recvmmsg (upstream side) takes one 64 KiB chunk per datagram, the
 * client side's own one slot of 1/64 of it (udp.c).
 */
#define DK_UDP_CHUNKS 20
#define DK_RXBUF_SIZE (DK_UDP_CHUNKS * 65536)

/**
 * Creates a non-blocking socket of @p a's family and @p type (SOCK_DGRAM,
 * SOCK_STREAM), with SO_REUSEPORT when @p reuseport, bound to @p a. Returns
 * the file descriptor (the caller closes it) or a negative errno.
 */
int dk_socket_bound(const struct dk_addr *a, int type, bool reuseport);

/**
 * Checks that nobody listens on @p a yet, over UDP and TCP: SO_REUSEPORT
 * would let another process of the same user share the port silently.
 * Returns 0 or a negative errno (-EADDRINUSE).
 */
int dk_socket_probe_free(const struct dk_addr *a);
