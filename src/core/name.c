/* SPDX-License-Identifier: MIT */
/*
 * Domain names in lowercase wire form: conversion from presentation text
 * (list files, rule entries, rule tests), reading from DNS messages (every
 * query goes through dk_name_from_wire(), so that path is a tight loop with no
 * allocation and no locale-dependent calls), conversion back to text for
 * alerts and `dnsink match`, and small helpers over label offsets.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dnsink/name.h"

/*
 * ASCII lowercase without a table lookup or a locale: adds 0x20 exactly when
 * the octet is in 'A'..'Z'. Length octets (0..63) are below 'A' and so pass
 * through unchanged, which lets callers lowercase a whole wire name at once.
 */
static inline uint8_t lower(uint8_t c)
{
	return (uint8_t)(c | ((unsigned)(c - 'A') < 26u) << 5);
}

/*
 * lower() on eight octets at once (SWAR). For each octet, bit 7 of ge_a is
 * set when its low seven bits are >= 'A', bit 7 of gt_z when they are > 'Z'
 * (neither sum carries into the next octet); an octet with bit 7 set itself
 * is not ASCII and stays. The 0x80 of each upper-case octet, shifted down
 * by two, is its 0x20.
 */
static inline uint64_t lower8(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101ULL;
	const uint64_t high = ones * 0x80;
	uint64_t low7 = x & ~high;
	uint64_t ge_a = low7 + ones * (0x80 - 'A');
	uint64_t gt_z = low7 + ones * (0x80 - 'Z' - 1);

	return x | ((ge_a & ~gt_z & ~x & high) >> 2);
}

