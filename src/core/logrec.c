/* SPDX-License-Identifier: MIT */
/*
 * What every log reader shares (see logrec.h): format and error names,
 * names and addresses into a record, times without libc's time zone
 * machinery (UTC times are pure arithmetic; only BIND's local times need
 * mktime), rcode and type mnemonics, and sniffing a file's format.
 */
#include <arpa/inet.h>
#include <strings.h>
#include <string.h>

#include <ldns/ldns.h>

#include "dnsink/alert.h"
#include "dnsink/logrec.h"
#include "dnsink/name.h"

static const char *const fmt_names[DK_LOGFMT_COUNT] = {
        [DK_LOGFMT_AUTO] = "auto",     [DK_LOGFMT_ROUTE53] = "route53",
        [DK_LOGFMT_OCSF] = "ocsf",     [DK_LOGFMT_ZEEK] = "zeek",
        [DK_LOGFMT_DNSTAP] = "dnstap", [DK_LOGFMT_BIND] = "bind",
        [DK_LOGFMT_SYSMON] = "sysmon", [DK_LOGFMT_PIHOLE] = "pihole",
        [DK_LOGFMT_DNSINK] = "dnsink",
};

const char *dk_logfmt_name(enum dk_logfmt f)
{
	return (unsigned)f < DK_LOGFMT_COUNT ? fmt_names[f] : "?";
}

int dk_logfmt_parse(const char *s, enum dk_logfmt *out)
{
	for (unsigned i = 0; i < DK_LOGFMT_COUNT; i++) {
		if (strcmp(s, fmt_names[i]) == 0) {
			*out = (enum dk_logfmt)i;
			return 0;
		}
	}
	return DK_ESYNTAX;
}

const char *dk_logerr_name(int kind)
{
	switch (kind) {
	case DK_LOGERR_JSON: return "not JSON";
	case DK_LOGERR_SHAPE: return "no DNS record of a known shape";
	case DK_LOGERR_NAME: return "no valid query name";
	case DK_LOGERR_TIME: return "unreadable time";
	case DK_LOGERR_ADDR: return "unreadable client address";
	case DK_LOGERR_ZEEK: return "Zeek TSV line without or against its #fields";
	case DK_LOGERR_BIND: return "not a BIND query log line";
	case DK_LOGERR_FRAME: return "Frame Streams frame cut or malformed";
	case DK_LOGERR_DNSTAP: return "not a dnstap message";
	case DK_LOGERR_DNSMSG: return "dnstap message with an unparsable DNS message";
	case DK_LOGERR_SQLITE: return "not a Pi-hole database, or a bad row";
	case DK_LOGERR_IO: return "unreadable or truncated file";
	case DK_LOGERR_LONG: return "line too long";
	}
	return "unknown";
}

void dk_logrec_reset(struct dk_logrec *r, enum dk_logfmt f)
{
	r->fmt = f;
	r->time_ms = 0;
	r->qtype = 0;
	r->rcode = -1;
	r->family = 0;
	r->transport = DK_TRANSPORT_UDP;
	r->port = 0;
	r->answer_only = false;
	r->qname_len = 0;
	r->n_targets = 0;
	r->host[0] = '\0';
}

int dk_logrec_set_qname(struct dk_logrec *r, const char *text, size_t len)
{
	size_t n;

	if (len == 0 || dk_name_from_text(text, len, 0, r->qname, &n))
		return DK_LOGERR_NAME;
	r->qname_len = (uint8_t)n;
	return 0;
}

/* True when @p text reads as an IPv4 or IPv6 address. */
static bool is_address(const char *text, size_t len)
{
	char buf[INET6_ADDRSTRLEN];
	uint8_t a[16];

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, text, len);
	buf[len] = '\0';
	return inet_pton(AF_INET, buf, a) == 1 || inet_pton(AF_INET6, buf, a) == 1;
}

int dk_logrec_add_target(struct dk_logrec *r, const char *text, size_t len)
{
	size_t n;

	while (len && (*text == ' ' || *text == '\t')) {
		text++;
		len--;
	}
	while (len && (text[len - 1] == ' ' || text[len - 1] == '\t'))
		len--;
	if (r->n_targets == DK_LOGREC_TARGETS || len == 0 || is_address(text, len))
		return DK_EFULL;
	uint8_t *t = r->target[r->n_targets];
	if (dk_name_from_text(text, len, 0, t, &n) || n <= 1)
		return DK_LOGERR_NAME;
	r->target_len[r->n_targets++] = (uint8_t)n;
	return 0;
}

int dk_logrec_set_addr(struct dk_logrec *r, const char *text, size_t len)
{
	char buf[INET6_ADDRSTRLEN + 8];

	if (len == 0 || len >= sizeof(buf))
		return DK_LOGERR_ADDR;
	memcpy(buf, text, len);
	buf[len] = '\0';
	/* A scope ("fe80::1%eth0") names no other host. */
	char *pct = strchr(buf, '%');
	if (pct)
		*pct = '\0';
	memset(r->addr, 0, sizeof(r->addr));
	if (inet_pton(AF_INET, buf, r->addr) == 1) {
		r->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, r->addr) == 1) {
		r->family = AF_INET6;
		return 0;
	}
	return DK_LOGERR_ADDR;
}

