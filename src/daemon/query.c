/* SPDX-License-Identifier: MIT */
/*
 * The query decision (see query.h). A query the policy lets through is looked
 * up in the cache; on a miss it takes a pending entry (the client handle,
 * kept until the forwarder calls back) from a fixed pool as large as the
 * forwarder's table; its answer comes back in forward_done(), is stored in
 * the cache, and the answer-side policy runs before the reply. A cached
 * answer goes through the same answer_policy() at every hit.
 *
 * act() is the one place a verdict becomes an action, for a query name and
 * for a CNAME/DNAME target of an answer alike: a blocking rule's local
 * answer, the alert, the rule's hit counter.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <ldns/packet.h>
#include <ldns/rr.h>
#include <ldns/wire2host.h>

#include "dnsink/cache.h"
#include "dnsink/groups.h"
#include "dnsink/name.h"
#include "dnsink/ratelimit.h"
#include "dnsink/sigma.h"
#include "log.h"
#include "query.h"

/** Answer records looked at for CNAME/DNAME targets; real chains are far shorter. */
#define CHAIN_RRS 64

/** A query waiting for the forwarder. */
struct pending {
	struct dk_queries *qs;
	struct pending *next_free;
	struct dk_client cl;
	bool prefetch; /**< a refresh of a cache entry: no client waits */
};

struct dk_queries {
	struct dk_queries_env env;
	struct dk_queries_conf conf;
	struct dk_ratelimit *rl;        /**< client buckets; NULL: rate_limit off */
	size_t rl_table_size;           /**< the rate_limit.table_size @p rl was made for */
	struct dk_cache *cache;         /**< NULL: cache off */
	struct dk_sigma_scratch *sigma; /**< Sigma scan and counting state; NULL: no Sigma rules */
	size_t cache_bytes;             /**< the budget @p cache was made with */
	uint8_t *cbuf;                  /**< DK_MSG_MAX: answers served from the cache */
	struct pending *pend;
	struct pending *free;
	size_t n_free;               /**< entries on @p free */
	uint8_t txbuf[DK_LOCAL_MAX]; /**< local answers */
};

/** Where a verdict applies: the name asked, or a target in the upstream's answer. */
enum act_on {
	ACT_QUERY,
	ACT_ANSWER,
};

static void count(struct dk_queries *qs, const struct dk_client *cl, enum dk_outcome o)
{
	dk_ctr_inc(&qs->env.ctr->out[cl->transport][o]);
}

/* Answers @p cl with @p rcode for query @p pkt/@p q, or counts it dropped. */
static void reply_error(struct dk_queries *qs, const struct dk_client *cl, const uint8_t *pkt,
                        const struct dk_query *q, uint8_t rcode, uint16_t ede)
{
	int n = dk_msg_write_error(pkt, q, rcode, ede, qs->txbuf, sizeof(qs->txbuf));

	if (n < 0) {
		count(qs, cl, DK_OUT_DROPPED);
		return;
	}
	dk_client_reply(cl, qs->txbuf, (size_t)n);
}

static void rule_hit(struct dk_queries *qs, unsigned rule_index)
{
	const struct dk_queries_conf *c = &qs->conf;
	/* A group's own allow-list is no rule of the snapshot: its index is past them. */
	uint32_t slot = c->rule_slot && rule_index < c->pol->n_rules ? c->rule_slot[rule_index]
	                                                             : UINT32_MAX;

	if (slot < c->n_rule_hits)
		dk_ctr_inc(&c->rule_hits[slot]);
}

/* Counts a query (@p which 0) or a hit (1) of client group @p g in its counter slot. */
static void group_count(struct dk_queries *qs, const struct dk_group *g, unsigned which)
{
	const struct dk_queries_conf *c = &qs->conf;
	uint32_t slot = g && c->group_slot ? c->group_slot[2 * g->index + which] : UINT32_MAX;

	if (slot < c->n_rule_hits)
		dk_ctr_inc(&c->rule_hits[slot]);
}

/* The group of client @p cl in the snapshot in force; NULL without groups. */
static const struct dk_group *group_of(const struct dk_queries *qs, const struct dk_client *cl)
{
	const struct dk_policy *pol = qs->conf.pol;

	return pol && pol->groups ? dk_groups_lookup(pol->groups, &cl->peer.sa) : NULL;
}

/* Matches @p wire for a client of group @p g: the group's view of the rules in force. */
static bool match(const struct dk_queries *qs, const struct dk_group *g, const uint8_t *wire,
                  size_t len, struct dk_verdict *v)
{
	const struct dk_policy *pol = qs->conf.pol;

	if (!g)
		return dk_policy_match(pol, wire, len, v);
	return dk_group_match(pol, g, dk_group_view(pol->groups, g), wire, len, v);
}

/*
 * A verdict found outside the suffix set (an RPZ address trigger) as client
 * group @p g sees its rule: its action set from the group's view, or false
 * when the group turns the rule off.
 */
static bool group_sees(const struct dk_queries *qs, const struct dk_group *g, struct dk_verdict *v)
{
	const uint8_t *view = g ? dk_group_view(qs->conf.pol->groups, g) : NULL;

	if (!view)
		return true;
	if (view[v->rule->index] == DK_GROUP_OFF)
		return false;
	v->action = view[v->rule->index];
	return true;
}

/*
 * Posts the alert event for query @p q of @p cl matched by @p v. With
 * @p target_len > 0, @p target (lowercase wire form) is the CNAME/DNAME target
 * the rule matched and v->matched_off is relative to it.
 */
