/* SPDX-License-Identifier: MIT */
/*
 * The JSON scanner (see json_scan.h). An explicit stack of open containers
 * replaces recursion, so nesting depth costs a bounded array, not the C
 * stack; every read checks the end of the input first.
 */
#include <string.h>

#include "dnsink/common.h"
#include "dnsink/json_scan.h"

struct frame {
	bool array;
	int index;              /**< next element's position (arrays) */
	struct dk_json_str key; /**< member name the container is the value of */
};

struct scan {
	const char *p;
	const char *end;
	struct frame st[DK_JSON_DEPTH];
	unsigned depth;
};

static void ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

/* Octets that end or interrupt a string's plain run: '"', '\\' and control octets. */
static const bool special[256] = {
        [0 ... 0x1f] = true,
        ['"'] = true,
        ['\\'] = true,
};

/* Reads a quoted string at s->p (on the quote); sets @p out and @p esc. */
static int string(struct scan *s, struct dk_json_str *out, bool *esc)
{
	const char *q = ++s->p;

	*esc = false;
	while (q < s->end) {
		unsigned char c = (unsigned char)*q;

		/* Most octets are plain: one table look-up sends them on. */
		if (!special[c]) {
			q++;
			continue;
		}
		if (c == '"') {
			out->p = s->p;
			out->len = (size_t)(q - s->p);
			s->p = q + 1;
			return 0;
		}
		if (c == '\\') {
			*esc = true;
			q += 2;
			continue;
		}
		if (c < 0x20)
			return DK_ESYNTAX;
		q++;
	}
	return DK_ESYNTAX;
}

static bool bare_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '.' || c == '@' || c == '$';
}

/* A member name: quoted, or bare as Panther's test records write some. */
static int member_name(struct scan *s, struct dk_json_str *out)
{
	bool esc;

	if (s->p < s->end && *s->p == '"')
		return string(s, out, &esc);
	const char *b = s->p;
	while (s->p < s->end && bare_char(*s->p))
		s->p++;
	if (s->p == b)
		return DK_ESYNTAX;
	out->p = b;
	out->len = (size_t)(s->p - b);
	return 0;
}

static int number(struct scan *s, struct dk_json_str *out)
{
	const char *b = s->p;
	size_t digits = 0;

	if (s->p < s->end && *s->p == '-')
		s->p++;
	while (s->p < s->end && ((*s->p >= '0' && *s->p <= '9') || *s->p == '.' || *s->p == 'e' ||
	                         *s->p == 'E' || *s->p == '+' || *s->p == '-')) {
		digits += *s->p >= '0' && *s->p <= '9';
		s->p++;
	}
	if (!digits)
		return DK_ESYNTAX;
	out->p = b;
	out->len = (size_t)(s->p - b);
	return 0;
}

static int literal(struct scan *s, const char *word, size_t n)
{
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return DK_ESYNTAX;
	s->p += n;
	return 0;
}

/* Fills the context part of @p leaf from the stack. */
static void where(const struct scan *s, struct dk_json_leaf *leaf)
{
	static const struct dk_json_str none = {"", 0};

	leaf->parent = none;
	leaf->index = -1;
	leaf->depth = s->depth;
	for (unsigned i = s->depth; i-- > 0;) {
		if (s->st[i].array) {
			if (leaf->index < 0)
				leaf->index = s->st[i].index;
			continue;
		}
		leaf->parent = s->st[i].key;
		break;
	}
	/* The innermost array, if it encloses the nearest object, is still the index. */
	for (unsigned i = s->depth; leaf->index < 0 && i-- > 0;)
		if (s->st[i].array)
			leaf->index = s->st[i].index;
}

static int scalar(struct scan *s, struct dk_json_str key, dk_json_leaf_fn fn, void *ctx, bool *stop)
{
	struct dk_json_leaf leaf = {.key = key, .escaped = false};
	int rc;

	switch (*s->p) {
	case '"':
		leaf.type = DK_JSON_STRING;
		rc = string(s, &leaf.val, &leaf.escaped);
		break;
	case 't':
		leaf.type = DK_JSON_TRUE;
		leaf.val = (struct dk_json_str){s->p, 4};
		rc = literal(s, "true", 4);
		break;
	case 'f':
		leaf.type = DK_JSON_FALSE;
		leaf.val = (struct dk_json_str){s->p, 5};
		rc = literal(s, "false", 5);
		break;
	case 'n':
		leaf.type = DK_JSON_NULL;
		leaf.val = (struct dk_json_str){s->p, 4};
		rc = literal(s, "null", 4);
		break;
	default: leaf.type = DK_JSON_NUMBER; rc = number(s, &leaf.val);
	}
	if (rc)
		return rc;
	where(s, &leaf);
	if (!fn(ctx, &leaf))
		*stop = true;
	return 0;
}

