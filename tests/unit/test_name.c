/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of name.c: presentation text to wire form (case, escapes, length
 * limits, empty labels, the host-name restriction), reading names out of
 * messages (truncation, label types, compression pointers that loop or point
 * forward), and wire form back to text. Expected wire names are assembled
 * label by label by a helper here, independently of the code under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dnsink/name.h"

/*
 * Builds a wire name from the labels in @spec, separated by '|' (so a label
 * may contain a dot); "" is the root name. Returns its length.
 */
static size_t mkwire(const char *spec, uint8_t *out)
{
	size_t n = 0;
	const char *p = spec;

	while (*p) {
		const char *e = strchr(p, '|');
		size_t l = e ? (size_t)(e - p) : strlen(p);

		out[n++] = (uint8_t)l;
		memcpy(out + n, p, l);
		n += l;
		p += l;
		if (*p == '|')
			p++;
	}
	out[n++] = 0;
	return n;
}

/* Writes a text name of @labels labels of @llen 'x's each plus one of @last. */
static size_t mktext(char *out, int labels, int llen, int last)
{
	size_t n = 0;

	for (int i = 0; i < labels; i++) {
		memset(out + n, 'x', (size_t)llen);
		n += (size_t)llen;
		out[n++] = '.';
	}
	memset(out + n, 'y', (size_t)last);
	n += (size_t)last;
	out[n] = '\0';
	return n;
}

struct text_case {
	const char *text;
	unsigned flags;
	int rc;
	const char *labels; /* expected labels, '|'-separated, when rc == 0 */
};

static const struct text_case text_cases[] = {
        {"example.com", 0, 0, "example|com"},
        {"Example.COM", 0, 0, "example|com"},
        {"example.com.", 0, 0, "example|com"},
        {"EXAMPLE.com.", DK_NAME_HOSTNAME, 0, "example|com"},
        {".", 0, 0, ""},
        {".", DK_NAME_HOSTNAME, 0, ""},
        {"com", 0, 0, "com"},
        {"a\\.b.com", 0, 0, "a.b|com"},
        {"a.b.com", 0, 0, "a|b|com"},
        {"\\065Bc.com", 0, 0, "abc|com"},
        {"\\097\\098\\099", 0, 0, "abc"},
        {"a\\\\b", 0, 0, "a\\b"},
        {"a\\\"b", 0, 0, "a\"b"},
        {"a\\Xb", 0, 0, "axb"},
        {"a b.com", 0, 0, "a b|com"},
        {"_dmarc.ex-ample.com", DK_NAME_HOSTNAME, 0, "_dmarc|ex-ample|com"},
        {"0.1.2.3", DK_NAME_HOSTNAME, 0, "0|1|2|3"},
        {"\\065.com", DK_NAME_HOSTNAME, 0, "a|com"},
        /* Refused. */
        {"", 0, DK_ENAME, NULL},
        {"..", 0, DK_ENAME, NULL},
        {"a..b", 0, DK_ENAME, NULL},
        {".a", 0, DK_ENAME, NULL},
        {"a..", 0, DK_ENAME, NULL},
        {"a\\", 0, DK_ENAME, NULL},
        {"a\\1", 0, DK_ENAME, NULL},
        {"a\\12", 0, DK_ENAME, NULL},
        {"a\\12x", 0, DK_ENAME, NULL},
        {"a\\256", 0, DK_ENAME, NULL},
        {"a\\999", 0, DK_ENAME, NULL},
        {"a b.com", DK_NAME_HOSTNAME, DK_ENAME, NULL},
        {"a:b.com", DK_NAME_HOSTNAME, DK_ENAME, NULL},
        {"*.example.com", DK_NAME_HOSTNAME, DK_ENAME, NULL},
        {"a/b.com", DK_NAME_HOSTNAME, DK_ENAME, NULL},
        {"a@b.com", DK_NAME_HOSTNAME, DK_ENAME, NULL},
        {"a\\.b.com", DK_NAME_HOSTNAME, DK_ENAME, NULL},
        {"a\\032b.com", DK_NAME_HOSTNAME, DK_ENAME, NULL},
        {"caf\xc3\xa9.fr", DK_NAME_HOSTNAME, DK_ENAME, NULL},
        {"tab\t.com", DK_NAME_HOSTNAME, DK_ENAME, NULL},
        {"a,b.com", DK_NAME_HOSTNAME, DK_ENAME, NULL},
};