static void alert(struct dk_queries *qs, const struct dk_client *cl, const struct dk_group *g,
                  const struct dk_query *q, const struct dk_verdict *v, uint8_t rcode,
                  const uint8_t *target, size_t target_len)
{
	struct dk_alert_event ev;

	ev.time_ms = dk_wall_ms();
	ev.mono_ns = dk_mono_ns();
	ev.rule = v->rule;
	ev.policy = qs->conf.pol;
	ev.family = (uint8_t)cl->peer.sa.sa_family;
	ev.transport = cl->transport;
	ev.action = v->action;
	ev.group = g ? g->name : NULL;
	ev.rcode = rcode;
	ev.qtype = q->qtype;
	memset(ev.addr, 0, sizeof(ev.addr));
	if (cl->peer.sa.sa_family == AF_INET) {
		memcpy(ev.addr, &cl->peer.in4.sin_addr, 4);
		ev.port = ntohs(cl->peer.in4.sin_port);
	} else {
		memcpy(ev.addr, &cl->peer.in6.sin6_addr, 16);
		ev.port = ntohs(cl->peer.in6.sin6_port);
	}
	ev.qname_len = q->qname_len;
	memcpy(ev.qname, q->qname, q->qname_len);
	ev.matched_off = v->matched_off;
	ev.wildcard = v->wildcard;
	ev.target_len = (uint8_t)target_len;
	if (target_len)
		memcpy(ev.target, target, target_len);
	ev.group_key_len = 0;
	if (v->rule->sigma && v->group_key) {
		size_t n = strnlen(v->group_key, sizeof(ev.group_key) - 1);
		memcpy(ev.group_key, v->group_key, n);
		ev.group_key[n] = '\0';
		ev.group_key_len = (uint8_t)(n ? n : 1);
		ev.group_count = v->group_count;
	}
	qs->env.alert(qs->env.alert_ctx, &ev);
}

/*
 * Writes the local data of verdict @p v (an RPZ trigger) as the answer to
 * @p q into txbuf; @p name is the name the trigger matched. A trigger whose
 * data was lost (none found) answers NODATA.
 */
static int local_answer(struct dk_queries *qs, const uint8_t *pkt, const struct dk_query *q,
                        const struct dk_verdict *v, const uint8_t *name, size_t name_len)
{
	const struct dk_policy *pol = qs->conf.pol;
	const struct dk_local_data *ld = dk_policy_local(pol, v, name, name_len);

	if (!ld)
		return dk_msg_write_error(pkt, q, LDNS_RCODE_NOERROR, DK_EDE_FORGED, qs->txbuf,
		                          sizeof(qs->txbuf));
	return dk_msg_write_records(pkt, q, pol->local_blob + ld->rr_off, ld->rr_len, DK_EDE_FORGED,
	                            qs->txbuf, sizeof(qs->txbuf));
}

/*
 * Applies verdict @p v to query @p pkt/@p q of @p cl, matched on the query
 * name or (@p on ACT_ANSWER) on answer target @p target: counts the rule's
 * hit, answers locally for a blocking rule, posts the alert (@p pass_rcode is
 * the rcode the client gets when the rule lets the query pass). Returns true
 * when the client was answered (or the answer dropped), false when the query
 * goes on: forwarded, or the upstream's answer passed on.
 */
static bool act(struct dk_queries *qs, const struct dk_client *cl, const struct dk_group *g,
                const uint8_t *pkt, const struct dk_query *q, const struct dk_verdict *v,
                enum act_on on, uint8_t pass_rcode, const uint8_t *target, size_t target_len)
{
	const struct dk_rule *r = v->rule;
	uint8_t rcode = pass_rcode;
	enum dk_outcome o = DK_OUT_FORWARDED;
	int n = 0;

	rule_hit(qs, r->index);
	group_count(qs, g, 1);
	switch ((enum dk_action)v->action) {
	case DK_ACTION_SINKHOLE:
		o = DK_OUT_SINKHOLED;
		rcode = LDNS_RCODE_NOERROR;
		n = dk_msg_write_sinkhole(pkt, q, &qs->conf.cfg->sinkhole, DK_EDE_BLOCKED,
		                          qs->txbuf, sizeof(qs->txbuf));
		break;
	case DK_ACTION_NXDOMAIN:
		o = DK_OUT_NXDOMAIN;
		rcode = LDNS_RCODE_NXDOMAIN;
		n = dk_msg_write_error(pkt, q, rcode, DK_EDE_BLOCKED, qs->txbuf, sizeof(qs->txbuf));
		break;
	case DK_ACTION_REFUSED:
		o = DK_OUT_REFUSED;
		rcode = LDNS_RCODE_REFUSED;
		n = dk_msg_write_error(pkt, q, rcode, DK_EDE_BLOCKED, qs->txbuf, sizeof(qs->txbuf));
		break;
	case DK_ACTION_NODATA:
		o = DK_OUT_NODATA;
		rcode = LDNS_RCODE_NOERROR;
		n = dk_msg_write_error(pkt, q, rcode, DK_EDE_BLOCKED, qs->txbuf, sizeof(qs->txbuf));
		break;
	case DK_ACTION_LOCAL:
		o = DK_OUT_LOCAL;
		rcode = LDNS_RCODE_NOERROR;
		n = local_answer(qs, pkt, q, v, target_len ? target : q->qname,
		                 target_len ? target_len : q->qname_len);
		break;
	case DK_ACTION_TCP_ONLY:
		/* Over TCP the query goes on as usual: the client did what was asked. */
		if (cl->transport != DK_TRANSPORT_UDP)
			return false;
		o = DK_OUT_TRUNCATED;
		rcode = LDNS_RCODE_NOERROR;
		n = dk_msg_write_error(pkt, q, rcode, 0, qs->txbuf, sizeof(qs->txbuf));
		if (n > 0)
			LDNS_TC_SET(qs->txbuf);
		break;
	case DK_ACTION_DROP: o = DK_OUT_DROPPED; break;
	case DK_ACTION_ALERT:
	case DK_ACTION_ALLOW: break;
	}
	if (r->alert && v->action != DK_ACTION_ALLOW)
		alert(qs, cl, g, q, v, rcode, target, target_len);
	if (v->action == DK_ACTION_DROP) {
		/* No answer on purpose (RPZ rpz-drop): the client times out. */
		if (on == ACT_ANSWER)
			dk_ctr_inc(&qs->env.ctr->cname_blocked);
		count(qs, cl, o);
		return true;
	}
	if (o == DK_OUT_FORWARDED) {
		if (on == ACT_ANSWER)
			dk_ctr_inc(&qs->env.ctr->cname_alerted);
		return false;
	}
	if (on == ACT_ANSWER)
		dk_ctr_inc(&qs->env.ctr->cname_blocked);
	else
		count(qs, cl, o);
	if (n > 0)
		dk_client_reply(cl, qs->txbuf, (size_t)n);
	else
		count(qs, cl, DK_OUT_DROPPED);
	return true;
}

