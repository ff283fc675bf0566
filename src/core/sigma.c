/* SPDX-License-Identifier: MIT */
/*
 * The Sigma loader: reads one Sigma YAML document (a detection rule or a
 * correlation rule) into the builder's flat tables (sigma_int.h), deciding
 * on the way whether the rule is DNS at all (logsource), whether every field
 * it names is one a resolver sees (the field table below), and whether every
 * modifier is one dnsink evaluates. What cannot run is not an error: it is
 * recorded, with its reason, in the report `dnsink check` prints. Only YAML
 * that breaks the Sigma schema itself (no detection condition, a selection
 * the condition does not define, a modifier on a non-string...) is an error
 * with FILE:LINE, because its author must fix it wherever it runs.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <ldns/rr.h>
#include <pcre2.h>

#include "dnsink/policy.h"
#include "sigma_int.h"
#include "yaml_helpers.h"

#define GROW(t, what, need)                                                                        \
	dk__sg_grow((void **)&(t)->what, &(t)->cap_##what, (need), sizeof(*(t)->what))

/* ---- the builder ------------------------------------------------------------------ */

struct pending_meta {
	char *id, *title, *description;
	int severity;
	char **mitre;
	size_t n_mitre;
	char **refs;
	size_t n_refs;
};

struct dk__sigma_builder {
	struct dk__sg_tables t;
	struct dk_sigma_report rep;
	size_t cap_entries;
	struct pending_meta meta; /* of the document read last */
	bool pending;             /* a loaded rule waits for dk__sigma_commit() */
	bool pending_corr;
	/* Counter for ids of rules that have none. */
	unsigned anon;
};

struct dk__sigma_builder *dk__sigma_builder_new(void)
{
	return calloc(1, sizeof(struct dk__sigma_builder));
}

static void meta_free(struct pending_meta *m)
{
	free(m->id);
	free(m->title);
	free(m->description);
	for (size_t i = 0; i < m->n_mitre; i++)
		free(m->mitre[i]);
	free(m->mitre);
	for (size_t i = 0; i < m->n_refs; i++)
		free(m->refs[i]);
	free(m->refs);
	memset(m, 0, sizeof(*m));
}

void dk_sigma_report_deinit(struct dk_sigma_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->entries[i].file);
		free(r->entries[i].id);
		free(r->entries[i].title);
		free(r->entries[i].reason);
		free(r->entries[i].note);
	}
	free(r->entries);
	memset(r, 0, sizeof(*r));
}

void dk__sigma_builder_free(struct dk__sigma_builder *b)
{
	if (!b)
		return;
	dk__sg_tables_free(&b->t);
	dk_sigma_report_deinit(&b->rep);
	meta_free(&b->meta);
	free(b);
}

bool dk__sigma_is_rule(yaml_document_t *doc, yaml_node_t *root)
{
	bool logsource = false, detection = false, correlation = false;

	if (!root || root->type != YAML_MAPPING_NODE)
		return false;
	for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
	     pr < root->data.mapping.pairs.top; pr++) {
		const char *k = dk__yaml_scalar(yaml_document_get_node(doc, pr->key));
		if (!k)
			continue;
		logsource |= !strcmp(k, "logsource");
		detection |= !strcmp(k, "detection");
		correlation |= !strcmp(k, "correlation");
	}
	return (logsource && detection) || correlation;
}

int dk_sigma_level_severity(const char *level)
{
	static const struct {
		const char *level;
		enum dk_severity sev;
	} map[] = {
	        {"informational", DK_SEVERITY_INFO}, {"low", DK_SEVERITY_LOW},
	        {"medium", DK_SEVERITY_MEDIUM},      {"high", DK_SEVERITY_HIGH},
	        {"critical", DK_SEVERITY_CRITICAL},
	};
	for (size_t i = 0; i < DK_ARRAY_SIZE(map); i++) {
		if (strcmp(map[i].level, level) == 0)
			return (int)map[i].sev;
	}
	return -1;
}

/* ---- one document ------------------------------------------------------------------- */

/* What reading one document carries around. */
struct rd {
	struct dk__sigma_builder *b;
	yaml_document_t *doc;
	const char *file;
	struct dk_diag *diag;
	char reject[200]; /* set: the rule is rejected for this reason */
	char note[200];   /* a caveat of a loaded rule */
	char unseen[64];  /* the first field read that the resolver never sees */
	const char *unseen_why;
	size_t cur_sel; /* selection being read */
	unsigned rule;  /* engine rule index being read */
	unsigned how;
	bool answer;
};

static int __attribute__((format(printf, 3, 4)))
schema(struct rd *r, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[sizeof(((struct dk_diag *)0)->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	dk_diag_set(r->diag, r->file, dk__yaml_line(n), "Sigma: %s", msg);
	return DK_ESCHEMA;
}

/* Records the first reason to reject; reading goes on to find schema errors. */
static void __attribute__((format(printf, 2, 3))) reject(struct rd *r, const char *fmt, ...)
{
	va_list ap;

	if (r->reject[0])
		return;
	va_start(ap, fmt);
	vsnprintf(r->reject, sizeof(r->reject), fmt, ap);
	va_end(ap);
}

static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
	     pr++) {
		const char *k = dk__yaml_scalar(yaml_document_get_node(doc, pr->key));
		if (k && strcmp(k, key) == 0)
			return yaml_document_get_node(doc, pr->value);
	}
	return NULL;
}

