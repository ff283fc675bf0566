/* SPDX-License-Identifier: MIT */
/*
 * The rule loader: reads rule files (YAML, one rule per document) and the
 * list files they name into a new, immutable policy snapshot.
 *
 * Loading runs in two phases. The first parses and validates every rule file
 * with libyaml's document API, so every schema error can point at its
 * FILE:LINE, and only records what to add: the "domains:" entries in wire form
 * and the list files with their sizes. The second phase sizes the suffix-set
 * builder from that, adds the entries and streams each list file through a
 * line parser that works in place on one buffer holding the whole file, so a
 * list of a million lines costs one read and no allocation per line.
 *
 * A bad entry in "domains:" is an error (the rule's author must fix it); a
 * bad line in a list file is skipped and counted, because lists come from
 * third parties and one odd line must not take the resolver down.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "dnsink/config.h"
#include "dnsink/idna.h"
#include "dnsink/ipset.h"
#include "dnsink/name.h"
#include "dnsink/policy.h"
#include "dnsink/rpz.h"
#include "dnsink/suffixset.h"

#include "rules.h"
#include "sigma_int.h"
#include "yaml_helpers.h"

/* Limits that keep a hostile or mistaken rule file from growing without bound. */
#define ID_MAX                128
#define DEDUP_MINUTES_MAX     525600u /* a year */
#define THRESHOLD_MAX         1000000u
#define DEFAULT_DEDUP_MINUTES 60u /* Panther's DedupPeriodMinutes default */
/* Average octets per list line, used to size the builder from file sizes. */
#define LIST_BYTES_PER_ENTRY 20
/* The same for a zone file: "name CNAME ." and the like. */
#define ZONE_BYTES_PER_ENTRY 30
/* Octets of a list file read at a time. */
#define LIST_CHUNK (1u << 20)
/* Variants an RPZ rule adds for its record actions (all but the first, nxdomain). */
#define RPZ_VARIANTS (DK_RPZ_ACTION_MAX - 1)

/* A list file to read in phase two. */
struct pending_list {
	size_t rule;   /* index of the rule that names it */
	unsigned line; /* line of the entry in the rule file */
	off_t size;
};

/* An RPZ zone to read in phase two. */
struct pending_zone {
	size_t rule; /* index of the rule as written */
	off_t size;  /* of the file; 0 when there is none */
};

/* An address trigger waiting for the local data to be sorted. */
struct pending_ip {
	struct dk_ipset_entry e;
	bool response;      /* rpz-ip, else rpz-client-ip */
	bool local;         /* its action is local data, found by owner */
	uint8_t owner_len;  /* the trigger's owner, for finding that data */
	uint32_t owner_off; /* in the loader's local blob */
};

/* One local-data record as read; merged by owner once every zone is read. */
struct raw_local {
	uint16_t rule;
	bool wildcard;
	uint8_t owner_len;
	uint32_t owner_off; /* in the loader's local blob */
	uint32_t rr_off;    /* one [type][ttl][rdlen][rdata] record in the blob */
	uint32_t rr_len;
	uint32_t seq; /* reading order: records keep it within an owner */
};

/* An id seen so far, to report duplicates with both locations. */
struct seen_id {
	const char *id; /* owned by the rule, or by disabled_ids */
	const char *file;
	unsigned line;
};

struct loader {
	size_t cap_urls;
	unsigned flags;
	const char *state_dir; /* NULL: none (offline commands without a config) */
	struct dk_diag *diag;
	struct dk_policy *p;
	size_t cap_rules;
	size_t cap_lists;

	/*
	 * "domains:" entries waiting for phase two, packed as records:
	 * rule index (2 octets), wildcard (1), wire length (1), wire name.
	 */
	uint8_t *pend;
	size_t pend_len, pend_cap;
	size_t n_pend;

	struct pending_list *lists; /* parallel to p->lists */
	size_t cap_plists;

	struct pending_zone *pzones; /* parallel to p->zones */
	size_t cap_zones, cap_pzones;
	struct pending_ip *ips;
	size_t n_ips, cap_ips;
	struct raw_local *raw;
	size_t n_raw, cap_raw;
	uint8_t *blob; /* owners and records of local data while loading */
	size_t blob_len, blob_cap;

	struct seen_id *ids;
	size_t n_ids, cap_ids;
	char **owned; /* ids of disabled rules and file names kept for ids */
	size_t n_owned, cap_owned;

	struct dk__sigma_builder *sigma; /* Sigma documents read so far */
};

