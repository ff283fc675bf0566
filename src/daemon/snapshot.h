/* SPDX-License-Identifier: MIT */
/*
 * What the workers run on: config and policy, immutable while in use, with
 * their share of the counters (stats.h). Made on the main thread at start and
 * on each reload; a worker switches to a new one between two queries, and the
 * main thread frees the old one once every worker has let go of it.
 */
#pragma once

#include "dnsink/config.h"
#include "dnsink/load.h"
#include "dnsink/policy.h"
#include "stats.h"
#include "tls.h"

struct dk_snapshot {
	struct dk_config *cfg;
	struct dk_policy *pol;    /**< NULL: no rules configured */
	struct dk_tls_creds *tls; /**< loaded from cfg's tls: files; NULL when nothing uses TLS */
	struct dk_stats_map stats;
};

/**
 * Loads config @p path with overrides @p o and its rules (dk_load()) and
 * prepares their counter slots in @p reg for the @p n_workers running workers
 * counting into @p blocks (dk_stats_prepare()). Logs the outcome: a summary,
 * or the error as FILE:LINE. Returns 0 and sets @p *out (free it with
 * dk_snapshot_free()), or a negative code. The line logged (summary or
 * error) is also written to @p msg when it is not NULL.
 */
int dk_snapshot_load(const char *path, const struct dk_run_opts *o, struct dk_stats_reg *reg,
                     struct dk_wstats *const *blocks, unsigned n_workers, struct dk_snapshot **out,
                     char *msg, size_t msg_size);

/** Frees @p s and what it owns. NULL is a no-op. */
void dk_snapshot_free(struct dk_snapshot *s);