static int want_text(struct rd *r, yaml_node_t *n, const char *key, char **out)
{
	const char *s = dk__yaml_scalar(n);

	if (!s || dk__yaml_has_nul(n))
		return schema(r, n, "'%s' must be a string", key);
	free(*out);
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

/* Whether the logsource is one of DNS lookups. */
static bool dns_logsource(struct rd *r, yaml_node_t *ls)
{
	static const char *const categories[] = {"dns", "dns_query"};
	static const char *const services[] = {"dns", "dns-client", "dns-server", "dnsquery"};
	const char *cat = dk__yaml_scalar(map_get(r->doc, ls, "category"));
	const char *svc = dk__yaml_scalar(map_get(r->doc, ls, "service"));

	for (size_t i = 0; cat && i < DK_ARRAY_SIZE(categories); i++) {
		if (!strcmp(cat, categories[i]))
			return true;
	}
	for (size_t i = 0; svc && i < DK_ARRAY_SIZE(services); i++) {
		if (!strcmp(svc, services[i]))
			return true;
	}
	return false;
}

/* The ATT&CK tactics by Sigma tag name, for the "TAnnnn" of dnsink's mitre pairs. */
static const char *tactic_id(const char *name)
{
	static const char *const t[][2] = {
	        {"reconnaissance", "TA0043"},  {"resource-development", "TA0042"},
	        {"initial-access", "TA0001"},  {"execution", "TA0002"},
	        {"persistence", "TA0003"},     {"privilege-escalation", "TA0004"},
	        {"defense-evasion", "TA0005"}, {"credential-access", "TA0006"},
	        {"discovery", "TA0007"},       {"lateral-movement", "TA0008"},
	        {"collection", "TA0009"},      {"command-and-control", "TA0011"},
	        {"exfiltration", "TA0010"},    {"impact", "TA0040"},
	};
	char norm[40];
	size_t i;

	for (i = 0; name[i] && i + 1 < sizeof(norm); i++)
		norm[i] = name[i] == '_' ? '-' : name[i];
	norm[i] = '\0';
	for (size_t j = 0; j < DK_ARRAY_SIZE(t); j++) {
		if (!strcmp(t[j][0], norm))
			return t[j][1];
	}
	return NULL;
}

static int push_str(char ***arr, size_t *n, const char *s)
{
	char **q = realloc(*arr, (*n + 1) * sizeof(char *));
	if (!q)
		return -ENOMEM;
	*arr = q;
	if (!(q[*n] = strdup(s)))
		return -ENOMEM;
	(*n)++;
	return 0;
}

/* tags: attack.t1071.004 and attack.command-and-control become "TA0011:T1071.004". */
static int read_tags(struct rd *r, yaml_node_t *tags)
{
	struct pending_meta *m = &r->b->meta;
	const char *tactic = NULL;
	char techs[16][16];
	size_t n_tech = 0;

	if (tags->type != YAML_SEQUENCE_NODE)
		return schema(r, tags, "'tags' must be a list");
	for (size_t i = 0; i < dk__yaml_seq_len(tags); i++) {
		const char *s = dk__yaml_scalar(dk__yaml_seq_item(r->doc, tags, i));
		if (!s || strncasecmp(s, "attack.", 7))
			continue;
		s += 7;
		if ((s[0] == 't' || s[0] == 'T') && s[1] >= '0' && s[1] <= '9') {
			if (n_tech < 16 && strlen(s) < 16) {
				size_t j;
				for (j = 0; s[j]; j++)
					techs[n_tech][j] = (char)(j == 0 ? 'T' : s[j]);
				techs[n_tech][j] = '\0';
				n_tech++;
			}
		} else if (!tactic) {
			tactic = tactic_id(s);
		}
	}
	for (size_t i = 0; i < n_tech; i++) {
		char pair[40];
		snprintf(pair, sizeof(pair), "%s%s%s", tactic ? tactic : "", tactic ? ":" : "",
		         techs[i]);
		if (push_str(&m->mitre, &m->n_mitre, pair))
			return -ENOMEM;
	}
	if (!n_tech && tactic && push_str(&m->mitre, &m->n_mitre, tactic))
		return -ENOMEM;
	return 0;
}

/* ---- values ---------------------------------------------------------------------------- */

/* Modifiers of one field key ("QueryName|endswith|all"). */
struct mods {
	enum { M_PLAIN, M_CONTAINS, M_STARTS, M_ENDS } pos;
	bool all, re, cidr, exists;
	unsigned re_flags;
	int cmp; /* -1: none */
};

static int parse_mods(struct rd *r, yaml_node_t *key, char *rest, struct mods *m)
{
	memset(m, 0, sizeof(*m));
	m->cmp = -1;
	for (char *tok = rest; tok;) {
		char *bar = strchr(tok, '|');
		if (bar)
			*bar++ = '\0';
		if (!strcmp(tok, "contains"))
			m->pos = M_CONTAINS;
		else if (!strcmp(tok, "startswith"))
			m->pos = M_STARTS;
		else if (!strcmp(tok, "endswith"))
			m->pos = M_ENDS;
		else if (!strcmp(tok, "all"))
			m->all = true;
		else if (!strcmp(tok, "re"))
			m->re = true;
		else if (!strcmp(tok, "i") || !strcmp(tok, "ignorecase"))
			m->re_flags |= SG_RE_I;
		else if (!strcmp(tok, "m") || !strcmp(tok, "multiline"))
			m->re_flags |= SG_RE_M;
		else if (!strcmp(tok, "s") || !strcmp(tok, "dotall"))
			m->re_flags |= SG_RE_S;
		else if (!strcmp(tok, "cidr"))
			m->cidr = true;
		else if (!strcmp(tok, "exists"))
			m->exists = true;
		else if (!strcmp(tok, "lt"))
			m->cmp = SG_CMP_LT;
		else if (!strcmp(tok, "lte"))
			m->cmp = SG_CMP_LTE;
		else if (!strcmp(tok, "gt"))
			m->cmp = SG_CMP_GT;
		else if (!strcmp(tok, "gte"))
			m->cmp = SG_CMP_GTE;
		else if (!strcmp(tok, "windash") || !strcmp(tok, "base64") ||
		         !strcmp(tok, "base64offset") || !strcmp(tok, "utf16le") ||
		         !strcmp(tok, "utf16be") || !strcmp(tok, "utf16") || !strcmp(tok, "wide") ||
		         !strcmp(tok, "expand") || !strcmp(tok, "fieldref") ||
		         !strcmp(tok, "cased"))
			reject(r, "modifier '%s' is not supported on DNS names", tok);
		else
			/* A modifier of a newer Sigma must not stop the resolver. */
			reject(r, "unknown modifier '%s'", tok);
		tok = bar;
	}
	if (m->re_flags && !m->re)
		return schema(r, key, "modifiers i, m, s need 're'");
	if ((m->re || m->cidr || m->exists) && m->pos != M_PLAIN)
		return schema(r, key,
		              "'re', 'cidr' and 'exists' do not combine with "
		              "contains/startswith/endswith");
	return 0;
}

/* The glob form of Sigma string @p s with position modifier @p pos. */
static char *glob_form(const char *s, int pos, size_t *len)
{
	size_t n = strlen(s);
	char *g = malloc(n + 3);
	size_t o = 0;

	if (!g)
		return NULL;
	if (pos == M_CONTAINS || pos == M_ENDS)
		g[o++] = SG_STAR;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		/* "\*", "\?" and "\\" escape; a backslash before anything else is itself. */
		if (ch == '\\' && (s[i + 1] == '*' || s[i + 1] == '?' || s[i + 1] == '\\')) {
			g[o++] = s[++i];
			continue;
		}
		if (ch == '*')
			g[o++] = SG_STAR;
		else if (ch == '?')
			g[o++] = SG_QMARK;
		else
			g[o++] = (char)((ch >= 'A' && ch <= 'Z') ? ch + 32 : ch);
	}
	if (pos == M_CONTAINS || pos == M_STARTS)
		g[o++] = SG_STAR;
	g[o] = '\0';
	*len = o;
	return g;
}

