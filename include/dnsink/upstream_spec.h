/* SPDX-License-Identifier: MIT */
/*
 * How an upstream is written in `upstreams:`: a plain address ("1.2.3.4",
 * "[::1]:5300": UDP, and TCP when needed) or an encrypted one,
 * "tls://IP[:PORT]#NAME" (DNS over TLS, RFC 7858, port 853 by default) or
 * "https://IP[:PORT]/PATH#NAME" (DNS over HTTPS, RFC 8484, port 443), with
 * an optional SPKI pin (RFC 7858 section 4.2). Pure parsing, no TLS library:
 * the daemon's TLS code reads what is parsed here (by config.c; the base64
 * decoders are base64.c).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnsink/config.h"

/** Port of tls:// upstreams written without one. */
#define DK_DEFAULT_DOT_PORT 853
/** Octets of a SHA-256 SPKI pin. */
#define DK_PIN_LEN 32

/** How a query reaches an upstream. */
enum dk_up_proto {
	DK_UP_DNS,   /**< UDP, TCP for truncated answers and TCP clients */
	DK_UP_TLS,   /**< DNS over TLS only: never UDP, never cleartext TCP */
	DK_UP_HTTPS, /**< DNS over HTTPS (RFC 8484): POST over HTTP/2 on TLS, nothing else */
};

/** Longest DoH path (https://IP/PATH#NAME), with its NUL. */
#define DK_UP_PATH_MAX 128

/** An upstream's transport and what its certificate must show (struct dk_config). */
struct dk_up_opts {
	uint8_t proto;  /**< enum dk_up_proto */
	bool has_pin;   /**< pin must match the SPKI of the server's certificate */
	char name[254]; /**< NAME after '#': the certificate must be for it (and SNI); "" none */
	uint8_t pin[DK_PIN_LEN];   /**< SHA-256 of the certificate's SubjectPublicKeyInfo */
	char path[DK_UP_PATH_MAX]; /**< https://: the request path, e.g. "/dns-query" */
};

/**
 * Parses upstream @p s ("1.2.3.4", "[::1]:53", "tls://9.9.9.9#dns.quad9.net")
 * into @p addr and @p opts; a plain address gets @p default_port. A tls://
 * upstream needs a NAME unless @p pin_given (then the pin alone vouches for
 * the server). Returns 0, or DK_ESYNTAX with @p why (static text) set.
 */
int dk_upstream_spec_parse(const char *s, uint16_t default_port, bool pin_given,
                           struct dk_addr *addr, struct dk_up_opts *opts, const char **why);

/**
 * Formats upstream @p i of @p cfg as written: "1.2.3.4:53",
 * "tls://9.9.9.9:853#dns.quad9.net", with " (pinned)" when it has a pin.
 * Returns the length or DK_ESPACE.
 */
int dk_upstream_format(const struct dk_config *cfg, size_t i, char *buf, size_t size);

/**
 * Parses @p s, the base64 (RFC 4648, with padding) of a SHA-256 digest, into
 * @p out. Returns 0 or DK_ESYNTAX.
 */
int dk_pin_parse(const char *s, uint8_t out[DK_PIN_LEN]);

/**
 * Decodes base64url without padding (RFC 4648 section 5, as DoH's "dns"
 * parameter, RFC 8484) or standard base64 with padding when @p std, from
 * @p in (@p len chars) into @p out (at most @p cap octets). Returns the
 * octets written, or DK_ESYNTAX (bad character, bad length) or DK_ESPACE.
 */
int dk_base64_decode(const char *in, size_t len, bool std, uint8_t *out, size_t cap);
