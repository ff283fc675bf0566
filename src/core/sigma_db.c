/* SPDX-License-Identifier: MIT */
/*
 * The compiled Sigma engine and its per-query evaluation.
 *
 * Compiling routes every atom (one value of one field) to the cheapest place
 * that decides it exactly as Sigma would:
 *  - an exact name ("x") or a label-aligned suffix ("*.x", i.e. "endswith:
 *    .x") on the query name: the engine's own suffix set, as an exact-only or
 *    a strictly-below entry, so it costs one hash probe per label;
 *  - every other string pattern on the query name, and every regex Vectorscan
 *    accepts: one Vectorscan database (anchored, caseless, single-match),
 *    scanned once over the name's text;
 *  - regexes Vectorscan refuses (look-around, back-references): PCRE2 JIT,
 *    run for every query;
 *  - numbers, addresses, the registered domain and anything on the answer:
 *    compared directly when a rule that holds them is evaluated.
 * The scan leaves one bit per atom that held and marks the rules those atoms
 * belong to; only marked rules, and the few whose condition can hold with no
 * atom hit (a "not", or direct atoms), are evaluated, from their postfix code.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <hs/hs.h>
#include <ldns/packet.h>
#include <ldns/wire2host.h>
#include <ldns/rr.h>
#include <libpsl.h>
#include <pcre2.h>

#include "dnsink/msg.h"
#include "dnsink/name.h"
#include "dnsink/suffixset.h"
#include "sigma_int.h"

/* Answer records looked at per answer; real answers hold far fewer. */
#define ANS_MAX 32
/* Condition stack depth (the parser refuses deeper conditions). */
#define STACK_MAX 72

struct dk_sigma {
	struct dk__sg_tables t;
	struct dk_suffixset *set; /* values: group index */
	uint32_t *grp_first;      /* n_groups + 1 offsets into grp_atoms */
	uint32_t *grp_atoms;
	size_t n_groups;
	hs_database_t *hs;
	uint32_t *pcre_atoms; /* atoms run through PCRE2 for every query */
	size_t n_pcre;
	uint16_t *qrules, *arules, *always_q, *always_a;
	size_t n_qrules, n_arules, n_always_q, n_always_a;
	size_t words;      /* uint64_t words of an atom bitset */
	size_t rule_words; /* of a rule bitset */
	const psl_ctx_t *psl;
	psl_ctx_t *psl_owned;
};

struct ans {
	uint16_t type;
	uint8_t alen; /* 4 or 16: an address */
	uint8_t addr[16];
	uint16_t tlen;
	char text[DK_NAME_MAX * 4 + 1];
};

struct dk_sigma_scratch {
	hs_scratch_t *hs;
	pcre2_match_data *md;
	uint64_t *bits, *cand;
	size_t cap_words, cap_rule_words;
	struct ans ans[ANS_MAX];
	/* The behavioural table lives in sigma_corr.c. */
	struct dk__sg_ctable *ct;
};

/* What one evaluation knows. */
struct ev {
	const struct dk_sigma *s;
	struct dk_sigma_scratch *sc;
	const struct dk_sigma_query *q;
	char text[DK_NAME_MAX * 4 + 1];
	size_t tlen;
	char client[INET6_ADDRSTRLEN];
	bool have_client;
	size_t regdom_off;
	bool have_regdom;
	/* The answer; n_ans < 0: none (query side). */
	int n_ans;
	int rcode;
};

/* ---- compiling ------------------------------------------------------------ */

/* A name fit for the suffix set: letters, digits, '-', '_' and dots, no empty label. */
static bool plain_name(const char *p, size_t n)
{
	if (!n || p[0] == '.' || p[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
		      ch == '_' || ch == '.'))
			return false;
		if (ch == '.' && p[i + 1] == '.')
			return false;
	}
	return true;
}

static bool has_wild(const char *p, size_t n)
{
	return memchr(p, SG_STAR, n) || memchr(p, SG_QMARK, n);
}

/*
 * The Vectorscan expression of a glob: wildcards as ".*" and ".", anchored
 * where the glob has no star at that end. A leading or trailing star is left
 * out rather than written ".*": the match is the same, and Vectorscan then
 * compiles "contains x" as the plain literal x, in microseconds instead of
 * milliseconds.
 */