static int add_atom(struct rd *r, const struct dk__sg_atom *a)
{
	struct dk__sg_tables *t = &r->b->t;

	if (GROW(t, atoms, t->n_atoms + 1)) {
		free(a->pat);
		pcre2_code_free(a->pcre);
		return -ENOMEM;
	}
	t->atoms[t->n_atoms] = *a;
	t->atoms[t->n_atoms].rule = (uint16_t)r->rule;
	t->n_atoms++;
	return 0;
}

static bool is_numeric_field(int f)
{
	return f == DK_SIGMA_F_QTYPE || f == DK_SIGMA_F_RCODE || f == DK_SIGMA_F_ATYPE ||
	       f == DK_SIGMA_F_QLEN;
}

/* One value of a field condition. */
static int read_value(struct rd *r, int field, const struct mods *m, yaml_node_t *v)
{
	struct dk__sg_atom a = {.field = (uint8_t)field};
	const char *s = dk__yaml_scalar(v);

	if (!s || v->type != YAML_SCALAR_NODE)
		return schema(r, v, "a field value must be a string, a number or null");
	if (dk__yaml_has_nul(v))
		return schema(r, v, "a field value must not hold a NUL");
	if (m->exists) {
		if (strcmp(s, "true") && strcmp(s, "false"))
			return schema(r, v, "'exists' takes true or false");
		a.op = SG_OP_EXISTS;
		a.want = !strcmp(s, "true");
		return add_atom(r, &a);
	}
	if (dk__yaml_is_null(v) && v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		/* null: the field is absent or empty. */
		a.op = SG_OP_EXISTS;
		a.want = false;
		return add_atom(r, &a);
	}
	if (m->cmp >= 0) {
		char *end;
		long long n = strtoll(s, &end, 10);
		if (!*s || *end)
			return schema(r, v, "'%s' takes a number", "lt/lte/gt/gte");
		if (field != DK_SIGMA_F_QLEN && field != DK_SIGMA_F_QTYPE &&
		    field != DK_SIGMA_F_RCODE && field != DK_SIGMA_F_ATYPE)
			reject(r, "numeric comparison on a field that is not a number");
		a.op = SG_OP_NUM;
		a.cmp = (uint8_t)m->cmp;
		a.num = n;
		return add_atom(r, &a);
	}
	if (m->cidr) {
		if (field != DK_SIGMA_F_CLIENT && field != DK_SIGMA_F_ANSWER) {
			reject(r, "'cidr' on a field that holds no address");
			return 0;
		}
		if (dk_cidr_parse(s, &a.cidr))
			return schema(r, v, "'%s' is not an address prefix", s);
		a.op = SG_OP_CIDR;
		return add_atom(r, &a);
	}
	if (is_numeric_field(field)) {
		if (m->re || m->pos != M_PLAIN || strpbrk(s, "*?")) {
			reject(r, "string matching on a numeric field (type, rcode, length)");
			return 0;
		}
		int n = field == DK_SIGMA_F_QLEN    ? (int)strtol(s, NULL, 10)
		        : field == DK_SIGMA_F_RCODE ? dk__sg_rcode_parse(s)
		                                    : dk__sg_qtype_parse(s);
		if (n < 0) {
			reject(r, "'%s' is not a %s", s,
			       field == DK_SIGMA_F_RCODE ? "rcode" : "record type");
			return 0;
		}
		a.op = SG_OP_NUM;
		a.cmp = SG_CMP_EQ;
		a.num = n;
		return add_atom(r, &a);
	}
	if (m->re) {
		int ec;
		PCRE2_SIZE eo;
		uint32_t opt = (m->re_flags & SG_RE_I ? PCRE2_CASELESS : 0) |
		               (m->re_flags & SG_RE_M ? PCRE2_MULTILINE : 0) |
		               (m->re_flags & SG_RE_S ? PCRE2_DOTALL : 0);
		pcre2_code *re =
		        pcre2_compile((PCRE2_SPTR)s, PCRE2_ZERO_TERMINATED, opt, &ec, &eo, NULL);
		if (!re) {
			PCRE2_UCHAR msg[120];
			pcre2_get_error_message(ec, msg, sizeof(msg));
			return schema(r, v, "invalid regular expression at offset %zu: %s",
			              (size_t)eo, (const char *)msg);
		}
		a.op = SG_OP_RE;
		a.re_flags = m->re_flags;
		a.pcre = re;
		a.pat = strdup(s);
		a.pat_len = strlen(s);
		if (!a.pat) {
			pcre2_code_free(re);
			return -ENOMEM;
		}
		return add_atom(r, &a);
	}
	if (field == DK_SIGMA_F_CLIENT && !strpbrk(s, "*?") && m->pos == M_PLAIN) {
		/* A plain address compares as an address: "::1" is "0:0::1". */
		if (dk_cidr_parse(s, &a.cidr) == 0 && !strchr(s, '/')) {
			a.op = SG_OP_CIDR;
			return add_atom(r, &a);
		}
	}
	a.op = SG_OP_GLOB;
	if (!(a.pat = glob_form(s, (int)m->pos, &a.pat_len)))
		return -ENOMEM;
	return add_atom(r, &a);
}