/*
 * Applies the Sigma rules of @p h (sigma.h) through act(), as client group
 * @p g sees them (its view turns rules off or changes their action, Sigma
 * rules as any other): every rule that lets the query pass alerts first,
 * then the first blocking one answers. Behavioural alerts carry their group
 * key and count. Returns true when the client was answered.
 */
static bool sigma_act(struct dk_queries *qs, const struct dk_client *cl, const struct dk_group *g,
                      const uint8_t *pkt, const struct dk_query *q, const struct dk_sigma_hits *h,
                      enum act_on on, uint8_t pass_rcode)
{
	const struct dk_policy *pol = qs->conf.pol;
	const uint8_t *view = g ? dk_group_view(pol->groups, g) : NULL;
	struct dk_verdict block = {0};

	for (unsigned i = 0; i < h->n + h->n_corr; i++) {
		bool corr = i >= h->n;
		unsigned ri = corr ? h->corr[i - h->n].rule : h->rule[i];
		struct dk_verdict v = {.rule = &pol->rules[ri]};
		v.action = view ? view[ri] : (uint8_t)v.rule->action;
		if (corr) {
			v.group_key = h->corr[i - h->n].key;
			v.group_count = h->corr[i - h->n].count;
		}
		if (v.action == DK_GROUP_OFF || v.action == DK_ACTION_ALLOW)
			continue;
		if (v.action != DK_ACTION_ALERT) {
			if (!block.rule)
				block = v;
			continue;
		}
		act(qs, cl, g, pkt, q, &v, on, pass_rcode, NULL, 0);
	}
	return block.rule && act(qs, cl, g, pkt, q, &block, on, pass_rcode, NULL, 0);
}

static void sigma_facts(const struct dk_client *cl, const struct dk_query *q,
                        struct dk_sigma_query *sq)
{
	sq->qname = q->qname;
	sq->qname_len = q->qname_len;
	sq->qtype = q->qtype;
	sq->client = &cl->peer.sa;
}

/* The query-side Sigma rules and the behavioural counters. True: answered locally. */
static bool sigma_query(struct dk_queries *qs, const struct dk_client *cl, const struct dk_group *g,
                        const uint8_t *pkt, const struct dk_query *q)
{
	const struct dk_policy *pol = qs->conf.pol;
	struct dk_sigma_query sq;
	struct dk_sigma_hits h;

	if (!pol || !pol->sigma || !qs->sigma)
		return false;
	sigma_facts(cl, q, &sq);
	dk_sigma_match_query(pol->sigma, qs->sigma, &sq, &h);
	dk_sigma_count(pol->sigma, qs->sigma, &sq, qs->env.now_ms(qs->env.clock_ctx), &h);
	if (!h.n && !h.n_corr)
		return false;
	return sigma_act(qs, cl, g, pkt, q, &h, ACT_QUERY, LDNS_RCODE_NOERROR);
}

/* The answer-side Sigma rules (answers, rcode, answer types). True: answered locally. */
static bool sigma_answer(struct dk_queries *qs, const struct dk_client *cl,
                         const struct dk_group *g, const uint8_t *ans, size_t len,
                         const uint8_t *pkt, const struct dk_query *q)
{
	const struct dk_policy *pol = qs->conf.pol;
	struct dk_sigma_query sq;
	struct dk_sigma_hits h;

	if (!pol || !dk_sigma_has_answer_rules(pol->sigma) || !qs->sigma)
		return false;
	sigma_facts(cl, q, &sq);
	if (!dk_sigma_match_answer(pol->sigma, qs->sigma, &sq, ans, len, &h) || !h.n)
		return false;
	return sigma_act(qs, cl, g, pkt, q, &h, ACT_ANSWER, LDNS_RCODE_WIRE(ans));
}

/** A rule that matched a CNAME/DNAME target of an answer. */
struct chain_hit {
	struct dk_verdict v;
	size_t target_len;
	uint8_t target[DK_NAME_MAX];
};