/* Keeps the loader's error in one place: FILE:LINE: message. */
static int __attribute__((format(printf, 5, 6)))
fail(struct loader *L, const char *file, unsigned line, int code, const char *fmt, ...)
{
	char msg[sizeof(((struct dk_diag *)0)->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	dk_diag_set(L->diag, file, line, "%s", msg);
	return code;
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap * 2 : 16;
	while (n < need)
		n *= 2;
	void *q = realloc(*arr, n * elem);
	if (!q)
		return -ENOMEM;
	*arr = q;
	*cap = n;
	return 0;
}

static int keep(struct loader *L, char *s)
{
	if (!s || grow((void **)&L->owned, &L->cap_owned, L->n_owned + 1, sizeof(char *))) {
		free(s);
		return -ENOMEM;
	}
	L->owned[L->n_owned++] = s;
	return 0;
}

/* ---- YAML helpers ------------------------------------------------------ */

/* Context of one rule file being read. */
struct file_ctx {
	struct loader *L;
	const char *file;
	yaml_document_t *doc;
};

static int want_string(struct file_ctx *c, const char *key, yaml_node_t *v, char **out)
{
	const char *s = dk__yaml_scalar(v);

	if (!s || dk__yaml_is_null(v))
		return fail(c->L, c->file, dk__yaml_line(v), DK_ESCHEMA, "'%s' must be a string",
		            key);
	if (dk__yaml_has_nul(v))
		return fail(c->L, c->file, dk__yaml_line(v), DK_ESCHEMA, "'%s' must not hold a NUL",
		            key);
	free(*out);
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

static int want_bool(struct file_ctx *c, const char *key, yaml_node_t *v, bool *out)
{
	const char *s = dk__yaml_scalar(v);

	if (s && v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
			*out = true;
			return 0;
		}
		if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
			*out = false;
			return 0;
		}
	}
	return fail(c->L, c->file, dk__yaml_line(v), DK_ESCHEMA, "'%s' must be true or false", key);
}

static int want_uint(struct file_ctx *c, const char *key, yaml_node_t *v, unsigned min,
                     unsigned max, unsigned *out)
{
	const char *s = dk__yaml_scalar(v);
	unsigned long n = 0;

	if (!s || v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || !*s)
		goto bad;
	for (const char *q = s; *q; q++) {
		if (*q < '0' || *q > '9')
			goto bad;
		n = n * 10 + (unsigned long)(*q - '0');
		if (n > max)
			goto bad;
	}
	if (n < min)
		goto bad;
	*out = (unsigned)n;
	return 0;
bad:
	return fail(c->L, c->file, dk__yaml_line(v), DK_ESCHEMA,
	            "'%s' must be an integer from %u to %u", key, min, max);
}

static int want_seq(struct file_ctx *c, const char *key, yaml_node_t *v)
{
	if (v->type != YAML_SEQUENCE_NODE)
		return fail(c->L, c->file, dk__yaml_line(v), DK_ESCHEMA, "'%s' must be a list",
		            key);
	return 0;
}

#define SEQ_FOREACH(doc, seq, it, node)                                                            \
	for (yaml_node_item_t *it = (seq)->data.sequence.items.start;                              \
	     it < (seq)->data.sequence.items.top && ((node) = yaml_document_get_node(doc, *it));   \
	     it++)

static int want_strings(struct file_ctx *c, const char *key, yaml_node_t *v, char ***out,
                        size_t *n_out)
{
	yaml_node_t *item;
	int rc = want_seq(c, key, v);

	if (rc)
		return rc;
	size_t n = dk__yaml_seq_len(v);
	char **arr = calloc(n ? n : 1, sizeof(char *));
	if (!arr)
		return -ENOMEM;
	size_t i = 0;
	SEQ_FOREACH(c->doc, v, it, item)
	{
		if ((rc = want_string(c, key, item, &arr[i])))
			break;
		i++;
	}
	/* A key given twice is refused earlier, so *out is still empty here. */
	*out = arr;
	*n_out = i;
	return rc;
}

/* ---- names --------------------------------------------------------------- */

/* True when the last label is all digits: "1.2.3.4" is an address, not a host name. */
static bool numeric_tld(const char *s, size_t n)
{
	if (n && s[n - 1] == '.')
		n--;
	size_t i = n;
	while (i > 0 && s[i - 1] != '.')
		i--;
	if (i == n)
		return false;
	for (size_t j = i; j < n; j++) {
		if (s[j] < '0' || s[j] > '9')
			return false;
	}
	return true;
}

/*
 * Parses an entry "name" or "*.name" into lowercase wire form. Returns 0,
 * DK_ENAME/DK_ELABEL/DK_ENAMELEN, or DK_ESYNTAX for a root name or an address.
 */
static int parse_entry(const char *s, size_t n, uint8_t wire[DK_NAME_MAX], size_t *wlen,
                       bool *wildcard)
{
	*wildcard = n > 2 && s[0] == '*' && s[1] == '.';
	if (*wildcard) {
		s += 2;
		n -= 2;
	}
	if (numeric_tld(s, n))
		return DK_ESYNTAX;
	/* A Unicode entry stands for its A-label form, the name queries carry. */
	int rc = dk_idna_name_from_text(s, n, DK_NAME_HOSTNAME, wire, wlen);
	if (rc)
		return rc;
	/* The root would match every query; no entry may mean that. */
	return *wlen <= 1 ? DK_ESYNTAX : 0;
}

static const char *entry_error(int err)
{
	switch (err) {
	case DK_ESYNTAX: return "an address or the root, not a host name";
	case DK_ENAME: return "empty label or a character not allowed in host names";
	default: return dk_strerror(err);
	}
}

static int pend_add(struct loader *L, size_t rule, const uint8_t *wire, size_t wlen, bool wildcard)
{
	if (grow((void **)&L->pend, &L->pend_cap, L->pend_len + 4 + wlen, 1))
		return -ENOMEM;
	uint8_t *q = L->pend + L->pend_len;
	q[0] = (uint8_t)(rule >> 8);
	q[1] = (uint8_t)rule;
	q[2] = wildcard;
	q[3] = (uint8_t)wlen;
	memcpy(q + 4, wire, wlen);
	L->pend_len += 4 + wlen;
	L->n_pend++;
	return 0;
}

/* ---- rule keys ------------------------------------------------------------ */

/* What one rule document holds while it is read. */
struct rule_ctx {
	struct dk_rule *r;
	size_t index;
	bool enabled;
	bool has_severity, has_action, has_entries;
	unsigned id_line;
	bool has_rpz;
};

typedef int (*key_fn)(struct file_ctx *c, struct rule_ctx *rc, const char *key, yaml_node_t *v);

static int key_id(struct file_ctx *c, struct rule_ctx *rc, const char *key, yaml_node_t *v)
{
	int err = want_string(c, key, v, &rc->r->id);
	if (err)
		return err;
	const char *id = rc->r->id;
	size_t n = strlen(id);
	if (!n || n > ID_MAX)
		return fail(c->L, c->file, dk__yaml_line(v), DK_ESCHEMA,
		            "id must be 1 to %d characters long", ID_MAX);
	for (size_t i = 0; i < n; i++) {
		char ch = id[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-' || ch == ':'))
			return fail(c->L, c->file, dk__yaml_line(v), DK_ESCHEMA,
			            "id '%s' may hold only letters, digits and . _ - :", id);
	}
	return 0;
}

static int key_name(struct file_ctx *c, struct rule_ctx *rc, const char *key, yaml_node_t *v)
{
	int err = want_string(c, key, v, &rc->r->name);
	if (!err && !rc->r->name[0])
		return fail(c->L, c->file, dk__yaml_line(v), DK_ESCHEMA, "name must not be empty");
	return err;
}

static int key_description(struct file_ctx *c, struct rule_ctx *rc, const char *key, yaml_node_t *v)
{
	if (dk__yaml_is_null(v))
		return 0;
	return want_string(c, key, v, &rc->r->description);
}

static int key_severity(struct file_ctx *c, struct rule_ctx *rc, const char *key, yaml_node_t *v)
{
	const char *s = dk__yaml_scalar(v);

	(void)key;
	if (!s || dk_severity_parse(s, &rc->r->severity))
		return fail(c->L, c->file, dk__yaml_line(v), DK_ESCHEMA,
		            "severity must be one of info, low, medium, high, critical");
	rc->has_severity = true;
	return 0;
}

static int key_action(struct file_ctx *c, struct rule_ctx *rc, const char *key, yaml_node_t *v)
{
	const char *s = dk__yaml_scalar(v);

	(void)key;
	if (!s || dk_action_parse(s, &rc->r->action))
		return fail(c->L, c->file, dk__yaml_line(v), DK_ESCHEMA,
		            "action must be one of sinkhole, nxdomain, refused, alert, allow");
	rc->has_action = true;
	return 0;
}

/* Whether @p n decimal digits start at s[*i]; moves *i past those it read. */
static bool digits(const char *s, size_t *i, size_t n)
{
	for (size_t j = 0; j < n; j++, (*i)++) {
		if (s[*i] < '0' || s[*i] > '9')
			return false;
	}
	return true;
}

/* "TA0040:T1496", "TA0040", "T1496" or "T1496.001". */
static bool mitre_ok(const char *s)
{
	size_t i = 0;

	if (s[0] == 'T' && s[1] == 'A') {
		i = 2;
		if (!digits(s, &i, 4))
			return false;
		if (!s[i])
			return true;
		if (s[i++] != ':')
			return false;
	}
	if (s[i++] != 'T' || !digits(s, &i, 4))
		return false;
	if (!s[i])
		return true;
	return s[i++] == '.' && digits(s, &i, 3) && !s[i];
}

static int key_mitre(struct file_ctx *c, struct rule_ctx *rc, const char *key, yaml_node_t *v)
{
	int err = want_strings(c, key, v, &rc->r->mitre, &rc->r->n_mitre);
	if (err)
		return err;
	for (size_t i = 0; i < rc->r->n_mitre; i++) {
		if (!mitre_ok(rc->r->mitre[i])) {
			yaml_node_t *item = dk__yaml_seq_item(c->doc, v, i);
			return fail(c->L, c->file, dk__yaml_line(item), DK_ESCHEMA,
			            "mitre entry '%s' is not TAnnnn:Tnnnn, TAnnnn or Tnnnn[.nnn]",
			            rc->r->mitre[i]);
		}
	}
	return 0;
}

static int key_references(struct file_ctx *c, struct rule_ctx *rc, const char *key, yaml_node_t *v)
{
	return want_strings(c, key, v, &rc->r->references, &rc->r->n_references);
}

static int key_tags(struct file_ctx *c, struct rule_ctx *rc, const char *key, yaml_node_t *v)
{
	/* Kept: client groups switch rules on and off by tag. */
	return want_strings(c, key, v, &rc->r->tags, &rc->r->n_tags);
}

static int key_alert(struct file_ctx *c, struct rule_ctx *rc, const char *key, yaml_node_t *v)
{
	return want_bool(c, key, v, &rc->r->alert);
}

static int key_single_label(struct file_ctx *c, struct rule_ctx *rc, const char *key,
                            yaml_node_t *v)
{
	return want_bool(c, key, v, &rc->r->single_label_ok);
}

static int key_enabled(struct file_ctx *c, struct rule_ctx *rc, const char *key, yaml_node_t *v)
{
	return want_bool(c, key, v, &rc->enabled);
}

static int key_dedup(struct file_ctx *c, struct rule_ctx *rc, const char *key, yaml_node_t *v)
{
	return want_uint(c, key, v, 0, DEDUP_MINUTES_MAX, &rc->r->dedup_minutes);
}

static int key_threshold(struct file_ctx *c, struct rule_ctx *rc, const char *key, yaml_node_t *v)
{
	return want_uint(c, key, v, 1, THRESHOLD_MAX, &rc->r->threshold);
}

static int key_domains(struct file_ctx *c, struct rule_ctx *rc, const char *key, yaml_node_t *v)
{
	yaml_node_t *item;
	int err = want_seq(c, key, v);

	if (err)
		return err;
	rc->has_entries = true;
	SEQ_FOREACH(c->doc, v, it, item)
	{
		const char *s = dk__yaml_scalar(item);
		uint8_t wire[DK_NAME_MAX];
		size_t wlen;
		bool wild;

		if (!s || dk__yaml_is_null(item))
			return fail(c->L, c->file, dk__yaml_line(item), DK_ESCHEMA,
			            "'domains' entries must be strings");
		err = parse_entry(s, item->data.scalar.length, wire, &wlen, &wild);
		if (err)
			return fail(c->L, c->file, dk__yaml_line(item), DK_ENAME,
			            "invalid domain '%s': %s", s, entry_error(err));
		if ((err = pend_add(c->L, rc->index, wire, wlen, wild)))
			return err;
		if (wire[0] + 2u == wlen && !rc->r->n_single_label++)
			rc->r->first_single_label = dk__yaml_line(item);
	}
	return 0;
}

/* Joins a list path to the folder of the rule file that names it. */
static char *resolve_list(const char *rule_file, const char *path)
{
	const char *slash = strrchr(rule_file, '/');
	char *out;

	if (path[0] == '/' || !slash)
		return strdup(path);
	int dir = (int)(slash - rule_file);
	if (asprintf(&out, "%.*s/%s", dir, rule_file, path) < 0)
		return NULL;
	return out;
}

static int key_domain_files(struct file_ctx *c, struct rule_ctx *rc, const char *key,
                            yaml_node_t *v)
{
	struct loader *L = c->L;
	struct dk_policy *p = L->p;
	yaml_node_t *item;
	int err = want_seq(c, key, v);

	if (err)
		return err;
	rc->has_entries = true;
	SEQ_FOREACH(c->doc, v, it, item)
	{
		const char *s = dk__yaml_scalar(item);
		struct stat st;

		if (!s || dk__yaml_is_null(item) || !*s)
			return fail(L, c->file, dk__yaml_line(item), DK_ESCHEMA,
			            "'domain_files' entries must be paths");
		char *path = resolve_list(c->file, s);
		if (!path)
			return -ENOMEM;
		int e = stat(path, &st) ? errno : S_ISREG(st.st_mode) ? 0 : EISDIR;
		if (e) {
			free(path);
			return fail(L, c->file, dk__yaml_line(item), -e,
			            "cannot read list '%s': %s", s,
			            e == EISDIR ? "not a regular file" : strerror(e));
		}
		if (grow((void **)&p->lists, &L->cap_lists, p->n_lists + 1, sizeof(*p->lists)) ||
		    grow((void **)&L->lists, &L->cap_plists, p->n_lists + 1, sizeof(*L->lists))) {
			free(path);
			return -ENOMEM;
		}
		memset(&p->lists[p->n_lists], 0, sizeof(p->lists[0]));
		p->lists[p->n_lists].file = path;
		L->lists[p->n_lists] = (struct pending_list){
		        .rule = rc->index, .line = dk__yaml_line(item), .size = st.st_size};
		p->n_lists++;
	}
	return 0;
}

/* ---- domain_urls: ------------------------------------------------------------- */

static int url_entry(struct file_ctx *c, yaml_node_t *item, struct dk_url_list *u)
{
	int err;

	u->refresh_s = DK_URL_REFRESH_S;
	u->max_shrink = DK_URL_MAX_SHRINK;
	u->max_bytes = DK_URL_MAX_BYTES;
	u->timeout_s = DK_URL_TIMEOUT_S;
	u->line = dk__yaml_line(item);
	u->list = -1;
	if (item->type == YAML_SCALAR_NODE)
		return want_string(c, "url", item, &u->url);
	if (item->type != YAML_MAPPING_NODE)
		return fail(
		        c->L, c->file, u->line, DK_ESCHEMA,
		        "'domain_urls' entries must be a URL or a mapping (url, refresh_s, ...)");
	for (yaml_node_pair_t *pr = item->data.mapping.pairs.start;
	     pr < item->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, pr->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, pr->value);
		const char *ks = dk__yaml_scalar(k);
		unsigned n;
		if (!ks)
			return fail(c->L, c->file, dk__yaml_line(k), DK_ESCHEMA,
			            "keys must be plain words");
		if (dk__yaml_earlier_key(c->doc, item, pr))
			return fail(c->L, c->file, dk__yaml_line(k), DK_ESCHEMA,
			            "duplicate key '%s'", ks);
		if (strcmp(ks, "url") == 0) {
			err = want_string(c, ks, v, &u->url);
		} else if (strcmp(ks, "refresh_s") == 0) {
			err = want_uint(c, ks, v, 1, 31536000, &u->refresh_s);
		} else if (strcmp(ks, "max_shrink") == 0) {
			err = want_uint(c, ks, v, 0, 100, &u->max_shrink);
		} else if (strcmp(ks, "timeout_s") == 0) {
			err = want_uint(c, ks, v, 1, 3600, &u->timeout_s);
		} else if (strcmp(ks, "max_mb") == 0) {
			err = want_uint(c, ks, v, 1, 4096, &n);
			u->max_bytes = (size_t)n << 20;
		} else {
			err = fail(c->L, c->file, dk__yaml_line(k), DK_ESCHEMA,
			           "unknown key '%s' in 'domain_urls' (url, refresh_s, max_shrink, "
			           "timeout_s, max_mb)",
			           ks);
		}
		if (err)
			return err;
	}
	if (!u->url)
		return fail(c->L, c->file, u->line, DK_ESCHEMA, "'domain_urls' entry has no 'url'");
	return 0;
}

static int key_domain_urls(struct file_ctx *c, struct rule_ctx *rc, const char *key, yaml_node_t *v)
{
	struct loader *L = c->L;
	struct dk_policy *p = L->p;
	yaml_node_t *item;
	int err = want_seq(c, key, v);

	if (err)
		return err;
	rc->has_entries = true;
	SEQ_FOREACH(c->doc, v, it, item)
	{
		if (grow((void **)&p->urls, &L->cap_urls, p->n_urls + 1, sizeof(*p->urls)))
			return -ENOMEM;
		struct dk_url_list *u = &p->urls[p->n_urls];
		memset(u, 0, sizeof(*u));
		/* Counted now, so that a failure below frees what the entry holds. */
		p->n_urls++;
		if ((err = url_entry(c, item, u)))
			return err;
		if (strncmp(u->url, "http://", 7) != 0 && strncmp(u->url, "https://", 8) != 0)
			return fail(L, c->file, u->line, DK_ESCHEMA,
			            "'%s' is not an http:// or https:// URL", u->url);
		/* The rule pointer is set in phase two; keep its index meanwhile. */
		u->rule = (const struct dk_rule *)(uintptr_t)rc->index;
		if (!L->state_dir)
			continue;
		char path[4096];
		struct stat st;
		if (dk_url_state_path(L->state_dir, u->url, path, sizeof(path)) < 0 ||
		    !(u->state_file = strdup(path)))
			return -ENOMEM;
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		/* The last good copy is read as any list file is. */
		if (grow((void **)&p->lists, &L->cap_lists, p->n_lists + 1, sizeof(*p->lists)) ||
		    grow((void **)&L->lists, &L->cap_plists, p->n_lists + 1, sizeof(*L->lists)))
			return -ENOMEM;
		memset(&p->lists[p->n_lists], 0, sizeof(p->lists[0]));
		if (!(p->lists[p->n_lists].file = strdup(path)))
			return -ENOMEM;
		L->lists[p->n_lists] = (struct pending_list){
		        .rule = rc->index, .line = u->line, .size = st.st_size};
		u->list = (long)p->n_lists++;
	}
	return 0;
}

/* ---- rpz: --------------------------------------------------------------------- */

static bool tsig_algorithm_ok(const char *a)
{
	static const char *const known[] = {"hmac-md5",    "hmac-sha1",   "hmac-sha224",
	                                    "hmac-sha256", "hmac-sha384", "hmac-sha512"};

	for (size_t i = 0; i < DK_ARRAY_SIZE(known); i++) {
		if (strcasecmp(a, known[i]) == 0 ||
		    (strncasecmp(a, known[i], strlen(known[i])) == 0 &&
		     strcmp(a + strlen(known[i]), ".sig-alg.reg.int.") == 0))
			return true;
	}
	return false;
}

static bool base64_ok(const char *s)
{
	size_t n = 0, pad = 0;

	for (; *s; s++, n++) {
		if (*s == '=') {
			pad++;
			continue;
		}
		if (pad || !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		             (*s >= '0' && *s <= '9') || *s == '+' || *s == '/'))
			return false;
	}
	return n > 0 && n % 4 == 0 && pad <= 2;
}

