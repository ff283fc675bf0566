/* SPDX-License-Identifier: MIT */
/*
 * The RPZ zone reader (see rpz.h). A master file is read one logical record
 * at a time: physical lines are cut into tokens (blanks, ';' comments,
 * quoted strings, backslash escapes), and parentheses join lines, as the SOA
 * usually spans several. A record is then owner, optional TTL and class in
 * either order, type and rdata; a line that starts with a blank reuses the
 * owner before it.
 *
 * Only what an RPZ zone holds is understood: SOA and NS at the apex, CNAME,
 * A, AAAA and TXT at triggers. Other types are well-formed but cannot be
 * answered by dnsink; they are counted as unsupported, not as invalid.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ldns/rr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dnsink/idna.h"
#include "dnsink/name.h"
#include "dnsink/rpz.h"

/* Tokens of one logical record; a TXT of many strings is the longest. */
#define TOKENS_MAX  80
#define TTL_DEFAULT 3600u

struct token {
	const char *s;
	size_t n;
	bool quoted;
};

struct reader {
	const char *p, *end;
	unsigned line;     /* line of the physical line being read */
	unsigned rec_line; /* first line of the current record */
	uint8_t origin[DK_NAME_MAX];
	size_t origin_len;
	const uint8_t *apex; /* the zone's origin, every owner must be below */
	size_t apex_len;
	uint8_t owner[DK_NAME_MAX]; /* last owner, for lines that start blank */
	size_t owner_len;
	/* The owner without the apex when it was written relative to it (the usual case). */
	uint8_t rel[DK_NAME_MAX];
	size_t rel_len;      /* 0: not known, below_apex() finds it */
	bool origin_is_apex; /* no $ORIGIN moved the origin away from the apex */
	uint32_t ttl_default;
	struct dk_rpz_stats *st;
	struct dk_rpz_rec rec;
};

static const char *const trigger_names[] = {
        [DK_RPZ_QNAME] = "qname",     [DK_RPZ_CLIENT_IP] = "client-ip", [DK_RPZ_IP] = "ip",
        [DK_RPZ_NSDNAME] = "nsdname", [DK_RPZ_NSIP] = "nsip",
};

static const char *const action_names[] = {
        [DK_RPZ_NXDOMAIN] = "nxdomain", [DK_RPZ_NODATA] = "nodata",
        [DK_RPZ_PASSTHRU] = "passthru", [DK_RPZ_DROP] = "drop",
        [DK_RPZ_TCP_ONLY] = "tcp-only", [DK_RPZ_LOCAL] = "local",
};

const char *dk_rpz_trigger_name(enum dk_rpz_trigger t)
{
	return (unsigned)t < DK_ARRAY_SIZE(trigger_names) ? trigger_names[t] : "unknown";
}