/*
 * Matches the CNAME and DNAME targets in the answer section of @p ans
 * against the policy as client group @p g sees it. The first target a blocking rule matches wins;
 * else the first an alert rule matches. Targets an allow rule matches are exempt. Stops at the
 * first malformed record: what comes after cannot be located, and the client gets the answer as the
 * upstream sent it. The question ends at @p qend: it is the query's own, uncompressed (the
 * forwarder checked that; a cached answer is stored so).
 */
static bool chain_scan(const struct dk_queries *qs, const struct dk_group *g, const uint8_t *ans,
                       size_t len, size_t qend, struct chain_hit *hit)
{
	struct dk_rr_iter it;
	struct dk_rr rr;
	bool found = false;

	if (dk_msg_rr_iter_init_at(&it, ans, len, qend) < 0)
		return false;
	for (unsigned i = 0; i < CHAIN_RRS && dk_msg_rr_next(&it, &rr) > 0; i++) {
		uint8_t name[DK_NAME_MAX];
		size_t nlen;
		struct dk_verdict v;

		if (rr.type != LDNS_RR_TYPE_CNAME && rr.type != LDNS_RR_TYPE_DNAME)
			continue;
		if (dk_msg_rr_target(&it, &rr, name, &nlen) < 0 || !match(qs, g, name, nlen, &v) ||
		    v.action == DK_ACTION_ALLOW)
			continue;
		bool blocks = v.action != DK_ACTION_ALERT;
		if (!found || blocks) {
			hit->v = v;
			hit->target_len = nlen;
			memcpy(hit->target, name, nlen);
			found = true;
		}
		if (blocks)
			break;
	}
	return found;
}

/*
 * Matches the A and AAAA addresses in the answer section of @p ans against
 * the RPZ IP triggers of @p pol ("rpz-ip"); the first address that matches
 * decides, whatever its action (a passthru exempts the answer).
 */
static bool ip_scan(const struct dk_policy *pol, const uint8_t *ans, size_t len, size_t qend,
                    struct dk_verdict *v)
{
	struct dk_rr_iter it;
	struct dk_rr rr;

	if (dk_msg_rr_iter_init_at(&it, ans, len, qend) < 0)
		return false;
	for (unsigned i = 0; i < CHAIN_RRS && dk_msg_rr_next(&it, &rr) > 0; i++) {
		if (rr.type == LDNS_RR_TYPE_A && rr.rdlen == 4 &&
		    dk_policy_match_ip(pol, AF_INET, ans + rr.rdata, v))
			return true;
		if (rr.type == LDNS_RR_TYPE_AAAA && rr.rdlen == 16 &&
		    dk_policy_match_ip(pol, AF_INET6, ans + rr.rdata, v))
			return true;
	}
	return false;
}

/*
 * The answer-side policy: the CNAME/DNAME targets of answer @p ans to query
 * @p pkt/@p q, then (RPZ order: QNAME before IP) its addresses. Returns true
 * when the client was answered locally instead.
 */
static bool answer_policy(struct dk_queries *qs, const struct dk_client *cl, const uint8_t *ans,
                          size_t len, const uint8_t *pkt, const struct dk_query *q)
{
	const struct dk_policy *pol = qs->conf.pol;
	const struct dk_group *g = group_of(qs, cl);
	struct chain_hit hit;
	struct dk_verdict qv;

	if (sigma_answer(qs, cl, g, ans, len, pkt, q))
		return true;
	if (!pol || LDNS_ANCOUNT(ans) == 0)
		return false;
	size_t qend = DK_HEADER_LEN + q->qname_len + 4;
	if (!chain_scan(qs, g, ans, len, qend, &hit)) {
		if (!pol->response_ips || !ip_scan(pol, ans, len, qend, &hit.v) ||
		    !group_sees(qs, g, &hit.v))
			return false;
		hit.target_len = 0;
	}
	/* An allow exception on the name asked covers its whole answer. */
	if (match(qs, g, q->qname, q->qname_len, &qv) && qv.action == DK_ACTION_ALLOW)
		return false;
	return act(qs, cl, g, pkt, q, &hit.v, ACT_ANSWER, LDNS_RCODE_WIRE(ans),
	           hit.target_len ? hit.target : NULL, hit.target_len);
}

/* The cache key of query @p q: its lowercase name, type, class, DO and CD. */
static void cache_key(const struct dk_query *q, struct dk_cache_key *k)
{
	k->name = q->qname;
	k->name_len = q->qname_len;
	k->qtype = q->qtype;
	k->qclass = q->qclass;
	k->bits = (uint8_t)((q->edns_do ? DK_CACHE_BIT_DO : 0) |
	                    (q->flags & LDNS_CD_MASK ? DK_CACHE_BIT_CD : 0));
}

static void cache_gauges(struct dk_queries *qs)
{
	struct dk_cache_counters *cc = qs->env.cache_ctr;
	struct dk_cache_stats st = {0};

	if (qs->cache)
		dk_cache_stats(qs->cache, &st);
	dk_ctr_set(&cc->entries, st.entries);
	dk_ctr_set(&cc->bytes, st.bytes);
	dk_ctr_set(&cc->capacity, st.capacity);
}

