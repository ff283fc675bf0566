/* SPDX-License-Identifier: MIT */
/*
 * The verdict for a logged lookup (see hunt.h). The order and precedence are
 * those of src/daemon/query.c, so an inline verdict and a retro-hunt verdict
 * are the same by construction; tests/integration/test_hunt.py checks it
 * end to end against the daemon's own alerts.
 */
#include <string.h>
#include <sys/socket.h>

#include <ldns/packet.h>

#include "dnsink/hunt.h"

static bool blocks(const struct dk_rule *r)
{
	return r->action == DK_ACTION_SINKHOLE || r->action == DK_ACTION_NXDOMAIN ||
	       r->action == DK_ACTION_REFUSED;
}

static uint8_t local_rcode(enum dk_action a)
{
	switch (a) {
	case DK_ACTION_NXDOMAIN: return LDNS_RCODE_NXDOMAIN;
	case DK_ACTION_REFUSED: return LDNS_RCODE_REFUSED;
	default: return LDNS_RCODE_NOERROR;
	}
}

static void event(struct dk_policy *pol, const struct dk_logrec *r, const struct dk_verdict *v,
                  uint8_t rcode, const uint8_t *target, size_t target_len,
                  struct dk_alert_event *ev)
{
	ev->time_ms = r->time_ms;
	ev->mono_ns = 0;
	ev->rule = v->rule;
	ev->policy = pol;
	ev->family = r->family;
	ev->transport = r->transport;
	ev->action = (uint8_t)v->rule->action;
	ev->rcode = rcode;
	ev->port = r->port;
	ev->qtype = r->qtype;
	memcpy(ev->addr, r->addr, sizeof(ev->addr));
	if (r->family != AF_INET6)
		memset(ev->addr + 4, 0, sizeof(ev->addr) - 4);
	ev->qname_len = r->qname_len;
	memcpy(ev->qname, r->qname, r->qname_len);
	ev->matched_off = v->matched_off;
	ev->wildcard = v->wildcard;
	ev->target_len = (uint8_t)target_len;
	if (target_len)
		memcpy(ev->target, target, target_len);
}

unsigned dk_hunt_judge(struct dk_policy *pol, const struct dk_logrec *r,
                       struct dk_alert_event ev[2])
{
	struct dk_verdict qv, tv, hit = {0};
	unsigned n = 0;
	int which = -1;

	if (!pol || r->qname_len == 0)
		return 0;
	if (dk_policy_match(pol, r->qname, r->qname_len, &qv)) {
		/* An allow exception on the name covers its whole answer. */
		if (qv.rule->action == DK_ACTION_ALLOW)
			return 0;
		if (!r->answer_only && qv.rule->alert)
			event(pol, r, &qv, local_rcode(qv.rule->action), NULL, 0, &ev[n++]);
		if (blocks(qv.rule))
			return n;
	}
	for (unsigned i = 0; i < r->n_targets; i++) {
		if (!dk_policy_match(pol, r->target[i], r->target_len[i], &tv) ||
		    tv.rule->action == DK_ACTION_ALLOW)
			continue;
		if (which < 0 || blocks(tv.rule)) {
			hit = tv;
			which = (int)i;
		}
		if (blocks(tv.rule))
			break;
	}
	if (which >= 0 && hit.rule->alert) {
		uint8_t rcode = blocks(hit.rule) ? local_rcode(hit.rule->action)
		                : r->rcode >= 0  ? (uint8_t)r->rcode
		                                 : LDNS_RCODE_NOERROR;
		event(pol, r, &hit, rcode, r->target[which], r->target_len[which], &ev[n++]);
	}
	return n;
}