static void test_from_text_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < DK_ARRAY_SIZE(text_cases); i++) {
		const struct text_case *c = &text_cases[i];
		uint8_t out[DK_NAME_MAX], want[DK_NAME_MAX + 64];
		size_t out_len = 0;
		int rc = dk_name_from_text(c->text, strlen(c->text), c->flags, out, &out_len);

		if (rc != c->rc)
			fail_msg("case %zu \"%s\": rc %d, want %d", i, c->text, rc, c->rc);
		if (rc != 0)
			continue;
		size_t want_len = mkwire(c->labels, want);
		assert_int_equal(out_len, want_len);
		assert_memory_equal(out, want, want_len);
	}
}

static void test_escaped_dot_is_one_label(void **state)
{
	uint8_t a[DK_NAME_MAX], b[DK_NAME_MAX];
	size_t alen, blen;
	uint8_t offs[DK_LABELS_MAX];

	(void)state;
	assert_int_equal(dk_name_from_text("a\\.b.com", 8, 0, a, &alen), 0);
	assert_int_equal(dk_name_from_text("a.b.com", 7, 0, b, &blen), 0);
	/* Same octet count, different labels: must not compare equal. */
	assert_int_equal(alen, blen);
	assert_false(dk_name_equal_nocase(a, alen, b, blen));
	assert_int_equal(dk_name_labels(a, alen, offs), 2);
	assert_int_equal(dk_name_labels(b, blen, offs), 3);
}

/* Text that is not NUL-terminated: only @len octets count. */
static void test_from_text_len_bound(void **state)
{
	uint8_t out[DK_NAME_MAX], want[DK_NAME_MAX];
	size_t out_len;

	(void)state;
	assert_int_equal(dk_name_from_text("example.comXYZ", 11, 0, out, &out_len), 0);
	assert_int_equal(out_len, mkwire("example|com", want));
	assert_memory_equal(out, want, out_len);
}

static void test_label_limits(void **state)
{
	char text[600];
	uint8_t out[DK_NAME_MAX];
	size_t out_len, n;

	(void)state;
	n = mktext(text, 1, 63, 3);
	assert_int_equal(dk_name_from_text(text, n, 0, out, &out_len), 0);
	assert_int_equal(out_len, 1 + 63 + 1 + 3 + 1);
	assert_int_equal(out[0], 63);

	n = mktext(text, 1, 64, 3);
	assert_int_equal(dk_name_from_text(text, n, 0, out, &out_len), DK_ELABEL);
	n = mktext(text, 0, 0, 64);
	assert_int_equal(dk_name_from_text(text, n, 0, out, &out_len), DK_ELABEL);
	n = mktext(text, 0, 0, 63);
	assert_int_equal(dk_name_from_text(text, n, DK_NAME_HOSTNAME, out, &out_len), 0);

	/* An escaped octet counts once. */
	strcpy(text, "\\120");
	n = 4 + mktext(text + 4, 0, 0, 62);
	assert_int_equal(dk_name_from_text(text, n, 0, out, &out_len), 0);
	assert_int_equal(out[0], 63);
}