static char *glob_regex(const char *p, size_t n, bool anchors)
{
	char *out = malloc(n * 4 + 3);
	size_t o = 0;
	bool head = anchors && n && p[0] != SG_STAR, tail = anchors && n && p[n - 1] != SG_STAR;

	if (!out)
		return NULL;
	while (n && p[0] == SG_STAR) {
		p++;
		n--;
	}
	while (n && p[n - 1] == SG_STAR)
		n--;
	if (head)
		out[o++] = '^';
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (ch == (unsigned char)SG_STAR) {
			out[o++] = '.';
			out[o++] = '*';
		} else if (ch == (unsigned char)SG_QMARK) {
			out[o++] = '.';
		} else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
		           ch == '_') {
			out[o++] = (char)ch;
		} else {
			o += (size_t)sprintf(out + o, "\\x%02x", ch);
		}
	}
	if (tail)
		out[o++] = '$';
	out[o] = '\0';
	return out;
}

/*
 * Whether glob atom @p a is one literal with stars at most at its ends
 * ("x", "x*", "*x", "*x*"); if so, records where the literal must sit.
 */
static bool plain_literal(struct dk__sg_atom *a)
{
	const char *p = a->pat;
	size_t n = a->pat_len, s = 0, e = n;

	while (s < e && p[s] == SG_STAR)
		s++;
	while (e > s && p[e - 1] == SG_STAR)
		e--;
	if (s > 1 || n - e > 1 || e == s || e - s > UINT16_MAX || has_wild(p + s, e - s))
		return false;
	a->lit = (uint8_t)((s == 0 ? SG_LIT_HEAD : 0) | (e == n ? SG_LIT_TAIL : 0));
	a->lit_len = (uint16_t)(e - s);
	return true;
}

static unsigned re_hs_flags(unsigned f)
{
	return (f & SG_RE_I ? HS_FLAG_CASELESS : 0) | (f & SG_RE_M ? HS_FLAG_MULTILINE : 0) |
	       (f & SG_RE_S ? HS_FLAG_DOTALL : 0) | HS_FLAG_SINGLEMATCH | HS_FLAG_ALLOWEMPTY;
}

struct pair {
	uint8_t wire[DK_NAME_MAX];
	uint8_t len;
	bool below;
	uint32_t atom;
};

static int cmp_pair(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	if (x->len != y->len)
		return x->len - y->len;
	int c = memcmp(x->wire, y->wire, x->len);
	if (c)
		return c;
	if (x->below != y->below)
		return x->below - y->below;
	return (x->atom > y->atom) - (x->atom < y->atom);
}

static int build_suffix(struct dk_sigma *s, struct pair *pairs, size_t n)
{
	struct dk_suffixset_builder *b;

	qsort(pairs, n, sizeof(*pairs), cmp_pair);
	s->grp_first = calloc(n + 1, sizeof(uint32_t));
	s->grp_atoms = calloc(n ? n : 1, sizeof(uint32_t));
	if (!s->grp_first || !s->grp_atoms || !(b = dk_suffixset_builder_new(n, NULL, NULL)))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		bool fresh =
		        i == 0 ||
		        cmp_pair(&(struct pair){.len = pairs[i - 1].len,
		                                .below = pairs[i - 1].below},
		                 &(struct pair){.len = pairs[i].len, .below = pairs[i].below}) ||
		        memcmp(pairs[i - 1].wire, pairs[i].wire, pairs[i].len);
		if (fresh) {
			if (s->n_groups >= DK_SUFFIXSET_NONE) {
				dk_suffixset_builder_free(b);
				return DK_EFULL;
			}
			s->grp_first[s->n_groups] = (uint32_t)i;
			int err = dk_suffixset_builder_add_slots(b, pairs[i].wire, pairs[i].len,
			                                         pairs[i].below ? DK_SUFFIXSET_BELOW
			                                                        : DK_SUFFIXSET_SELF,
			                                         (uint16_t)s->n_groups);
			if (err) {
				dk_suffixset_builder_free(b);
				return err;
			}
			s->n_groups++;
		}
		s->grp_atoms[i] = pairs[i].atom;
	}
	s->grp_first[s->n_groups] = (uint32_t)n;
	s->set = dk_suffixset_builder_finish(b);
	return s->set ? 0 : -ENOMEM;
}