static int key_tsig(struct file_ctx *c, struct dk_tsig *t, yaml_node_t *v)
{
	int err;

	if (v->type != YAML_MAPPING_NODE)
		return fail(c->L, c->file, dk__yaml_line(v), DK_ESCHEMA,
		            "'tsig' must be a mapping (name, algorithm, secret)");
	for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top;
	     pr++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, pr->key);
		yaml_node_t *val = yaml_document_get_node(c->doc, pr->value);
		const char *ks = dk__yaml_scalar(k);
		char **out = !ks                            ? NULL
		             : strcmp(ks, "name") == 0      ? &t->name
		             : strcmp(ks, "algorithm") == 0 ? &t->algorithm
		             : strcmp(ks, "secret") == 0    ? &t->secret
		                                            : NULL;
		if (!out)
			return fail(c->L, c->file, dk__yaml_line(k), DK_ESCHEMA,
			            "unknown key '%s' in 'tsig' (name, algorithm, secret)",
			            ks ? ks : "?");
		if (dk__yaml_earlier_key(c->doc, v, pr))
			return fail(c->L, c->file, dk__yaml_line(k), DK_ESCHEMA,
			            "duplicate key '%s'", ks);
		if ((err = want_string(c, ks, val, out)))
			return err;
	}
	if (!t->name || !t->secret)
		return fail(c->L, c->file, dk__yaml_line(v), DK_ESCHEMA,
		            "'tsig' needs 'name' and 'secret'");
	if (!t->algorithm && !(t->algorithm = strdup("hmac-sha256")))
		return -ENOMEM;
	if (!tsig_algorithm_ok(t->algorithm))
		return fail(c->L, c->file, dk__yaml_line(v), DK_ESCHEMA,
		            "tsig algorithm '%s' is not one of hmac-md5, hmac-sha1, hmac-sha224, "
		            "hmac-sha256, hmac-sha384, hmac-sha512",
		            t->algorithm);
	if (!base64_ok(t->secret))
		return fail(c->L, c->file, dk__yaml_line(v), DK_ESCHEMA,
		            "tsig secret is not base64");
	uint8_t w[DK_NAME_MAX];
	size_t wl;
	if (dk_name_from_text(t->name, strlen(t->name), 0, w, &wl))
		return fail(c->L, c->file, dk__yaml_line(v), DK_ESCHEMA,
		            "tsig name '%s' is not a domain name", t->name);
	return 0;
}