static void test_name_limits(void **state)
{
	char text[600];
	uint8_t out[DK_NAME_MAX];
	size_t out_len, n;

	(void)state;
	/* 3 x (1+63) + (1+61) + 1 = 255 octets in wire form. */
	n = mktext(text, 3, 63, 61);
	assert_int_equal(dk_name_from_text(text, n, 0, out, &out_len), 0);
	assert_int_equal(out_len, 255);
	assert_int_equal(out[254], 0);
	assert_int_equal(out[192], 61);
	/* With a trailing dot too. */
	text[n] = '.';
	assert_int_equal(dk_name_from_text(text, n + 1, 0, out, &out_len), 0);
	assert_int_equal(out_len, 255);

	n = mktext(text, 3, 63, 62);
	assert_int_equal(dk_name_from_text(text, n, 0, out, &out_len), DK_ENAMELEN);
	text[n] = '.';
	assert_int_equal(dk_name_from_text(text, n + 1, 0, out, &out_len), DK_ENAMELEN);

	/* 127 one-octet labels make 255 octets; 128 do not fit. */
	n = mktext(text, 126, 1, 1);
	assert_int_equal(dk_name_from_text(text, n, 0, out, &out_len), 0);
	assert_int_equal(out_len, 255);
	n = mktext(text, 127, 1, 1);
	assert_int_equal(dk_name_from_text(text, n, 0, out, &out_len), DK_ENAMELEN);

	/* Longer than any name: must stop without overrunning out. */
	n = mktext(text, 9, 60, 10);
	assert_int_equal(dk_name_from_text(text, n, 0, out, &out_len), DK_ENAMELEN);
}

/* Every possible single octet, escaped as \DDD, without and with HOSTNAME. */
static void test_all_octets(void **state)
{
	(void)state;
	for (unsigned c = 0; c < 256; c++) {
		char text[8];
		uint8_t out[DK_NAME_MAX];
		size_t out_len;
		int len = snprintf(text, sizeof(text), "\\%03u", c);

		assert_int_equal(dk_name_from_text(text, (size_t)len, 0, out, &out_len), 0);
		assert_int_equal(out_len, 3);
		unsigned low = (c >= 'A' && c <= 'Z') ? c + 32 : c;
		assert_int_equal(out[1], low);

		bool host = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		            (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
		int rc = dk_name_from_text(text, (size_t)len, DK_NAME_HOSTNAME, out, &out_len);
		assert_int_equal(rc, host ? 0 : DK_ENAME);
	}
}

struct wire_case {
	const char *what;
	uint8_t msg[32];
	size_t len;
	size_t off;
	int rc;
	const char *labels; /* when rc == 0 */
	size_t end;         /* *off after the call, when rc == 0 */
};

static const struct wire_case wire_cases[] = {
        {"plain", {3, 'w', 'w', 'w', 2, 'e', 'x', 0}, 8, 0, 0, "www|ex", 8},
        {"uppercase", {3, 'W', 'w', 'W', 2, 'E', 'X', 0}, 8, 0, 0, "www|ex", 8},
        {"at offset", {0xff, 0xff, 1, 'a', 0, 0xee}, 6, 2, 0, "a", 5},
        {"root", {0}, 1, 0, 0, "", 1},
        {"empty", {0}, 0, 0, DK_EFORMERR, NULL, 0},
        {"offset past end", {0}, 1, 1, DK_EFORMERR, NULL, 0},
        {"no root", {1, 'a'}, 2, 0, DK_EFORMERR, NULL, 0},
        {"label past end", {3, 'a', 'b'}, 3, 0, DK_EFORMERR, NULL, 0},
        {"pointer", {1, 'a', 0xc0, 0}, 4, 0, DK_EFORMERR, NULL, 0},
        {"type 0x40", {0x41, 'a', 0}, 3, 0, DK_ELABEL, NULL, 0},
        {"type 0x80", {1, 'a', 0x81, 'b', 0}, 5, 0, DK_ELABEL, NULL, 0},
};

static void test_from_wire_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < DK_ARRAY_SIZE(wire_cases); i++) {
		const struct wire_case *c = &wire_cases[i];

		for (int with_out = 0; with_out < 2; with_out++) {
			uint8_t out[DK_NAME_MAX], want[DK_NAME_MAX];
			size_t off = c->off, out_len = 0;
			int rc = dk_name_from_wire(c->msg, c->len, &off, with_out ? out : NULL,
			                           &out_len);

			if (rc != c->rc)
				fail_msg("%s: rc %d, want %d", c->what, rc, c->rc);
			if (rc != 0) {
				assert_int_equal(off, c->off);
				continue;
			}
			size_t want_len = mkwire(c->labels, want);
			assert_int_equal(out_len, want_len);
			assert_int_equal(off, c->end);
			if (with_out)
				assert_memory_equal(out, want, want_len);
		}
	}
}