/* Days from 1970-01-01 to y-m-d, proleptic Gregorian (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, size_t n, unsigned *out)
{
	unsigned v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return true;
}

int dk_log_parse_iso_time(const char *s, size_t len, uint64_t *ms)
{
	unsigned y, mo, d, h, mi, sec, frac = 0;
	size_t i = 19;

	if (len < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') ||
	    s[13] != ':' || s[16] != ':' || !digits(s, 4, &y) || !digits(s + 5, 2, &mo) ||
	    !digits(s + 8, 2, &d) || !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) ||
	    !digits(s + 17, 2, &sec) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    sec > 60)
		return DK_LOGERR_TIME;
	if (i < len && (s[i] == '.' || s[i] == ',')) {
		unsigned scale = 100;
		i++;
		if (i >= len || s[i] < '0' || s[i] > '9')
			return DK_LOGERR_TIME;
		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
			frac += (unsigned)(s[i] - '0') * scale;
			scale /= 10;
		}
	}
	int64_t off_s = 0;
	if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i < len && (s[i] == '+' || s[i] == '-')) {
		unsigned oh, om = 0;
		int sign = s[i] == '-' ? -1 : 1;
		if (len - i < 3 || !digits(s + i + 1, 2, &oh))
			return DK_LOGERR_TIME;
		i += 3;
		if (i < len && s[i] == ':')
			i++;
		if (len - i >= 2 && digits(s + i, 2, &om))
			i += 2;
		off_s = sign * (int64_t)(oh * 3600 + om * 60);
	}
	if (i != len)
		return DK_LOGERR_TIME;
	int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off_s;
	if (t < 0)
		return DK_LOGERR_TIME;
	*ms = (uint64_t)t * 1000 + frac;
	return 0;
}

int dk_log_parse_epoch(const char *s, size_t len, uint64_t *ms)
{
	uint64_t sec = 0, frac = 0;
	unsigned scale = 100;
	size_t i = 0;

	if (len == 0 || len > 32)
		return DK_LOGERR_TIME;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
		sec = sec * 10 + (uint64_t)(s[i] - '0');
	if (i == 0 || sec > (UINT64_MAX / 1000) / 2)
		return DK_LOGERR_TIME;
	if (i < len && s[i] == '.') {
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
			frac += (uint64_t)(s[i] - '0') * scale;
			scale /= 10;
		}
	}
	if (i != len)
		return DK_LOGERR_TIME;
	*ms = sec * 1000 + frac;
	return 0;
}

uint16_t dk_log_qtype(const char *s, size_t len)
{
	char buf[24];
	unsigned v;

	if (len == 0 || len >= sizeof(buf))
		return 0;
	if (digits(s, len, &v))
		return v <= 65535 ? (uint16_t)v : 0;
	memcpy(buf, s, len);
	buf[len] = '\0';
	ldns_rr_type t = ldns_get_rr_type_by_name(buf);
	return (uint16_t)t;
}

/* Names in RFC 1035 spelling and in OCSF's ("NXDomain", "ServError", "FormError"). */
static const struct {
	const char *name;
	int code;
} rcodes[] = {
        {"NOERROR", 0},  {"FORMERR", 1}, {"FORMERROR", 1}, {"SERVFAIL", 2}, {"SERVERROR", 2},
        {"NXDOMAIN", 3}, {"NOTIMP", 4},  {"NOTIMPL", 4},   {"REFUSED", 5},  {"YXDOMAIN", 6},
        {"YXRRSET", 7},  {"NXRRSET", 8}, {"NOTAUTH", 9},   {"NOTZONE", 10}, {"BADVERS", 16},
};

int dk_log_rcode(const char *s, size_t len)
{
	unsigned v;

	if (len == 0 || len > 16)
		return -1;
	if (digits(s, len, &v))
		return v < 4096 ? (int)v : -1;
	for (size_t i = 0; i < DK_ARRAY_SIZE(rcodes); i++)
		if (strlen(rcodes[i].name) == len && strncasecmp(s, rcodes[i].name, len) == 0)
			return rcodes[i].code;
	return -1;
}

enum dk_logfmt dk_logfmt_sniff(const uint8_t *p, size_t n)
{
	static const char sqlite[] = "SQLite format 3";
	size_t i = 0;

	if (n >= sizeof(sqlite) && memcmp(p, sqlite, sizeof(sqlite)) == 0)
		return DK_LOGFMT_PIHOLE;
	/* A Frame Streams file opens with the escape (a zero length) and a START frame. */
	if (n >= 8 && p[0] == 0 && p[1] == 0 && p[2] == 0 && p[3] == 0)
		return DK_LOGFMT_DNSTAP;
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
		i++;
	if (i < n && p[i] == '{')
		return DK_LOGFMT_AUTO;
	if (n - i >= 10 &&
	    (memcmp(p + i, "#separator", 10) == 0 || memcmp(p + i, "#fields", 7) == 0))
		return DK_LOGFMT_ZEEK;
	return DK_LOGFMT_BIND;
}