static int build_hs(struct dk_sigma *s, char *err, size_t err_size)
{
	struct dk__sg_tables *t = &s->t;
	size_t n = 0;
	char **exprs = calloc(t->n_atoms + 1, sizeof(char *));
	unsigned *flags = calloc(t->n_atoms + 1, sizeof(unsigned));
	unsigned *ids = calloc(t->n_atoms + 1, sizeof(unsigned));
	hs_compile_error_t *ce = NULL;
	int rc = -ENOMEM;

	if (!exprs || !flags || !ids)
		goto out;
	for (size_t i = 0; i < t->n_atoms; i++) {
		struct dk__sg_atom *a = &t->atoms[i];
		if (a->route != SG_R_HS)
			continue;
		if (a->op == SG_OP_GLOB && plain_literal(a)) {
			/*
			 * No anchors in the expression: the match callback checks where
			 * the literal ends, so Vectorscan sees pure literals (its fastest
			 * path, and compiled in microseconds where "x$" costs milliseconds).
			 */
			if (!(exprs[n] = glob_regex(a->pat + (a->lit & SG_LIT_HEAD ? 0 : 1),
			                            a->lit_len, false)))
				goto out;
			flags[n] = HS_FLAG_CASELESS | HS_FLAG_DOTALL |
			           (a->lit & SG_LIT_TAIL ? 0 : HS_FLAG_SINGLEMATCH);
		} else if (a->op == SG_OP_GLOB) {
			if (!(exprs[n] = glob_regex(a->pat, a->pat_len, true)))
				goto out;
			flags[n] = HS_FLAG_CASELESS | HS_FLAG_DOTALL | HS_FLAG_SINGLEMATCH;
		} else {
			if (!(exprs[n] = strdup(a->pat)))
				goto out;
			flags[n] = re_hs_flags(a->re_flags);
		}
		ids[n++] = (unsigned)i;
	}
	rc = 0;
	if (!n)
		goto out;
	if (hs_compile_multi((const char *const *)exprs, flags, ids, (unsigned)n, HS_MODE_BLOCK,
	                     NULL, &s->hs, &ce) != HS_SUCCESS) {
		snprintf(err, err_size, "Vectorscan: %s (pattern %d)", ce ? ce->message : "?",
		         ce ? ce->expression : -1);
		hs_free_compile_error(ce);
		rc = DK_ESYNTAX;
	}
out:
	for (size_t i = 0; exprs && i < n; i++)
		free(exprs[i]);
	free(exprs);
	free(flags);
	free(ids);
	return rc;
}

/* Whether Vectorscan takes regex atom @p a on its own. */
static bool hs_accepts(const struct dk__sg_atom *a)
{
	hs_database_t *db = NULL;
	hs_compile_error_t *ce = NULL;

	if (hs_compile(a->pat, re_hs_flags(a->re_flags), HS_MODE_BLOCK, NULL, &db, &ce) !=
	    HS_SUCCESS) {
		hs_free_compile_error(ce);
		return false;
	}
	hs_free_database(db);
	return true;
}

/* Evaluates rule @p r's condition with every routed atom false: can it hold unhit? */
static bool holds_unhit(const struct dk__sg_tables *t, const struct dk__sg_rule *r);

static int push16(uint16_t **arr, size_t *n, uint16_t v)
{
	uint16_t *q = realloc(*arr, (*n + 1) * sizeof(uint16_t));
	if (!q)
		return -ENOMEM;
	q[(*n)++] = v;
	*arr = q;
	return 0;
}