/* Windows DNS client events: a resolver sees every query (3006 sent, 3008 done, 3020 answer). */
static bool dns_client_event(const char *s)
{
	return s && (!strcmp(s, "3006") || !strcmp(s, "3008") || !strcmp(s, "3020"));
}

/*
 * A field the resolver never sees (Image, User, ...): as in a log without
 * that field, no value matches it and null (or |exists: false) does. The
 * selection is marked; the rule is rejected later unless the selection is
 * only a filter (under "not"), where the absent field changes nothing.
 * EventID 3006/3008/3020 of the Windows DNS client names the very event
 * dnsink evaluates: a constant true.
 */
static int read_unseen(struct rd *r, const char *name, const char *why, const struct mods *m,
                       yaml_node_t *val)
{
	struct dk__sg_tables *t = &r->b->t;
	size_t n = val->type == YAML_SEQUENCE_NODE ? dk__yaml_seq_len(val) : 1;
	bool any = false, every = true, event = !strcmp(name, "EventID");

	for (size_t i = 0; i < n; i++) {
		yaml_node_t *v =
		        val->type == YAML_SEQUENCE_NODE ? dk__yaml_seq_item(r->doc, val, i) : val;
		const char *s = dk__yaml_scalar(v);
		bool holds = false;
		if (event && dns_client_event(s) && !m->exists)
			holds = true;
		else if (m->exists && s)
			holds = !strcmp(s, "false");
		else if (v->type == YAML_SCALAR_NODE && dk__yaml_is_null(v) &&
		         v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
			holds = true;
		any |= holds;
		every &= holds;
	}
	bool konst = m->all ? every : any;
	if (GROW(t, fcs, t->n_fcs + 1))
		return -ENOMEM;
	t->fcs[t->n_fcs++] =
	        (struct dk__sg_fc){.unseen = true, .konst = konst, .first = (uint32_t)t->n_atoms};
	if (event && konst)
		return 0; /* a constant, not a need */
	t->sels[r->cur_sel].unseen = true;
	if (!r->unseen[0]) {
		snprintf(r->unseen, sizeof(r->unseen), "%s", name);
		r->unseen_why = why;
	}
	return 0;
}

/* "field|mods: value(s)" into one field condition. */
static int read_fc(struct rd *r, yaml_node_t *key, yaml_node_t *val)
{
	struct dk__sg_tables *t = &r->b->t;
	const char *ks = dk__yaml_scalar(key);
	char buf[256];
	struct mods m;
	const char *why = NULL;
	int err;

	if (!ks || strlen(ks) >= sizeof(buf))
		return schema(r, key, "a field name must be a string of at most 255 octets");
	strcpy(buf, ks);
	char *bar = strchr(buf, '|');
	if (bar)
		*bar++ = '\0';
	if ((err = parse_mods(r, key, bar, &m)))
		return err;
	if (!buf[0]) {
		reject(r, "keyword search (a value without a field)");
		return 0;
	}
	int field = dk__sg_field_lookup(buf, &why);
	if (field < 0)
		return read_unseen(r, buf, why, &m, val);
	if (SG_F_IS_ANSWER(field))
		r->answer = true;
	if (GROW(t, fcs, t->n_fcs + 1))
		return -ENOMEM;
	size_t fi = t->n_fcs++;
	t->fcs[fi] = (struct dk__sg_fc){
	        .field = (uint8_t)field, .all = m.all, .first = (uint32_t)t->n_atoms};
	if (val->type == YAML_SEQUENCE_NODE) {
		for (size_t i = 0; i < dk__yaml_seq_len(val); i++) {
			if ((err = read_value(r, field, &m, dk__yaml_seq_item(r->doc, val, i))))
				return err;
		}
		if (dk__yaml_seq_len(val) == 0)
			return schema(r, val, "an empty list of values");
	} else if ((err = read_value(r, field, &m, val))) {
		return err;
	}
	t->fcs[fi].n = (uint32_t)(t->n_atoms - t->fcs[fi].first);
	return 0;
}

/* A map of field conditions: one alternative. */
static int read_alt(struct rd *r, yaml_node_t *map)
{
	struct dk__sg_tables *t = &r->b->t;
	int err;

	if (GROW(t, alts, t->n_alts + 1))
		return -ENOMEM;
	size_t ai = t->n_alts++;
	t->alts[ai].first = (uint32_t)t->n_fcs;
	for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
	     pr++) {
		yaml_node_t *k = yaml_document_get_node(r->doc, pr->key);
		yaml_node_t *v = yaml_document_get_node(r->doc, pr->value);
		if ((err = read_fc(r, k, v)))
			return err;
	}
	t->alts[ai].n = (uint32_t)(t->n_fcs - t->alts[ai].first);
	return 0;
}

static int read_selection(struct rd *r, const char *name, yaml_node_t *v)
{
	struct dk__sg_tables *t = &r->b->t;
	int err;

	if (GROW(t, sels, t->n_sels + 1))
		return -ENOMEM;
	size_t si = t->n_sels;
	r->cur_sel = si;
	t->sels[si] = (struct dk__sg_sel){.name = strdup(name), .first = (uint32_t)t->n_alts};
	if (!t->sels[si].name)
		return -ENOMEM;
	t->n_sels++;
	if (v->type == YAML_MAPPING_NODE) {
		if ((err = read_alt(r, v)))
			return err;
	} else if (v->type == YAML_SEQUENCE_NODE) {
		for (size_t i = 0; i < dk__yaml_seq_len(v); i++) {
			yaml_node_t *item = dk__yaml_seq_item(r->doc, v, i);
			if (item->type == YAML_MAPPING_NODE) {
				if ((err = read_alt(r, item)))
					return err;
			} else {
				reject(r,
				       "keyword search in selection '%s' (values without a field)",
				       name);
			}
		}
	} else {
		reject(r, "keyword search in selection '%s' (values without a field)", name);
	}
	t->sels[si].n = (uint32_t)(t->n_alts - t->sels[si].first);
	return 0;
}

