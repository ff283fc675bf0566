/* SPDX-License-Identifier: MIT */
/*
 * The Sigma condition parser: "sel1 and not 1 of filter*", with or, and,
 * not (in rising precedence), parentheses, "1 of X" / "any of X" / "all of
 * X" over selection names with * wildcards or "them" (every selection not
 * named "_..."), and a trailing legacy aggregation "| count([F]) [by G] op
 * N". It emits postfix code (sigma_int.h) with n-ary AND/OR, checks every
 * selection it names against the rule's, and bounds nesting so the
 * evaluator's stack is fixed.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sigma_int.h"

/* The evaluator's stack: deeper conditions are refused at load. */
#define DEPTH_MAX 64

struct cp {
	struct dk__sg_tables *t;
	uint32_t first_sel, n_sel;
	const char *s;
	size_t pos;
	char *err;
	size_t err_size;
	int depth, max_depth;
	uint8_t neg;     /* parity of the "not"s around what is parsed now */
	int unsupported; /* 1: valid Sigma that dnsink does not run */
};

static int emit(struct cp *c, uint8_t op, uint32_t arg)
{
	struct dk__sg_tables *t = c->t;

	if (dk__sg_grow((void **)&t->ops, &t->cap_ops, t->n_ops + 1, sizeof(*t->ops)))
		return -ENOMEM;
	t->ops[t->n_ops++] = (struct dk__sg_cinst){.op = op, .neg = c->neg, .arg = arg};
	return 0;
}

static int __attribute__((format(printf, 2, 3))) bad(struct cp *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, c->err_size, fmt, ap);
	va_end(ap);
	return DK_ESCHEMA;
}

static void skip_ws(struct cp *c)
{
	while (c->s[c->pos] && isspace((unsigned char)c->s[c->pos]))
		c->pos++;
}

static bool ident_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '_' || ch == '*' || ch == '-' || ch == '.' ||
	       ch == '?';
}

/* The next word (identifier or keyword) without consuming it; its length. */
static size_t peek_word(struct cp *c, const char **w)
{
	skip_ws(c);
	*w = c->s + c->pos;
	size_t n = 0;
	while (ident_char((*w)[n]))
		n++;
	return n;
}

static bool is_kw(const char *w, size_t n, const char *kw)
{
	return strlen(kw) == n && strncasecmp(w, kw, n) == 0;
}

/* Plain glob over selection names: '*' any run, '?' one character; linear, no recursion. */
static bool name_glob(const char *p, size_t pn, const char *s)
{
	size_t i = 0, n = strlen(s), pi = 0, star = (size_t)-1, mark = 0;

	while (i < n) {
		if (pi < pn && (p[pi] == '?' || p[pi] == s[i])) {
			pi++;
			i++;
		} else if (pi < pn && p[pi] == '*') {
			star = pi++;
			mark = i;
		} else if (star != (size_t)-1) {
			pi = star + 1;
			i = ++mark;
		} else {
			return false;
		}
	}
	while (pi < pn && p[pi] == '*')
		pi++;
	return pi == pn;
}

static int push_depth(struct cp *c, int d)
{
	c->depth += d;
	if (c->depth > c->max_depth)
		c->max_depth = c->depth;
	if (c->depth > DEPTH_MAX)
		return bad(c, "nested more than %d deep", DEPTH_MAX);
	return 0;
}

static int parse_or(struct cp *c);

static int parse_quant(struct cp *c, bool all)
{
	const char *w;
	size_t n = peek_word(c, &w);
	uint32_t k = 0;
	int err;

	if (!n)
		return bad(c, "'of' needs selection names or 'them' at offset %zu", c->pos);
	c->pos += n;
	bool them = is_kw(w, n, "them");
	for (uint32_t i = 0; i < c->n_sel; i++) {
		const char *name = c->t->sels[c->first_sel + i].name;
		if (them ? name[0] == '_' : !name_glob(w, n, name))
			continue;
		if ((err = emit(c, SG_C_SEL, c->first_sel + i)) || (err = push_depth(c, 1)))
			return err;
		k++;
	}
	if (!k)
		return bad(c, "'%.*s' names no selection", (int)n, w);
	if (k > 1 && (err = emit(c, all ? SG_C_AND : SG_C_OR, k)))
		return err;
	c->depth -= (int)k - 1;
	return 0;
}

