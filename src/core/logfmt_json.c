/* SPDX-License-Identifier: MIT */
/*
 * The JSON-lines log formats: Route 53 Resolver query logs, OCSF DNS
 * Activity, Zeek's dns.log in JSON, Sysmon Event ID 22 and dnsink's own
 * alert records. One scan of the line picks the members any of them uses
 * (a table indexed by member-name length keeps that to a compare or two per
 * member); then the members present say which format the line is and the
 * record is filled from them. So one file may mix shapes, as a SIEM export
 * does, and `--format` only insists on one.
 */
#include <pthread.h>
#include <string.h>

#include "dnsink/alert.h"
#include "dnsink/json_scan.h"
#include "dnsink/logrec.h"

enum slot {
	S_QUERY_NAME, /* route53 */
	S_QUERY_TIMESTAMP,
	S_QUERY_TYPE,
	S_RCODE, /* route53, ocsf, dnsink (names), zeek (number) */
	S_SRCADDR,
	S_SRCPORT,
	S_TRANSPORT, /* route53, dnsink */
	S_CLASS_UID, /* ocsf */
	S_HOSTNAME,
	S_OTYPE,
	S_TIME, /* ocsf (epoch ms), dnsink (ISO 8601) */
	S_RCODE_ID,
	S_SRC_IP,
	S_SRC_PORT,
	S_PROTOCOL_NAME,
	S_CNAME_TARGET, /* dnsink, ocsf (unmapped) */
	S_RULE_ID,      /* dnsink */
	S_DNS_QUERY,
	S_QTYPE, /* dnsink (name), zeek (number) */
	S_SOURCE_IP,
	S_SOURCE_PORT,
	S_TS, /* zeek */
	S_ORIG_H,
	S_ORIG_P,
	S_PROTO,
	S_QUERY,
	S_QTYPE_NAME,
	S_RCODE_NAME,
	S_QUERYNAME, /* sysmon */
	S_QUERYRESULTS,
	S_QUERYSTATUS,
	S_UTCTIME,
	S_EVENTID,
	S_TIMESTAMP,
	S_COMPUTER,
	S_ANSWER_TYPE, /* answers[i].Type / .type */
	S_ANSWER_RDATA,
	S_ANSWER_TEXT, /* zeek: answers[i] */
	S_COUNT,
};

/* Where a member must sit: its parent's name ("" top level, NULL anywhere). */
struct field {
	const char *key;
	const char *parent;
	enum slot slot;
};

static const struct field fields[] = {
        {"query_name", "", S_QUERY_NAME},
        {"query_timestamp", "", S_QUERY_TIMESTAMP},
        {"query_type", "", S_QUERY_TYPE},
        {"rcode", "", S_RCODE},
        {"srcaddr", "", S_SRCADDR},
        {"srcport", "", S_SRCPORT},
        {"transport", "", S_TRANSPORT},
        {"class_uid", "", S_CLASS_UID},
        {"hostname", "query", S_HOSTNAME},
        {"type", "query", S_OTYPE},
        {"time", "", S_TIME},
        {"rcode_id", "", S_RCODE_ID},
        {"ip", "src_endpoint", S_SRC_IP},
        {"port", "src_endpoint", S_SRC_PORT},
        {"protocol_name", "connection_info", S_PROTOCOL_NAME},
        {"cname_target", NULL, S_CNAME_TARGET},
        {"rule_id", "", S_RULE_ID},
        {"dns_query", "", S_DNS_QUERY},
        {"qtype", "", S_QTYPE},
        {"source_ip", "", S_SOURCE_IP},
        {"source_port", "", S_SOURCE_PORT},
        {"ts", "", S_TS},
        {"id.orig_h", "", S_ORIG_H},
        {"id.orig_p", "", S_ORIG_P},
        {"proto", "", S_PROTO},
        {"query", "", S_QUERY},
        {"qtype_name", "", S_QTYPE_NAME},
        {"rcode_name", "", S_RCODE_NAME},
        {"QueryName", NULL, S_QUERYNAME},
        {"QueryResults", NULL, S_QUERYRESULTS},
        {"QueryStatus", NULL, S_QUERYSTATUS},
        {"UtcTime", NULL, S_UTCTIME},
        {"EventID", NULL, S_EVENTID},
        {"event_id", NULL, S_EVENTID},
        {"@timestamp", "", S_TIMESTAMP},
        {"Computer", NULL, S_COMPUTER},
        {"computer_name", NULL, S_COMPUTER},
        {"Type", "answers", S_ANSWER_TYPE},
        {"type", "answers", S_ANSWER_TYPE},
        {"Rdata", "answers", S_ANSWER_RDATA},
        {"rdata", "answers", S_ANSWER_RDATA},
        {"answers", "", S_ANSWER_TEXT},
};

