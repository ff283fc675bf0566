/* SPDX-License-Identifier: MIT */
/*
 * The registered domain of a query name, for Sigma's registered_domain /
 * parent_domain field and for grouping by it. libpsl's own lookup costs
 * about 2 us a name (it re-checks every suffix with conversions), far too
 * much for a field computed on every query, so the engine loads the Public
 * Suffix List that libpsl uses (the distribution's public_suffix_list.dat,
 * found through psl_dist_filename()) into a suffix set once, and answers
 * with one suffix walk over the wire name.
 *
 * The PSL algorithm on that set: a normal rule "a.b" is an entry matching
 * the name and what is below it; a wildcard "*.b" an entry matching what is
 * strictly below b (one label more is public); an exception "!a.b" makes
 * "b" the public suffix. The prevailing rule is an exception, else the
 * longest match, else "*" (the last label). The registered domain is the
 * public suffix and one label more; a name that is itself a public suffix
 * has none. As in libpsl, a wildcard "*.b" makes "b" a public suffix too. Unicode rules are turned
 * into their ACE form (libidn2), as names travel on the wire. test_sigma checks the result against
 * psl_registrable_domain() on a table of names.
 */
#include <errno.h>
#include <idn2.h>
#include <libpsl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsink/name.h"
#include "dnsink/suffixset.h"
#include "sigma_int.h"

#define PSL_NORMAL 1u
#define PSL_WILD   2u
#define PSL_EXC    4u

static uint16_t merge_or(uint16_t old, uint16_t add, void *ctx)
{
	(void)ctx;
	return (uint16_t)(old | add);
}

/* One rule line of the list: "a.b", "*.b" or "!a.b". Returns 0, or 1 for a line skipped. */
static int add_rule(struct dk_suffixset_builder *b, char *line)
{
	unsigned kind = PSL_NORMAL;
	char *s = line, *ace = NULL;
	uint8_t wire[DK_NAME_MAX];
	size_t wlen;
	int rc = 1;

	if (s[0] == '!') {
		kind = PSL_EXC;
		s++;
	} else if (s[0] == '*' && s[1] == '.') {
		kind = PSL_WILD;
		s += 2;
	}
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p >= 0x80) {
			if (idn2_to_ascii_8z(s, &ace, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) !=
			    IDN2_OK)
				return 1;
			s = ace;
			break;
		}
	}
	if (dk_name_from_text(s, strlen(s), 0, wire, &wlen) == 0 && wlen > 1) {
		rc = dk_suffixset_builder_add(b, wire, wlen, kind == PSL_WILD, (uint16_t)kind)
		             ? -ENOMEM
		             : 0;
		/* As libpsl reads "*.b": "b" is then a public suffix too. */
		if (!rc && kind == PSL_WILD &&
		    dk_suffixset_builder_add(b, wire, wlen, false, PSL_NORMAL))
			rc = -ENOMEM;
	}
	idn2_free(ace);
	return rc;
}

/* The text list beside the binary one libpsl names, or Debian's place for it. */
static FILE *open_list(void)
{
	const char *dafsa = psl_dist_filename();
	char path[512];
	size_t n = dafsa ? strlen(dafsa) : 0;

	if (n > 6 && n < sizeof(path) && !strcmp(dafsa + n - 6, ".dafsa")) {
		snprintf(path, sizeof(path), "%.*s.dat", (int)(n - 6), dafsa);
		FILE *f = fopen(path, "re");
		if (f)
			return f;
	}
	return fopen("/usr/share/publicsuffix/public_suffix_list.dat", "re");
}

struct dk_suffixset *dk__sg_psl_load(void)
{
	FILE *f = open_list();
	struct dk_suffixset_builder *b;
	char line[512];

	if (!f)
		return NULL;
	if (!(b = dk_suffixset_builder_new(16384, merge_or, NULL))) {
		fclose(f);
		return NULL;
	}
	while (fgets(line, sizeof(line), f)) {
		/* A rule is the first word of its line; "//" starts a comment. */
		char *e = line + strcspn(line, " \t\r\n");
		*e = '\0';
		if (!line[0] || (line[0] == '/' && line[1] == '/'))
			continue;
		if (add_rule(b, line) < 0) {
			dk_suffixset_builder_free(b);
			fclose(f);
			return NULL;
		}
	}
	fclose(f);
	return dk_suffixset_builder_finish(b);
}

int dk__sg_psl_labels(const struct dk_suffixset *set, const uint8_t *wire, size_t len)
{
	struct dk_suffixset_match m[DK_LABELS_MAX + 1];
	uint8_t offs[DK_LABELS_MAX];
	int total = dk_name_labels(wire, len, offs);
	int exc = -1, best = 1;

	if (total <= 0)
		return -1;
	size_t k = dk_suffixset_lookup_all(set, wire, len, m, DK_ARRAY_SIZE(m));
	for (size_t i = 0; i < k; i++) {
		int labels = total - m[i].labels;
		if (m[i].value & PSL_EXC) {
			exc = labels - 1;
			break;
		}
		if ((m[i].value & PSL_NORMAL) && labels > best)
			best = labels;
		if ((m[i].value & PSL_WILD) && m[i].below && labels + 1 > best)
			best = labels + 1;
	}
	int pub = exc >= 0 ? exc : best;
	return pub + 1 <= total ? pub + 1 : -1;
}

int dk__sg_psl_init(struct dk__sg_psl *p)
{
	memset(p, 0, sizeof(*p));
	if ((p->set = dk__sg_psl_load()))
		return 0;
	/* No text list: libpsl's own lookup, slower but the same list. */
	p->ctx = psl_builtin();
	if (!p->ctx || psl_suffix_count(p->ctx) <= 0)
		p->ctx = p->owned = psl_latest(NULL);
	return 0;
}

void dk__sg_psl_deinit(struct dk__sg_psl *p)
{
	dk_suffixset_free(p->set);
	psl_free(p->owned);
	memset(p, 0, sizeof(*p));
}

size_t dk__sg_regdom(const struct dk__sg_psl *p, const uint8_t *wire, size_t wlen, const char *text,
                     size_t tlen)
{
	int labels;

	if (p && p->set) {
		labels = dk__sg_psl_labels(p->set, wire, wlen);
	} else if (p && p->ctx) {
		const char *rd = psl_registrable_domain(p->ctx, text);
		return rd && rd >= text && rd <= text + tlen ? (size_t)(rd - text) : tlen;
	} else {
		labels = 2;
	}
	if (labels < 0)
		return tlen;
	/* Past the labels-th unescaped dot from the right ("\\." is inside a label). */
	size_t i = tlen;
	int dots = 0;
	while (i > 0) {
		if (text[i - 1] == '.' && !(i >= 2 && text[i - 2] == '\\') && ++dots == labels)
			return i;
		i--;
	}
	return 0;
}