/* Every truncation of a valid name in a message is refused. */
static void test_from_wire_truncated(void **state)
{
	uint8_t msg[DK_NAME_MAX];
	size_t len = mkwire("www|example|com", msg);

	(void)state;
	for (size_t cut = 0; cut < len; cut++) {
		size_t off = 0, out_len;
		uint8_t out[DK_NAME_MAX];

		assert_int_equal(dk_name_from_wire(msg, cut, &off, out, &out_len), DK_EFORMERR);
		off = 0;
		assert_int_equal(dk_name_from_wire_compressed(msg, cut, &off, out, &out_len),
		                 DK_EFORMERR);
	}
}

static void test_from_wire_length(void **state)
{
	char text[600];
	uint8_t msg[300], out[DK_NAME_MAX];
	size_t n, len, off, out_len;

	(void)state;
	n = mktext(text, 3, 63, 61);
	assert_int_equal(dk_name_from_text(text, n, 0, msg, &len), 0);
	assert_int_equal(len, 255);
	off = 0;
	assert_int_equal(dk_name_from_wire(msg, len, &off, out, &out_len), 0);
	assert_int_equal(out_len, 255);
	assert_memory_equal(out, msg, 255);

	/* Grow the last label by one octet: 256 octets. */
	msg[192] = 62;
	msg[254] = 'y';
	msg[255] = 0;
	off = 0;
	assert_int_equal(dk_name_from_wire(msg, 256, &off, out, &out_len), DK_ENAMELEN);
	off = 0;
	assert_int_equal(dk_name_from_wire(msg, 256, &off, NULL, &out_len), DK_ENAMELEN);
	off = 0;
	assert_int_equal(dk_name_from_wire_compressed(msg, 256, &off, out, &out_len), DK_ENAMELEN);
}

struct comp_case {
	const char *what;
	size_t start;
	int rc;
	const char *labels;
	size_t end;
};

/*
 * The message used by the compression cases:
 *   0: 7 example 3 com 0          "example.com"
 *  13: 3 www 0xc0 0               "www" -> 0
 *  19: 4 mail 0xc0 13             "mail" -> 13 -> 0
 *  26: 0xc0 19                    -> 19 -> 13 -> 0
 *  28: 1 a 0xc0 28                points at itself
 *  32: 1 b 0xc0 34                points forward
 *  36: 0xc0 32                    -> 32, whose pointer then goes forward
 *  38: 1 c 0xc0 39                points inside its own label run
 *  42: 1 d 0xc0 38                -> 38 -> 39: not before the run at 38
 *  46: 0xc0                       truncated pointer
 */
static const uint8_t comp_msg[] = {
        7,    'e', 'x',  'a', 'm',  'p',  'l', 'e', 3, 'c', 'o', 'm', 0, /* 0 */
        3,    'W', 'W',  'W', 0xc0, 0,                                   /* 13 */
        4,    'm', 'a',  'i', 'l',  0xc0, 13,                            /* 19 */
        0xc0, 19,                                                        /* 26 */
        1,    'a', 0xc0, 28,                                             /* 28 */
        1,    'b', 0xc0, 34,                                             /* 32 */
        0xc0, 32,                                                        /* 36 */
        1,    'c', 0xc0, 39,                                             /* 38 */
        1,    'd', 0xc0, 38,                                             /* 42 */
        0xc0,                                                            /* 46 */
};