/* "30s", "5m", "1h", "1d" into milliseconds; 0 when malformed. */
static uint64_t timespan_ms(const char *s)
{
	char *end;
	unsigned long long n = strtoull(s, &end, 10);
	uint64_t unit;

	if (end == s || n == 0 || end[0] == '\0' || end[1] != '\0')
		return 0;
	switch (end[0]) {
	case 's': unit = 1000; break;
	case 'm': unit = 60000; break;
	case 'h': unit = 3600000; break;
	case 'd': unit = 86400000; break;
	case 'w': unit = 604800000; break;
	default: return 0;
	}
	if (n > UINT64_MAX / unit / 2)
		return 0;
	return n * unit;
}

static bool filter_name(const char *s)
{
	return !strncmp(s, "filter", 6) || !strncmp(s, "exclude", 7);
}

static int read_detection(struct rd *r, yaml_node_t *det, struct dk__sg_corr *agg, bool *has_agg)
{
	struct dk__sg_tables *t = &r->b->t;
	struct dk__sg_rule *rule = &t->rules[r->rule];
	yaml_node_t *cond = NULL, *timeframe = NULL;
	int err;

	if (det->type != YAML_MAPPING_NODE)
		return schema(r, det, "'detection' must be a mapping");
	rule->first_sel = (uint32_t)t->n_sels;
	for (yaml_node_pair_t *pr = det->data.mapping.pairs.start; pr < det->data.mapping.pairs.top;
	     pr++) {
		yaml_node_t *k = yaml_document_get_node(r->doc, pr->key);
		yaml_node_t *v = yaml_document_get_node(r->doc, pr->value);
		const char *ks = dk__yaml_scalar(k);
		if (!ks)
			return schema(r, k, "detection keys must be names");
		if (dk__yaml_earlier_key(r->doc, det, pr))
			return schema(r, k, "duplicate selection '%s'", ks);
		if (!strcmp(ks, "condition")) {
			cond = v;
			continue;
		}
		if (!strcmp(ks, "timeframe")) {
			timeframe = v;
			continue;
		}
		if ((err = read_selection(r, ks, v)))
			return err;
	}
	rule->n_sel = (uint32_t)(t->n_sels - rule->first_sel);
	if (!cond)
		return schema(r, det, "'detection' has no 'condition'");
	rule->first_op = (uint32_t)t->n_ops;
	size_t n_conds = cond->type == YAML_SEQUENCE_NODE ? dk__yaml_seq_len(cond) : 1;
	if (n_conds == 0)
		return schema(r, cond, "empty condition list");
	for (size_t i = 0; i < n_conds; i++) {
		yaml_node_t *c = cond->type == YAML_SEQUENCE_NODE
		                         ? dk__yaml_seq_item(r->doc, cond, i)
		                         : cond;
		const char *text = dk__yaml_scalar(c);
		char why[160] = "";
		if (!text)
			return schema(r, c, "'condition' must be a string or a list of strings");
		bool agg_here = false;
		err = dk__sg_cond_parse(t, rule->first_sel, rule->n_sel, text, agg, &agg_here, why,
		                        sizeof(why));
		if (err < 0)
			return schema(r, c, "condition: %s", why);
		if (err > 0)
			reject(r, "%s", why);
		if (agg_here) {
			if (n_conds > 1)
				reject(r, "an aggregation in a list of conditions");
			*has_agg = true;
		}
	}
	/* A list of conditions: any of them (OR). */
	if (n_conds > 1) {
		if (GROW(t, ops, t->n_ops + 1))
			return -ENOMEM;
		t->ops[t->n_ops++] = (struct dk__sg_cinst){.op = SG_C_OR, .arg = (uint32_t)n_conds};
	}
	rule->n_op = (uint32_t)(t->n_ops - rule->first_op);
	/*
	 * A selection on a field never seen may only be a filter: under "not", and
	 * named as SigmaHQ's conventions name filters (filter_main_*,
	 * filter_optional_*, exclude_*). "not z_flag_unset" is the rule's point,
	 * not a filter, and an absent field would turn it into "always".
	 */
	for (uint32_t i = 0; i < rule->n_op && r->unseen[0]; i++) {
		const struct dk__sg_cinst *op = &t->ops[rule->first_op + i];
		if (op->op == SG_C_SEL && t->sels[op->arg].unseen &&
		    (!op->neg || !filter_name(t->sels[op->arg].name))) {
			reject(r, "needs '%s', %s", r->unseen, r->unseen_why);
			break;
		}
	}
	if (r->unseen[0] && !r->reject[0])
		snprintf(r->note, sizeof(r->note),
		         "filters on '%s' never apply (a resolver does not see it, as in a log "
		         "without that field)",
		         r->unseen);
	if (*has_agg) {
		const char *tf = dk__yaml_scalar(timeframe);
		if (timeframe && (!tf || !(agg->timespan_ms = timespan_ms(tf))))
			return schema(r, timeframe,
			              "'timeframe' must be a duration (30s, 5m, 1h, 1d)");
		if (!timeframe) {
			/* A SIEM's search window would bound it; dnsink counts per hour. */
			agg->timespan_ms = 3600000;
			snprintf(r->note, sizeof(r->note),
			         "no 'timeframe': counted in windows of 1h");
		}
	}
	return 0;
}

/* Counts and lists one document in the report. */
static int report(struct dk__sigma_builder *b, const char *file, unsigned line, const char *id,
                  const char *title, enum dk_sigma_status st, const char *reason, const char *note)
{
	struct dk_sigma_report *rep = &b->rep;

	if (dk__sg_grow((void **)&rep->entries, &b->cap_entries, rep->n + 1, sizeof(*rep->entries)))
		return -ENOMEM;
	struct dk_sigma_entry *e = &rep->entries[rep->n];
	memset(e, 0, sizeof(*e));
	e->file = strdup(file);
	e->id = strdup(id);
	e->title = title ? strdup(title) : NULL;
	e->reason = reason ? strdup(reason) : NULL;
	e->note = note && note[0] ? strdup(note) : NULL;
	e->line = line;
	e->status = st;
	rep->n++;
	if (!e->file || !e->id || (title && !e->title) || (reason && !e->reason))
		return -ENOMEM;
	if (st == DK_SIGMA_LOADED)
		rep->loaded++;
	else if (st == DK_SIGMA_SKIPPED)
		rep->skipped++;
	else
		rep->rejected++;
	return 0;
}

/* Drops everything of the document read last from the tables. */
struct marks {
	size_t atoms, fcs, alts, sels, ops, rules, corrs;
};

