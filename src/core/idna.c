/* SPDX-License-Identifier: MIT */
/*
 * IDNA conversion of names read from text, with libidn2 (see idna.h for why
 * and which flavour).
 */
#include <idn2.h>
#include <string.h>

#include "dnsink/common.h"
#include "dnsink/idna.h"
#include "dnsink/name.h"

/* A name of 255 octets can take at most 4 octets of UTF-8 per code point. */
#define IDNA_IN_MAX (DK_NAME_MAX * 4 + 1)

bool dk_idna_needed(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] >= 0x80)
			return true;
	}
	return false;
}

int dk_idna_to_ascii(const char *s, size_t n, char *out, size_t size)
{
	char in[IDNA_IN_MAX];
	char *res = NULL;

	/* libidn2 wants a C string; a NUL inside the text is no name either. */
	if (n == 0 || n >= sizeof(in) || memchr(s, '\0', n))
		return DK_ENAME;
	memcpy(in, s, n);
	in[n] = '\0';
	/*
	 * NFC first (lists come from every kind of editor), then UTS#46 mapping
	 * (case folding, full-width forms) without the transitional mapping of
	 * deviation characters (ß, ς, ZWJ/ZWNJ), as browsers resolve them. STD3
	 * rules stay off: '_' is common in list entries and the host-name check
	 * that follows decides what is allowed in ASCII.
	 */
	int rc = idn2_lookup_u8((const uint8_t *)in, (uint8_t **)&res,
	                        IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
	if (rc != IDN2_OK)
		return DK_ENAME;
	size_t len = strlen(res);
	if (len >= size) {
		idn2_free(res);
		return DK_ESPACE;
	}
	memcpy(out, res, len + 1);
	idn2_free(res);
	return (int)len;
}

int dk_idna_name_from_text(const char *text, size_t len, unsigned flags, uint8_t out[DK_NAME_MAX],
                           size_t *out_len)
{
	char ascii[DK_NAME_MAX * 4 + 1];

	if (!dk_idna_needed(text, len))
		return dk_name_from_text(text, len, flags, out, out_len);
	int n = dk_idna_to_ascii(text, len, ascii, sizeof(ascii));
	if (n < 0)
		return n == DK_ESPACE ? DK_ENAMELEN : n;
	return dk_name_from_text(ascii, (size_t)n, flags, out, out_len);
}
