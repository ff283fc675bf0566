/* SPDX-License-Identifier: MIT */
/* Control-socket request lines and HTTP request heads (see request.h). */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "dnsink/request.h"

static const struct {
	const char *name;
	enum dk_ctl_cmd cmd;
	int args; /* 0: none, 1: one, 2: an optional one */
} commands[] = {
        {"status", DK_CTL_STATUS, 0},       {"stats", DK_CTL_STATS, 0},
        {"reload", DK_CTL_RELOAD, 0},       {"flush", DK_CTL_FLUSH, 1},
        {"flush-all", DK_CTL_FLUSH_ALL, 0}, {"top", DK_CTL_TOP, 2},
        {"match", DK_CTL_MATCH, 1},
};

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* The next word of [*p, end): NUL-terminated in place; NULL when none is left. */
static char *next_word(char **p, char *end)
{
	while (*p < end && is_blank(**p))
		(*p)++;
	if (*p == end)
		return NULL;
	char *w = *p;
	while (*p < end && !is_blank(**p))
		(*p)++;
	if (*p < end)
		*(*p)++ = '\0';
	return w;
}

int dk_ctl_parse(char *line, size_t len, struct dk_ctl_req *out, const char **why)
{
	char *p = line, *end = line + len;

	if (memchr(line, '\0', len)) {
		*why = "a NUL in the request";
		return -EINVAL;
	}
	/* A CRLF line end from a telnet-like client. */
	if (len && end[-1] == '\r')
		*--end = '\0';
	char *cmd = next_word(&p, end);
	char *arg = cmd ? next_word(&p, end) : NULL;
	char *extra = arg ? next_word(&p, end) : NULL;
	if (!cmd) {
		*why = "empty request";
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(cmd, commands[i].name) != 0)
			continue;
		if (extra || (commands[i].args == 0 && arg) || (commands[i].args == 1 && !arg)) {
			*why = commands[i].args == 1   ? "needs one argument"
			       : commands[i].args == 2 ? "takes at most one argument"
			                               : "takes no argument";
			return -EINVAL;
		}
		out->cmd = commands[i].cmd;
		out->arg = arg;
		return 0;
	}
	*why = "unknown command (status, stats, reload, flush NAME, flush-all, top [N], match "
	       "NAME)";
	return -EINVAL;
}

bool dk_http_target(const char *req, size_t len, const char **path, size_t *path_len,
                    const char **query, size_t *query_len)
{
	const char *p = req, *end = req + len;

	if (len < 4 || memcmp(p, "GET ", 4) != 0)
		return false;
	p += 4;
	*path = p;
	while (p < end && *p != ' ' && *p != '?' && *p != '\r' && *p != '\n')
		p++;
	*path_len = (size_t)(p - *path);
	*query = p;
	*query_len = 0;
	if (p < end && *p == '?') {
		*query = ++p;
		while (p < end && *p != ' ' && *p != '\r' && *p != '\n')
			p++;
		*query_len = (size_t)(p - *query);
	}
	return true;
}

/* Compares without an early exit, so that the time taken tells nothing of the token. */
static bool token_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	unsigned char diff = alen != blen;

	for (size_t i = 0; i < alen && i < blen; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

bool dk_http_has_token(const char *req, size_t len, const char *query, size_t query_len,
                       const char *token)
{
	static const char hdr[] = "\nauthorization: bearer ";
	const size_t hlen = sizeof(hdr) - 1;
	size_t tlen = strlen(token);

	for (size_t i = 0; i + hlen <= len; i++) {
		if (strncasecmp(req + i, hdr, hlen) != 0)
			continue;
		const char *v = req + i + hlen, *e = v;
		while (e < req + len && *e != '\r' && *e != '\n')
			e++;
		return token_equal(v, (size_t)(e - v), token, tlen);
	}
	for (const char *p = query, *end = query + query_len; p < end;) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *e = amp ? amp : end;
		if ((size_t)(e - p) >= 6 && memcmp(p, "token=", 6) == 0)
			return token_equal(p + 6, (size_t)(e - p - 6), token, tlen);
		p = e + 1;
	}
	return false;
}

unsigned dk_query_uint(const char *q, size_t qlen, const char *key, unsigned def, unsigned lo,
                       unsigned hi)
{
	size_t klen = strlen(key);

	for (const char *p = q, *end = q + qlen; p < end;) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *e = amp ? amp : end;
		if ((size_t)(e - p) > klen && memcmp(p, key, klen) == 0 && p[klen] == '=') {
			unsigned long v = 0;
			const char *c = p + klen + 1;
			if (c == e)
				return def;
			for (; c < e; c++) {
				if (*c < '0' || *c > '9')
					return def;
				if (v <= hi)
					v = v * 10 + (unsigned long)(*c - '0');
			}
			return v < lo ? lo : v > hi ? hi : (unsigned)v;
		}
		p = e + 1;
	}
	return def;
}
