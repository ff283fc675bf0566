/* SPDX-License-Identifier: MIT */
/*
 * BIND 9 query log lines, as the querylog channel writes them:
 *
 *   01-Dec-2026 11:00:00.123 queries: info: client @0x7f2d4c01a168
 *       10.0.0.5#53211 (example.com): view v: query: example.com IN A +E(0)K (10.0.0.1)
 *
 * (one line). The time ("print-time yes", "iso8601", "iso8601-utc", or a
 * syslog header), "queries: info: " and the view are optional. The flags
 * after the type say the transport: 'T' is TCP.
 */
#include <string.h>
#include <time.h>

#include "dnsink/alert.h"
#include "dnsink/logrec.h"

static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

static int month(const char *p)
{
	for (int i = 0; i < 12; i++)
		if (memcmp(p, months + 3 * i, 3) == 0)
			return i;
	return -1;
}

static bool dig(const char *s, size_t n, int *out)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/*
 * Local time to epoch ms. mktime() is slow and takes a lock, so each thread
 * keeps the hour it converted last (log lines come in time order).
 */
static bool local_ms(int y, int mon, int d, int h, int mi, int s, int ms, uint64_t *out)
{
	static _Thread_local struct {
		int y, mon, d, h;
		time_t base;
		bool valid;
	} c;

	if (!c.valid || c.y != y || c.mon != mon || c.d != d || c.h != h) {
		struct tm tm = {.tm_year = y - 1900,
		                .tm_mon = mon,
		                .tm_mday = d,
		                .tm_hour = h,
		                .tm_isdst = -1};
		time_t t = mktime(&tm);
		if (t == (time_t)-1)
			return false;
		c.y = y;
		c.mon = mon;
		c.d = d;
		c.h = h;
		c.base = t;
		c.valid = true;
	}
	if (c.base + mi * 60 + s < 0)
		return false;
	*out = (uint64_t)(c.base + mi * 60 + s) * 1000 + (uint64_t)ms;
	return true;
}

/* "DD-Mon-YYYY HH:MM:SS.mmm" */
static bool bind_time(const char *p, size_t n, uint64_t *ms)
{
	int d, y, h, mi, s, frac = 0, mon;

	if (n < 20 || p[2] != '-' || p[6] != '-' || p[11] != ' ' || p[14] != ':' || p[17] != ':' ||
	    !dig(p, 2, &d) || (mon = month(p + 3)) < 0 || !dig(p + 7, 4, &y) ||
	    !dig(p + 12, 2, &h) || !dig(p + 15, 2, &mi) || !dig(p + 18, 2, &s))
		return false;
	if (n >= 24 && p[20] == '.' && !dig(p + 21, 3, &frac))
		return false;
	return local_ms(y, mon, d, h, mi, s, frac, ms);
}

/* A syslog header "Mon DD HH:MM:SS": no year, so the current one. */
static bool syslog_time(const char *p, size_t n, uint64_t *ms)
{
	int d, h, mi, s, mon;
	char dd[2] = {p[4] == ' ' ? '0' : p[4], p[5]};

	if (n < 15 || p[3] != ' ' || p[9] != ':' || p[12] != ':' || (mon = month(p)) < 0 ||
	    !dig(dd, 2, &d) || !dig(p + 7, 2, &h) || !dig(p + 10, 2, &mi) || !dig(p + 13, 2, &s))
		return false;
	time_t now = time(NULL);
	struct tm tm;
	if (!localtime_r(&now, &tm))
		return false;
	return local_ms(tm.tm_year + 1900, mon, d, h, mi, s, 0, ms);
}

static void line_time(const char *line, size_t pre, struct dk_logrec *r)
{
	const char *sp = memchr(line, ' ', pre);

	if (bind_time(line, pre, &r->time_ms))
		return;
	if (sp && dk_log_parse_iso_time(line, (size_t)(sp - line), &r->time_ms) == 0)
		return;
	if (pre >= 15 && syslog_time(line, pre, &r->time_ms))
		return;
	r->time_ms = 0;
}

static const char *find(const char *p, const char *end, const char *what)
{
	size_t n = strlen(what);

	for (; end - p >= (ptrdiff_t)n; p++)
		if (*p == what[0] && memcmp(p, what, n) == 0)
			return p;
	return NULL;
}

int dk_log_parse_bind(const char *line, size_t len, struct dk_logrec *r)
{
	const char *end = line + len;
	int rc;

	while (end > line && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	if (end == line)
		return DK_LOG_SKIP;
	const char *c = find(line, end, "client ");
	const char *q = c ? find(c, end, ": query: ") : NULL;
	if (!q)
		return DK_LOGERR_BIND;
	dk_logrec_reset(r, DK_LOGFMT_BIND);
	line_time(line, (size_t)(c - line), r);

	/* client [@0x...] ADDR#PORT (NAME): [view V: ]query: */
	const char *p = c + 7;
	if (p >= q)
		return DK_LOGERR_BIND;
	/* Everything up to ": query: " belongs to the client part: search no further. */
	if (*p == '@') {
		p = memchr(p, ' ', (size_t)(q - p));
		if (!p)
			return DK_LOGERR_BIND;
		p++;
	}
	const char *hash = memchr(p, '#', (size_t)(q - p));
	if (!hash)
		return DK_LOGERR_BIND;
	if ((rc = dk_logrec_set_addr(r, p, (size_t)(hash - p))))
		return rc;
	unsigned port = 0;
	for (p = hash + 1; p < q && *p >= '0' && *p <= '9'; p++)
		port = port * 10 + (unsigned)(*p - '0');
	r->port = port <= 65535 ? (uint16_t)port : 0;

	/* query: NAME CLASS TYPE FLAGS (SERVER) */
	p = q + 9;
	const char *sp = memchr(p, ' ', (size_t)(end - p));
	if (!sp)
		return DK_LOGERR_BIND;
	if ((rc = dk_logrec_set_qname(r, p, (size_t)(sp - p))))
		return rc;
	const char *cls = sp + 1;
	const char *sp2 = memchr(cls, ' ', (size_t)(end - cls));
	if (!sp2)
		return DK_LOGERR_BIND;
	const char *type = sp2 + 1;
	const char *sp3 = memchr(type, ' ', (size_t)(end - type));
	r->qtype = dk_log_qtype(type, (size_t)((sp3 ? sp3 : end) - type));
	if (sp3) {
		const char *flags = sp3 + 1;
		const char *fe = memchr(flags, ' ', (size_t)(end - flags));
		if (!fe)
			fe = end;
		if ((*flags == '+' || *flags == '-') && memchr(flags, 'T', (size_t)(fe - flags)))
			r->transport = DK_TRANSPORT_TCP;
	}
	return 0;
}
