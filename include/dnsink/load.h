/* SPDX-License-Identifier: MIT */
/*
 * Loading what the resolver runs on: the config file, the command-line
 * overrides applied to it, and the policy from its rules, checked together
 * (upstreams present, none of them one of our own listeners). The daemon
 * calls it at start and on every reload; nothing here needs a loop.
 */
#pragma once

#include "dnsink/common.h"
#include "dnsink/config.h"
#include "dnsink/policy.h"

/** Command-line overrides of the config file (for benchmarks and quick runs). */
struct dk_run_opts {
	unsigned workers;      /**< 0: config value */
	const char *listen;    /**< replaces config "listen" when set */
	const char *upstream;  /**< replaces config "upstreams" when set */
	const char *blocklist; /**< plain list file: adds a silent nxdomain rule */
};

/**
 * Loads config @p path with overrides @p o (NULL: none) into @p *cfg and its
 * policy into @p *pol (NULL when no rules are configured); the caller frees
 * both (dk_config_free(), dk_policy_unref()). Returns 0, or a negative code
 * with @p diag set ("FILE:LINE: what") and nothing to free.
 */
int dk_load(const char *path, const struct dk_run_opts *o, struct dk_config **cfg,
            struct dk_policy **pol, struct dk_diag *diag);

/**
 * Builds the client groups of @p cfg for @p pol and hangs them on it
 * (pol->groups, freed with the policy); nothing when @p cfg has none.
 * dk_load() calls it; the subcommands that load config and rules apart do
 * too. Returns 0 or a negative code with @p diag set ("FILE:LINE: what").
 */
int dk_load_groups(const struct dk_config *cfg, struct dk_policy *pol, struct dk_diag *diag);

/**
 * Applies what @p cfg says about the rules loaded in @p pol (may be NULL):
 * checks that every key of sigma.actions is a Sigma level or a loaded Sigma
 * rule's id, sets the Sigma rules' actions, then builds the client groups
 * (whose views copy those actions). dk_load() calls it; so do the
 * subcommands that load config and rules apart. Returns 0 or a negative
 * code with @p diag set ("FILE:LINE: what").
 */
int dk_load_apply(const struct dk_config *cfg, struct dk_policy *pol, struct dk_diag *diag);