static const struct comp_case comp_cases[] = {
        {"no pointer", 0, 0, "example|com", 13},
        {"one jump", 13, 0, "www|example|com", 19},
        {"two jumps", 19, 0, "mail|www|example|com", 26},
        {"pointer first", 26, 0, "mail|www|example|com", 28},
        {"self loop", 28, DK_EFORMERR, NULL, 0},
        {"forward", 32, DK_EFORMERR, NULL, 0},
        {"back then forward", 36, DK_EFORMERR, NULL, 0},
        {"into own run", 38, DK_EFORMERR, NULL, 0},
        {"chain into own run", 42, DK_EFORMERR, NULL, 0},
        {"truncated pointer", 46, DK_EFORMERR, NULL, 0},
};

static void test_compressed_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < DK_ARRAY_SIZE(comp_cases); i++) {
		const struct comp_case *c = &comp_cases[i];
		uint8_t out[DK_NAME_MAX], want[DK_NAME_MAX];
		size_t off = c->start, out_len = 0;
		int rc = dk_name_from_wire_compressed(comp_msg, sizeof(comp_msg), &off, out,
		                                      &out_len);

		if (rc != c->rc)
			fail_msg("%s: rc %d, want %d", c->what, rc, c->rc);
		if (rc != 0)
			continue;
		size_t want_len = mkwire(c->labels, want);
		assert_int_equal(out_len, want_len);
		assert_memory_equal(out, want, want_len);
		assert_int_equal(off, c->end);

		/* The plain reader refuses any name that holds a pointer. */
		off = c->start;
		rc = dk_name_from_wire(comp_msg, sizeof(comp_msg), &off, out, &out_len);
		assert_int_equal(rc, c->end - c->start == want_len ? 0 : DK_EFORMERR);
	}
}

/*
 * A chain of pointers, each aiming two octets back, ending at a root label:
 * legal, but only up to DK_LABELS_MAX jumps.
 */
static void test_compressed_jump_bound(void **state)
{
	uint8_t msg[1 + 2 * 200];
	uint8_t out[DK_NAME_MAX];
	size_t out_len;

	(void)state;
	msg[0] = 0;
	for (size_t k = 0; k < 200; k++) {
		size_t at = 1 + 2 * k;
		size_t target = k == 0 ? 0 : at - 2;
		msg[at] = (uint8_t)(0xc0 | target >> 8);
		msg[at + 1] = (uint8_t)target;
	}
	for (size_t jumps = 1; jumps <= 200; jumps++) {
		size_t start = 1 + 2 * (jumps - 1);
		size_t off = start;
		int rc = dk_name_from_wire_compressed(msg, sizeof(msg), &off, out, &out_len);

		if (jumps <= DK_LABELS_MAX) {
			assert_int_equal(rc, 0);
			assert_int_equal(out_len, 1);
			assert_int_equal(off, start + 2);
		} else {
			assert_int_equal(rc, DK_EFORMERR);
		}
	}
}

static void test_compressed_label_types(void **state)
{
	const uint8_t m40[] = {1, 'a', 0, 0x40, 0xc0, 0};
	const uint8_t m80[] = {1, 'a', 0, 0x80, 0};
	uint8_t out[DK_NAME_MAX];
	size_t off, out_len;

	(void)state;
	off = 3;
	assert_int_equal(dk_name_from_wire_compressed(m40, sizeof(m40), &off, out, &out_len),
	                 DK_ELABEL);
	off = 3;
	assert_int_equal(dk_name_from_wire_compressed(m80, sizeof(m80), &off, out, &out_len),
	                 DK_ELABEL);
}

/* Pseudo-random bytes must never crash either reader or yield a bad name. */
static void test_wire_random(void **state)
{
	uint64_t x = 0x243f6a8885a308d3u;
	uint8_t msg[64], out[DK_NAME_MAX], offs[DK_LABELS_MAX];

	(void)state;
	for (int iter = 0; iter < 200000; iter++) {
		for (size_t i = 0; i < sizeof(msg); i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			/* Small octets make plausible lengths more often. */
			msg[i] = (uint8_t)((x & 3) ? x >> 8 & 0x0f : x >> 8);
		}
		size_t len = 1 + (x >> 20) % sizeof(msg);
		size_t start = (x >> 30) % len;
		for (int comp = 0; comp < 2; comp++) {
			size_t off = start, out_len = 0;
			int rc = comp ? dk_name_from_wire_compressed(msg, len, &off, out, &out_len)
			              : dk_name_from_wire(msg, len, &off, out, &out_len);
			if (rc != 0)
				continue;
			assert_true(off > start && off <= len);
			assert_true(out_len >= 1 && out_len <= DK_NAME_MAX);
			int n = dk_name_labels(out, out_len, offs);
			size_t p = n ? offs[n - 1] + 1u + out[offs[n - 1]] : 0;
			assert_int_equal(p, out_len - 1);
			assert_int_equal(out[p], 0);
		}
	}
}