#define KEY_MAX 16

/* fields[] by key length, built once: {first, count} per length. */
static struct {
	unsigned char first, n;
} by_len[KEY_MAX + 1];
static const struct field *sorted[DK_ARRAY_SIZE(fields)];

static void build_index(void)
{
	unsigned k = 0;

	for (unsigned len = 1; len <= KEY_MAX; len++) {
		by_len[len].first = (unsigned char)k;
		for (unsigned i = 0; i < DK_ARRAY_SIZE(fields); i++)
			if (strlen(fields[i].key) == len)
				sorted[k++] = &fields[i];
		by_len[len].n = (unsigned char)(k - by_len[len].first);
	}
}

struct val {
	bool set;
	bool escaped;
	enum dk_json_type type;
	struct dk_json_str s;
};

struct answer {
	struct val type, rdata;
};

struct collect {
	struct val v[S_COUNT];
	struct answer ans[DK_LOGREC_TARGETS];
	struct val text[DK_LOGREC_TARGETS]; /* zeek answers */
};

static bool leaf_fn(void *ctx, const struct dk_json_leaf *l)
{
	struct collect *c = ctx;

	if (l->key.len == 0 || l->key.len > KEY_MAX)
		return true;
	unsigned first = by_len[l->key.len].first, n = by_len[l->key.len].n;
	for (unsigned i = first; i < first + n; i++) {
		const struct field *f = sorted[i];
		/* The first octet tells most apart without a call. */
		if (f->key[0] != l->key.p[0] || memcmp(f->key, l->key.p, l->key.len) != 0)
			continue;
		if (f->parent && !dk_json_eq(l->parent, f->parent))
			continue;
		struct val v = {true, l->escaped, l->type, l->val};
		int idx = l->index < 0 ? 0 : l->index;
		switch (f->slot) {
		case S_ANSWER_TYPE:
			if (idx < DK_LOGREC_TARGETS)
				c->ans[idx].type = v;
			break;
		case S_ANSWER_RDATA:
			if (idx < DK_LOGREC_TARGETS)
				c->ans[idx].rdata = v;
			break;
		case S_ANSWER_TEXT:
			if (idx < DK_LOGREC_TARGETS && l->type == DK_JSON_STRING)
				c->text[idx] = v;
			break;
		default:
			/* The first wins: "query" of OCSF is an object, Zeek's a string. */
			if (!c->v[f->slot].set)
				c->v[f->slot] = v;
		}
		return true;
	}
	return true;
}

/* The text of a value, escapes decoded when it has any (into @p buf). */
static struct dk_json_str text(const struct val *v, char *buf, size_t size)
{
	struct dk_json_str s = v->s;

	if (v->set && v->escaped) {
		int n = dk_json_unescape(v->s, buf, size);
		s.p = buf;
		s.len = n < 0 ? 0 : (size_t)n;
	}
	return s;
}

static int set_name(struct dk_logrec *r, const struct val *v)
{
	char buf[DK_NAME_MAX * 4 + 8];

	if (!v->set || v->type != DK_JSON_STRING)
		return DK_LOGERR_NAME;
	struct dk_json_str s = text(v, buf, sizeof(buf));
	return dk_logrec_set_qname(r, s.p, s.len);
}

static void add_target(struct dk_logrec *r, const struct val *v)
{
	char buf[DK_NAME_MAX * 4 + 8];

	if (!v->set || v->type != DK_JSON_STRING)
		return;
	struct dk_json_str s = text(v, buf, sizeof(buf));
	dk_logrec_add_target(r, s.p, s.len);
}

static int set_addr(struct dk_logrec *r, const struct val *v)
{
	if (!v->set || v->type == DK_JSON_NULL || v->s.len == 0)
		return 0;
	return dk_logrec_set_addr(r, v->s.p, v->s.len);
}

static void set_port(struct dk_logrec *r, const struct val *v)
{
	unsigned p = 0;

	if (!v->set)
		return;
	for (size_t i = 0; i < v->s.len; i++) {
		if (v->s.p[i] < '0' || v->s.p[i] > '9' || p > 65535)
			return;
		p = p * 10 + (unsigned)(v->s.p[i] - '0');
	}
	if (p <= 65535)
		r->port = (uint16_t)p;
}

static void set_transport(struct dk_logrec *r, const struct val *v)
{
	if (v->set && v->s.len == 3 && (v->s.p[0] == 't' || v->s.p[0] == 'T') &&
	    (v->s.p[1] == 'c' || v->s.p[1] == 'C'))
		r->transport = DK_TRANSPORT_TCP;
}

static void set_qtype(struct dk_logrec *r, const struct val *v)
{
	if (v->set && !r->qtype)
		r->qtype = dk_log_qtype(v->s.p, v->s.len);
}