static int key_rpz(struct file_ctx *c, struct rule_ctx *rc, const char *key, yaml_node_t *v)
{
	struct loader *L = c->L;
	struct dk_policy *p = L->p;
	int err;

	(void)key;
	if (v->type != YAML_MAPPING_NODE)
		return fail(L, c->file, dk__yaml_line(v), DK_ESCHEMA,
		            "'rpz' must be a mapping (file, zone, primary, tsig)");
	if (grow((void **)&p->zones, &L->cap_zones, p->n_zones + 1, sizeof(*p->zones)) ||
	    grow((void **)&L->pzones, &L->cap_pzones, p->n_zones + 1, sizeof(*L->pzones)))
		return -ENOMEM;
	struct dk_zone *z = &p->zones[p->n_zones];
	memset(z, 0, sizeof(*z));
	L->pzones[p->n_zones] = (struct pending_zone){.rule = rc->index};
	/* Counted now, so that a failure below frees what the zone holds. */
	p->n_zones++;
	z->line = dk__yaml_line(v);
	char *file = NULL;
	for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top;
	     pr++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, pr->key);
		yaml_node_t *val = yaml_document_get_node(c->doc, pr->value);
		const char *ks = dk__yaml_scalar(k);

		if (!ks)
			return fail(L, c->file, dk__yaml_line(k), DK_ESCHEMA,
			            "keys must be plain words");
		if (dk__yaml_earlier_key(c->doc, v, pr))
			return fail(L, c->file, dk__yaml_line(k), DK_ESCHEMA, "duplicate key '%s'",
			            ks);
		if (strcmp(ks, "file") == 0)
			err = want_string(c, ks, val, &file);
		else if (strcmp(ks, "zone") == 0)
			err = want_string(c, ks, val, &z->origin);
		else if (strcmp(ks, "primary") == 0)
			err = want_string(c, ks, val, &z->primary);
		else if (strcmp(ks, "tsig") == 0)
			err = key_tsig(c, &z->tsig, val);
		else
			err = fail(L, c->file, dk__yaml_line(k), DK_ESCHEMA,
			           "unknown key '%s' in 'rpz' (file, zone, primary, tsig)", ks);
		if (!err && strcmp(ks, "file") == 0) {
			z->file = resolve_list(c->file, file);
			free(file);
			file = NULL;
			if (!z->file)
				err = -ENOMEM;
		}
		if (err) {
			free(file);
			return err;
		}
	}
	if (!z->origin)
		return fail(L, c->file, z->line, DK_ESCHEMA, "'rpz' needs 'zone' (its origin)");
	if (!z->file && !z->primary)
		return fail(L, c->file, z->line, DK_ESCHEMA,
		            "'rpz' needs 'file', 'primary' or both");
	if (dk_idna_name_from_text(z->origin, strlen(z->origin), 0, z->origin_wire,
	                           &z->origin_len) ||
	    z->origin_len <= 1)
		return fail(L, c->file, z->line, DK_ENAME, "rpz zone '%s' is not a domain name",
		            z->origin);
	/* The origin as text, lowercase, with its final dot: the zone's name everywhere. */
	char text[DK_NAME_MAX * 4 + 2];
	int n = dk_name_to_text(z->origin_wire, z->origin_len, text, sizeof(text) - 1);
	if (n < 0)
		return n;
	text[n] = '.';
	text[n + 1] = '\0';
	free(z->origin);
	if (!(z->origin = strdup(text)))
		return -ENOMEM;
	if (z->primary) {
		if (dk_addr_parse(z->primary, 53, &z->primary_addr))
			return fail(L, c->file, z->line, DK_ESYNTAX,
			            "rpz primary '%s' is not an address", z->primary);
	}
	if (z->primary && L->state_dir) {
		struct stat st;
		/* The origin is a checked host name: no '/' can reach the path. */
		if (asprintf(&z->state_file, "%s/rpz-%.*s.zone", L->state_dir,
		             (int)strlen(z->origin) - 1, z->origin) < 0) {
			z->state_file = NULL;
			return -ENOMEM;
		}
		if (stat(z->state_file, &st) == 0 && S_ISREG(st.st_mode)) {
			z->from_state = true;
			L->pzones[p->n_zones - 1].size = st.st_size;
		}
	}
	if (z->file && !z->from_state) {
		struct stat st;
		int e = stat(z->file, &st) ? errno : S_ISREG(st.st_mode) ? 0 : EISDIR;
		/* With a primary the file may come later, by transfer. */
		if (e && !(z->primary && e == ENOENT))
			return fail(L, c->file, z->line, -e, "cannot read zone '%s': %s", z->file,
			            e == EISDIR ? "not a regular file" : strerror(e));
		L->pzones[p->n_zones - 1].size = e ? 0 : st.st_size;
	}
	rc->has_entries = true;
	rc->has_rpz = true;
	return 0;
}

/* Finds the query name in a test's log record: AWS.VPCDns, OCSF or {query: NAME}. */
static yaml_node_t *log_query(yaml_document_t *doc, yaml_node_t *log)
{
	yaml_node_t *found = NULL;

	for (yaml_node_pair_t *pr = log->data.mapping.pairs.start; pr < log->data.mapping.pairs.top;
	     pr++) {
		yaml_node_t *k = yaml_document_get_node(doc, pr->key);
		yaml_node_t *v = yaml_document_get_node(doc, pr->value);
		const char *ks = k ? dk__yaml_scalar(k) : NULL;

		if (!ks || !v)
			continue;
		if (strcmp(ks, "query_name") == 0 && dk__yaml_scalar(v))
			return v;
		if (strcmp(ks, "query") == 0 && dk__yaml_scalar(v))
			found = v;
		if (strcmp(ks, "query") == 0 && v->type == YAML_MAPPING_NODE) {
			for (yaml_node_pair_t *q = v->data.mapping.pairs.start;
			     q < v->data.mapping.pairs.top; q++) {
				yaml_node_t *qk = yaml_document_get_node(doc, q->key);
				yaml_node_t *qv = yaml_document_get_node(doc, q->value);
				if (qk && qv && dk__yaml_scalar(qk) &&
				    strcmp(dk__yaml_scalar(qk), "hostname") == 0 &&
				    dk__yaml_scalar(qv))
					found = qv;
			}
		}
	}
	return found;
}

static int parse_test(struct file_ctx *c, yaml_node_t *t, struct dk_rule_test *out)
{
	yaml_node_t *name = NULL, *expect = NULL, *log = NULL, *client = NULL;

	if (t->type != YAML_MAPPING_NODE)
		return fail(c->L, c->file, dk__yaml_line(t), DK_ESCHEMA,
		            "a test must be a mapping with name, expect and log");
	out->line = dk__yaml_line(t);
	for (yaml_node_pair_t *pr = t->data.mapping.pairs.start; pr < t->data.mapping.pairs.top;
	     pr++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, pr->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, pr->value);
		const char *ks = dk__yaml_scalar(k);
		yaml_node_t **slot = NULL;

		if (ks && strcmp(ks, "name") == 0)
			slot = &name;
		else if (ks && strcmp(ks, "expect") == 0)
			slot = &expect;
		else if (ks && strcmp(ks, "log") == 0)
			slot = &log;
		else if (ks && strcmp(ks, "client") == 0)
			slot = &client;
		if (!slot)
			return fail(c->L, c->file, dk__yaml_line(k), DK_ESCHEMA,
			            "unknown key '%s' in test (name, expect, log, client)",
			            ks ? ks : "?");
		if (*slot)
			return fail(c->L, c->file, dk__yaml_line(k), DK_ESCHEMA,
			            "duplicate key '%s'", ks);
		*slot = v;
	}
	if (!name || !expect || !log)
		return fail(c->L, c->file, out->line, DK_ESCHEMA, "test has no '%s'",
		            !name     ? "name"
		            : !expect ? "expect"
		                      : "log");
	int err = want_string(c, "name", name, &out->name);
	if (!err)
		err = want_bool(c, "expect", expect, &out->expect);
	if (err)
		return err;
	if (log->type != YAML_MAPPING_NODE)
		return fail(c->L, c->file, dk__yaml_line(log), DK_ESCHEMA,
		            "test log must be a mapping (a log record)");
	yaml_node_t *q = log_query(c->doc, log);
	if (!q)
		return fail(c->L, c->file, dk__yaml_line(log), DK_ESCHEMA,
		            "test log has no query_name, query.hostname or query");
	uint8_t wire[DK_NAME_MAX];
	size_t wlen;
	err = dk_name_from_text(dk__yaml_scalar(q), q->data.scalar.length, 0, wire, &wlen);
	if (err)
		return fail(c->L, c->file, dk__yaml_line(q), DK_ENAME, "test query '%s': %s",
		            dk__yaml_scalar(q), dk_strerror(err));
	out->query = strdup(dk__yaml_scalar(q));
	if (!out->query)
		return -ENOMEM;
	if (client) {
		/* The client a test names picks its group (dnsink test -c FILE). */
		uint8_t a[16];
		if ((err = want_string(c, "client", client, &out->client)))
			return err;
		if (inet_pton(AF_INET, out->client, a) != 1 &&
		    inet_pton(AF_INET6, out->client, a) != 1)
			return fail(c->L, c->file, dk__yaml_line(client), DK_ESCHEMA,
			            "test client '%s' is not an IP address", out->client);
	}
	return 0;
}

static int key_tests(struct file_ctx *c, struct rule_ctx *rc, const char *key, yaml_node_t *v)
{
	yaml_node_t *item;
	int err = want_seq(c, key, v);

	if (err)
		return err;
	size_t n = dk__yaml_seq_len(v);
	rc->r->tests = calloc(n ? n : 1, sizeof(*rc->r->tests));
	if (!rc->r->tests)
		return -ENOMEM;
	SEQ_FOREACH(c->doc, v, it, item)
	{
		/* Counted before parsing, so a half-read test is freed with the rule. */
		struct dk_rule_test *t = &rc->r->tests[rc->r->n_tests++];
		if ((err = parse_test(c, item, t)))
			return err;
	}
	return 0;
}

/* The schema of a rule document: every key a rule may hold. */
static const struct {
	const char *key;
	key_fn fn;
} rule_keys[] = {
        {"id", key_id},
        {"name", key_name},
        {"description", key_description},
        {"severity", key_severity},
        {"action", key_action},
        {"mitre", key_mitre},
        {"references", key_references},
        {"alert", key_alert},
        {"dedup_minutes", key_dedup},
        {"threshold", key_threshold},
        {"domains", key_domains},
        {"domain_files", key_domain_files},
        {"rpz", key_rpz},
        {"domain_urls", key_domain_urls},
        {"tests", key_tests},
        {"enabled", key_enabled},
        {"single_label", key_single_label},
        {"tags", key_tags},
};

static int remember_id(struct loader *L, const char *id, const char *file, unsigned line)
{
	for (size_t i = 0; i < L->n_ids; i++) {
		if (strcmp(L->ids[i].id, id) == 0)
			return fail(L, file, line, DK_EDUP,
			            "duplicate rule id '%s' (first defined at %s:%u)", id,
			            L->ids[i].file, L->ids[i].line);
	}
	if (grow((void **)&L->ids, &L->cap_ids, L->n_ids + 1, sizeof(*L->ids)))
		return -ENOMEM;
	L->ids[L->n_ids++] = (struct seen_id){.id = id, .file = file, .line = line};
	return 0;
}

/*
 * Adds the variants of RPZ rule @p base (see struct dk_rule) and fills its
 * zone's action map. With @p override (the rule names an action) every
 * record takes the rule's action and no variant is needed.
 */