int dk__sg_compile(struct dk__sg_tables *tin, struct dk_sigma **out, char *err, size_t err_size)
{
	struct dk_sigma *s = calloc(1, sizeof(*s));
	struct pair *pairs = NULL;
	size_t n_pairs = 0;
	int rc = -ENOMEM;
	bool regdom = false;

	*out = NULL;
	if (!s) {
		dk__sg_tables_free(tin);
		return -ENOMEM;
	}
	s->t = *tin;
	memset(tin, 0, sizeof(*tin));
	struct dk__sg_tables *t = &s->t;

	if (!(pairs = calloc(t->n_atoms + 1, sizeof(*pairs))) ||
	    !(s->pcre_atoms = calloc(t->n_atoms + 1, sizeof(uint32_t))))
		goto fail;
	for (size_t i = 0; i < t->n_atoms; i++) {
		struct dk__sg_atom *a = &t->atoms[i];
		struct dk__sg_rule *r = &t->rules[a->rule];
		a->route = SG_R_DIRECT;
		regdom |= a->field == DK_SIGMA_F_REGDOM;
		if (a->pcre)
			pcre2_jit_compile(a->pcre, PCRE2_JIT_COMPLETE);
		if (a->field != DK_SIGMA_F_QUERY) {
			r->how |= DK_SIGMA_HOW_DIRECT;
			continue;
		}
		if (a->op == SG_OP_GLOB) {
			const char *p = a->pat;
			size_t n = a->pat_len;
			bool below = n > 2 && p[0] == SG_STAR && p[1] == '.';
			const char *name = below ? p + 2 : p;
			size_t nn = below ? n - 2 : n;
			if (!has_wild(name, nn) && plain_name(name, nn)) {
				struct pair *pr = &pairs[n_pairs];
				size_t wl;
				if (dk_name_from_text(name, nn, 0, pr->wire, &wl) == 0) {
					pr->len = (uint8_t)wl;
					pr->below = below;
					pr->atom = (uint32_t)i;
					n_pairs++;
					a->route = below ? SG_R_SUFFIX_BELOW : SG_R_SUFFIX_EXACT;
					r->how |= DK_SIGMA_HOW_SUFFIX;
					continue;
				}
			}
			/* A pattern of stars alone matches the empty text: Vectorscan refuses it.
			 */
			bool only_stars = true;
			for (size_t j = 0; j < n; j++)
				only_stars &= p[j] == SG_STAR;
			if (only_stars) {
				r->how |= DK_SIGMA_HOW_DIRECT;
				continue;
			}
			a->route = SG_R_HS;
			r->how |= DK_SIGMA_HOW_HS;
		} else if (a->op == SG_OP_RE) {
			if (hs_accepts(a)) {
				a->route = SG_R_HS;
				r->how |= DK_SIGMA_HOW_HS;
			} else {
				a->route = SG_R_PCRE;
				s->pcre_atoms[s->n_pcre++] = (uint32_t)i;
				r->how |= DK_SIGMA_HOW_PCRE;
			}
		} else {
			r->how |= DK_SIGMA_HOW_DIRECT;
		}
	}
	if ((rc = build_suffix(s, pairs, n_pairs)))
		goto fail;
	if ((rc = build_hs(s, err, err_size)))
		goto fail;
	rc = -ENOMEM;
	for (size_t i = 0; i < t->n_rules; i++) {
		struct dk__sg_rule *r = &t->rules[i];
		if (!r->n_sel)
			continue; /* a correlation: no detection of its own */
		if (r->answer)
			r->how |= DK_SIGMA_HOW_ANSWER;
		r->always = holds_unhit(t, r);
		uint16_t **list = r->answer ? &s->arules : &s->qrules;
		size_t *nl = r->answer ? &s->n_arules : &s->n_qrules;
		if (push16(list, nl, (uint16_t)i))
			goto fail;
		if (r->always && (r->answer ? push16(&s->always_a, &s->n_always_a, (uint16_t)i)
		                            : push16(&s->always_q, &s->n_always_q, (uint16_t)i)))
			goto fail;
	}
	s->words = (t->n_atoms + 63) / 64 + 1;
	s->rule_words = (t->n_rules + 63) / 64 + 1;
	if (regdom || t->n_corrs) {
		s->psl = psl_builtin();
		if (!s->psl || psl_suffix_count(s->psl) <= 0) {
			s->psl_owned = psl_latest(NULL);
			s->psl = s->psl_owned;
		}
	}
	free(pairs);
	*out = s;
	return 0;
fail:
	free(pairs);
	dk_sigma_free(s);
	return rc;
}

void dk_sigma_free(struct dk_sigma *s)
{
	if (!s)
		return;
	dk__sg_tables_free(&s->t);
	dk_suffixset_free(s->set);
	free(s->grp_first);
	free(s->grp_atoms);
	hs_free_database(s->hs);
	free(s->pcre_atoms);
	free(s->qrules);
	free(s->arules);
	free(s->always_q);
	free(s->always_a);
	psl_free(s->psl_owned);
	free(s);
}

bool dk_sigma_has_answer_rules(const struct dk_sigma *s)
{
	return s && s->n_arules;
}

size_t dk_sigma_n_counting(const struct dk_sigma *s)
{
	return s ? s->t.n_corrs : 0;
}

const struct dk__sg_tables *dk__sg_tables_of(const struct dk_sigma *s)
{
	return &s->t;
}

/* ---- scratch ------------------------------------------------------------------ */

int dk_sigma_scratch_fit(struct dk_sigma_scratch *sc, const struct dk_sigma *s)
{
	if (!s)
		return 0;
	if (s->hs && hs_alloc_scratch(s->hs, &sc->hs) != HS_SUCCESS)
		return -ENOMEM;
	if (sc->cap_words < s->words) {
		uint64_t *b = realloc(sc->bits, s->words * sizeof(uint64_t));
		if (!b)
			return -ENOMEM;
		sc->bits = b;
		sc->cap_words = s->words;
	}
	if (sc->cap_rule_words < s->rule_words) {
		uint64_t *b = realloc(sc->cand, s->rule_words * sizeof(uint64_t));
		if (!b)
			return -ENOMEM;
		sc->cand = b;
		sc->cap_rule_words = s->rule_words;
	}
	return dk__sg_ctable_fit(&sc->ct, s->t.n_corrs);
}