static void set_rcode(struct dk_logrec *r, const struct val *v)
{
	if (v->set && r->rcode < 0)
		r->rcode = (int16_t)dk_log_rcode(v->s.p, v->s.len);
}

/* A time as a number (epoch seconds with fraction, or ms when that large) or ISO 8601. */
static int set_time(struct dk_logrec *r, const struct val *v)
{
	if (!v->set || v->type == DK_JSON_NULL)
		return 0;
	if (v->type == DK_JSON_NUMBER) {
		uint64_t ms;
		if (dk_log_parse_epoch(v->s.p, v->s.len, &ms))
			return DK_LOGERR_TIME;
		/* Past year 5138 in seconds: it was milliseconds (OCSF). */
		if (ms > 100000000000000ULL)
			ms /= 1000;
		r->time_ms = ms;
		return 0;
	}
	return dk_log_parse_iso_time(v->s.p, v->s.len, &r->time_ms);
}

static bool is_chain_type(const struct val *t)
{
	return t->set && (dk_json_eq(t->s, "CNAME") || dk_json_eq(t->s, "DNAME") ||
	                  dk_json_eq(t->s, "cname") || dk_json_eq(t->s, "dname"));
}

static void answers_typed(struct dk_logrec *r, const struct collect *c)
{
	for (unsigned i = 0; i < DK_LOGREC_TARGETS; i++)
		if (is_chain_type(&c->ans[i].type))
			add_target(r, &c->ans[i].rdata);
}

static unsigned num(const struct val *v)
{
	unsigned n = 0;

	if (!v->set || v->s.len == 0 || v->s.len > 9)
		return 0;
	for (size_t i = 0; i < v->s.len; i++) {
		if (v->s.p[i] < '0' || v->s.p[i] > '9')
			return 0;
		n = n * 10 + (unsigned)(v->s.p[i] - '0');
	}
	return n;
}

/* Windows DNS status codes (winerror.h, DNS_ERROR_RCODE_*) back to rcodes. */
static int sysmon_rcode(unsigned status)
{
	if (status == 0 || status == 9501) /* 9501: DNS_INFO_NO_RECORDS, NODATA */
		return 0;
	if (status >= 9001 && status <= 9010)
		return (int)(status - 9000);
	return -1;
}

/* "type:  5 target.example;::ffff:192.0.2.1;" : the type-5 (CNAME) entries are targets. */
static void sysmon_results(struct dk_logrec *r, const struct val *v)
{
	char buf[2048];

	if (!v->set || v->type != DK_JSON_STRING)
		return;
	struct dk_json_str s = text(v, buf, sizeof(buf));
	const char *p = s.p, *end = s.p + s.len;
	while (p < end) {
		const char *e = memchr(p, ';', (size_t)(end - p));
		if (!e)
			e = end;
		const char *q = p;
		if (e - q > 5 && memcmp(q, "type:", 5) == 0) {
			q += 5;
			while (q < e && *q == ' ')
				q++;
			unsigned t = 0;
			while (q < e && *q >= '0' && *q <= '9')
				t = t * 10 + (unsigned)(*q++ - '0');
			if (t == 5 || t == 39)
				dk_logrec_add_target(r, q, (size_t)(e - q));
		}
		p = e + 1;
	}
}

static int fill_sysmon(struct dk_logrec *r, const struct collect *c)
{
	int rc;

	if (c->v[S_EVENTID].set && num(&c->v[S_EVENTID]) != 22)
		return DK_LOG_SKIP;
	if ((rc = set_name(r, &c->v[S_QUERYNAME])))
		return rc;
	if ((rc = set_time(r, c->v[S_UTCTIME].set ? &c->v[S_UTCTIME] : &c->v[S_TIMESTAMP])))
		return rc;
	if (c->v[S_QUERYSTATUS].set)
		r->rcode = (int16_t)sysmon_rcode(num(&c->v[S_QUERYSTATUS]));
	sysmon_results(r, &c->v[S_QUERYRESULTS]);
	if (c->v[S_COMPUTER].set && c->v[S_COMPUTER].type == DK_JSON_STRING) {
		struct dk_json_str h = text(&c->v[S_COMPUTER], r->host, sizeof(r->host));
		size_t n = h.len < sizeof(r->host) ? h.len : sizeof(r->host) - 1;
		memmove(r->host, h.p, n);
		r->host[n] = '\0';
	}
	return 0;
}

static int fill_ocsf(struct dk_logrec *r, const struct collect *c)
{
	int rc;

	if ((rc = set_name(r, &c->v[S_HOSTNAME])) || (rc = set_time(r, &c->v[S_TIME])) ||
	    (rc = set_addr(r, &c->v[S_SRC_IP])))
		return rc;
	set_qtype(r, &c->v[S_OTYPE]);
	set_rcode(r, &c->v[S_RCODE_ID]);
	set_rcode(r, &c->v[S_RCODE]);
	set_port(r, &c->v[S_SRC_PORT]);
	set_transport(r, &c->v[S_PROTOCOL_NAME]);
	answers_typed(r, c);
	add_target(r, &c->v[S_CNAME_TARGET]);
	return 0;
}