static int add_variants(struct loader *L, size_t base, bool override, struct dk_zone *z,
                        const char *file)
{
	static const enum dk_action of[DK_RPZ_ACTION_MAX] = {
	        [DK_RPZ_NXDOMAIN] = DK_ACTION_NXDOMAIN, [DK_RPZ_NODATA] = DK_ACTION_NODATA,
	        [DK_RPZ_PASSTHRU] = DK_ACTION_ALLOW,    [DK_RPZ_DROP] = DK_ACTION_DROP,
	        [DK_RPZ_TCP_ONLY] = DK_ACTION_TCP_ONLY, [DK_RPZ_LOCAL] = DK_ACTION_LOCAL,
	};
	struct dk_policy *p = L->p;

	for (size_t a = 0; a < DK_RPZ_ACTION_MAX; a++)
		z->variant[a] = (uint16_t)base;
	if (override)
		return 0;
	if (p->n_rules + RPZ_VARIANTS > DK_RULES_MAX)
		return fail(L, file, p->rules[base].line, DK_EFULL, "more than %d rules",
		            DK_RULES_MAX);
	if (grow((void **)&p->rules, &L->cap_rules, p->n_rules + RPZ_VARIANTS, sizeof(*p->rules)))
		return -ENOMEM;
	for (size_t a = 1; a < DK_RPZ_ACTION_MAX; a++) {
		struct dk_rule *v = &p->rules[p->n_rules];
		*v = p->rules[base];
		v->variant = true;
		v->index = (uint16_t)p->n_rules;
		v->action = of[a];
		v->own = NULL;
		/* The rule's tests run once, on the rule as written. */
		v->tests = NULL;
		v->n_tests = 0;
		z->variant[a] = (uint16_t)p->n_rules++;
	}
	return 0;
}

static int load_rule(struct file_ctx *c, const char *file_kept, yaml_node_t *root)
{
	struct loader *L = c->L;
	struct dk_policy *p = L->p;
	size_t pend_len = L->pend_len, n_pend = L->n_pend, n_lists = p->n_lists;
	size_t n_zones = p->n_zones, n_urls = p->n_urls;
	int err;

	if (root->type != YAML_MAPPING_NODE)
		return fail(L, c->file, dk__yaml_line(root), DK_ESCHEMA,
		            "a rule must be a mapping of keys (id, name, severity, action, ...)");
	if (p->n_rules >= DK_RULES_MAX)
		return fail(L, c->file, dk__yaml_line(root), DK_EFULL, "more than %d rules",
		            DK_RULES_MAX);
	if (grow((void **)&p->rules, &L->cap_rules, p->n_rules + 1, sizeof(*p->rules)))
		return -ENOMEM;

	struct dk_rule *r = &p->rules[p->n_rules];
	memset(r, 0, sizeof(*r));
	struct rule_ctx rc = {.r = r, .index = p->n_rules, .enabled = true};
	r->index = (uint16_t)p->n_rules;
	r->base = r->index;
	r->alert = true;
	r->dedup_minutes = DEFAULT_DEDUP_MINUTES;
	r->threshold = 1;
	r->line = dk__yaml_line(root);
	if (!(r->file = strdup(c->file))) {
		err = -ENOMEM;
		goto fail;
	}

	for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
	     pr < root->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, pr->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, pr->value);
		const char *ks = dk__yaml_scalar(k);
		key_fn fn = NULL;

		if (!ks) {
			err = fail(L, c->file, dk__yaml_line(k), DK_ESCHEMA,
			           "keys must be plain words");
			goto fail;
		}
		if (dk__yaml_earlier_key(c->doc, root, pr)) {
			err = fail(L, c->file, dk__yaml_line(k), DK_ESCHEMA, "duplicate key '%s'",
			           ks);
			goto fail;
		}
		for (size_t i = 0; i < DK_ARRAY_SIZE(rule_keys); i++) {
			if (strcmp(rule_keys[i].key, ks) == 0)
				fn = rule_keys[i].fn;
		}
		if (!fn) {
			err = fail(L, c->file, dk__yaml_line(k), DK_ESCHEMA, "unknown key '%s'",
			           ks);
			goto fail;
		}
		if (strcmp(ks, "id") == 0)
			rc.id_line = dk__yaml_line(k);
		if ((err = fn(c, &rc, ks, v)))
			goto fail;
	}

	const char *missing = !r->id                          ? "id"
	                      : !r->name                      ? "name"
	                      : !rc.has_severity              ? "severity"
	                      : !rc.has_action && !rc.has_rpz ? "action"
	                                                      : NULL;
	if (missing) {
		err = fail(L, c->file, r->line, DK_ESCHEMA, "rule has no '%s'", missing);
		goto fail;
	}
	if (!rc.has_entries) {
		err = fail(
		        L, c->file, r->line, DK_ESCHEMA,
		        "rule '%s' has neither 'domains', 'domain_files', 'domain_urls' nor 'rpz'",
		        r->id);
		goto fail;
	}
	r->line = rc.id_line;

	if (!rc.enabled) {
		/* A disabled rule is checked, and its id stays taken, but it adds nothing. */
		char *id = strdup(r->id);
		if ((err = keep(L, id)) || (err = remember_id(L, id, file_kept, rc.id_line)))
			goto fail;
		dk__rule_deinit(r);
		L->pend_len = pend_len;
		L->n_pend = n_pend;
		for (size_t i = n_lists; i < p->n_lists; i++)
			free(p->lists[i].file);
		p->n_lists = n_lists;
		for (size_t i = n_zones; i < p->n_zones; i++)
			dk__zone_deinit(&p->zones[i]);
		p->n_zones = n_zones;
		for (size_t i = n_urls; i < p->n_urls; i++) {
			free(p->urls[i].url);
			free(p->urls[i].state_file);
		}
		p->n_urls = n_urls;
		return 0;
	}
	if ((err = remember_id(L, r->id, file_kept, rc.id_line)))
		goto fail;
	if (rc.has_rpz && !rc.has_action)
		r->action = DK_ACTION_NXDOMAIN;
	p->n_rules++;
	if (rc.has_rpz)
		return add_variants(L, rc.index, rc.has_action, &p->zones[p->n_zones - 1], c->file);
	return 0;
fail:
	/* The caller frees the snapshot; the half-read rule is not counted in it. */
	dk__rule_deinit(r);
	return err;
}

static int copy_strings(char ***out, size_t *n_out, char *const *in, size_t n)
{
	*out = calloc(n ? n : 1, sizeof(char *));
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!((*out)[i] = strdup(in[i])))
			return -ENOMEM;
		*n_out = i + 1;
	}
	return 0;
}

/*
 * A Sigma document (sigma.c reads it): a loaded rule becomes a policy rule
 * that only the Sigma engine matches, so alerts, counters and actions treat
 * it as any other; skipped and rejected ones are only reported.
 */
static int load_sigma(struct file_ctx *c, const char *file_kept, yaml_node_t *root)
{
	struct loader *L = c->L;
	struct dk_policy *p = L->p;
	struct dk__sigma_meta m;
	enum dk_sigma_status st;
	int err;

	if (!L->sigma && !(L->sigma = dk__sigma_builder_new()))
		return -ENOMEM;
	if ((err = dk__sigma_read(L->sigma, c->doc, root, c->file, &st, &m, L->diag)))
		return err;
	if (st != DK_SIGMA_LOADED)
		return 0;
	/* An id seen before rejects this rule, not the load: SigmaHQ itself repeats a few. */
	for (size_t i = 0; i < L->n_ids; i++) {
		if (strcmp(L->ids[i].id, m.id) == 0) {
			char why[600];
			snprintf(why, sizeof(why), "duplicate id (first defined at %s:%u)",
			         L->ids[i].file, L->ids[i].line);
			return dk__sigma_reject(L->sigma, why);
		}
	}
	if (p->n_rules >= DK_RULES_MAX)
		return fail(L, c->file, m.line, DK_EFULL, "more than %d rules", DK_RULES_MAX);
	if (grow((void **)&p->rules, &L->cap_rules, p->n_rules + 1, sizeof(*p->rules)))
		return -ENOMEM;
	struct dk_rule *r = &p->rules[p->n_rules];
	memset(r, 0, sizeof(*r));
	r->index = (uint16_t)p->n_rules;
	r->sigma = true;
	r->alert = true;
	r->action = DK_ACTION_ALERT;
	r->severity = (enum dk_severity)m.severity;
	r->threshold = 1;
	r->dedup_minutes = DEFAULT_DEDUP_MINUTES;
	r->line = m.line;
	r->id = strdup(m.id);
	r->name = strdup(m.title);
	r->file = strdup(c->file);
	r->description = m.description ? strdup(m.description) : NULL;
	if (!r->id || !r->name || !r->file || (m.description && !r->description) ||
	    copy_strings(&r->mitre, &r->n_mitre, m.mitre, m.n_mitre) ||
	    copy_strings(&r->references, &r->n_references, m.references, m.n_references)) {
		err = -ENOMEM;
		goto fail;
	}
	if ((err = remember_id(L, r->id, file_kept, m.line)))
		goto fail;
	dk__sigma_commit(L->sigma, r->index);
	p->n_rules++;
	return 0;
fail:
	dk__sigma_abandon(L->sigma);
	dk__rule_deinit(r);
	return err;
}

static int load_rule_file(struct loader *L, const char *path)
{
	yaml_parser_t parser;
	FILE *f;
	int err = 0, docs = 0;

	if (!(f = fopen(path, "rb")))
		return fail(L, path, 0, -errno, "cannot open rule file: %s", strerror(errno));
	if (!yaml_parser_initialize(&parser)) {
		fclose(f);
		return -ENOMEM;
	}
	yaml_parser_set_input_file(&parser, f);

	/* The file name is referenced by the ids it defines until loading ends. */
	char *file_kept = strdup(path);
	if ((err = keep(L, file_kept)))
		goto out;

	for (;;) {
		yaml_document_t doc;
		if (!yaml_parser_load(&parser, &doc)) {
			err = dk__yaml_parser_error(&parser, path, L->diag);
			break;
		}
		yaml_node_t *root = yaml_document_get_root_node(&doc);
		if (!root) {
			yaml_document_delete(&doc);
			break;
		}
		docs++;
		struct file_ctx c = {.L = L, .file = path, .doc = &doc};
		if (dk__sigma_is_rule(&doc, root))
			err = load_sigma(&c, file_kept, root);
		else
			err = load_rule(&c, file_kept, root);
		yaml_document_delete(&doc);
		if (err)
			break;
	}
	if (!err && !docs)
		err = fail(L, path, 0, DK_ESCHEMA, "no rule in file");
out:
	yaml_parser_delete(&parser);
	fclose(f);
	return err;
}