/* Stores upstream answer @p ans to @p q (before anything rewrites it in place). */
static enum dk_cache_result cache_store(struct dk_queries *qs, const struct dk_query *q,
                                        const uint8_t *ans, size_t len)
{
	struct dk_cache_counters *cc = qs->env.cache_ctr;
	struct dk_cache_key k;
	unsigned evicted;

	cache_key(q, &k);
	enum dk_cache_result r = dk_cache_insert(qs->cache, &k, ans, len,
	                                         qs->env.now_ms(qs->env.clock_ctx), &evicted);
	if (r == DK_CACHE_STORED)
		dk_ctr_inc(&cc->inserts);
	else
		dk_ctr_inc(&cc->refused[r]);
	dk_ctr_add(&cc->evictions, evicted);
	cache_gauges(qs);
	return r;
}

static void prefetch(struct dk_queries *qs, const uint8_t *pkt, size_t len,
                     const struct dk_query *q);

/*
 * Answers query @p pkt/@p q of @p cl from the cache: a fresh entry, or with
 * @p stale an expired one (every upstream failed). The answer-side policy of
 * the rules in force runs on it first. Returns true when the client was
 * answered (or the answer dropped), false on a miss.
 */
static bool cache_answer(struct dk_queries *qs, const struct dk_client *cl, const uint8_t *pkt,
                         size_t qlen, const struct dk_query *q, bool stale)
{
	struct dk_cache_counters *cc = qs->env.cache_ctr;
	struct dk_cache_key k;
	struct dk_cache_hit hit;
	uint8_t *a = qs->cbuf;

	cache_key(q, &k);
	unsigned flags = stale                          ? DK_CACHE_LOOKUP_STALE
	                 : qs->conf.cfg->cache.prefetch ? DK_CACHE_LOOKUP_PREFETCH
	                                                : 0;
	int n = dk_cache_lookup(qs->cache, &k, qs->env.now_ms(qs->env.clock_ctx), flags, a,
	                        DK_MSG_MAX, &hit);
	if (n <= 0) {
		if (!stale)
			dk_ctr_inc(&cc->misses);
		return false;
	}
	dk_ctr_inc(hit.stale ? &cc->stale : &cc->hits);
	if (!stale)
		count(qs, cl, DK_OUT_CACHED);
	/* The forwarder calls back from the loop, never from here: the copy in a stays. */
	if (hit.refresh)
		prefetch(qs, pkt, qlen, q);
	if (answer_policy(qs, cl, a, (size_t)n, pkt, q))
		return true;
	/* The stored header is the first asker's: RD is this client's. */
	if (LDNS_RD_WIRE(pkt))
		LDNS_RD_SET(a);
	else
		LDNS_RD_CLR(a);
	/* AD only for a client that asked for it, with AD or DO (RFC 6840 5.8). */
	if (!LDNS_AD_WIRE(pkt) && !q->edns_do)
		LDNS_AD_CLR(a);
	n = dk_msg_add_opt(a, (size_t)n, DK_MSG_MAX, q, hit.stale ? DK_EDE_STALE : 0);
	if (n < 0) {
		count(qs, cl, DK_OUT_DROPPED);
		return true;
	}
	size_t max = cl->transport == DK_TRANSPORT_UDP ? dk_msg_client_udp_max(q) : DK_MSG_MAX;
	size_t len = dk_msg_answer_for_client(a, (size_t)n, pkt, q, max);
	dk_client_reply(cl, a, len);
	return true;
}

static void pending_release(struct dk_queries *qs, struct pending *p)
{
	const struct dk_client *cl = &p->cl;

	/* The entry must belong to this module's pool: it came back through a callback. */
	if (dk_fails_assert(p >= qs->pend && p < qs->pend + qs->env.max_pending))
		return;
	if (cl->ops->done)
		cl->ops->done(cl);
	p->prefetch = false;
	p->next_free = qs->free;
	qs->free = p;
	qs->n_free++;
}

static struct pending *pending_take(struct dk_queries *qs)
{
	struct pending *p = qs->free;

	if (p) {
		qs->free = p->next_free;
		qs->n_free--;
	}
	return p;
}

/*
 * The end of a refresh: a good answer replaces the entry; anything else
 * (failure, SERVFAIL, an answer the cache refuses) leaves the old entry to
 * serve until it expires, and the next hit may try again.
 */
static void prefetch_done(struct dk_queries *qs, const uint8_t *ans, size_t len,
                          const struct dk_query *q)
{
	struct dk_cache_key k;

	if (!qs->cache)
		return;
	if (ans && len >= DK_HEADER_LEN && LDNS_RCODE_WIRE(ans) != LDNS_RCODE_SERVFAIL &&
	    cache_store(qs, q, ans, len) == DK_CACHE_STORED)
		return;
	cache_key(q, &k);
	dk_cache_refresh_cancel(qs->cache, &k);
}