static void mark(const struct dk__sg_tables *t, struct marks *m)
{
	*m = (struct marks){t->n_atoms, t->n_fcs,   t->n_alts, t->n_sels,
	                    t->n_ops,   t->n_rules, t->n_corrs};
}

static void rollback(struct dk__sg_tables *t, const struct marks *m)
{
	for (size_t i = m->atoms; i < t->n_atoms; i++) {
		free(t->atoms[i].pat);
		pcre2_code_free(t->atoms[i].pcre);
	}
	for (size_t i = m->sels; i < t->n_sels; i++)
		free(t->sels[i].name);
	for (size_t i = m->rules; i < t->n_rules; i++) {
		free(t->rules[i].id);
		free(t->rules[i].name);
	}
	for (size_t i = m->corrs; i < t->n_corrs; i++) {
		for (size_t j = 0; j < SG_CORR_RULES_MAX; j++)
			free(t->corrs[i].ref[j]);
		free(t->corrs[i].file);
	}
	t->n_atoms = m->atoms;
	t->n_fcs = m->fcs;
	t->n_alts = m->alts;
	t->n_sels = m->sels;
	t->n_ops = m->ops;
	t->n_rules = m->rules;
	t->n_corrs = m->corrs;
}

static int group_field(struct rd *r, yaml_node_t *n, uint8_t *out)
{
	const char *s = dk__yaml_scalar(n);
	const char *why = NULL;

	if (!s)
		return schema(r, n, "'group-by' entries must be field names");
	int f = dk__sg_field_lookup(s, &why);
	if (f < 0 || SG_F_IS_ANSWER(f) || f == DK_SIGMA_F_QLEN) {
		reject(r, "groups by '%s', which dnsink cannot group by", s);
		*out = DK_SIGMA_F_CLIENT;
		return 0;
	}
	*out = (uint8_t)f;
	return 0;
}

/* A correlation rule ("correlation:"). */
static int read_correlation(struct rd *r, yaml_node_t *cn, struct dk__sg_corr *c)
{
	yaml_node_t *type = map_get(r->doc, cn, "type");
	yaml_node_t *rules = map_get(r->doc, cn, "rules");
	yaml_node_t *group = map_get(r->doc, cn, "group-by");
	yaml_node_t *ts = map_get(r->doc, cn, "timespan");
	yaml_node_t *cond = map_get(r->doc, cn, "condition");
	const char *ty = dk__yaml_scalar(type);
	int err;

	if (cn->type != YAML_MAPPING_NODE)
		return schema(r, cn, "'correlation' must be a mapping");
	if (!ty)
		return schema(r, cn, "'correlation' has no 'type'");
	if (!strcmp(ty, "event_count"))
		c->type = SG_CORR_EVENT_COUNT;
	else if (!strcmp(ty, "value_count"))
		c->type = SG_CORR_VALUE_COUNT;
	else if (!strcmp(ty, "temporal"))
		c->type = SG_CORR_TEMPORAL;
	else if (!strcmp(ty, "temporal_ordered"))
		reject(r, "correlation type temporal_ordered is not supported");
	else
		return schema(r, type, "unknown correlation type '%s'", ty);
	if (!rules || rules->type != YAML_SEQUENCE_NODE || !dk__yaml_seq_len(rules))
		return schema(r, rules ? rules : cn, "'correlation' needs a list of 'rules'");
	if (dk__yaml_seq_len(rules) > SG_CORR_RULES_MAX)
		reject(r, "a correlation of more than %d rules", SG_CORR_RULES_MAX);
	for (size_t i = 0; i < dk__yaml_seq_len(rules) && i < SG_CORR_RULES_MAX; i++) {
		const char *s = dk__yaml_scalar(dk__yaml_seq_item(r->doc, rules, i));
		if (!s)
			return schema(r, rules, "correlation 'rules' must be ids or names");
		if (!(c->ref[i] = strdup(s)))
			return -ENOMEM;
		c->n_base = (uint8_t)(i + 1);
	}
	if (group) {
		yaml_node_t *g1 = group;
		size_t n = group->type == YAML_SEQUENCE_NODE ? dk__yaml_seq_len(group) : 1;
		if (n > SG_GROUP_MAX)
			reject(r, "groups by more than %d fields", SG_GROUP_MAX);
		for (size_t i = 0; i < n && i < SG_GROUP_MAX; i++) {
			if (group->type == YAML_SEQUENCE_NODE)
				g1 = dk__yaml_seq_item(r->doc, group, i);
			if ((err = group_field(r, g1, &c->group[i])))
				return err;
			c->n_group = (uint8_t)(i + 1);
		}
	}
	if (!ts || !dk__yaml_scalar(ts) || !(c->timespan_ms = timespan_ms(dk__yaml_scalar(ts))))
		return schema(r, ts ? ts : cn, "'timespan' must be a duration (30s, 5m, 1h, 1d)");
	c->cmp = SG_CMP_GTE;
	c->threshold = c->type == SG_CORR_TEMPORAL ? c->n_base : 1;
	if (cond) {
		if (cond->type != YAML_MAPPING_NODE)
			return schema(r, cond, "correlation 'condition' must be a mapping");
		bool any = false;
		for (yaml_node_pair_t *pr = cond->data.mapping.pairs.start;
		     pr < cond->data.mapping.pairs.top; pr++) {
			const char *k = dk__yaml_scalar(yaml_document_get_node(r->doc, pr->key));
			yaml_node_t *v = yaml_document_get_node(r->doc, pr->value);
			const char *vs = dk__yaml_scalar(v);
			if (!k || !vs)
				return schema(r, cond,
				              "correlation condition keys and values are "
				              "scalars");
			if (!strcmp(k, "field")) {
				const char *why = NULL;
				int f = dk__sg_field_lookup(vs, &why);
				if (f < 0 || SG_F_IS_ANSWER(f))
					reject(r,
					       "counts values of '%s', which dnsink does not count",
					       vs);
				else
					c->value_field = (uint8_t)f;
				continue;
			}
			char *end;
			unsigned long long n = strtoull(vs, &end, 10);
			if (!*vs || *end)
				return schema(r, v, "correlation condition '%s' takes a number", k);
			if (any)
				reject(r, "a correlation condition with a range");
			any = true;
			if (!strcmp(k, "gte")) {
				c->cmp = SG_CMP_GTE;
			} else if (!strcmp(k, "gt")) {
				c->cmp = SG_CMP_GT;
			} else if (!strcmp(k, "eq")) {
				c->cmp = SG_CMP_EQ;
			} else if (!strcmp(k, "lt") || !strcmp(k, "lte")) {
				/* Only a window's end could tell; dnsink alerts as it counts. */
				reject(r,
				       "correlation condition '%s' (fewer than) is not supported",
				       k);
			} else {
				return schema(r, v, "unknown correlation condition '%s'", k);
			}
			c->threshold = n;
		}
	} else if (c->type != SG_CORR_TEMPORAL) {
		return schema(r, cn, "'%s' needs a 'condition'", ty);
	}
	if (c->type == SG_CORR_VALUE_COUNT && !map_get(r->doc, cond, "field"))
		return schema(r, cond ? cond : cn, "value_count needs 'field' in its condition");
	if (map_get(r->doc, cn, "aliases"))
		reject(r, "correlation field aliases are not supported");
	if (c->threshold == 0)
		c->threshold = 1;
	return 0;
}