int dk_sigma_scratch_new(const struct dk_sigma *s, struct dk_sigma_scratch **out)
{
	struct dk_sigma_scratch *sc = calloc(1, sizeof(*sc));

	*out = NULL;
	if (!sc || !(sc->md = pcre2_match_data_create(1, NULL))) {
		free(sc);
		return -ENOMEM;
	}
	if (dk_sigma_scratch_fit(sc, s)) {
		dk_sigma_scratch_free(sc);
		return -ENOMEM;
	}
	*out = sc;
	return 0;
}

void dk_sigma_scratch_free(struct dk_sigma_scratch *sc)
{
	if (!sc)
		return;
	hs_free_scratch(sc->hs);
	pcre2_match_data_free(sc->md);
	free(sc->bits);
	free(sc->cand);
	dk__sg_ctable_free(sc->ct);
	free(sc);
}

void dk_sigma_count(const struct dk_sigma *s, struct dk_sigma_scratch *sc,
                    const struct dk_sigma_query *q, uint64_t now_ms, struct dk_sigma_hits *hits)
{
	if (s && sc->ct)
		dk__sg_count(sc->ct, &s->t, s->psl, q, now_ms, hits);
}

void dk_sigma_count_stats(const struct dk_sigma_scratch *sc, struct dk_sigma_count_stats *st)
{
	dk__sg_ctable_stats(sc->ct, st);
}

/* ---- evaluation ------------------------------------------------------------------ */

static inline void set_atom(struct ev *e, uint32_t i)
{
	e->sc->bits[i / 64] |= UINT64_C(1) << (i % 64);
	uint32_t r = e->s->t.atoms[i].rule;
	e->sc->cand[r / 64] |= UINT64_C(1) << (r % 64);
}

static inline bool atom_bit(const struct ev *e, uint32_t i)
{
	return e->sc->bits[i / 64] >> (i % 64) & 1;
}

static int on_hs(unsigned int id, unsigned long long from, unsigned long long to,
                 unsigned int flags, void *ctx)
{
	struct ev *e = ctx;
	const struct dk__sg_atom *a = &e->s->t.atoms[id];

	(void)from;
	(void)flags;
	/* A plain literal anchored at an end: only where it ends decides. */
	if (a->op == SG_OP_GLOB && a->lit_len) {
		if ((a->lit & SG_LIT_HEAD) && to != a->lit_len)
			return 0;
		if ((a->lit & SG_LIT_TAIL) && to != e->tlen)
			return 0;
	}
	set_atom(e, id);
	return 0;
}

static bool re_match(struct ev *e, const struct dk__sg_atom *a, const char *s, size_t n)
{
	return pcre2_jit_match(a->pcre, (PCRE2_SPTR)s, n, 0, 0, e->sc->md, NULL) >= 0 ||
	       (pcre2_match(a->pcre, (PCRE2_SPTR)s, n, 0, 0, e->sc->md, NULL) >= 0);
}

static bool str_match(struct ev *e, const struct dk__sg_atom *a, const char *s, size_t n)
{
	if (a->op == SG_OP_GLOB)
		return dk__sg_glob_match(a->pat, a->pat_len, s, n);
	if (a->op == SG_OP_RE)
		return re_match(e, a, s, n);
	if (a->op == SG_OP_EXISTS)
		return a->want == (n > 0);
	return false;
}

static bool num_cmp(const struct dk__sg_atom *a, int64_t v)
{
	switch (a->cmp) {
	case SG_CMP_EQ: return v == a->num;
	case SG_CMP_LT: return v < a->num;
	case SG_CMP_LTE: return v <= a->num;
	case SG_CMP_GT: return v > a->num;
	case SG_CMP_GTE: return v >= a->num;
	}
	return false;
}

static bool cidr_bytes(const struct dk_cidr *c, int family, const uint8_t *a)
{
	if (c->family != family)
		return false;
	unsigned full = c->prefix / 8, rest = c->prefix % 8;
	if (memcmp(c->addr, a, full) != 0)
		return false;
	return rest == 0 || (a[full] & (uint8_t)(0xff << (8 - rest))) == c->addr[full];
}