int dk_json_scan(const char *p, size_t len, dk_json_leaf_fn fn, void *ctx)
{
	struct scan s = {.p = p, .end = p + len, .depth = 0};
	struct dk_json_str key = {"", 0};
	bool stop = false;
	int rc;

value:
	ws(&s);
	if (s.p >= s.end)
		return DK_ESYNTAX;
	if (*s.p == '{' || *s.p == '[') {
		if (s.depth == DK_JSON_DEPTH)
			return DK_ESYNTAX;
		bool array = *s.p == '[';
		s.st[s.depth++] = (struct frame){.array = array, .index = 0, .key = key};
		s.p++;
		ws(&s);
		if (s.p < s.end && *s.p == (array ? ']' : '}')) {
			s.p++;
			s.depth--;
			goto after;
		}
		if (array)
			goto value;
		goto member;
	}
	if ((rc = scalar(&s, key, fn, ctx, &stop)))
		return rc;
	if (stop)
		return 0;
	goto after;

member:
	ws(&s);
	if ((rc = member_name(&s, &key)))
		return rc;
	ws(&s);
	if (s.p >= s.end || *s.p != ':')
		return DK_ESYNTAX;
	s.p++;
	goto value;

after:
	ws(&s);
	if (s.depth == 0)
		return s.p == s.end ? 0 : DK_ESYNTAX;
	if (s.p >= s.end)
		return DK_ESYNTAX;
	struct frame *top = &s.st[s.depth - 1];
	char close = top->array ? ']' : '}';
	if (*s.p == ',') {
		s.p++;
		ws(&s);
		/* A trailing comma, as Panther's test records have them. */
		if (s.p < s.end && *s.p == close) {
			s.p++;
			s.depth--;
			goto after;
		}
		if (top->array) {
			top->index++;
			key = top->key;
			goto value;
		}
		goto member;
	}
	if (*s.p != close)
		return DK_ESYNTAX;
	s.p++;
	s.depth--;
	goto after;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int hex4(const char *p, const char *end, unsigned *out)
{
	unsigned v = 0;

	if (end - p < 4)
		return DK_ESYNTAX;
	for (int i = 0; i < 4; i++) {
		int h = hexval(p[i]);
		if (h < 0)
			return DK_ESYNTAX;
		v = v << 4 | (unsigned)h;
	}
	*out = v;
	return 0;
}

int dk_json_unescape(struct dk_json_str s, char *out, size_t size)
{
	const char *p = s.p, *end = s.p + s.len;
	size_t n = 0;

	if (size == 0)
		return DK_ESPACE;
	while (p < end) {
		char c = *p++;
		unsigned cp;
		char u[4];
		size_t ul;

		if (c != '\\') {
			if (n + 1 >= size)
				return DK_ESPACE;
			out[n++] = c;
			continue;
		}
		if (p >= end)
			return DK_ESYNTAX;
		c = *p++;
		switch (c) {
		case '"':
		case '\\':
		case '/':
			u[0] = c;
			ul = 1;
			break;
		case 'b':
			u[0] = '\b';
			ul = 1;
			break;
		case 'f':
			u[0] = '\f';
			ul = 1;
			break;
		case 'n':
			u[0] = '\n';
			ul = 1;
			break;
		case 'r':
			u[0] = '\r';
			ul = 1;
			break;
		case 't':
			u[0] = '\t';
			ul = 1;
			break;
		case 'u':
			if (hex4(p, end, &cp))
				return DK_ESYNTAX;
			p += 4;
			if (cp >= 0xd800 && cp < 0xdc00) {
				unsigned lo;
				if (end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
				    hex4(p + 2, end, &lo) || lo < 0xdc00 || lo > 0xdfff)
					return DK_ESYNTAX;
				p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp < 0xe000) {
				return DK_ESYNTAX;
			}
			if (cp < 0x80) {
				u[0] = (char)cp;
				ul = 1;
			} else if (cp < 0x800) {
				u[0] = (char)(0xc0 | cp >> 6);
				u[1] = (char)(0x80 | (cp & 0x3f));
				ul = 2;
			} else if (cp < 0x10000) {
				u[0] = (char)(0xe0 | cp >> 12);
				u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
				u[2] = (char)(0x80 | (cp & 0x3f));
				ul = 3;
			} else {
				u[0] = (char)(0xf0 | cp >> 18);
				u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
				u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
				u[3] = (char)(0x80 | (cp & 0x3f));
				ul = 4;
			}
			break;
		default: return DK_ESYNTAX;
		}
		if (n + ul >= size)
			return DK_ESPACE;
		memcpy(out + n, u, ul);
		n += ul;
	}
	out[n] = '\0';
	return (int)n;
}
