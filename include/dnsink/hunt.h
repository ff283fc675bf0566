/* SPDX-License-Identifier: MIT */
/*
 * Judging a logged lookup as the daemon judges a live one (query.c's act()
 * and answer-side policy): the query name first; a blocking rule answers and
 * ends it, an alert rule alerts and lets it go on; then the CNAME/DNAME
 * targets of the logged answer, the first one a blocking rule matches, else
 * the first an alert rule matches; an allow rule on the name covers the whole
 * answer. The events come out as the daemon's dk_alert_event, so `dnsink
 * hunt` formats, dedups and counts them with the daemon's own code.
 *
 * Pure: no I/O, no allocation.
 */
#pragma once

#include "dnsink/alert.h"
#include "dnsink/logrec.h"
#include "dnsink/policy.h"
#include "dnsink/sigma.h"

/** Events one record can give: the name's, an answer target's, and its Sigma rules'. */
#define DK_HUNT_EVENTS_MAX (2 + DK_SIGMA_HITS_MAX + 4)

/**
 * Fills @p ev with the alert events record @p r gives under @p pol and
 * returns how many. As the daemon: the client's group view (when the policy
 * has groups and the record a client); then, unless a rule on the name
 * blocked, the Sigma rules on the name, type and client, with the
 * behavioural ones counted on the record's own time in @p sc (the caller's
 * scratch for pol->sigma, one per thread; NULL: no Sigma rules run). Rules
 * with alert: false and allow rules give none. ev->policy is @p pol, not
 * referenced. The rcode is the daemon's: the local answer's for a blocking
 * rule, NOERROR for an alert on the name, the logged one for an alert on an
 * answer target.
 */
unsigned dk_hunt_judge(struct dk_policy *pol, struct dk_sigma_scratch *sc,
                       const struct dk_logrec *r, struct dk_alert_event ev[DK_HUNT_EVENTS_MAX]);
