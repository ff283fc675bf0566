/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the log readers of `dnsink hunt`: each input is read
 * as one JSON line (every format, and each forced), as a BIND query log
 * line, as a Zeek TSV file (split into lines, headers and all), as a dnstap
 * frame, and walked by the JSON scanner with a callback that checks every
 * slice lies inside the input. A record that comes out must hold a valid
 * wire name. Heap copies of exactly the input's size let AddressSanitizer
 * catch a read one octet past the end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dnsink/json_scan.h"
#include "dnsink/logrec.h"
#include "dnsink/name.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *lo, *hi;

static void check_name(const uint8_t *w, size_t len)
{
	char text[DK_NAME_MAX * 4 + 1];

	if (len == 0 || len > DK_NAME_MAX || dk_name_to_text(w, len, text, sizeof(text)) < 0)
		abort();
}

static void check_rec(int rc, const struct dk_logrec *r)
{
	if (rc != 0)
		return;
	check_name(r->qname, r->qname_len);
	if (r->n_targets > DK_LOGREC_TARGETS)
		abort();
	for (unsigned i = 0; i < r->n_targets; i++)
		check_name(r->target[i], r->target_len[i]);
}

static bool in_input(struct dk_json_str s)
{
	return s.len == 0 || (s.p >= lo && s.p + s.len <= hi);
}

static bool leaf(void *ctx, const struct dk_json_leaf *l)
{
	char buf[64];

	(void)ctx;
	if (!in_input(l->val) || !in_input(l->key) || !in_input(l->parent) ||
	    l->depth > DK_JSON_DEPTH)
		abort();
	if (l->escaped)
		dk_json_unescape(l->val, buf, sizeof(buf));
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dk_dnstap_state st;
	struct dk_logrec r;
	char *copy = malloc(size ? size : 1);

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	lo = copy;
	hi = copy + size;
	dk_json_scan(copy, size, leaf, NULL);
	for (int f = DK_LOGFMT_AUTO; f < DK_LOGFMT_COUNT; f++)
		check_rec(dk_log_parse_json(copy, size, (enum dk_logfmt)f, &r), &r);
	check_rec(dk_log_parse_bind(copy, size, &r), &r);

	struct dk_zeek_tsv z;
	dk_zeek_tsv_init(&z);
	for (const char *p = copy, *end = copy + size; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);
		check_rec(dk_log_parse_zeek_tsv(&z, p, n, &r), &r);
		p += n + 1;
	}
	dk_dnstap_state_init(&st);
	check_rec(dk_log_parse_dnstap(&st, data, size, &r), &r);
	free(copy);
	return 0;
}