static bool rule_file_name(const char *n)
{
	size_t len = strlen(n);

	if (n[0] == '.')
		return false;
	/* "rule.tests.yml" holds the tests of the Sigma rule "rule.yml" (dnsink test). */
	if (len > 10 && strcmp(n + len - 10, ".tests.yml") == 0)
		return false;
	return (len > 4 && strcmp(n + len - 4, ".yml") == 0) ||
	       (len > 5 && strcmp(n + len - 5, ".yaml") == 0);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_dir(struct loader *L, const char *dir)
{
	DIR *d = opendir(dir);
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	int err = 0;

	if (!d)
		return fail(L, dir, 0, -errno, "cannot open folder: %s", strerror(errno));
	while ((e = readdir(d))) {
		if (!rule_file_name(e->d_name))
			continue;
		char *full;
		size_t dl = strlen(dir);
		bool slash = dl && dir[dl - 1] == '/';
		if (asprintf(&full, "%s%s%s", dir, slash ? "" : "/", e->d_name) < 0 ||
		    grow((void **)&names, &cap, n + 1, sizeof(char *))) {
			err = -ENOMEM;
			goto out;
		}
		names[n++] = full;
	}
	/* Name order, bytewise, so load order does not depend on the locale. */
	qsort(names, n, sizeof(char *), cmp_str);
	for (size_t i = 0; i < n && !err; i++) {
		struct stat st;
		if (stat(names[i], &st) == 0 && !S_ISREG(st.st_mode))
			continue;
		err = load_rule_file(L, names[i]);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return err;
}

/* ---- list files ------------------------------------------------------------ */

/* Where entries of one rule go in phase two. */
struct sink {
	struct dk_suffixset_builder *all;
	struct dk_suffixset_builder *own; /* NULL without DK_POLICY_PER_RULE_SETS */
	uint16_t index;
};

static int sink_add(const struct sink *s, const uint8_t *wire, size_t wlen, bool wildcard)
{
	/* No builder: only counting (dk_list_scan()). */
	if (!s->all)
		return 0;
	uint16_t value = (uint16_t)(s->index << 1 | wildcard);
	int err = dk_suffixset_builder_add(s->all, wire, wlen, wildcard, value);

	if (!err && s->own)
		err = dk_suffixset_builder_add(s->own, wire, wlen, wildcard, value);
	return err;
}

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* Names hosts files carry for the machine itself; not entries, not errors. */
static bool hosts_local_name(const char *s, size_t n)
{
	static const char *const local[] = {
	        "localhost",     "localhost.localdomain", "local",        "broadcasthost",
	        "ip6-localhost", "ip6-loopback",          "ip6-localnet", "ip6-mcastprefix",
	        "ip6-allnodes",  "ip6-allrouters",        "ip6-allhosts", "0.0.0.0",
	};

	for (size_t i = 0; i < DK_ARRAY_SIZE(local); i++) {
		if (strlen(local[i]) == n && strncasecmp(local[i], s, n) == 0)
			return true;
	}
	return false;
}

/* True when token [s, s+n) is an IPv4 or IPv6 address (the first field of a hosts line). */
static bool is_address(const char *s, size_t n)
{
	char buf[INET6_ADDRSTRLEN + 8];
	uint8_t tmp[16];

	if (n == 0 || n >= sizeof(buf))
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
		      (ch >= 'A' && ch <= 'F') || ch == '.' || ch == ':'))
			return false;
	}
	memcpy(buf, s, n);
	buf[n] = '\0';
	return inet_pton(AF_INET, buf, tmp) == 1 || inet_pton(AF_INET6, buf, tmp) == 1;
}

/*
 * Reads one list line [s, e). Returns 1 when the line was (or held) something
 * invalid, 0 otherwise, or a negative code when adding failed.
 */
/* Counts one valid entry of the list being read; notes a single-label one. */
static void list_entry(struct dk_list_stats *ls, const uint8_t *wire, size_t wlen)
{
	ls->entries++;
	if (wire[0] + 2u == wlen && !ls->single_label++)
		ls->first_single_label = (unsigned)ls->lines;
}

static int list_line(const struct sink *sk, const char *s, const char *e, struct dk_list_stats *ls)
{
	uint8_t wire[DK_NAME_MAX];
	size_t wlen;
	bool wild;
	int err;

	while (s < e && is_space(*s))
		s++;
	/* An inline comment starts with '#' after blank space ("##" is adblock syntax). */
	for (const char *q = s; q < e; q++) {
		if (*q == '#' && (q == s || is_space(q[-1]))) {
			e = q;
			break;
		}
	}
	while (e > s && is_space(e[-1]))
		e--;
	if (s == e || *s == '!')
		return 0;

	const char *t = s;
	while (t < e && !is_space(*t))
		t++;
	size_t n = (size_t)(t - s);

	if (n > 2 && s[0] == '|' && s[1] == '|') {
		/* Adblock "||name^": the name and everything below it. */
		const char *caret = memchr(s, '^', n);
		if (t != e || !caret)
			return 1;
		size_t rest = (size_t)(t - caret - 1);
		/* "$important" only ranks a rule among adblock exceptions, which lists here lack.
		 */
		if (rest && !(rest == 10 && memcmp(caret + 1, "$important", 10) == 0))
			return 1;
		if (parse_entry(s + 2, (size_t)(caret - s - 2), wire, &wlen, &wild) || wild)
			return 1;
		if ((err = sink_add(sk, wire, wlen, false)))
			return err;
		list_entry(ls, wire, wlen);
		return 0;
	}

	if (is_address(s, n)) {
		/* Hosts format: an address, then one or more names. */
		bool bad = false, any = false;
		for (const char *q = t; q < e;) {
			while (q < e && is_space(*q))
				q++;
			const char *qe = q;
			while (qe < e && !is_space(*qe))
				qe++;
			if (q == qe)
				break;
			any = true;
			if (hosts_local_name(q, (size_t)(qe - q))) {
				q = qe;
				continue;
			}
			if (parse_entry(q, (size_t)(qe - q), wire, &wlen, &wild) || wild) {
				bad = true;
			} else {
				if ((err = sink_add(sk, wire, wlen, false)))
					return err;
				list_entry(ls, wire, wlen);
			}
			q = qe;
		}
		return bad || !any;
	}

	if (t != e || parse_entry(s, n, wire, &wlen, &wild))
		return 1;
	if ((err = sink_add(sk, wire, wlen, wild)))
		return err;
	list_entry(ls, wire, wlen);
	return 0;
}