struct totext_case {
	const char *labels;
	const char *text;
};

static const struct totext_case totext_cases[] = {
        {"", "."},
        {"com", "com"},
        {"WWW|Example|COM", "www.example.com"},
        {"a.b|com", "a\\.b.com"},
        {"a\\b", "a\\\\b"},
        {"say\"hi\"", "say\\\"hi\\\""},
        {"a b", "a\\032b"},
        {"\x7f\x01", "\\127\\001"},
        {"_x-y", "_x-y"},
};

static void test_to_text_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < DK_ARRAY_SIZE(totext_cases); i++) {
		const struct totext_case *c = &totext_cases[i];
		uint8_t w[DK_NAME_MAX], back[DK_NAME_MAX];
		char text[1100];
		size_t len = mkwire(c->labels, w), back_len;
		int n = dk_name_to_text(w, len, text, sizeof(text));

		assert_int_equal(n, (int)strlen(c->text));
		assert_string_equal(text, c->text);

		/* Exactly enough room (text and NUL), and one octet less. */
		assert_int_equal(dk_name_to_text(w, len, text, (size_t)n + 1), n);
		assert_int_equal(dk_name_to_text(w, len, text, (size_t)n), DK_ESPACE);

		/* The text reads back as the lowercased name. */
		assert_int_equal(dk_name_from_text(text, (size_t)n, 0, back, &back_len), 0);
		dk_name_lower(w, len);
		assert_int_equal(back_len, len);
		assert_memory_equal(back, w, len);
	}
}

/* Random names over all 256 octet values survive text and back. */
static void test_to_text_roundtrip_random(void **state)
{
	uint64_t x = 0x13198a2e03707344u;

	(void)state;
	for (int iter = 0; iter < 20000; iter++) {
		uint8_t w[DK_NAME_MAX], back[DK_NAME_MAX];
		char text[4 * DK_NAME_MAX + 8];
		size_t len = 0, back_len;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int labels = (int)(x % 8);
		for (int l = 0; l < labels; l++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			size_t ll = 1 + x % DK_LABEL_MAX;
			if (len + 1 + ll + 1 > DK_NAME_MAX)
				break;
			w[len++] = (uint8_t)ll;
			for (size_t j = 0; j < ll; j++) {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				w[len++] = (uint8_t)(x >> 24);
			}
		}
		w[len++] = 0;

		int n = dk_name_to_text(w, len, text, sizeof(text));
		assert_true(n > 0);
		assert_int_equal((size_t)n, strlen(text));
		for (int j = 0; j < n; j++)
			assert_true(text[j] > ' ' && text[j] < 0x7f &&
			            !(text[j] >= 'A' && text[j] <= 'Z'));
		assert_int_equal(dk_name_from_text(text, (size_t)n, 0, back, &back_len), 0);
		dk_name_lower(w, len);
		assert_int_equal(back_len, len);
		assert_memory_equal(back, w, len);
	}
}

static void test_labels(void **state)
{
	uint8_t w[DK_NAME_MAX], offs[DK_LABELS_MAX];
	size_t len;

	(void)state;
	len = mkwire("www|example|com", w);
	assert_int_equal(dk_name_labels(w, len, offs), 3);
	assert_int_equal(offs[0], 0);
	assert_int_equal(offs[1], 4);
	assert_int_equal(offs[2], 12);
	len = mkwire("", w);
	assert_int_equal(dk_name_labels(w, len, offs), 0);

	char text[300];
	size_t n = mktext(text, 126, 1, 1);
	assert_int_equal(dk_name_from_text(text, n, 0, w, &len), 0);
	assert_int_equal(dk_name_labels(w, len, offs), DK_LABELS_MAX);
	for (int i = 0; i < DK_LABELS_MAX; i++)
		assert_int_equal(offs[i], 2 * i);
}

