/* SPDX-License-Identifier: MIT */
/*
 * The verdict for a logged lookup (see hunt.h). The order and precedence are
 * those of src/daemon/query.c, so an inline verdict and a retro-hunt verdict
 * are the same by construction; tests/integration/test_hunt.py checks it
 * end to end against the daemon's own alerts.
 */
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <ldns/packet.h>

#include "dnsink/groups.h"
#include "dnsink/hunt.h"

static bool blocks(uint8_t action)
{
	return action == DK_ACTION_SINKHOLE || action == DK_ACTION_NXDOMAIN ||
	       action == DK_ACTION_REFUSED;
}

static uint8_t local_rcode(uint8_t action)
{
	switch (action) {
	case DK_ACTION_NXDOMAIN: return LDNS_RCODE_NXDOMAIN;
	case DK_ACTION_REFUSED: return LDNS_RCODE_REFUSED;
	default: return LDNS_RCODE_NOERROR;
	}
}

/* The logged client as a socket address; false when the record has none. */
static bool client_of(const struct dk_logrec *r, struct sockaddr_storage *out)
{
	struct sockaddr_storage ss = {0};

	if (r->family != AF_INET && r->family != AF_INET6)
		return false;
	if (r->family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, r->addr, 4);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, r->addr, 16);
	}
	*out = ss;
	return true;
}

/* The client group of the logged client, as the daemon's query.c finds it; NULL: none. */
static const struct dk_group *group_of(const struct dk_policy *pol, const struct dk_logrec *r)
{
	struct sockaddr_storage ss;

	if (!pol->groups || !client_of(r, &ss))
		return NULL;
	return dk_groups_lookup(pol->groups, (const struct sockaddr *)&ss);
}

/* The name matched as client group @p g sees the rules (query.c's match()). */
static bool match(const struct dk_policy *pol, const struct dk_group *g, const uint8_t *wire,
                  size_t len, struct dk_verdict *v)
{
	if (!g)
		return dk_policy_match(pol, wire, len, v);
	return dk_group_match(pol, g, dk_group_view(pol->groups, g), wire, len, v);
}

static void event(struct dk_policy *pol, const struct dk_group *g, const struct dk_logrec *r,
                  const struct dk_verdict *v, uint8_t rcode, const uint8_t *target,
                  size_t target_len, struct dk_alert_event *ev)
{
	/* Every field set, those a later room adds included: zero is "none" for them. */
	*ev = (struct dk_alert_event){
	        .time_ms = r->time_ms,
	        .rule = v->rule,
	        .policy = pol,
	        .group = g ? dk_group_name(g) : NULL,
	        .family = r->family,
	        .transport = r->transport,
	        .action = v->action,
	        .rcode = rcode,
	        .port = r->port,
	        .qtype = r->qtype,
	        .qname_len = r->qname_len,
	        .matched_off = v->matched_off,
	        .wildcard = v->wildcard,
	        .target_len = (uint8_t)target_len,
	};
	memcpy(ev->addr, r->addr, r->family == AF_INET6 ? 16 : 4);
	memcpy(ev->qname, r->qname, r->qname_len);
	if (target_len)
		memcpy(ev->target, target, target_len);
}

/*
 * The Sigma rules on record @p r, as query.c's sigma_query() and sigma_act():
 * the alerting rules each alert, then the first blocking one answers (and
 * alerts); behavioural alerts carry their group key and count.
 */
static unsigned judge_sigma(struct dk_policy *pol, const struct dk_group *g,
                            struct dk_sigma_scratch *sc, const struct dk_logrec *r,
                            struct dk_alert_event *ev)
{
	struct sockaddr_storage ss;
	struct dk_sigma_query sq = {.qname = r->qname,
	                            .qname_len = r->qname_len,
	                            .qtype = r->qtype,
	                            .client = client_of(r, &ss) ? (const struct sockaddr *)&ss
	                                                        : NULL};
	struct dk_sigma_hits h;
	const uint8_t *view = g ? dk_group_view(pol->groups, g) : NULL;
	bool blocked = false;
	unsigned n = 0;

	dk_sigma_match_query(pol->sigma, sc, &sq, &h);
	dk_sigma_count(pol->sigma, sc, &sq, r->time_ms, &h);
	for (unsigned i = 0; i < h.n + h.n_corr; i++) {
		bool corr = i >= h.n;
		unsigned ri = corr ? h.corr[i - h.n].rule : h.rule[i];
		struct dk_verdict v = {.rule = &pol->rules[ri]};
		v.action = view ? view[ri] : (uint8_t)v.rule->action;
		if (v.action == DK_GROUP_OFF || v.action == DK_ACTION_ALLOW || !v.rule->alert)
			continue;
		if (blocks(v.action)) {
			if (blocked)
				continue;
			blocked = true;
		}
		event(pol, g, r, &v, local_rcode(v.action), NULL, 0, &ev[n]);
		if (corr) {
			size_t kl = strnlen(h.corr[i - h.n].key, sizeof(ev[n].group_key) - 1);
			memcpy(ev[n].group_key, h.corr[i - h.n].key, kl);
			ev[n].group_key[kl] = '\0';
			ev[n].group_key_len = (uint8_t)(kl ? kl : 1);
			ev[n].group_count = h.corr[i - h.n].count;
		}
		n++;
	}
	return n;
}

unsigned dk_hunt_judge(struct dk_policy *pol, struct dk_sigma_scratch *sc,
                       const struct dk_logrec *r, struct dk_alert_event ev[DK_HUNT_EVENTS_MAX])
{
	struct dk_verdict qv, tv, hit = {0};
	unsigned n = 0;
	int which = -1;

	if (!pol || r->qname_len == 0)
		return 0;
	const struct dk_group *g = group_of(pol, r);
	if (match(pol, g, r->qname, r->qname_len, &qv)) {
		/* An allow exception on the name covers its whole answer. */
		if (qv.action == DK_ACTION_ALLOW)
			return 0;
		if (!r->answer_only && qv.rule->alert)
			event(pol, g, r, &qv, local_rcode(qv.action), NULL, 0, &ev[n++]);
		if (blocks(qv.action))
			return n;
	}
	/* A response logged apart from its query was judged as the query already. */
	if (pol->sigma && sc && !r->answer_only)
		n += judge_sigma(pol, g, sc, r, ev + n);
	for (unsigned i = 0; i < r->n_targets; i++) {
		if (!match(pol, g, r->target[i], r->target_len[i], &tv) ||
		    tv.action == DK_ACTION_ALLOW)
			continue;
		if (which < 0 || blocks(tv.action)) {
			hit = tv;
			which = (int)i;
		}
		if (blocks(tv.action))
			break;
	}
	if (which >= 0 && hit.rule->alert) {
		uint8_t rcode = blocks(hit.action) ? local_rcode(hit.action)
		                : r->rcode >= 0    ? (uint8_t)r->rcode
		                                   : LDNS_RCODE_NOERROR;
		event(pol, g, r, &hit, rcode, r->target[which], r->target_len[which], &ev[n++]);
	}
	return n;
}