/* Reads the whole of @p path into a new NUL-terminated buffer. */
static int slurp(const char *path, char **out, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf = NULL;
	size_t got = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		goto fail;
	size_t cap = (size_t)st.st_size + 1;
	if (!(buf = malloc(cap))) {
		errno = ENOMEM;
		goto fail;
	}
	for (;;) {
		if (got + 1 == cap) {
			/* The file grew since fstat(); keep reading. */
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				errno = ENOMEM;
				goto fail;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + got, cap - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto fail;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
fail:;
	int e = -errno;
	free(buf);
	close(fd);
	return e;
}

/* Reads one line [s, e) of a list into @p sk and counts it; < 0 when adding failed. */
static int list_one(const struct sink *sk, const char *s, const char *e, struct dk_list_stats *ls)
{
	ls->lines++;
	int bad = list_line(sk, s, e, ls);

	if (bad < 0)
		return bad;
	if (bad) {
		ls->invalid++;
		if (!ls->first_invalid_line)
			ls->first_invalid_line = (unsigned)ls->lines;
	}
	return 0;
}

/*
 * Reads list @p li into @p sk in chunks of LIST_CHUNK octets (more for a line
 * longer than that): a list of ten million names is 170 MB of text, which a
 * whole-file buffer would hold (and the kernel zero) beside the set being
 * built, for nothing. Not mmap: a list rewritten in place while it is read
 * would then kill the daemon with SIGBUS instead of giving a wrong count.
 */
static int load_list(struct loader *L, size_t li, const struct sink *sk)
{
	struct dk_list_stats *ls = &L->p->lists[li];
	int fd = open(ls->file, O_RDONLY | O_CLOEXEC);
	size_t cap = LIST_CHUNK, have = 0;
	bool first = true;
	char *buf;
	int err = 0;

	if (fd < 0)
		return fail(L, ls->file, 0, -errno, "cannot read list: %s", strerror(errno));
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if (!(buf = malloc(cap))) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		ssize_t r = read(fd, buf + have, cap - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = fail(L, ls->file, 0, -errno, "cannot read list: %s", strerror(errno));
			break;
		}
		have += (size_t)r;
		const char *s = buf, *end = buf + have;
		if (first) {
			/* A byte order mark opens the file, if anything: wait for its 3 octets. */
			if (have < 3 && r != 0)
				continue;
			first = false;
			if (have >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
				s += 3;
		}
		const char *nl;
		while (!err && (nl = memchr(s, '\n', (size_t)(end - s)))) {
			err = list_one(sk, s, nl, ls);
			s = nl + 1;
		}
		if (!err && r == 0 && s < end)
			err = list_one(sk, s, end, ls);
		if (err || r == 0)
			break;
		/* Keep the unfinished line; grow the buffer when it fills the whole of it. */
		have = (size_t)(end - s);
		memmove(buf, s, have);
		if (have == cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				err = -ENOMEM;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	free(buf);
	close(fd);
	return err;
}

/* ---- RPZ zones ------------------------------------------------------------- */

/* What the zone reader's callback needs. */
struct zone_ctx {
	struct loader *L;
	struct dk_zone *z;
	struct dk_suffixset_builder *all;
	struct dk_suffixset_builder *own; /* the base rule's; NULL without per-rule sets */
	/* The QNAME trigger of the record before: an owner with A and AAAA is one trigger. */
	uint8_t last[DK_NAME_MAX];
	size_t last_len;
	bool last_wildcard;
};

static int blob_put(struct loader *L, const void *data, size_t n, uint32_t *off)
{
	if (L->blob_len + n > UINT32_MAX)
		return -ENOMEM;
	if (grow((void **)&L->blob, &L->blob_cap, L->blob_len + n, 1))
		return -ENOMEM;
	memcpy(L->blob + L->blob_len, data, n);
	*off = (uint32_t)L->blob_len;
	L->blob_len += n;
	return 0;
}

/* Keeps one local-data record of a trigger until every zone is read. */
static int local_add(struct loader *L, uint16_t rule, bool wildcard, const uint8_t *owner,
                     size_t owner_len, const struct dk_rpz_rec *rec)
{
	uint8_t hdr[8] = {
	        (uint8_t)(rec->type >> 8),  (uint8_t)rec->type,       (uint8_t)(rec->ttl >> 24),
	        (uint8_t)(rec->ttl >> 16),  (uint8_t)(rec->ttl >> 8), (uint8_t)rec->ttl,
	        (uint8_t)(rec->rdlen >> 8), (uint8_t)rec->rdlen,
	};
	struct raw_local r = {.rule = rule,
	                      .wildcard = wildcard,
	                      .owner_len = (uint8_t)owner_len,
	                      .rr_len = 8u + rec->rdlen,
	                      .seq = (uint32_t)L->n_raw};
	uint32_t data_off;

	if (grow((void **)&L->raw, &L->cap_raw, L->n_raw + 1, sizeof(*L->raw)) ||
	    blob_put(L, owner, owner_len, &r.owner_off) || blob_put(L, hdr, 8, &r.rr_off) ||
	    blob_put(L, rec->rdata, rec->rdlen, &data_off))
		return -ENOMEM;
	L->raw[L->n_raw++] = r;
	return 0;
}

static int zone_record(void *ctx, const struct dk_rpz_rec *rec)
{
	struct zone_ctx *zc = ctx;
	struct loader *L = zc->L;
	struct dk_zone *z = zc->z;
	uint16_t idx = z->variant[rec->action];
	/* Local data only where the rule did not override the records' actions. */
	bool local = rec->action == DK_RPZ_LOCAL && L->p->rules[idx].action == DK_ACTION_LOCAL;
	int err;

	if (rec->trigger == DK_RPZ_QNAME) {
		uint16_t value = (uint16_t)(idx << 1 | rec->wildcard);
		/* RPZ: "name" is that name alone, "*.name" what is below it. */
		unsigned slots = rec->wildcard ? DK_SUFFIXSET_BELOW : DK_SUFFIXSET_SELF;
		if ((err = dk_suffixset_builder_add_slots(zc->all, rec->owner, rec->owner_len,
		                                          slots, value)) ||
		    (zc->own && (err = dk_suffixset_builder_add_slots(
		                         zc->own, rec->owner, rec->owner_len, slots, value))))
			return err;
		if (local &&
		    (err = local_add(L, idx, rec->wildcard, rec->owner, rec->owner_len, rec)))
			return err;
		if (zc->last_len != rec->owner_len || zc->last_wildcard != rec->wildcard ||
		    memcmp(zc->last, rec->owner, rec->owner_len) != 0) {
			z->entries++;
			memcpy(zc->last, rec->owner, rec->owner_len);
			zc->last_len = rec->owner_len;
			zc->last_wildcard = rec->wildcard;
		}
		return 0;
	}
	/* An address trigger: the owner names its local data. */
	struct pending_ip ip = {.response = rec->trigger == DK_RPZ_IP,
	                        .local = local,
	                        .owner_len = (uint8_t)rec->owner_len};
	ip.e.family = rec->family;
	ip.e.prefix = rec->prefix;
	memcpy(ip.e.addr, rec->addr, sizeof(ip.e.addr));
	ip.e.value = idx;
	if (local) {
		if ((err = local_add(L, idx, false, rec->owner, rec->owner_len, rec)))
			return err;
		/* The same owner text again for the lookup; local_add() stored it first. */
		ip.owner_off = L->raw[L->n_raw - 1].owner_off;
	}
	/* A trigger with several records (A and AAAA) is one prefix. */
	const struct pending_ip *last = L->n_ips ? &L->ips[L->n_ips - 1] : NULL;
	if (last && local && last->local && last->e.value == idx && last->e.family == ip.e.family &&
	    last->e.prefix == ip.e.prefix && memcmp(last->e.addr, ip.e.addr, 16) == 0)
		return 0;
	if (grow((void **)&L->ips, &L->cap_ips, L->n_ips + 1, sizeof(*L->ips)))
		return -ENOMEM;
	L->ips[L->n_ips++] = ip;
	z->entries++;
	return 0;
}

static int load_zone(struct loader *L, size_t zi, struct dk_suffixset_builder *all,
                     struct dk_suffixset_builder *own)
{
	struct dk_zone *z = &L->p->zones[zi];
	struct zone_ctx zc = {.L = L, .z = z, .all = all, .own = own};
	char *buf = NULL;
	size_t len = 0;
	int err;

	const char *path = z->from_state ? z->state_file : z->file;
	if (!path)
		return 0;
	err = slurp(path, &buf, &len);
	/* A zone that only a transfer will bring is no error before its first transfer. */
	if (err == -ENOENT && z->primary)
		return 0;
	if (err)
		return fail(L, path, 0, err, "cannot read zone: %s", strerror(-err));
	err = dk_rpz_parse(buf, len, z->origin_wire, z->origin_len, zone_record, &zc, &z->st);
	free(buf);
	return err;
}

static int cmp_raw(const void *a, const void *b, void *ctx)
{
	const struct raw_local *x = a, *y = b;
	const uint8_t *blob = ctx;

	if (x->rule != y->rule)
		return x->rule < y->rule ? -1 : 1;
	if (x->wildcard != y->wildcard)
		return x->wildcard < y->wildcard ? -1 : 1;
	size_t n = x->owner_len < y->owner_len ? x->owner_len : y->owner_len;
	int c = memcmp(blob + x->owner_off, blob + y->owner_off, n);
	if (c)
		return c;
	if (x->owner_len != y->owner_len)
		return x->owner_len < y->owner_len ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static bool same_trigger(const struct loader *L, const struct raw_local *x,
                         const struct raw_local *y)
{
	return x->rule == y->rule && x->wildcard == y->wildcard && x->owner_len == y->owner_len &&
	       memcmp(L->blob + x->owner_off, L->blob + y->owner_off, x->owner_len) == 0;
}

/* Merges the local-data records by trigger into the snapshot's sorted table. */
static int build_local(struct loader *L)
{
	struct dk_policy *p = L->p;

	if (!L->n_raw)
		return 0;
	qsort_r(L->raw, L->n_raw, sizeof(*L->raw), cmp_raw, L->blob);
	if (!(p->local = calloc(L->n_raw, sizeof(*p->local))) ||
	    !(p->local_blob = malloc(L->blob_len)))
		return -ENOMEM;
	size_t w = 0;
	for (size_t i = 0; i < L->n_raw;) {
		const struct raw_local *r = &L->raw[i];
		struct dk_local_data *d = &p->local[p->n_local++];
		d->rule = r->rule;
		d->wildcard = r->wildcard;
		d->owner_len = r->owner_len;
		d->owner_off = (uint32_t)w;
		memcpy(p->local_blob + w, L->blob + r->owner_off, r->owner_len);
		w += r->owner_len;
		d->rr_off = (uint32_t)w;
		size_t j = i;
		for (; j < L->n_raw && same_trigger(L, &L->raw[j], r); j++) {
			memcpy(p->local_blob + w, L->blob + L->raw[j].rr_off, L->raw[j].rr_len);
			w += L->raw[j].rr_len;
			d->n_rr++;
		}
		d->rr_len = (uint32_t)(w - d->rr_off);
		i = j;
	}
	return 0;
}

static uint32_t ip_merge(uint32_t old, uint32_t add, void *ctx)
{
	const struct dk_rule *rules = ctx;

	return dk_rule_precedes(&rules[add & 0xffff], &rules[old & 0xffff]) ? add : old;
}

/* Builds the two address sets, with the local data of each trigger found by owner. */
static int build_ips(struct loader *L)
{
	struct dk_policy *p = L->p;
	size_t n[2] = {0, 0};
	struct dk_ipset_entry *e[2];

	for (size_t i = 0; i < L->n_ips; i++)
		n[L->ips[i].response]++;
	for (int k = 0; k < 2; k++) {
		if (!n[k]) {
			e[k] = NULL;
			continue;
		}
		if (!(e[k] = calloc(n[k], sizeof(*e[k])))) {
			if (k)
				free(e[0]);
			return -ENOMEM;
		}
	}
	size_t f[2] = {0, 0};
	for (size_t i = 0; i < L->n_ips; i++) {
		struct pending_ip *ip = &L->ips[i];
		struct dk_ipset_entry ent = ip->e;
		if (ip->local) {
			struct dk_verdict v = {.rule = &p->rules[ip->e.value & 0xffff]};
			const struct dk_local_data *d =
			        dk_policy_local(p, &v, L->blob + ip->owner_off, ip->owner_len);
			/* More than 65535 entries of local data: the trigger answers NODATA. */
			size_t at = d ? (size_t)(d - p->local) + 1 : 0;
			if (at <= 0xffff)
				ent.value |= (uint32_t)at << 16;
		}
		e[ip->response][f[ip->response]++] = ent;
	}
	if (n[0] && !(p->client_ips = dk_ipset_new(e[0], n[0], ip_merge, p->rules))) {
		free(e[1]);
		return -ENOMEM;
	}
	if (n[1] && !(p->response_ips = dk_ipset_new(e[1], n[1], ip_merge, p->rules)))
		return -ENOMEM;
	return 0;
}

void dk_list_scan(const char *buf, size_t len, struct dk_list_stats *st)
{
	const struct sink none = {0};
	const char *s = buf, *end = buf + len;

	memset(st, 0, sizeof(*st));
	if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		const char *e = nl ? nl : end;
		st->lines++;
		if (list_line(&none, s, e, st) > 0) {
			st->invalid++;
			if (!st->first_invalid_line)
				st->first_invalid_line = (unsigned)st->lines;
		}
		s = nl ? nl + 1 : end;
	}
}

/* ---- phase two ------------------------------------------------------------- */

static int build(struct loader *L)
{
	struct dk_policy *p = L->p;
	struct dk_suffixset_builder *all = NULL;
	struct dk_suffixset_builder **own = NULL;
	bool per_rule = L->flags & DK_POLICY_PER_RULE_SETS;
	size_t expected = L->n_pend;
	int err = -ENOMEM;

	for (size_t i = 0; i < p->n_lists; i++) {
		p->lists[i].rule = &p->rules[L->lists[i].rule];
		expected += (size_t)L->lists[i].size / LIST_BYTES_PER_ENTRY;
	}
	for (size_t i = 0; i < p->n_urls; i++)
		p->urls[i].rule = &p->rules[(uintptr_t)p->urls[i].rule];
	for (size_t i = 0; i < p->n_zones; i++) {
		struct dk_zone *z = &p->zones[i];
		z->rule = &p->rules[L->pzones[i].rule];
		for (size_t a = 0; a < DK_RPZ_ACTION_MAX; a++)
			p->rules[z->variant[a]].zone = z;
		expected += (size_t)L->pzones[i].size / ZONE_BYTES_PER_ENTRY;
	}
	if (!(all = dk_suffixset_builder_new(expected, dk__policy_merge, p->rules)))
		goto fail;
	if (per_rule) {
		if (!(own = calloc(p->n_rules ? p->n_rules : 1, sizeof(*own))))
			goto fail;
		for (size_t i = 0; i < p->n_rules; i++) {
			size_t want = 0;
			for (size_t j = 0; j < p->n_lists; j++) {
				if (L->lists[j].rule == i)
					want += (size_t)L->lists[j].size / LIST_BYTES_PER_ENTRY;
			}
			for (size_t j = 0; j < p->n_zones; j++) {
				if (L->pzones[j].rule == i)
					want += (size_t)L->pzones[j].size / ZONE_BYTES_PER_ENTRY;
			}
			if (!(own[i] = dk_suffixset_builder_new(want, dk__policy_merge, p->rules)))
				goto fail;
		}
	}

	for (size_t off = 0; off < L->pend_len;) {
		const uint8_t *q = L->pend + off;
		size_t idx = (size_t)q[0] << 8 | q[1];
		struct sink sk = {all, own ? own[idx] : NULL, (uint16_t)idx};
		if ((err = sink_add(&sk, q + 4, q[3], q[2])))
			goto fail;
		p->rules[idx].n_entries++;
		off += 4 + (size_t)q[3];
	}
	for (size_t i = 0; i < p->n_lists; i++) {
		size_t idx = L->lists[i].rule;
		struct sink sk = {all, own ? own[idx] : NULL, (uint16_t)idx};
		if ((err = load_list(L, i, &sk)))
			goto fail;
		p->rules[idx].n_entries += p->lists[i].entries;
		p->n_invalid += p->lists[i].invalid;
	}
	for (size_t i = 0; i < p->n_zones; i++) {
		size_t idx = L->pzones[i].rule;
		if ((err = load_zone(L, i, all, own ? own[idx] : NULL)))
			goto fail;
		p->rules[idx].n_entries += p->zones[i].entries;
		p->n_invalid += p->zones[i].st.invalid;
	}
	if ((err = build_local(L)) || (err = build_ips(L)))
		goto fail;
	p->n_entries = L->n_pend;
	for (size_t i = 0; i < p->n_lists; i++)
		p->n_entries += p->lists[i].entries;
	for (size_t i = 0; i < p->n_zones; i++)
		p->n_entries += p->zones[i].entries;

	err = -ENOMEM;
	p->set = dk_suffixset_builder_finish(all);
	all = NULL;
	if (!p->set)
		goto fail;
	p->n_names = dk_suffixset_count(p->set);
	if (own) {
		for (size_t i = 0; i < p->n_rules; i++) {
			p->rules[i].own = dk_suffixset_builder_finish(own[i]);
			own[i] = NULL;
			if (!p->rules[i].own)
				goto fail;
		}
	}
	err = 0;
fail:
	dk_suffixset_builder_free(all);
	if (own) {
		for (size_t i = 0; i < p->n_rules; i++)
			dk_suffixset_builder_free(own[i]);
		free(own);
	}
	if (err == -ENOMEM && L->diag && !L->diag->msg[0])
		fail(L, NULL, 0, err, "out of memory while building the policy");
	return err;
}

/* The rule a bare list file becomes: silent NXDOMAIN, as a plain blocker does. */
static int add_list_rule(struct loader *L, const char *list)
{
	struct dk_policy *p = L->p;
	struct stat st;

	if (stat(list, &st) < 0)
		return fail(L, list, 0, -errno, "cannot read list: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail(L, list, 0, -EISDIR, "cannot read list: not a regular file");
	/* Every id seen counts, a disabled rule's too. */
	for (size_t i = 0; i < L->n_ids; i++) {
		if (strcmp(L->ids[i].id, DK_BLOCKLIST_RULE_ID) == 0)
			return fail(L, L->ids[i].file, L->ids[i].line, DK_ESCHEMA,
			            "rule id '%s' is reserved for --blocklist",
			            DK_BLOCKLIST_RULE_ID);
	}
	if (p->n_rules >= DK_RULES_MAX)
		return fail(L, list, 0, DK_EFULL, "more than %d rules", DK_RULES_MAX);
	if (grow((void **)&p->rules, &L->cap_rules, p->n_rules + 1, sizeof(*p->rules)) ||
	    grow((void **)&p->lists, &L->cap_lists, p->n_lists + 1, sizeof(*p->lists)) ||
	    grow((void **)&L->lists, &L->cap_plists, p->n_lists + 1, sizeof(*L->lists)))
		return -ENOMEM;

	struct dk_rule *r = &p->rules[p->n_rules];
	memset(r, 0, sizeof(*r));
	r->id = strdup(DK_BLOCKLIST_RULE_ID);
	r->name = strdup("Blocklist given on the command line");
	r->file = strdup(list);
	memset(&p->lists[p->n_lists], 0, sizeof(p->lists[0]));
	p->lists[p->n_lists].file = strdup(list);
	if (!r->id || !r->name || !r->file || !p->lists[p->n_lists].file) {
		dk__rule_deinit(r);
		free(p->lists[p->n_lists].file);
		return -ENOMEM;
	}
	r->index = (uint16_t)p->n_rules;
	r->base = r->index;
	r->severity = DK_SEVERITY_LOW;
	r->action = DK_ACTION_NXDOMAIN;
	r->alert = false;
	r->threshold = 1;
	L->lists[p->n_lists] =
	        (struct pending_list){.rule = p->n_rules, .line = 0, .size = st.st_size};
	p->n_lists++;
	p->n_rules++;
	return 0;
}

int dk_policy_load(const char *const *paths, size_t n_paths, unsigned flags, struct dk_policy **out,
                   struct dk_diag *diag)
{
	return dk_policy_load_with_list(paths, n_paths, NULL, flags, out, diag);
}

int dk_policy_load_with_list(const char *const *paths, size_t n_paths, const char *list,
                             unsigned flags, struct dk_policy **out, struct dk_diag *diag)
{
	return dk_policy_load_state(paths, n_paths, list, NULL, flags, out, diag);
}

int dk_policy_load_state(const char *const *paths, size_t n_paths, const char *list,
                         const char *state_dir, unsigned flags, struct dk_policy **out,
                         struct dk_diag *diag)
{
	struct loader L = {.flags = flags, .diag = diag, .state_dir = state_dir};
	int err = -ENOMEM;

	if (diag)
		memset(diag, 0, sizeof(*diag));
	if (!(L.p = calloc(1, sizeof(*L.p))))
		goto fail;
	L.p->refs = 1;

	for (size_t i = 0; i < n_paths; i++) {
		struct stat st;
		if (stat(paths[i], &st) < 0) {
			err = fail(&L, paths[i], 0, -errno, "%s", strerror(errno));
			goto fail;
		}
		err = S_ISDIR(st.st_mode) ? load_dir(&L, paths[i]) : load_rule_file(&L, paths[i]);
		if (err)
			goto fail;
	}
	if (list && (err = add_list_rule(&L, list)))
		goto fail;
	if (L.sigma) {
		struct dk__sigma_builder *sb = L.sigma;
		L.sigma = NULL;
		if ((err = dk__sigma_finish(sb, &L.p->sigma, &L.p->sigma_report, diag)))
			goto fail;
		/* Behavioural rules count in their own windows: each window's alert is a record. */
		for (size_t i = 0; i < L.p->sigma_report.n; i++) {
			const struct dk_sigma_entry *e = &L.p->sigma_report.entries[i];
			if (e->status == DK_SIGMA_LOADED && (e->how & DK_SIGMA_HOW_COUNT))
				L.p->rules[e->rule_index].dedup_minutes = 0;
		}
	}
	if ((err = build(&L)))
		goto fail;
	*out = L.p;
	L.p = NULL;
fail:
	if (err && diag && !diag->msg[0])
		dk_diag_set(diag, NULL, 0, "%s", dk_strerror(err));
	dk__policy_free(L.p);
	free(L.pend);
	free(L.lists);
	free(L.pzones);
	free(L.ips);
	free(L.raw);
	free(L.blob);
	free(L.ids);
	dk__sigma_builder_free(L.sigma);
	for (size_t i = 0; i < L.n_owned; i++)
		free(L.owned[i]);
	free(L.owned);
	return err;
}