static const char *client_text(struct ev *e)
{
	if (!e->have_client) {
		const struct sockaddr *sa = e->q->client;
		e->client[0] = '\0';
		if (sa && sa->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, e->client,
			          sizeof(e->client));
		else if (sa && sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
			          e->client, sizeof(e->client));
		e->have_client = true;
	}
	return e->client;
}

static bool direct(struct ev *e, const struct dk__sg_atom *a)
{
	switch (a->field) {
	case DK_SIGMA_F_QUERY:
		return str_match(e, a, e->text, e->tlen) || (a->op == SG_OP_EXISTS && a->want);
	case DK_SIGMA_F_QTYPE: return a->op == SG_OP_EXISTS ? a->want : num_cmp(a, e->q->qtype);
	case DK_SIGMA_F_QLEN: return a->op == SG_OP_EXISTS ? a->want : num_cmp(a, (int64_t)e->tlen);
	case DK_SIGMA_F_CLIENT: {
		const struct sockaddr *sa = e->q->client;
		if (a->op == SG_OP_EXISTS)
			return a->want == (sa != NULL);
		if (!sa)
			return false;
		if (a->op == SG_OP_CIDR) {
			if (sa->sa_family == AF_INET)
				return cidr_bytes(&a->cidr, AF_INET,
				                  (const uint8_t *)&((const struct sockaddr_in *)sa)
				                          ->sin_addr);
			return cidr_bytes(&a->cidr, AF_INET6,
			                  ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr);
		}
		const char *c = client_text(e);
		return str_match(e, a, c, strlen(c));
	}
	case DK_SIGMA_F_REGDOM:
		if (!e->have_regdom) {
			e->regdom_off = dk__sg_regdom(e->s->psl, e->text, e->tlen);
			e->have_regdom = true;
		}
		return str_match(e, a, e->text + e->regdom_off, e->tlen - e->regdom_off);
	case DK_SIGMA_F_RCODE:
		if (e->n_ans < 0)
			return false;
		return a->op == SG_OP_EXISTS ? a->want : num_cmp(a, e->rcode);
	case DK_SIGMA_F_ANSWER:
	case DK_SIGMA_F_ATYPE:
		if (e->n_ans < 0)
			return false;
		if (a->op == SG_OP_EXISTS)
			return a->want == (e->n_ans > 0);
		for (int i = 0; i < e->n_ans; i++) {
			const struct ans *an = &e->sc->ans[i];
			if (a->field == DK_SIGMA_F_ATYPE) {
				if (num_cmp(a, an->type))
					return true;
			} else if (a->op == SG_OP_CIDR) {
				if (an->alen &&
				    cidr_bytes(&a->cidr, an->alen == 4 ? AF_INET : AF_INET6,
				               an->addr))
					return true;
			} else if (str_match(e, a, an->text, an->tlen)) {
				return true;
			}
		}
		return false;
	}
	return false;
}

static bool atom_true(struct ev *e, uint32_t i)
{
	const struct dk__sg_atom *a = &e->s->t.atoms[i];

	return a->route == SG_R_DIRECT ? direct(e, a) : atom_bit(e, i);
}

static bool fc_true(struct ev *e, const struct dk__sg_fc *fc)
{
	if (fc->unseen)
		return fc->konst;
	for (uint32_t i = 0; i < fc->n; i++) {
		bool v = atom_true(e, fc->first + i);
		if (fc->all && !v)
			return false;
		if (!fc->all && v)
			return true;
	}
	return fc->all;
}

static bool sel_true(struct ev *e, const struct dk__sg_sel *sel)
{
	const struct dk__sg_tables *t = &e->s->t;

	for (uint32_t i = 0; i < sel->n; i++) {
		const struct dk__sg_alt *alt = &t->alts[sel->first + i];
		bool all = true;
		for (uint32_t j = 0; j < alt->n && all; j++)
			all = fc_true(e, &t->fcs[alt->first + j]);
		if (all)
			return true;
	}
	return false;
}