int dk__sigma_read(struct dk__sigma_builder *b, yaml_document_t *doc, yaml_node_t *root,
                   const char *file, enum dk_sigma_status *status, struct dk__sigma_meta *meta,
                   struct dk_diag *diag)
{
	struct rd r = {.b = b, .doc = doc, .file = file, .diag = diag};
	struct dk__sg_tables *t = &b->t;
	struct pending_meta *m = &b->meta;
	yaml_node_t *ls = map_get(doc, root, "logsource");
	yaml_node_t *det = map_get(doc, root, "detection");
	yaml_node_t *corr = map_get(doc, root, "correlation");
	yaml_node_t *n;
	struct marks mk;
	struct dk__sg_corr agg = {0};
	bool has_agg = false;
	int err = 0;
	char idbuf[64];

	meta_free(m);
	b->pending = false;
	b->pending_corr = false;
	mark(t, &mk);
	if (dk__sigma_is_rule(doc, root) == false)
		return schema(&r, root, "not a Sigma rule");
	if (!(n = map_get(doc, root, "title")))
		return schema(&r, root, "rule has no 'title'");
	if ((err = want_text(&r, n, "title", &m->title)))
		return err;
	if ((n = map_get(doc, root, "id")) && (err = want_text(&r, n, "id", &m->id)))
		return err;
	if (!m->id) {
		/* Sigma makes ids optional; dnsink's alert records need one. */
		snprintf(idbuf, sizeof(idbuf), "sigma-%u", ++b->anon);
		if (!(m->id = strdup(idbuf)))
			return -ENOMEM;
	}
	if ((n = map_get(doc, root, "description")) && !dk__yaml_is_null(n) &&
	    (err = want_text(&r, n, "description", &m->description)))
		return err;
	m->severity = DK_SEVERITY_MEDIUM;
	if ((n = map_get(doc, root, "level"))) {
		const char *lv = dk__yaml_scalar(n);
		int sev = lv ? dk_sigma_level_severity(lv) : -1;
		if (sev < 0)
			return schema(&r, n,
			              "level must be informational, low, medium, high or "
			              "critical");
		m->severity = sev;
	}
	if ((n = map_get(doc, root, "tags")) && (err = read_tags(&r, n)))
		return err;
	if ((n = map_get(doc, root, "references"))) {
		if (n->type != YAML_SEQUENCE_NODE)
			return schema(&r, n, "'references' must be a list");
		for (size_t i = 0; i < dk__yaml_seq_len(n); i++) {
			const char *s = dk__yaml_scalar(dk__yaml_seq_item(doc, n, i));
			if (s && (err = push_str(&m->refs, &m->n_refs, s)))
				return err;
		}
	}
	unsigned line = dk__yaml_line(root);

	if (!corr && !dns_logsource(&r, ls)) {
		if (ls && ls->type != YAML_MAPPING_NODE)
			return schema(&r, ls, "'logsource' must be a mapping");
		*status = DK_SIGMA_SKIPPED;
		return report(b, file, line, m->id, m->title, DK_SIGMA_SKIPPED,
		              "logsource is not DNS", NULL);
	}

	if (GROW(t, rules, t->n_rules + 1))
		return -ENOMEM;
	r.rule = (unsigned)t->n_rules;
	struct dk__sg_rule *rule = &t->rules[t->n_rules++];
	memset(rule, 0, sizeof(*rule));
	rule->first_atom = (uint32_t)t->n_atoms;
	rule->first_sel = (uint32_t)t->n_sels;
	rule->first_op = (uint32_t)t->n_ops;
	rule->id = strdup(m->id);
	yaml_node_t *name = map_get(doc, root, "name");
	rule->name = dk__yaml_scalar(name) ? strdup(dk__yaml_scalar(name)) : NULL;
	if (!rule->id || (name && dk__yaml_scalar(name) && !rule->name)) {
		err = -ENOMEM;
		goto out;
	}