static void test_lower_equal(void **state)
{
	uint8_t a[DK_NAME_MAX], b[DK_NAME_MAX];
	size_t alen = mkwire("WwW|ExAmPlE|cOm", a);
	size_t blen = mkwire("www|example|com", b);

	(void)state;
	assert_true(dk_name_equal_nocase(a, alen, b, blen));
	assert_false(dk_name_equal_nocase(a, alen, b, blen - 1));
	b[5] = 'x';
	assert_false(dk_name_equal_nocase(a, alen, b, blen));
	b[5] = 'e';
	/* '@' and '[' flank 'A'..'Z' and must not be folded. */
	blen = mkwire("@[", b);
	alen = mkwire("`{", a);
	assert_false(dk_name_equal_nocase(a, alen, b, blen));

	alen = mkwire("WwW|ExAmPlE|cOm", a);
	dk_name_lower(a, alen);
	blen = mkwire("www|example|com", b);
	assert_memory_equal(a, b, blen);

	uint8_t all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	dk_name_lower(all, sizeof(all));
	for (int i = 0; i < 256; i++)
		assert_int_equal(all[i], (i >= 'A' && i <= 'Z') ? i + 32 : i);
}

static uint8_t ref_lower(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

/*
 * The word-at-a-time lowering and comparison: every octet value at every
 * position of every length up to 40 (short names, whole words, overlapping
 * last words), against the one-octet definition.
 */
static void test_lower_equal_every_position(void **state)
{
	uint8_t a[48], b[48], c[48];

	(void)state;
	for (size_t len = 1; len <= 40; len++) {
		for (size_t pos = 0; pos < len; pos++) {
			for (int v = 0; v < 256; v++) {
				for (size_t i = 0; i < len; i++)
					a[i] = (uint8_t)('a' + (i * 7 + len) % 26);
				a[pos] = (uint8_t)v;
				memcpy(c, a, len);
				dk_name_lower(c, len);
				for (size_t i = 0; i < len; i++)
					assert_int_equal(c[i], ref_lower(a[i]));
				/* b: a with only the octet at pos replaced by its other case. */
				memcpy(b, a, len);
				if (v >= 'a' && v <= 'z')
					b[pos] = (uint8_t)(v - 32);
				else if (v >= 'A' && v <= 'Z')
					b[pos] = (uint8_t)(v + 32);
				assert_true(dk_name_equal_nocase(a, len, b, len));
				/* And one that differs there in more than case. */
				b[pos] = (uint8_t)(v ^ 0x01);
				assert_int_equal(dk_name_equal_nocase(a, len, b, len),
				                 ref_lower(a[pos]) == ref_lower(b[pos]));
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_from_text_table),
	        cmocka_unit_test(test_escaped_dot_is_one_label),
	        cmocka_unit_test(test_from_text_len_bound),
	        cmocka_unit_test(test_label_limits),
	        cmocka_unit_test(test_name_limits),
	        cmocka_unit_test(test_all_octets),
	        cmocka_unit_test(test_from_wire_table),
	        cmocka_unit_test(test_from_wire_truncated),
	        cmocka_unit_test(test_from_wire_length),
	        cmocka_unit_test(test_compressed_table),
	        cmocka_unit_test(test_compressed_jump_bound),
	        cmocka_unit_test(test_compressed_label_types),
	        cmocka_unit_test(test_wire_random),
	        cmocka_unit_test(test_to_text_table),
	        cmocka_unit_test(test_to_text_roundtrip_random),
	        cmocka_unit_test(test_labels),
	        cmocka_unit_test(test_lower_equal),
	        cmocka_unit_test(test_lower_equal_every_position),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