static inline uint64_t load8(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/*
 * Lowercases @p n octets in place, eight at a time. Lowercasing is
 * idempotent, so the last eight octets are done as one overlapping word
 * rather than byte by byte; a name is read once and lowered once, which is
 * what makes this the per-query cost of a name rather than a loop per octet.
 */
static void lower_inplace(uint8_t *p, size_t n)
{
	size_t i = 0;

	if (n < 8) {
		for (; i < n; i++)
			p[i] = lower(p[i]);
		return;
	}
	for (; i + 8 <= n; i += 8) {
		uint64_t v = lower8(load8(p + i));
		memcpy(p + i, &v, sizeof(v));
	}
	if (i < n) {
		uint64_t v = lower8(load8(p + n - 8));
		memcpy(p + n - 8, &v, sizeof(v));
	}
}

/* Octets DK_NAME_HOSTNAME accepts in a label. */
static const bool hostname_octet[256] = {
        ['0' ... '9'] = true, ['A' ... 'Z'] = true, ['a' ... 'z'] = true,
        ['-'] = true,         ['_'] = true,
};

static inline bool is_digit(uint8_t c)
{
	return (unsigned)(c - '0') < 10u;
}

int dk_name_from_text(const char *text, size_t len, unsigned flags, uint8_t out[DK_NAME_MAX],
                      size_t *out_len)
{
	const uint8_t *s = (const uint8_t *)text;
	const uint8_t *end = s + len;
	/*
	 * lpos is where the current label's length octet goes, w where its next
	 * octet goes. The root label must fit at index DK_NAME_MAX - 1 at the
	 * latest, so label octets may go no further than DK_NAME_MAX - 2.
	 */
	size_t lpos = 0;
	size_t w = 1;
	size_t llen = 0;

	if (len == 0)
		return DK_ENAME;
	if (len == 1 && s[0] == '.') {
		out[0] = 0;
		*out_len = 1;
		return 0;
	}
	while (s < end) {
		unsigned c = *s++;

		if (c == '.') {
			if (llen == 0)
				return DK_ENAME;
			out[lpos] = (uint8_t)llen;
			lpos = w++;
			llen = 0;
			continue;
		}
		if (c == '\\') {
			if (s == end)
				return DK_ENAME;
			c = *s++;
			if (is_digit((uint8_t)c)) {
				if (end - s < 2 || !is_digit(s[0]) || !is_digit(s[1]))
					return DK_ENAME;
				c = (c - '0') * 100 + (unsigned)(s[0] - '0') * 10 +
				    (unsigned)(s[1] - '0');
				s += 2;
				if (c > 255)
					return DK_ENAME;
			}
		}
		if ((flags & DK_NAME_HOSTNAME) && !hostname_octet[c])
			return DK_ENAME;
		if (llen == DK_LABEL_MAX)
			return DK_ELABEL;
		if (w > DK_NAME_MAX - 2)
			return DK_ENAMELEN;
		out[w++] = lower((uint8_t)c);
		llen++;
	}
	/* Without a trailing dot the last label is still open. */
	if (llen > 0) {
		out[lpos] = (uint8_t)llen;
		lpos = w;
	}
	out[lpos] = 0;
	*out_len = lpos + 1;
	return 0;
}

/*
 * Reads the name at *off into out. With follow set, compression pointers
 * are followed (strictly backwards); without, a pointer is a format error.
 * Both public readers share this so the bounds checks exist once; the
 * constant flag lets the compiler specialize the per-query plain reader.
 */
static inline int read_wire_name(const uint8_t *msg, size_t msg_len, size_t *off, bool follow,
                                 uint8_t out[DK_NAME_MAX], size_t *out_len)
{
	size_t p = *off;
	/*
	 * seg is where the run of labels being read began. A pointer must aim
	 * strictly before it: then every jump lands lower than the last one,
	 * so no chain of pointers can loop, even without the jump bound.
	 */
	size_t seg = p;
	size_t after = 0;
	unsigned jumps = 0;
	size_t n = 0;
	/* The run's labels are validated one by one and copied as one block. */
	size_t run_n = 0;

	for (;;) {
		if (p >= msg_len)
			return DK_EFORMERR;
		uint8_t l = msg[p];
		if (l == 0)
			break;
		if ((l & 0xc0) == 0xc0) {
			if (!follow || msg_len - p < 2)
				return DK_EFORMERR;
			size_t target = ((size_t)(l & 0x3f) << 8) | msg[p + 1];
			if (target >= seg || ++jumps > DK_LABELS_MAX)
				return DK_EFORMERR;
			if (jumps == 1)
				after = p + 2;
			if (out)
				memcpy(out + run_n, msg + seg, n - run_n);
			run_n = n;
			p = seg = target;
			continue;
		}
		if (l > DK_LABEL_MAX)
			return DK_ELABEL;
		if (msg_len - p - 1 < l)
			return DK_EFORMERR;
		/* This label plus the root label must fit in DK_NAME_MAX. */
		if (n + 1 + l + 1 > DK_NAME_MAX)
			return DK_ENAMELEN;
		n += 1 + (size_t)l;
		p += 1 + (size_t)l;
	}
	if (out) {
		memcpy(out + run_n, msg + seg, n - run_n);
		out[n] = 0;
		/* Length octets are below 'A': the whole name is lowered at once. */
		lower_inplace(out, n);
	}
	*off = jumps ? after : p + 1;
	if (out_len)
		*out_len = n + 1;
	return 0;
}

int dk_name_from_wire(const uint8_t *msg, size_t msg_len, size_t *off, uint8_t out[DK_NAME_MAX],
                      size_t *out_len)
{
	return read_wire_name(msg, msg_len, off, false, out, out_len);
}

int dk_name_from_wire_compressed(const uint8_t *msg, size_t msg_len, size_t *off,
                                 uint8_t out[DK_NAME_MAX], size_t *out_len)
{
	return read_wire_name(msg, msg_len, off, true, out, out_len);
}

int dk_name_to_text(const uint8_t *wire, size_t len, char *out, size_t size)
{
	size_t p = 0;
	size_t w = 0;

	if (len == 0)
		return DK_ENAME;
	if (wire[0] == 0) {
		if (size < 2)
			return DK_ESPACE;
		out[0] = '.';
		out[1] = '\0';
		return 1;
	}
	while (p < len && wire[p] != 0) {
		size_t l = wire[p++];

		if (l > DK_LABEL_MAX || l > len - p)
			return DK_ENAME;
		if (w > 0) {
			if (w + 1 >= size)
				return DK_ESPACE;
			out[w++] = '.';
		}
		for (size_t i = 0; i < l; i++) {
			uint8_t c = lower(wire[p + i]);

			/*
			 * The three characters that would change the meaning
			 * of the text get the short "\X" form, like dig and
			 * ldns print them; anything outside printable ASCII
			 * (space included) becomes \DDD.
			 */
			if (c == '.' || c == '\\' || c == '"') {
				if (w + 2 >= size)
					return DK_ESPACE;
				out[w++] = '\\';
				out[w++] = (char)c;
			} else if (c <= ' ' || c >= 0x7f) {
				if (w + 4 >= size)
					return DK_ESPACE;
				out[w++] = '\\';
				out[w++] = (char)('0' + c / 100);
				out[w++] = (char)('0' + c / 10 % 10);
				out[w++] = (char)('0' + c % 10);
			} else {
				if (w + 1 >= size)
					return DK_ESPACE;
				out[w++] = (char)c;
			}
		}
		p += l;
	}
	if (w >= size)
		return DK_ESPACE;
	out[w] = '\0';
	return (int)w;
}

int dk_name_labels(const uint8_t *wire, size_t len, uint8_t offs[DK_LABELS_MAX])
{
	size_t p = 0;
	int n = 0;

	while (p < len && wire[p] != 0 && n < DK_LABELS_MAX) {
		offs[n++] = (uint8_t)p;
		p += 1 + (size_t)wire[p];
	}
	return n;
}

void dk_name_lower(uint8_t *p, size_t len)
{
	lower_inplace(p, len);
}

bool dk_name_equal_nocase(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t i = 0;

	if (alen != blen)
		return false;
	if (alen < 8) {
		for (; i < alen; i++) {
			if (lower(a[i]) != lower(b[i]))
				return false;
		}
		return true;
	}
	for (; i + 8 <= alen; i += 8) {
		if (lower8(load8(a + i)) != lower8(load8(b + i)))
			return false;
	}
	return i == alen || lower8(load8(a + alen - 8)) == lower8(load8(b + alen - 8));
}