static bool run_cond(const struct dk__sg_tables *t, const struct dk__sg_rule *r,
                     bool (*sel)(void *, uint32_t), void *ctx)
{
	bool st[STACK_MAX];
	int sp = 0;

	for (uint32_t i = 0; i < r->n_op; i++) {
		const struct dk__sg_cinst *op = &t->ops[r->first_op + i];
		switch (op->op) {
		case SG_C_SEL:
			if (sp >= STACK_MAX)
				return false;
			st[sp++] = sel(ctx, op->arg);
			break;
		case SG_C_NOT:
			if (sp < 1)
				return false;
			st[sp - 1] = !st[sp - 1];
			break;
		case SG_C_AND:
		case SG_C_OR: {
			if ((uint32_t)sp < op->arg)
				return false;
			bool v = op->op == SG_C_AND;
			for (uint32_t k = 0; k < op->arg; k++) {
				bool x = st[sp - 1 - (int)k];
				v = op->op == SG_C_AND ? v && x : v || x;
			}
			sp -= (int)op->arg;
			st[sp++] = v;
			break;
		}
		case SG_C_TRUE:
		case SG_C_FALSE:
			if (sp >= STACK_MAX)
				return false;
			st[sp++] = op->op == SG_C_TRUE;
			break;
		}
	}
	return sp == 1 && st[0];
}

static bool eval_sel(void *ctx, uint32_t si)
{
	struct ev *e = ctx;
	return sel_true(e, &e->s->t.sels[si]);
}

/* With every routed atom false and every direct atom true or false alike: "always" if either holds.
 */
struct unhit {
	const struct dk__sg_tables *t;
	bool direct_val;
};

static bool unhit_sel(void *ctx, uint32_t si)
{
	const struct unhit *u = ctx;
	const struct dk__sg_sel *sel = &u->t->sels[si];

	for (uint32_t i = 0; i < sel->n; i++) {
		const struct dk__sg_alt *alt = &u->t->alts[sel->first + i];
		bool all = true;
		for (uint32_t j = 0; j < alt->n && all; j++) {
			const struct dk__sg_fc *fc = &u->t->fcs[alt->first + j];
			bool any = false, every = true;
			if (fc->unseen) {
				all = fc->konst;
				continue;
			}
			for (uint32_t k = 0; k < fc->n; k++) {
				const struct dk__sg_atom *a = &u->t->atoms[fc->first + k];
				bool v = a->route == SG_R_DIRECT ? u->direct_val : false;
				any |= v;
				every &= v;
			}
			all = fc->all ? every : any;
		}
		if (all)
			return true;
	}
	return false;
}

static bool holds_unhit(const struct dk__sg_tables *t, const struct dk__sg_rule *r)
{
	struct unhit u = {t, false};

	/* Direct atoms are decided at evaluation: a rule with any is always evaluated. */
	for (uint32_t i = 0; i < r->n_atom; i++) {
		if (t->atoms[r->first_atom + i].route == SG_R_DIRECT)
			return true;
	}
	return run_cond(t, r, unhit_sel, &u);
}

static void scan_query(struct ev *e)
{
	const struct dk_sigma *s = e->s;
	struct dk_suffixset_match m[DK_LABELS_MAX + 1];

	memset(e->sc->bits, 0, s->words * sizeof(uint64_t));
	memset(e->sc->cand, 0, s->rule_words * sizeof(uint64_t));
	int n = dk_name_to_text(e->q->qname, e->q->qname_len, e->text, sizeof(e->text));
	e->tlen = n > 0 ? (size_t)n : 0;
	/* The root is "." as text; Sigma sees it as the empty name. */
	if (e->tlen == 1 && e->text[0] == '.')
		e->tlen = 0;
	e->text[e->tlen] = '\0';
	size_t k =
	        dk_suffixset_lookup_all(s->set, e->q->qname, e->q->qname_len, m, DK_ARRAY_SIZE(m));
	for (size_t i = 0; i < k; i++) {
		uint16_t g = m[i].value;
		for (uint32_t j = s->grp_first[g]; j < s->grp_first[g + 1]; j++)
			set_atom(e, s->grp_atoms[j]);
	}
	if (s->hs && e->tlen)
		hs_scan(s->hs, e->text, (unsigned)e->tlen, 0, e->sc->hs, on_hs, e);
	for (size_t i = 0; i < s->n_pcre; i++) {
		uint32_t ai = s->pcre_atoms[i];
		if (re_match(e, &s->t.atoms[ai], e->text, e->tlen))
			set_atom(e, ai);
	}
}

static void add_hit(const struct ev *e, uint16_t ri, struct dk_sigma_hits *hits)
{
	const struct dk__sg_rule *r = &e->s->t.rules[ri];

	if (hits->n_eng < DK_SIGMA_HITS_MAX) {
		hits->all[hits->n_eng] = r->policy_index;
		hits->eng[hits->n_eng++] = ri;
	}
	if (!r->noalert && hits->n < DK_SIGMA_HITS_MAX)
		hits->rule[hits->n++] = r->policy_index;
}