/* The forwarder's callback: the answer (or NULL: every upstream failed) goes to the client. */
static void forward_done(void *ctx, uint8_t *ans, size_t len, const uint8_t *pkt, size_t qlen,
                         const struct dk_query *q)
{
	struct pending *p = ctx;
	struct dk_queries *qs = p->qs;
	const struct dk_client *cl = &p->cl;

	(void)qlen;
	if (p->prefetch) {
		prefetch_done(qs, ans, len, q);
		pending_release(qs, p);
		return;
	}
	/* RFC 8767: when the upstreams fail, an expired answer beats none. */
	bool failed = !ans || (len >= DK_HEADER_LEN && LDNS_RCODE_WIRE(ans) == LDNS_RCODE_SERVFAIL);
	if (failed && qs->cache && qs->conf.cfg->cache.serve_stale &&
	    cache_answer(qs, cl, pkt, qlen, q, true)) {
		pending_release(qs, p);
		return;
	}
	if (qs->cache && ans)
		cache_store(qs, q, ans, len);
	if (!ans) {
		count(qs, cl, DK_OUT_SERVFAIL);
		int n = dk_msg_write_error(pkt, q, LDNS_RCODE_SERVFAIL, 0, qs->txbuf,
		                           sizeof(qs->txbuf));
		/* Cached briefly (RFC 9520), so a dead name does not hammer the upstreams. */
		if (qs->cache && n > 0)
			cache_store(qs, q, qs->txbuf, (size_t)n);
		reply_error(qs, cl, pkt, q, LDNS_RCODE_SERVFAIL, 0);
	} else if (!answer_policy(qs, cl, ans, len, pkt, q)) {
		size_t max =
		        cl->transport == DK_TRANSPORT_UDP ? dk_msg_client_udp_max(q) : DK_MSG_MAX;
		len = dk_msg_answer_for_client(ans, len, pkt, q, max);
		dk_msg_set_id(ans, q->id);
		dk_client_reply(cl, ans, len);
	}
	pending_release(qs, p);
}

/* Sends query @p pkt/@p q of @p cl upstream; SERVFAIL when it cannot go. */
static void forward(struct dk_queries *qs, const struct dk_client *cl, const uint8_t *pkt,
                    size_t len, const struct dk_query *q)
{
	struct pending *p = pending_take(qs);
	int rc = DK_EFULL;

	if (p) {
		p->cl = *cl;
		/* Held first: a forward that fails releases it again. */
		if (cl->ops->hold)
			cl->ops->hold(cl);
		rc = qs->env.forward(qs->env.fwd, pkt, len, q, cl->transport != DK_TRANSPORT_UDP,
		                     forward_done, p);
	}
	if (rc == 0) {
		count(qs, cl, DK_OUT_FORWARDED);
		return;
	}
	if (rc == DK_EFULL)
		dk_ctr_inc(&qs->env.ctr->table_full);
	count(qs, cl, DK_OUT_SERVFAIL);
	reply_error(qs, cl, pkt, q, LDNS_RCODE_SERVFAIL, 0);
	if (p)
		pending_release(qs, p);
}

static void prefetch_reply(const struct dk_client *cl, const uint8_t *ans, size_t len)
{
	(void)cl;
	(void)ans;
	(void)len;
}

/* A refresh has no client: nothing is held, and a reply would go nowhere. */
static const struct dk_client_ops prefetch_ops = {.reply = prefetch_reply};

/*
 * Refreshes the cache entry of query @p pkt/@p q, which a hit found due
 * (cache.prefetch): forwarded like the client's query, with no client
 * waiting. Only while three quarters of the pending entries are free, so
 * refreshes never take the room clients need; else the refresh is given up
 * and a later hit may claim it.
 */
static void prefetch(struct dk_queries *qs, const uint8_t *pkt, size_t len,
                     const struct dk_query *q)
{
	struct pending *p = NULL;
	int rc = DK_EFULL;

	if (qs->n_free * 4 > qs->env.max_pending * 3)
		p = pending_take(qs);
	if (p) {
		p->cl = (struct dk_client){.ops = &prefetch_ops, .transport = DK_TRANSPORT_UDP};
		p->prefetch = true;
		rc = qs->env.forward(qs->env.fwd, pkt, len, q, false, forward_done, p);
	}
	if (rc == 0) {
		dk_ctr_inc(&qs->env.cache_ctr->prefetches);
		return;
	}
	struct dk_cache_key k;
	cache_key(q, &k);
	dk_cache_refresh_cancel(qs->cache, &k);
	if (p)
		pending_release(qs, p);
}

/*
 * Before parsing: a flood costs as little as possible, whatever it holds.
 * Returns true when @p cl is over its limit (counted).
 */
static bool rate_limited(struct dk_queries *qs, const struct dk_client *cl)
{
	const struct dk_config *cfg = qs->conf.cfg;

	if (!qs->rl)
		return false;
	const struct dk_ratelimit_limits lim = {
	        .qps = cfg->rate_limit.qps,
	        .burst = cfg->rate_limit.burst,
	        .ipv4_prefix = (uint8_t)cfg->rate_limit.ipv4_prefix,
	        .ipv6_prefix = (uint8_t)cfg->rate_limit.ipv6_prefix,
	};
	if (dk_ratelimit_allow(qs->rl, &cl->peer.sa, qs->env.now_ms(qs->env.clock_ctx), &lim))
		return false;
	count(qs, cl, DK_OUT_RATELIMITED);
	return true;
}

/*
 * A NOTIFY (RFC 1996) for an RPZ zone: from the zone's primary it is
 * acknowledged (QR, AA, NOERROR) and handed to the transfers; from anyone
 * else it is REFUSED. Returns false when it is not for a zone we transfer,
 * which leaves it to the NOTIMP answer every other opcode gets.
 */