static int parse_primary(struct cp *c)
{
	const char *w;
	int err;

	skip_ws(c);
	if (c->s[c->pos] == '(') {
		c->pos++;
		if ((err = parse_or(c)))
			return err;
		skip_ws(c);
		if (c->s[c->pos] != ')')
			return bad(c, "')' expected at offset %zu", c->pos);
		c->pos++;
		return 0;
	}
	size_t n = peek_word(c, &w);
	if (!n)
		return bad(c, "a selection name expected at offset %zu", c->pos);
	if (is_kw(w, n, "all") || is_kw(w, n, "any") || strspn(w, "0123456789") == n) {
		size_t save = c->pos;
		c->pos += n;
		const char *w2;
		size_t n2 = peek_word(c, &w2);
		if (is_kw(w2, n2, "of")) {
			c->pos += n2;
			bool all = is_kw(w, n, "all");
			if (!all && !is_kw(w, n, "any") && !(n == 1 && w[0] == '1')) {
				/* "2 of sel*" is valid Sigma; dnsink counts only 1 and all. */
				c->unsupported = 1;
				snprintf(c->err, c->err_size, "'%.*s of' (only 1/any/all of)",
				         (int)n, w);
			}
			return parse_quant(c, all);
		}
		c->pos = save;
	}
	if (is_kw(w, n, "and") || is_kw(w, n, "or") || is_kw(w, n, "not") || is_kw(w, n, "of"))
		return bad(c, "a selection name expected before '%.*s'", (int)n, w);
	c->pos += n;
	for (uint32_t i = 0; i < c->n_sel; i++) {
		const char *name = c->t->sels[c->first_sel + i].name;
		if (strlen(name) == n && !memcmp(name, w, n)) {
			if ((err = emit(c, SG_C_SEL, c->first_sel + i)))
				return err;
			return push_depth(c, 1);
		}
	}
	return bad(c, "unknown selection '%.*s'", (int)n, w);
}

static int parse_not(struct cp *c)
{
	const char *w;
	size_t n = peek_word(c, &w);
	int err;

	if (is_kw(w, n, "not")) {
		c->pos += n;
		c->neg ^= 1;
		err = parse_not(c);
		c->neg ^= 1;
		if (err)
			return err;
		return emit(c, SG_C_NOT, 0);
	}
	return parse_primary(c);
}

/*
 * A run of @p sub joined by keyword @p kw ("and", "or"), one n-ary @p op for
 * all of it: "a and b and c" is one AND of three.
 */
static int parse_chain(struct cp *c, const char *kw, int (*sub)(struct cp *), uint8_t op)
{
	const char *w;
	uint32_t k = 1;
	int err;

	if ((err = sub(c)))
		return err;
	for (;;) {
		size_t n = peek_word(c, &w);
		if (!is_kw(w, n, kw))
			break;
		c->pos += n;
		if ((err = sub(c)))
			return err;
		k++;
	}
	if (k > 1) {
		c->depth -= (int)k - 1;
		return emit(c, op, k);
	}
	return 0;
}

static int parse_and(struct cp *c)
{
	return parse_chain(c, "and", parse_not, SG_C_AND);
}

static int parse_or(struct cp *c)
{
	return parse_chain(c, "or", parse_and, SG_C_OR);
}

