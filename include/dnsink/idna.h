/* SPDX-License-Identifier: MIT */
/*
 * Internationalized names. Feeds and rule authors write names as people read
 * them ("bücher.example"), but queries carry the A-label form
 * ("xn--bcher-kva.example"). Every name dnsink reads from text (list lines,
 * rule "domains:", RPZ owners, `dnsink match` arguments) goes through here
 * first, so a Unicode entry blocks the name browsers actually resolve.
 *
 * The mapping is libidn2's IDNA2008 lookup with UTS#46 non-transitional
 * processing, as current browsers do ("faß.de" stays "xn--fa-hia.de", not
 * "fass.de"). Text that is pure ASCII is left alone, so plain lists pay one
 * scan and no call into libidn2.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnsink/common.h"

/** True when @p n octets at @p s hold a non-ASCII octet (so IDNA applies). */
bool dk_idna_needed(const char *s, size_t n);

/**
 * Converts the name @p s (@p n octets of UTF-8, not NUL-terminated, a trailing
 * dot allowed) to its A-label form in @p out (@p size octets, NUL-terminated).
 * ASCII labels pass through as they are. Returns the length written, DK_ENAME
 * when the text is no valid IDNA2008 name (bad UTF-8, disallowed code point,
 * bidi or hyphen rules), or DK_ESPACE when @p out is too small. Allocates
 * only inside libidn2 and frees before it returns; not for the hot path.
 */
int dk_idna_to_ascii(const char *s, size_t n, char *out, size_t size);

/**
 * dk_name_from_text() after IDNA: text with a non-ASCII octet is converted
 * to A-labels first, then parsed with @p flags into lowercase wire form in
 * @p out. Returns what dk_name_from_text() returns, or DK_ENAME when the
 * conversion fails.
 */
int dk_idna_name_from_text(const char *text, size_t len, unsigned flags, uint8_t out[DK_NAME_MAX],
                           size_t *out_len);