static bool notify(struct dk_queries *qs, const struct dk_client *cl, const uint8_t *pkt,
                   size_t len)
{
	const struct dk_policy *pol = qs->conf.pol;
	uint8_t copy[DK_LOCAL_MAX];
	struct dk_query q;

	if (!pol || !pol->n_zones || len > sizeof(copy))
		return false;
	/* The question is read as a query's is: the same parser with the opcode set aside. */
	memcpy(copy, pkt, len);
	copy[2] &= (uint8_t) ~(LDNS_OPCODE_MASK);
	if (dk_msg_parse_query(copy, len, &q) != 0)
		return false;
	q.opcode = LDNS_PACKET_NOTIFY;
	bool known = false;
	for (size_t i = 0; i < pol->n_zones && !known; i++)
		known = pol->zones[i].primary &&
		        dk_name_equal_nocase(pol->zones[i].origin_wire, pol->zones[i].origin_len,
		                             q.qname, q.qname_len);
	if (!known)
		return false;
	const struct dk_zone *z = dk_policy_notify_zone(pol, &cl->peer.sa, q.qname, q.qname_len);
	if (!z || !qs->env.notify) {
		count(qs, cl, DK_OUT_ACL_REFUSED);
		reply_error(qs, cl, pkt, &q, LDNS_RCODE_REFUSED, 0);
		return true;
	}
	qs->env.notify(qs->env.notify_ctx, z->origin);
	count(qs, cl, DK_OUT_FORWARDED);
	int n = dk_msg_write_error(pkt, &q, LDNS_RCODE_NOERROR, 0, qs->txbuf, sizeof(qs->txbuf));
	if (n < 0) {
		count(qs, cl, DK_OUT_DROPPED);
		return true;
	}
	LDNS_AA_SET(qs->txbuf);
	dk_client_reply(cl, qs->txbuf, (size_t)n);
	return true;
}

void dk_queries_handle(void *ctx, const struct dk_client *cl, const uint8_t *pkt, size_t len)
{
	struct dk_queries *qs = ctx;
	const struct dk_config *cfg = qs->conf.cfg;
	struct dk_query q;

	dk_ctr_inc(&qs->env.ctr->queries[cl->transport]);
	bool limited = rate_limited(qs, cl);
	if (limited && cfg->rate_limit.action == DK_RATELIMIT_DROP)
		return;
	int rc = dk_msg_parse_query(pkt, len, &q);
	if (limited) {
		/* REFUSED only to what can be answered; never to a response (reflection). */
		if (rc == 0 || rc == DK_EFORMERR || rc == DK_ENOTIMP || rc == DK_EBADVERS)
			reply_error(qs, cl, pkt, &q, LDNS_RCODE_REFUSED, 0);
		return;
	}
	if (rc != 0) {
		uint8_t rcode;
		switch (rc) {
		case DK_EFORMERR:
			rcode = LDNS_RCODE_FORMERR;
			count(qs, cl, DK_OUT_FORMERR);
			break;
		case DK_ENOTIMP:
			if (q.opcode == LDNS_PACKET_NOTIFY && notify(qs, cl, pkt, len))
				return;
			rcode = LDNS_RCODE_NOTIMPL;
			count(qs, cl, DK_OUT_NOTIMP);
			break;
		case DK_EBADVERS:
			rcode = DK_RCODE_BADVERS;
			count(qs, cl, DK_OUT_BADVERS);
			break;
		default:
			/* No header, or a response: never answer (no reflection). */
			count(qs, cl, DK_OUT_DROPPED);
			return;
		}
		reply_error(qs, cl, pkt, &q, rcode, 0);
		return;
	}
	const struct dk_group *g = group_of(qs, cl);
	group_count(qs, g, 0);
	/* A group with allow_clients of its own answers to those, not to the global list. */
	if (g && g->own_acl ? !dk_acl_allows(g->acl, g->n_acl, &cl->peer.sa)
	                    : !dk_acl_allows(cfg->allow, cfg->n_allow, &cl->peer.sa)) {
		count(qs, cl, DK_OUT_ACL_REFUSED);
		reply_error(qs, cl, pkt, &q, LDNS_RCODE_REFUSED, DK_EDE_PROHIBITED);
		return;
	}
	/* The group's view decides; the cache after it is shared and holds only upstream answers.
	 */
	struct dk_verdict v;
	const struct dk_policy *pol = qs->conf.pol;
	if (pol && pol->client_ips && dk_policy_match_client(pol, &cl->peer.sa, &v) &&
	    group_sees(qs, g, &v)) {
		/* A client-IP trigger comes first in RPZ order and decides alone. */
		if (act(qs, cl, g, pkt, &q, &v, ACT_QUERY, LDNS_RCODE_NOERROR, NULL, 0))
			return;
	} else if (pol && match(qs, g, q.qname, q.qname_len, &v) &&
	           act(qs, cl, g, pkt, &q, &v, ACT_QUERY, LDNS_RCODE_NOERROR, NULL, 0)) {
		return;
	}
	if (sigma_query(qs, cl, g, pkt, &q))
		return;
	/* After the policy on the name, never before: a blocked name is not answered from cache. */
	if (qs->cache && cache_answer(qs, cl, pkt, len, &q, false))
		return;
	forward(qs, cl, pkt, len, &q);
}

/*
 * Makes the bucket table fit the config: made when rate_limit is turned on
 * (at start or by a reload), remade when its size changes, freed when it is
 * turned off. Once per snapshot, not on the query path.
 */