static void eval_list(struct ev *e, const uint16_t *list, size_t n, const uint16_t *always,
                      size_t n_always, struct dk_sigma_hits *hits)
{
	const struct dk__sg_tables *t = &e->s->t;
	size_t ai = 0;

	/* Both lists are in load order, so hits are too. */
	for (size_t i = 0; i < n; i++) {
		uint16_t ri = list[i];
		bool cand = e->sc->cand[ri / 64] >> (ri % 64) & 1;
		while (ai < n_always && always[ai] < ri)
			ai++;
		if (!cand && !(ai < n_always && always[ai] == ri))
			continue;
		if (run_cond(t, &t->rules[ri], eval_sel, e))
			add_hit(e, ri, hits);
	}
}

unsigned dk_sigma_match_query(const struct dk_sigma *s, struct dk_sigma_scratch *sc,
                              const struct dk_sigma_query *q, struct dk_sigma_hits *hits)
{
	struct ev e = {.s = s, .sc = sc, .q = q, .n_ans = -1};

	hits->n = 0;
	hits->n_eng = 0;
	hits->n_corr = 0;
	if (!s || !s->n_qrules || !sc->bits)
		return 0;
	scan_query(&e);
	eval_list(&e, s->qrules, s->n_qrules, s->always_q, s->n_always_q, hits);
	return hits->n_eng;
}

/* Reads the answer section of @p ans into the scratch: type, address, text. */
static int read_answers(struct dk_sigma_scratch *sc, const uint8_t *ans, size_t len)
{
	struct dk_rr_iter it;
	struct dk_rr rr;
	int n = 0;

	if (dk_msg_rr_iter_init(&it, ans, len) < 0)
		return 0;
	while (n < ANS_MAX && dk_msg_rr_next(&it, &rr) > 0 && rr.section == DK_SECTION_ANSWER) {
		struct ans *a = &sc->ans[n];
		const uint8_t *rd = ans + rr.rdata;
		a->type = rr.type;
		a->alen = 0;
		a->tlen = 0;
		a->text[0] = '\0';
		if (rr.type == LDNS_RR_TYPE_A && rr.rdlen == 4) {
			a->alen = 4;
			memcpy(a->addr, rd, 4);
			inet_ntop(AF_INET, rd, a->text, sizeof(a->text));
		} else if (rr.type == LDNS_RR_TYPE_AAAA && rr.rdlen == 16) {
			a->alen = 16;
			memcpy(a->addr, rd, 16);
			inet_ntop(AF_INET6, rd, a->text, sizeof(a->text));
		} else if (rr.type == LDNS_RR_TYPE_TXT) {
			/* The character-strings, joined, lowercase like every text Sigma compares.
			 */
			size_t o = 0;
			for (size_t p = 0; p < rr.rdlen;) {
				size_t l = rd[p++];
				for (size_t j = 0; j < l && p < rr.rdlen && o + 1 < sizeof(a->text);
				     j++, p++) {
					char ch = (char)rd[p];
					a->text[o++] =
					        (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
				}
			}
			a->text[o] = '\0';
		} else {
			uint8_t name[DK_NAME_MAX];
			size_t nl, off = rr.rdata;
			if (rr.type == LDNS_RR_TYPE_MX)
				off += 2;
			if ((rr.type == LDNS_RR_TYPE_CNAME || rr.type == LDNS_RR_TYPE_DNAME ||
			     rr.type == LDNS_RR_TYPE_NS || rr.type == LDNS_RR_TYPE_PTR ||
			     rr.type == LDNS_RR_TYPE_MX) &&
			    dk_name_from_wire_compressed(ans, len, &off, name, &nl) == 0 &&
			    dk_name_to_text(name, nl, a->text, sizeof(a->text)) < 0)
				a->text[0] = '\0';
		}
		a->tlen = (uint16_t)strlen(a->text);
		n++;
	}
	return n;
}

unsigned dk_sigma_match_answer(const struct dk_sigma *s, struct dk_sigma_scratch *sc,
                               const struct dk_sigma_query *q, const uint8_t *ans, size_t len,
                               struct dk_sigma_hits *hits)
{
	struct ev e = {.s = s, .sc = sc, .q = q};

	hits->n = 0;
	hits->n_eng = 0;
	hits->n_corr = 0;
	if (!s || !s->n_arules || !sc->bits || len < DK_HEADER_LEN)
		return 0;
	scan_query(&e);
	e.rcode = LDNS_RCODE_WIRE(ans);
	e.n_ans = read_answers(sc, ans, len);
	eval_list(&e, s->arules, s->n_arules, s->always_a, s->n_always_a, hits);
	return hits->n_eng;
}
