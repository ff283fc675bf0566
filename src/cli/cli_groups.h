/* SPDX-License-Identifier: MIT */
/* Client groups in the subcommands: the group of a client, and `dnsink check`'s listing. */
#pragma once

#include <stdbool.h>

#include "dnsink/groups.h"
#include "dnsink/policy.h"

/**
 * The group of client @p ip (text) in @p p's groups, or NULL when @p p has
 * none. Sets @p *bad when @p ip is not an address (and returns NULL).
 */
const struct dk_group *dk__cli_group_of(const struct dk_policy *p, const char *ip, bool *bad);

/** Prints @p p's groups: prefixes, allow-lists and each rule set's differences. */
void dk__cli_print_groups(const struct dk_policy *p);
