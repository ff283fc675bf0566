/* SPDX-License-Identifier: MIT */
/*
 * Zeek's dns.log in its TSV form: "#" header lines, of which "#separator"
 * and "#fields" matter (the columns are found by name, so logs with
 * fields added or removed read as well), then one tab-separated line per
 * lookup; "-" is an unset field, answers are a ","-separated vector.
 * Zeek's JSON form is read by logfmt_json.c.
 */
#include <string.h>

#include "dnsink/alert.h"
#include "dnsink/logrec.h"

#define ZEEK_COLS 64

void dk_zeek_tsv_init(struct dk_zeek_tsv *z)
{
	memset(z, 0, sizeof(*z));
	z->sep = '\t';
	z->col_ts = z->col_orig_h = z->col_orig_p = z->col_proto = -1;
	z->col_query = z->col_qtype = z->col_rcode = z->col_answers = -1;
}

static bool field_is(const char *p, size_t n, const char *name)
{
	return strlen(name) == n && memcmp(p, name, n) == 0;
}

static int header(struct dk_zeek_tsv *z, const char *line, size_t len)
{
	if (len >= 11 && memcmp(line, "#separator ", 11) == 0) {
		/* "#separator \x09": the separator itself escaped. */
		if (len >= 15 && line[11] == '\\' && line[12] == 'x') {
			unsigned v = 0;
			for (int i = 13; i < 15; i++) {
				char c = line[i];
				v = v * 16 + (unsigned)(c >= 'a'   ? c - 'a' + 10
				                        : c >= 'A' ? c - 'A' + 10
				                                   : c - '0');
			}
			z->sep = (char)v;
		} else if (len > 11) {
			z->sep = line[11];
		}
		return DK_LOG_SKIP;
	}
	if (len < 8 || memcmp(line, "#fields", 7) != 0)
		return DK_LOG_SKIP;
	struct dk_zeek_tsv keep = *z;
	dk_zeek_tsv_init(z);
	z->sep = keep.sep;
	const char *p = line + 8, *end = line + len;
	int col = 0;
	while (p <= end && col < ZEEK_COLS) {
		const char *e = memchr(p, z->sep, (size_t)(end - p));
		if (!e)
			e = end;
		size_t n = (size_t)(e - p);
		if (field_is(p, n, "ts"))
			z->col_ts = (int8_t)col;
		else if (field_is(p, n, "id.orig_h"))
			z->col_orig_h = (int8_t)col;
		else if (field_is(p, n, "id.orig_p"))
			z->col_orig_p = (int8_t)col;
		else if (field_is(p, n, "proto"))
			z->col_proto = (int8_t)col;
		else if (field_is(p, n, "query"))
			z->col_query = (int8_t)col;
		else if (field_is(p, n, "qtype"))
			z->col_qtype = (int8_t)col;
		else if (field_is(p, n, "rcode"))
			z->col_rcode = (int8_t)col;
		else if (field_is(p, n, "answers"))
			z->col_answers = (int8_t)col;
		col++;
		p = e + 1;
	}
	z->n_cols = (uint8_t)col;
	z->have_fields = z->col_query >= 0;
	return DK_LOG_SKIP;
}

static bool unset(const char *p, size_t n)
{
	return n == 0 || (n == 1 && *p == '-') || field_is(p, n, "(empty)");
}

int dk_log_parse_zeek_tsv(struct dk_zeek_tsv *z, const char *line, size_t len, struct dk_logrec *r)
{
	const char *cols[ZEEK_COLS];
	size_t lens[ZEEK_COLS];
	const char *p = line, *end = line + len;
	int n = 0, rc;

	while (end > line && (end[-1] == '\r' || end[-1] == '\n'))
		end--;
	len = (size_t)(end - line);
	if (len == 0)
		return DK_LOG_SKIP;
	if (line[0] == '#')
		return header(z, line, len);
	if (!z->have_fields)
		return DK_LOGERR_ZEEK;
	while (n < ZEEK_COLS && n < z->n_cols) {
		const char *e = memchr(p, z->sep, (size_t)(end - p));
		cols[n] = p;
		lens[n] = (size_t)((e ? e : end) - p);
		n++;
		if (!e)
			break;
		p = e + 1;
	}
	if (n < z->n_cols)
		return DK_LOGERR_ZEEK;
	dk_logrec_reset(r, DK_LOGFMT_ZEEK);
#define COL(c) cols[z->c], lens[z->c]
	if (unset(COL(col_query)))
		return DK_LOGERR_NAME;
	if ((rc = dk_logrec_set_qname(r, COL(col_query))))
		return rc;
	if (z->col_ts >= 0 && !unset(COL(col_ts)) && dk_log_parse_epoch(COL(col_ts), &r->time_ms) &&
	    dk_log_parse_iso_time(COL(col_ts), &r->time_ms))
		return DK_LOGERR_TIME;
	if (z->col_orig_h >= 0 && !unset(COL(col_orig_h)) &&
	    (rc = dk_logrec_set_addr(r, COL(col_orig_h))))
		return rc;
	if (z->col_orig_p >= 0 && !unset(COL(col_orig_p))) {
		unsigned v = 0;
		for (size_t i = 0; i < lens[z->col_orig_p] && v <= 65535; i++)
			v = v * 10 + (unsigned)(cols[z->col_orig_p][i] - '0');
		r->port = v <= 65535 ? (uint16_t)v : 0;
	}
	if (z->col_proto >= 0 && field_is(COL(col_proto), "tcp"))
		r->transport = DK_TRANSPORT_TCP;
	if (z->col_qtype >= 0 && !unset(COL(col_qtype)))
		r->qtype = dk_log_qtype(COL(col_qtype));
	if (z->col_rcode >= 0 && !unset(COL(col_rcode)))
		r->rcode = (int16_t)dk_log_rcode(COL(col_rcode));
	/* As in Zeek's JSON: a name among an address query's answers is a CNAME. */
	if (z->col_answers >= 0 && !unset(COL(col_answers)) &&
	    (r->qtype == 1 || r->qtype == 28 || r->qtype == 5)) {
		const char *a = cols[z->col_answers], *ae = a + lens[z->col_answers];
		while (a < ae) {
			const char *e = memchr(a, ',', (size_t)(ae - a));
			if (!e)
				e = ae;
			dk_logrec_add_target(r, a, (size_t)(e - a));
			a = e + 1;
		}
	}
#undef COL
	return 0;
}