const char *dk_rpz_action_name(enum dk_rpz_action a)
{
	return (unsigned)a < DK_ARRAY_SIZE(action_names) ? action_names[a] : "unknown";
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* What ends a plain token (1), or escapes the next octet (2); a table, for zones of millions. */
static const uint8_t token_stop[256] = {
        [' '] = 1, ['\t'] = 1, ['\r'] = 1, ['\v'] = 1, ['\f'] = 1,
        [';'] = 1, ['('] = 1,  [')'] = 1,  ['\\'] = 2,
};

static bool tok_is(const struct token *t, const char *word)
{
	return !t->quoted && strlen(word) == t->n && strncasecmp(t->s, word, t->n) == 0;
}

/*
 * Reads the next logical record into @p tok. Returns the number of tokens
 * (0 for an empty line), -1 at the end of the text, -2 for a record that
 * cannot be tokenized (unbalanced quote or parenthesis, too many tokens),
 * which is skipped whole. @p *starts_blank tells whether its first line
 * started with a blank.
 */
static int next_record(struct reader *R, struct token *tok, bool *starts_blank)
{
	int n = 0, depth = 0;
	bool bad = false;

	if (R->p >= R->end)
		return -1;
	R->rec_line = R->line;
	*starts_blank = blank(*R->p);
	for (;;) {
		const char *nl = memchr(R->p, '\n', (size_t)(R->end - R->p));
		const char *e = nl ? nl : R->end;
		const char *q = R->p;
		R->st->lines++;
		while (q < e) {
			if (blank(*q)) {
				q++;
				continue;
			}
			if (*q == ';')
				break;
			if (*q == '(' || *q == ')') {
				depth += *q == '(' ? 1 : -1;
				if (depth < 0)
					bad = true;
				q++;
				continue;
			}
			struct token t = {.s = q, .quoted = *q == '"'};
			if (t.quoted) {
				t.s = ++q;
				while (q < e && *q != '"')
					q += (*q == '\\' && q + 1 < e) ? 2 : 1;
				if (q >= e) {
					bad = true;
					t.n = (size_t)(q - t.s);
				} else {
					t.n = (size_t)(q - t.s);
					q++;
				}
			} else {
				for (;;) {
					while (q < e && !token_stop[(uint8_t)*q])
						q++;
					if (q + 1 < e && token_stop[(uint8_t)*q] == 2) {
						q += 2;
						continue;
					}
					if (q < e && token_stop[(uint8_t)*q] == 2)
						q++;
					break;
				}
				t.n = (size_t)(q - t.s);
			}
			if (n < TOKENS_MAX)
				tok[n++] = t;
			else
				bad = true;
		}
		R->p = nl ? nl + 1 : R->end;
		R->line++;
		if (depth <= 0 || R->p >= R->end)
			break;
	}
	if (depth != 0)
		bad = true;
	return bad ? -2 : n;
}

static void invalid(struct reader *R)
{
	R->st->invalid++;
	if (!R->st->first_invalid_line)
		R->st->first_invalid_line = R->rec_line;
}

/*
 * Makes @p t an absolute lowercase wire name: "@" is the origin, a name
 * without a trailing dot is relative to it, Unicode is converted to
 * A-labels. Returns 0 or a negative code.
 */
static int resolve_name(const struct reader *R, const struct token *t, uint8_t out[DK_NAME_MAX],
                        size_t *out_len)
{
	uint8_t rel[DK_NAME_MAX];
	size_t rlen;

	if (t->quoted || t->n == 0)
		return DK_ENAME;
	if (t->n == 1 && t->s[0] == '@') {
		memcpy(out, R->origin, R->origin_len);
		*out_len = R->origin_len;
		return 0;
	}
	/* A final dot that is not escaped makes the name absolute. */
	bool absolute = t->s[t->n - 1] == '.' && (t->n < 2 || t->s[t->n - 2] != '\\');
	int rc = dk_idna_name_from_text(t->s, t->n, 0, absolute ? out : rel,
	                                absolute ? out_len : &rlen);
	if (rc || absolute)
		return rc;
	if (rlen - 1 + R->origin_len > DK_NAME_MAX)
		return DK_ENAMELEN;
	memcpy(out, rel, rlen - 1);
	memcpy(out + rlen - 1, R->origin, R->origin_len);
	*out_len = rlen - 1 + R->origin_len;
	return 0;
}

/*
 * Resolves the owner token @p t into R->owner; when it is relative to the
 * apex, also keeps the relative part in R->rel, which spares read_rdata()
 * the check that the owner is below the apex.
 */
static int resolve_owner(struct reader *R, const struct token *t)
{
	bool absolute = t->n && t->s[t->n - 1] == '.' && (t->n < 2 || t->s[t->n - 2] != '\\');

	R->rel_len = 0;
	if (t->quoted || absolute || !R->origin_is_apex || (t->n == 1 && t->s[0] == '@'))
		return resolve_name(R, t, R->owner, &R->owner_len);
	int rc = dk_idna_name_from_text(t->s, t->n, 0, R->rel, &R->rel_len);
	if (rc) {
		R->rel_len = 0;
		return rc;
	}
	if (R->rel_len - 1 + R->origin_len > DK_NAME_MAX) {
		R->rel_len = 0;
		return DK_ENAMELEN;
	}
	memcpy(R->owner, R->rel, R->rel_len - 1);
	memcpy(R->owner + R->rel_len - 1, R->origin, R->origin_len);
	R->owner_len = R->rel_len - 1 + R->origin_len;
	return 0;
}

/* TTLs are seconds, or BIND's units: 1w2d3h4m5s. */
static bool parse_ttl(const struct token *t, uint32_t *out)
{
	uint64_t total = 0, cur = 0;
	bool digits = false;

	if (t->quoted || t->n == 0 || t->s[0] < '0' || t->s[0] > '9')
		return false;
	for (size_t i = 0; i < t->n; i++) {
		char c = t->s[i];
		if (c >= '0' && c <= '9') {
			cur = cur * 10 + (uint64_t)(c - '0');
			digits = true;
			if (cur > UINT32_MAX)
				return false;
			continue;
		}
		uint64_t mul;
		switch (c | 0x20) {
		case 's': mul = 1; break;
		case 'm': mul = 60; break;
		case 'h': mul = 3600; break;
		case 'd': mul = 86400; break;
		case 'w': mul = 604800; break;
		default: return false;
		}
		if (!digits)
			return false;
		total += cur * mul;
		cur = 0;
		digits = false;
	}
	total += cur;
	if (total > UINT32_MAX)
		return false;
	*out = (uint32_t)total;
	return true;
}

static bool is_class(const struct token *t)
{
	return tok_is(t, "IN") || tok_is(t, "CH") || tok_is(t, "HS") || tok_is(t, "CS");
}

static bool parse_type(const struct token *t, uint16_t *out)
{
	static const struct {
		const char *name;
		uint16_t type;
	} common[] = {
	        {"CNAME", LDNS_RR_TYPE_CNAME}, {"A", LDNS_RR_TYPE_A},
	        {"AAAA", LDNS_RR_TYPE_AAAA},   {"TXT", LDNS_RR_TYPE_TXT},
	        {"SOA", LDNS_RR_TYPE_SOA},     {"NS", LDNS_RR_TYPE_NS},
	};
	char buf[24];

	if (t->quoted || t->n == 0 || t->n >= sizeof(buf))
		return false;
	/* The types of nearly every RPZ record, before ldns's walk over every type name. */
	for (size_t i = 0; i < DK_ARRAY_SIZE(common); i++) {
		if (tok_is(t, common[i].name)) {
			*out = common[i].type;
			return true;
		}
	}
	memcpy(buf, t->s, t->n);
	buf[t->n] = '\0';
	ldns_rr_type type = ldns_get_rr_type_by_name(buf);
	if (type == 0)
		return false;
	*out = (uint16_t)type;
	return true;
}

/* Label @p i of wire name @p w as text (no escapes: these labels are digits and hex). */
static bool label_text(const uint8_t *w, const uint8_t *offs, int i, char *out, size_t size)
{
	size_t n = w[offs[i]];

	if (n == 0 || n >= size)
		return false;
	memcpy(out, w + offs[i] + 1, n);
	out[n] = '\0';
	return true;
}

/*
 * Reads the address of an IP trigger from labels [0, n) of @p w: the prefix
 * length, then the address with its least significant part first, "zz"
 * standing for a run of zero words in IPv6. Fills family, prefix, addr.
 */
static bool parse_ip_trigger(const uint8_t *w, const uint8_t *offs, int n, struct dk_rpz_rec *rec)
{
	char lab[64], text[80];
	size_t tl = 0;
	char *endp;
	bool zz_first = false, zz_last = false, v4 = n == 5;

	if (n < 2 || !label_text(w, offs, 0, lab, sizeof(lab)))
		return false;
	unsigned long plen = strtoul(lab, &endp, 10);
	if (*endp || lab[0] < '0' || lab[0] > '9')
		return false;
	/* Four decimal octets make an IPv4 address; anything else is IPv6 words. */
	for (int i = 1; v4 && i < n; i++) {
		if (!label_text(w, offs, i, lab, sizeof(lab)))
			return false;
		for (const char *c = lab; *c; c++)
			v4 &= *c >= '0' && *c <= '9';
	}
	/* Most significant part last: read the labels backwards. */
	for (int i = n - 1; i >= 1; i--) {
		if (!label_text(w, offs, i, lab, sizeof(lab)))
			return false;
		bool zz = strcmp(lab, "zz") == 0;
		if (zz) {
			zz_first |= i == n - 1;
			zz_last |= i == 1;
		}
		size_t ll = zz ? 0 : strlen(lab);
		if (tl + ll + 2 >= sizeof(text))
			return false;
		if (i != n - 1)
			text[tl++] = v4 ? '.' : ':';
		memcpy(text + tl, lab, ll);
		tl += ll;
	}
	text[tl] = '\0';
	if (!v4 && (zz_first || zz_last)) {
		/* "zz" at an end needs its second colon: ":1" is "::1". */
		char full[84];
		snprintf(full, sizeof(full), "%s%s%s", zz_first ? ":" : "", text,
		         zz_last ? ":" : "");
		memcpy(text, full, sizeof(text) - 1);
		text[sizeof(text) - 1] = '\0';
	}
	if (v4 && inet_pton(AF_INET, text, rec->addr) == 1 && plen >= 1 && plen <= 32) {
		rec->family = AF_INET;
	} else if (!v4 && inet_pton(AF_INET6, text, rec->addr) == 1 && plen >= 1 && plen <= 128) {
		rec->family = AF_INET6;
	} else {
		return false;
	}
	rec->prefix = (uint8_t)plen;
	/* Bits past the prefix mean nothing; clear them so equal prefixes compare equal. */
	size_t bytes = rec->family == AF_INET ? 4 : 16;
	for (size_t b = 0; b < bytes; b++) {
		unsigned keep = plen >= (b + 1) * 8 ? 8
		                : plen > b * 8      ? (unsigned)(plen - b * 8)
		                                    : 0;
		rec->addr[b] &= (uint8_t)(0xff00u >> keep);
	}
	return true;
}

/* Decodes a TXT string token (escapes \X and \DDD) into a character-string. */
static bool txt_string(const struct token *t, uint8_t *out, size_t room, size_t *used)
{
	size_t n = 0;

	if (room < 1)
		return false;
	for (size_t i = 0; i < t->n; i++) {
		uint8_t c = (uint8_t)t->s[i];
		if (c == '\\' && i + 1 < t->n) {
			if (i + 3 < t->n && t->s[i + 1] >= '0' && t->s[i + 1] <= '9') {
				unsigned v = 0;
				for (int k = 1; k <= 3; k++) {
					char d = t->s[i + (size_t)k];
					if (d < '0' || d > '9')
						return false;
					v = v * 10 + (unsigned)(d - '0');
				}
				if (v > 255)
					return false;
				c = (uint8_t)v;
				i += 3;
			} else {
				c = (uint8_t)t->s[++i];
			}
		}
		if (n >= 255 || 1 + n >= room)
			return false;
		out[1 + n++] = c;
	}
	out[0] = (uint8_t)n;
	*used = 1 + n;
	return true;
}

/* Strips the zone apex from absolute @p abs; false when @p abs is not at or below it. */
static bool below_apex(const struct reader *R, const uint8_t *abs, size_t len, uint8_t *rel,
                       size_t *rel_len)
{
	if (len < R->apex_len ||
	    !dk_name_equal_nocase(abs + len - R->apex_len, R->apex_len, R->apex, R->apex_len))
		return false;
	/* The match must start at a label boundary: walk the labels. */
	size_t off = 0;
	while (off < len - R->apex_len)
		off += (size_t)abs[off] + 1;
	if (off != len - R->apex_len)
		return false;
	memcpy(rel, abs, off);
	rel[off] = 0;
	*rel_len = off + 1;
	return true;
}

static bool label_is(const uint8_t *w, uint8_t off, const char *word)
{
	size_t n = strlen(word);
	return w[off] == n && strncasecmp((const char *)w + off + 1, word, n) == 0;
}

/* Finds the trigger of relative owner @p rel and fills rec->owner/wildcard/prefix. */
static bool classify(struct dk_rpz_rec *rec, const uint8_t *rel, size_t rel_len)
{
	uint8_t offs[DK_LABELS_MAX];
	int n = dk_name_labels(rel, rel_len, offs);

	rec->wildcard = false;
	rec->trigger = DK_RPZ_QNAME;
	if (n > 0) {
		uint8_t last = offs[n - 1];
		if (label_is(rel, last, "rpz-client-ip"))
			rec->trigger = DK_RPZ_CLIENT_IP;
		else if (label_is(rel, last, "rpz-ip"))
			rec->trigger = DK_RPZ_IP;
		else if (label_is(rel, last, "rpz-nsdname"))
			rec->trigger = DK_RPZ_NSDNAME;
		else if (label_is(rel, last, "rpz-nsip"))
			rec->trigger = DK_RPZ_NSIP;
	}
	memcpy(rec->owner, rel, rel_len);
	rec->owner_len = rel_len;
	switch (rec->trigger) {
	case DK_RPZ_CLIENT_IP:
	case DK_RPZ_IP: return parse_ip_trigger(rel, offs, n - 1, rec);
	case DK_RPZ_NSDNAME:
	case DK_RPZ_NSIP: return n > 1;
	default: break;
	}
	if (n > 0 && rel[0] == 1 && rel[1] == '*') {
		rec->wildcard = true;
		rec->owner_len = rel_len - 2;
		memmove(rec->owner, rel + 2, rec->owner_len);
	}
	/* "*" alone at the apex would match every name; no entry may mean that. */
	return rec->owner_len > 1;
}

/* Reads the action of a CNAME whose target is token @p t, for the trigger in R->rec. */
static int cname_action(struct reader *R, const struct token *t)
{
	struct dk_rpz_rec *rec = &R->rec;
	uint8_t target[DK_NAME_MAX];
	size_t tlen;

	if (tok_is(t, "."))
		return DK_RPZ_NXDOMAIN;
	if (tok_is(t, "*."))
		return DK_RPZ_NODATA;
	if (tok_is(t, "rpz-passthru."))
		return DK_RPZ_PASSTHRU;
	if (tok_is(t, "rpz-drop."))
		return DK_RPZ_DROP;
	if (tok_is(t, "rpz-tcp-only."))
		return DK_RPZ_TCP_ONLY;
	/* A target "*.name" would rewrite the query name; dnsink cannot. */
	if (t->n >= 2 && t->s[0] == '*' && t->s[1] == '.')
		return -1;
	if (resolve_name(R, t, target, &tlen))
		return -2;
	/* The old form of passthru: a CNAME to the trigger's name itself. */
	if (!rec->wildcard && dk_name_equal_nocase(target, tlen, rec->owner, rec->owner_len))
		return DK_RPZ_PASSTHRU;
	memcpy(rec->rdata, target, tlen);
	rec->rdlen = (uint16_t)tlen;
	return DK_RPZ_LOCAL;
}

/* Reads the SOA's numbers at the apex. */
static bool read_soa(struct reader *R, const struct token *rd, int n)
{
	uint32_t v[5];

	if (n != 7)
		return false;
	for (int i = 0; i < 5; i++) {
		if (!parse_ttl(&rd[2 + i], &v[i]))
			return false;
	}
	R->st->has_soa = true;
	R->st->serial = v[0];
	R->st->refresh = v[1];
	R->st->retry = v[2];
	R->st->expire = v[3];
	R->st->minimum = v[4];
	return true;
}

/* -1: invalid, 0: handled (or ignored), >0: a policy record ready in R->rec. */
static int read_rdata(struct reader *R, uint16_t type, const struct token *rd, int n,
                      const uint8_t *abs, size_t len)
{
	struct dk_rpz_rec *rec = &R->rec;
	uint8_t rel[DK_NAME_MAX];
	size_t rel_len;

	if (R->rel_len) {
		memcpy(rel, R->rel, R->rel_len);
		rel_len = R->rel_len;
	} else if (!below_apex(R, abs, len, rel, &rel_len)) {
		return -1;
	}
	if (rel_len == 1) {
		/* The apex: its SOA gives the timers, NS and the rest carry no policy. */
		if (type == LDNS_RR_TYPE_SOA)
			return read_soa(R, rd, n) ? 0 : -1;
		return 0;
	}
	if (!classify(rec, rel, rel_len))
		return -1;
	rec->type = type;
	rec->rdlen = 0;
	if (rec->trigger == DK_RPZ_NSDNAME || rec->trigger == DK_RPZ_NSIP) {
		R->st->triggers[rec->trigger]++;
		return 0;
	}
	int a;
	switch (type) {
	case LDNS_RR_TYPE_CNAME:
		if (n != 1)
			return -1;
		a = cname_action(R, &rd[0]);
		if (a == -1) {
			R->st->unsupported++;
			return 0;
		}
		if (a < 0)
			return -1;
		break;
	case LDNS_RR_TYPE_A:
		if (n != 1 || rd[0].quoted || rd[0].n >= 32)
			return -1;
		{
			char ip[32];
			memcpy(ip, rd[0].s, rd[0].n);
			ip[rd[0].n] = '\0';
			if (inet_pton(AF_INET, ip, rec->rdata) != 1)
				return -1;
		}
		rec->rdlen = 4;
		a = DK_RPZ_LOCAL;
		break;
	case LDNS_RR_TYPE_AAAA:
		if (n != 1 || rd[0].quoted || rd[0].n >= 64)
			return -1;
		{
			char ip[64];
			memcpy(ip, rd[0].s, rd[0].n);
			ip[rd[0].n] = '\0';
			if (inet_pton(AF_INET6, ip, rec->rdata) != 1)
				return -1;
		}
		rec->rdlen = 16;
		a = DK_RPZ_LOCAL;
		break;
	case LDNS_RR_TYPE_TXT: {
		size_t off = 0;
		if (n < 1)
			return -1;
		for (int i = 0; i < n; i++) {
			size_t used;
			if (!txt_string(&rd[i], rec->rdata + off, sizeof(rec->rdata) - off, &used))
				return -1;
			off += used;
		}
		rec->rdlen = (uint16_t)off;
		a = DK_RPZ_LOCAL;
		break;
	}
	default: R->st->unsupported++; return 0;
	}
	rec->action = (enum dk_rpz_action)a;
	R->st->triggers[rec->trigger]++;
	R->st->actions[rec->action]++;
	return 1;
}

/* A "$" directive: $ORIGIN and $TTL; $INCLUDE and the rest are refused. */
static bool directive(struct reader *R, const struct token *tok, int n)
{
	if (tok_is(&tok[0], "$TTL"))
		return n == 2 && parse_ttl(&tok[1], &R->ttl_default);
	if (tok_is(&tok[0], "$ORIGIN")) {
		uint8_t w[DK_NAME_MAX];
		size_t wl;
		if (n != 2 || resolve_name(R, &tok[1], w, &wl))
			return false;
		memcpy(R->origin, w, wl);
		R->origin_len = wl;
		R->origin_is_apex = dk_name_equal_nocase(w, wl, R->apex, R->apex_len);
		return true;
	}
	return false;
}

int dk_rpz_parse(const char *text, size_t len, const uint8_t *origin, size_t origin_len,
                 dk_rpz_fn fn, void *ctx, struct dk_rpz_stats *st)
{
	struct reader *R = calloc(1, sizeof(*R));
	struct token tok[TOKENS_MAX];
	int rc = 0;

	if (!R)
		return -ENOMEM;
	memset(st, 0, sizeof(*st));
	R->p = text;
	R->end = text + len;
	R->line = 1;
	R->st = st;
	R->apex = origin;
	R->apex_len = origin_len;
	memcpy(R->origin, origin, origin_len);
	R->origin_len = origin_len;
	R->ttl_default = TTL_DEFAULT;
	R->origin_is_apex = true;
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		R->p += 3;

	for (;;) {
		bool starts_blank;
		int n = next_record(R, tok, &starts_blank);
		if (n == -1)
			break;
		if (n == 0)
			continue;
		if (n < 0) {
			invalid(R);
			continue;
		}
		int i = 0;
		if (!starts_blank && !tok[0].quoted && tok[0].n && tok[0].s[0] == '$') {
			if (!directive(R, tok, n))
				invalid(R);
			continue;
		}
		st->records++;
		if (!starts_blank) {
			if (resolve_owner(R, &tok[0])) {
				/* Later blank-led lines must not inherit an owner from before it.
				 */
				R->owner_len = 0;
				invalid(R);
				continue;
			}
			i = 1;
		} else if (!R->owner_len) {
			invalid(R);
			continue;
		}
		uint32_t ttl = R->ttl_default;
		for (int k = 0; k < 2 && i < n; k++) {
			if (parse_ttl(&tok[i], &ttl) || is_class(&tok[i]))
				i++;
			else
				break;
		}
		uint16_t type;
		if (i >= n || !parse_type(&tok[i], &type)) {
			invalid(R);
			continue;
		}
		i++;
		R->rec.line = R->rec_line;
		R->rec.ttl = ttl;
		int r = read_rdata(R, type, tok + i, n - i, R->owner, R->owner_len);
		if (r < 0) {
			invalid(R);
			continue;
		}
		if (r > 0 && (rc = fn(ctx, &R->rec)) < 0)
			break;
	}
	free(R);
	return rc;
}