static int ratelimit_update(struct dk_queries *qs)
{
	const struct dk_config *cfg = qs->conf.cfg;

	if (!cfg->rate_limit.qps) {
		dk_ratelimit_free(qs->rl);
		qs->rl = NULL;
		return 0;
	}
	if (qs->rl && qs->rl_table_size == cfg->rate_limit.table_size)
		return 0;
	struct dk_ratelimit *rl;
	if (dk_ratelimit_new(cfg->rate_limit.table_size, &rl) < 0) {
		dk_log(DK_LOG_ERR, "rate_limit: out of memory for %zu buckets%s",
		       cfg->rate_limit.table_size,
		       qs->rl ? ", keeping the old table" : ", not limiting");
		return -ENOMEM;
	}
	dk_ratelimit_free(qs->rl);
	qs->rl = rl;
	qs->rl_table_size = cfg->rate_limit.table_size;
	return 0;
}

/*
 * Makes the cache fit the config, as ratelimit_update() does the bucket
 * table: this worker's share of size_mb (at least DK_CACHE_MIN_BYTES), made
 * when turned on or resized, kept with its entries otherwise, freed when
 * turned off. The TTL rules of the new config apply from the next query.
 */
static int cache_update(struct dk_queries *qs)
{
	const struct dk_config *cfg = qs->conf.cfg;
	unsigned workers = qs->env.n_workers ? qs->env.n_workers : 1;
	size_t want = cfg->cache.size_mb * 1024 * 1024 / workers;
	int rc = 0;

	if (want && want < DK_CACHE_MIN_BYTES)
		want = DK_CACHE_MIN_BYTES;
	if (!want || dk_fails_assert(qs->env.cache_ctr)) {
		dk_cache_free(qs->cache);
		qs->cache = NULL;
		qs->cache_bytes = 0;
	} else if (!qs->cache || qs->cache_bytes != want) {
		struct dk_cache *c;
		uint64_t seed;
		/* Without getrandom() the hash is still fine for honest clients. */
		if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
			seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uintptr_t)qs;
		rc = dk_cache_new(want, seed, &c);
		if (rc < 0) {
			dk_log(DK_LOG_ERR, "cache: out of memory for %zu octets%s", want,
			       qs->cache ? ", keeping the old cache" : ", not caching");
			rc = -ENOMEM;
		} else {
			dk_cache_free(qs->cache);
			qs->cache = c;
			qs->cache_bytes = want;
		}
	}
	if (qs->cache) {
		const struct dk_cache_limits lim = {
		        .min_ttl = cfg->cache.min_ttl,
		        .max_ttl = cfg->cache.max_ttl,
		        .negative_max_ttl = cfg->cache.negative_max_ttl,
		        .failure_ttl = cfg->cache.failure_ttl,
		        .stale_max_s = cfg->cache.serve_stale ? cfg->cache.stale_max_s : 0,
		};
		dk_cache_set_limits(qs->cache, &lim);
	}
	if (qs->env.cache_ctr)
		cache_gauges(qs);
	return rc;
}

/*
 * Makes the Sigma scratch fit the policy's Sigma engine (Vectorscan scratch,
 * match bits, the behavioural table), once per snapshot, never per query.
 */
static int sigma_update(struct dk_queries *qs)
{
	const struct dk_sigma *s = qs->conf.pol ? qs->conf.pol->sigma : NULL;
	int rc;

	if (!s)
		return 0;
	rc = qs->sigma ? dk_sigma_scratch_fit(qs->sigma, s) : dk_sigma_scratch_new(s, &qs->sigma);
	if (rc < 0) {
		dk_log(DK_LOG_ERR, "sigma: out of memory for the scratch, Sigma rules not run");
		dk_sigma_scratch_free(qs->sigma);
		qs->sigma = NULL;
	}
	return rc;
}

int dk_queries_configure(struct dk_queries *qs, const struct dk_queries_conf *conf)
{
	qs->conf = *conf;
	int rc = ratelimit_update(qs);
	int rc2 = cache_update(qs);
	int rc3 = sigma_update(qs);
	return rc < 0 ? rc : rc2 < 0 ? rc2 : rc3;
}

size_t dk_queries_cache_flush(struct dk_queries *qs, const uint8_t *name, size_t name_len)
{
	size_t n;

	if (!qs->cache)
		return 0;
	n = dk_cache_flush(qs->cache, name, name_len);
	cache_gauges(qs);
	return n;
}

size_t dk_queries_cache_bytes(const struct dk_queries *qs)
{
	return qs->cache ? qs->cache_bytes : 0;
}

size_t dk_queries_ratelimit_size(const struct dk_queries *qs)
{
	return qs->rl ? dk_ratelimit_size(qs->rl) : 0;
}

int dk_queries_new(const struct dk_queries_env *env, struct dk_queries **out)
{
	struct dk_queries *qs = calloc(1, sizeof(*qs));

	*out = NULL;
	if (!qs)
		return -ENOMEM;
	qs->pend = calloc(env->max_pending ? env->max_pending : 1, sizeof(*qs->pend));
	qs->cbuf = malloc(DK_MSG_MAX);
	if (!qs->pend || !qs->cbuf) {
		free(qs->pend);
		free(qs->cbuf);
		free(qs);
		return -ENOMEM;
	}
	qs->env = *env;
	for (size_t i = env->max_pending; i-- > 0;) {
		qs->pend[i].qs = qs;
		qs->pend[i].next_free = qs->free;
		qs->free = &qs->pend[i];
	}
	qs->n_free = env->max_pending;
	*out = qs;
	return 0;
}

void dk_queries_free(struct dk_queries *qs)
{
	if (!qs)
		return;
	dk_ratelimit_free(qs->rl);
	dk_cache_free(qs->cache);
	dk_sigma_scratch_free(qs->sigma);
	free(qs->cbuf);
	free(qs->pend);
	free(qs);
}