	if (corr) {
		struct dk__sg_corr c = {0};
		err = read_correlation(&r, corr, &c);
		yaml_node_t *gen = map_get(doc, root, "generate");
		c.generate = gen && dk__yaml_scalar(gen) && !strcmp(dk__yaml_scalar(gen), "true");
		if (!err && GROW(t, corrs, t->n_corrs + 1))
			err = -ENOMEM;
		if (!err && !(c.file = strdup(file)))
			err = -ENOMEM;
		c.line = line;
		if (err) {
			for (size_t j = 0; j < SG_CORR_RULES_MAX; j++)
				free(c.ref[j]);
			free(c.file);
			goto out;
		}
		/* The correlation rule itself has no detection: it never matches alone. */
		t->rules[r.rule].noalert = true;
		t->rules[r.rule].how = DK_SIGMA_HOW_COUNT;
		t->corrs[t->n_corrs++] = c;
		b->pending_corr = true;
	} else {
		err = read_detection(&r, det, &agg, &has_agg);
		if (err)
			goto out;
		rule = &t->rules[r.rule];
		rule->answer = r.answer;
		rule->first_atom = (uint32_t)mk.atoms;
		rule->n_atom = (uint32_t)(t->n_atoms - mk.atoms);
		if (has_agg && r.answer)
			reject(&r, "an aggregation over answer fields");
		if (has_agg && !r.reject[0]) {
			/* "selection | count() by src_ip > N": a counter over its own matches. */
			if (GROW(t, corrs, t->n_corrs + 1)) {
				err = -ENOMEM;
				goto out;
			}
			agg.n_base = 1;
			agg.base[0] = (uint16_t)r.rule;
			agg.line = line;
			if (!(agg.file = strdup(file))) {
				err = -ENOMEM;
				goto out;
			}
			rule->noalert = true;
			rule->how |= DK_SIGMA_HOW_COUNT;
			t->corrs[t->n_corrs++] = agg;
			b->pending_corr = true;
		}
	}
	if (r.reject[0]) {
		b->pending_corr = false;
		rollback(t, &mk);
		*status = DK_SIGMA_REJECTED;
		return report(b, file, line, m->id, m->title, DK_SIGMA_REJECTED, r.reject, NULL);
	}
	*status = DK_SIGMA_LOADED;
	if ((err = report(b, file, line, m->id, m->title, DK_SIGMA_LOADED, NULL, r.note)))
		goto out;
	b->rep.entries[b->rep.n - 1].rule_index = r.rule; /* an engine index until commit */
	b->pending = true;
	*meta = (struct dk__sigma_meta){
	        .id = m->id,
	        .title = m->title,
	        .description = m->description,
	        .severity = m->severity,
	        .mitre = m->mitre,
	        .n_mitre = m->n_mitre,
	        .references = m->refs,
	        .n_references = m->n_refs,
	        .line = line,
	};
	return 0;
out:
	b->pending_corr = false;
	rollback(t, &mk);
	return err;
}

void dk__sigma_commit(struct dk__sigma_builder *b, uint16_t index)
{
	struct dk__sg_tables *t = &b->t;

	if (!b->pending)
		return;
	t->rules[t->n_rules - 1].policy_index = index;
	if (b->pending_corr)
		t->corrs[t->n_corrs - 1].policy_index = index;
	b->rep.entries[b->rep.n - 1].rule_index = index;
	b->pending = false;
	b->pending_corr = false;
}

void dk__sigma_abandon(struct dk__sigma_builder *b)
{
	/* Only a failed load abandons a rule, and the whole builder goes with it. */
	b->pending = false;
	b->pending_corr = false;
}

/* The engine rule a correlation names, by id or name; -1 when none loaded. */
static int find_rule(const struct dk__sg_tables *t, const char *ref)
{
	for (size_t i = 0; i < t->n_rules; i++) {
		if ((t->rules[i].id && !strcmp(t->rules[i].id, ref)) ||
		    (t->rules[i].name && !strcmp(t->rules[i].name, ref)))
			return (int)i;
	}
	return -1;
}

static struct dk_sigma_entry *entry_of(struct dk_sigma_report *rep, unsigned policy_index)
{
	for (size_t i = 0; i < rep->n; i++) {
		if (rep->entries[i].status == DK_SIGMA_LOADED &&
		    rep->entries[i].rule_index == policy_index)
			return &rep->entries[i];
	}
	return NULL;
}

int dk__sigma_finish(struct dk__sigma_builder *b, struct dk_sigma **out,
                     struct dk_sigma_report *rep, struct dk_diag *diag)
{
	struct dk__sg_tables *t = &b->t;
	char err_text[200] = "";
	int err = 0;

	*out = NULL;
	/* Correlations name their rules by id or name, possibly from later documents. */
	for (size_t i = 0; i < t->n_corrs; i++) {
		struct dk__sg_corr *c = &t->corrs[i];
		const char *bad = NULL;
		for (unsigned j = 0; j < c->n_base && c->ref[j]; j++) {
			int k = find_rule(t, c->ref[j]);
			if (k < 0) {
				bad = c->ref[j];
				break;
			}
			if (t->rules[k].how & DK_SIGMA_HOW_COUNT && !t->rules[k].n_sel) {
				bad = "a correlation (chains are not supported)";
				break;
			}
			c->base[j] = (uint16_t)k;
		}
		if (bad) {
			/* Its policy rule stays, silent; the report says why. */
			struct dk_sigma_entry *e = entry_of(&b->rep, c->policy_index);
			if (e) {
				e->status = DK_SIGMA_REJECTED;
				free(e->reason);
				if (asprintf(&e->reason, "correlates '%s', which did not load",
				             bad) < 0)
					e->reason = NULL;
				b->rep.loaded--;
				b->rep.rejected++;
			}
			c->n_base = 0;
			continue;
		}
		if (!c->generate) {
			for (unsigned j = 0; j < c->n_base; j++)
				t->rules[c->base[j]].noalert = true;
		}
	}
	for (size_t i = 0; i < t->n_rules; i++) {
		struct dk_sigma_entry *e = entry_of(&b->rep, t->rules[i].policy_index);
		if (e && t->rules[i].noalert && t->rules[i].n_sel &&
		    !(t->rules[i].how & DK_SIGMA_HOW_COUNT))
			t->rules[i].how |= DK_SIGMA_HOW_NOALERT;
	}
	if (t->n_rules) {
		err = dk__sg_compile(t, out, err_text, sizeof(err_text));
		if (err) {
			dk_diag_set(diag, NULL, 0, "Sigma: %s",
			            err_text[0] ? err_text : dk_strerror(err));
			goto done;
		}
	}
	/* The compiler decided how each rule runs; the report shows it. */
	if (*out) {
		for (size_t i = 0; i < b->rep.n; i++) {
			if (b->rep.entries[i].status == DK_SIGMA_LOADED)
				b->rep.entries[i].how = 0;
		}
		const struct dk__sg_tables *ct = dk__sg_tables_of(*out);
		for (size_t i = 0; i < ct->n_rules; i++) {
			struct dk_sigma_entry *e = entry_of(&b->rep, ct->rules[i].policy_index);
			if (e)
				e->how |= ct->rules[i].how;
		}
	}
	*rep = b->rep;
	memset(&b->rep, 0, sizeof(b->rep));
done:
	dk__sigma_builder_free(b);
	return err;
}