/* "count(F) by G1, G2 > N" after the '|'. */
static int parse_agg(struct cp *c, struct dk__sg_corr *agg)
{
	const char *w, *why = NULL;
	size_t n = peek_word(c, &w);
	char field[128];

	memset(agg, 0, sizeof(*agg));
	if (!is_kw(w, n, "count")) {
		/* sum(), avg(), near...: valid Sigma 1 that dnsink does not count. */
		c->unsupported = 1;
		snprintf(c->err, c->err_size, "aggregation '%.*s' (only count)", (int)n, w);
		c->pos += strlen(c->s + c->pos);
		return 0;
	}
	c->pos += n;
	skip_ws(c);
	if (c->s[c->pos] != '(')
		return bad(c, "'count' needs '('");
	c->pos++;
	n = peek_word(c, &w);
	agg->type = SG_CORR_EVENT_COUNT;
	if (n) {
		if (n >= sizeof(field))
			return bad(c, "field name too long");
		memcpy(field, w, n);
		field[n] = '\0';
		c->pos += n;
		int f = dk__sg_field_lookup(field, &why);
		if (f < 0 || SG_F_IS_ANSWER(f) || f == DK_SIGMA_F_QLEN) {
			c->unsupported = 1;
			snprintf(c->err, c->err_size,
			         "counts values of '%s', which dnsink does not "
			         "count",
			         field);
			f = DK_SIGMA_F_QUERY;
		}
		agg->type = SG_CORR_VALUE_COUNT;
		agg->value_field = (uint8_t)f;
	}
	skip_ws(c);
	if (c->s[c->pos] != ')')
		return bad(c, "')' expected after count(");
	c->pos++;
	n = peek_word(c, &w);
	if (is_kw(w, n, "by")) {
		c->pos += n;
		for (;;) {
			n = peek_word(c, &w);
			if (!n)
				return bad(c, "'by' needs a field");
			if (n >= sizeof(field))
				return bad(c, "field name too long");
			memcpy(field, w, n);
			field[n] = '\0';
			c->pos += n;
			int f = dk__sg_field_lookup(field, &why);
			if (f < 0 || SG_F_IS_ANSWER(f) || f == DK_SIGMA_F_QLEN) {
				c->unsupported = 1;
				snprintf(c->err, c->err_size,
				         "groups by '%s', which dnsink cannot "
				         "group by",
				         field);
				f = DK_SIGMA_F_CLIENT;
			}
			if (agg->n_group < SG_GROUP_MAX)
				agg->group[agg->n_group++] = (uint8_t)f;
			skip_ws(c);
			if (c->s[c->pos] != ',')
				break;
			c->pos++;
		}
	}
	skip_ws(c);
	const char *o = c->s + c->pos;
	if (o[0] == '>' && o[1] == '=') {
		agg->cmp = SG_CMP_GTE;
		c->pos += 2;
	} else if (o[0] == '>') {
		agg->cmp = SG_CMP_GT;
		c->pos += 1;
	} else if (o[0] == '=' && o[1] == '=') {
		agg->cmp = SG_CMP_EQ;
		c->pos += 2;
	} else if (o[0] == '<') {
		c->unsupported = 1;
		snprintf(c->err, c->err_size, "aggregation '<' (fewer than) is not supported");
		c->pos += o[1] == '=' ? 2 : 1;
	} else {
		return bad(c, "aggregation needs a comparison (> >= == < <=) at offset %zu",
		           c->pos);
	}
	skip_ws(c);
	char *end;
	unsigned long long th = strtoull(c->s + c->pos, &end, 10);
	if (end == c->s + c->pos)
		return bad(c, "aggregation needs a number at offset %zu", c->pos);
	c->pos = (size_t)(end - c->s);
	agg->threshold = th ? th : 1;
	return 0;
}

int dk__sg_cond_parse(struct dk__sg_tables *t, uint32_t first_sel, uint32_t n_sel, const char *text,
                      struct dk__sg_corr *agg, bool *has_agg, char *err, size_t err_size)
{
	struct cp c = {.t = t,
	               .first_sel = first_sel,
	               .n_sel = n_sel,
	               .s = text,
	               .err = err,
	               .err_size = err_size};
	size_t ops0 = t->n_ops;
	int rc;

	*has_agg = false;
	err[0] = '\0';
	rc = parse_or(&c);
	if (rc)
		goto fail;
	skip_ws(&c);
	if (text[c.pos] == '|') {
		c.pos++;
		skip_ws(&c);
		if ((rc = parse_agg(&c, agg)))
			goto fail;
		*has_agg = true;
		skip_ws(&c);
	}
	if (text[c.pos]) {
		rc = bad(&c, "unexpected '%s'", text + c.pos);
		goto fail;
	}
	return c.unsupported;
fail:
	t->n_ops = ops0;
	return rc < 0 ? rc : DK_ESCHEMA;
}
