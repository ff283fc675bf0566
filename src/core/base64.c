/* SPDX-License-Identifier: MIT */
/*
 * Base64 (RFC 4648) for SPKI pins and DoH's "dns" parameter (see
 * upstream_spec.h); the upstream strings themselves are parsed in config.c,
 * beside the other addresses.
 */
#include <string.h>

#include "dnsink/upstream_spec.h"

static int b64_value(char ch, bool std)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == (std ? '+' : '-'))
		return 62;
	if (ch == (std ? '/' : '_'))
		return 63;
	return -1;
}

int dk_base64_decode(const char *in, size_t len, bool std, uint8_t *out, size_t cap)
{
	uint32_t acc = 0;
	size_t bits = 0, o = 0;

	if (std) {
		/* Padding to a multiple of four, at most two '='. */
		if (len % 4)
			return DK_ESYNTAX;
		for (int k = 0; k < 2 && len && in[len - 1] == '='; k++)
			len--;
	} else if (len % 4 == 1) {
		return DK_ESYNTAX;
	}
	for (size_t i = 0; i < len; i++) {
		int v = b64_value(in[i], std);
		if (v < 0)
			return DK_ESYNTAX;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == cap)
				return DK_ESPACE;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	/* The bits left over must be zero (RFC 4648 section 3.5: canonical encoding). */
	if (acc & ((1u << bits) - 1))
		return DK_ESYNTAX;
	return (int)o;
}

int dk_pin_parse(const char *s, uint8_t out[DK_PIN_LEN])
{
	uint8_t buf[DK_PIN_LEN + 3];
	int n = dk_base64_decode(s, strlen(s), true, buf, sizeof(buf));

	if (n != DK_PIN_LEN)
		return DK_ESYNTAX;
	memcpy(out, buf, DK_PIN_LEN);
	return 0;
}
