/* SPDX-License-Identifier: MIT */
/*
 * The words of the rule vocabulary: action and severity names, read from
 * rule files and the config and written in alerts and `dnsink check`. A room
 * of their own, depending on nothing, so that every reader of them (the rule
 * loader, the config's groups and Sigma sections, the alert formatter) can
 * use them without linking the policy in, and no link cycle forms.
 */
#include <string.h>

#include "dnsink/common.h"
#include "dnsink/policy.h"

static const char *const action_names[] = {
        [DK_ACTION_SINKHOLE] = "sinkhole", [DK_ACTION_NXDOMAIN] = "nxdomain",
        [DK_ACTION_REFUSED] = "refused",   [DK_ACTION_ALERT] = "alert",
        [DK_ACTION_ALLOW] = "allow",       [DK_ACTION_NODATA] = "nodata",
        [DK_ACTION_DROP] = "drop",         [DK_ACTION_TCP_ONLY] = "tcp-only",
        [DK_ACTION_LOCAL] = "local",
};

static const char *const severity_names[] = {
        [DK_SEVERITY_INFO] = "info",         [DK_SEVERITY_LOW] = "low",
        [DK_SEVERITY_MEDIUM] = "medium",     [DK_SEVERITY_HIGH] = "high",
        [DK_SEVERITY_CRITICAL] = "critical",
};

const char *dk_action_name(enum dk_action a)
{
	if ((unsigned)a >= DK_ARRAY_SIZE(action_names))
		return "unknown";
	return action_names[a];
}

const char *dk_severity_name(enum dk_severity s)
{
	if ((unsigned)s >= DK_ARRAY_SIZE(severity_names))
		return "unknown";
	return severity_names[s];
}

int dk_action_parse(const char *s, enum dk_action *out)
{
	/* "local" needs records to answer with, which only an RPZ zone has. */
	for (size_t i = 0; i < DK_ACTION_LOCAL; i++) {
		if (strcmp(s, action_names[i]) == 0) {
			*out = (enum dk_action)i;
			return 0;
		}
	}
	return DK_ESYNTAX;
}

int dk_severity_parse(const char *s, enum dk_severity *out)
{
	for (size_t i = 0; i < DK_ARRAY_SIZE(severity_names); i++) {
		if (strcmp(s, severity_names[i]) == 0) {
			*out = (enum dk_severity)i;
			return 0;
		}
	}
	return DK_ESYNTAX;
}