static int fill_dnsink(struct dk_logrec *r, const struct collect *c)
{
	int rc;

	if ((rc = set_name(r, &c->v[S_DNS_QUERY])) || (rc = set_time(r, &c->v[S_TIME])) ||
	    (rc = set_addr(r, &c->v[S_SOURCE_IP])))
		return rc;
	set_qtype(r, &c->v[S_QTYPE]);
	set_rcode(r, &c->v[S_RCODE]);
	set_port(r, &c->v[S_SOURCE_PORT]);
	set_transport(r, &c->v[S_TRANSPORT]);
	add_target(r, &c->v[S_CNAME_TARGET]);
	return 0;
}

static int fill_route53(struct dk_logrec *r, const struct collect *c)
{
	int rc;

	if ((rc = set_name(r, &c->v[S_QUERY_NAME])) ||
	    (rc = set_time(r, &c->v[S_QUERY_TIMESTAMP])) || (rc = set_addr(r, &c->v[S_SRCADDR])))
		return rc;
	set_qtype(r, &c->v[S_QUERY_TYPE]);
	set_rcode(r, &c->v[S_RCODE]);
	set_port(r, &c->v[S_SRCPORT]);
	set_transport(r, &c->v[S_TRANSPORT]);
	answers_typed(r, c);
	return 0;
}

static int fill_zeek(struct dk_logrec *r, const struct collect *c)
{
	int rc;

	if ((rc = set_name(r, &c->v[S_QUERY])) || (rc = set_time(r, &c->v[S_TS])) ||
	    (rc = set_addr(r, &c->v[S_ORIG_H])))
		return rc;
	set_qtype(r, &c->v[S_QTYPE]);
	set_qtype(r, &c->v[S_QTYPE_NAME]);
	set_rcode(r, &c->v[S_RCODE]);
	set_rcode(r, &c->v[S_RCODE_NAME]);
	set_port(r, &c->v[S_ORIG_P]);
	set_transport(r, &c->v[S_PROTO]);
	/*
	 * Zeek's answers are untyped text: addresses, and the names of CNAMEs
	 * (or of PTR, MX... answers). For an address query, a name is a CNAME.
	 */
	if (r->qtype == 1 || r->qtype == 28 || r->qtype == 5)
		for (unsigned i = 0; i < DK_LOGREC_TARGETS; i++)
			add_target(r, &c->text[i]);
	return 0;
}

/* Which format the members present say the line is. */
static enum dk_logfmt classify(const struct collect *c)
{
	const struct val *v = c->v;

	if (v[S_QUERYNAME].set)
		return DK_LOGFMT_SYSMON;
	if (v[S_EVENTID].set && !v[S_QUERY_NAME].set && !v[S_QUERY].set)
		return DK_LOGFMT_SYSMON;
	if (v[S_HOSTNAME].set || num(&v[S_CLASS_UID]) == 4003)
		return DK_LOGFMT_OCSF;
	if (v[S_RULE_ID].set && v[S_DNS_QUERY].set)
		return DK_LOGFMT_DNSINK;
	if (v[S_QUERY_NAME].set)
		return DK_LOGFMT_ROUTE53;
	if (v[S_QUERY].set && v[S_QUERY].type == DK_JSON_STRING && (v[S_ORIG_H].set || v[S_TS].set))
		return DK_LOGFMT_ZEEK;
	return DK_LOGFMT_AUTO;
}

int dk_log_parse_json(const char *line, size_t len, enum dk_logfmt want, struct dk_logrec *r)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct collect c;

	pthread_once(&once, build_index);
	memset(&c, 0, sizeof(c));
	if (dk_json_scan(line, len, leaf_fn, &c))
		return DK_LOGERR_JSON;
	enum dk_logfmt f = classify(&c);
	if (f == DK_LOGFMT_AUTO || (want != DK_LOGFMT_AUTO && want != f))
		return DK_LOGERR_SHAPE;
	dk_logrec_reset(r, f);
	switch (f) {
	case DK_LOGFMT_SYSMON: return fill_sysmon(r, &c);
	case DK_LOGFMT_OCSF: return fill_ocsf(r, &c);
	case DK_LOGFMT_DNSINK: return fill_dnsink(r, &c);
	case DK_LOGFMT_ROUTE53: return fill_route53(r, &c);
	case DK_LOGFMT_ZEEK: return fill_zeek(r, &c);
	default: return DK_LOGERR_SHAPE;
	}
}
