/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the rule loader (rules.c) and matching (policy.c): the
 * merge function that settles ties between entries on the same name when the
 * suffix sets are built, and freeing a snapshot.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnsink/policy.h"

/**
 * Suffix-set merge function for values (rule index << 1) | wildcard; @p ctx
 * is the snapshot's rule array. Implements the precedence of dnsink-rules(5) at equal length:
 * allow, then higher severity, then the rule loaded first; within one rule
 * the plain entry beats "*.name".
 */
uint16_t dk__policy_merge(uint16_t old, uint16_t add, void *ctx);

/** Frees what @p z owns (not @p z itself). */
void dk__zone_deinit(struct dk_zone *z);

/** Orders local data by (rule, wildcard, owner); <0, 0, >0 as memcmp. */
int dk__local_cmp(const struct dk_policy *p, const struct dk_local_data *e, uint16_t rule,
                  bool wildcard, const uint8_t *owner, size_t owner_len);

/** Frees what @p r owns (not @p r itself). */
void dk__rule_deinit(struct dk_rule *r);

/** Frees @p p and everything it owns, whatever its reference count. */
void dk__policy_free(struct dk_policy *p);
